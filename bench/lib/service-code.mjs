// The service's own code the benchmark uses, from dist/ (npm run bench builds it first): one place
// for the paths into the build.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// The models' decorators need it loaded first, as in dist/main.js.
require('reflect-metadata');

export const { Keyring } = require('../../dist/crypto/keyring.js');
const { parseConfig } = require('../../dist/config.js');
const { signAgentToken, signUserToken } = require('../../dist/auth/jwt.js');

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
} = require('../../dist/modules/wallet-definitions/wallet-definition.seed.js');
