import { expect } from '@jest/globals';
import mongoose from 'mongoose';
import { RateLimitModel } from '../src/shared/rate-limit';
import { startTestApp } from './helpers/app';
import { registerUser } from './helpers/factories';

describe('shutdown', () => {
  it('lets an in-flight request finish, then stops accepting and closes the database', async () => {
    const app = await startTestApp();
    const user = await registerUser(app);
    // login spends real time on argon2, so it is in flight when stop() begins.
    const counters = await RateLimitModel.countDocuments();
    const inFlight = app.raw(
      'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
      { e: user.email, p: user.password },
    );
    // The login is counted before its password is checked: once its counters exist, the request
    // is in the resolver, however slow the machine is to get it there.
    const deadline = Date.now() + 10_000;
    while ((await RateLimitModel.countDocuments()) <= counters && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 1));
    await app.app.stop();
    const result = await inFlight;
    expect(result.data).toMatchObject({ login: { token: expect.any(String) } });
    await expect(fetch(`${app.url}/health`)).rejects.toThrow();
    expect(mongoose.connection.readyState).toBe(mongoose.ConnectionStates.disconnected);
  });
});
