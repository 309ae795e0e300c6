import { actorName, type Principal } from '../../auth/roles';
import { ConflictError, isDuplicateKeyError, NotFoundError } from '../../errors';
import type { Logger } from '../../logger';
import { clampWalletsToDefinition } from '../user-wallets/definition-changes';
import type {
  ApiConfigInput,
  AuthFieldInput,
  CreateWalletDefinitionInput,
  UpdateWalletDefinitionInput,
  WalletDefinitionFilter,
  WalletFeaturesInput,
} from './wallet-definition.inputs';
import { WalletDefinitionModel, type ApiConfig, type AuthField, type WalletDefinition, type WalletFeatures } from './wallet-definition.model';
import { BUILT_IN_DEFINITIONS } from './wallet-definition.seed';
import { cleanName } from '../../shared/validators';

type Stored = Omit<WalletDefinition, '_id' | 'created_at' | 'updated_at'>;

/**
 * How long another instance's catalog write can go unseen here. Writes through this instance
 * drop the cache at once.
 */
export const CATALOG_CACHE_TTL_MS = 5_000;

export class WalletDefinitionService {
  /** The catalog changes rarely and is read on every page load: lists are cached per filter. */
  private readonly lists = new Map<string, { expires: number; value: Promise<WalletDefinition[]> }>();

  constructor(private readonly logger: Logger) {}

  /** Sorted by order, then name. Left out, isActive means active only. */
  list(filter: WalletDefinitionFilter | null | undefined): Promise<WalletDefinition[]> {
    const isActive = filter?.isActive ?? true;
    const key = `${isActive}:${filter?.type ?? '*'}`;
    const now = Date.now();
    const cached = this.lists.get(key);
    if (cached && cached.expires > now) return cached.value;
    const query: Record<string, unknown> = { is_active: isActive };
    if (filter?.type) query.type = filter.type;
    const value = WalletDefinitionModel.find(query).sort({ order: 1, name: 1 }).lean<WalletDefinition[]>().exec();
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
  async getBySlug(slug: string): Promise<WalletDefinition> {
    const definition = await WalletDefinitionModel.findOne({ slug }).lean<WalletDefinition>();
    if (!definition) throw notFound();
    return definition;
  }

  async create(principal: Principal, input: CreateWalletDefinitionInput): Promise<WalletDefinition> {
    const order = input.order ?? (await this.nextOrder());
    const doc: Stored = {
      name: cleanName(input.name),
      slug: input.slug,
      type: input.type,
      description: input.description ?? null,
      logo: input.logo ?? null,
      auth_fields: input.authFields.map(toAuthField),
      features: toFeatures(input.features),
      api_config: toApiConfig(input.apiConfig),
      is_active: input.isActive ?? true,
      order,
    };
    try {
      // The unique slug index decides between concurrent creates of one slug.
      const created = await WalletDefinitionModel.create(doc);
      this.invalidate();
      this.logger.info({ slug: doc.slug, by: actorName(principal) }, 'wallet definition created');
      return created.toObject();
    } catch (error) {
      if (isDuplicateKeyError(error)) throw new ConflictError('a wallet definition with this slug already exists');
      throw error;
    }
  }

  /** Only the fields given change; lists and nested objects are replaced whole. The slug never changes. */
  async update(principal: Principal, slug: string, input: UpdateWalletDefinitionInput): Promise<WalletDefinition> {
    const set: Partial<Stored> = {};
    if (input.name != null) set.name = cleanName(input.name);
    if (input.type != null) set.type = input.type;
    if (input.description !== undefined) set.description = input.description;
    if (input.logo !== undefined) set.logo = input.logo;
    if (input.authFields != null) set.auth_fields = input.authFields.map(toAuthField);
    if (input.features != null) set.features = toFeatures(input.features);
    if (input.apiConfig != null) set.api_config = toApiConfig(input.apiConfig);
    if (input.isActive != null) set.is_active = input.isActive;
    if (input.order != null) set.order = input.order;
    const updated = await WalletDefinitionModel.findOneAndUpdate({ slug }, { $set: set }, { returnDocument: 'after' }).lean<WalletDefinition>();
    this.invalidate();
    if (!updated) throw notFound();
    this.logger.info({ slug, fields: Object.keys(set), by: actorName(principal) }, 'wallet definition updated');
    if (set.features) await clampWalletsToDefinition(this.logger, principal, updated);
    return updated;
  }

  /** Soft delete: the definition stays for the credentials and wallets that reference it. */
  async softDelete(principal: Principal, slug: string): Promise<WalletDefinition> {
    const updated = await WalletDefinitionModel.findOneAndUpdate({ slug }, { $set: { is_active: false } }, { returnDocument: 'after' }).lean<WalletDefinition>();
    this.invalidate();
    if (!updated) throw notFound();
    this.logger.info({ slug, by: actorName(principal) }, 'wallet definition deactivated');
    return updated;
  }

  /**
   * Inserts the built-in catalog, or refreshes its content. An admin's choices survive a
   * refresh: whether an exchange is active and where it is listed are set on insert only.
   */
  async seed(): Promise<WalletDefinition[]> {
    const seeded: WalletDefinition[] = [];
    for (const { is_active, order, ...content } of BUILT_IN_DEFINITIONS) {
      const upsert = () =>
        WalletDefinitionModel.findOneAndUpdate(
          { slug: content.slug },
          { $set: content, $setOnInsert: { is_active, order } },
          { upsert: true, returnDocument: 'after' },
        ).lean<WalletDefinition>();
      // Two concurrent upserts of one slug: the loser hits the unique index, and its retry updates.
      const doc = await upsert().catch((error: unknown) => (isDuplicateKeyError(error) ? upsert() : Promise.reject(error)));
      seeded.push(doc!);
    }
    this.invalidate();
    return seeded;
  }

  /** At start-up: the catalog is seeded when the collection is empty. */
  async seedIfEmpty(): Promise<boolean> {
    if (await WalletDefinitionModel.exists({})) return false;
    await this.seed();
    this.logger.info({ count: BUILT_IN_DEFINITIONS.length }, 'wallet catalog seeded');
    return true;
  }

  private async nextOrder(): Promise<number> {
    const last = await WalletDefinitionModel.findOne({}, { order: 1 }).sort({ order: -1 }).lean<Pick<WalletDefinition, 'order'>>();
    return last ? last.order + 1 : 1;
  }
}

/** The slug is the client's text: it is not repeated. */
function notFound(): NotFoundError {
  return new NotFoundError('no wallet definition with that slug');
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
