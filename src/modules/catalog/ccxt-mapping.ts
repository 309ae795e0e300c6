import { UserInputError } from '../../core/errors';
import {
  CcxtCredential,
  defaultCcxtCredential,
  derivedCredentials,
  describeCredential,
} from '../../exchanges/credentials';
import { ccxtExchangeFacts } from '../../exchanges/ccxt-facts';
import type { AuthField } from './wallet-definition.model';

/** ccxt must know the id (BAD_USER_INPUT on `ccxtId` otherwise). Loads ccxt. */
export function knownCcxtId(ccxtId: string): string {
  if (ccxtExchangeFacts(ccxtId) === undefined)
    throw new UserInputError(`ccxt has no exchange "${ccxtId}"`, 'ccxtId');
  return ccxtId;
}

/** On create: the id given (null: none), else the slug when ccxt has an exchange of that id. */
export function ccxtIdForCreate(given: string | null | undefined, slug: string): string | null {
  if (given === undefined) return ccxtExchangeFacts(slug) === undefined ? null : slug;
  return given === null ? null : knownCcxtId(given);
}

/** What a field left without a ccxt credential is, from its key. */
export function ccxtCredentialOf(field: {
  key: string;
  ccxt_credential?: CcxtCredential | null;
}): CcxtCredential | null {
  return field.ccxt_credential ?? defaultCcxtCredential(field.key);
}

/**
 * Each credential ccxt requires of the exchange is covered by exactly one required auth field
 * (one the exchange's own check derives may be optional), and no credential by two fields.
 */
export function checkCredentialCoverage(ccxtId: string | null, fields: readonly AuthField[]): void {
  const byCredential = new Map<CcxtCredential, number>();
  fields.forEach((field, i) => {
    const credential = field.ccxt_credential;
    if (credential === null) return;
    const first = byCredential.get(credential);
    if (first !== undefined) {
      throw new UserInputError(
        `${fields[first].key} and ${field.key} are both ${describeCredential(credential)}: one field per credential`,
        `authFields[${i}].ccxtCredential`,
      );
    }
    byCredential.set(credential, i);
  });
  if (ccxtId === null) return;
  const facts = ccxtExchangeFacts(ccxtId);
  if (facts === undefined) throw new UserInputError(`ccxt has no exchange "${ccxtId}"`, 'ccxtId');
  const derived = derivedCredentials(ccxtId);
  for (const credential of facts.requiredCredentials) {
    const i = byCredential.get(credential);
    if (i === undefined)
      throw new UserInputError(
        `${ccxtId} needs a field for ${describeCredential(credential)}`,
        'authFields',
      );
    if (!fields[i].required && !derived.includes(credential)) {
      throw new UserInputError(
        `${ccxtId} needs ${describeCredential(credential)}: the ${fields[i].key} field must be required`,
        `authFields[${i}].required`,
      );
    }
  }
}
