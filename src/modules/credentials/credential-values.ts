import type { RequestContext } from '../../core/context';
import type { Keyring } from '../../crypto/keyring';
import { UserInputError } from '../../core/errors';
import { AuthFieldType, type WalletDefinition } from '../catalog/wallet-definition.model';
import type { CredentialValueInput } from './credential.inputs';
import type { CredentialField } from './credential.types';

export const MAX_VALUE_BYTES = 8 * 1024;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/**
 * The values as stored: checked against the exchange's auth fields, trimmed, and encrypted where
 * the field says so. Errors name the offending key or position, never the value.
 */
export function storedValues(
  definition: WalletDefinition,
  values: CredentialValueInput[],
  keyring: Keyring,
): Record<string, string> {
  const fields = new Map(definition.auth_fields.map((f) => [f.key, f]));
  const stored: Record<string, string> = {};
  const seen = new Set<string>();
  values.forEach(({ key, value }, i) => {
    const field = fields.get(key);
    // The key is never quoted: a value pasted into the key's slot would come straight back.
    if (!field) {
      throw new UserInputError(
        `not an auth field of ${definition.name} (expected: ${[...fields.keys()].join(', ')})`,
        `values[${i}].key`,
      );
    }
    if (seen.has(key))
      throw new UserInputError(
        `the ${field.key} field is given more than once`,
        `values[${i}].key`,
      );
    seen.add(key);
    const trimmed = value.trim();
    if (Buffer.byteLength(trimmed, 'utf8') > MAX_VALUE_BYTES) {
      throw new UserInputError(
        `the value of "${key}" is over ${MAX_VALUE_BYTES / 1024} KiB`,
        `values[${i}].value`,
      );
    }
    // A file (a PEM key, say) keeps its lines; other values are one line.
    if ((field.type === AuthFieldType.FILE ? CONTROL_BUT_LINES : CONTROL).test(trimmed)) {
      throw new UserInputError(
        `the value of "${key}" contains control characters`,
        `values[${i}].value`,
      );
    }
    if (trimmed === '') {
      if (field.required)
        throw new UserInputError(`"${key}" is required and may not be empty`, `values[${i}].value`);
      return;
    }
    stored[key] = field.encrypted ? keyring.encrypt(trimmed) : trimmed;
  });
  const missing = definition.auth_fields.find((f) => f.required && !(f.key in stored));
  if (missing)
    throw new UserInputError(`"${missing.key}" is required for ${definition.name}`, 'values');
  return stored;
}

/**
 * What the API shows: per auth field, whether it is set, and for plain ones a masked tail. Only
 * to a user (the owner: no one else reaches a credential's fields): an agent reaches them through
 * the wallets it manages, and needs to know a key is set, not which.
 */
export function describeFields(
  ctx: RequestContext,
  definition: WalletDefinition,
  stored: Record<string, string>,
): CredentialField[] {
  const hints = ctx.actor?.kind === 'user';
  return definition.auth_fields.map((field) => {
    const value = Object.hasOwn(stored, field.key) ? stored[field.key] : undefined;
    return {
      key: field.key,
      label: field.label,
      encrypted: field.encrypted,
      isSet: value !== undefined,
      hint: !hints || value === undefined || field.encrypted ? null : maskedHint(value),
    };
  });
}

/** The last four characters, only when that leaves most of the value unseen. */
function maskedHint(value: string): string {
  return value.length >= 12 ? `****${value.slice(-4)}` : '****';
}

/**
 * The plain values for a connection test. Throws InvalidToken when a stored token can't be read.
 */
export function plainValues(
  definition: WalletDefinition,
  stored: Record<string, string>,
  keyring: Keyring,
): Record<string, string> {
  const encrypted = new Set(definition.auth_fields.filter((f) => f.encrypted).map((f) => f.key));
  return Object.fromEntries(
    Object.entries(stored).map(([key, value]) => [
      key,
      encrypted.has(key) ? keyring.decrypt(value) : value,
    ]),
  );
}
