import { setFlagsFromString } from 'node:v8';

/**
 * V8's heap growing factor, by the WebSocket connections the instance holds. With thousands of
 * them the heap is mostly their state, which barely changes while they wait (about 15 KiB a
 * connection: 180 MB at 10,000), and every full collection marks all of it on the cores the
 * requests need: the old generation may then grow by as much again as the last full collection
 * kept before the next one (`--heap-growing-percent=100`), where V8 chose about 1.2 × on its own,
 * so it marks that heap half as often. With few connections V8's own choice is kept: there the old
 * generation is mostly what requests leave behind (a 1,000-wallet list's documents), and letting it
 * grow further cost more CPU than the collections it saved (docs/operations.md).
 */

/** From this many connections on, the heap grows by its live size again between collections. */
export const MANY_CONNECTIONS = 2_000;
/** Below this many again, V8 chooses once more (apart from MANY_CONNECTIONS, so it does not flap). */
export const FEW_CONNECTIONS = 1_000;
export const HEAP_GROWING_PERCENT = 100;
/** How often the connections are counted. */
export const HEAP_GROWTH_CHECK_MS = 1_000;

/** Whether the process was started with a growing factor of the operator's: then it is theirs. */
export function operatorChoseGrowth(execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.some((arg) => /^--heap[-_]growing[-_]percent\b/.test(arg));
}

/** V8's flag; 0 gives the choice back to V8. */
function setGrowingPercent(percent: number): void {
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * Told the number of connections now and then; sets the factor when it crosses MANY_CONNECTIONS
 * upwards or FEW_CONNECTIONS downwards, and never when the operator chose one.
 */
export function heapGrowthFollowing(
  setPercent: (percent: number) => void = setGrowingPercent,
  operatorChose: boolean = operatorChoseGrowth(),
): (connections: number) => void {
  if (operatorChose) return () => undefined;
  let raised = false;
  return (connections) => {
    if (!raised && connections >= MANY_CONNECTIONS) {
      raised = true;
      setPercent(HEAP_GROWING_PERCENT);
    } else if (raised && connections < FEW_CONNECTIONS) {
      raised = false;
      setPercent(0);
    }
  };
}
