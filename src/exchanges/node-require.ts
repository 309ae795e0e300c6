/**
 * Node's own `require`, fetched with getBuiltinModule because jest replaces both `require` and
 * `node:module`: ccxt's crypto dependencies (@noble/*) are ES modules, which Node 20.19+ can
 * require but jest's module registry cannot. Outside jest this is a plain require. ccxt and the
 * undici the guard hands it are both loaded this way, so they live in one realm.
 */
export const nodeRequire: NodeJS.Require = process
  .getBuiltinModule('node:module')
  .createRequire(__filename);
