import type { Exchange } from 'ccxt';
import {
  CcxtCredential,
  CREDENTIAL_FIELDS,
  derivedCredentials,
  hasSignedProof,
  isCcxtCredential,
  pemCredentials,
} from './credentials';
import { ccxtExchangeIds, isRecord, loadCcxt } from './hosts';

export interface AuthFieldDraft {
  key: string;
  label: string;
  type: 'string' | 'password' | 'file';
  required: boolean;
  encrypted: boolean;
  placeholder: string;
  helpText: string;
  ccxtCredential: CcxtCredential;
}

export interface DefinitionDraft {
  name: string;
  slug: string;
  type: 'cex' | 'dex' | 'perpetuals';
  description: string | null;
  logo: string | null;
  ccxtId: string;
  authFields: AuthFieldDraft[];
  features: {
    spot: boolean;
    futures: boolean;
    perpetuals: boolean;
    leverage: { min: number; max: number };
  };
  apiConfig: {
    baseUrl: string;
    testnetUrl: string | null;
    websocketUrl: string | null;
    rateLimit: number;
  };
}

/**
 * What ccxt knows of one exchange, and a catalog entry drafted from it (exchangeTemplates shows it
 * to admins as the GraphQL type ExchangeTemplate).
 */
export interface CcxtExchangeFacts {
  ccxtId: string;
  name: string;
  requiredCredentials: CcxtCredential[];
  hasTestnet: boolean;
  signedProof: boolean;
  draft: DefinitionDraft;
}

/**
 * The leverage ranges we know (those of the built-in catalog); any other exchange starts at {1, 1}.
 */
const KNOWN_LEVERAGE: Readonly<Record<string, number>> = { binance: 125, hyperliquid: 50 };

/** Where in ccxt's `urls.api` the URL the test talks to most likely is. */
const PREFERRED_API_KEYS = ['private', 'rest', 'public'];

/**
 * Facts are read once per exchange from its ccxt instance and cached; the instance is not kept (a
 * hundred of them would stay in memory for nothing).
 */
const cache = new Map<string, CcxtExchangeFacts>();

/** Undefined for an id ccxt does not know. Loads ccxt on first use. */
export function ccxtExchangeFacts(ccxtId: string): CcxtExchangeFacts | undefined {
  if (!ccxtExchangeIds().has(ccxtId)) return undefined;
  let facts = cache.get(ccxtId);
  if (facts === undefined) cache.set(ccxtId, (facts = readFacts(ccxtId)));
  return facts;
}

/** Every exchange ccxt supports, by id. */
export function allCcxtExchangeFacts(): CcxtExchangeFacts[] {
  return [...ccxtExchangeIds()].sort().map((id) => ccxtExchangeFacts(id)!);
}

type ExchangeClass = new (config?: Record<string, unknown>) => Exchange;

function readFacts(ccxtId: string): CcxtExchangeFacts {
  const Exchange = (loadCcxt() as unknown as Record<string, ExchangeClass>)[ccxtId];
  const exchange = new Exchange();
  const declared = exchange.requiredCredentials as Record<string, boolean>;
  const requiredCredentials = Object.keys(declared).filter(
    (name): name is CcxtCredential => declared[name] === true && isCcxtCredential(name),
  );
  const derived = derivedCredentials(ccxtId);
  const pem = pemCredentials(ccxtId);
  // An exchange that requires nothing (dYdX) still reads its balance by the account's address.
  const drafted =
    requiredCredentials.length > 0 ? requiredCredentials : [CcxtCredential.WALLET_ADDRESS];
  const authFields = drafted.map((credential): AuthFieldDraft => {
    const field = CREDENTIAL_FIELDS[credential];
    const isDerived = derived.includes(credential);
    return {
      key: field.key,
      label: field.label,
      type: pem.includes(credential) ? 'file' : field.secret ? 'password' : 'string',
      required: !isDerived,
      encrypted: field.secret,
      placeholder: field.placeholder,
      helpText: isDerived
        ? `${field.helpText}; needed only when the other credentials do not reveal it (an API wallet's key, say)`
        : field.helpText,
      ccxtCredential: credential,
    };
  });

  const has = exchange.has as Record<string, unknown>;
  const spot = has.spot === true;
  const swap = has.swap === true;
  const urls = exchange.urls as Record<string, unknown>;
  const implode = (url: string) => exchange.implodeHostname(url);
  const baseUrl = originOf(pickUrl(urls.api), implode);
  const testnetUrl = originOf(pickUrl(urls.test), implode);
  const www = Array.isArray(urls.www) ? urls.www.find((u) => typeof u === 'string') : urls.www;
  const logo =
    typeof urls.logo === 'string' && /^https?:\/\//.test(urls.logo) && urls.logo.length <= 2000
      ? urls.logo
      : null;
  const rateLimit =
    typeof exchange.rateLimit === 'number' && exchange.rateLimit > 0 ? exchange.rateLimit : 1000;
  const name = exchange.name ?? ccxtId;

  return {
    ccxtId,
    name,
    requiredCredentials,
    hasTestnet: urls.test !== undefined,
    signedProof: hasSignedProof(ccxtId),
    draft: {
      name,
      slug: ccxtId,
      type: swap && !spot ? 'perpetuals' : exchange.dex === true ? 'dex' : 'cex',
      description:
        typeof www === 'string'
          ? `${name}, through ccxt's "${ccxtId}" exchange (${www})`
          : `${name}, through ccxt's "${ccxtId}" exchange`,
      logo,
      ccxtId,
      authFields,
      features: {
        spot,
        futures: has.future === true,
        perpetuals: swap,
        leverage: { min: 1, max: KNOWN_LEVERAGE[ccxtId] ?? 1 },
      },
      apiConfig: {
        // ccxt's first API host; every URL of a test is pointed at this one origin.
        baseUrl: baseUrl ?? `https://${ccxtId}.invalid`,
        testnetUrl,
        websocketUrl: null,
        // ccxt's milliseconds between requests, as requests per minute.
        rateLimit: Math.max(1, Math.round(60_000 / rateLimit)),
      },
    },
  };
}

function pickUrl(tree: unknown): string | undefined {
  if (typeof tree === 'string') return tree;
  if (!isRecord(tree)) return undefined;
  for (const key of PREFERRED_API_KEYS) if (typeof tree[key] === 'string') return tree[key];
  for (const value of Object.values(tree)) {
    const found = pickUrl(value);
    if (found !== undefined) return found;
  }
  return undefined;
}

function originOf(url: string | undefined, implode: (url: string) => string): string | null {
  if (url === undefined) return null;
  try {
    const parsed = new URL(implode(url));
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.origin : null;
  } catch {
    return null;
  }
}
