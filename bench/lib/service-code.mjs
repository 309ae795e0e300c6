// The service's own code the benchmark uses, from dist/ (npm run bench builds it first): one place
// for the paths into the build.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// The models' decorators need it loaded first, as in dist/main.js.
require('reflect-metadata');

export const { Keyring } = require('../../dist/crypto/keyring.js');
const { parseConfig } = require('../../dist/core/config.js');
const { signAgentToken, signUserToken } = require('../../dist/modules/auth/jwt.js');

/** The service's Config, as it will read this environment (its defaults filled in). */
export const configOf = (env, cwd) => parseConfig(env, cwd).config;

/** A user's token, as the service signs it at login. */
export const userToken = (config, user) =>
  signUserToken(config.jwt, user._id, user.role, user.token_version ?? 0).token;

/** The token of an agent_tokens record, as the service signs it when an admin issues one. */
export const agentToken = (config, record) =>
  signAgentToken(config.jwt, record._id, record.name, record.expires_at).token;
export const {
  BUILT_IN_DEFINITIONS,
} = require('../../dist/modules/catalog/wallet-definition.seed.js');
const { storedValues } = require('../../dist/modules/credentials/credential-values.js');
const { initialAiState, toLimits } = require('../../dist/modules/wallets/user-wallet.service.js');
export { initialAiState, storedValues, toLimits };

const {
  connectDatabase,
  disconnectDatabase,
  ensureIndexes,
} = require('../../dist/db/connection.js');
const { EXPIRY_JOB, ensureRetentionIndexes } = require('../../dist/db/retention.js');
const { systemCtx } = require('../../dist/core/context.js');
const { createLogger } = require('../../dist/core/logger.js');
// The models whose indexes the service makes at start-up (src/app/stored-models.ts).
const { STORED_MODELS } = require('../../dist/app/stored-models.js');

/**
 * The service's indexes on the database at `uri`, made as its start-up makes them (its models'
 * and the retention's TTL indexes), through a mongoose connection of this process's own, closed
 * again before anything is measured.
 */
export async function createServiceIndexes(uri, config) {
  const logger = createLogger({ ...config, logLevel: 'warn' });
  await connectDatabase(uri, logger);
  try {
    await ensureIndexes(STORED_MODELS);
    await ensureRetentionIndexes(systemCtx(logger, EXPIRY_JOB), config.retention);
  } finally {
    await disconnectDatabase();
  }
}
