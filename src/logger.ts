import pino, { type Logger } from 'pino';
import type { Config } from './config';

export type { Logger };

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

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'wallet-service' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
