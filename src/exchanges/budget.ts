/**
 * What a check draws on before each request it sends to the exchange (the catalog's rate limit,
 * held across instances: modules/catalog/exchange-budget.ts). take() resolves when the request may
 * go, or rejects with ExchangeBudgetExhausted, and then the request is not sent.
 */
export interface RequestBudget {
  take(): Promise<void>;
}

/** No slot of the exchange's budget came free in time; nothing was sent for the request. */
export class ExchangeBudgetExhausted extends Error {
  constructor(
    /** The catalog entry's slug. */
    readonly exchange: string,
    /** When enough slots are free again, from now. */
    readonly retryAfterMs: number,
    /** Requests of the same check went before this one was held back. */
    readonly afterSending: boolean,
  ) {
    super(`the request budget of ${exchange} is used up for now`);
    this.name = 'ExchangeBudgetExhausted';
  }
}
