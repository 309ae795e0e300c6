import 'reflect-metadata';
import { startEmbeddedEngine, type EmbeddedEngine } from '../../src/db/embedded';

declare global {
  var __TEST_ENGINE__: EmbeddedEngine | undefined;
}

/**
 * One MongoDB-protocol engine for the whole run: MONGODB_URI when given, else the embedded
 * engine in memory. Each test file then works in a database of its own (test/helpers/app.ts).
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.MONGODB_URI) {
    process.env.TEST_MONGODB_URI = process.env.MONGODB_URI;
    return;
  }
  const engine = await startEmbeddedEngine({ dataDir: null, searchPath: process.env.PATH });
  globalThis.__TEST_ENGINE__ = engine;
  process.env.TEST_MONGODB_URI = engine.uri;
}
