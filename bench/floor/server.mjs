// The floor: what scenarios 1-3 of the benchmark cost with nothing but node:http, graphql-js and
// the plain mongodb driver (the copy mongoose itself uses, so the driver is not a difference).
// No Apollo, no type-graphql, no mongoose, no express.
//
// It does the same database work as the service, command for command:
//   walletDefinitions    find wallets {is_active: true} sorted by order, name (no cache);
//   userWallets          find users by the token's subject (a user token is honoured only while
//                        its user exists), find user_wallets of the user, then one $in per
//                        reference kind through per-request DataLoaders (wallets, credentials);
//   updateAiManagedState the wallet by id, the definition's features, one conditional
//                        findOneAndUpdate carrying every limit check (a port of planAiWrite in
//                        src/modules/user-wallets/ai-state.service.ts), then the audit event insert.
// The GraphQL schema is the service's own (schema/schema.graphql), with the same scalars
// (graphql-scalars), so both validate and serialize the same way. Parsed and validated documents
// are cached by query text.
//
// Environment: PORT (0: any), HOST (127.0.0.1), MONGODB_URI, JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE.
// Prints `listening <url>` on stdout once it accepts requests.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import DataLoader from 'dataloader';
import { buildSchema, execute, GraphQLError, parse, validate } from 'graphql';
import {
  GraphQLDateTimeISO,
  GraphQLJSONObject,
  GraphQLNonNegativeFloat,
  GraphQLNonNegativeInt,
  GraphQLObjectID,
} from 'graphql-scalars';
import jwt from 'jsonwebtoken';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const mongodbEntry = require.resolve('mongodb', {
  paths: [dirname(require.resolve('mongoose/package.json'))],
});
const { MongoClient, ObjectId } = require(mongodbEntry);
const DRIVER_VERSION = JSON.parse(
  readFileSync(
    join(
      mongodbEntry.slice(
        0,
        mongodbEntry.lastIndexOf('node_modules/mongodb') + 'node_modules/mongodb'.length,
      ),
      'package.json',
    ),
    'utf8',
  ),
).version;

const env = process.env;
const PORT = Number(env.PORT ?? 0);
const HOST = env.HOST || '127.0.0.1';
const JWT = {
  secret: env.JWT_SECRET,
  issuer: env.JWT_ISSUER || 'wallet-service',
  audience: env.JWT_AUDIENCE || 'wallet-platform',
};
if (!env.MONGODB_URI || !JWT.secret) {
  process.stderr.write('floor: MONGODB_URI and JWT_SECRET are required\n');
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Database: the service's pool size.

const client = new MongoClient(env.MONGODB_URI, {
  maxPoolSize: 20,
  serverSelectionTimeoutMS: 5_000,
});
await client.connect();
const db = client.db();
const users = db.collection('users');
const definitions = db.collection('wallets');
const credentials = db.collection('credentials');
const userWallets = db.collection('user_wallets');
const events = db.collection('user_wallet_events');

// ---------------------------------------------------------------------------------------------
// Errors, with the service's codes.

const coded = (code, message, extra = {}) =>
  new GraphQLError(message, { extensions: { code, ...extra } });
const unauthenticated = (message = 'not signed in') => coded('UNAUTHENTICATED', message);
const forbidden = (message) => coded('FORBIDDEN', message);
const notFound = (message) => coded('NOT_FOUND', message);
const conflict = (message) => coded('CONFLICT', message);
const userInput = (message, field) => coded('BAD_USER_INPUT', message, { field });

// ---------------------------------------------------------------------------------------------
// Authentication: the same token rules as src/auth/jwt.ts and AuthService.authenticate.

const AGENT_SUBJECT = /^agent:([0-9a-f]{24})$/;
const BEARER = /^Bearer ([A-Za-z0-9_.~+/=-]+)$/;

async function authenticate(header) {
  if (header === undefined || header === '') return null;
  const match = BEARER.exec(header);
  if (!match) throw unauthenticated('malformed Authorization header: expected "Bearer <token>"');
  let claims;
  try {
    claims = jwt.verify(match[1], JWT.secret, {
      algorithms: ['HS256'],
      issuer: JWT.issuer,
      audience: JWT.audience,
    });
  } catch (error) {
    throw unauthenticated(
      error instanceof jwt.TokenExpiredError ? 'token expired' : 'invalid token',
    );
  }
  if (
    typeof claims !== 'object' ||
    typeof claims.sub !== 'string' ||
    typeof claims.exp !== 'number'
  )
    throw unauthenticated('invalid token');
  if (
    claims.typ === 'agent' &&
    claims.role === 'agent' &&
    typeof claims.name === 'string' &&
    AGENT_SUBJECT.test(claims.sub)
  ) {
    return {
      kind: 'agent',
      role: 'agent',
      name: claims.name,
      id: new ObjectId(AGENT_SUBJECT.exec(claims.sub)[1]),
    };
  }
  if (
    claims.typ === 'user' &&
    (claims.role === 'user' || claims.role === 'admin') &&
    /^[0-9a-f]{24}$/.test(claims.sub)
  ) {
    const user = await users.findOne(
      { _id: new ObjectId(claims.sub) },
      { projection: { role: 1, email: 1 } },
    );
    if (!user || (user.role !== 'user' && user.role !== 'admin'))
      throw unauthenticated('invalid token');
    return { kind: 'user', userId: user._id, role: user.role, email: user.email };
  }
  throw unauthenticated('invalid token');
}

function requireUser(principal) {
  if (!principal) throw unauthenticated();
  if (principal.kind !== 'user') throw forbidden('userWallets is for USER or ADMIN only');
  return principal;
}

function requireAgent(principal) {
  if (!principal) throw unauthenticated();
  if (principal.kind !== 'agent') throw forbidden('updateAiManagedState is for AGENT only');
  return principal;
}

// ---------------------------------------------------------------------------------------------
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
  constructor(principal) {
    this.principal = principal;
    this._definitions = undefined;
    this._credentials = undefined;
  }
  get definitionById() {
    return (this._definitions ??= byIdLoader(definitions));
  }
  get credentialById() {
    return (this._credentials ??= byIdLoader(credentials));
  }
}

// ---------------------------------------------------------------------------------------------
// The AI write: a port of AiStateService.update and planAiWrite (and ai-policy.ts).

const MODE_LEVERAGE_CAP = { conservative: 3, moderate: 10, aggressive: Number.POSITIVE_INFINITY };
const STORED = {
  currentRisk: 'current_risk',
  dailyPnl: 'daily_pnl',
  openPositions: 'open_positions',
  currentMaxPositionSize: 'current_max_position_size',
  currentLeverage: 'current_leverage',
  adaptiveStopLoss: 'adaptive_stop_loss',
  riskScore: 'risk_score',
  marketSentiment: 'market_sentiment',
  confidenceLevel: 'confidence_level',
};
const API_NAMES = Object.fromEntries([
  ...Object.entries(STORED).map(([api, stored]) => [stored, api]),
  ['last_ai_decision', 'lastAiDecision'],
]);
const WRITE_ATTEMPTS = 5;

function leverageRange(definition, mode) {
  const { futures, perpetuals, leverage } = definition.features;
  if (!futures && !perpetuals) return { min: 1, max: 1 };
  return {
    min: leverage.min,
    max: Math.max(leverage.min, Math.min(leverage.max, MODE_LEVERAGE_CAP[mode])),
  };
}

const finite = (v) => (Number.isFinite(v) ? null : 'must be a finite number');
const nonNegative = (v) => (Number.isFinite(v) && v >= 0 ? null : 'must be at least 0');
const count = (v) => (Number.isInteger(v) && v >= 0 ? null : 'must be a whole number, at least 0');
const percentScore = (v) =>
  Number.isInteger(v) && v >= 0 && v <= 100 ? null : 'must be a whole number from 0 to 100';
const AI_POLICY = {
  currentRisk: nonNegative,
  dailyPnl: finite,
  openPositions: count,
  currentMaxPositionSize: (v, { limits }) =>
    nonNegative(v) ??
    (v <= limits.max_total_risk ? null : `must be at most maxTotalRisk (${limits.max_total_risk})`),
  currentLeverage: (v, { limits, definition }) => {
    const { min, max } = leverageRange(definition, limits.trading_mode);
    return Number.isInteger(v) && v >= min && v <= max
      ? null
      : `must be a whole number from ${min} to ${max} (${limits.trading_mode} mode on this exchange)`;
  },
  adaptiveStopLoss: (v) =>
    Number.isFinite(v) && v > 0 && v <= 100
      ? null
      : 'must be greater than 0 and at most 100 (percent)',
  riskScore: percentScore,
  confidenceLevel: percentScore,
};

function planAiWrite(wallet, definition, input, now) {
  const context = { limits: wallet.user_limits, definition };
  const set = {};
  const changes = {};
  for (const field of Object.keys(STORED)) {
    const value = input[field];
    if (value == null) continue;
    if (field !== 'marketSentiment') {
      const broken = AI_POLICY[field](value, context);
      if (broken) throw userInput(`${field} ${broken}`, field);
    }
    set[`ai_managed_state.${STORED[field]}`] = value;
    changes[STORED[field]] = value;
  }
  set['ai_managed_state.last_ai_decision'] = now;
  changes.last_ai_decision = now;

  // Exactly the state checked against, as the service's filter names it.
  const filter = {
    _id: wallet._id,
    version: wallet.version,
    'user_limits.max_total_risk': wallet.user_limits.max_total_risk,
    'user_limits.trading_mode': wallet.user_limits.trading_mode,
    status: wallet.status,
  };

  const risk = input.currentRisk ?? wallet.ai_managed_state.current_risk;
  const overLimit = wallet.status === 'active' && risk > wallet.user_limits.max_total_risk;
  if (overLimit) {
    set.status = 'ai_paused';
    set.pause_reason = `risk limit exceeded: currentRisk ${risk} > maxTotalRisk ${wallet.user_limits.max_total_risk}`;
  }
  return { filter, set, changes, overLimit };
}

function apiAiState(state) {
  return Object.fromEntries(
    Object.entries(state).map(([key, value]) => [
      API_NAMES[key],
      key === 'market_sentiment'
        ? String(value).toUpperCase()
        : value instanceof Date
          ? value.toISOString()
          : value,
    ]),
  );
}

const apiStatus = (status, pauseReason) => ({ status: status.toUpperCase(), pauseReason });

// The service's audit outbox: events go into the wallet's own update, then are copied to the
// trail and pulled from the wallet.
const walletEvent = (principal, walletId, version, kind, before, after) => ({
  _id: new ObjectId(),
  wallet_id: walletId,
  kind,
  actor: principal.name,
  actor_role: principal.role,
  actor_id: principal.id,
  before,
  after,
  version,
  at: new Date(),
});

async function deliverEvents(walletId, pending) {
  const ids = pending.map((e) => e._id);
  try {
    await events.insertMany(pending, { ordered: false }).catch(async (error) => {
      if ((await events.countDocuments({ _id: { $in: ids } })) !== ids.length) throw error;
    });
    await userWallets.updateOne(
      { _id: walletId },
      { $pull: { pending_events: { _id: { $in: ids } } } },
    );
  } catch (error) {
    process.stderr.write(`floor: audit events left in the wallet: ${error.message}\n`);
  }
}

async function updateAiManagedState(principal, walletId, rawInput, expectedVersion) {
  // Enum names in, stored (lowercase) values to the database, as type-graphql's enum mapping does.
  const input = { ...rawInput };
  if (input.marketSentiment != null) input.marketSentiment = input.marketSentiment.toLowerCase();
  if (!Object.values(input).some((v) => v != null))
    throw userInput('give at least one field to change', 'input');
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const wallet = await userWallets.findOne({ _id: new ObjectId(walletId) });
    if (!wallet) throw notFound('no wallet with that id');
    if (expectedVersion != null && wallet.version !== expectedVersion) {
      throw conflict(
        `stale expectedVersion ${expectedVersion}: the wallet is at version ${wallet.version}`,
      );
    }
    const definition = await definitions.findOne(
      { _id: wallet.wallet_id },
      { projection: { features: 1 } },
    );
    const now = new Date();
    const { filter, set, changes, overLimit } = planAiWrite(wallet, definition, input, now);
    const version = wallet.version + 1;
    const before = Object.fromEntries(
      Object.keys(changes).map((k) => [k, wallet.ai_managed_state[k]]),
    );
    const pending = [
      walletEvent(
        principal,
        wallet._id,
        version,
        'ai_state_changed',
        apiAiState(before),
        apiAiState(changes),
      ),
    ];
    if (overLimit) {
      pending.push(
        walletEvent(
          principal,
          wallet._id,
          version,
          'status_changed',
          apiStatus(wallet.status, wallet.pause_reason),
          apiStatus(set.status, set.pause_reason),
        ),
      );
    }
    // The update document mongoose sends for the service (its timestamps option adds updated_at
    // and a $setOnInsert of created_at), so both write the same fields.
    const updated = await userWallets.findOneAndUpdate(
      filter,
      {
        $setOnInsert: { created_at: now },
        $inc: { version: 1 },
        $set: { ...set, updated_at: now },
        $push: { pending_events: { $each: pending } },
      },
      { returnDocument: 'after' },
    );
    if (!updated) {
      if (expectedVersion != null)
        throw conflict(`stale expectedVersion ${expectedVersion}: the wallet changed meanwhile`);
      continue;
    }
    await deliverEvents(updated._id, pending);
    return updated;
  }
  throw conflict('the wallet kept changing while the agent wrote; try again');
}

// ---------------------------------------------------------------------------------------------
// Schema: the service's SDL, its scalars, and resolvers for scenarios 1-3 only.

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
        throw new Error(`credential ${c._id.toHexString()} refers to a missing wallet definition`);
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

// ---------------------------------------------------------------------------------------------
// HTTP: POST /graphql (JSON), GET /ready.

const documents = new Map();
const MAX_DOCUMENTS = 1_000;

function documentFor(query) {
  let entry = documents.get(query);
  if (entry) return entry;
  try {
    const document = parse(query);
    const errors = validate(schema, document);
    entry = errors.length ? { errors } : { document };
  } catch (error) {
    entry = { errors: [error instanceof GraphQLError ? error : new GraphQLError(String(error))] };
  }
  if (documents.size >= MAX_DOCUMENTS) documents.clear();
  documents.set(query, entry);
  return entry;
}

function send(res, status, payload) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

const errorJson = (error) => ({
  message: error.message,
  ...(error.extensions && Object.keys(error.extensions).length
    ? { extensions: error.extensions }
    : {}),
});

async function handleGraphQL(req, res, raw) {
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return send(res, 400, {
      errors: [{ message: 'malformed request body', extensions: { code: 'BAD_USER_INPUT' } }],
    });
  }
  if (typeof body?.query !== 'string')
    return send(res, 400, {
      errors: [{ message: 'query is required', extensions: { code: 'BAD_REQUEST' } }],
    });
  const { document, errors } = documentFor(body.query);
  if (errors) return send(res, 400, { errors: errors.map(errorJson) });
  let principal;
  try {
    principal = await authenticate(req.headers.authorization);
  } catch (error) {
    return send(res, 200, { errors: [errorJson(error)] });
  }
  const result = await execute({
    schema,
    document,
    variableValues: body.variables ?? undefined,
    operationName: body.operationName ?? undefined,
    contextValue: new Context(principal),
  });
  send(
    res,
    200,
    result.errors
      ? {
          errors: result.errors.map((e) => e.toJSON()),
          ...(result.data !== undefined ? { data: result.data } : {}),
        }
      : { data: result.data },
  );
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/ready') return send(res, 200, { status: 'ready' });
  if (req.url !== '/graphql' || req.method !== 'POST')
    return send(res, 404, { error: 'not found' });
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    handleGraphQL(req, res, Buffer.concat(chunks).toString('utf8')).catch((error) => {
      process.stderr.write(`floor: request failed: ${error.stack ?? error}\n`);
      if (!res.headersSent)
        send(res, 500, {
          errors: [
            { message: 'internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } },
          ],
        });
    });
  });
});
server.keepAliveTimeout = 65_000;

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, resolve);
});
process.stdout.write(
  `listening http://${HOST}:${server.address().port} mongodb-driver ${DRIVER_VERSION}\n`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections?.();
  await client.close().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
