/**
 * ccxt's names for an exchange's credentials (the keys of its `requiredCredentials`, and the
 * constructor options it reads them from). Stored as ccxt spells them, so the platform's Python
 * services can pass a definition's values to ccxt unchanged.
 */
export enum CcxtCredential {
  API_KEY = 'apiKey',
  SECRET = 'secret',
  PASSWORD = 'password',
  UID = 'uid',
  LOGIN = 'login',
  TWOFA = 'twofa',
  PRIVATE_KEY = 'privateKey',
  WALLET_ADDRESS = 'walletAddress',
  TOKEN = 'token',
  ACCOUNT_ID = 'accountId',
}

export const CCXT_CREDENTIALS: readonly CcxtCredential[] = Object.values(CcxtCredential);

export function isCcxtCredential(name: string): name is CcxtCredential {
  return (CCXT_CREDENTIALS as readonly string[]).includes(name);
}

/** An auth field that names no ccxt credential is one of these by its key (the additions' list). */
const BY_KEY: Readonly<Record<string, CcxtCredential>> = {
  api_key: CcxtCredential.API_KEY,
  api_secret: CcxtCredential.SECRET,
  secret: CcxtCredential.SECRET,
  passphrase: CcxtCredential.PASSWORD,
  password: CcxtCredential.PASSWORD,
  uid: CcxtCredential.UID,
  private_key: CcxtCredential.PRIVATE_KEY,
  wallet_address: CcxtCredential.WALLET_ADDRESS,
};

export function defaultCcxtCredential(key: string): CcxtCredential | null {
  return Object.hasOwn(BY_KEY, key) ? BY_KEY[key] : null;
}

export interface CredentialFieldDraft {
  key: string;
  label: string;
  /** A secret is a PASSWORD field (a FILE one for PEM keys), encrypted at rest. */
  secret: boolean;
  /**
   * What the credential is, in words, for error messages: "ccxt's password (the API passphrase)".
   */
  meaning: string;
  placeholder: string;
  helpText: string;
}

/** How a template drafts the auth field for each credential. */
export const CREDENTIAL_FIELDS: Readonly<Record<CcxtCredential, CredentialFieldDraft>> = {
  apiKey: {
    key: 'api_key',
    label: 'API Key',
    secret: false,
    meaning: 'the API key',
    placeholder: 'Enter your API key',
    helpText: "The key of an API key pair created in the exchange's settings",
  },
  secret: {
    key: 'api_secret',
    label: 'API Secret',
    secret: true,
    meaning: 'the API secret',
    placeholder: 'Enter your API secret',
    helpText: 'Keep this secret and never share it',
  },
  password: {
    key: 'passphrase',
    label: 'API Passphrase',
    secret: true,
    meaning: 'the API passphrase',
    placeholder: 'Enter your API passphrase',
    helpText: 'The passphrase you chose when you created the API key',
  },
  uid: {
    key: 'uid',
    label: 'User ID',
    secret: false,
    meaning: 'the user id',
    placeholder: 'Enter your user ID',
    helpText: "Your account's user or client ID at the exchange",
  },
  login: {
    key: 'login',
    label: 'Login',
    secret: false,
    meaning: 'the login',
    placeholder: 'Enter your login',
    helpText: 'The login (user name or email) of your exchange account',
  },
  twofa: {
    key: 'twofa',
    label: '2FA Secret',
    secret: true,
    meaning: 'the two-factor secret',
    placeholder: 'Enter your 2FA secret',
    helpText: 'The secret of your two-factor authenticator, as the exchange shows it',
  },
  privateKey: {
    key: 'private_key',
    label: 'Private Key',
    secret: true,
    meaning: 'the private key',
    placeholder: 'Enter your private key',
    helpText: 'The private key that signs your requests',
  },
  walletAddress: {
    key: 'wallet_address',
    label: 'Wallet Address',
    secret: false,
    meaning: 'the wallet address',
    placeholder: '0x...',
    helpText: 'The address of your account',
  },
  token: {
    key: 'token',
    label: 'API Token',
    secret: true,
    meaning: 'the API token',
    placeholder: 'Enter your API token',
    helpText: 'Keep this secret and never share it',
  },
  accountId: {
    key: 'account_id',
    label: 'Account ID',
    secret: false,
    meaning: 'the account id',
    placeholder: 'Enter your account ID',
    helpText: "Your account's ID at the exchange",
  },
};

/** "ccxt's password (the API passphrase)" */
export function describeCredential(credential: CcxtCredential): string {
  return `ccxt's ${credential} (${CREDENTIAL_FIELDS[credential].meaning})`;
}

/**
 * `fetchBalance` of these is a public look-up by address: a balance proves nothing about a key.
 * A test can prove such a key only with a check of its own (SIGNED_CHECKS).
 */
export const PUBLIC_BALANCE_EXCHANGES: ReadonlySet<string> = new Set([
  'derive',
  'dydx',
  'hyperliquid',
  'lighter',
  'nado',
  'pacifica',
]);

/** Exchanges whose connection test signs something the exchange verifies, beyond fetchBalance. */
export const SIGNED_CHECKS: ReadonlySet<string> = new Set(['hyperliquid']);

/** Whether a connection test can prove a key of this ccxt exchange with a signed request. */
export function hasSignedProof(ccxtId: string): boolean {
  return !PUBLIC_BALANCE_EXCHANGES.has(ccxtId) || SIGNED_CHECKS.has(ccxtId);
}

/**
 * Credentials an exchange's own check derives when they are left out, so their field may be
 * optional: Hyperliquid's account address is the private key's own unless it is an API wallet's.
 */
export const DERIVED_CREDENTIALS: Readonly<Record<string, readonly CcxtCredential[]>> = {
  hyperliquid: [CcxtCredential.WALLET_ADDRESS],
};

/** Credentials that are PEM keys (a FILE field keeps their lines). */
export const PEM_CREDENTIALS: Readonly<Record<string, readonly CcxtCredential[]>> = {
  // Coinbase's CDP keys: an EC private key; Revolut X: an Ed25519 private key.
  coinbase: [CcxtCredential.SECRET],
  revolutx: [CcxtCredential.PRIVATE_KEY],
};

export function derivedCredentials(ccxtId: string): readonly CcxtCredential[] {
  return Object.hasOwn(DERIVED_CREDENTIALS, ccxtId) ? DERIVED_CREDENTIALS[ccxtId] : [];
}

export function pemCredentials(ccxtId: string): readonly CcxtCredential[] {
  return Object.hasOwn(PEM_CREDENTIALS, ccxtId) ? PEM_CREDENTIALS[ccxtId] : [];
}
