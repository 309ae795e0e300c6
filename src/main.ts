import 'reflect-metadata';
import { startTracing } from './app/tracing';
import { runEntryPoint } from './entry-point';

/** Process entry: see serve.ts. */
runEntryPoint('wallet-service start-up', async (loaded) => {
  // Before serve.ts loads what tracing instruments (http, graphql, mongodb, pino): the
  // instrumentations patch those modules as they are required.
  const tracing = await startTracing(loaded.config.tracing);
  const { serve } = await import('./serve');
  await serve(loaded, tracing);
});
