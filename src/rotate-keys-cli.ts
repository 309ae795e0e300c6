import 'reflect-metadata';
import type { LoadedConfig } from './core/config';
import { Keyring } from './crypto/keyring';
import { connectDatabase, disconnectDatabase } from './db/connection';
import { resolveDatabase } from './db/embedded';
import { runEntryPoint } from './entry-point';
import { systemCtx } from './core/context';
import { createLogger } from './core/logger';
import { ROTATION_JOB, rotateCredentialKeys } from './modules/credentials/credential-rotation';

/**
 * `npm run rotate-keys`: with ENCRYPTION_KEYS=new,old[,...] re-encrypts every stored secret under
 * the new key. Safe while the service runs; run it again until nothing is rotated, then drop the
 * old key.
 */
async function main({ config }: LoadedConfig): Promise<void> {
  const logger = createLogger({ ...config, logLevel: 'warn' });
  const keyring = new Keyring(config.encryptionKeys);
  const { uri, engine } = await resolveDatabase(config, logger);
  try {
    await connectDatabase(uri, logger);
    const report = await rotateCredentialKeys(systemCtx(logger, ROTATION_JOB), keyring);
    const busy = report.busy > 0 ? `, changing meanwhile ${report.busy} (run again)` : '';
    process.stdout.write(
      `rotated ${report.rotated}, skipped ${report.skipped}, could not read ${report.unreadable}${busy}\n`,
    );
    for (const id of report.unreadableIds)
      process.stdout.write(`  could not read credential ${id} with any key: left untouched\n`);
    for (const id of report.busyIds)
      process.stdout.write(`  credential ${id} kept changing: not rotated yet\n`);
    await disconnectDatabase();
  } finally {
    await engine?.stop();
  }
}

runEntryPoint('rotate-keys', main);
