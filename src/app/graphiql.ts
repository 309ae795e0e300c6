import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Express, Request, Response } from 'express';
import { buildSchema, introspectionFromSchema } from 'graphql';

/**
 * GraphiQL, served entirely by us from node_modules: no CDN, so it works offline. The page
 * has no inline script, so a strict content security policy can hold.
 */
const ASSETS: Record<string, { pkg: string; file: string; type: string }> = {
  'react.js': { pkg: 'react', file: 'umd/react.production.min.js', type: 'text/javascript' },
  'react-dom.js': {
    pkg: 'react-dom',
    file: 'umd/react-dom.production.min.js',
    type: 'text/javascript',
  },
  'graphiql.js': { pkg: 'graphiql', file: 'graphiql.min.js', type: 'text/javascript' },
  'graphiql.css': { pkg: 'graphiql', file: 'graphiql.min.css', type: 'text/css' },
};

/** The UMD builds are not in the packages' exports maps, so go through each package's folder. */
function assetPath(asset: { pkg: string; file: string }): string {
  return join(dirname(require.resolve(`${asset.pkg}/package.json`)), asset.file);
}

/**
 * The schema file the service emits and commits (`npm run schema`), from src/graphiql or
 * dist/graphiql alike.
 */
export const COMMITTED_SCHEMA = join(__dirname, '..', '..', 'schema', 'schema.graphql');

/*
 * Headers (the bearer token) are kept in sessionStorage, never localStorage: they go when the tab
 * does. Where introspection is off (production), the explorer's docs come from the committed schema
 * file, served beside the page as an introspection result.
 */
const INIT_SCRIPT = `
(function () {
  var fromFile = document.documentElement.getAttribute('data-schema') === 'file';
  var post = GraphiQL.createFetcher({ url: window.location.origin + '/graphql' });
  var fetcher = function (params, options) {
    if (fromFile && params.operationName === 'IntrospectionQuery') {
      return fetch('/graphiql/schema.json').then(function (r) { return r.json(); });
    }
    return post(params, options);
  };
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    storage: window.sessionStorage,
    shouldPersistHeaders: true,
    defaultQuery: '# The wallet service. Signed-in operations need a header:\\n# { "Authorization": "Bearer <token from login>" }\\n\\n{\\n  walletDefinitions {\\n    slug\\n    name\\n    type\\n  }\\n}\\n'
  }));
})();
`;

const page = (schemaFrom: 'introspection' | 'file') => `<!doctype html>
<html lang="en" data-schema="${schemaFrom}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Wallet service · GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/assets/graphiql.css">
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphiql/assets/react.js"></script>
  <script src="/graphiql/assets/react-dom.js"></script>
  <script src="/graphiql/assets/graphiql.js"></script>
  <script src="/graphiql/assets/init.js"></script>
</body>
</html>
`;

export const GRAPHIQL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // GraphiQL's editor sets style attributes at run time.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function sendPage(res: Response, body: string): void {
  res
    .status(200)
    .set({
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': GRAPHIQL_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cache-control': 'no-cache',
    })
    .send(body);
}

/** A browser asking for /graphql gets the explorer; API clients get GraphQL. */
export function wantsGraphiQL(req: Request): boolean {
  return (
    req.method === 'GET' &&
    req.accepts(['application/json', 'application/graphql-response+json', 'text/html']) ===
      'text/html' &&
    req.query.query === undefined
  );
}

/** Mounted only when GRAPHIQL is on (the default outside production). */
export function mountGraphiQL(app: Express, options: { introspection: boolean }): void {
  const cache = new Map<string, Buffer>();
  const body = page(options.introspection ? 'introspection' : 'file');
  let introspected: string | undefined;
  app.get('/graphiql', (_req, res) => sendPage(res, body));
  app.get('/graphql', (req, res, next) => (wantsGraphiQL(req) ? sendPage(res, body) : next()));
  if (!options.introspection) {
    app.get('/graphiql/schema.json', (_req, res) => {
      introspected ??= JSON.stringify({
        data: introspectionFromSchema(buildSchema(readFileSync(COMMITTED_SCHEMA, 'utf8'))),
      });
      res
        .type('application/json')
        .set({ 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' })
        .send(introspected);
    });
  }
  app.get('/graphiql/assets/:name', (req, res) => {
    const name = req.params.name;
    if (name === 'init.js') {
      res.type('text/javascript').set('cache-control', 'no-cache').send(INIT_SCRIPT);
      return;
    }
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) {
      res.status(404).json({ error: 'not found' });
      return;
    }
    let body = cache.get(name);
    if (!body) {
      body = readFileSync(assetPath(asset));
      cache.set(name, body);
    }
    res
      .type(asset.type)
      .set({ 'cache-control': 'public, max-age=86400', 'x-content-type-options': 'nosniff' })
      .send(body);
  });
}
