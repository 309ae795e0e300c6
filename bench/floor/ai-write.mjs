// The AI write: a port of AiStateService.update and planAiWrite (and ai-policy.ts), with the same
// database work command for command: the wallet by id, the definition's features, one conditional
// findOneAndUpdate carrying every limit check and the audit events, then the events' copy to the
// trail and their pull from the wallet.

import { ObjectId } from './db.mjs';
import { conflict, notFound, userInput } from './errors.mjs';

const MODE_LEVERAGE_CAP = { conservative: 3, moderate: 10, aggressive: Number.POSITIVE_INFINITY };
const STORED = {
  currentRisk: 'current_risk',
  dailyPnl: 'daily_pnl',
  openPositions: 'open_positions',
  currentMaxPositionSize: 'current_max_position_size',
  currentLeverage: 'current_leverage',
  adaptiveStopLoss: 'adaptive_stop_loss',
  riskScore: 'risk_score',
  marketSentiment: 'market_sentiment',
  confidenceLevel: 'confidence_level',
};
const API_NAMES = Object.fromEntries([
  ...Object.entries(STORED).map(([api, stored]) => [stored, api]),
  ['last_ai_decision', 'lastAiDecision'],
]);
const WRITE_ATTEMPTS = 5;

function leverageRange(definition, mode) {
  const { futures, perpetuals, leverage } = definition.features;
  if (!futures && !perpetuals) return { min: 1, max: 1 };
  return {
    min: leverage.min,
    max: Math.max(leverage.min, Math.min(leverage.max, MODE_LEVERAGE_CAP[mode])),
  };
}

const finite = (v) => (Number.isFinite(v) ? null : 'must be a finite number');
const nonNegative = (v) => (Number.isFinite(v) && v >= 0 ? null : 'must be at least 0');
const count = (v) => (Number.isInteger(v) && v >= 0 ? null : 'must be a whole number, at least 0');
const percentScore = (v) =>
  Number.isInteger(v) && v >= 0 && v <= 100 ? null : 'must be a whole number from 0 to 100';
const AI_POLICY = {
  currentRisk: nonNegative,
  dailyPnl: finite,
  openPositions: count,
  currentMaxPositionSize: (v, { limits }) =>
    nonNegative(v) ??
    (v <= limits.max_total_risk ? null : `must be at most maxTotalRisk (${limits.max_total_risk})`),
  currentLeverage: (v, { limits, definition }) => {
    const { min, max } = leverageRange(definition, limits.trading_mode);
    return Number.isInteger(v) && v >= min && v <= max
      ? null
      : `must be a whole number from ${min} to ${max} (${limits.trading_mode} mode on this exchange)`;
  },
  adaptiveStopLoss: (v) =>
    Number.isFinite(v) && v > 0 && v <= 100
      ? null
      : 'must be greater than 0 and at most 100 (percent)',
  riskScore: percentScore,
  confidenceLevel: percentScore,
};

function planAiWrite(wallet, definition, input, now) {
  const context = { limits: wallet.user_limits, definition };
  const set = {};
  const changes = {};
  for (const field of Object.keys(STORED)) {
    const value = input[field];
    if (value == null) continue;
    if (field !== 'marketSentiment') {
      const broken = AI_POLICY[field](value, context);
      if (broken) throw userInput(`${field} ${broken}`, field);
    }
    set[`ai_managed_state.${STORED[field]}`] = value;
    changes[STORED[field]] = value;
  }
  set['ai_managed_state.last_ai_decision'] = now;
  changes.last_ai_decision = now;

  // Exactly the state checked against, as the service's filter names it.
  const filter = {
    _id: wallet._id,
    version: wallet.version,
    'user_limits.max_total_risk': wallet.user_limits.max_total_risk,
    'user_limits.trading_mode': wallet.user_limits.trading_mode,
    status: wallet.status,
  };

  const risk = input.currentRisk ?? wallet.ai_managed_state.current_risk;
  const overLimit = wallet.status === 'active' && risk > wallet.user_limits.max_total_risk;
  if (overLimit) {
    set.status = 'ai_paused';
    set.pause_reason = `risk limit exceeded: currentRisk ${risk} > maxTotalRisk ${wallet.user_limits.max_total_risk}`;
  }
  return { filter, set, changes, overLimit };
}

function apiAiState(state) {
  return Object.fromEntries(
    Object.entries(state).map(([key, value]) => [
      API_NAMES[key],
      key === 'market_sentiment'
        ? String(value).toUpperCase()
        : value instanceof Date
          ? value.toISOString()
          : value,
    ]),
  );
}

const apiStatus = (status, pauseReason) => ({ status: status.toUpperCase(), pauseReason });

// The service's audit outbox: events go into the wallet's own update, then are copied to the
// trail and pulled from the wallet.
const walletEvent = (principal, walletId, version, kind, before, after) => ({
  _id: new ObjectId(),
  wallet_id: walletId,
  kind,
  actor: principal.name,
  actor_role: principal.role,
  actor_id: principal.id,
  before,
  after,
  version,
  at: new Date(),
});

/** updateAiManagedState(principal, walletId, input, expectedVersion) on these collections. */
export function aiWriter({ definitions, userWallets, events }) {
  async function deliverEvents(walletId, pending) {
    const ids = pending.map((e) => e._id);
    try {
      await events.insertMany(pending, { ordered: false }).catch(async (error) => {
        if ((await events.countDocuments({ _id: { $in: ids } })) !== ids.length) throw error;
      });
      await userWallets.updateOne(
        { _id: walletId },
        { $pull: { pending_events: { _id: { $in: ids } } } },
      );
    } catch (error) {
      process.stderr.write(`floor: audit events left in the wallet: ${error.message}\n`);
    }
  }

  async function updateAiManagedState(principal, walletId, rawInput, expectedVersion) {
    // Enum names in, stored (lowercase) values to the database, as type-graphql's enum mapping does.
    const input = { ...rawInput };
    if (input.marketSentiment != null) input.marketSentiment = input.marketSentiment.toLowerCase();
    if (!Object.values(input).some((v) => v != null))
      throw userInput('give at least one field to change', 'input');
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const wallet = await userWallets.findOne({ _id: new ObjectId(walletId) });
      if (!wallet) throw notFound('no wallet with that id');
      if (expectedVersion != null && wallet.version !== expectedVersion) {
        throw conflict(
          `stale expectedVersion ${expectedVersion}: the wallet is at version ${wallet.version}`,
        );
      }
      const definition = await definitions.findOne(
        { _id: wallet.wallet_id },
        { projection: { features: 1 } },
      );
      const now = new Date();
      const { filter, set, changes, overLimit } = planAiWrite(wallet, definition, input, now);
      const version = wallet.version + 1;
      const before = Object.fromEntries(
        Object.keys(changes).map((k) => [k, wallet.ai_managed_state[k]]),
      );
      const pending = [
        walletEvent(
          principal,
          wallet._id,
          version,
          'ai_state_changed',
          apiAiState(before),
          apiAiState(changes),
        ),
      ];
      if (overLimit) {
        pending.push(
          walletEvent(
            principal,
            wallet._id,
            version,
            'status_changed',
            apiStatus(wallet.status, wallet.pause_reason),
            apiStatus(set.status, set.pause_reason),
          ),
        );
      }
      // The update document mongoose sends for the service (its timestamps option adds updated_at
      // and a $setOnInsert of created_at), so both write the same fields.
      const updated = await userWallets.findOneAndUpdate(
        filter,
        {
          $setOnInsert: { created_at: now },
          $inc: { version: 1 },
          $set: { ...set, updated_at: now },
          $push: { pending_events: { $each: pending } },
        },
        { returnDocument: 'after' },
      );
      if (!updated) {
        if (expectedVersion != null)
          throw conflict(`stale expectedVersion ${expectedVersion}: the wallet changed meanwhile`);
        continue;
      }
      await deliverEvents(updated._id, pending);
      return updated;
    }
    throw conflict('the wallet kept changing while the agent wrote; try again');
  }

  return updateAiManagedState;
}
