import type { RequestBudget } from './budget';
import type { CcxtCredential } from './credentials';

export interface ConnectionCheckField {
  key: string;
  ccxtCredential: CcxtCredential | null;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Host name -> addresses, as dns.lookup({ all: true }) answers. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** Where outgoing requests of a check may go; see guard.ts. */
export interface OutboundPolicy {
  /** Loopback addresses (127.0.0.0/8, ::1) are refused unless this is true. */
  allowLoopback: boolean;
  /** Resolves host names at connect time; tests inject their own. Default: the system resolver. */
  resolve?: Resolver;
}

export interface ConnectionCheckInput {
  /**
   * The ccxt exchange the definition names ('binance', 'okx', ...); null: none, so nothing can be
   * tested.
   */
  ccxtId: string | null;
  environment: 'mainnet' | 'testnet';
  /**
   * The definition's api_config.base_url (mainnet) or testnet_url (testnet); null when not
   * configured.
   */
  baseUrl: string | null;
  /** The credential's decrypted values, by auth-field key. */
  values: Record<string, string>;
  /** The definition's auth fields: which ccxt credential each key is. */
  fields: readonly ConnectionCheckField[];
  /** Default 10_000 at the caller. */
  timeoutMs: number;
  /** Platform policy switch, default false at the caller. */
  allowWithdrawalKeys: boolean;
  /** REQUIRE_IP_RESTRICTED_KEYS: a mainnet key that can trade must be bound to IPs. */
  requireIpRestrictedKeys: boolean;
  /** EGRESS_IPS: the addresses findings tell the user to whitelist on the key; may be empty. */
  egressAddresses: readonly string[];
  network: OutboundPolicy;
  /** Each request takes its share of the exchange's rate limit here first; none: no limit. */
  budget?: RequestBudget;
}

/**
 * - ok: the exchange accepted a signed request of the key;
 * - rejected: the key is refused (by the exchange, by its shape, or by the platform's policy):
 *   testing again without changing it will not help;
 * - unreachable: the exchange could not be asked, or its answer says nothing about the key
 *   (network, timeout, rate limit, clock, unknown errors): testing again later may pass;
 * - untestable: no test can prove this key here (no ccxt exchange, a public look-up, no or a
 *   refused URL): an admin must change the definition.
 */
export type CheckKind = 'ok' | 'rejected' | 'unreachable' | 'untestable';
export type FailureKind = Exclude<CheckKind, 'ok'>;

export interface AssetBalance {
  asset: string;
  free: number;
  used: number;
  total: number;
}

/** What the exchange says a key may do; null where it does not tell. */
export interface KeyPermissions {
  read: boolean | null;
  trade: boolean | null;
  withdraw: boolean | null;
  ipRestricted: boolean | null;
  /**
   * When the exchange ends the key's trading rights (Binance's tradingAuthorityExpirationTime, a
   * Hyperliquid API wallet's validUntil); left out where the exchange tells no end.
   */
  tradingExpiresAt?: Date;
}

export interface ConnectionCheckResult {
  ok: boolean;
  kind: CheckKind;
  /**
   * A clear message for the user; NEVER contains any of input.values' values, nor the exchange's
   * text.
   */
  error?: string;
  /** Safety findings that do not fail the test. */
  warnings: string[];
  /** Non-zero balances by asset, at most 100; empty unless ok. */
  balances: AssetBalance[];
  permissions: KeyPermissions | null;
  /** Set when the test failed on an answer it could not read; see UnreadableAnswer. */
  unreadable?: UnreadableAnswer;
}

/**
 * For the service's log, never for a response: an error that is neither ccxt's nor the network's
 * was thrown after the exchange answered, so its answer is what broke the code reading it (ccxt's
 * or ours). Only the error's class and the answer's HTTP status are kept: the message may quote
 * the answer.
 */
export interface UnreadableAnswer {
  errorClass: string;
  httpStatus: number;
}

export interface ExchangeConnector {
  check(input: ConnectionCheckInput): Promise<ConnectionCheckResult>;
}
