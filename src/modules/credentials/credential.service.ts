import { Types } from 'mongoose';
import { dbOptions, type RequestContext, type UserContext } from '../../core/context';
import type { Keyring } from '../../crypto/keyring';
import { ExchangeBudgetExhausted } from '../../exchanges/budget';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  RateLimitedError,
  UserInputError,
} from '../../core/errors';
import { take, type Hit } from '../../shared/rate-limit';
import { toObjectId } from '../../shared/scalars';
import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { findDefinition } from '../catalog/wallet-definition.service';
import type { ConnectionTester } from './connection-tests';
import { CredentialBalanceModel, insertBalanceSnapshot } from './credential-balance.model';
import { deleteUnlessUsed, type CredentialWallets } from './credential-link';
import { storedValues } from './credential-values';
import type {
  CreateCredentialInput,
  PaperBalanceInput,
  UpdateCredentialInput,
} from './credential.inputs';
import { ConnectionState, CredentialModel, Environment, type Credential } from './credential.model';
import { paperBalances } from './paper';
import type { ConnectionTestResult, DeletePayload } from './credential.types';
import { insertWithinCap } from '../../shared/user-caps';
import { cleanName } from '../../shared/validators';

const TEST_INTERVAL_MS = 10_000;
const TESTS_PER_USER_PER_MINUTE = 20;

/** Which of the caller's credentials to list (CredentialFilter, with the catalog entry's id). */
export interface CredentialQuery {
  definitionId?: Types.ObjectId | null;
  isActive?: boolean | null;
}

/** A credential to create: CreateCredentialInput, with the catalog entry's id. */
export type NewCredential = Omit<CreateCredentialInput, 'walletId'> & {
  definitionId: Types.ObjectId;
};

export class CredentialService {
  constructor(
    private readonly keyring: Keyring,
    private readonly tester: ConnectionTester,
    /** MAX_CREDENTIALS_PER_USER */
    private readonly cap: number,
    private readonly wallets: CredentialWallets,
    /** EGRESS_IPS */
    private readonly egressIps: readonly string[],
  ) {}

  /** Public: the same for every caller, so users know what to whitelist before they have a key. */
  egressAddresses(_ctx: RequestContext): readonly string[] {
    return this.egressIps;
  }

  list(ctx: UserContext, query: CredentialQuery): Promise<Credential[]> {
    const filter: Record<string, unknown> = { user_id: ctx.actor.userId };
    if (query.definitionId) filter.wallet_id = query.definitionId;
    if (query.isActive != null) filter.is_active = query.isActive;
    return CredentialModel.find(filter).sort({ created_at: 1, _id: 1 }).lean<Credential[]>().exec();
  }

  async get(ctx: UserContext, id: string): Promise<Credential> {
    return this.loadOwned(ctx, id);
  }

  async create(ctx: UserContext, input: NewCredential): Promise<Credential> {
    const user = ctx.actor;
    const definition = await findDefinition(ctx, input.definitionId);
    if (!definition) throw new NotFoundError('no wallet definition with that id');
    // The field as the contract names it (CreateCredentialInput.walletId).
    if (!definition.is_active)
      throw new UserInputError(
        `${definition.name} is not available for new credentials`,
        'walletId',
      );
    const environment = input.environment ?? Environment.MAINNET;
    const paper = environment === Environment.PAPER;
    if (!paper && input.paperBalances != null)
      throw new UserInputError('only a PAPER credential has paper balances', 'paperBalances');
    if (paper && input.values.length > 0)
      throw new UserInputError('a PAPER credential has no key values: send none', 'values');
    const balances = paper ? paperBalances(input.paperBalances, 'paperBalances') : null;
    const now = new Date();
    const _id = new Types.ObjectId();
    const doc = {
      _id,
      user_id: user.userId,
      wallet_id: definition._id,
      name: cleanName(input.name),
      environment,
      // A paper credential has nothing to prove and nothing secret: CONNECTED, with its balances.
      ...(paper
        ? {
            credentials: {},
            connection_state: ConnectionState.CONNECTED,
            is_connected: true,
            balances,
            balances_at: now,
          }
        : { credentials: storedValues(definition, input.values, this.keyring) }),
    };
    // Its first balances are a snapshot, made first and taken back if the credential is not.
    if (balances) await insertBalanceSnapshot(ctx, _id, balances, now);
    let created;
    try {
      created = await insertWithinCap(
        CredentialModel,
        user.userId,
        this.cap,
        'credentials',
        (cap_slot) => CredentialModel.create({ ...doc, cap_slot }),
      );
    } catch (error) {
      if (balances) await CredentialBalanceModel.deleteMany({ credential_id: _id });
      throw error;
    }
    ctx.logger.info(
      { credentialId: created._id.toHexString(), exchange: definition.slug },
      'credential created',
    );
    return created.toObject();
  }

  /**
   * New values or a new environment make the last connection test meaningless: it is reset
   * (UNTESTED), and a credential in the service's test queue is due at once.
   */
  async update(ctx: UserContext, id: string, input: UpdateCredentialInput): Promise<Credential> {
    const current = await this.loadOwned(ctx, id);
    const paper = current.environment === Environment.PAPER;
    if (
      input.environment != null &&
      input.environment !== current.environment &&
      (paper || input.environment === Environment.PAPER)
    )
      throw new UserInputError(
        'a credential is PAPER from creation to deletion: create a new credential instead',
        'environment',
      );
    if (paper && input.values != null)
      throw new UserInputError('a PAPER credential has no key values: leave values out', 'values');
    const set: Record<string, unknown> = {};
    if (input.name != null) set.name = cleanName(input.name);
    if (input.isActive != null) set.is_active = input.isActive;
    let reconnect = false;
    if (input.values != null && !paper) {
      const definition = await this.definitionOf(ctx, current);
      set.credentials = storedValues(definition, input.values, this.keyring);
      reconnect = true;
    }
    if (input.environment != null && input.environment !== current.environment) {
      set.environment = input.environment;
      reconnect = true;
    }
    if (reconnect) {
      Object.assign(set, {
        connection_state: ConnectionState.UNTESTED,
        is_connected: false,
        last_verified_at: null,
        last_checked_at: null,
        connection_error: null,
        permissions: null,
        key_expires_at: null,
        balances: null,
        balances_at: null,
        check_due_at: null,
        check_failures: 0,
      });
    }
    const updated = await CredentialModel.findOneAndUpdate(
      { _id: current._id, user_id: current.user_id },
      reconnect ? { $set: set, $inc: { version: 1 } } : { $set: set },
      { returnDocument: 'after' },
    ).lean<Credential>();
    if (!updated) throw new NotFoundError('no credential with that id');
    if (reconnect) {
      const now = new Date();
      const queued = await CredentialModel.updateOne(
        { _id: current._id, next_check_at: { $ne: null } },
        { $set: { next_check_at: now } },
        { timestamps: false },
      );
      if (queued.matchedCount > 0) updated.next_check_at = now;
    }
    ctx.logger.info(
      { credentialId: id, fields: Object.keys(set).filter((k) => k !== 'credentials') },
      'credential updated',
    );
    if (input.isActive === false) await this.pauseLiveWallet(ctx, updated);
    return updated;
  }

  /** Sets a PAPER credential's virtual balances again, recorded in its balance history. */
  async resetPaperBalances(
    ctx: UserContext,
    id: string,
    input: readonly PaperBalanceInput[],
  ): Promise<Credential> {
    const current = await this.loadOwned(ctx, id);
    if (current.environment !== Environment.PAPER)
      throw new UserInputError('only a PAPER credential has paper balances', 'credentialId');
    const balances = paperBalances(input, 'balances');
    const now = new Date();
    const snapshot = await insertBalanceSnapshot(ctx, current._id, balances, now);
    let updated: Credential | null;
    try {
      // Unless a later reset got there first: its balances stay, and this one is history.
      updated =
        (await CredentialModel.findOneAndUpdate(
          { _id: current._id, user_id: current.user_id, balances_at: { $lt: now } },
          { $set: { balances, balances_at: now } },
          { returnDocument: 'after' },
        ).lean<Credential>()) ?? (await CredentialModel.findById(current._id).lean<Credential>());
    } catch (error) {
      // Nothing was reset: the snapshot must not say it was.
      await CredentialBalanceModel.deleteOne({ _id: snapshot }).catch((cleanup: unknown) =>
        ctx.logger.error(
          { err: cleanup, credentialId: id },
          "a failed reset's balance snapshot could not be deleted; it expires by itself",
        ),
      );
      throw error;
    }
    if (!updated) {
      await CredentialBalanceModel.deleteOne({ _id: snapshot });
      throw new NotFoundError('no credential with that id');
    }
    ctx.logger.info({ credentialId: id }, 'paper balances reset');
    return updated;
  }

  /**
   * A deactivated credential trades no more: its live wallet (at most one) is paused as by its
   * user.
   */
  private async pauseLiveWallet(ctx: UserContext, credential: Credential): Promise<void> {
    try {
      await this.wallets.pauseLive(ctx, credential._id, 'the credential was deactivated');
    } catch (error) {
      // Paused or deleted by someone else meanwhile: it no longer trades either way.
      if (!(error instanceof ConflictError || error instanceof NotFoundError)) throw error;
    }
  }

  /**
   * The document goes, and its secrets with it. Not while a wallet uses it, even one created
   * meanwhile: see deleteUnlessUsed (credential-link.ts).
   */
  async delete(ctx: UserContext, id: string): Promise<DeletePayload> {
    const current = await this.loadOwned(ctx, id);
    if (!(await deleteUnlessUsed(ctx, this.wallets, current))) {
      if (await CredentialModel.exists({ _id: current._id }))
        throw new ConflictError('the credential is being changed by another request; try again');
      throw new NotFoundError('no credential with that id');
    }
    ctx.logger.info({ credentialId: id }, 'credential deleted');
    // The credential is gone already: snapshots left by a failure here expire with
    // BALANCE_HISTORY_DAYS.
    await CredentialBalanceModel.deleteMany({ credential_id: current._id }).catch(
      (error: unknown) =>
        ctx.logger.error(
          { err: error, credentialId: id },
          "a deleted credential's balance history could not be deleted; it expires by itself",
        ),
    );
    return { id, deleted: true };
  }

  /**
   * The user's test. When the exchange's rate limit has no room for it within 2 s, RATE_LIMITED
   * with retryAfterSeconds and nothing recorded; if nothing was sent either, the credential's
   * 10 s is given back (the user's 20 a minute counts it: refusals cost the database too).
   */
  async testConnection(ctx: UserContext, id: string): Promise<ConnectionTestResult> {
    const current = await this.loadOwned(ctx, id);
    const slot = await this.claimTestSlot(ctx, current);
    try {
      return await this.tester.test(ctx, current, await this.definitionOf(ctx, current));
    } catch (error) {
      if (!(error instanceof ExchangeBudgetExhausted)) throw error;
      if (!error.afterSending) await slot.release();
      throw new RateLimitedError(
        `${error.exchange} has no room for another request now (the catalog's rate limit): try again in a moment`,
        Math.ceil(error.retryAfterMs / 1000),
      );
    }
  }

  /**
   * At most 20 tests per user per minute, then one per credential per 10 s (a conditional
   * write). The user's budget comes first, so a refused request does not use the credential's slot.
   * Returns the credential's, to give back when the test could not be made.
   */
  private async claimTestSlot(ctx: UserContext, credential: Credential): Promise<Hit> {
    // Counted before the test, in a window that opens with the first: at most 20 a minute, however
    // many arrive at once.
    await take({
      key: `connection-test:user:${ctx.actor.userId.toHexString()}`,
      limit: TESTS_PER_USER_PER_MINUTE,
      windowMs: 60_000,
      what: 'connection tests',
    });
    const now = new Date();
    const claimed = await CredentialModel.updateOne(
      {
        _id: credential._id,
        $or: [
          { last_test_at: null },
          { last_test_at: { $lte: new Date(now.getTime() - TEST_INTERVAL_MS) } },
        ],
      },
      { $set: { last_test_at: now } },
      { timestamps: false },
    );
    if (claimed.matchedCount === 0) {
      throw new RateLimitedError(
        'too many connection tests of this credential: at most one per 10 s',
        TEST_INTERVAL_MS / 1000,
      );
    }
    return {
      release: async () => {
        await CredentialModel.updateOne(
          { _id: credential._id, last_test_at: now },
          { $set: { last_test_at: credential.last_test_at ?? null } },
          { timestamps: false },
        );
      },
    };
  }

  private async loadOwned(ctx: UserContext, id: string): Promise<Credential> {
    const credential = await CredentialModel.findById(toObjectId(id)).lean<Credential>();
    if (!credential) throw new NotFoundError('no credential with that id');
    if (!credential.user_id.equals(ctx.actor.userId))
      throw new ForbiddenError('this credential belongs to another user');
    return credential;
  }

  private async definitionOf(ctx: UserContext, credential: Credential): Promise<WalletDefinition> {
    const definition = await findDefinition(ctx, credential.wallet_id);
    // Definitions are only ever soft-deleted, so this is a broken reference, not a user error.
    if (!definition)
      throw new Error(
        `credential ${credential._id.toHexString()} refers to a missing wallet definition`,
      );
    return definition;
  }
}

/*
 * Credentials as the other modules read them: by id, with the fields they need (every field when
 * no projection is given), each call one command with the context's database comment.
 */

/** Stored fields to read: `{ is_active: 1, connection_state: 1 }`. */
export type CredentialFields = Partial<Record<keyof Credential, 1>>;

/** One credential, whoever owns it (the caller checks); null for an unknown id. */
export function findCredential<T = Credential>(
  ctx: Pick<RequestContext, 'comment'>,
  id: Types.ObjectId,
  fields?: CredentialFields,
): Promise<T | null> {
  return CredentialModel.findById(id, fields).setOptions(dbOptions(ctx)).lean<T>().exec();
}
