import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { Config } from './config';

/**
 * Limits on the shape of an operation, checked at parse and validation time, before any resolver
 * runs. A breach is a validation error, which reaches the client as BAD_USER_INPUT naming the limit.
 */
export const GRAPHQL_LIMITS = {
  depth: 10,
  aliases: 15,
  tokens: 2_000,
  directives: 20,
  /**
   * graphql-armor's static cost: about the number of values an answer can hold, counted on the
   * document (2 per object, 1 per scalar, times a literal `first` of the list). An agent's page of
   * 500 wallets with their state and 10 events each is about 75,000; the same with 100 events each
   * is refused.
   */
  cost: 100_000,
} as const;

export function graphqlLimits(config: Pick<Config, 'nodeEnv'>): ReturnType<ApolloArmor['protect']> {
  return new ApolloArmor({
    maxDepth: { n: GRAPHQL_LIMITS.depth, exposeLimits: true, propagateOnRejection: true },
    maxAliases: { n: GRAPHQL_LIMITS.aliases, exposeLimits: true, propagateOnRejection: true },
    maxTokens: { n: GRAPHQL_LIMITS.tokens, exposeLimits: true, propagateOnRejection: true },
    maxDirectives: { n: GRAPHQL_LIMITS.directives, exposeLimits: true, propagateOnRejection: true },
    costLimit: { maxCost: GRAPHQL_LIMITS.cost, objectCost: 2, scalarCost: 1, depthCostFactor: 1, exposeLimits: true, propagateOnRejection: true },
    // "Did you mean …" maps the schema for a prober; in production it is masked.
    blockFieldSuggestion: { enabled: config.nodeEnv === 'production' },
  }).protect();
}
