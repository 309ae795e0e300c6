import type { hyperliquid } from 'ccxt';
import { ccxtCredentials, explainFailure, prepareCheck } from './ccxt.connector';
import { CcxtCredential } from './credentials';
import {
  failure,
  KEY_UNKNOWN,
  UNEXPECTED_ANSWER,
  UnexpectedAnswerError,
  type ErrorMatcher,
} from './failures';
import { keyExpired, nonZeroBalances, withdrawalPolicy } from './findings';
import { isRecord } from './hosts';
import type { ConnectionCheckResult, ExchangeConnector } from './types';

const PRIVATE_KEY = /^(0x)?[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export const HYPERLIQUID_MATCHERS: readonly ErrorMatcher[] = [
  // {"status":"err","response":"User or API Wallet 0x... does not exist."}
  {
    pattern: /User or API Wallet 0x[0-9a-fA-F]+ does not exist/,
    kind: 'rejected',
    message: KEY_UNKNOWN,
  },
];

const NOOP = { type: 'noop' };

/**
 * Hyperliquid's info endpoint is public, so what it says proves the account's setup, not the key.
 * The key is proven by signing Hyperliquid's `noop` exchange action with it (ccxt's signL1Action,
 * EIP-712 over the action's hash; testnet signatures differ, see sandbox mode) and sending it: the
 * exchange recovers the signer and answers {"status":"ok"} only for a signer it knows. ccxt's
 * createOrder and cancelOrder are never used here: they send approveBuilderFee and setReferrer.
 *
 * Who must sign depends on the account (userRole): a user signs for itself, a sub-account's master
 * and a vault's leader sign for it (with its address as vaultAddress), each either with its own key
 * or with one of its approved agents' (API wallets). The account's own key can withdraw, an
 * agent's can't: the platform's withdrawal policy applies as on any exchange.
 */
export const hyperliquidConnector: ExchangeConnector = {
  async check(input): Promise<ConnectionCheckResult> {
    const credentials = ccxtCredentials(input);
    const privateKey = credentials[CcxtCredential.PRIVATE_KEY];
    if (privateKey !== undefined && !PRIVATE_KEY.test(privateKey)) {
      return failure(
        'rejected',
        'the private key must be 64 hexadecimal characters, optionally prefixed with 0x',
      );
    }
    const walletAddress = credentials[CcxtCredential.WALLET_ADDRESS];
    if (walletAddress !== undefined && !ADDRESS.test(walletAddress)) {
      return failure(
        'rejected',
        'the wallet address must be 0x followed by 40 hexadecimal characters',
      );
    }
    const check = prepareCheck(input, [CcxtCredential.WALLET_ADDRESS]);
    if ('failure' in check) return check.failure;
    const exchange = check.exchange as hyperliquid;
    try {
      const keyAddress = addressOfKey(exchange, privateKey ?? '');
      if (keyAddress === undefined)
        return failure('rejected', 'the private key is not a valid secp256k1 private key');
      // Hyperliquid answers with lower-case addresses; compare (and ask) in lower case.
      const account = (walletAddress ?? keyAddress).toLowerCase();
      const info = (request: Record<string, string>): Promise<unknown> =>
        check.within(exchange.publicPostInfo(request));

      const role = parseUserRole(await info({ type: 'userRole', user: account }));
      let signer: string;
      let vault: string | undefined;
      switch (role?.role) {
        case 'missing':
          return failure('rejected', 'no Hyperliquid account exists for this address');
        case 'agent':
          return failure(
            'rejected',
            walletAddress === undefined
              ? 'this key belongs to an API wallet: set wallet_address to the address of the account it trades for'
              : "the wallet_address is an API wallet's: set it to the address of the account the wallet trades for",
          );
        case 'user':
          signer = account;
          break;
        case 'subAccount':
          if (role.master === undefined) return failure('unreachable', UNEXPECTED_ANSWER);
          [signer, vault] = [role.master, account];
          break;
        case 'vault': {
          const leader = parseLeader(await info({ type: 'vaultDetails', vaultAddress: account }));
          if (leader === undefined) return failure('unreachable', UNEXPECTED_ANSWER);
          [signer, vault] = [leader, account];
          break;
        }
        default:
          return failure('unreachable', UNEXPECTED_ANSWER);
      }
      const ownKey = keyAddress === signer;
      if (!ownKey) {
        const keyRole = parseUserRole(await info({ type: 'userRole', user: keyAddress }));
        if (keyRole === undefined) return failure('unreachable', UNEXPECTED_ANSWER);
        if (keyRole.role !== 'agent' || keyRole.user !== signer)
          return failure('rejected', 'this key is not an approved agent of the account');
      }
      // An API wallet trades until the validUntil its account gave it (90 days by default, 180 at
      // most); the account's own key has no end.
      const expiresAt = ownKey
        ? undefined
        : agentValidUntil(await info({ type: 'extraAgents', user: signer }), keyAddress);
      const permissions = {
        read: true,
        trade: true,
        withdraw: ownKey,
        ipRestricted: null,
        ...(expiresAt === undefined ? {} : { tradingExpiresAt: expiresAt }),
      };
      // Checked before signing: the exchange may no longer know an expired agent at all.
      if (expiresAt !== undefined && expiresAt.getTime() <= Date.now())
        return failure('rejected', keyExpired(expiresAt), { permissions });

      const nonce = exchange.milliseconds();
      // ccxt hashes the vault address without its 0x, and sends it so (as its own actions do).
      const vaultHex = vault?.slice(2);
      const signature = exchange.signL1Action(NOOP, nonce, vaultHex);
      const answer: unknown = await check.within(
        exchange.privatePostExchange({
          action: NOOP,
          nonce,
          signature,
          ...(vaultHex === undefined ? {} : { vaultAddress: vaultHex }),
        }),
      );
      if (!isRecord(answer) || answer.status !== 'ok')
        return failure('unreachable', UNEXPECTED_ANSWER);

      const policy = withdrawalPolicy(permissions, input, {
        error:
          "this is the account's own private key, which can withdraw funds, and must not be used: use an API wallet's key instead, which can't withdraw",
        warning: "this is the account's own private key, which can withdraw funds",
      });
      if (policy.error !== undefined)
        return failure('rejected', policy.error, { warnings: policy.warnings, permissions });
      const balances = nonZeroBalances(
        accountBalance(
          await info({ type: 'clearinghouseState', user: account }),
          await info({ type: 'spotClearinghouseState', user: account }),
        ),
      );
      return { ok: true, kind: 'ok', warnings: policy.warnings, balances, permissions };
    } catch (error) {
      return explainFailure(check, error, HYPERLIQUID_MATCHERS);
    } finally {
      await check.guard.close();
    }
  },
};

/**
 * Lower-case 0x address; undefined for a key outside secp256k1's range (zero, or not below the
 * curve order).
 */
function addressOfKey(exchange: hyperliquid, privateKey: string): string | undefined {
  try {
    return exchange.ethGetAddressFromPrivateKey(privateKey).toLowerCase();
  } catch {
    return undefined;
  }
}

interface UserRole {
  role: string; // 'user' | 'agent' | 'vault' | 'subAccount' | 'missing'
  user?: string; // for 'agent': the account it acts for, lower case
  master?: string; // for 'subAccount': its master account, lower case
}

function parseUserRole(value: unknown): UserRole | undefined {
  if (!isRecord(value) || typeof value.role !== 'string') return undefined;
  const data = isRecord(value.data) ? value.data : {};
  const lower = (field: unknown) =>
    typeof field === 'string' && ADDRESS.test(field) ? field.toLowerCase() : undefined;
  return { role: value.role, user: lower(data.user), master: lower(data.master) };
}

/**
 * The agent's validUntil (ms) in the account's extraAgents answer (a list of { address, name,
 * validUntil }); undefined when the agent is not listed or has none.
 */
function agentValidUntil(value: unknown, agent: string): Date | undefined {
  if (!Array.isArray(value)) throw new UnexpectedAnswerError();
  const entry: unknown = value.find(
    (item) =>
      isRecord(item) && typeof item.address === 'string' && item.address.toLowerCase() === agent,
  );
  const validUntil = isRecord(entry) ? entry.validUntil : undefined;
  return typeof validUntil === 'number' && Number.isSafeInteger(validUntil) && validUntil > 0
    ? new Date(validUntil)
    : undefined;
}

function parseLeader(value: unknown): string | undefined {
  return isRecord(value) && typeof value.leader === 'string' && ADDRESS.test(value.leader)
    ? value.leader.toLowerCase()
    : undefined;
}

/**
 * The perpetuals account (USDC: its value, the margin in use) and the spot balances, as one
 * ccxt-shaped balance structure; the same asset in both is summed.
 */
function accountBalance(
  perps: unknown,
  spot: unknown,
): { total: Record<string, number>; used: Record<string, number>; free: Record<string, number> } {
  const balance = {
    total: {} as Record<string, number>,
    used: {} as Record<string, number>,
    free: {} as Record<string, number>,
  };
  const add = (asset: string, total: number, used: number) => {
    if (!Number.isFinite(total) || !Number.isFinite(used)) return;
    balance.total[asset] = (balance.total[asset] ?? 0) + total;
    balance.used[asset] = (balance.used[asset] ?? 0) + used;
    balance.free[asset] = (balance.free[asset] ?? 0) + total - used;
  };
  if (isRecord(perps) && isRecord(perps.marginSummary)) {
    add(
      'USDC',
      Number(perps.marginSummary.accountValue),
      Number(perps.marginSummary.totalMarginUsed ?? 0),
    );
  }
  if (isRecord(spot) && Array.isArray(spot.balances)) {
    for (const entry of spot.balances) {
      if (isRecord(entry) && typeof entry.coin === 'string')
        add(entry.coin, Number(entry.total), Number(entry.hold ?? 0));
    }
  }
  return balance;
}
