// The operations, as a frontend and an agent would send them, and GraphQL from this process: only
// for the one-off checks, never for load (bench/load.mjs sends that).

export const Q = {
  catalog: `query Catalog { walletDefinitions { id name slug type description logo authFields { key label type required encrypted placeholder helpText } features { spot futures perpetuals leverage { min max } supportedAssets } isActive order } }`,
  userWallets: `query MyWallets { userWallets { id name status version userLimits { maxTotalRisk allowedSymbols tradingMode } aiManagedState { currentRisk dailyPnl openPositions currentMaxPositionSize currentLeverage adaptiveStopLoss riskScore marketSentiment confidenceLevel lastAiDecision } definition { name slug features { leverage { max } } } credential { name isConnected definition { slug } } } }`,
  write: `mutation AgentWrite($walletId: ObjectID!, $expectedVersion: Int, $input: AiManagedStateInput!) { updateAiManagedState(walletId: $walletId, expectedVersion: $expectedVersion, input: $input) { id version status aiManagedState { currentRisk currentMaxPositionSize currentLeverage riskScore marketSentiment confidenceLevel lastAiDecision } } }`,
  managed: `query Managed($after: String) { managedWallets(first: 100, after: $after) { edges { cursor node { id name status version userLimits { maxTotalRisk tradingMode } aiManagedState { currentRisk currentLeverage riskScore marketSentiment } } } pageInfo { hasNextPage endCursor } } }`,
  changes: `query Changes($since: DateTimeISO!, $after: String) { managedWalletChanges(since: $since, first: 100, after: $after) { edges { cursor node { id name status version userChangedAt userLimits { maxTotalRisk tradingMode } aiManagedState { currentRisk currentLeverage riskScore marketSentiment } } } pageInfo { hasNextPage endCursor } } }`,
  heavy: `query Heavy($id: ObjectID!) { credential(id: $id) { id name balanceHistory(first: 500) { at balances { asset free used total } } } }`,
  me: `query Me { me { id } }`,
  batch: `mutation AgentWrites($updates: [AiStateUpdateInput!]!) { updateAiManagedStates(updates: $updates) { walletId wallet { id version status aiManagedState { currentRisk currentMaxPositionSize currentLeverage riskScore marketSentiment confidenceLevel lastAiDecision } } error { code message currentVersion } } }`,
  issueAgentToken: `mutation Issue($name: String!, $expiresInDays: Int, $scope: AgentScope) { issueAgentToken(name: $name, expiresInDays: $expiresInDays, scope: $scope) { id name token expiresAt scope } }`,
  updateDefinition: `mutation Touch($slug: String!, $input: UpdateWalletDefinitionInput!) { updateWalletDefinition(slug: $slug, input: $input) { slug description } }`,
};

export async function gql(target, query, variables, token) {
  const res = await fetch(`${target.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${target.name}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
  }
  return { status: res.status, ...json };
}

export async function gqlData(target, query, variables, token) {
  const result = await gql(target, query, variables, token);
  if (result.status !== 200 || result.errors)
    throw new Error(`${target.name}: ${JSON.stringify(result).slice(0, 600)}`);
  return result.data;
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}
