import mongoose from 'mongoose';
import type { Logger } from '../core/logger';
import { watchConnectionPool } from '../core/metrics';

/**
 * One mongoose connection for the process. Typegoose models bind to mongoose's default
 * connection, so this is the connection every model uses.
 */
export async function connectDatabase(
  uri: string,
  logger: Logger,
  options: { monitorCommands?: boolean } = {},
): Promise<typeof mongoose> {
  mongoose.set('strictQuery', true);
  // Indexes are created explicitly at start-up (ensureIndexes), where a failure stops the start.
  mongoose.set('autoIndex', false);
  mongoose.set('autoCreate', false);
  // While the database is away, a request fails within serverSelectionTimeoutMS ("database
  // unavailable") instead of waiting in mongoose's buffer; the driver reconnects by itself.
  mongoose.set('bufferCommands', false);
  // Command monitoring lets tests count database commands per request. It costs a second decoding
  // of every reply (for the event), so it is on only when asked; the benchmark counts through a
  // proxy on the wire instead.
  await mongoose.connect(uri, {
    serverSelectionTimeoutMS: 3_000,
    maxPoolSize: 20,
    monitorCommands: options.monitorCommands ?? false,
  });
  watchConnectionPool(mongoose.connection.getClient());
  logger.info({ database: mongoose.connection.name }, 'database connected');
  return mongoose;
}

export async function disconnectDatabase(): Promise<void> {
  await mongoose.disconnect();
}

/** True when the database answers a ping; used by GET /ready. */
export async function pingDatabase(): Promise<boolean> {
  const db = mongoose.connection.db;
  if (!db || mongoose.connection.readyState !== mongoose.ConnectionStates.connected) return false;
  try {
    await db.command({ ping: 1 }, { timeoutMS: 2_000 });
    return true;
  } catch {
    return false;
  }
}

/** Creates every model's indexes; called once at start-up before the server accepts requests. */
interface IndexedModel {
  createCollection(): Promise<unknown>;
  createIndexes(): Promise<unknown>;
}

export async function ensureIndexes(models: IndexedModel[]): Promise<void> {
  for (const model of models) {
    await model.createCollection().catch((error: { codeName?: string; code?: number }) => {
      if (error.code !== 48 && error.codeName !== 'NamespaceExists') throw error;
    });
    await model.createIndexes();
  }
}
