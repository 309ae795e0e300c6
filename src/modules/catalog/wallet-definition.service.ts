import { actorName } from '../auth/roles';
import type { Types } from 'mongoose';
import {
  dbOptions,
  type ActorContext,
  type RequestContext,
  type SystemContext,
  type UserContext,
} from '../../core/context';
import {
  ConflictError,
  isDuplicateKeyError,
  NotFoundError,
  UserInputError,
} from '../../core/errors';
import { hasSignedProof } from '../../exchanges/credentials';
import {
  allCcxtExchangeFacts,
  ccxtExchangeFacts,
  type CcxtExchangeFacts,
  type DefinitionDraft,
} from '../../exchanges/ccxt-facts';
import {
  ccxtCredentialOf,
  ccxtIdForCreate,
  checkCredentialCoverage,
  knownCcxtId,
} from './ccxt-mapping';
import type { ExchangeTemplate, WalletDefinitionDraft } from './exchange-template.types';
import type {
  ApiConfigInput,
  AuthFieldInput,
  CreateWalletDefinitionInput,
  UpdateWalletDefinitionInput,
  WalletDefinitionFilter,
  WalletFeaturesInput,
} from './wallet-definition.inputs';
import {
  AuthFieldType,
  WalletDefinitionModel,
  WalletType,
  type ApiConfig,
  type AuthField,
  type WalletDefinition,
  type WalletFeatures,
} from './wallet-definition.model';
import { BUILT_IN_DEFINITIONS } from './wallet-definition.seed';
import { cleanName } from '../../shared/validators';

type Stored = Omit<WalletDefinition, '_id' | 'created_at' | 'updated_at'>;

/**
 * How long another instance's catalog write can go unseen here. Writes through this instance
 * drop the cache at once.
 */
export const CATALOG_CACHE_TTL_MS = 5_000;

/** The most exchanges the catalog holds: every list of it is answered whole. */
export const MAX_DEFINITIONS = 200;

/**
 * The most exchanges exchangeTemplates lists: more than ccxt knows (104 in 4.5.84; a test holds
 * ccxt to it).
 */
export const MAX_EXCHANGE_TEMPLATES = 200;

/**
 * What the catalog tells the modules above it when a definition changes: the wallets module answers
 * (app/lifecycle.ts hands it over), so the catalog imports nothing of theirs.
 */
export interface DefinitionHooks {
  /**
   * After an admin changed an exchange's features: the wallets on it are brought inside them,
   * before the admin's answer.
   */
  onFeaturesChanged(ctx: UserContext, definition: WalletDefinition): Promise<unknown>;
}

export class WalletDefinitionService {
  /** The catalog changes rarely and is read on every page load: lists are cached per filter. */
  private readonly lists = new Map<
    string,
    { expires: number; value: Promise<WalletDefinition[]> }
  >();

  constructor(private readonly hooks: DefinitionHooks) {}

  /**
   * Sorted by order, then name. Left out, isActive means active only. Public: the same for every
   * caller, so one read serves them all.
   */
  list(
    _ctx: RequestContext,
    filter: WalletDefinitionFilter | null | undefined,
  ): Promise<WalletDefinition[]> {
    const isActive = filter?.isActive ?? true;
    const key = `${isActive}:${filter?.type ?? '*'}`;
    const now = Date.now();
    const cached = this.lists.get(key);
    if (cached && cached.expires > now) return cached.value;
    const query: Record<string, unknown> = { is_active: isActive };
    if (filter?.type) query.type = filter.type;
    const value = WalletDefinitionModel.find(query)
      .sort({ order: 1, name: 1 })
      .limit(MAX_DEFINITIONS)
      .lean<WalletDefinition[]>()
      .exec();
    const entry = { expires: now + CATALOG_CACHE_TTL_MS, value };
    this.lists.set(key, entry);
    // A failed read is not cached.
    value.catch(() => {
      if (this.lists.get(key) === entry) this.lists.delete(key);
    });
    return value;
  }

  /** After every catalog write: the next read goes to the database. */
  private invalidate(): void {
    this.lists.clear();
  }

  /** Any definition, active or not: isActive tells which. */
  async getBySlug(_ctx: RequestContext, slug: string): Promise<WalletDefinition> {
    const definition = await WalletDefinitionModel.findOne({ slug }).lean<WalletDefinition>();
    if (!definition) throw notFound();
    return definition;
  }

  async create(ctx: UserContext, input: CreateWalletDefinitionInput): Promise<WalletDefinition> {
    const ccxtId = ccxtIdForCreate(input.ccxtId, input.slug);
    if ((await WalletDefinitionModel.countDocuments({})) >= MAX_DEFINITIONS)
      throw new UserInputError(`the catalog holds at most ${MAX_DEFINITIONS} exchanges`);
    const authFields = input.authFields.map(toAuthField);
    checkCredentialCoverage(ccxtId, authFields);
    const order = input.order ?? (await this.nextOrder());
    const doc: Stored = {
      name: cleanName(input.name),
      slug: input.slug,
      ccxt_id: ccxtId,
      type: input.type,
      description: input.description ?? null,
      logo: input.logo ?? null,
      auth_fields: authFields,
      features: toFeatures(input.features),
      api_config: toApiConfig(input.apiConfig),
      is_active: input.isActive ?? true,
      order,
    };
    try {
      // The unique slug index decides between concurrent creates of one slug.
      const created = await WalletDefinitionModel.create(doc);
      this.invalidate();
      ctx.logger.info({ slug: doc.slug, by: actorName(ctx.actor) }, 'wallet definition created');
      return created.toObject();
    } catch (error) {
      if (isDuplicateKeyError(error))
        throw new ConflictError('a wallet definition with this slug already exists');
      throw error;
    }
  }

  /**
   * Only the fields given change; lists and nested objects are replaced whole. The slug never
   * changes. A new ccxt id or new auth fields are checked together with what is stored of the
   * other, and written only if that is still what is stored (CONFLICT otherwise).
   */
  async update(
    ctx: UserContext,
    slug: string,
    input: UpdateWalletDefinitionInput,
  ): Promise<WalletDefinition> {
    const set: Partial<Stored> = {};
    const filter: Record<string, unknown> = { slug };
    if (input.ccxtId !== undefined || input.authFields != null) {
      const current = await WalletDefinitionModel.findOne({ slug }).lean<WalletDefinition>();
      if (!current) throw notFound();
      const ccxtId =
        input.ccxtId === undefined
          ? (current.ccxt_id ?? null)
          : input.ccxtId === null
            ? null
            : knownCcxtId(input.ccxtId);
      const authFields =
        input.authFields != null
          ? input.authFields.map(toAuthField)
          : current.auth_fields.map((f) => ({ ...f, ccxt_credential: ccxtCredentialOf(f) }));
      checkCredentialCoverage(ccxtId, authFields);
      if (input.ccxtId !== undefined) set.ccxt_id = ccxtId;
      if (input.authFields != null) set.auth_fields = authFields;
      filter.updated_at = current.updated_at;
    }
    if (input.name != null) set.name = cleanName(input.name);
    if (input.type != null) set.type = input.type;
    if (input.description !== undefined) set.description = input.description;
    if (input.logo !== undefined) set.logo = input.logo;
    if (input.features != null) set.features = toFeatures(input.features);
    if (input.apiConfig != null) set.api_config = toApiConfig(input.apiConfig);
    if (input.isActive != null) set.is_active = input.isActive;
    if (input.order != null) set.order = input.order;
    const updated = await WalletDefinitionModel.findOneAndUpdate(
      filter,
      { $set: set },
      { returnDocument: 'after' },
    ).lean<WalletDefinition>();
    this.invalidate();
    if (!updated) {
      if (filter.updated_at !== undefined && (await WalletDefinitionModel.exists({ slug }))) {
        throw new ConflictError(
          'the definition was changed by another request meanwhile; try again',
        );
      }
      throw notFound();
    }
    ctx.logger.info(
      { slug, fields: Object.keys(set), by: actorName(ctx.actor) },
      'wallet definition updated',
    );
    if (set.features) await this.hooks.onFeaturesChanged(ctx, updated);
    return updated;
  }

  /** Soft delete: the definition stays for the credentials and wallets that reference it. */
  async softDelete(ctx: UserContext, slug: string): Promise<WalletDefinition> {
    const updated = await WalletDefinitionModel.findOneAndUpdate(
      { slug },
      { $set: { is_active: false } },
      { returnDocument: 'after' },
    ).lean<WalletDefinition>();
    this.invalidate();
    if (!updated) throw notFound();
    ctx.logger.info({ slug, by: actorName(ctx.actor) }, 'wallet definition deactivated');
    return updated;
  }

  /**
   * Inserts the built-in catalog, or refreshes its content. An admin's choices survive a
   * refresh: whether an exchange is active and where it is listed are set on insert only. The same
   * whoever asks (an admin's seedWalletDefinitions, `npm run seed`, seedIfEmpty at start-up).
   */
  async seed(ctx: ActorContext): Promise<WalletDefinition[]> {
    const seeded: WalletDefinition[] = [];
    for (const { is_active, order, ...content } of BUILT_IN_DEFINITIONS) {
      const upsert = () =>
        WalletDefinitionModel.findOneAndUpdate(
          { slug: content.slug },
          { $set: content, $setOnInsert: { is_active, order } },
          { upsert: true, returnDocument: 'after', ...dbOptions(ctx) },
        ).lean<WalletDefinition>();
      // Two concurrent upserts of one slug: the loser hits the unique index, and its retry updates.
      const doc = await upsert().catch((error: unknown) => {
        if (!isDuplicateKeyError(error)) throw error;
        return upsert();
      });
      seeded.push(doc);
    }
    this.invalidate();
    return seeded;
  }

  /** At start-up: the catalog is seeded when the collection is empty. */
  async seedIfEmpty(ctx: SystemContext): Promise<boolean> {
    if (await WalletDefinitionModel.exists({}).setOptions(dbOptions(ctx))) return false;
    await this.seed(ctx);
    ctx.logger.info({ count: BUILT_IN_DEFINITIONS.length }, 'wallet catalog seeded');
    return true;
  }

  /**
   * ADMIN: what ccxt knows, whose id or name contains `search` (case-insensitive), by id. Loads
   * ccxt.
   */
  templates(_ctx: UserContext, search: string | null | undefined): ExchangeTemplate[] {
    const needle = search?.trim().toLowerCase() ?? '';
    return allCcxtExchangeFacts()
      .filter(
        (t) => needle === '' || t.ccxtId.includes(needle) || t.name.toLowerCase().includes(needle),
      )
      .slice(0, MAX_EXCHANGE_TEMPLATES)
      .map(toTemplate);
  }

  template(_ctx: UserContext, ccxtId: string): ExchangeTemplate {
    const facts = ccxtExchangeFacts(ccxtId);
    if (facts === undefined) throw new NotFoundError(`ccxt has no exchange "${ccxtId}"`);
    return toTemplate(facts);
  }

  private async nextOrder(): Promise<number> {
    const last = await WalletDefinitionModel.findOne({}, { order: 1 })
      .sort({ order: -1 })
      .lean<Pick<WalletDefinition, 'order'>>();
    return last ? last.order + 1 : 1;
  }
}

/*
 * The catalog as the other modules read it: by id, with the fields they need (every field when no
 * projection is given), each call one command with the context's database comment.
 */

/** Stored fields to read: `{ features: 1 }`. */
export type DefinitionFields = Partial<Record<keyof WalletDefinition, 1>>;

/** One definition, active or not; null for an unknown id. */
export function findDefinition<T = WalletDefinition>(
  ctx: Pick<RequestContext, 'comment'>,
  id: Types.ObjectId,
  fields?: DefinitionFields,
): Promise<T | null> {
  return WalletDefinitionModel.findById(id, fields).setOptions(dbOptions(ctx)).lean<T>().exec();
}

/** The definitions of these ids (ObjectIds or hex), in no given order; unknown ids left out. */
export function definitionsByIds<T = WalletDefinition>(
  ctx: Pick<RequestContext, 'comment'>,
  ids: ReadonlyArray<Types.ObjectId | string>,
  fields?: DefinitionFields,
): Promise<T[]> {
  return WalletDefinitionModel.find({ _id: { $in: ids } }, fields)
    .setOptions(dbOptions(ctx))
    .lean<T[]>()
    .exec();
}

/** Every definition, active or not. */
export function allDefinitions<T = WalletDefinition>(
  ctx: Pick<RequestContext, 'comment'>,
  fields: DefinitionFields,
): Promise<T[]> {
  return WalletDefinitionModel.find({}, fields).setOptions(dbOptions(ctx)).lean<T[]>().exec();
}

/** The slug is the client's text: it is not repeated. */
function notFound(): NotFoundError {
  return new NotFoundError('no wallet definition with that slug');
}

/** Whether a connection test can prove a key of the definition's exchange with a signed request. */
export function isConnectionTestable(definition: Pick<WalletDefinition, 'ccxt_id'>): boolean {
  return definition.ccxt_id != null && hasSignedProof(definition.ccxt_id);
}

function toAuthField(input: AuthFieldInput): AuthField {
  return {
    key: input.key,
    label: cleanName(input.label),
    type: input.type,
    required: input.required,
    encrypted: input.encrypted,
    placeholder: input.placeholder ?? null,
    help_text: input.helpText ?? null,
    ccxt_credential: ccxtCredentialOf({ key: input.key, ccxt_credential: input.ccxtCredential }),
  };
}

const WALLET_TYPES: Record<DefinitionDraft['type'], WalletType> = {
  cex: WalletType.CEX,
  dex: WalletType.DEX,
  perpetuals: WalletType.PERPETUALS,
};
const FIELD_TYPES: Record<DefinitionDraft['authFields'][number]['type'], AuthFieldType> = {
  string: AuthFieldType.STRING,
  password: AuthFieldType.PASSWORD,
  file: AuthFieldType.FILE,
};

function toTemplate(facts: CcxtExchangeFacts): ExchangeTemplate {
  const { draft } = facts;
  const shaped: WalletDefinitionDraft = {
    name: draft.name,
    slug: draft.slug,
    type: WALLET_TYPES[draft.type],
    description: draft.description,
    logo: draft.logo,
    ccxt_id: draft.ccxtId,
    auth_fields: draft.authFields.map((f) => ({
      key: f.key,
      label: f.label,
      type: FIELD_TYPES[f.type],
      required: f.required,
      encrypted: f.encrypted,
      placeholder: f.placeholder,
      help_text: f.helpText,
      ccxt_credential: f.ccxtCredential,
    })),
    // The admin chooses the assets.
    features: { ...draft.features, supported_assets: [] },
    api_config: {
      base_url: draft.apiConfig.baseUrl,
      testnet_url: draft.apiConfig.testnetUrl,
      websocket_url: draft.apiConfig.websocketUrl,
      rate_limit: draft.apiConfig.rateLimit,
    },
  };
  return {
    ccxtId: facts.ccxtId,
    name: facts.name,
    requiredCredentials: facts.requiredCredentials,
    hasTestnet: facts.hasTestnet,
    signedProof: facts.signedProof,
    draft: shaped,
  };
}

function toFeatures(input: WalletFeaturesInput): WalletFeatures {
  return {
    spot: input.spot,
    futures: input.futures,
    perpetuals: input.perpetuals,
    leverage: { min: input.leverage.min, max: input.leverage.max },
    supported_assets: [...input.supportedAssets],
  };
}

function toApiConfig(input: ApiConfigInput): ApiConfig {
  return {
    base_url: input.baseUrl,
    testnet_url: input.testnetUrl ?? null,
    websocket_url: input.websocketUrl ?? null,
    rate_limit: input.rateLimit,
  };
}
