import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CredentialModel, Environment } from '../modules/credentials/credential.model';
import { UserWalletModel } from '../modules/wallets/user-wallet.model';

/**
 * The service's Prometheus metrics (GET /metrics). No label can hold a user's value: operations
 * are the schema's own root fields (else `other`), exchanges are ccxt ids of catalog entries,
 * codes and outcomes come from fixed lists. One registry per process, as the process is the unit
 * Prometheus scrapes.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const metrics = {
  graphqlRequests: new Counter({
    name: 'graphql_requests_total',
    help: 'GraphQL requests, by root field (the schema’s name, or other) and outcome (ok or error).',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  }),
  graphqlDuration: new Histogram({
    name: 'graphql_request_duration_seconds',
    help: 'Time from a request’s arrival to its answer, by root field.',
    labelNames: ['operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
  graphqlErrors: new Counter({
    name: 'graphql_errors_total',
    help: 'Errors answered, by the contract code in extensions.code.',
    labelNames: ['code'] as const,
    registers: [registry],
  }),
  connectionTests: new Counter({
    name: 'exchange_connection_tests_total',
    help: 'Connection tests, by the ccxt id of the catalog entry (none without one), outcome and environment (mainnet, testnet, paper: a paper test contacts no exchange).',
    labelNames: ['exchange', 'outcome', 'environment'] as const,
    registers: [registry],
  }),
  connectionTestDuration: new Histogram({
    name: 'exchange_connection_test_duration_seconds',
    help: 'How long connection tests that called the exchange took, by the ccxt id of the catalog entry and environment.',
    labelNames: ['exchange', 'environment'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  }),
  aiWrites: new Counter({
    name: 'wallet_ai_writes_total',
    help: 'Agents’ writes of the AI-managed state: written, refused (by policy), conflict, paused (written, and the risk paused the wallet).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  aiValidations: new Counter({
    name: 'wallet_ai_validations_total',
    help: 'Agents’ validate-only writes of the AI-managed state, which store nothing: passed, refused (by policy), conflict.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  statusChanges: new Counter({
    name: 'wallet_status_changes_total',
    help: 'Wallet status changes, by the status changed to.',
    labelNames: ['to'] as const,
    registers: [registry],
  }),
  sweepDelivered: new Counter({
    name: 'audit_sweep_delivered_total',
    help: 'Audit events the outbox sweep delivered (a request could not).',
    registers: [registry],
  }),
  liveEventOffers: new Counter({
    name: 'live_event_offers_total',
    help: 'Subscriptions live events were offered to, found through the feed’s index (by wallet, owner, agent scope or grant): the feed’s work per event, which grows with the subscriptions an event concerns, not with every connection.',
    registers: [registry],
  }),
  liveOwnEvents: new Counter({
    name: 'live_own_events_total',
    help: 'Live events of this instance’s own writes, by how they went out: at_once, or with_the_poll (an earlier event of their wallet might still come).',
    labelNames: ['sent'] as const,
    registers: [registry],
  }),
  liveResultsSerialised: new Counter({
    name: 'live_results_serialised_total',
    help: 'Distinct results of live events serialised: once per event for all the subscriptions that answer it alike.',
    registers: [registry],
  }),
  liveFramesSent: new Counter({
    name: 'live_frames_sent_total',
    help: 'Live events sent to subscriptions (graphql-ws next frames).',
    registers: [registry],
  }),
  rateLimitRefusals: new Counter({
    name: 'rate_limit_refusals_total',
    help: 'Requests refused by a limit: login, register, connection-test, token_budget, password_checks, websocket, exchange_budget.',
    labelNames: ['kind'] as const,
    registers: [registry],
  }),
};

export type AiWriteOutcome = 'written' | 'refused' | 'conflict' | 'paused';

/** The events waiting in wallets' outboxes, counted when Prometheus scrapes. */
new Gauge({
  name: 'audit_outbox_pending',
  help: 'Audit events still in wallets’ outboxes (pending_events), waiting to be copied to the trail.',
  registers: [registry],
  async collect() {
    const [total] = await UserWalletModel.aggregate<{ n: number }>([
      { $match: { 'pending_events.at': { $exists: true } } },
      { $project: { n: { $size: '$pending_events' } } },
      { $group: { _id: null, n: { $sum: '$n' } } },
    ]).option({ comment: 'background: metrics' });
    this.set(total?.n ?? 0);
  },
});

/** KEY_EXPIRY_WARNING_DAYS, in ms; set at start-up by watchKeyExpiry. */
let keyExpiryWarningMs = 14 * 86_400_000;

export function watchKeyExpiry(warningDays: number): void {
  keyExpiryWarningMs = warningDays * 86_400_000;
}

/**
 * Keys about to stop trading, counted when Prometheus scrapes: what operators alert on before
 * users' wallets pause (keys already past their end are REJECTED, and counted no more).
 */
new Gauge({
  name: 'wallet_credentials_expiring_soon',
  help: 'Credentials whose key’s trading rights end within KEY_EXPIRY_WARNING_DAYS and have not ended yet, as their last tests told (keyExpiresAt), by environment (a paper credential has no key).',
  labelNames: ['environment'] as const,
  registers: [registry],
  async collect() {
    const now = Date.now();
    const counts = await CredentialModel.aggregate<{ _id: Environment; n: number }>([
      {
        $match: {
          key_expires_at: { $gt: new Date(now), $lte: new Date(now + keyExpiryWarningMs) },
        },
      },
      { $group: { _id: '$environment', n: { $sum: 1 } } },
    ]).option({ comment: 'background: metrics' });
    for (const environment of Object.values(Environment))
      this.set({ environment }, counts.find((c) => c._id === environment)?.n ?? 0);
  },
});

/**
 * The driver's connection pool, from its monitoring events (connections it made before we listened
 * count once seen).
 */
const pool = { open: new Set<number>(), inUse: new Set<number>() };
new Gauge({
  name: 'mongodb_pool_connections',
  help: 'The MongoDB driver’s pooled connections, by state (open, in_use, idle).',
  labelNames: ['state'] as const,
  registers: [registry],
  collect() {
    this.set({ state: 'open' }, pool.open.size);
    this.set({ state: 'in_use' }, pool.inUse.size);
    this.set({ state: 'idle' }, Math.max(0, pool.open.size - pool.inUse.size));
  },
});

interface PoolEvent {
  connectionId: unknown;
}
interface MonitoredClient {
  on(
    event:
      'connectionCreated' | 'connectionClosed' | 'connectionCheckedOut' | 'connectionCheckedIn',
    listener: (event: PoolEvent) => void,
  ): unknown;
}

export function watchConnectionPool(client: MonitoredClient): void {
  pool.open.clear();
  pool.inUse.clear();
  client.on('connectionCreated', (e) => pool.open.add(e.connectionId as number));
  client.on('connectionClosed', (e) => {
    pool.open.delete(e.connectionId as number);
    pool.inUse.delete(e.connectionId as number);
  });
  client.on('connectionCheckedOut', (e) => {
    pool.open.add(e.connectionId as number);
    pool.inUse.add(e.connectionId as number);
  });
  client.on('connectionCheckedIn', (e) => pool.inUse.delete(e.connectionId as number));
}
