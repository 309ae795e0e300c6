import { CcxtCredential } from '../../exchanges/credentials';
import { AuthFieldType, WalletType, type WalletDefinition } from './wallet-definition.model';

/** The built-in catalog (spec §1 seed data), as stored. */
export type SeedDefinition = Omit<WalletDefinition, '_id' | 'created_at' | 'updated_at'>;

export const BUILT_IN_DEFINITIONS: SeedDefinition[] = [
  {
    name: 'Binance',
    slug: 'binance',
    ccxt_id: 'binance',
    type: WalletType.CEX,
    description: 'Leading cryptocurrency exchange with spot and futures trading',
    logo: null,
    auth_fields: [
      {
        key: 'api_key',
        label: 'API Key',
        type: AuthFieldType.STRING,
        required: true,
        encrypted: false,
        placeholder: 'Enter your Binance API key',
        help_text: 'Find this in your Binance account settings',
        ccxt_credential: CcxtCredential.API_KEY,
      },
      {
        key: 'api_secret',
        label: 'API Secret',
        type: AuthFieldType.PASSWORD,
        required: true,
        encrypted: true,
        placeholder: 'Enter your API secret',
        help_text: 'Keep this secret and never share it',
        ccxt_credential: CcxtCredential.SECRET,
      },
    ],
    features: {
      spot: true,
      futures: true,
      perpetuals: true,
      leverage: { min: 1, max: 125 },
      supported_assets: ['BTC', 'ETH', 'BNB', 'SOL', 'USDT'],
    },
    api_config: {
      base_url: 'https://api.binance.com',
      testnet_url: 'https://testnet.binance.vision',
      websocket_url: 'wss://stream.binance.com:9443',
      rate_limit: 1200,
    },
    is_active: true,
    order: 1,
  },
  {
    name: 'Hyperliquid',
    slug: 'hyperliquid',
    ccxt_id: 'hyperliquid',
    type: WalletType.PERPETUALS,
    description: 'Decentralized perpetuals exchange',
    logo: null,
    auth_fields: [
      {
        key: 'private_key',
        label: 'Private Key',
        type: AuthFieldType.PASSWORD,
        required: true,
        encrypted: true,
        placeholder: 'Enter your API wallet private key',
        help_text:
          "The private key of an API wallet approved for your account (your account's own key can withdraw funds, and is refused)",
        ccxt_credential: CcxtCredential.PRIVATE_KEY,
      },
      {
        // ccxt signs with the key but addresses the account by its address, which an API
        // (agent) wallet's key does not reveal.
        key: 'wallet_address',
        label: 'Wallet Address',
        type: AuthFieldType.STRING,
        required: false,
        encrypted: false,
        placeholder: '0x...',
        help_text:
          'The address of your main account; needed when the private key belongs to an API wallet',
        ccxt_credential: CcxtCredential.WALLET_ADDRESS,
      },
    ],
    features: {
      spot: false,
      futures: false,
      perpetuals: true,
      leverage: { min: 1, max: 50 },
      supported_assets: ['BTC', 'ETH', 'SOL'],
    },
    api_config: {
      base_url: 'https://api.hyperliquid.xyz',
      testnet_url: 'https://api.hyperliquid-testnet.xyz',
      websocket_url: 'wss://api.hyperliquid.xyz/ws',
      rate_limit: 300,
    },
    is_active: true,
    order: 2,
  },
];
