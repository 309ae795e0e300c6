import { dbOptions } from '../../core/context';
import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { leverageRange } from './ai-policy';
import { apiAiState } from '../audit/api-names';
import { walletEvent } from '../audit/build-events';
import { WalletEventKind } from '../audit/user-wallet-event.model';
import { userChanged, UserWalletModel, type UserWallet } from './user-wallet.model';
import type { WalletWriteContext } from './wallet-status';
import { walletOutbox } from './wallet-outbox';

/** A wallet whose user changes its mode meanwhile is looked at again, at most this often. */
const ATTEMPTS = 3;
type Seen = Pick<UserWallet, '_id' | 'user_limits' | 'ai_managed_state'>;
const SEEN = { user_limits: 1, ai_managed_state: 1 };

/**
 * After an exchange's features change, every wallet on it is brought inside the new leverage
 * range for its mode: the catalog bounds what the AI may have set, not only what it may set next.
 * Each clamp is conditional on the mode and on the leverage being outside the bound, not on the
 * version, so agents writing meanwhile can't make it miss.
 */
export async function clampWalletsToDefinition(
  ctx: WalletWriteContext,
  definition: Pick<WalletDefinition, '_id' | 'features'>,
): Promise<number> {
  let clamped = 0;
  const tagged = dbOptions(ctx);
  const cursor = UserWalletModel.find({ wallet_id: definition._id }, SEEN)
    .setOptions(tagged)
    .lean<Seen[]>()
    .cursor();
  for await (const first of cursor as AsyncIterable<Seen>) {
    let wallet: Seen | null = first;
    for (let attempt = 0; wallet && attempt < ATTEMPTS; attempt++) {
      const mode = wallet.user_limits.trading_mode;
      const { min, max } = leverageRange(definition, mode);
      const current = wallet.ai_managed_state.current_leverage;
      const target = Math.max(min, Math.min(current, max));
      if (target === current) break;
      const provisional = walletEvent({
        actor: ctx.actor,
        walletId: wallet._id,
        version: null,
        kind: WalletEventKind.AI_STATE_CHANGED,
        before: null,
        after: apiAiState({ current_leverage: target }),
      });
      const replaced = await walletOutbox.writeWithEvent(
        ctx,
        {
          _id: wallet._id,
          'user_limits.trading_mode': mode,
          'ai_managed_state.current_leverage': target < current ? { $gt: target } : { $lt: target },
        },
        // Not the agents' own write: they see it in the change feed.
        { $set: { 'ai_managed_state.current_leverage': target, ...userChanged() } },
        provisional,
        (before) => ({
          ...provisional,
          version: before.version + 1,
          before: apiAiState({ current_leverage: before.ai_managed_state.current_leverage }),
        }),
      );
      if (replaced) {
        clamped += 1;
        break;
      }
      wallet = await UserWalletModel.findById(wallet._id, SEEN).setOptions(tagged).lean<Seen>();
    }
  }
  if (clamped > 0)
    ctx.logger.info(
      { definition: definition._id.toHexString(), clamped },
      'wallets brought inside the changed leverage range',
    );
  return clamped;
}
