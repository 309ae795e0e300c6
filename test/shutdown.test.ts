import { expect } from '@jest/globals';
import mongoose from 'mongoose';
import { startTestApp } from './helpers/app';
import { registerUser } from './helpers/factories';

describe('shutdown', () => {
  it('lets an in-flight request finish, then stops accepting and closes the database', async () => {
    const app = await startTestApp();
    const user = await registerUser(app);
    // login spends real time on argon2, so it is in flight when stop() begins.
    const inFlight = app.raw(
      'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
      { e: user.email, p: user.password },
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    await app.app.stop();
    const result = await inFlight;
    expect(result.data).toMatchObject({ login: { token: expect.any(String) } });
    await expect(fetch(`${app.url}/health`)).rejects.toThrow();
    expect(mongoose.connection.readyState).toBe(mongoose.ConnectionStates.disconnected);
  });
});
