import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
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

/** The configuration's own secrets: what a log line or a start-up message must never carry. */
export type ConfiguredSecrets = Partial<
  Pick<Config, 'mongodbUri' | 'encryptionKeys' | 'jwt' | 'admin'>
>;

/** Shorter values are not secrets worth the name, and hiding them would mangle every line. */
const MIN_SCRUBBED_LENGTH = 4;

/**
 * A function that replaces every configured secret in a text with `[redacted]`: the encryption
 * keys, the JWT secret, the admin password and the password of MONGODB_URI, each as written, URL-
 * encoded, URL-decoded and JSON-escaped (a log line is JSON). Paths can only catch fields by name;
 * this catches the values wherever they land, such as inside a driver's error message.
 */
export function secretScrubber(config: ConfiguredSecrets): (text: string) => string {
  const values = [
    ...(config.encryptionKeys ?? []),
    config.jwt?.secret,
    config.admin?.password,
    ...uriPasswords(config.mongodbUri),
  ];
  const forms = new Set<string>();
  for (const value of values) {
    if (!value) continue;
    for (const form of [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]) {
      if (form.length >= MIN_SCRUBBED_LENGTH) forms.add(form);
    }
  }
  // Longest first, so a secret that contains another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (text) => text;
  return (text) => {
    let scrubbed = text;
    for (const form of ordered)
      if (scrubbed.includes(form)) scrubbed = scrubbed.split(form).join('[redacted]');
    return scrubbed;
  };
}

/** The password of a mongodb:// URI as written (percent-encoded) and decoded. */
function uriPasswords(uri: string | undefined): string[] {
  const userinfo = uri && /^mongodb(?:\+srv)?:\/\/([^/?#]*)@/.exec(uri)?.[1];
  const colon = userinfo ? userinfo.indexOf(':') : -1;
  if (!userinfo || colon < 0) return [];
  const raw = userinfo.slice(colon + 1);
  try {
    return [raw, decodeURIComponent(raw)];
  } catch {
    return [raw];
  }
}

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
