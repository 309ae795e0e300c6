// The run's settings (environment knobs and fixed sizes) and the targets' thresholds.

const env = process.env;

const phaseSeconds = Number(env.BENCH_SECONDS ?? 10);
const connections = Number(env.BENCH_CONNECTIONS ?? 16);

export const SETTINGS = {
  phaseSeconds,
  /**
   * A comparison's sides are measured in turn, this many rounds each (A B A B A B), a round half a
   * phase unless a scenario says otherwise: a ratio target is the median of its rounds' ratios.
   */
  rounds: 3,
  roundSeconds: phaseSeconds / 2,
  warmupSeconds: Number(env.BENCH_WARMUP_SECONDS ?? 3),
  connections,
  rssSeconds: Number(env.BENCH_RSS_SECONDS ?? 60),
  rssSettleSeconds: 5,
  totalWallets: 12_000,
  /** Users of one wallet each (the 10,000-subscriber scenario's); the write pool is among them. */
  oneWalletUsers: 10_000,
  writePool: 2_000,
  /** Wallets a user changed lately, for managedWalletChanges (every twelfth). */
  changedWallets: 1_000,
  batchSize: 100,
  /**
   * Requests a round of the batch's comparison (all answered): single writes, batches (a round
   * of each takes about half a phase here; autocannon wants at least one per connection).
   */
  batchRound: {
    single: Math.max(connections, 120 * phaseSeconds),
    batch: Math.max(connections, 5 * phaseSeconds),
  },
  /** The GRANTED_WALLETS agent's grants (issue 20), spread evenly over the wallets by id. */
  grantedWallets: 1_000,
  /**
   * The live events scenario (issue 13): agents' subscriptions, and the paced writes they follow.
   */
  liveSubscribers: 50,
  liveWritesPerSecond: 100,
  /**
   * The 10,000-subscriber scenario (issue 23): users' subscriptions on one instance (fewer with
   * BENCH_SUBSCRIBERS, for a quick check: the targets then say so), the agents' paced writes over
   * their wallets, and the handshakes under way at a time while they connect.
   */
  userSubscribers: Math.min(10_000, Number(env.BENCH_SUBSCRIBERS ?? 10_000)),
  userSubscriptionWritesPerSecond: 100,
  userSubscriptionConnecting: 50,
  /**
   * The largest allowed request (issue 17): one credential's balanceHistory(first: 500) of 100
   * assets each, looping on this many connections while another user asks for `me`.
   */
  heavyConnections: 1,
  heavySnapshots: 500,
  heavyAssets: 100,
};

export const THRESHOLDS = {
  maxCommandsPerList: 4,
  listThroughputShare: 0.7,
  listTailFactor: 3,
  catalogThroughputShare: 1.0,
  writeThroughputShare: 0.6,
  batchCpuShare: 0.2,
  changesThroughputShare: 1.0,
  listCpuFactor: 1.25,
  idleRssMB: 150,
  rssGrowth: 0.1,
  startupMs: 3_000,
  liveP99Ms: 2_000,
  liveCpuFactor: 1.3,
  subscriptionsSameInstanceP99Ms: 250,
  subscriptionsSecondInstanceP99Ms: 1_500,
  subscriptionsCpuFactor: 1.3,
  rssPerSocketKB: 64,
  tracingCpuFactor: 1.25,
  meP99WithHeavyMs: 200,
  grantedThroughputShare: 0.9,
};
