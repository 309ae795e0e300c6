// The floor's schema: the service's SDL (schema/schema.graphql) with the same scalars
// (graphql-scalars), so both validate and serialize the same way, and resolvers for the
// benchmark's scenarios only; everything else answers NOT_IMPLEMENTED.
//   walletDefinitions    find wallets {is_active: true} sorted by order, name (no cache);
//   userWallets          find user_wallets of the user, then one $in per reference kind through
//                        per-request DataLoaders (wallets, credentials);
//   updateAiManagedState the port of the service's write (ai-write.mjs).

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import DataLoader from 'dataloader';
import { buildSchema } from 'graphql';
import {
  GraphQLDateTimeISO,
  GraphQLJSONObject,
  GraphQLNonNegativeFloat,
  GraphQLNonNegativeInt,
  GraphQLObjectID,
} from 'graphql-scalars';
import { aiWriter } from './ai-write.mjs';
import { requireAgent, requireUser } from './auth.mjs';
import { coded, forbidden } from './errors.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// Per-request loaders: one $in per reference kind, results in key order.

function byIdLoader(collection) {
  return new DataLoader(
    async (ids) => {
      const found = await collection.find({ _id: { $in: ids } }).toArray();
      const byId = new Map(found.map((d) => [d._id.toHexString(), d]));
      return ids.map((id) => byId.get(id.toHexString()) ?? null);
    },
    { cacheKeyFn: (id) => id.toHexString() },
  );
}

class Context {
  constructor(db, principal) {
    this.db = db;
    this.principal = principal;
    this._definitions = undefined;
    this._credentials = undefined;
  }
  get definitionById() {
    return (this._definitions ??= byIdLoader(this.db.definitions));
  }
  get credentialById() {
    return (this._credentials ??= byIdLoader(this.db.credentials));
  }
}

/** The executable schema over these collections, and the context of a request. */
export function floorSchema(db) {
  const { definitions, userWallets } = db;
  const updateAiManagedState = aiWriter(db);

  const schema = buildSchema(readFileSync(join(ROOT, 'schema', 'schema.graphql'), 'utf8'));

  for (const scalar of [
    GraphQLObjectID,
    GraphQLNonNegativeFloat,
    GraphQLNonNegativeInt,
    GraphQLDateTimeISO,
    GraphQLJSONObject,
  ]) {
    const target = schema.getType(scalar.name);
    target.serialize = scalar.serialize;
    target.parseValue = scalar.parseValue;
    target.parseLiteral = scalar.parseLiteral;
  }

  const upper = (value) => (value == null ? value : value.toUpperCase());
  const stored = (name) => (source) => source[name];
  const notInFloor = (what) => () => {
    throw coded('NOT_IMPLEMENTED', `${what} is not part of the floor`);
  };

  const resolvers = {
    Query: {
      walletDefinitions: (_root, { filter }) => {
        const query = { is_active: filter?.isActive ?? true };
        if (filter?.type) query.type = filter.type.toLowerCase();
        return definitions.find(query).sort({ order: 1, name: 1 }).toArray();
      },
      userWallets: (_root, { filter }, ctx) => {
        const user = requireUser(ctx.principal);
        const query = { user_id: user.userId };
        if (filter?.status) query.status = filter.status.toLowerCase();
        return userWallets.find(query).sort({ created_at: 1, _id: 1 }).toArray();
      },
    },
    Mutation: {
      updateAiManagedState: (_root, { walletId, input, expectedVersion }, ctx) =>
        updateAiManagedState(requireAgent(ctx.principal), walletId, input, expectedVersion),
    },
    WalletDefinition: {
      id: stored('_id'),
      type: (d) => upper(d.type),
      authFields: stored('auth_fields'),
      apiConfig: (d, _args, ctx) => {
        if (ctx.principal?.role !== 'admin')
          throw forbidden('WalletDefinition.apiConfig is for ADMIN only');
        return d.api_config;
      },
      isActive: stored('is_active'),
      createdAt: stored('created_at'),
      updatedAt: stored('updated_at'),
    },
    AuthField: { type: (f) => upper(f.type), helpText: stored('help_text') },
    WalletFeatures: { supportedAssets: stored('supported_assets') },
    ApiConfig: {
      baseUrl: stored('base_url'),
      testnetUrl: stored('testnet_url'),
      websocketUrl: stored('websocket_url'),
      rateLimit: stored('rate_limit'),
    },
    UserWallet: {
      id: stored('_id'),
      userLimits: stored('user_limits'),
      aiManagedState: stored('ai_managed_state'),
      status: (w) => upper(w.status),
      pauseReason: stored('pause_reason'),
      createdAt: stored('created_at'),
      updatedAt: stored('updated_at'),
      definition: async (w, _args, ctx) => {
        const definition = await ctx.definitionById.load(w.wallet_id);
        if (!definition)
          throw new Error(`wallet ${w._id.toHexString()} refers to a missing wallet definition`);
        return definition;
      },
      credential: async (w, _args, ctx) => {
        const credential = await ctx.credentialById.load(w.credential_id);
        if (!credential)
          throw new Error(`wallet ${w._id.toHexString()} refers to a missing credential`);
        return credential;
      },
      events: notInFloor('UserWallet.events'),
    },
    UserLimits: {
      maxTotalRisk: stored('max_total_risk'),
      allowedSymbols: stored('allowed_symbols'),
      tradingMode: (l) => upper(l.trading_mode),
    },
    AiManagedState: {
      currentRisk: stored('current_risk'),
      dailyPnl: stored('daily_pnl'),
      openPositions: stored('open_positions'),
      currentMaxPositionSize: stored('current_max_position_size'),
      currentLeverage: stored('current_leverage'),
      adaptiveStopLoss: stored('adaptive_stop_loss'),
      riskScore: stored('risk_score'),
      marketSentiment: (s) => upper(s.market_sentiment),
      confidenceLevel: stored('confidence_level'),
      lastAiDecision: stored('last_ai_decision'),
    },
    Credential: {
      id: stored('_id'),
      environment: (c) => upper(c.environment),
      isConnected: stored('is_connected'),
      isActive: stored('is_active'),
      lastVerifiedAt: stored('last_verified_at'),
      connectionError: stored('connection_error'),
      createdAt: stored('created_at'),
      updatedAt: stored('updated_at'),
      definition: async (c, _args, ctx) => {
        const definition = await ctx.definitionById.load(c.wallet_id);
        if (!definition)
          throw new Error(
            `credential ${c._id.toHexString()} refers to a missing wallet definition`,
          );
        return definition;
      },
      fields: notInFloor('Credential.fields'),
    },
  };

  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName);
    const typeFields = type.getFields();
    for (const [fieldName, resolve] of Object.entries(fields)) {
      if (!typeFields[fieldName])
        throw new Error(`floor: ${typeName}.${fieldName} is not in the schema`);
      typeFields[fieldName].resolve = resolve;
    }
  }

  // Everything else in the schema answers NOT_IMPLEMENTED rather than null.
  for (const rootName of ['Query', 'Mutation']) {
    for (const [fieldName, field] of Object.entries(schema.getType(rootName).getFields())) {
      field.resolve ??= notInFloor(`${rootName}.${fieldName}`);
    }
  }

  return { schema, contextFor: (principal) => new Context(db, principal) };
}
