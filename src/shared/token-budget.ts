import { RateLimitedError } from '../core/errors';
import { metrics } from '../core/metrics';

/**
 * A per-token request budget, in memory: a token bucket per principal that refills continuously.
 * It adds no database command to a request; each instance keeps its own (see docs/operations.md,
 * "Several instances").
 */
export class TokenBudget {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly perMinute: (key: string) => number) {
    // Full buckets carry no information: drop them now and then so the map stays small.
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  take(key: string, now = Date.now()): void {
    const capacity = this.perMinute(key);
    const bucket = this.buckets.get(key) ?? { tokens: capacity, at: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) * capacity) / 60_000);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.buckets.set(key, bucket);
      metrics.rateLimitRefusals.inc({ kind: 'token_budget' });
      throw new RateLimitedError(
        `too many requests for this token: at most ${capacity} per minute`,
        Math.ceil(((1 - bucket.tokens) * 60) / capacity),
      );
    }
    bucket.tokens -= 1;
    this.buckets.set(key, bucket);
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  private sweep(now = Date.now()): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) * this.perMinute(key)) / 60_000 >= this.perMinute(key))
        this.buckets.delete(key);
    }
  }
}
