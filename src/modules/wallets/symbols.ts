import { UserInputError } from '../../core/errors';
import type { WalletDefinition } from '../catalog/wallet-definition.model';

export const MAX_ALLOWED_SYMBOLS = 200;
/** ccxt's unified symbols: BASE, BASE/QUOTE or BASE/QUOTE:SETTLE. */
const SYMBOL = /^([A-Z0-9]{1,20})(?:\/([A-Z0-9]{1,20})(?::([A-Z0-9]{1,20}))?)?$/;

/**
 * null stays null (every supported asset). Otherwise upper-cased, de-duplicated, each in ccxt's
 * unified form with a BASE the exchange supports.
 */
export function normalizeAllowedSymbols(
  definition: Pick<WalletDefinition, 'name' | 'features'>,
  symbols: string[] | null | undefined,
  field: string,
): string[] | null {
  if (symbols == null) return null;
  if (symbols.length === 0 || symbols.length > MAX_ALLOWED_SYMBOLS) {
    throw new UserInputError(
      `must have 1 to ${MAX_ALLOWED_SYMBOLS} entries, or be null for every supported asset`,
      field,
    );
  }
  const supported = new Set(definition.features.supported_assets);
  const normalized: string[] = [];
  symbols.forEach((raw, i) => {
    const symbol = raw.trim().toUpperCase();
    const match = SYMBOL.exec(symbol);
    // The messages name the entry by its index: what was sent is never repeated.
    if (!match)
      throw new UserInputError(
        'must be a symbol like BTC, BTC/USDT or BTC/USDT:USDT',
        `${field}[${i}]`,
      );
    if (!supported.has(match[1])) {
      throw new UserInputError(
        `its base asset is not one ${definition.name} supports (${[...supported].join(', ')})`,
        `${field}[${i}]`,
      );
    }
    if (!normalized.includes(symbol)) normalized.push(symbol);
  });
  return normalized;
}
