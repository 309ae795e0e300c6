import type http from 'node:http';
import type { Config } from '../core/config';
import type { Logger } from '../core/logger';
import { buildAppSchema, type Services } from '../graphql/schema';
import { WalletEventFeed } from '../modules/live/wallet-event-feed';
import { walletOutbox } from '../modules/wallets/wallet-outbox';
import { TokenBudget } from '../shared/token-budget';
import { operationRules, startApollo } from './apollo';
import { createHttpServer, listen, mountRoutes } from './http';
import { startBackgroundJobs, startCore, stopInOrder } from './lifecycle';
import { startWebSocket } from './ws';

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

/**
 * The service: the database and the services ready (lifecycle.ts), its background work started,
 * then GraphQL over HTTP (apollo.ts, http.ts) and WebSocket (ws.ts) on one port.
 */
export async function startApp(config: Config, logger: Logger): Promise<App> {
  const core = await startCore(config, logger);
  const jobs = startBackgroundJobs(config, logger, core);

  const { app, httpServer } = createHttpServer();
  const schema = await buildAppSchema(core.services);
  const rules = operationRules(schema, config);
  // One budget per token, whichever transport its requests come by.
  const budget = new TokenBudget((key) =>
    key.startsWith('agent:') ? config.rateLimits.agentPerMinute : config.rateLimits.userPerMinute,
  );
  const feed = new WalletEventFeed(logger, core.grantIndex);
  // This instance's own writes reach its subscribers at once, not with the next poll.
  const stopHearing = walletOutbox.onRecorded((events, wallet) =>
    feed.recordedHere(events, wallet),
  );
  const { auth } = core.services;
  const live = startWebSocket({
    httpServer,
    schema,
    rules,
    auth,
    budget,
    feed,
    grants: core.grantIndex,
    config,
    logger,
  });
  const apollo = await startApollo({ schema, rules, httpServer, live, config, logger });
  mountRoutes(app, { apollo, auth, budget, config, logger });
  const url = await listen(httpServer, config, logger);

  let stopping: Promise<void> | undefined;
  return {
    url,
    httpServer,
    services: core.services,
    stop: () => {
      stopHearing();
      return (stopping ??= stopInOrder({ core, jobs, apollo, budget, feed }));
    },
  };
}
