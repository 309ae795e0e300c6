import type { Principal } from '../../auth/roles';
import type { Logger } from '../../logger';
import type { WalletDefinition } from '../wallet-definitions/wallet-definition.model';
import { leverageRange } from './ai-policy';
import { apiAiState, deliverEvents, pushEvents, walletEvent, WalletEventKind } from './user-wallet-events';
import { UserWalletModel, type UserWallet } from './user-wallet.model';

const ATTEMPTS = 3;
type Seen = Pick<UserWallet, '_id' | 'version' | 'user_limits' | 'ai_managed_state'>;

/**
 * After an exchange's features change, every wallet on it is brought inside the new leverage
 * range for its mode: the catalog bounds what the AI may have set, not only what it may set next.
 */
export async function clampWalletsToDefinition(logger: Logger, principal: Principal, definition: Pick<WalletDefinition, '_id' | 'features'>): Promise<number> {
  let clamped = 0;
  const cursor = UserWalletModel.find({ wallet_id: definition._id }, { version: 1, user_limits: 1, ai_managed_state: 1 }).lean<Seen[]>().cursor();
  for await (const first of cursor as AsyncIterable<Seen>) {
    let wallet: Seen | null = first;
    for (let attempt = 0; wallet && attempt < ATTEMPTS; attempt++) {
      const { min, max } = leverageRange(definition, wallet.user_limits.trading_mode);
      const current = wallet.ai_managed_state.current_leverage;
      const target = Math.max(min, Math.min(current, max));
      if (target === current) break;
      const event = walletEvent(principal, wallet._id, wallet.version + 1, WalletEventKind.AI_STATE_CHANGED, apiAiState({ current_leverage: current }), apiAiState({ current_leverage: target }));
      const updated = await UserWalletModel.findOneAndUpdate(
        { _id: wallet._id, version: wallet.version },
        { $set: { 'ai_managed_state.current_leverage': target }, $inc: { version: 1 }, ...pushEvents([event]) },
        { returnDocument: 'after', projection: { _id: 1 } },
      ).lean<Pick<UserWallet, '_id'>>();
      if (updated) {
        clamped += 1;
        await deliverEvents(logger, wallet._id, [event]);
        break;
      }
      wallet = await UserWalletModel.findById(wallet._id, { version: 1, user_limits: 1, ai_managed_state: 1 }).lean<Seen>();
    }
  }
  if (clamped > 0) logger.info({ definition: definition._id.toHexString(), clamped }, 'wallets brought inside the changed leverage range');
  return clamped;
}
