import 'reflect-metadata';
import type { LoadedConfig } from '../core/config';
import { runEntryPoint } from '../entry-point';
import { createLogger } from '../core/logger';
import { startEmbeddedEngine } from './embedded';

/**
 * `npm run db`: the embedded engine alone. Prints its URI on a line by itself; runs until stopped.
 */
async function main({ config }: LoadedConfig): Promise<void> {
  const logger = createLogger({ ...config, logLevel: 'warn' });
  const engine = await startEmbeddedEngine({ dataDir: config.dataDir, ...config.embedded, logger });
  if (engine.kind === 'shared') {
    process.stderr.write('an embedded database on this data directory is already running:\n');
    process.stdout.write(`${engine.uri}\n`);
    return;
  }
  process.stdout.write(`${engine.uri}\n`);
  const stop = async () => {
    await engine.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

runEntryPoint('database start-up', main);
