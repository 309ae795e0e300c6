import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import { RateLimitedError } from '../../core/errors';
import { metrics } from '../../core/metrics';
import { Semaphore } from '../../shared/semaphore';

/** OWASP's argon2id parameters: 19 MiB of memory, 2 iterations, 1 lane. */
const OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/**
 * Every argon2 computation of the process goes through here: about two per core at once, a short
 * line behind them, and RATE_LIMITED past that, so a burst of logins can't burn every CPU.
 */
export const PASSWORD_CHECKS_IN_FLIGHT = 2 * availableParallelism();
const passwordWork = new Semaphore(
  PASSWORD_CHECKS_IN_FLIGHT,
  8 * PASSWORD_CHECKS_IN_FLIGHT,
  2_000,
  () => {
    metrics.rateLimitRefusals.inc({ kind: 'password_checks' });
    return new RateLimitedError('too many sign-ins at once: try again in a moment', 1);
  },
);

/** How many argon2 computations run now (for tests of the bound). */
export function passwordChecksInFlight(): number {
  return passwordWork.active;
}

export function hashPassword(password: string): Promise<string> {
  return passwordWork.run(() => argon2.hash(password, OPTIONS));
}

export function verifyPassword(hash: string, password: string): Promise<boolean> {
  return passwordWork.run(async () => {
    try {
      return await argon2.verify(hash, password);
    } catch {
      // A malformed stored hash verifies nothing.
      return false;
    }
  });
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the same time as a real check, so a login for an unknown email can't be told from a
 * wrong password by its latency.
 */
export async function burnPasswordCheck(password: string): Promise<false> {
  dummyHash ??= argon2.hash('not-a-real-password-but-a-timing-equaliser', OPTIONS);
  await verifyPassword(await dummyHash, password);
  return false;
}
