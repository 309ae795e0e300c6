import { UserInputError } from '../../core/errors';
import type { PaperBalanceInput } from './credential.inputs';
import type { AssetBalance } from './credential.model';

/*
 * Paper credentials (docs/api.md, "Paper credentials"): no keys, no exchange, virtual balances the
 * owner sets and resets. They are CONNECTED from creation, never in the service's re-test queue,
 * and their connection test contacts nothing.
 */

export const MAX_PAPER_ASSETS = 50;
const ASSET = /^[A-Z0-9]{1,20}$/;

export const PAPER_TEST_WARNING =
  'this is a paper credential: no exchange was contacted, and its balances are the ones its owner set';

/**
 * The balances as stored (all free), or BAD_USER_INPUT on `field`: 1 to 50 assets, each an
 * upper-case symbol of 1 to 20 characters, none twice, amounts greater than 0 (the scalar checks
 * that; a finite number is checked here). Messages never quote what was sent.
 */
export function paperBalances(
  input: readonly PaperBalanceInput[] | null | undefined,
  field: string,
): AssetBalance[] {
  if (input == null || input.length === 0)
    throw new UserInputError('a PAPER credential needs its paper balances: 1 to 50 assets', field);
  if (input.length > MAX_PAPER_ASSETS)
    throw new UserInputError(`must have at most ${MAX_PAPER_ASSETS} assets`, field);
  const seen = new Set<string>();
  return input.map(({ asset, amount }, i) => {
    if (!ASSET.test(asset))
      throw new UserInputError(
        `asset ${i + 1}: must be an upper-case symbol of 1 to 20 letters or digits`,
        field,
      );
    if (seen.has(asset))
      throw new UserInputError(`asset ${i + 1}: the same as an earlier one`, field);
    seen.add(asset);
    if (!Number.isFinite(amount) || amount <= 0)
      throw new UserInputError(`asset ${i + 1}: the amount must be greater than 0`, field);
    return { asset, free: amount, used: 0, total: amount };
  });
}
