import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { TradingMode, type UserLimits } from './user-wallet.model';

/**
 * The platform's policy for what an AI agent may set, in one table. Each rule returns null when
 * the value is allowed, else the limit it breaks (the error names the field and this limit) and
 * the numeric bounds among it that the value is outside of.
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

/**
 * A numeric bound a value breaks: above a maximum (AT_MOST) or below a minimum (AT_LEAST). A rule
 * that is no such bound (finite, whole) breaks none of these, though it refuses the value.
 */
export interface BrokenBound {
  rule: 'AT_MOST' | 'AT_LEAST';
  bound: number;
}

/** Why a rule refuses a value: the limit, as the error says it, and every bound it breaks. */
export interface Broken {
  limit: string;
  bounds: BrokenBound[];
}

type Rule = (value: number, context: PolicyContext) => Broken | null;

/** The bounds of [min, max] that v is outside of (a NaN is outside none: it is not a number). */
function outside(v: number, min: number, max: number): BrokenBound[] {
  const broken: BrokenBound[] = [];
  if (v < min) broken.push({ rule: 'AT_LEAST', bound: min });
  if (v > max) broken.push({ rule: 'AT_MOST', bound: max });
  return broken;
}

const refuse = (limit: string, bounds: BrokenBound[] = []): Broken => ({ limit, bounds });

const finite: Rule = (v) => (Number.isFinite(v) ? null : refuse('must be a finite number'));
const nonNegative: Rule = (v) =>
  Number.isFinite(v) && v >= 0 ? null : refuse('must be at least 0', outside(v, 0, Infinity));
const count: Rule = (v) =>
  Number.isInteger(v) && v >= 0
    ? null
    : refuse('must be a whole number, at least 0', outside(v, 0, Infinity));
const percentScore: Rule = (v) =>
  Number.isInteger(v) && v >= 0 && v <= 100
    ? null
    : refuse('must be a whole number from 0 to 100', outside(v, 0, 100));

export const AI_POLICY = {
  // Observed facts: recorded as given.
  currentRisk: nonNegative,
  dailyPnl: finite,
  openPositions: count,
  // Decisions: inside the user's limits and the exchange's range.
  currentMaxPositionSize: (v, context) => {
    const { maxPositionSize } = aiBounds(context);
    const broken = nonNegative(v, context);
    if (v <= maxPositionSize) return broken;
    const over: BrokenBound = { rule: 'AT_MOST', bound: maxPositionSize };
    return broken
      ? { ...broken, bounds: [...broken.bounds, over] }
      : refuse(`must be at most maxTotalRisk (${maxPositionSize})`, [over]);
  },
  currentLeverage: (v, context) => {
    const { min, max } = aiBounds(context).leverage;
    return Number.isInteger(v) && v >= min && v <= max
      ? null
      : refuse(
          `must be a whole number from ${min} to ${max} (${context.limits.trading_mode} mode on this exchange)`,
          outside(v, min, max),
        );
  },
  // Above 0 is an open bound, which AT_LEAST does not say: only its maximum is listed.
  adaptiveStopLoss: (v) =>
    Number.isFinite(v) && v > 0 && v <= 100
      ? null
      : refuse('must be greater than 0 and at most 100 (percent)', outside(v, -Infinity, 100)),
  riskScore: percentScore,
  confidenceLevel: percentScore,
} satisfies Record<string, Rule>;

export type PolicyField = keyof typeof AI_POLICY;

/** The most violations one write can list: a rule breaks at most its minimum and its maximum. */
export const MAX_VIOLATIONS = 2 * Object.keys(AI_POLICY).length;
