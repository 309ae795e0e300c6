import type { Config } from './config';

/*
 * Apart from the logger (pino), so an entry point can scrub its start-up failure before anything
 * that tracing instruments is loaded (main.ts).
 */

/** The configuration's own secrets: what a log line or a start-up message must never carry. */
export type ConfiguredSecrets = Partial<
  Pick<Config, 'mongodbUri' | 'encryptionKeys' | 'jwt' | 'admin' | 'tracing'>
>;

/** Shorter values are not secrets worth the name, and hiding them would mangle every line. */
const MIN_SCRUBBED_LENGTH = 4;

/**
 * A function that replaces every configured secret in a text with `[redacted]`: the encryption
 * keys, the JWT secret, the admin password, the password of MONGODB_URI and the OTLP headers' values, each as written, URL-
 * encoded, URL-decoded and JSON-escaped (a log line is JSON). Paths can only catch fields by name;
 * this catches the values wherever they land, such as inside a driver's error message.
 */
export function secretScrubber(config: ConfiguredSecrets): (text: string) => string {
  const values = [
    ...(config.encryptionKeys ?? []),
    config.jwt?.secret,
    config.admin?.password,
    ...uriPasswords(config.mongodbUri),
    ...Object.values(config.tracing?.headers ?? {}),
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
