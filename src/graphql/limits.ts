import { ApolloArmor } from '@escape.tech/graphql-armor';

/**
 * Limits on the shape of an operation, checked at parse and validation time, before any resolver
 * runs. A breach is a validation error, which reaches the client as BAD_USER_INPUT naming the
 * limit.
 */
export const GRAPHQL_LIMITS = {
  depth: 10,
  aliases: 15,
  tokens: 2_000,
  directives: 20,
} as const;

/**
 * The token limit is graphql-js's own parse option, so a document over it fails parsing like any
 * syntax error (HTTP 400, BAD_USER_INPUT). graphql-armor's token plugin parses the document again
 * in a hook Apollo can't report from (HTTP 500, with the parser's message quoting the source).
 */
export const PARSE_OPTIONS = { maxTokens: GRAPHQL_LIMITS.tokens } as const;

export function graphqlLimits(): ReturnType<ApolloArmor['protect']> {
  return new ApolloArmor({
    maxDepth: { n: GRAPHQL_LIMITS.depth, exposeLimits: true, propagateOnRejection: true },
    maxAliases: { n: GRAPHQL_LIMITS.aliases, exposeLimits: true, propagateOnRejection: true },
    maxTokens: { enabled: false },
    maxDirectives: { n: GRAPHQL_LIMITS.directives, exposeLimits: true, propagateOnRejection: true },
    // The cost is computed with the variables' values once the operation is known
    // (graphql/cost.ts); at validation, where this rule runs, variables are unknown.
    costLimit: { enabled: false },
    // Suggestions ("Did you mean …", enum values too) are masked by formatError in production.
    blockFieldSuggestion: { enabled: false },
  }).protect();
}
