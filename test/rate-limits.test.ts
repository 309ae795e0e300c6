import argon2 from 'argon2';
import mongoose from 'mongoose';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { PASSWORD_CHECKS_IN_FLIGHT, passwordChecksInFlight } from '../src/modules/auth/password';
import { uniqueEmail } from './helpers/factories';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    TRUST_PROXY: 'true',
    RATE_LIMIT_LOGIN_FAILURES: '3',
    RATE_LIMIT_LOGIN_FAILURES_PER_EMAIL: '6',
    RATE_LIMIT_REGISTRATIONS_PER_HOUR: '3',
    RATE_LIMIT_USER_PER_MINUTE: '5',
    RATE_LIMIT_AGENT_PER_MINUTE: '5',
  });
});
afterAll(() => t.close());

const REGISTER = 'mutation ($i: RegisterInput!) { register(input: $i) { token } }';
const LOGIN = 'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';
/**
 * As our load balancer (TRUST_PROXY=true: one hop) passes it on: what the client sent, if
 * anything, then the address it saw.
 */
const from = (address: string, clientSent?: string) => ({
  'x-forwarded-for': clientSent === undefined ? address : `${clientSent}, ${address}`,
});

async function register(address: string, email = uniqueEmail(), clientSent?: string) {
  return t.raw<{ register: { token: string } }>(
    REGISTER,
    { i: { email, password: 'correct horse battery' } },
    undefined,
    from(address, clientSent),
  );
}

const login = (email: string, password: string, address: string, clientSent?: string) =>
  t.raw(LOGIN, { e: email, p: password }, undefined, from(address, clientSent));

describe('rate limits', () => {
  it('limits registrations per client address', async () => {
    for (let i = 0; i < 3; i++) expect((await register('203.0.113.1')).errors).toBeUndefined();
    const fourth = await register('203.0.113.1');
    expect(codes(fourth)).toEqual(['RATE_LIMITED']);
    expect(fourth.errors![0].message).toMatch(/at most 3 per 3600 s/);
    expect((await register('203.0.113.2')).errors).toBeUndefined();
  });

  it('limits registrations by the address the proxy saw, whatever first entries the client forges', async () => {
    const forged = (i: number) => register('203.0.113.4', uniqueEmail(), `10.77.${i}.1`);
    for (let i = 0; i < 3; i++) expect((await forged(i)).errors).toBeUndefined();
    expect(codes(await forged(3))).toEqual(['RATE_LIMITED']);
  });

  it('lets no more registrations through than the limit when they arrive at once', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => register('203.0.113.3')));
    expect(results.filter((r) => r.errors === undefined)).toHaveLength(3);
    expect(results.filter((r) => codes(r)[0] === 'RATE_LIMITED')).toHaveLength(17);
  });

  it('limits failed logins per email and address: the right password is refused from there, not from elsewhere', async () => {
    const email = uniqueEmail('target');
    await register('198.51.100.1', email);
    for (let i = 0; i < 3; i++)
      expect(codes(await login(email, 'wrong password', '198.51.100.10'))).toEqual([
        'UNAUTHENTICATED',
      ]);
    expect(codes(await login(email, 'correct horse battery', '198.51.100.10'))).toEqual([
      'RATE_LIMITED',
    ]);
    // A stranger's guesses don't lock the user out where they sign in from.
    expect((await login(email, 'correct horse battery', '198.51.100.11')).errors).toBeUndefined();
  });

  it('limits failed logins per client address, across emails', async () => {
    for (let i = 0; i < 3; i++) await login(uniqueEmail('spray'), 'guess', '192.0.2.7');
    const email = uniqueEmail('victim');
    await register('192.0.2.8', email);
    expect(codes(await login(email, 'correct horse battery', '192.0.2.7'))).toEqual([
      'RATE_LIMITED',
    ]);
    expect((await login(email, 'correct horse battery', '192.0.2.9')).errors).toBeUndefined();
  });

  it('counts failed logins by the address the proxy saw, whatever first entries the client forges', async () => {
    const email = uniqueEmail('forged');
    await register('198.51.100.80', email);
    const answers = [];
    for (let i = 0; i < 12; i++)
      answers.push(
        codes(
          await login(email, `wrong password ${i}`, '198.51.100.81', `10.66.${i}.1, 127.0.0.1`),
        ),
      );
    expect(answers.slice(0, 3)).toEqual(Array(3).fill(['UNAUTHENTICATED']));
    expect(answers.slice(3)).toEqual(Array(9).fill(['RATE_LIMITED']));
    // Across emails too: the address's own counter.
    for (let i = 0; i < 3; i++)
      await login(uniqueEmail('forged-spray'), 'guess', '192.0.2.40', `10.67.${i}.1`);
    expect(
      codes(await login(uniqueEmail('forged-spray'), 'guess', '192.0.2.40', '10.67.99.1')),
    ).toEqual(['RATE_LIMITED']);
  });

  it('limits failed logins per email from every address, at its own (higher) limit', async () => {
    const email = uniqueEmail('spread');
    await register('192.0.2.20', email);
    for (let i = 0; i < 6; i++)
      expect(codes(await login(email, 'wrong password', `192.0.2.${30 + i}`))).toEqual([
        'UNAUTHENTICATED',
      ]);
    expect(codes(await login(email, 'correct horse battery', '192.0.2.99'))).toEqual([
      'RATE_LIMITED',
    ]);
  });

  it('checks at most the limit of passwords when hundreds of guesses arrive at once, and then refuses the right one', async () => {
    const email = uniqueEmail('burst');
    await register('198.51.100.40', email);
    const guesses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => login(email, `wrong guess ${i}`, '198.51.100.41')),
    );
    const checked = guesses.filter((g) => codes(g)[0] === 'UNAUTHENTICATED').length;
    expect(checked).toBeLessThanOrEqual(3);
    expect(
      guesses.every((g) => ['UNAUTHENTICATED', 'RATE_LIMITED'].includes(codes(g)[0] ?? '')),
    ).toBe(true);
    expect(codes(await login(email, 'correct horse battery', '198.51.100.41'))).toEqual([
      'RATE_LIMITED',
    ]);
    const counters = (
      await mongoose.connection.db!.collection('rate_limits').find({}).toArray()
    ).filter((c) => String(c._id).startsWith('login:pair:'));
    expect(Math.max(...counters.map((c) => c.count as number))).toBe(3);
  });

  it('runs at most the limit of real password verifications when hundreds of guesses arrive at once', async () => {
    const email = uniqueEmail('verified');
    await register('198.51.100.42', email);
    // A spy, not a mock: every call still runs argon2's own verification.
    const verify = jest.spyOn(argon2, 'verify');
    let verified: boolean[];
    let answers: Array<string | undefined>;
    try {
      const guesses = await Promise.all(
        Array.from({ length: 300 }, (_, i) => login(email, `wrong guess ${i}`, '198.51.100.43')),
      );
      answers = guesses.map((g) => codes(g)[0]);
      verified = await Promise.all(verify.mock.results.map((r) => r.value as Promise<boolean>));
    } finally {
      verify.mockRestore();
    }
    expect(verified.length).toBeGreaterThan(0);
    expect(verified.length).toBeLessThanOrEqual(3);
    expect(verified.every((ok) => !ok)).toBe(true);
    expect(answers.filter((code) => code === 'UNAUTHENTICATED')).toHaveLength(verified.length);
  });

  it('bounds the password checks in flight, whatever arrives', async () => {
    let most = 0;
    let burst = true;
    const watch = (async () => {
      while (burst) {
        most = Math.max(most, passwordChecksInFlight());
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => login(uniqueEmail('cpu'), 'guess', `10.9.${i}.1`)),
    );
    burst = false;
    await watch;
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(PASSWORD_CHECKS_IN_FLIGHT);
    expect(
      results.every((r) => ['UNAUTHENTICATED', 'RATE_LIMITED'].includes(codes(r)[0] ?? '')),
    ).toBe(true);
  });

  it('gives a successful login its count back', async () => {
    const email = uniqueEmail('regular');
    await register('198.51.100.50', email);
    for (let i = 0; i < 6; i++)
      expect((await login(email, 'correct horse battery', '198.51.100.51')).errors).toBeUndefined();
  });

  it('opens a window with the first failure, not at a fixed boundary', async () => {
    const before = Date.now();
    await login(uniqueEmail('window'), 'guess', '198.51.100.60');
    const after = Date.now();
    const pairs = await mongoose.connection
      .db!.collection('rate_limits')
      .find({
        expires_at: { $gte: new Date(before + 15 * 60_000), $lte: new Date(after + 15 * 60_000) },
      })
      .toArray();
    // The pair and the address counters opened here (the email's has its own hour).
    expect(pairs.length).toBeGreaterThanOrEqual(2);
  });

  it('keeps the counters in the database under keys that never hold what was typed', async () => {
    const typed = 'my-password-in-the-email-field';
    await login(typed, 'guess', '198.51.100.70');
    const ids = (
      await mongoose.connection
        .db!.collection('rate_limits')
        .find({}, { projection: { _id: 1 } })
        .toArray()
    ).map((d) => String(d._id));
    expect(ids.some((id) => id.startsWith('login:pair:'))).toBe(true);
    expect(ids.some((id) => id.startsWith('login:address:'))).toBe(true);
    expect(ids.some((id) => id.startsWith('login:email:'))).toBe(true);
    expect(ids.some((id) => id.startsWith('register:address:'))).toBe(true);
    for (const id of ids) {
      expect(id).not.toContain(typed);
      expect(id).not.toMatch(/@|198\.51|203\.0/);
    }
  });

  it('gives each token a budget of requests, without a database command', async () => {
    const alice = (await register('203.0.113.50')).data!.register.token;
    const bob = (await register('203.0.113.51')).data!.register.token;
    for (let i = 0; i < 5; i++)
      expect((await t.raw('{ me { id } }', {}, alice)).errors).toBeUndefined();
    const over = await t.raw('{ me { id } }', {}, alice);
    expect(codes(over)).toEqual(['RATE_LIMITED']);
    expect(over.status).toBe(429);
    expect((await t.raw('{ me { id } }', {}, bob)).errors).toBeUndefined();
    const ids = (
      await mongoose.connection
        .db!.collection('rate_limits')
        .find({}, { projection: { _id: 1 } })
        .toArray()
    ).map((d) => String(d._id));
    expect(ids.some((id) => id.includes('user:'))).toBe(false);
  });
});
