import type { Types } from 'mongoose';
import { InvalidToken } from '../../crypto/fernet';
import type { Keyring } from '../../crypto/keyring';
import type { SystemContext } from '../../core/context';
import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { allDefinitions } from '../catalog/wallet-definition.service';
import { CredentialModel, type Credential } from './credential.model';

export interface RotationReport {
  /** Credentials with at least one value moved to the first key. */
  rotated: number;
  /** Credentials already entirely under the first key (or with nothing encrypted). */
  skipped: number;
  /** Credentials with a value no key can read: reported, and those values left untouched. */
  unreadable: number;
  unreadableIds: string[];
  /** Credentials that kept changing under the rotation: run it again. */
  busy: number;
  busyIds: string[];
}

/** The rotation, as the service's own work (core/context.ts systemCtx). */
export const ROTATION_JOB = 'key rotation';

const ATTEMPTS = 3;
/** The rotation's database commands carry no comment (its context is for its log lines). */
const UNTAGGED = { comment: undefined };
type Stored = Pick<Credential, '_id' | 'wallet_id' | 'credentials' | 'version'>;

/**
 * Re-encrypts every stored encrypted value under the keyring's first key. Each credential is
 * one conditional update on its version and on the very tokens it replaces, so a user's
 * concurrent edit always wins (its values are new, under the first key already) and a second run
 * finds nothing to do.
 */
export async function rotateCredentialKeys(
  ctx: SystemContext,
  keyring: Keyring,
): Promise<RotationReport> {
  const report: RotationReport = {
    rotated: 0,
    skipped: 0,
    unreadable: 0,
    unreadableIds: [],
    busy: 0,
    busyIds: [],
  };
  const encryptedKeys = await encryptedKeysByDefinition();
  const cursor = CredentialModel.find({}, { wallet_id: 1, credentials: 1, version: 1 })
    .lean<Stored[]>()
    .cursor();
  for await (const first of cursor as AsyncIterable<Stored>) {
    let credential: Stored | null = first;
    let settled = false;
    for (let attempt = 0; credential && attempt < ATTEMPTS; attempt++) {
      const outcome = await rotateOne(
        credential,
        encryptedKeys.get(credential.wallet_id.toHexString()) ?? new Set(),
        keyring,
      );
      if (outcome !== 'conflict') {
        report[outcome] += 1;
        if (outcome === 'unreadable') report.unreadableIds.push(credential._id.toHexString());
        settled = true;
        break;
      }
      // Changed under us: look again at what is there now.
      credential = await CredentialModel.findById(credential._id, {
        wallet_id: 1,
        credentials: 1,
        version: 1,
      }).lean<Stored>();
    }
    // Deleted meanwhile: nothing left to rotate. Still changing: say so, never count it as done.
    if (!settled && credential) {
      report.busy += 1;
      report.busyIds.push(credential._id.toHexString());
    }
  }
  ctx.logger.info(
    {
      rotated: report.rotated,
      skipped: report.skipped,
      unreadable: report.unreadable,
      busy: report.busy,
    },
    'credential keys rotated',
  );
  return report;
}

async function rotateOne(
  credential: Stored,
  encrypted: Set<string>,
  keyring: Keyring,
): Promise<'rotated' | 'skipped' | 'unreadable' | 'conflict'> {
  const filter: Record<string, unknown> = { _id: credential._id, version: credential.version };
  const set: Record<string, string> = {};
  let unreadable = false;
  for (const [key, token] of Object.entries(credential.credentials ?? {})) {
    if (!encrypted.has(key)) continue;
    try {
      const rotated = keyring.rotate(token);
      if (rotated === null) continue;
      filter[`credentials.${key}`] = token;
      set[`credentials.${key}`] = rotated;
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
      unreadable = true;
    }
  }
  if (Object.keys(set).length > 0) {
    const result = await CredentialModel.updateOne(filter, { $set: set }, { timestamps: false });
    if (result.matchedCount === 0) return 'conflict';
  }
  if (unreadable) return 'unreadable';
  return Object.keys(set).length > 0 ? 'rotated' : 'skipped';
}

async function encryptedKeysByDefinition(): Promise<Map<string, Set<string>>> {
  const definitions = await allDefinitions<
    Pick<WalletDefinition, 'auth_fields'> & { _id: Types.ObjectId }
  >(UNTAGGED, { auth_fields: 1 });
  return new Map(
    definitions.map((d) => [
      d._id.toHexString(),
      new Set(d.auth_fields.filter((f) => f.encrypted).map((f) => f.key)),
    ]),
  );
}
