import mongoose from 'mongoose';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { uniqueEmail } from './helpers/factories';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    TRUST_PROXY: 'true',
    RATE_LIMIT_LOGIN_FAILURES: '3',
    RATE_LIMIT_REGISTRATIONS_PER_HOUR: '3',
    RATE_LIMIT_USER_PER_MINUTE: '5',
    RATE_LIMIT_AGENT_PER_MINUTE: '5',
  });
});
afterAll(() => t.close());

const REGISTER = 'mutation ($i: RegisterInput!) { register(input: $i) { token } }';
const LOGIN = 'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';
const from = (address: string) => ({ 'x-forwarded-for': address });

/** Counters use fixed windows: a test starts well inside one, so its hits land in the same window. */
async function awayFromWindowEdge(windowMs: number, needMs = 10_000): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

async function register(address: string, email = uniqueEmail()) {
  return t.raw<{ register: { token: string } }>(REGISTER, { i: { email, password: 'correct horse battery' } }, undefined, from(address));
}

describe('rate limits', () => {
  it('limits registrations per client address', async () => {
    await awayFromWindowEdge(60 * 60_000);
    for (let i = 0; i < 3; i++) expect((await register('203.0.113.1')).errors).toBeUndefined();
    const fourth = await register('203.0.113.1');
    expect(codes(fourth)).toEqual(['RATE_LIMITED']);
    expect(fourth.errors![0].message).toMatch(/at most 3 per 3600 s/);
    expect((await register('203.0.113.2')).errors).toBeUndefined();
  });

  it('limits failed logins per email, even from fresh addresses, before checking any password', async () => {
    await awayFromWindowEdge(15 * 60_000);
    const email = uniqueEmail('target');
    await register('198.51.100.1', email);
    for (let i = 0; i < 3; i++) {
      expect(codes(await t.raw(LOGIN, { e: email, p: 'wrong password' }, undefined, from(`198.51.100.${10 + i}`)))).toEqual(['UNAUTHENTICATED']);
    }
    const right = await t.raw(LOGIN, { e: email, p: 'correct horse battery' }, undefined, from('198.51.100.99'));
    expect(codes(right)).toEqual(['RATE_LIMITED']);
  });

  it('limits failed logins per client address, across emails', async () => {
    await awayFromWindowEdge(15 * 60_000);
    for (let i = 0; i < 3; i++) await t.raw(LOGIN, { e: uniqueEmail('spray'), p: 'guess' }, undefined, from('192.0.2.7'));
    const email = uniqueEmail('victim');
    await register('192.0.2.8', email);
    expect(codes(await t.raw(LOGIN, { e: email, p: 'correct horse battery' }, undefined, from('192.0.2.7')))).toEqual(['RATE_LIMITED']);
    expect((await t.raw(LOGIN, { e: email, p: 'correct horse battery' }, undefined, from('192.0.2.9'))).errors).toBeUndefined();
  });

  it('keeps the login and registration counters in the database, shared by every instance', async () => {
    const ids = (await mongoose.connection.db!.collection('rate_limits').find({}, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id));
    expect(ids.some((id) => id.startsWith('login-failures:email:'))).toBe(true);
    expect(ids.some((id) => id.startsWith('login-failures:address:192.0.2.7:'))).toBe(true);
    expect(ids.some((id) => id.startsWith('register:address:203.0.113.1:'))).toBe(true);
  });

  it('gives each token a budget of requests, without a database command', async () => {
    const alice = (await register('203.0.113.50')).data!.register.token;
    const bob = (await register('203.0.113.51')).data!.register.token;
    for (let i = 0; i < 5; i++) expect((await t.raw('{ me { id } }', {}, alice)).errors).toBeUndefined();
    const over = await t.raw('{ me { id } }', {}, alice);
    expect(codes(over)).toEqual(['RATE_LIMITED']);
    expect(over.status).toBe(429);
    expect((await t.raw('{ me { id } }', {}, bob)).errors).toBeUndefined();
    const ids = (await mongoose.connection.db!.collection('rate_limits').find({}, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id));
    expect(ids.some((id) => id.includes('user:'))).toBe(false);
  });
});
