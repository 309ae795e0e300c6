import type { SystemContext } from '../core/context';
import { ccxtCredentialOf, ccxtIdForCreate } from '../modules/catalog/ccxt-mapping';
import {
  WalletDefinitionModel,
  type WalletDefinition,
} from '../modules/catalog/wallet-definition.model';
import { BUILT_IN_DEFINITIONS } from '../modules/catalog/wallet-definition.seed';
import type { Migration } from './runner';

/**
 * Definitions stored before the catalog knew ccxt get the defaults of create (the slug as ccxt id
 * when ccxt has it, each field's credential from its key). Idempotent; loads ccxt only when a
 * definition outside the built-in catalog needs it. Runs before anything is served, so no catalog
 * cache holds the old shape. Returns how many definitions it changed.
 */
export async function migrateToCcxt(ctx: SystemContext): Promise<number> {
  type Old = Pick<WalletDefinition, '_id' | 'slug' | 'auth_fields' | 'updated_at'> & {
    ccxt_id?: string | null;
  };
  const definitions = await WalletDefinitionModel.find(
    {},
    { slug: 1, ccxt_id: 1, auth_fields: 1, updated_at: 1 },
  ).lean<Old[]>();
  let migrated = 0;
  for (const definition of definitions) {
    const set: Record<string, unknown> = {};
    if (definition.ccxt_id === undefined) {
      const builtIn = BUILT_IN_DEFINITIONS.find((d) => d.slug === definition.slug);
      set.ccxt_id = builtIn ? builtIn.ccxt_id : ccxtIdForCreate(undefined, definition.slug);
    }
    if (definition.auth_fields.some((f) => f.ccxt_credential === undefined)) {
      set.auth_fields = definition.auth_fields.map((f) => ({
        ...f,
        ccxt_credential: ccxtCredentialOf(f),
      }));
    }
    if (Object.keys(set).length === 0) continue;
    // An admin's write in between wins: its fields carry their credentials already.
    const result = await WalletDefinitionModel.updateOne(
      { _id: definition._id, updated_at: definition.updated_at },
      { $set: set },
      { timestamps: false },
    );
    migrated += result.modifiedCount;
  }
  if (migrated > 0)
    ctx.logger.info({ migrated }, 'wallet definitions given their ccxt ids and credentials');
  return migrated;
}

export const migration: Migration = {
  id: '002-definition-ccxt-ids',
  description: 'wallet definitions stored before ccxt get their ccxt id and field credentials',
  up: migrateToCcxt,
};
