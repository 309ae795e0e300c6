import { performance } from 'node:perf_hooks';
import type { Config } from '../../core/config';
import { dbOptions, type ActorContext } from '../../core/context';
import { InvalidToken } from '../../crypto/fernet';
import type { Keyring } from '../../crypto/keyring';
import type {
  CheckKind,
  ConnectionCheckInput,
  ConnectionCheckResult,
  KeyPermissions as FoundPermissions,
} from '../../exchanges/types';
import { expiryPolicy } from '../../exchanges/findings';
import { ccxtCredentialOf } from '../catalog/ccxt-mapping';
import { slotsFor, TestBudget } from '../catalog/exchange-budget';
import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { CredentialBalanceModel, insertBalanceSnapshot } from './credential-balance.model';
import { checkDelayMs, checkDueAt, recordOutcome, type CredentialWallets } from './credential-link';
import { plainValues } from './credential-values';
import { PAPER_TEST_WARNING } from './paper';
import {
  ConnectionState,
  CredentialModel,
  Environment,
  type Credential,
  type KeyPermissions,
} from './credential.model';
import type { ConnectionTestResult } from './credential.types';
import { metrics } from '../../core/metrics';

export const UNREADABLE_CREDENTIALS = "stored credentials can't be decrypted; enter them again";

export type ConnectionChecker = (input: ConnectionCheckInput) => Promise<ConnectionCheckResult>;

/**
 * The check's kind as the credential's state. An untestable key is not the key's fault: nothing is
 * paused.
 */
const STATE_OF: Record<CheckKind, ConnectionState> = {
  ok: ConnectionState.CONNECTED,
  rejected: ConnectionState.REJECTED,
  unreachable: ConnectionState.UNREACHABLE,
  untestable: ConnectionState.UNREACHABLE,
};

/**
 * A connection test of a stored credential, however it was started (testCredentialConnection or
 * the service's schedule): decrypts, calls the exchange, and records what it found in one place
 * (record), so both kinds count the same.
 */
export class ConnectionTester {
  /** Requests the last test sent, by exchange (definition id) and environment. */
  private readonly requestsPerTest = new Map<string, number>();

  constructor(
    private readonly keyring: Keyring,
    private readonly exchanges: Config['exchanges'],
    private readonly checkConnection: ConnectionChecker,
    /** CREDENTIAL_CHECK_INTERVAL */
    private readonly intervalMs: number,
    private readonly wallets: CredentialWallets,
  ) {}

  /**
   * For its user (testCredentialConnection) or for the service's schedule (a system context, whose
   * comment its commands carry). Throws ExchangeBudgetExhausted, having recorded nothing, when the
   * exchange's rate limit had no room for one of its requests in time.
   */
  async test(
    ctx: ActorContext,
    credential: Credential,
    definition: WalletDefinition,
  ): Promise<ConnectionTestResult> {
    const id = credential._id.toHexString();
    // As the logs have always named who started a test.
    const by = ctx.actor.kind === 'system' ? 'service' : 'user';
    if (credential.environment === Environment.PAPER)
      return this.testPaper(ctx, credential, definition, by);
    const environment = credential.environment;
    let values: Record<string, string>;
    try {
      values = plainValues(definition, credential.credentials, this.keyring);
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
      ctx.logger.warn({ credentialId: id, by }, 'stored credential values could not be decrypted');
      metrics.connectionTests.inc({
        exchange: definition.ccxt_id ?? 'none',
        outcome: 'rejected',
        environment,
      });
      return this.record(
        ctx,
        credential,
        {
          ok: false,
          kind: 'rejected',
          error: UNREADABLE_CREDENTIALS,
          warnings: [],
          balances: [],
          permissions: null,
        },
        null,
      );
    }

    // As many slots of the exchange's budget as the last test there sent requests.
    const shape = `${definition._id.toHexString()}:${environment}`;
    const budget = new TestBudget(
      ctx,
      definition,
      by === 'service' ? 'service' : 'user',
      this.requestsPerTest.get(shape),
    );
    const started = performance.now();
    const found = await this.checkConnection({
      ccxtId: definition.ccxt_id ?? null,
      environment,
      baseUrl:
        environment === Environment.TESTNET
          ? definition.api_config.testnet_url
          : definition.api_config.base_url,
      values,
      fields: definition.auth_fields.map((field) => ({
        key: field.key,
        ccxtCredential: ccxtCredentialOf(field),
      })),
      timeoutMs: this.exchanges.timeoutMs,
      allowWithdrawalKeys: this.exchanges.allowWithdrawalKeys,
      requireIpRestrictedKeys: this.exchanges.requireIpRestrictedKeys,
      egressAddresses: this.exchanges.egressIps,
      network: { allowLoopback: this.exchanges.allowLoopback },
      budget,
    }).finally(async () => {
      await budget.release();
      // Whatever the connector made of it: a request the budget held back was never sent, so the
      // test says nothing of the key and records nothing. One held back after others went shows a
      // test needs more: the next one takes that many before it starts.
      if (budget.refusal) {
        if (budget.sent > 0)
          this.requestsPerTest.set(
            shape,
            Math.max(this.requestsPerTest.get(shape) ?? 1, budget.sent + 1),
          );
        const needs = this.requestsPerTest.get(shape) ?? 1;
        if (by === 'service' && needs > slotsFor(definition.api_config.rate_limit, 'service'))
          ctx.logger.error(
            { exchange: definition.slug, requestsPerTest: needs },
            "a re-test on this exchange needs more requests than half its rate limit allows: raise the definition's apiConfig.rateLimit",
          );
        throw budget.refusal;
      }
    });
    // A passing test sent all a test of the exchange sends; a failing one may have stopped short.
    if (found.ok || !this.requestsPerTest.has(shape))
      this.requestsPerTest.set(shape, Math.max(1, budget.sent));
    const outcome = expiryPolicy(found, new Date(), this.exchanges.keyExpiryWarningDays);
    const latencyMs = Math.round(performance.now() - started);
    // ccxt ids come from ccxt's own list: a label that can't hold what an admin typed.
    const exchange = definition.ccxt_id ?? 'none';
    metrics.connectionTests.inc({
      exchange,
      outcome: outcome.kind === 'ok' || outcome.kind === 'rejected' ? outcome.kind : 'unreachable',
      environment,
    });
    metrics.connectionTestDuration.observe({ exchange, environment }, latencyMs / 1000);
    // Never the balances: they are the owner's. Nothing of the exchange's answer either: an
    // unreadable one is named by its error's class and its HTTP status.
    const tested = {
      credentialId: id,
      exchange: definition.slug,
      ok: outcome.ok,
      kind: outcome.kind,
      latencyMs,
      by,
    };
    if (outcome.unreadable)
      ctx.logger.warn(
        { ...tested, ...outcome.unreadable },
        "connection tested: the exchange's answer could not be read",
      );
    else ctx.logger.info(tested, 'connection tested');
    return this.record(ctx, credential, outcome, latencyMs);
  }

  /**
   * A paper credential's test contacts no exchange and proves nothing: it passes, shows the paper
   * balances, and warns so. It adds no balance snapshot (the owner's resets do) and moves no
   * schedule (a paper credential is never in the service's queue).
   */
  private async testPaper(
    ctx: ActorContext,
    credential: Credential,
    definition: WalletDefinition,
    by: 'service' | 'user',
  ): Promise<ConnectionTestResult> {
    const testedAt = new Date();
    const updated = await CredentialModel.findOneAndUpdate(
      { _id: credential._id },
      {
        $set: {
          connection_state: ConnectionState.CONNECTED,
          is_connected: true,
          connection_error: null,
          last_checked_at: testedAt,
        },
      },
      { returnDocument: 'after', ...dbOptions(ctx) },
    ).lean<Credential>();
    const exchange = definition.ccxt_id ?? 'none';
    metrics.connectionTests.inc({ exchange, outcome: 'ok', environment: Environment.PAPER });
    ctx.logger.info(
      { credentialId: credential._id.toHexString(), exchange: definition.slug, ok: true, by },
      'connection tested: paper, no exchange contacted',
    );
    return {
      ok: true,
      credential: updated ?? credential,
      latencyMs: null,
      error: null,
      warnings: [PAPER_TEST_WARNING],
      balances: (updated ?? credential).balances ?? [],
      permissions: null,
      testedAt,
    };
  }

  /**
   * The one place a test's outcome is recorded. Written only if the values are still the ones
   * tested; otherwise it describes nothing stored. A passing test keeps what it found
   * (permissions, balances, and a snapshot of the balances in credential_balances); a failing one
   * leaves the last passing test's, dated by balancesAt. Either moves the next test (see
   * checkDelayMs), to the key's expiry at the latest, so a live wallet on it pauses when it ends;
   * a refused key pauses the credential's live wallets.
   */
  private async record(
    ctx: ActorContext,
    credential: Credential,
    outcome: ConnectionCheckResult,
    latencyMs: number | null,
  ): Promise<ConnectionTestResult> {
    const tagged = dbOptions(ctx);
    const testedAt = new Date();
    const permissions = storedPermissions(outcome.permissions);
    const balances = outcome.ok ? outcome.balances : [];
    const error = outcome.ok ? null : (outcome.error ?? 'the connection test failed');
    const failures = outcome.kind === 'unreachable' ? (credential.check_failures ?? 0) + 1 : 0;
    // What the exchange said of the key's end, whenever it answered about the key (a refusal for
    // expiry keeps its date); a test that heard nothing of the key leaves the last one's.
    const expiresAt =
      outcome.ok || outcome.permissions !== null
        ? (outcome.permissions?.tradingExpiresAt ?? null)
        : (credential.key_expires_at ?? null);
    const due = checkDueAt(
      testedAt,
      checkDelayMs(outcome.kind, failures, this.intervalMs),
      expiresAt,
      outcome.ok,
    );
    const state = STATE_OF[outcome.kind];
    const common = {
      connection_state: state,
      is_connected: outcome.ok,
      last_checked_at: testedAt,
      check_failures: failures,
      check_due_at: due,
      key_expires_at: expiresAt,
    };
    const set = outcome.ok
      ? {
          ...common,
          last_verified_at: testedAt,
          connection_error: null,
          permissions,
          balances,
          balances_at: testedAt,
        }
      : { ...common, connection_error: error };

    // The snapshot goes first and is taken back if the outcome is not recorded: a delete of the
    // credential meanwhile removes it either way (CredentialService.delete), so none outlives it.
    const snapshot = outcome.ok
      ? await insertBalanceSnapshot(ctx, credential._id, balances, testedAt)
      : null;
    const updated = await recordOutcome(ctx, credential, set, due);
    if (updated) {
      if (state === ConnectionState.REJECTED)
        await this.wallets.pauseRefused(ctx, credential, error!);
    } else if (snapshot) {
      await CredentialBalanceModel.deleteOne({ _id: snapshot }, tagged);
    }
    return {
      ok: outcome.ok,
      credential:
        updated ??
        (await CredentialModel.findById(credential._id).setOptions(tagged).lean<Credential>()) ??
        credential,
      latencyMs,
      error,
      warnings: outcome.warnings,
      balances,
      permissions,
      testedAt,
    };
  }
}

function storedPermissions(found: FoundPermissions | null): KeyPermissions | null {
  return found === null
    ? null
    : {
        read: found.read,
        trade: found.trade,
        withdraw: found.withdraw,
        ip_restricted: found.ipRestricted,
        trading_expires_at: found.tradingExpiresAt ?? null,
      };
}
