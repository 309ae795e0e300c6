import { AgentTokenModel } from '../modules/auth/agent-token.model';
import { UserModel } from '../modules/auth/user.model';
import { UserWalletEventModel } from '../modules/audit/user-wallet-event.model';
import { ExchangeBudgetSlotModel } from '../modules/catalog/exchange-budget';
import { WalletDefinitionModel } from '../modules/catalog/wallet-definition.model';
import { CredentialBalanceModel } from '../modules/credentials/credential-balance.model';
import { CredentialModel } from '../modules/credentials/credential.model';
import { UserWalletModel } from '../modules/wallets/user-wallet.model';
import { RateLimitModel } from '../shared/rate-limit';

/**
 * Every model whose indexes start-up makes (lifecycle.ts), and the benchmark too
 * (bench/lib/service-code.mjs), so both databases have the same indexes.
 */
export const STORED_MODELS = [
  UserModel,
  WalletDefinitionModel,
  CredentialModel,
  CredentialBalanceModel,
  UserWalletModel,
  UserWalletEventModel,
  RateLimitModel,
  AgentTokenModel,
  ExchangeBudgetSlotModel,
];
