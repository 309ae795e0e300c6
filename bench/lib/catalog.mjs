// The catalog the benchmark seeds: the service's built-in definitions (BUILT_IN_DEFINITIONS, from
// dist/) and, listed after them, definitions of the bench's own that exercise what the built-in
// ones don't: OKX with three auth fields, dYdX with a field ccxt has no name for, and an inactive
// one. 4 active and 1 inactive while the built-in catalog is Binance and Hyperliquid.

import { BUILT_IN_DEFINITIONS } from './service-code.mjs';

const BENCH_DEFINITIONS = [
  {
    name: 'OKX',
    slug: 'okx',
    ccxt_id: 'okx',
    type: 'cex',
    description: 'Spot, futures and perpetual swaps',
    logo: 'https://static.okx.example/logo.svg',
    auth_fields: [
      {
        key: 'api_key',
        label: 'API Key',
        type: 'string',
        required: true,
        encrypted: false,
        placeholder: 'Enter your OKX API key',
        help_text: null,
        ccxt_credential: 'apiKey',
      },
      {
        key: 'api_secret',
        label: 'Secret Key',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: null,
        help_text: 'Shown once when the key is created',
        ccxt_credential: 'secret',
      },
      {
        key: 'passphrase',
        label: 'Passphrase',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: null,
        help_text: 'The passphrase chosen for this API key',
        ccxt_credential: 'password',
      },
    ],
    features: {
      spot: true,
      futures: true,
      perpetuals: true,
      leverage: { min: 1, max: 100 },
      supported_assets: ['BTC', 'ETH', 'SOL', 'XRP', 'USDT'],
    },
    api_config: {
      base_url: 'https://www.okx.com',
      testnet_url: null,
      websocket_url: 'wss://ws.okx.com:8443/ws/v5/public',
      rate_limit: 600,
    },
    is_active: true,
  },
  {
    name: 'dYdX',
    slug: 'dydx',
    ccxt_id: 'dydx',
    type: 'perpetuals',
    description: 'Decentralized perpetuals on its own chain',
    logo: null,
    auth_fields: [
      {
        key: 'mnemonic',
        label: 'Mnemonic',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: 'twelve or twenty-four words',
        help_text: 'The seed phrase of the trading account',
        ccxt_credential: null,
      },
    ],
    features: {
      spot: false,
      futures: false,
      perpetuals: true,
      leverage: { min: 1, max: 20 },
      supported_assets: ['BTC', 'ETH'],
    },
    api_config: {
      base_url: 'https://indexer.dydx.trade',
      testnet_url: 'https://indexer.v4testnet.dydx.exchange',
      websocket_url: null,
      rate_limit: 300,
    },
    is_active: true,
  },
  {
    name: 'Legacy DEX',
    slug: 'legacy-dex',
    ccxt_id: null,
    type: 'dex',
    description: 'No longer offered',
    logo: null,
    auth_fields: [
      {
        key: 'private_key',
        label: 'Private Key',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: null,
        help_text: null,
        ccxt_credential: 'privateKey',
      },
    ],
    features: {
      spot: true,
      futures: false,
      perpetuals: false,
      leverage: { min: 1, max: 1 },
      supported_assets: ['ETH'],
    },
    api_config: {
      base_url: 'https://legacy.example',
      testnet_url: null,
      websocket_url: null,
      rate_limit: 60,
    },
    is_active: false,
  },
];

const builtIn = new Set(BUILT_IN_DEFINITIONS.map((d) => d.slug));
const lastOrder = Math.max(0, ...BUILT_IN_DEFINITIONS.map((d) => d.order));

export const DEFINITIONS = [
  ...BUILT_IN_DEFINITIONS,
  ...BENCH_DEFINITIONS.filter((d) => !builtIn.has(d.slug)).map((d, i) => ({
    ...d,
    order: lastOrder + i + 1,
  })),
];

export const ACTIVE_DEFINITIONS = DEFINITIONS.filter((d) => d.is_active).length;

/** The active definitions' slugs as walletDefinitions lists them (by order, then name). */
export const ACTIVE_SLUGS = DEFINITIONS.filter((d) => d.is_active)
  .sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  .map((d) => d.slug);

/** A definition of the catalog by its slug. */
export const definitionOf = (slug) => DEFINITIONS.find((d) => d.slug === slug);
