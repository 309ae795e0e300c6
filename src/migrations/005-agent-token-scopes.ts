import type { Types } from 'mongoose';
import type { SystemContext } from '../core/context';
import { AgentTokenModel } from '../modules/auth/agent-token.model';
import { AgentScope, Role } from '../modules/auth/roles';
import type { Migration } from './runner';

const BATCH = 1_000;

interface OldRecord {
  _id: Types.ObjectId;
  scope?: string | null;
  issuer_role?: string | null;
  changed_at?: Date | null;
  created_at?: Date;
  revoked_at?: Date | null;
}

/**
 * Agent tokens stored before scopes were all an admin's, on every wallet: they get scope
 * all_wallets and issuer_role admin, and changed_at (what the registry's refresh reads) from when
 * they last changed: revoked_at, else created_at. Idempotent, and cheap once done (one query that
 * finds nothing). Each field's update is conditional on that field still missing, so what an
 * instance writes meanwhile wins. Returns how many records it filled in.
 */
export async function backfillAgentTokenScopes(ctx: SystemContext): Promise<number> {
  let filled = 0;
  for (;;) {
    const batch = await AgentTokenModel.find(
      { $or: [{ scope: null }, { issuer_role: null }, { changed_at: null }] },
      { scope: 1, issuer_role: 1, changed_at: 1, created_at: 1, revoked_at: 1 },
    )
      .limit(BATCH)
      .lean<OldRecord[]>();
    if (batch.length === 0) break;
    await AgentTokenModel.collection.bulkWrite(
      batch.flatMap((t) => [
        ...(t.scope == null ? [fill(t._id, 'scope', AgentScope.ALL_WALLETS as string)] : []),
        ...(t.issuer_role == null ? [fill(t._id, 'issuer_role', Role.ADMIN as string)] : []),
        ...(t.changed_at == null
          ? [fill(t._id, 'changed_at', t.revoked_at ?? t.created_at ?? t._id.getTimestamp())]
          : []),
      ]),
      { ordered: false },
    );
    filled += batch.length;
  }
  if (filled > 0)
    ctx.logger.info(
      { agentTokens: filled },
      'scope, issuer role and change time filled in for agent tokens stored before them',
    );
  return filled;
}

function fill(_id: Types.ObjectId, field: string, value: string | Date) {
  return { updateOne: { filter: { _id, [field]: null }, update: { $set: { [field]: value } } } };
}

export const migration: Migration = {
  id: '005-agent-token-scopes',
  description:
    'agent tokens stored before scopes get scope all_wallets, issuer role admin and a change time',
  up: backfillAgentTokenScopes,
};
