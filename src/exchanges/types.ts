export interface ConnectionCheckInput {
  slug: string; // the wallet definition's slug: 'binance', 'hyperliquid', ...
  environment: 'mainnet' | 'testnet';
  baseUrl: string | null; // the definition's api_config.base_url (mainnet) or testnet_url (testnet); null when not configured
  values: Record<string, string>; // the credential's decrypted values, keyed by auth-field key (binance: api_key, api_secret; hyperliquid: private_key, optional wallet_address)
  timeoutMs: number; // default 10_000 at the caller
  allowWithdrawalKeys: boolean; // platform policy switch, default false at the caller
}

export interface ConnectionCheckResult {
  ok: boolean;
  error?: string; // a clear message for the user; NEVER contains any of input.values' values
  warnings: string[]; // safety findings that do not fail the test
}

export interface ExchangeConnector {
  check(input: ConnectionCheckInput): Promise<ConnectionCheckResult>;
}
