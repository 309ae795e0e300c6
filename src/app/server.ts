import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express from 'express';
import { AgentTokenRegistry } from '../modules/auth/agent-token-registry';
import { AgentTokenModel } from '../modules/auth/agent-token.model';
import { AuthService } from '../modules/auth/auth.service';
import { UserModel } from '../modules/auth/user.model';
import type { Config } from '../core/config';
import type { RequestContext } from '../core/context';
import { buildContext, requestIdOf } from './request-context';
import { connectDatabase, disconnectDatabase, ensureIndexes, pingDatabase } from '../db/connection';
import { createFormatError, schemaNamesOf } from '../graphql/format-error';
import { costLimitPlugin, createCostLimit } from '../graphql/cost';
import { graphqlLimits, PARSE_OPTIONS } from '../graphql/limits';
import { capResponses } from './response-cap';
import { mountGraphiQL, wantsGraphiQL } from './graphiql';
import type { Logger } from '../core/logger';
import { Keyring } from '../crypto/keyring';
import { checkConnection } from '../exchanges/registry';
import { ensureRetentionIndexes, startExpirySweep } from '../db/retention';
import { ConnectionTester } from '../modules/credentials/connection-tests';
import { CredentialBalanceModel } from '../modules/credentials/credential-balance.model';
import {
  CredentialCheckScheduler,
  migrateConnectionStates,
} from '../modules/credentials/credential-check-scheduler';
import { CredentialModel } from '../modules/credentials/credential.model';
import { CredentialService } from '../modules/credentials/credential.service';
import { AiStateService } from '../modules/wallets/ai-state.service';
import { UserWalletEventModel } from '../modules/wallets/user-wallet-event.model';
import { backfillUserChangedAt, dropRetiredIndexes } from '../modules/wallets/migrations';
import { startEventSweep } from '../modules/wallets/user-wallet-events';
import { UserWalletModel } from '../modules/wallets/user-wallet.model';
import { UserWalletService } from '../modules/wallets/user-wallet.service';
import { RateLimitModel } from '../shared/rate-limit';
import { TokenBudget } from '../shared/token-budget';
import { WalletDefinitionModel } from '../modules/catalog/wallet-definition.model';
import { WalletDefinitionService } from '../modules/catalog/wallet-definition.service';
import { requestErrorStatus, requestLogging, requestMetrics } from '../graphql/request-plugins';
import { mountMetrics, rootFieldsOf } from './metrics-endpoint';
import { LiveEventsService } from '../modules/live/live-events.service';
import { WalletEventFeed } from '../modules/live/wallet-event-feed';
import { startLiveServer } from '../modules/live/ws-server';
import { buildAppSchema, type Services } from '../graphql/schema';

export interface App {
  url: string;
  httpServer: http.Server;
  services: Services;
  /**
   * Stops accepting, lets in-flight requests finish (bounded by shutdownGraceMs), closes the
   * database.
   */
  stop(): Promise<void>;
}

const BODY_LIMIT = '100kb';

export async function startApp(config: Config, logger: Logger): Promise<App> {
  if (!config.mongodbUri)
    throw new Error('startApp needs a database URI (main.ts starts the embedded engine)');
  await connectDatabase(config.mongodbUri, logger, { monitorCommands: config.nodeEnv === 'test' });
  const agentTokens = new AgentTokenRegistry(logger);
  let services: Services;
  const keyring = new Keyring(config.encryptionKeys);
  // The user's tests and the service's own record their outcomes alike.
  const tester = new ConnectionTester(
    keyring,
    config.exchanges,
    checkConnection,
    config.credentialChecks.intervalMs,
  );
  try {
    await ensureIndexes([
      UserModel,
      WalletDefinitionModel,
      CredentialModel,
      CredentialBalanceModel,
      UserWalletModel,
      UserWalletEventModel,
      RateLimitModel,
      AgentTokenModel,
    ]);
    await ensureRetentionIndexes(config.retention, logger);
    await backfillUserChangedAt(logger);
    services = {
      auth: new AuthService(config, logger, agentTokens),
      definitions: new WalletDefinitionService(logger),
      credentials: new CredentialService(keyring, tester, config.caps.credentialsPerUser),
      wallets: new UserWalletService(logger, config.caps.walletsPerUser),
      ai: new AiStateService(logger),
    };
    await services.auth.ensureAdmin();
    await services.definitions.seedIfEmpty();
    await services.definitions.migrateToCcxt();
    await migrateConnectionStates(config.credentialChecks.intervalMs, logger);
    await dropRetiredIndexes(logger);
    await agentTokens.start();
  } catch (error) {
    // A refused start (an admin account that isn't the configured admin's, say) leaves nothing
    // open.
    await disconnectDatabase();
    throw error;
  }
  const stopEventSweep = startEventSweep(logger);
  const stopExpirySweep = startExpirySweep(config.retention, logger);
  const credentialChecks = new CredentialCheckScheduler(
    tester,
    {
      ...config.credentialChecks,
      timeoutMs: config.exchanges.timeoutMs,
      stopGraceMs: config.shutdownGraceMs,
    },
    logger,
  );
  credentialChecks.start();

  const app = express();
  app.disable('x-powered-by');
  // No ETag: it would hash every answer (a megabyte for a long wallet list) for a cache that POST
  // never uses.
  app.set('etag', false);
  app.set('trust proxy', false);
  const httpServer = http.createServer(app);
  httpServer.keepAliveTimeout = 65_000;

  const limits = graphqlLimits();
  const schema = await buildAppSchema(services);
  const cost = createCostLimit(schema, { caps: config.caps, maxCost: config.maxRequestCost });
  const budget = new TokenBudget((key) =>
    key.startsWith('agent:') ? config.rateLimits.agentPerMinute : config.rateLimits.userPerMinute,
  );
  const formatError = createFormatError({
    production: config.nodeEnv === 'production',
    schemaNames: schemaNamesOf(schema),
  });
  const feed = new WalletEventFeed(logger);
  const live = startLiveServer({
    httpServer,
    schema,
    auth: services.auth,
    budget,
    service: new LiveEventsService(feed),
    validationRules: limits.validationRules,
    cost,
    formatError,
    trustProxy: config.trustProxy,
    recheckMs: config.subscriptions.recheckSeconds * 1000,
    logger,
  });
  const apollo = new ApolloServer<RequestContext>({
    schema,
    parseOptions: PARSE_OPTIONS,
    validationRules: limits.validationRules,
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    introspection: config.nodeEnv !== 'production',
    includeStacktraceInErrorResponses: false,
    // main.ts owns SIGTERM/SIGINT and stops everything in order.
    stopOnTerminationSignals: false,
    formatError,
    logger: {
      debug: (m) => logger.debug(m),
      info: (m) => logger.info(m),
      warn: (m) => logger.warn(m),
      error: (m) => logger.error(m),
    },
    plugins: [
      ApolloServerPluginDrainHttpServer({
        httpServer,
        stopGracePeriodMillis: config.shutdownGraceMs,
      }),
      // Apollo's documented set-up for graphql-ws: stopping closes every WebSocket (1001, going
      // away).
      { serverWillStart: () => Promise.resolve({ drainServer: () => live.dispose() }) },
      ApolloServerPluginLandingPageDisabled(),
      // No cache hints are used; and nothing may report to Apollo's cloud, whatever the environment
      // says.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
      requestLogging(logger),
      requestErrorStatus(),
      requestMetrics(rootFieldsOf(schema)),
      ...limits.plugins,
      costLimitPlugin(cost),
    ],
  });
  await apollo.start();

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    const ok = await pingDatabase();
    res
      .status(ok ? 200 : 503)
      .json({ status: ok ? 'ready' : 'unavailable', database: ok ? 'up' : 'down' });
  });
  mountMetrics(app, { token: config.metricsToken, trustProxy: config.trustProxy });
  if (config.graphiql) mountGraphiQL(app, { introspection: config.nodeEnv !== 'production' });
  // Without the explorer, a browser asking for /graphql gets no page either.
  else
    app.get('/graphql', (req, res, next) =>
      wantsGraphiQL(req) ? res.status(404).json({ error: 'not found' }) : next(),
    );
  app.use(
    '/graphql',
    (_req, res, next) => {
      // Answers carry private data: no cache may keep them, and no browser may sniff them into
      // HTML.
      res.set({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      next();
    },
    // Only the listed browser origins may read responses cross-origin; none when the list is empty.
    cors({
      origin: config.corsOrigins,
      methods: ['GET', 'POST'],
      allowedHeaders: ['content-type', 'authorization', 'apollo-require-preflight', 'x-request-id'],
      exposedHeaders: ['x-request-id'],
      maxAge: 600,
    }),
    (req, res, next) => {
      res.locals.requestId = requestIdOf(req);
      res.set('x-request-id', res.locals.requestId as string);
      next();
    },
    express.json({ limit: BODY_LIMIT }),
    capResponses(config.maxResponseBytes, logger),
    expressMiddleware(apollo, {
      context: ({ req, res }) =>
        buildContext(req, res.locals.requestId as string, services.auth, budget, config, logger),
    }),
  );
  app.use((_req: express.Request, res: express.Response) => {
    res.status(404).json({ error: 'not found' });
  });
  // Body parser failures (malformed JSON, a body over the limit) answer in GraphQL's shape.
  app.use(
    (
      error: { status?: number; type?: string },
      _req: express.Request,
      res: express.Response,
      _next: express.NextFunction,
    ) => {
      const status = error.status && error.status >= 400 && error.status < 500 ? error.status : 500;
      const message =
        error.type === 'entity.too.large'
          ? `request body over the limit of ${BODY_LIMIT}`
          : status < 500
            ? 'malformed request body'
            : 'internal server error';
      if (status >= 500) logger.error({ err: error }, 'request failed');
      res.status(status).json({
        errors: [
          {
            message,
            extensions: { code: status < 500 ? 'BAD_USER_INPUT' : 'INTERNAL_SERVER_ERROR' },
          },
        ],
      });
    },
  );

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  logger.info({ url: `${url}/graphql` }, 'wallet service listening');

  let stopping: Promise<void> | undefined;
  return {
    url,
    httpServer,
    services,
    stop: () =>
      (stopping ??= (async () => {
        // No new connection tests from here; those in flight finish while requests drain.
        const checksStopped = credentialChecks.stop();
        await apollo.stop();
        await checksStopped;
        await stopExpirySweep();
        budget.stop();
        await feed.stop();
        await agentTokens.stop();
        await stopEventSweep();
        await disconnectDatabase();
      })()),
  };
}
