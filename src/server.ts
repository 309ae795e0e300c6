import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
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
import { AuthService } from './auth/auth.service';
import { UserModel } from './auth/user.model';
import type { Config } from './config';
import { buildContext, requestIdOf, type Context } from './context';
import { connectDatabase, disconnectDatabase, ensureIndexes, pingDatabase } from './db/connection';
import { AppError } from './errors';
import { classifyError, formatError } from './format-error';
import { graphqlLimits } from './graphql-limits';
import { mountGraphiQL } from './graphiql/graphiql';
import type { Logger } from './logger';
import { Keyring } from './crypto/keyring';
import { checkConnection } from './exchanges/registry';
import { CredentialModel } from './modules/credentials/credential.model';
import { CredentialService } from './modules/credentials/credential.service';
import { AiStateService } from './modules/user-wallets/ai-state.service';
import { UserWalletEventModel } from './modules/user-wallets/user-wallet-event.model';
import { startEventSweep } from './modules/user-wallets/user-wallet-events';
import { UserWalletModel } from './modules/user-wallets/user-wallet.model';
import { UserWalletService } from './modules/user-wallets/user-wallet.service';
import { RateLimitModel } from './shared/rate-limit';
import { TokenBudget } from './shared/token-budget';
import { WalletDefinitionModel } from './modules/wallet-definitions/wallet-definition.model';
import { WalletDefinitionService } from './modules/wallet-definitions/wallet-definition.service';
import { buildAppSchema, type Services } from './schema';

export interface App {
  url: string;
  httpServer: http.Server;
  services: Services;
  /** Stops accepting, lets in-flight requests finish (bounded by shutdownGraceMs), closes the database. */
  stop(): Promise<void>;
}

const BODY_LIMIT = '100kb';

/**
 * Logs what the client can't see: every error that leaves as INTERNAL_SERVER_ERROR, with its
 * request id; and, at debug level, each request's arrival and duration (never its variables).
 */
function requestLogging(logger: Logger): ApolloServerPlugin<Context> {
  return {
    async contextCreationDidFail({ error }) {
      // A bad token is the client's error; anything else (the database down, say) is ours.
      if (!(error instanceof AppError)) logger.error({ err: error }, 'request context failed');
    },
    async requestDidStart({ contextValue, request }) {
      const started = performance.now();
      contextValue.logger.debug({ operation: request.operationName ?? null }, 'request received');
      return {
        async willSendResponse() {
          contextValue.logger.debug({ ms: Math.round(performance.now() - started) }, 'request finished');
        },
        async didEncounterErrors({ errors }) {
          for (const error of errors) {
            const kind = classifyError({ extensions: error.extensions, path: error.path }, error);
            if (kind === 'internal') contextValue.logger.error({ err: error.originalError ?? error, path: error.path }, 'request failed');
            if (kind === 'unavailable') contextValue.logger.warn({ path: error.path }, 'database unavailable');
          }
        },
      };
    },
  };
}

export async function startApp(config: Config, logger: Logger): Promise<App> {
  if (!config.mongodbUri) throw new Error('startApp needs a database URI (main.ts starts the embedded engine)');
  await connectDatabase(config.mongodbUri, logger);
  await ensureIndexes([UserModel, WalletDefinitionModel, CredentialModel, UserWalletModel, UserWalletEventModel, RateLimitModel]);

  const services: Services = {
    auth: new AuthService(config, logger),
    definitions: new WalletDefinitionService(logger),
    credentials: new CredentialService(new Keyring(config.encryptionKeys), config.exchanges, checkConnection, logger),
    wallets: new UserWalletService(logger),
    ai: new AiStateService(logger),
  };
  await services.auth.ensureAdmin();
  await services.definitions.seedIfEmpty();
  await services.definitions.migrateToCcxt();
  const stopEventSweep = startEventSweep(logger);

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const httpServer = http.createServer(app);
  httpServer.keepAliveTimeout = 65_000;

  const limits = graphqlLimits(config);
  const budget = new TokenBudget((key) => (key.startsWith('agent:') ? config.rateLimits.agentPerMinute : config.rateLimits.userPerMinute));
  const apollo = new ApolloServer<Context>({
    schema: await buildAppSchema(services),
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
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownGraceMs }),
      ApolloServerPluginLandingPageDisabled(),
      // No cache hints are used; and nothing may report to Apollo's cloud, whatever the environment says.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
      requestLogging(logger),
      ...limits.plugins,
    ],
  });
  await apollo.start();

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    const ok = await pingDatabase();
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable', database: ok ? 'up' : 'down' });
  });
  mountGraphiQL(app);
  app.use(
    '/graphql',
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
    expressMiddleware(apollo, {
      context: ({ req, res }) => buildContext(req, res.locals.requestId as string, services.auth, budget, config, logger),
    }),
  );
  app.use((_req: express.Request, res: express.Response) => {
    res.status(404).json({ error: 'not found' });
  });
  // Body parser failures (malformed JSON, a body over the limit) answer in GraphQL's shape.
  app.use((error: { status?: number; type?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = error.status && error.status >= 400 && error.status < 500 ? error.status : 500;
    const message =
      error.type === 'entity.too.large'
        ? `request body over the limit of ${BODY_LIMIT}`
        : status < 500
          ? 'malformed request body'
          : 'internal server error';
    if (status >= 500) logger.error({ err: error }, 'request failed');
    res.status(status).json({ errors: [{ message, extensions: { code: status < 500 ? 'BAD_USER_INPUT' : 'INTERNAL_SERVER_ERROR' } }] });
  });

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
        await apollo.stop();
        budget.stop();
        await stopEventSweep();
        await disconnectDatabase();
      })()),
  };
}
