import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express from 'express';
import type { Config } from '../core/config';
import type { RequestContext } from '../core/context';
import type { Logger } from '../core/logger';
import { pingDatabase } from '../db/connection';
import type { AuthService } from '../modules/auth/auth.service';
import type { TokenBudget } from '../shared/token-budget';
import { mountGraphiQL, wantsGraphiQL } from './graphiql';
import { mountMetrics } from './metrics-endpoint';
import { buildContext, requestIdOf } from './request-context';
import { capResponses } from './response-cap';

const BODY_LIMIT = '100kb';

/** Express, and the HTTP server around it that graphql-ws shares; nothing mounted yet. */
export function createHttpServer(): { app: express.Express; httpServer: http.Server } {
  const app = express();
  app.disable('x-powered-by');
  // No ETag: it would hash every answer (a megabyte for a long wallet list) for a cache that POST
  // never uses.
  app.set('etag', false);
  app.set('trust proxy', false);
  const httpServer = http.createServer(app);
  httpServer.keepAliveTimeout = 65_000;
  return { app, httpServer };
}

export interface RouteOptions {
  apollo: ApolloServer<RequestContext>;
  auth: AuthService;
  budget: TokenBudget;
  config: Config;
  logger: Logger;
}

/** /health, /ready, /metrics, GraphiQL, /graphql, and the answers to anything else. */
export function mountRoutes(app: express.Express, options: RouteOptions): void {
  const { apollo, auth, budget, config, logger } = options;
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
        buildContext(req, res.locals.requestId as string, auth, budget, config, logger),
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
}

/** Listens on HOST:PORT; returns the base URL a client on this machine reaches it by. */
export async function listen(
  httpServer: http.Server,
  config: Config,
  logger: Logger,
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  logger.info({ url: `${url}/graphql` }, 'wallet service listening');
  return url;
}
