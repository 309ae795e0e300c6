import 'reflect-metadata';
import { setFlagsFromString } from 'node:v8';
import { startTracing } from './app/tracing';
import { runEntryPoint } from './entry-point';

/**
 * How much V8 lets the old generation grow past what its last full collection kept before it marks
 * the whole heap again: by as much again (2 ×), where V8 chose about 1.2 × on its own. An instance
 * holding thousands of live connections has a large heap that barely changes (about 15 KiB a
 * connection: 180 MB at 10,000), and every full collection marks all of it, on the cores the
 * requests need; collections half as often cost that CPU half as often, for at most the heap's
 * live size again in memory (docs/operations.md). An operator's own `--heap-growing-percent` wins.
 */
export const HEAP_GROWING_PERCENT = 100;

if (!process.execArgv.some((arg) => /^--heap[-_]growing[-_]percent\b/.test(arg)))
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);

/** Process entry: see serve.ts. */
runEntryPoint('wallet-service start-up', async (loaded) => {
  // Before serve.ts loads what tracing instruments (http, graphql, mongodb, pino): the
  // instrumentations patch those modules as they are required.
  const tracing = await startTracing(loaded.config.tracing);
  const { serve } = await import('./serve');
  await serve(loaded, tracing);
});
