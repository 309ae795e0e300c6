import 'reflect-metadata';
import { ConfigError, loadConfig } from '../config';
import { createLogger } from '../logger';
import { startEmbeddedEngine } from './embedded';

/** `npm run db`: the embedded engine alone. Prints its URI on a line by itself; runs until stopped. */
async function main(): Promise<void> {
  const { config } = loadConfig();
  const logger = createLogger({ logLevel: 'warn' });
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

main().catch((error) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : `database failed to start: ${(error as Error).message}`}\n`);
  process.exit(1);
});
