// The Apollo Client cache set-up docs/frontend.md gives, as the tests use it.
// Objects without an id (limits, AI state, features, ...) are merged into the object that holds
// them instead of replacing it, so two queries selecting different fields of them lose nothing.
export const typePolicies = {
  UserLimits: { merge: true },
  AiManagedState: { merge: true },
  AiBounds: { merge: true },
  WalletFeatures: { merge: true },
  LeverageRange: { merge: true },
  ApiConfig: { merge: true },
  KeyPermissions: { merge: true },
};

/**
 * After deleteCredential or deleteUserWallet: the object goes, and with it every cached list's
 * reference to it.
 */
export function evictDeleted(cache, __typename, id) {
  cache.evict({ id: cache.identify({ __typename, id }) });
  cache.gc();
}
