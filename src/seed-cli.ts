import 'reflect-metadata';
import type { LoadedConfig } from './core/config';
import { systemCtx } from './core/context';
import { connectDatabase, disconnectDatabase, ensureIndexes } from './db/connection';
import { resolveDatabase } from './db/embedded';
import { runEntryPoint } from './entry-point';
import { createLogger } from './core/logger';
import { WalletDefinitionModel } from './modules/catalog/wallet-definition.model';
import { WalletDefinitionService } from './modules/catalog/wallet-definition.service';
import { clampWalletsToDefinition } from './modules/wallets/definition-changes';

/** `npm run seed`: inserts or refreshes the built-in catalog in the configured database. */
async function main({ config }: LoadedConfig): Promise<void> {
  const logger = createLogger({ ...config, logLevel: 'warn' });
  const { uri, engine } = await resolveDatabase(config, logger);
  try {
    await connectDatabase(uri, logger);
    await ensureIndexes([WalletDefinitionModel]);
    const definitions = new WalletDefinitionService({
      onFeaturesChanged: clampWalletsToDefinition,
    });
    const seeded = await definitions.seed(systemCtx(logger, 'catalog seed'));
    process.stdout.write(`seeded: ${seeded.map((d) => d.slug).join(', ')}\n`);
    await disconnectDatabase();
  } finally {
    await engine?.stop();
  }
}

runEntryPoint('seed', main);
