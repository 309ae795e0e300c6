import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { TradingMode, type UserLimits } from './user-wallet.model';

/**
 * The platform's policy for what an AI agent may set, in one table. Each rule returns null when
 * the value is allowed, else the limit it breaks (the error names the field and this limit).
 */

/** Leverage caps per trading mode; AGGRESSIVE goes as far as the exchange allows. */
export const MODE_LEVERAGE_CAP: Record<TradingMode, number> = {
  [TradingMode.CONSERVATIVE]: 3,
  [TradingMode.MODERATE]: 10,
  [TradingMode.AGGRESSIVE]: Number.POSITIVE_INFINITY,
};

/** Where a new wallet's stop loss starts, in percent. */
export const INITIAL_STOP_LOSS: Record<TradingMode, number> = {
  [TradingMode.CONSERVATIVE]: 2,
  [TradingMode.MODERATE]: 5,
  [TradingMode.AGGRESSIVE]: 10,
};

export const INITIAL_RISK_SCORE = 50;

type Definition = Pick<WalletDefinition, 'features'>;

/**
 * The leverage an agent may set: the exchange's range under the mode's cap; exactly 1 without
 * derivatives. Empty (max < min) when the mode's cap is below the exchange's minimum.
 */
export function leverageRange(
  definition: Definition,
  mode: TradingMode,
): { min: number; max: number } {
  const { futures, perpetuals, leverage } = definition.features;
  if (!futures && !perpetuals) return { min: 1, max: 1 };
  return { min: leverage.min, max: Math.min(leverage.max, MODE_LEVERAGE_CAP[mode]) };
}

/** Whether a wallet on this exchange can run in this mode at all. */
export function modeFits(definition: Definition, mode: TradingMode): boolean {
  const { min, max } = leverageRange(definition, mode);
  return max >= min;
}

export interface PolicyContext {
  limits: UserLimits;
  definition: Definition;
}

/**
 * What an agent may write now (UserWallet.aiBounds): the same numbers the rules below check, so
 * what the API shows and what a write is held to can't disagree.
 */
export interface AiBoundsValue {
  maxPositionSize: number;
  leverage: { min: number; max: number };
  /** A write whose currentRisk passes this pauses an ACTIVE wallet (planAiWrite). */
  maxTotalRisk: number;
}

export function aiBounds({ limits, definition }: PolicyContext): AiBoundsValue {
  return {
    maxPositionSize: limits.max_total_risk,
    leverage: leverageRange(definition, limits.trading_mode),
    maxTotalRisk: limits.max_total_risk,
  };
}

/** Whether a resulting currentRisk stops the wallet. */
export function riskPasses(risk: number, bounds: AiBoundsValue): boolean {
  return risk > bounds.maxTotalRisk;
}

type Rule = (value: number, context: PolicyContext) => string | null;

const finite: Rule = (v) => (Number.isFinite(v) ? null : 'must be a finite number');
const nonNegative: Rule = (v) => (Number.isFinite(v) && v >= 0 ? null : 'must be at least 0');
const count: Rule = (v) =>
  Number.isInteger(v) && v >= 0 ? null : 'must be a whole number, at least 0';
const percentScore: Rule = (v) =>
  Number.isInteger(v) && v >= 0 && v <= 100 ? null : 'must be a whole number from 0 to 100';

export const AI_POLICY = {
  // Observed facts: recorded as given.
  currentRisk: nonNegative,
  dailyPnl: finite,
  openPositions: count,
  // Decisions: inside the user's limits and the exchange's range.
  currentMaxPositionSize: (v, context) => {
    const { maxPositionSize } = aiBounds(context);
    return (
      nonNegative(v, context) ??
      (v <= maxPositionSize ? null : `must be at most maxTotalRisk (${maxPositionSize})`)
    );
  },
  currentLeverage: (v, context) => {
    const { min, max } = aiBounds(context).leverage;
    return Number.isInteger(v) && v >= min && v <= max
      ? null
      : `must be a whole number from ${min} to ${max} (${context.limits.trading_mode} mode on this exchange)`;
  },
  adaptiveStopLoss: (v) =>
    Number.isFinite(v) && v > 0 && v <= 100
      ? null
      : 'must be greater than 0 and at most 100 (percent)',
  riskScore: percentScore,
  confidenceLevel: percentScore,
} satisfies Record<string, Rule>;

export type PolicyField = keyof typeof AI_POLICY;
