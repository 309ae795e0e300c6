import type { AiManagedState, UserLimits, WalletStatus } from '../wallets/user-wallet.model';

/** The API's names for what the events record. */
export function apiLimits(limits: UserLimits): Record<string, unknown> {
  return {
    maxTotalRisk: limits.max_total_risk,
    allowedSymbols: limits.allowed_symbols ?? null,
    tradingMode: limits.trading_mode.toUpperCase(),
  };
}

const AI_STATE_NAMES: Record<keyof AiManagedState, string> = {
  current_risk: 'currentRisk',
  daily_pnl: 'dailyPnl',
  open_positions: 'openPositions',
  current_max_position_size: 'currentMaxPositionSize',
  current_leverage: 'currentLeverage',
  adaptive_stop_loss: 'adaptiveStopLoss',
  risk_score: 'riskScore',
  market_sentiment: 'marketSentiment',
  confidence_level: 'confidenceLevel',
  last_ai_decision: 'lastAiDecision',
};

export function apiAiState(state: Partial<AiManagedState>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(state).map(([key, value]) => [
      AI_STATE_NAMES[key as keyof AiManagedState],
      key === 'market_sentiment'
        ? String(value).toUpperCase()
        : value instanceof Date
          ? value.toISOString()
          : value,
    ]),
  );
}

export function apiStatus(
  status: WalletStatus,
  pauseReason: string | null,
): Record<string, unknown> {
  return { status: status.toUpperCase(), pauseReason };
}
