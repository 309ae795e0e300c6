import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { canonicalIp, type TrustProxy } from '../shared/client-address';

/** The one place that reads the environment. Everything else receives a Config. */

export type NodeEnv = 'development' | 'test' | 'production';

/** Whether mongodb-memory-server may download a mongod: when no JDK is here, always, never. */
export type MongodDownload = 'auto' | 'true' | 'false';

export interface Config {
  nodeEnv: NodeEnv;
  port: number;
  host: string;
  /** Unset: an embedded engine is started (src/db/embedded.ts). */
  mongodbUri: string | undefined;
  dataDir: string;
  /** How the embedded engine finds a mongod; see src/db/embedded.ts. */
  embedded: { mongodBinary: string | undefined; download: MongodDownload; searchPath: string };
  /** Fernet keys, newest first: the first encrypts, every one decrypts. */
  encryptionKeys: string[];
  jwt: { secret: string; issuer: string; audience: string; expiresInSeconds: number };
  admin: { email: string; password: string } | undefined;
  /** Execution time limit of one request. */
  requestTimeoutMs: number;
  /**
   * The most an operation may cost, with its variables (see graphql/cost.ts); also the most list
   * items one answer may hold.
   */
  maxRequestCost: number;
  /** The largest answer sent over HTTP, in bytes; a larger one is replaced by an error. */
  maxResponseBytes: number;
  /** Browser origins allowed to call the API cross-origin; none by default. */
  corsOrigins: string[];
  /**
   * Which peers are load balancers we run, whose X-Forwarded-For entries name the client (see
   * shared/client-address.ts); `{ hops: 0 }`: none, the header is ignored.
   */
  trustProxy: TrustProxy;
  rateLimits: {
    /** Requests per minute per token, kept in memory per instance. */
    userPerMinute: number;
    agentPerMinute: number;
    /**
     * Failed logins per (email, client address) and per client address in 15 minutes, counted in
     * the database.
     */
    loginFailures: number;
    /**
     * Failed logins per email from every address, in an hour: high, so a stranger can't lock a user
     * out.
     */
    loginFailuresPerEmail: number;
    /** Registrations per client address per hour, counted in the database. */
    registrationsPerHour: number;
  };
  /**
   * Connection tests against exchanges. allowLoopback: whether a test may reach 127.0.0.0/8 and
   * ::1 (private, link-local and metadata addresses never). egressIps: the addresses the service
   * calls exchanges from, for users to whitelist on their keys (none when not configured).
   * requireIpRestrictedKeys: a mainnet key that can trade and is bound to no IP fails its test.
   * keyExpiryWarningDays: a key whose trading rights end within this many days passes its test
   * with a warning (and counts as expiring soon in the metrics).
   */
  exchanges: {
    timeoutMs: number;
    allowWithdrawalKeys: boolean;
    allowLoopback: boolean;
    egressIps: string[];
    requireIpRestrictedKeys: boolean;
    keyExpiryWarningDays: number;
  };
  /** The bearer token GET /metrics wants from anywhere but loopback; unset: loopback only. */
  metricsToken: string | undefined;
  /** Subscriptions over WebSocket: how often a connection's token is checked again. */
  subscriptions: { recheckSeconds: number };
  /**
   * Per-user caps on what a user can create; agentsPerUser counts a user's own agent tokens that
   * are unrevoked and unexpired.
   */
  caps: { credentialsPerUser: number; walletsPerUser: number; agentsPerUser: number };
  /**
   * The service's own connection tests of credentials that live wallets use: every intervalMs
   * (±10 %), at most `concurrency` in flight per instance.
   */
  credentialChecks: { intervalMs: number; concurrency: number };
  /** How long what the service keeps is kept, in days (TTL indexes; see db/retention.ts). */
  retention: { balanceHistoryDays: number; auditDays: number };
  /** Whether /graphiql (and GET /graphql for a browser) serves the explorer. */
  graphiql: boolean;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  shutdownGraceMs: number;
  /** OpenTelemetry traces (app/tracing.ts); undefined: off, nothing is started or sent. */
  tracing: TracingConfig | undefined;
}

/** OTEL_TRACES_SAMPLER's values, as the OpenTelemetry specification names them. */
export const TRACE_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type TraceSampler = (typeof TRACE_SAMPLERS)[number];

/**
 * The OTEL_* variables, read like every other setting (so .env works too) and handed to the SDK as
 * explicit values: it reads no variable itself.
 */
export interface TracingConfig {
  serviceName: string;
  /**
   * Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as written, else OTEL_EXPORTER_OTLP_ENDPOINT
   * with /v1/traces appended (as the specification says).
   */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  /** OTEL_EXPORTER_OTLP_HEADERS: sent with every export (a collector's API key: a secret). */
  headers: Record<string, string>;
  sampler: TraceSampler;
  /** OTEL_TRACES_SAMPLER_ARG: the ratio of the traceidratio samplers (1 unless given). */
  samplerRatio: number;
  /** OTEL_BSP_SCHEDULE_DELAY: how long finished spans may wait to be sent, in ms. */
  scheduleDelayMs: number;
}

export interface LoadedConfig {
  config: Config;
  /** Said once at start-up by main.ts, after the logger exists. Never carries a secret value. */
  warnings: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * A Fernet key is 32 random bytes in URL-safe base64 with its padding, as Python's
 * Fernet.generate_key() makes.
 */
const FERNET_KEY = /^[A-Za-z0-9_-]{43}=$/;
const MIN_JWT_SECRET_BYTES = 32;
const MIN_JWT_SECRET_DISTINCT = 16;
const MIN_PRODUCTION_ADMIN_PASSWORD = 12;
const DEV_ADMIN_EMAIL = 'admin@example.com';
/** EGRESS_IPS: more would be a list no user copies onto a key (and bounds egressAddresses). */
export const MAX_EGRESS_IPS = 50;

const emptyAsUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalString = z.preprocess(emptyAsUndefined, z.string().optional());

/** An OTLP/HTTP endpoint: http or https, nothing else (no file:, no grpc). */
const otlpUrl = z.string().refine((value) => {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}, 'must be an http:// or https:// URL');

const schema = z.object({
  NODE_ENV: z.preprocess(
    emptyAsUndefined,
    z.enum(['development', 'test', 'production']).default('development'),
  ),
  PORT: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(0).max(65535).default(4000)),
  HOST: z.preprocess(emptyAsUndefined, z.string().default('127.0.0.1')),
  MONGODB_URI: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
      .optional(),
  ),
  DATA_DIR: z.preprocess(emptyAsUndefined, z.string().default('.data')),
  MONGOD_BINARY: optionalString,
  MONGOD_DOWNLOAD: z.preprocess(
    emptyAsUndefined,
    z.enum(['auto', 'true', 'false']).default('auto'),
  ),
  PATH: z.string().default(''),
  ENCRYPTION_KEY: optionalString,
  ENCRYPTION_KEYS: optionalString,
  JWT_SECRET: optionalString,
  JWT_ISSUER: z.preprocess(emptyAsUndefined, z.string().default('wallet-service')),
  JWT_AUDIENCE: z.preprocess(emptyAsUndefined, z.string().default('wallet-platform')),
  JWT_EXPIRES_IN: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^\d+\s*(s|m|h|d)?$/, 'must be a number of seconds or a duration such as 15m, 12h, 7d')
      .default('12h'),
  ),
  ADMIN_EMAIL: z.preprocess(emptyAsUndefined, z.email('must be an email address').optional()),
  ADMIN_PASSWORD: optionalString,
  LOG_LEVEL: z.preprocess(
    emptyAsUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  ),
  EXCHANGE_TIMEOUT_MS: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(100).max(120_000).default(10_000),
  ),
  ALLOW_WITHDRAWAL_KEYS: z.preprocess(emptyAsUndefined, z.enum(['true', 'false']).default('false')),
  EXCHANGE_ALLOW_LOOPBACK: z.preprocess(emptyAsUndefined, z.enum(['true', 'false']).optional()),
  EGRESS_IPS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .default('')
      .transform((value, ctx) => {
        const ips = parseEgressIps(value);
        if (typeof ips !== 'string') return ips;
        ctx.addIssue({ code: 'custom', message: ips });
        return z.NEVER;
      }),
  ),
  REQUIRE_IP_RESTRICTED_KEYS: z.preprocess(
    emptyAsUndefined,
    z.enum(['true', 'false']).default('false'),
  ),
  // Hyperliquid's API wallets live 180 days at most: a longer window would warn of every one.
  KEY_EXPIRY_WARNING_DAYS: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(365).default(14),
  ),
  REQUEST_TIMEOUT_MS: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(100).max(300_000).default(15_000),
  ),
  MAX_REQUEST_COST: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(100).max(100_000_000).default(600_000),
  ),
  MAX_RESPONSE_BYTES: z.preprocess(
    emptyAsUndefined,
    z.coerce
      .number()
      .int()
      .min(64 * 1024)
      .max(1024 * 1024 * 1024)
      .default(8 * 1024 * 1024),
  ),
  CORS_ORIGINS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(
        /^https?:\/\/[^\s,/]+(,\s*https?:\/\/[^\s,/]+)*$/,
        'must be a comma-separated list of origins such as https://app.example.com',
      )
      .optional(),
  ),
  TRUST_PROXY: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .default('false')
      .transform((value, ctx) => {
        const trust = parseTrustProxy(value);
        if (typeof trust !== 'string') return trust;
        ctx.addIssue({ code: 'custom', message: trust });
        return z.NEVER;
      }),
  ),
  RATE_LIMIT_USER_PER_MINUTE: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).default(1_200),
  ),
  RATE_LIMIT_AGENT_PER_MINUTE: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).default(60_000),
  ),
  RATE_LIMIT_LOGIN_FAILURES: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).default(10),
  ),
  RATE_LIMIT_LOGIN_FAILURES_PER_EMAIL: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).default(100),
  ),
  RATE_LIMIT_REGISTRATIONS_PER_HOUR: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).default(20),
  ),
  METRICS_TOKEN: z.preprocess(
    emptyAsUndefined,
    z.string().min(16, 'must be at least 16 characters').optional(),
  ),
  SUBSCRIPTION_AUTH_RECHECK: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^\d+\s*(s|m|h|d)?$/, 'must be a number of seconds or a duration such as 30s, 1m')
      .refine(
        (v) => durationSeconds(v) >= 1 && durationSeconds(v) <= 60,
        'must be 1 s to 60 s (a token is checked at least every minute)',
      )
      .default('60s'),
  ),
  MAX_CREDENTIALS_PER_USER: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(10_000).default(50),
  ),
  MAX_WALLETS_PER_USER: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(10_000).default(50),
  ),
  MAX_AGENTS_PER_USER: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(10_000).default(10),
  ),
  GRAPHIQL: z.preprocess(emptyAsUndefined, z.enum(['true', 'false']).optional()),
  SHUTDOWN_GRACE_MS: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(0).max(120_000).default(10_000),
  ),
  CREDENTIAL_CHECK_INTERVAL: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(
        /^[1-9]\d*\s*(s|m|h|d)?$/,
        'must be a number of seconds (at least 1) or a duration such as 30s, 15m, 6h',
      )
      .default('6h'),
  ),
  CREDENTIAL_CHECK_CONCURRENCY: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(64).default(4),
  ),
  BALANCE_HISTORY_DAYS: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(36_500).default(30),
  ),
  AUDIT_RETENTION_DAYS: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(36_500).default(400),
  ),
  OTEL_SDK_DISABLED: z.preprocess(
    (v) => (typeof v === 'string' ? v.trim().toLowerCase() || undefined : v),
    z.enum(['true', 'false']).default('false'),
  ),
  OTEL_SERVICE_NAME: z.preprocess(emptyAsUndefined, z.string().max(200).default('wallet-service')),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess(emptyAsUndefined, otlpUrl.optional()),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.preprocess(emptyAsUndefined, otlpUrl.optional()),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.preprocess(
    emptyAsUndefined,
    z
      .enum(
        ['http/protobuf', 'http/json'],
        'must be http/protobuf or http/json (the gRPC exporter is not built in)',
      )
      .default('http/protobuf'),
  ),
  OTEL_EXPORTER_OTLP_HEADERS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .default('')
      .transform((value, ctx) => {
        const headers = parseOtlpHeaders(value);
        if (typeof headers !== 'string') return headers;
        ctx.addIssue({ code: 'custom', message: headers });
        return z.NEVER;
      }),
  ),
  OTEL_TRACES_SAMPLER: z.preprocess(
    emptyAsUndefined,
    z.enum(TRACE_SAMPLERS).default('parentbased_always_on'),
  ),
  OTEL_TRACES_SAMPLER_ARG: z.preprocess(
    emptyAsUndefined,
    z.coerce.number('must be a number from 0 to 1').min(0).max(1).default(1),
  ),
  OTEL_BSP_SCHEDULE_DELAY: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(300_000).default(5_000),
  ),
});

/**
 * Parses an environment into a Config. Pure apart from the secrets file: outside production,
 * missing secrets are generated once and kept in DATA_DIR/secrets.json so a newcomer never has
 * to edit a file, and a warning says so.
 */
export function parseConfig(env: Env, cwd = process.cwd()): LoadedConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    // zod's messages name the variable and the rule, never the value.
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const warnings: string[] = [];
  const production = e.NODE_ENV === 'production';
  const dataDir = resolve(cwd, e.DATA_DIR);

  let jwtSecret = e.JWT_SECRET;
  let keys = splitKeys(e.ENCRYPTION_KEYS ?? e.ENCRYPTION_KEY);
  let adminEmail = e.ADMIN_EMAIL;
  let adminPassword = e.ADMIN_PASSWORD;

  if (!production) {
    const wanted: Array<keyof GeneratedSecrets> = [];
    if (!jwtSecret) wanted.push('JWT_SECRET');
    if (keys.length === 0) wanted.push('ENCRYPTION_KEY');
    const devAdmin = e.NODE_ENV === 'development' && !adminEmail;
    if (devAdmin) wanted.push('ADMIN_PASSWORD');
    if (wanted.length > 0) {
      const file = join(dataDir, 'secrets.json');
      const secrets = readOrCreateSecrets(file, wanted);
      jwtSecret ??= secrets.JWT_SECRET;
      if (keys.length === 0 && secrets.ENCRYPTION_KEY) keys = [secrets.ENCRYPTION_KEY];
      if (devAdmin) {
        adminEmail = DEV_ADMIN_EMAIL;
        adminPassword = secrets.ADMIN_PASSWORD;
        warnings.push(
          `ADMIN_EMAIL is not set: using ${DEV_ADMIN_EMAIL}, whose password is ADMIN_PASSWORD in ${file}`,
        );
      }
      const generated = wanted.filter((w) => w !== 'ADMIN_PASSWORD');
      if (generated.length > 0) {
        warnings.push(
          `${generated.join(' and ')} not set: using generated values kept in ${file} (development only)`,
        );
      }
    }
  }

  if (!jwtSecret) problems.push('JWT_SECRET: required in production');
  else if (Buffer.byteLength(jwtSecret, 'utf8') < MIN_JWT_SECRET_BYTES) {
    problems.push(`JWT_SECRET: too weak, must be at least ${MIN_JWT_SECRET_BYTES} bytes`);
  } else if (production && new Set(jwtSecret).size < MIN_JWT_SECRET_DISTINCT) {
    problems.push(
      `JWT_SECRET: too weak, must have at least ${MIN_JWT_SECRET_DISTINCT} distinct characters`,
    );
  }
  if (keys.length === 0) problems.push('ENCRYPTION_KEY: required in production (a Fernet key)');
  keys.forEach((k, i) => {
    if (!FERNET_KEY.test(k)) {
      const name = e.ENCRYPTION_KEYS ? `ENCRYPTION_KEYS[${i}]` : 'ENCRYPTION_KEY';
      problems.push(
        `${name}: malformed, must be a Fernet key (32 bytes in URL-safe base64, 44 characters)`,
      );
    }
  });
  if (adminEmail && !adminPassword)
    problems.push('ADMIN_PASSWORD: required when ADMIN_EMAIL is set');
  if (!adminEmail && adminPassword)
    problems.push('ADMIN_EMAIL: required when ADMIN_PASSWORD is set');
  if (adminPassword && adminPassword.length < 8)
    problems.push('ADMIN_PASSWORD: must be at least 8 characters');
  else if (production && adminPassword && adminPassword.length < MIN_PRODUCTION_ADMIN_PASSWORD) {
    problems.push(
      `ADMIN_PASSWORD: must be at least ${MIN_PRODUCTION_ADMIN_PASSWORD} characters in production`,
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  const tracing = tracingConfig(e);
  if (!tracing && e.OTEL_SDK_DISABLED === 'false' && Object.entries(env).some(isTracingSetting))
    warnings.push(
      'OTEL_* tracing settings are set but no OTLP endpoint is: tracing is off (set OTEL_EXPORTER_OTLP_ENDPOINT)',
    );
  if (e.REQUIRE_IP_RESTRICTED_KEYS === 'true' && e.EGRESS_IPS.length === 0)
    warnings.push(
      'REQUIRE_IP_RESTRICTED_KEYS is true but EGRESS_IPS is empty: keys bound to no IP are refused, and users are not told which addresses to bind them to',
    );

  return {
    warnings,
    config: {
      nodeEnv: e.NODE_ENV,
      port: e.PORT,
      host: e.HOST,
      mongodbUri: e.MONGODB_URI,
      dataDir,
      embedded: {
        mongodBinary: e.MONGOD_BINARY,
        download: e.MONGOD_DOWNLOAD,
        searchPath: e.PATH,
      },
      encryptionKeys: keys,
      jwt: {
        secret: jwtSecret!,
        issuer: e.JWT_ISSUER,
        audience: e.JWT_AUDIENCE,
        expiresInSeconds: durationSeconds(e.JWT_EXPIRES_IN),
      },
      admin:
        adminEmail && adminPassword ? { email: adminEmail, password: adminPassword } : undefined,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      maxRequestCost: e.MAX_REQUEST_COST,
      maxResponseBytes: e.MAX_RESPONSE_BYTES,
      corsOrigins: (e.CORS_ORIGINS ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      trustProxy: e.TRUST_PROXY,
      rateLimits: {
        userPerMinute: e.RATE_LIMIT_USER_PER_MINUTE,
        agentPerMinute: e.RATE_LIMIT_AGENT_PER_MINUTE,
        loginFailures: e.RATE_LIMIT_LOGIN_FAILURES,
        loginFailuresPerEmail: e.RATE_LIMIT_LOGIN_FAILURES_PER_EMAIL,
        registrationsPerHour: e.RATE_LIMIT_REGISTRATIONS_PER_HOUR,
      },
      exchanges: {
        timeoutMs: e.EXCHANGE_TIMEOUT_MS,
        allowWithdrawalKeys: e.ALLOW_WITHDRAWAL_KEYS === 'true',
        // Outside production the exchange simulators and local gateways run on loopback.
        allowLoopback: (e.EXCHANGE_ALLOW_LOOPBACK ?? (production ? 'false' : 'true')) === 'true',
        egressIps: e.EGRESS_IPS,
        requireIpRestrictedKeys: e.REQUIRE_IP_RESTRICTED_KEYS === 'true',
        keyExpiryWarningDays: e.KEY_EXPIRY_WARNING_DAYS,
      },
      metricsToken: e.METRICS_TOKEN,
      subscriptions: { recheckSeconds: durationSeconds(e.SUBSCRIPTION_AUTH_RECHECK) },
      caps: {
        credentialsPerUser: e.MAX_CREDENTIALS_PER_USER,
        walletsPerUser: e.MAX_WALLETS_PER_USER,
        agentsPerUser: e.MAX_AGENTS_PER_USER,
      },
      credentialChecks: {
        intervalMs: durationSeconds(e.CREDENTIAL_CHECK_INTERVAL) * 1000,
        concurrency: e.CREDENTIAL_CHECK_CONCURRENCY,
      },
      retention: { balanceHistoryDays: e.BALANCE_HISTORY_DAYS, auditDays: e.AUDIT_RETENTION_DAYS },
      // In production introspection is off, so the explorer's docs come from the committed schema
      // file.
      graphiql: e.GRAPHIQL ? e.GRAPHIQL === 'true' : !production,
      logLevel: e.LOG_LEVEL ?? (e.NODE_ENV === 'test' ? 'silent' : 'info'),
      shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
      tracing,
    },
  };
}

type ParsedEnv = z.infer<typeof schema>;

/** On only when an endpoint is set (and the SDK not disabled): never the spec's localhost default. */
function tracingConfig(e: ParsedEnv): TracingConfig | undefined {
  if (e.OTEL_SDK_DISABLED === 'true') return undefined;
  const url =
    e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (e.OTEL_EXPORTER_OTLP_ENDPOINT &&
      `${e.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  if (!url) return undefined;
  return {
    serviceName: e.OTEL_SERVICE_NAME,
    url,
    protocol: e.OTEL_EXPORTER_OTLP_PROTOCOL,
    headers: e.OTEL_EXPORTER_OTLP_HEADERS,
    sampler: e.OTEL_TRACES_SAMPLER,
    samplerRatio: e.OTEL_TRACES_SAMPLER_ARG,
    scheduleDelayMs: e.OTEL_BSP_SCHEDULE_DELAY,
  };
}

const TRACING_SETTINGS = new Set([
  'OTEL_SERVICE_NAME',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_BSP_SCHEDULE_DELAY',
]);

function isTracingSetting([name, value]: [string, string | undefined]): boolean {
  return TRACING_SETTINGS.has(name) && value !== undefined && value.trim() !== '';
}

/**
 * OTEL_EXPORTER_OTLP_HEADERS: `key1=value1,key2=value2`, values percent-encoded (the W3C baggage
 * form the specification uses); the problem, never naming a value, when malformed.
 */
function parseOtlpHeaders(value: string): Record<string, string> | string {
  const headers: Record<string, string> = {};
  for (const entry of value.split(',')) {
    if (entry.trim() === '') continue;
    const equals = entry.indexOf('=');
    const name = equals > 0 ? entry.slice(0, equals).trim().toLowerCase() : '';
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name))
      return 'each entry must be name=value, with a header name before the =';
    try {
      headers[name] = decodeURIComponent(entry.slice(equals + 1).trim());
    } catch {
      return `the value of ${name} is not valid percent-encoding`;
    }
  }
  return headers;
}

/** process.env over .env (when present): the environment wins, as with dotenv. */
export function loadConfig(cwd = process.cwd()): LoadedConfig {
  const dotenvFile = join(cwd, '.env');
  const fromFile = existsSync(dotenvFile) ? parseDotenv(readFileSync(dotenvFile)) : {};
  return parseConfig({ ...fromFile, ...process.env }, cwd);
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "900", "15m", "12h", "7d" -> seconds. (jsonwebtoken would read a bare "900" as milliseconds.) */
function durationSeconds(value: string): number {
  const [, amount, unit = 's'] = /^(\d+)\s*([smhd])?$/.exec(value)!;
  return Number(amount) * UNIT_SECONDS[unit];
}

const MAX_PROXY_HOPS = 32;
const TRUST_PROXY_FORMS =
  'must be true (one proxy), false, a number of proxy hops, or a comma-separated list of proxy addresses and CIDRs such as 10.0.0.0/8';

/**
 * TRUST_PROXY: "true" is one hop (not Express' "every hop", which believes the entry the client
 * wrote), "false" or 0 none, a number that many hops, or a list of the proxies' addresses and CIDRs.
 * A problem is returned as its message.
 */
function parseTrustProxy(value: string): TrustProxy | string {
  const text = value.trim();
  if (text === 'false') return { hops: 0 };
  if (text === 'true') return { hops: 1 };
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    return hops <= MAX_PROXY_HOPS ? { hops } : `at most ${MAX_PROXY_HOPS} proxy hops`;
  }
  const proxies: string[] = [];
  const entries = text.split(',').map((entry) => entry.trim());
  for (const [i, entry] of entries.entries()) {
    const cidr = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry);
    const address = cidr ? canonicalIp(cidr[1]) : null;
    if (!cidr || !address || address.includes('%'))
      return `entry ${i + 1} is not an IP address or a CIDR: ${TRUST_PROXY_FORMS}`;
    const bits = address.includes(':') ? 128 : 32;
    // An IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 one it maps.
    const mappedFrom = cidr[1].includes(':') && bits === 32 ? 96 : 0;
    const prefix = cidr[2] === undefined ? bits : Number(cidr[2]) - mappedFrom;
    if (prefix < 0 || prefix > bits)
      return `entry ${i + 1} has a prefix length out of range: ${TRUST_PROXY_FORMS}`;
    if (prefix === 0)
      return `entry ${i + 1} trusts every address, so a client could name its own: list the proxies' addresses`;
    proxies.push(`${address}/${prefix}`);
  }
  return { proxies };
}

/**
 * EGRESS_IPS: IPv4 and IPv6 addresses, comma-separated, each written once in its canonical form
 * (what users copy onto their keys). Ranges are refused: exchanges' allow-lists take addresses. A
 * problem is returned as its message.
 */
function parseEgressIps(value: string): string[] | string {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const ips: string[] = [];
  for (const [i, entry] of entries.entries()) {
    const ip = canonicalIp(entry);
    if (ip === null || ip.includes('%'))
      return `entry ${i + 1} is not an IPv4 or IPv6 address: must be a comma-separated list of addresses such as 203.0.113.10,2001:db8::10`;
    if (!ips.includes(ip)) ips.push(ip);
  }
  if (ips.length > MAX_EGRESS_IPS) return `at most ${MAX_EGRESS_IPS} addresses`;
  return ips;
}

function splitKeys(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
}

interface GeneratedSecrets {
  JWT_SECRET?: string;
  ENCRYPTION_KEY?: string;
  ADMIN_PASSWORD?: string;
}

const generators: Record<keyof GeneratedSecrets, () => string> = {
  JWT_SECRET: () => randomBytes(48).toString('base64url'),
  ENCRYPTION_KEY: () => randomBytes(32).toString('base64url') + '=',
  ADMIN_PASSWORD: () => randomBytes(18).toString('base64url'),
};

/** JSON.parse's own message quotes the text around a bad token: part of a secret, here. */
function parseSecrets(file: string): GeneratedSecrets {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as GeneratedSecrets;
  } catch {
    throw new ConfigError([
      `${file} is not valid JSON: fix or delete it (deleting it generates new secrets, and data encrypted with the old key can no longer be read)`,
    ]);
  }
}

function readOrCreateSecrets(
  file: string,
  wanted: Array<keyof GeneratedSecrets>,
): GeneratedSecrets {
  const secrets = existsSync(file) ? parseSecrets(file) : {};
  let changed = false;
  for (const name of wanted) {
    if (!secrets[name]) {
      secrets[name] = generators[name]();
      changed = true;
    }
  }
  if (changed) {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return secrets;
}
