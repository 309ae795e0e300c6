import type { ApolloServer } from '@apollo/server';
import type { Config } from '../core/config';
import { systemCtx, type RequestContext } from '../core/context';
import type { Logger } from '../core/logger';
import { watchKeyExpiry } from '../core/metrics';
import { Keyring } from '../crypto/keyring';
import { STORED_MODELS } from './stored-models';
import { connectDatabase, disconnectDatabase, ensureIndexes } from '../db/connection';
import { EXPIRY_JOB, ensureRetentionIndexes, startExpirySweep } from '../db/retention';
import { checkConnection } from '../exchanges/registry';
import type { Services } from '../graphql/schema';
import { AgentTokenRegistry } from '../modules/auth/agent-token-registry';
import { AuthService } from '../modules/auth/auth.service';
import { WalletDefinitionService } from '../modules/catalog/wallet-definition.service';
import { ConnectionTester } from '../modules/credentials/connection-tests';
import { CredentialCheckScheduler } from '../modules/credentials/credential-check-scheduler';
import { CredentialService } from '../modules/credentials/credential.service';
import type { WalletEventFeed } from '../modules/live/wallet-event-feed';
import { AiStateService } from '../modules/wallets/ai-state.service';
import { AgentGrantService } from '../modules/wallets/agent-grants';
import { GrantIndex } from '../modules/wallets/grant-index';
import { GrantExpirySweep } from '../modules/wallets/grant-expiry-sweep';
import { clampWalletsToDefinition } from '../modules/wallets/definition-changes';
import { AuditOutboxSweep } from '../modules/audit/outbox-sweep';
import { UserWalletService } from '../modules/wallets/user-wallet.service';
import { credentialWallets } from '../modules/wallets/wallet-status';
import { walletPendingEvents } from '../modules/wallets/wallet-outbox';
import { MIGRATIONS } from '../migrations';
import { runMigrations } from '../migrations/runner';
import type { TokenBudget } from '../shared/token-budget';

/** What start-up builds before anything is served: the services and what they lean on. */
export interface Core {
  services: Services;
  agentTokens: AgentTokenRegistry;
  /** Which wallets the GRANTED_WALLETS agents subscribed here hold (the live events' filter). */
  grantIndex: GrantIndex;
  tester: ConnectionTester;
}

/**
 * Connects, makes the indexes, builds the services, makes sure of the admin and the catalog, runs
 * the migrations not run yet (src/migrations/) and reads the agent tokens. A refused start (an admin account that
 * isn't the configured admin's, say) leaves nothing open.
 */
export async function startCore(config: Config, logger: Logger): Promise<Core> {
  if (!config.mongodbUri)
    throw new Error('startApp needs a database URI (main.ts starts the embedded engine)');
  await connectDatabase(config.mongodbUri, logger, { monitorCommands: config.nodeEnv === 'test' });
  watchKeyExpiry(config.exchanges.keyExpiryWarningDays);
  const agentTokens = new AgentTokenRegistry(logger);
  const grantIndex = new GrantIndex(logger);
  const keyring = new Keyring(config.encryptionKeys);
  // The user's tests and the service's own record their outcomes alike. The credentials module
  // reaches the wallets on a credential only through what the wallets module hands it.
  const tester = new ConnectionTester(
    keyring,
    config.exchanges,
    checkConnection,
    config.credentialChecks.intervalMs,
    credentialWallets,
  );
  try {
    await ensureIndexes(STORED_MODELS);
    await ensureRetentionIndexes(systemCtx(logger, EXPIRY_JOB), config.retention);
    const auth = new AuthService(config, agentTokens);
    const services: Services = {
      auth,
      // The catalog imports nothing of the wallets: a change of features reaches them by this hook.
      definitions: new WalletDefinitionService({
        onFeaturesChanged: clampWalletsToDefinition,
      }),
      credentials: new CredentialService(
        keyring,
        tester,
        config.caps.credentialsPerUser,
        credentialWallets,
        config.exchanges.egressIps,
      ),
      wallets: new UserWalletService(config.caps.walletsPerUser),
      ai: new AiStateService(),
      // The wallets module asks the tokens' questions through this, importing nothing of auth's
      // services.
      grants: new AgentGrantService(
        {
          grantableAgent: (ctx, agentId) => auth.grantableAgent(ctx, agentId),
          isHonoured: (agentId) => agentTokens.isHonoured(agentId),
        },
        grantIndex,
      ),
    };
    await services.auth.ensureAdmin(systemCtx(logger, 'admin account'));
    await services.definitions.seedIfEmpty(systemCtx(logger, 'catalog seed'));
    // Before anything is served: no resolver meets a document of an older shape.
    await runMigrations(systemCtx(logger, 'migrations'), config, MIGRATIONS);
    await agentTokens.start();
    return { services, agentTokens, grantIndex, tester };
  } catch (error) {
    await disconnectDatabase();
    throw error;
  }
}

/** The service's own work in the background, each instance its share. */
export interface BackgroundJobs {
  credentialChecks: CredentialCheckScheduler;
  stopExpirySweep: () => Promise<void>;
  eventSweep: AuditOutboxSweep;
  grantSweep: GrantExpirySweep;
}

export function startBackgroundJobs(config: Config, logger: Logger, core: Core): BackgroundJobs {
  const eventSweep = new AuditOutboxSweep(logger, walletPendingEvents); // the audit outbox sweep
  eventSweep.start();
  const stopExpirySweep = startExpirySweep(config.retention, logger);
  const credentialChecks = new CredentialCheckScheduler(
    core.tester,
    {
      ...config.credentialChecks,
      timeoutMs: config.exchanges.timeoutMs,
      stopGraceMs: config.shutdownGraceMs,
    },
    logger,
    credentialWallets,
  );
  credentialChecks.start();
  const grantSweep = new GrantExpirySweep(logger);
  grantSweep.start();
  return { credentialChecks, stopExpirySweep, eventSweep, grantSweep };
}

/** What stop() takes down, in the order below. */
export interface Running {
  core: Core;
  jobs: BackgroundJobs;
  /** Its drain plugins close the HTTP server and every WebSocket. */
  apollo: ApolloServer<RequestContext>;
  budget: TokenBudget;
  feed: WalletEventFeed;
}

/**
 * Stops accepting, lets in-flight requests finish (bounded by shutdownGraceMs), then the
 * background work, then the database.
 */
export async function stopInOrder({ core, jobs, apollo, budget, feed }: Running): Promise<void> {
  // No new connection tests from here; those in flight finish while requests drain.
  const checksStopped = jobs.credentialChecks.stop();
  await apollo.stop();
  await checksStopped;
  await jobs.stopExpirySweep();
  await jobs.grantSweep.stop();
  budget.stop();
  await feed.stop();
  await core.agentTokens.stop();
  await core.grantIndex.stop();
  await jobs.eventSweep.stop(); // the audit outbox sweep
  await disconnectDatabase();
}
