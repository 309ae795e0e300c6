import { startRecordingServer, type Simulator, type SimulatorReply } from './binance.simulator';

export interface HyperliquidAccount {
  address: string;
  /** Addresses of the account's approved agents (API wallets). */
  agents?: string[];
  /** marginSummary.accountValue; default '1000.0'. */
  accountValue?: string;
}

export interface HyperliquidSimulatorOptions {
  accounts: HyperliquidAccount[];
  /** Accept connections and requests, never answer. */
  hang?: boolean;
  /** Serve under this path (e.g. '/proxy'), as a base URL with a path would. */
  pathPrefix?: string;
}

export type HyperliquidSimulator = Simulator;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** Hyperliquid's `POST /info` for `clearinghouseState` and `userRole`, knowing the given accounts. */
export function startHyperliquidSimulator(options: HyperliquidSimulatorOptions): Promise<HyperliquidSimulator> {
  const prefix = (options.pathPrefix ?? '').replace(/\/+$/, '');
  const accounts = new Map(options.accounts.map((account) => [account.address.toLowerCase(), account]));
  const owners = new Map<string, string>();
  for (const account of options.accounts) {
    for (const agent of account.agents ?? []) owners.set(agent.toLowerCase(), account.address.toLowerCase());
  }

  return startRecordingServer(options, (request) => {
    if (request.method !== 'POST' || new URL(request.path, 'http://simulator').pathname !== `${prefix}/info`) {
      return { status: 404, text: '' };
    }
    const body = request.body;
    if (typeof body !== 'object' || body === null || !('type' in body) || !('user' in body)) return unprocessable();
    const user = typeof body.user === 'string' && ADDRESS.test(body.user) ? body.user.toLowerCase() : null;
    if (user === null) return unprocessable();
    if (body.type === 'clearinghouseState') return { status: 200, json: clearinghouseState(accounts.get(user)) };
    if (body.type === 'userRole') {
      const owner = owners.get(user);
      if (owner !== undefined) return { status: 200, json: { role: 'agent', data: { user: owner } } };
      return { status: 200, json: accounts.has(user) ? { role: 'user' } : { role: 'missing' } };
    }
    return unprocessable();
  });
}

/** What Hyperliquid answers a body it cannot read. */
function unprocessable(): SimulatorReply {
  return { status: 422, text: 'Failed to deserialize the JSON body into the target type' };
}

/** The documented shape; an unknown address gets the same shape with zeros, as on Hyperliquid. */
function clearinghouseState(account: HyperliquidAccount | undefined): unknown {
  const value = account ? (account.accountValue ?? '1000.0') : '0.0';
  const summary = { accountValue: value, totalNtlPos: '0.0', totalRawUsd: value, totalMarginUsed: '0.0' };
  return {
    marginSummary: summary,
    crossMarginSummary: summary,
    crossMaintenanceMarginUsed: '0.0',
    withdrawable: value,
    assetPositions: [],
    time: Date.now(),
  };
}
