import type http from 'node:http';
import type { GraphQLSchema } from 'graphql';
import type { Config } from '../core/config';
import type { Logger } from '../core/logger';
import type { AuthService } from '../modules/auth/auth.service';
import { LiveEventsService } from '../modules/live/live-events.service';
import type { WalletEventFeed } from '../modules/live/wallet-event-feed';
import type { GrantIndex } from '../modules/wallets/grant-index';
import { startLiveServer, type LiveServer } from '../modules/live/ws-server';
import type { TokenBudget } from '../shared/token-budget';
import type { OperationRules } from './apollo';

export interface WebSocketOptions {
  httpServer: http.Server;
  schema: GraphQLSchema;
  rules: OperationRules;
  auth: AuthService;
  /** The same per-token budget as HTTP requests. */
  budget: TokenBudget;
  feed: WalletEventFeed;
  grants: GrantIndex;
  config: Config;
  logger: Logger;
}

/** graphql-ws on /graphql of the HTTP server, for subscriptions; Apollo's stop closes it. */
export function startWebSocket(options: WebSocketOptions): LiveServer {
  const { config, rules } = options;
  return startLiveServer({
    httpServer: options.httpServer,
    schema: options.schema,
    auth: options.auth,
    budget: options.budget,
    service: new LiveEventsService(options.feed, options.grants),
    validationRules: rules.limits.validationRules,
    cost: rules.cost,
    formatError: rules.formatError,
    trustProxy: config.trustProxy,
    recheckMs: config.subscriptions.recheckSeconds * 1000,
    logger: options.logger,
  });
}
