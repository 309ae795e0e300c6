import { RateLimitedError } from '../core/errors';

/**
 * At most `permits` tasks at once; the rest wait in line, each for at most `maxWaitMs`, and no more
 * than `maxWaiting` of them. Past either, RATE_LIMITED: CPU-heavy work (argon2) can't be queued
 * without bound by a flood of requests.
 */
export class Semaphore {
  private inFlight = 0;
  private readonly waiting: Array<{ start: () => void; timer: NodeJS.Timeout }> = [];

  constructor(
    private readonly permits: number,
    private readonly maxWaiting: number,
    private readonly maxWaitMs: number,
    private readonly refusal: () => RateLimitedError,
  ) {}

  get active(): number {
    return this.inFlight;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.inFlight < this.permits) {
      this.inFlight++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxWaiting) return Promise.reject(this.refusal());
    return new Promise<void>((resolve, reject) => {
      const entry = {
        start: () => {
          clearTimeout(entry.timer);
          this.inFlight++;
          resolve();
        },
        timer: setTimeout(() => {
          const at = this.waiting.indexOf(entry);
          if (at >= 0) this.waiting.splice(at, 1);
          reject(this.refusal());
        }, this.maxWaitMs),
      };
      this.waiting.push(entry);
    });
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.start();
  }
}
