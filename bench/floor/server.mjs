// The floor: what the benchmark's scenarios cost with nothing but node:http, graphql-js and the
// plain mongodb driver. No Apollo, no type-graphql, no mongoose, no express.
//
// It does the same database work as the service, command for command (schema.mjs and
// ai-write.mjs say what for each operation); a user token is honoured only while its user exists
// (auth.mjs). Parsed and validated documents are cached by query text.
//
// Environment: PORT (0: any), HOST (127.0.0.1), MONGODB_URI, JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE.
// Prints `listening <url> mongodb-driver <version>` on stdout once it accepts requests.

import http from 'node:http';
import { execute, GraphQLError, parse, validate } from 'graphql';
import { authenticator } from './auth.mjs';
import { connect, DRIVER_VERSION } from './db.mjs';
import { floorSchema } from './schema.mjs';

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

const db = await connect(env.MONGODB_URI);
const authenticate = authenticator(JWT, db.users);
const { schema, contextFor } = floorSchema(db);

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
    contextValue: contextFor(principal),
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
  await db.client.close().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
