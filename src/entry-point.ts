import { ConfigError, loadConfig, type LoadedConfig } from './core/config';
import { secretScrubber } from './core/secret-scrubber';

/**
 * The frame of every command-line entry point (the service, `db`, `seed`, `rotate-keys`): loads the
 * configuration, runs `main` with it, and on failure prints one message to stderr and exits 1. The
 * message is the configuration's own list of problems, or `<name> failed: <error>` with every
 * configured secret removed (a driver's error may quote the database URI it was given).
 */
export function runEntryPoint(name: string, main: (loaded: LoadedConfig) => Promise<void>): void {
  let scrub = (text: string) => text;
  const fail = (error: unknown) => {
    const message =
      error instanceof ConfigError
        ? error.message
        : `${name} failed: ${error instanceof Error ? error.message : String(error)}`;
    process.stderr.write(`${scrub(message)}\n`);
    process.exit(1);
  };
  try {
    const loaded = loadConfig();
    scrub = secretScrubber(loaded.config);
    main(loaded).catch(fail);
  } catch (error) {
    fail(error);
  }
}
