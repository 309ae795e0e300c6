import { expect } from '@jest/globals';
import { Types } from 'mongoose';
import { recordOutcome } from '../src/modules/credentials/credential-link';
import {
  ConnectionState,
  CredentialModel,
  type Credential,
} from '../src/modules/credentials/credential.model';
import { startTestApp, type TestApp } from './helpers/app';
import { binanceCredential, registerUser, type TestUser } from './helpers/factories';

/**
 * A test's outcome and the credential's place in the re-test queue are one write
 * (credential-link.ts, recordOutcome): a reader never sees a recorded outcome beside the lease the
 * test ran under, a credential out of the queue stays out, and a credential changed since the test
 * is left as it is.
 */

let t: TestApp;
let user: TestUser;
const ctx = { comment: 'recorded-outcome test' };
const LEASE = new Date(Date.now() + 60 * 60_000);

const load = async (id: Types.ObjectId) => (await CredentialModel.findById(id).lean<Credential>())!;

async function credential(queued: Date | null): Promise<Credential> {
  const id = new Types.ObjectId(await binanceCredential(t, user, `Outcome ${Math.random()}`));
  await CredentialModel.updateOne({ _id: id }, { $set: { next_check_at: queued } });
  return load(id);
}

function outcome(due: Date): Partial<Credential> {
  return {
    connection_state: ConnectionState.CONNECTED,
    is_connected: true,
    last_checked_at: new Date(),
    check_due_at: due,
  };
}

beforeAll(async () => {
  t = await startTestApp();
  user = await registerUser(t);
});
afterAll(() => t.close());

it.each([
  {
    name: 'moves a queued credential from its lease to the due time in the write that records the outcome',
    queued: LEASE,
  },
  { name: 'records the outcome of a credential out of the queue and leaves it out', queued: null },
])('$name', async ({ queued }) => {
  const before = await credential(queued);
  const due = new Date(Date.now() + 5_000);
  const nextCheckAt = queued === null ? null : due;
  const recorded = await recordOutcome(ctx, before, outcome(due), due);
  expect(recorded).toMatchObject({
    connection_state: ConnectionState.CONNECTED,
    next_check_at: nextCheckAt,
    check_due_at: due,
  });
  expect(await load(before._id)).toMatchObject({
    connection_state: ConnectionState.CONNECTED,
    next_check_at: nextCheckAt,
  });
});

it('writes nothing on a credential changed since the test (another version), queued or not', async () => {
  for (const queued of [LEASE, null]) {
    const before = await credential(queued);
    await CredentialModel.updateOne({ _id: before._id }, { $inc: { version: 1 } });
    const due = new Date(Date.now() + 5_000);
    expect(await recordOutcome(ctx, before, outcome(due), due)).toBeNull();
    expect(await load(before._id)).toMatchObject({
      connection_state: before.connection_state,
      next_check_at: queued,
      check_due_at: before.check_due_at,
      version: before.version + 1,
    });
  }
});
