import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig } from '../src/core/config';
import { secretScrubber } from '../src/core/secret-scrubber';

const GOOD_KEY = 'a2V5LWZvci10ZXN0cy1vbmx5LTMyLWJ5dGVzLWxvbmc=';
const GOOD_SECRET = 'a-production-jwt-secret-of-at-least-32-bytes';

function problemsOf(
  env: Record<string, string | undefined>,
  cwd = mkdtempSync(join(tmpdir(), 'cfg-')),
): string[] {
  try {
    parseConfig(env, cwd);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration', () => {
  it('has working defaults for a newcomer', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const { config, warnings } = parseConfig({}, cwd);
    expect(config).toMatchObject({
      nodeEnv: 'development',
      port: 4000,
      host: '127.0.0.1',
      mongodbUri: undefined,
      logLevel: 'info',
    });
    expect(config.jwt).toMatchObject({
      issuer: 'wallet-service',
      audience: 'wallet-platform',
      expiresInSeconds: 12 * 3600,
    });
    expect(config.admin?.email).toBe('admin@example.com');
    expect(warnings.join('\n')).toMatch(/JWT_SECRET and ENCRYPTION_KEY not set/);
  });

  it('generates missing development secrets once, keeps them private, and never prints them', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const first = parseConfig({ NODE_ENV: 'development' }, cwd);
    const second = parseConfig({ NODE_ENV: 'development' }, cwd);
    expect(second.config.jwt.secret).toBe(first.config.jwt.secret);
    expect(second.config.encryptionKeys).toEqual(first.config.encryptionKeys);
    expect(first.config.encryptionKeys[0]).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    const file = join(cwd, '.data', 'secrets.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const secrets = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    for (const value of Object.values(secrets))
      expect(first.warnings.join('\n')).not.toContain(value);
  });

  it('refuses a damaged secrets file without quoting it', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const secret = 'Pq9xJsecretMaterialThatMustNotLeak';
    mkdirSync(join(cwd, '.data'));
    // Cut off mid-value: JSON.parse's own message would quote the text around where it stopped.
    writeFileSync(
      join(cwd, '.data', 'secrets.json'),
      `{"JWT_SECRET": "${secret}", "ENCRYPTION_KEY": ${secret}`,
    );
    const problems = problemsOf({ NODE_ENV: 'development' }, cwd);
    expect(problems).toEqual([
      expect.stringMatching(/secrets\.json is not valid JSON: fix or delete it/),
    ]);
    expect(problems.join('\n')).not.toContain('Pq9xJ');
  });

  it('refuses in production a short admin password and a JWT secret of too few distinct characters', () => {
    const problems = problemsOf({
      NODE_ENV: 'production',
      JWT_SECRET: 'ab'.repeat(24),
      ENCRYPTION_KEY: GOOD_KEY,
      ADMIN_EMAIL: 'ops@example.com',
      ADMIN_PASSWORD: 'elevenchars',
    });
    expect(problems).toEqual([
      'JWT_SECRET: too weak, must have at least 16 distinct characters',
      'ADMIN_PASSWORD: must be at least 12 characters in production',
    ]);
    expect(problems.join('\n')).not.toContain('elevenchars');
    expect(
      problemsOf({
        NODE_ENV: 'production',
        JWT_SECRET: GOOD_SECRET,
        ENCRYPTION_KEY: GOOD_KEY,
        ADMIN_EMAIL: 'ops@example.com',
        ADMIN_PASSWORD: 'twelve chars',
      }),
    ).toEqual([]);
    // Outside production the same values start (a developer's machine).
    expect(
      problemsOf({
        NODE_ENV: 'test',
        JWT_SECRET: 'ab'.repeat(24),
        ENCRYPTION_KEY: GOOD_KEY,
        ADMIN_EMAIL: 'ops@example.com',
        ADMIN_PASSWORD: 'elevenchars',
      }),
    ).toEqual([]);
  });

  it('serves GraphiQL by default outside production only, and caps what a user creates', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const base = { JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY };
    expect(parseConfig({ ...base, NODE_ENV: 'test' }, cwd).config.graphiql).toBe(true);
    expect(parseConfig({ ...base, NODE_ENV: 'production' }, cwd).config.graphiql).toBe(false);
    expect(
      parseConfig({ ...base, NODE_ENV: 'production', GRAPHIQL: 'true' }, cwd).config.graphiql,
    ).toBe(true);
    expect(parseConfig({ ...base, NODE_ENV: 'test' }, cwd).config.caps).toEqual({
      credentialsPerUser: 50,
      walletsPerUser: 50,
      agentsPerUser: 10,
    });
    expect(
      parseConfig(
        {
          ...base,
          NODE_ENV: 'test',
          MAX_CREDENTIALS_PER_USER: '3',
          MAX_WALLETS_PER_USER: '2',
          MAX_AGENTS_PER_USER: '4',
        },
        cwd,
      ).config.caps,
    ).toEqual({ credentialsPerUser: 3, walletsPerUser: 2, agentsPerUser: 4 });
    for (const bad of ['0', '-1', '2.5', 'ten'])
      expect(problemsOf({ ...base, NODE_ENV: 'test', MAX_AGENTS_PER_USER: bad }, cwd)).toEqual([
        expect.stringMatching(/^MAX_AGENTS_PER_USER: /),
      ]);
  });

  it('lets connection tests reach loopback outside production only, unless EXCHANGE_ALLOW_LOOPBACK says otherwise', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const production = {
      NODE_ENV: 'production',
      JWT_SECRET: GOOD_SECRET,
      ENCRYPTION_KEY: GOOD_KEY,
    };
    expect(
      parseConfig({ NODE_ENV: 'test', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY }, cwd)
        .config.exchanges.allowLoopback,
    ).toBe(true);
    expect(parseConfig(production, cwd).config.exchanges.allowLoopback).toBe(false);
    expect(
      parseConfig({ ...production, EXCHANGE_ALLOW_LOOPBACK: 'true' }, cwd).config.exchanges
        .allowLoopback,
    ).toBe(true);
    expect(
      parseConfig({ NODE_ENV: 'development', EXCHANGE_ALLOW_LOOPBACK: 'false' }, cwd).config
        .exchanges.allowLoopback,
    ).toBe(false);
    expect(problemsOf({ EXCHANGE_ALLOW_LOOPBACK: 'yes' }, cwd)).toEqual([
      expect.stringMatching(/^EXCHANGE_ALLOW_LOOPBACK: /),
    ]);
  });

  it('uses given secrets instead of generating any', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const { config, warnings } = parseConfig(
      { NODE_ENV: 'test', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY },
      cwd,
    );
    expect(config.jwt.secret).toBe(GOOD_SECRET);
    expect(config.encryptionKeys).toEqual([GOOD_KEY]);
    expect(config.admin).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('in production, lists every problem at once and no secret value', () => {
    const weak = 'short-secret';
    const badKey = 'not-a-fernet-key';
    const problems = problemsOf({
      NODE_ENV: 'production',
      JWT_SECRET: weak,
      ENCRYPTION_KEY: badKey,
      ADMIN_EMAIL: 'admin@example.com',
    });
    expect(problems).toEqual([
      'JWT_SECRET: too weak, must be at least 32 bytes',
      'ENCRYPTION_KEY: malformed, must be a Fernet key (32 bytes in URL-safe base64, 44 characters)',
      'ADMIN_PASSWORD: required when ADMIN_EMAIL is set',
    ]);
    const message = new ConfigError(problems).message;
    expect(message).not.toContain(weak);
    expect(message).not.toContain(badKey);
  });

  it('in production, requires both secrets', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([
      'JWT_SECRET: required in production',
      'ENCRYPTION_KEY: required in production (a Fernet key)',
    ]);
  });

  it('accepts a good production configuration', () => {
    expect(
      problemsOf({ NODE_ENV: 'production', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY }),
    ).toEqual([]);
  });

  it('takes a key list, newest first, and names the malformed entry', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const other = randomBytes(32).toString('base64url');
    const { config } = parseConfig(
      {
        NODE_ENV: 'production',
        JWT_SECRET: GOOD_SECRET,
        ENCRYPTION_KEYS: `${GOOD_KEY}, ${other}=`,
      },
      cwd,
    );
    expect(config.encryptionKeys).toEqual([GOOD_KEY, `${other}=`]);
    expect(
      problemsOf({
        NODE_ENV: 'production',
        JWT_SECRET: GOOD_SECRET,
        ENCRYPTION_KEYS: `${GOOD_KEY},nope`,
      }),
    ).toEqual([
      'ENCRYPTION_KEYS[1]: malformed, must be a Fernet key (32 bytes in URL-safe base64, 44 characters)',
    ]);
  });

  it('rejects malformed plain settings with the variable named', () => {
    expect(problemsOf({ PORT: 'eighty' })[0]).toMatch(/^PORT: /);
    expect(problemsOf({ MONGODB_URI: 'postgres://x' })[0]).toMatch(
      /^MONGODB_URI: must start with mongodb/,
    );
    expect(problemsOf({ JWT_EXPIRES_IN: 'forever' })[0]).toMatch(/^JWT_EXPIRES_IN: /);
    expect(problemsOf({ NODE_ENV: 'staging' })[0]).toMatch(/^NODE_ENV: /);
    expect(problemsOf({ CORS_ORIGINS: '*' })[0]).toMatch(/^CORS_ORIGINS: /);
    expect(problemsOf({ CORS_ORIGINS: 'https://app.example.com/path' })[0]).toMatch(
      /^CORS_ORIGINS: /,
    );
  });

  it("reads TRUST_PROXY as a number of proxy hops (true is one, not every one) or the proxies' addresses", () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const base = { NODE_ENV: 'test', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY };
    const trust = (value: string | undefined) =>
      parseConfig({ ...base, TRUST_PROXY: value }, cwd).config.trustProxy;
    for (const none of [undefined, '', 'false', '0']) expect(trust(none)).toEqual({ hops: 0 });
    expect(trust('true')).toEqual({ hops: 1 });
    expect(trust(' 3 ')).toEqual({ hops: 3 });
    expect(trust('10.0.0.0/8, 192.168.1.5,2001:DB8:0::/32 , ::ffff:172.16.0.0/108, ::1')).toEqual({
      proxies: ['10.0.0.0/8', '192.168.1.5/32', '2001:db8::/32', '172.16.0.0/12', '::1/128'],
    });
    const problem = (value: string) => problemsOf({ ...base, TRUST_PROXY: value }, cwd);
    const forms =
      'must be true (one proxy), false, a number of proxy hops, or a comma-separated list of proxy addresses and CIDRs such as 10.0.0.0/8';
    expect(problem('yes')).toEqual([
      `TRUST_PROXY: entry 1 is not an IP address or a CIDR: ${forms}`,
    ]);
    expect(problem('10.0.0.0/8,10.0.0.300')).toEqual([
      `TRUST_PROXY: entry 2 is not an IP address or a CIDR: ${forms}`,
    ]);
    expect(problem('10.0.0.0/8,')).toEqual([
      `TRUST_PROXY: entry 2 is not an IP address or a CIDR: ${forms}`,
    ]);
    expect(problem('10.0.0.1:8080')).toEqual([
      `TRUST_PROXY: entry 1 is not an IP address or a CIDR: ${forms}`,
    ]);
    expect(problem('10.0.0.0/33')).toEqual([
      `TRUST_PROXY: entry 1 has a prefix length out of range: ${forms}`,
    ]);
    expect(problem('2001:db8::/129')).toEqual([
      `TRUST_PROXY: entry 1 has a prefix length out of range: ${forms}`,
    ]);
    for (const everyone of ['0.0.0.0/0', '10.0.0.1, ::/0'])
      expect(problem(everyone)).toEqual([
        expect.stringMatching(
          /^TRUST_PROXY: entry \d trusts every address, so a client could name its own/,
        ),
      ]);
    expect(problem('33')).toEqual(['TRUST_PROXY: at most 32 proxy hops']);
    expect(problem('-1')).toEqual([
      `TRUST_PROXY: entry 1 is not an IP address or a CIDR: ${forms}`,
    ]);
  });

  it('reads EGRESS_IPS as distinct IPv4 and IPv6 addresses in canonical form, at most 50, naming a bad entry without quoting it', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const base = { NODE_ENV: 'test', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY };
    const egress = (value: string | undefined) =>
      parseConfig({ ...base, EGRESS_IPS: value }, cwd).config.exchanges.egressIps;
    for (const none of [undefined, '', ' ', ' , ']) expect(egress(none)).toEqual([]);
    expect(egress(' 203.0.113.10 ,2001:DB8:0::10, ::ffff:198.51.100.7, 203.0.113.10')).toEqual([
      '203.0.113.10',
      '2001:db8::10',
      '198.51.100.7',
    ]);
    const fifty = Array.from({ length: 50 }, (_, i) => `198.51.100.${i + 1}`);
    expect(egress(fifty.join(','))).toEqual(fifty);
    const problem = (value: string) => problemsOf({ ...base, EGRESS_IPS: value }, cwd);
    expect(problem([...fifty, '198.51.100.200'].join(','))).toEqual([
      'EGRESS_IPS: at most 50 addresses',
    ]);
    const forms = 'must be a comma-separated list of addresses such as 203.0.113.10,2001:db8::10';
    for (const [value, entry] of [
      ['egress.example.com', 1],
      ['203.0.113.10,203.0.113.0/24', 2],
      ['203.0.113.10,203.0.113.256', 2],
      ['203.0.113.10:443', 1],
      ['fe80::1%eth0', 1],
    ] as const) {
      const problems = problem(value);
      expect(problems).toEqual([
        `EGRESS_IPS: entry ${entry} is not an IPv4 or IPv6 address: ${forms}`,
      ]);
    }
  });

  it('reads REQUIRE_IP_RESTRICTED_KEYS as true or false (default false), and warns when it is on with no EGRESS_IPS to tell users', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const base = { NODE_ENV: 'test', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY };
    const load = (extra: Record<string, string | undefined>) =>
      parseConfig({ ...base, ...extra }, cwd);
    for (const off of [undefined, '', 'false'])
      expect(
        load({ REQUIRE_IP_RESTRICTED_KEYS: off }).config.exchanges.requireIpRestrictedKeys,
      ).toBe(false);
    expect(load({}).config.exchanges).toMatchObject({
      allowWithdrawalKeys: false,
      egressIps: [],
      requireIpRestrictedKeys: false,
    });
    expect(load({}).warnings).toEqual([]);
    const on = load({ REQUIRE_IP_RESTRICTED_KEYS: 'true' });
    expect(on.config.exchanges.requireIpRestrictedKeys).toBe(true);
    expect(on.warnings).toEqual([
      expect.stringMatching(/^REQUIRE_IP_RESTRICTED_KEYS is true but EGRESS_IPS is empty/),
    ]);
    expect(
      load({ REQUIRE_IP_RESTRICTED_KEYS: 'true', EGRESS_IPS: '203.0.113.10' }).warnings,
    ).toEqual([]);
    for (const bad of ['yes', '1', 'TRUE'])
      expect(problemsOf({ ...base, REQUIRE_IP_RESTRICTED_KEYS: bad }, cwd)).toEqual([
        expect.stringMatching(/^REQUIRE_IP_RESTRICTED_KEYS: /),
      ]);
  });

  it('reads KEY_EXPIRY_WARNING_DAYS as a whole number of days from 1 to 365 (default 14), and refuses anything else', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const base = { NODE_ENV: 'test', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY };
    const days = (value: string | undefined) =>
      parseConfig({ ...base, KEY_EXPIRY_WARNING_DAYS: value }, cwd).config.exchanges
        .keyExpiryWarningDays;
    expect(days(undefined)).toBe(14);
    expect(days('')).toBe(14);
    expect(days('1')).toBe(1);
    expect(days('30')).toBe(30);
    expect(days('365')).toBe(365);
    for (const bad of ['0', '-3', '1.5', 'two weeks', '366'])
      expect(problemsOf({ ...base, KEY_EXPIRY_WARNING_DAYS: bad }, cwd)).toEqual([
        expect.stringMatching(/^KEY_EXPIRY_WARNING_DAYS: /),
      ]);
  });

  it('reads token lifetimes as seconds, minutes, hours or days', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const lifetime = (value: string) =>
      parseConfig(
        {
          NODE_ENV: 'test',
          JWT_SECRET: GOOD_SECRET,
          ENCRYPTION_KEY: GOOD_KEY,
          JWT_EXPIRES_IN: value,
        },
        cwd,
      ).config.jwt.expiresInSeconds;
    expect(lifetime('900')).toBe(900);
    expect(lifetime('15m')).toBe(900);
    expect(lifetime('2h')).toBe(7200);
    expect(lifetime('7d')).toBe(604_800);
  });

  it("reads the service's own connection tests and the retention, with their defaults", () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const env = (extra: Record<string, string> = {}) =>
      parseConfig(
        { NODE_ENV: 'test', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY, ...extra },
        cwd,
      ).config;
    expect(env().credentialChecks).toEqual({ intervalMs: 6 * 3_600_000, concurrency: 4 });
    expect(env().retention).toEqual({ balanceHistoryDays: 30, auditDays: 400 });
    const interval = (value: string) =>
      env({ CREDENTIAL_CHECK_INTERVAL: value }).credentialChecks.intervalMs;
    expect(interval('90')).toBe(90_000);
    expect(interval('30s')).toBe(30_000);
    expect(interval('15m')).toBe(900_000);
    expect(interval('6h')).toBe(21_600_000);
    expect(
      env({
        CREDENTIAL_CHECK_CONCURRENCY: '8',
        BALANCE_HISTORY_DAYS: '7',
        AUDIT_RETENTION_DAYS: '3650',
      }),
    ).toMatchObject({
      credentialChecks: { concurrency: 8 },
      retention: { balanceHistoryDays: 7, auditDays: 3650 },
    });
    for (const [name, value] of [
      ['CREDENTIAL_CHECK_INTERVAL', '0'],
      ['CREDENTIAL_CHECK_INTERVAL', 'often'],
      ['CREDENTIAL_CHECK_INTERVAL', '-5m'],
      ['CREDENTIAL_CHECK_CONCURRENCY', '0'],
      ['BALANCE_HISTORY_DAYS', '0'],
      ['AUDIT_RETENTION_DAYS', 'forever'],
    ]) {
      expect(
        problemsOf({
          NODE_ENV: 'test',
          JWT_SECRET: GOOD_SECRET,
          ENCRYPTION_KEY: GOOD_KEY,
          [name]: value,
        })[0],
      ).toMatch(new RegExp(`^${name}: `));
    }
  });

  it('turns tracing on only with an OTLP endpoint, reads the OTEL_* variables like every other setting, and names a bad one without quoting it', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));
    const base = { NODE_ENV: 'test', JWT_SECRET: GOOD_SECRET, ENCRYPTION_KEY: GOOD_KEY };
    const parse = (extra: Record<string, string> = {}) => parseConfig({ ...base, ...extra }, cwd);

    // No endpoint: off, whatever else is set (never the specification's localhost default).
    expect(parse().config.tracing).toBeUndefined();
    expect(parse().warnings).toEqual([]);
    const noEndpoint = parse({ OTEL_SERVICE_NAME: 'wallets-eu', OTEL_TRACES_SAMPLER: 'always_on' });
    expect(noEndpoint.config.tracing).toBeUndefined();
    expect(noEndpoint.warnings.join('\n')).toMatch(/no OTLP endpoint is: tracing is off/);

    expect(parse({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).config.tracing).toEqual(
      {
        serviceName: 'wallet-service',
        url: 'http://collector:4318/v1/traces',
        protocol: 'http/protobuf',
        headers: {},
        sampler: 'parentbased_always_on',
        samplerRatio: 1,
        scheduleDelayMs: 5_000,
      },
    );
    // The traces endpoint is used as written, before the general one.
    const full = parse({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'X-Api-Key=abc%20def,x-team = blue',
      OTEL_SERVICE_NAME: 'wallets-eu',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    }).config.tracing;
    expect(full).toEqual({
      serviceName: 'wallets-eu',
      url: 'https://traces.example/otlp',
      protocol: 'http/json',
      headers: { 'x-api-key': 'abc def', 'x-team': 'blue' },
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
      scheduleDelayMs: 200,
    });
    // OTEL_SDK_DISABLED wins over an endpoint (case as the specification allows).
    for (const disabled of ['true', 'TRUE', ' True '])
      expect(
        parse({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: disabled })
          .config.tracing,
      ).toBeUndefined();

    for (const [name, value] of [
      ['OTEL_EXPORTER_OTLP_ENDPOINT', 'collector:4318'],
      ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'file:///tmp/spans'],
      ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc'],
      ['OTEL_TRACES_SAMPLER', 'jaeger_remote'],
      ['OTEL_TRACES_SAMPLER_ARG', '1.5'],
      ['OTEL_TRACES_SAMPLER_ARG', 'half'],
      ['OTEL_BSP_SCHEDULE_DELAY', '-1'],
      ['OTEL_SDK_DISABLED', 'maybe'],
      ['OTEL_EXPORTER_OTLP_HEADERS', '=secret-value-0123'],
    ]) {
      const problems = problemsOf({ ...base, [name]: value });
      expect(problems[0]).toMatch(new RegExp(`^${name}: `));
      expect(problems.join('\n')).not.toContain(value);
    }
  });

  it("keeps the OTLP headers' values out of every log line", () => {
    const { config } = parseConfig(
      {
        NODE_ENV: 'test',
        JWT_SECRET: GOOD_SECRET,
        ENCRYPTION_KEY: GOOD_KEY,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-honeycomb-team=hc-key-0123456789abcdef',
      },
      mkdtempSync(join(tmpdir(), 'cfg-')),
    );
    expect(secretScrubber(config)('export failed with hc-key-0123456789abcdef')).toBe(
      'export failed with [redacted]',
    );
  });
});
