import type { LoadedConfig } from './core/config';
import { resolveDatabase, type EmbeddedEngine } from './db/embedded';
import { createLogger, logFormatFor } from './core/logger';
import { startApp, type App } from './app/server';
import type { Tracing } from './app/tracing';

/** The service's process: config -> database -> HTTP server -> graceful shutdown. */
export async function serve({ config, warnings }: LoadedConfig, tracing?: Tracing): Promise<void> {
  const logger = createLogger(
    config,
    undefined,
    logFormatFor(config.nodeEnv, process.stdout.isTTY === true),
  );
  for (const warning of warnings) logger.warn(warning);
  if (tracing && config.tracing) {
    tracing.logTo(logger);
    const { origin, pathname } = new URL(config.tracing.url);
    logger.info(
      { endpoint: `${origin}${pathname}`, protocol: config.tracing.protocol },
      'tracing: spans go to the OTLP endpoint',
    );
  }
  // A promise a request left behind must not end the service for everyone (Node's default for an
  // unhandled rejection): it is a bug to fix, logged with its class and stack, and the process
  // goes on.
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection');
  });

  const { uri, engine } = await resolveDatabase(config, logger);
  config.mongodbUri = uri;
  logger.info(
    { engine: engine ? engine.kind : 'MONGODB_URI' },
    engine ? `database engine: ${engineName(engine.kind)}` : 'database: MONGODB_URI',
  );

  let app: App;
  try {
    app = await startApp(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed');
    await tracing?.stop();
    await engine?.stop();
    process.exit(1);
  }

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    // If draining hangs past the grace period, leave anyway.
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownGraceMs + 5_000).unref();
    try {
      await app.stop();
      // What the last requests made is sent before the process goes.
      await tracing?.stop();
      await engine?.stop();
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function engineName(kind: EmbeddedEngine['kind']): string {
  if (kind === 'mongod') return 'mongod (mongodb-memory-server)';
  if (kind === 'mongo-java-server') return 'mongo-java-server (embedded, on the JDK)';
  return 'the embedded engine another process runs on this data directory';
}
