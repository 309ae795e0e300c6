import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config';
import { secretScrubber, type ConfiguredSecrets } from './secret-scrubber';

export type { Logger };
export { secretScrubber, type ConfiguredSecrets };

/**
 * Every path that can carry a secret. Request bodies and GraphQL variables are never logged
 * at all; this list is the second line of defence for anything that slips into a log object.
 */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'variables',
  '*.variables',
  'values',
  '*.values',
  'credentials',
  '*.credentials',
  'secret',
  '*.secret',
  'api_secret',
  '*.api_secret',
  'private_key',
  '*.private_key',
  'encryptionKeys',
  '*.encryptionKeys',
  'password_hash',
  '*.password_hash',
];

/**
 * `json`: one JSON line per entry (production, and whenever stdout is not a terminal). `pretty`:
 * lines a person can read, through pino-pretty (development on a terminal). Both get the same
 * redaction and the same scrubber: pino-pretty formats the line the scrubber has already cleaned.
 */
export type LogFormat = 'json' | 'pretty';

/** What main.ts picks: pretty only for a developer watching a terminal. */
export function logFormatFor(nodeEnv: Config['nodeEnv'], stdoutIsTerminal: boolean): LogFormat {
  return nodeEnv === 'development' && stdoutIsTerminal ? 'pretty' : 'json';
}

export function createLogger(
  config: Pick<Config, 'logLevel'> & ConfiguredSecrets,
  destination?: pino.DestinationStream,
  format: LogFormat = 'json',
): Logger {
  const options = {
    level: config.logLevel,
    base: { service: 'wallet-service' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    hooks: { streamWrite: secretScrubber(config) },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (format === 'json') return pino(options, destination);
  // Synchronous, like pino's own stdout: nothing is lost when the process exits right after a line.
  return pino(
    options,
    pretty({
      destination: destination ?? 1,
      sync: true,
      colorize: destination === undefined,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service',
    }),
  );
}
