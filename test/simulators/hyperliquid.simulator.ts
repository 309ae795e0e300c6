import { encode as msgpack } from '@msgpack/msgpack';
import { nodeRequire } from '../../src/exchanges/node-require';
import { startRecordingServer, type Simulator, type SimulatorReply } from './recording-server';

// ES modules: loaded through Node's own require, as the service loads ccxt (see node-require.ts).
const { secp256k1 } = nodeRequire(
  '@noble/curves/secp256k1.js',
) as typeof import('@noble/curves/secp256k1.js');
const { keccak_256 } = nodeRequire(
  '@noble/hashes/sha3.js',
) as typeof import('@noble/hashes/sha3.js');

export interface HyperliquidAccount {
  address: string;
  /** Addresses of the account's approved agents (API wallets). */
  agents?: string[];
  /**
   * Each agent's validUntil (ms), by address, as extraAgents tells it; default 90 days after the
   * simulator started (Hyperliquid's default lifetime of an API wallet).
   */
  agentsValidUntil?: Record<string, number>;
  /**
   * Default 'user'. A sub-account names its master, a vault its leader; neither signs for itself.
   */
  role?: 'user' | 'subAccount' | 'vault';
  master?: string;
  leader?: string;
  /** marginSummary.accountValue; default '1000.0'. */
  accountValue?: string;
  /** spotClearinghouseState balances; default none. */
  spot?: Array<{ coin: string; total: string; hold: string }>;
}

export interface HyperliquidSimulatorOptions {
  accounts: HyperliquidAccount[];
  /** Signatures of the testnet (phantom agent source 'b' rather than 'a'). */
  testnet?: boolean;
  /** Accept connections and requests, never answer. */
  hang?: boolean;
  /** Serve under this path (e.g. '/proxy'), as a base URL with a path would. */
  pathPrefix?: string;
}

export interface HyperliquidSimulator extends Simulator {
  /** The signer recovered from each /exchange request, lower case ('' when none could be). */
  signers: string[];
  /** When it started (ms): agents' default validUntil counts from it. */
  startedAt: number;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const DAY_MS = 86_400_000;

/**
 * Hyperliquid's `POST /info` (clearinghouseState, spotClearinghouseState, userRole, vaultDetails,
 * extraAgents)
 * and `POST /exchange` for the `noop` action. An action is checked as Hyperliquid does: its
 * hash is keccak256(msgpack(action) ‖ nonce (8 bytes, big-endian) ‖ vault flag [‖ vault
 * address]), signed as EIP-712 `Agent { source, connectionId }` in the domain
 * {name: "Exchange", version: "1", chainId: 1337, verifyingContract: 0x0}; the signer is recovered
 * from the signature, and must be a user or an approved agent (acting for the vault's leader or
 * sub-account's master when a vaultAddress is given), or the answer is Hyperliquid's
 * "User or API Wallet 0x... does not exist.".
 */
export async function startHyperliquidSimulator(
  options: HyperliquidSimulatorOptions,
): Promise<HyperliquidSimulator> {
  const prefix = (options.pathPrefix ?? '').replace(/\/+$/, '');
  const accounts = new Map(
    options.accounts.map((account) => [account.address.toLowerCase(), account]),
  );
  const owners = new Map<string, string>();
  for (const account of options.accounts) {
    for (const agent of account.agents ?? [])
      owners.set(agent.toLowerCase(), account.address.toLowerCase());
  }
  const signers: string[] = [];
  const started = Date.now();
  const usedNonces = new Set<string>();

  const simulator = await startRecordingServer(options, (request) => {
    const path = new URL(request.path, 'http://simulator').pathname;
    if (request.method !== 'POST' || (path !== `${prefix}/info` && path !== `${prefix}/exchange`))
      return { status: 404, text: '' };
    const body = request.body;
    if (typeof body !== 'object' || body === null) return unprocessable();
    if (path === `${prefix}/exchange`) return exchange(body as Record<string, unknown>);
    if (!('type' in body)) return unprocessable();
    if (body.type === 'vaultDetails') {
      const vault =
        'vaultAddress' in body && typeof body.vaultAddress === 'string'
          ? accounts.get(body.vaultAddress.toLowerCase())
          : undefined;
      return {
        status: 200,
        json:
          vault?.role === 'vault'
            ? {
                name: 'vault',
                vaultAddress: vault.address.toLowerCase(),
                leader: vault.leader?.toLowerCase(),
                followers: [],
              }
            : null,
      };
    }
    const user =
      'user' in body && typeof body.user === 'string' && ADDRESS.test(body.user)
        ? body.user.toLowerCase()
        : null;
    if (user === null) return unprocessable();
    if (body.type === 'clearinghouseState')
      return { status: 200, json: clearinghouseState(accounts.get(user)) };
    if (body.type === 'spotClearinghouseState')
      return { status: 200, json: { balances: accounts.get(user)?.spot ?? [] } };
    if (body.type === 'extraAgents') {
      // The account's approved agents: [{ address, name, validUntil }], empty for anyone else.
      const account = accounts.get(user);
      const validUntil = new Map(
        Object.entries(account?.agentsValidUntil ?? {}).map(([a, t]) => [a.toLowerCase(), t]),
      );
      return {
        status: 200,
        json: (account?.agents ?? []).map((agent, i) => ({
          address: agent.toLowerCase(),
          name: `api wallet ${i + 1}`,
          validUntil: validUntil.get(agent.toLowerCase()) ?? started + 90 * DAY_MS,
        })),
      };
    }
    if (body.type === 'userRole') {
      const owner = owners.get(user);
      if (owner !== undefined)
        return { status: 200, json: { role: 'agent', data: { user: owner } } };
      const account = accounts.get(user);
      if (account === undefined) return { status: 200, json: { role: 'missing' } };
      if (account.role === 'subAccount')
        return {
          status: 200,
          json: { role: 'subAccount', data: { master: account.master?.toLowerCase() } },
        };
      return { status: 200, json: { role: account.role ?? 'user' } };
    }
    return unprocessable();
  });

  function exchange(body: Record<string, unknown>): SimulatorReply {
    const { action, nonce, signature } = body;
    const vault =
      typeof body.vaultAddress === 'string'
        ? `0x${body.vaultAddress.replace(/^0x/, '').toLowerCase()}`
        : undefined;
    if (
      typeof action !== 'object' ||
      action === null ||
      typeof nonce !== 'number' ||
      !isSignature(signature)
    )
      return unprocessable();
    const signer = recoverSigner(action, nonce, vault, signature, options.testnet ?? false);
    signers.push(signer ?? '');
    if (signer === undefined) return err('Invalid signature');
    // Who the signer acts for: an agent for its account, a user for itself (sub-accounts and vaults
    // have no keys).
    const own = accounts.get(signer);
    const principal =
      owners.get(signer) ??
      (own !== undefined && (own.role ?? 'user') === 'user' ? signer : undefined);
    if (principal === undefined) return err(`User or API Wallet ${signer} does not exist.`);
    if (vault !== undefined) {
      const target = accounts.get(vault);
      const controller =
        target?.role === 'vault'
          ? target.leader
          : target?.role === 'subAccount'
            ? target.master
            : undefined;
      if (controller === undefined || controller.toLowerCase() !== principal)
        return err('Vault not registered or user is not its leader');
    }
    if (Math.abs(Date.now() - nonce) > DAY_MS || usedNonces.has(`${signer}:${nonce}`))
      return err('Invalid nonce: duplicate nonce');
    usedNonces.add(`${signer}:${nonce}`);
    if ((action as { type?: unknown }).type !== 'noop')
      return err('Unsupported action in the simulator');
    return { status: 200, json: { status: 'ok', response: { type: 'default' } } };
  }

  return Object.assign(simulator, { signers, startedAt: started });
}

function err(response: string): SimulatorReply {
  return { status: 200, json: { status: 'err', response } };
}

interface Signature {
  r: string;
  s: string;
  v: number;
}

function isSignature(value: unknown): value is Signature {
  return (
    typeof value === 'object' &&
    value !== null &&
    'r' in value &&
    's' in value &&
    'v' in value &&
    typeof value.r === 'string' &&
    typeof value.s === 'string' &&
    typeof value.v === 'number'
  );
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const fromHex = (text: string) =>
  Uint8Array.from(Buffer.from(text.replace(/^0x/, '').padStart(64, '0'), 'hex'));
const keccak = (...parts: Uint8Array[]) => keccak_256(Buffer.concat(parts));
const text = (value: string) => keccak(Buffer.from(value, 'utf8'));

/** keccak256(msgpack(action) ‖ nonce as 8 bytes ‖ 0x00, or 0x01 ‖ the vault's 20 bytes). */
function actionHash(action: object, nonce: number, vault: string | undefined): Uint8Array {
  const nonceBytes = Buffer.alloc(8);
  nonceBytes.writeBigUInt64BE(BigInt(nonce));
  const vaultBytes =
    vault === undefined
      ? Buffer.from([0])
      : Buffer.concat([Buffer.from([1]), Buffer.from(vault.slice(2), 'hex')]);
  return keccak(msgpack(action), nonceBytes, vaultBytes);
}

/** The EIP-712 digest of the phantom agent Hyperliquid's L1 actions are signed as. */
function agentDigest(connectionId: Uint8Array, testnet: boolean): Uint8Array {
  const domainType = text(
    'EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)',
  );
  const chainId = Buffer.alloc(32);
  chainId.writeUInt32BE(1337, 28);
  const domain = keccak(domainType, text('Exchange'), text('1'), chainId, Buffer.alloc(32));
  const agent = keccak(
    text('Agent(string source,bytes32 connectionId)'),
    text(testnet ? 'b' : 'a'),
    connectionId,
  );
  return keccak(Buffer.from([0x19, 0x01]), domain, agent);
}

function recoverSigner(
  action: object,
  nonce: number,
  vault: string | undefined,
  signature: Signature,
  testnet: boolean,
): string | undefined {
  try {
    const digest = agentDigest(actionHash(action, nonce, vault), testnet);
    const compact = Buffer.concat([fromHex(signature.r), fromHex(signature.s)]);
    const publicKey = secp256k1.Signature.fromBytes(compact, 'compact')
      .addRecoveryBit(signature.v - 27)
      .recoverPublicKey(digest)
      .toBytes(false);
    return `0x${hex(keccak(publicKey.slice(1)).slice(-20))}`;
  } catch {
    return undefined;
  }
}

/** What Hyperliquid answers a body it cannot read. */
function unprocessable(): SimulatorReply {
  return { status: 422, text: 'Failed to deserialize the JSON body into the target type' };
}

/** The documented shape; an unknown address gets the same shape with zeros, as on Hyperliquid. */
function clearinghouseState(account: HyperliquidAccount | undefined): unknown {
  const value = account ? (account.accountValue ?? '1000.0') : '0.0';
  const summary = {
    accountValue: value,
    totalNtlPos: '0.0',
    totalRawUsd: value,
    totalMarginUsed: '0.0',
  };
  return {
    marginSummary: summary,
    crossMarginSummary: summary,
    crossMaintenanceMarginUsed: '0.0',
    withdrawable: value,
    assetPositions: [],
    time: Date.now(),
  };
}
