import {
  createBalanceHistoryLoader,
  createCredentialLoader,
} from '../modules/credentials/credential.loader';
import { createTrailLoader, trailQueryKey, type TrailQuery } from '../modules/audit/trail.loader';
import { createDefinitionLoader } from '../modules/catalog/wallet-definition.loader';

/** Fresh per request, so no cache outlives it. */
export function createLoaders() {
  const trails = new Map<string, ReturnType<typeof createTrailLoader>>();
  const balancesByFirst = new Map<number, ReturnType<typeof createBalanceHistoryLoader>>();
  return {
    definitionById: createDefinitionLoader(),
    credentialById: createCredentialLoader(),
    /** One loader per part of the trails asked for in this request (page size, kinds, cursor). */
    trailOf(query: TrailQuery) {
      const key = trailQueryKey(query);
      let loader = trails.get(key);
      if (!loader) trails.set(key, (loader = createTrailLoader(query)));
      return loader;
    },
    /** Likewise for Credential.balanceHistory. */
    balanceHistoryOf(first: number) {
      let loader = balancesByFirst.get(first);
      if (!loader) balancesByFirst.set(first, (loader = createBalanceHistoryLoader(first)));
      return loader;
    },
  };
}
export type Loaders = ReturnType<typeof createLoaders>;
