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
  /** graphql-armor's static cost: 2 per object, 1 per scalar, growing with depth. */
  cost: 5_000,
} as const;

export function graphqlLimits(config: Pick<Config, 'nodeEnv'>): ReturnType<ApolloArmor['protect']> {
  return new ApolloArmor({
    maxDepth: { n: GRAPHQL_LIMITS.depth, exposeLimits: true, propagateOnRejection: true },
    maxAliases: { n: GRAPHQL_LIMITS.aliases, exposeLimits: true, propagateOnRejection: true },
    maxTokens: { n: GRAPHQL_LIMITS.tokens, exposeLimits: true, propagateOnRejection: true },
    maxDirectives: { n: GRAPHQL_LIMITS.directives, exposeLimits: true, propagateOnRejection: true },
    costLimit: { maxCost: GRAPHQL_LIMITS.cost, exposeLimits: true, propagateOnRejection: true },
    // "Did you mean …" maps the schema for a prober; in production it is masked.
    blockFieldSuggestion: { enabled: config.nodeEnv === 'production' },
  }).protect();
}
