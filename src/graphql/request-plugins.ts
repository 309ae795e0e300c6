import { performance } from 'node:perf_hooks';
import type { ApolloServerPlugin } from '@apollo/server';
import {
  Kind,
  type GraphQLError,
  type GraphQLFormattedError,
  type OperationDefinitionNode,
} from 'graphql';
import { logSecurityEvent, type RequestMeta } from '../modules/auth/security-log';
import type { RequestContext } from '../core/context';
import { AppError } from '../core/errors';
import { classifyError } from './format-error';
import type { Logger } from '../core/logger';
import { metrics } from '../core/metrics';

/** Apollo plugins of every request: what is logged of it, and the HTTP status of a refused one. */

/**
 * Logs what the client can't see: every error that leaves as INTERNAL_SERVER_ERROR, with its
 * request id; and, at debug level, each request's arrival and duration (never its variables).
 */
export function requestLogging(logger: Logger): ApolloServerPlugin<RequestContext> {
  return {
    async contextCreationDidFail({ error }) {
      // A bad token is the client's error; anything else (the database down, say) is ours.
      if (!(error instanceof AppError)) logger.error({ err: error }, 'request context failed');
    },
    async requestDidStart({ contextValue }) {
      const started = performance.now();
      contextValue.logger.debug('request received');
      return {
        async willSendResponse({ operation }) {
          // The schema's names of the fields asked for, never the operation's name (the client
          // wrote it).
          contextValue.logger.debug(
            { ms: Math.round(performance.now() - started), fields: rootFieldsOf(operation) },
            'request finished',
          );
        },
        async didEncounterErrors({ errors }) {
          logRequestErrors(contextValue, errors);
        },
      };
    },
  };
}

/**
 * What is logged of a request's errors (over HTTP or WebSocket): internal ones with their error,
 * the database's absence, and FORBIDDEN and RATE_LIMITED as security events.
 */
export function logRequestErrors(meta: RequestMeta, errors: readonly GraphQLError[]): void {
  for (const error of errors) {
    const kind = classifyError({ extensions: error.extensions, path: error.path }, error);
    // Paths are the response's keys: aliases the client wrote. The field's schema name is logged
    // instead.
    const field = fieldNameOf(error);
    if (kind === 'internal')
      meta.logger.error({ err: error.originalError ?? error, field }, 'request failed');
    if (kind === 'unavailable') meta.logger.warn({ field }, 'database unavailable');
    if (kind === 'app' && error.extensions.code === 'FORBIDDEN')
      logSecurityEvent(meta, 'forbidden', { message: error.message });
    if (kind === 'app' && error.extensions.code === 'RATE_LIMITED')
      logSecurityEvent(meta, 'rate limited', { message: error.message });
  }
}

/** The root fields an operation asks for, by their schema names. */
function rootFieldsOf(operation: OperationDefinitionNode | undefined): string[] | undefined {
  return operation?.selectionSet.selections.map((s) =>
    s.kind === Kind.FIELD ? s.name.value : '…',
  );
}

/** An error's field by its schema name (its path holds the client's aliases). */
function fieldNameOf(error: GraphQLError): string | undefined {
  const node = error.nodes?.[0];
  return node?.kind === Kind.FIELD ? node.name.value : undefined;
}

/**
 * The GraphQL-over-HTTP status of a request refused before execution (syntax, validation, variable
 * values): 400, except for a client that accepts only application/json, which gets 200 as that
 * spec asks for legacy clients.
 */
export function requestErrorStatus(): ApolloServerPlugin<RequestContext> {
  const REQUEST_ERRORS = new Set([
    'GRAPHQL_PARSE_FAILED',
    'GRAPHQL_VALIDATION_FAILED',
    'BAD_USER_INPUT',
    'OPERATION_RESOLUTION_FAILURE',
  ]);
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, request, errors }) {
          if (response.body.kind !== 'single' || response.body.singleResult.data !== undefined)
            return;
          if (
            !errors?.length ||
            !errors.every(
              (e) => e.path === undefined && REQUEST_ERRORS.has(String(e.extensions.code)),
            )
          )
            return;
          const accept = request.http?.headers.get('accept') ?? '';
          const onlyJson =
            /\bapplication\/json\b/.test(accept) &&
            !/application\/graphql-response\+json/.test(accept);
          response.http.status = onlyJson ? 200 : 400;
        },
      };
    },
  };
}

/**
 * graphql_requests_total, graphql_request_duration_seconds and graphql_errors_total. A request is
 * labelled by its first root field's schema name when the schema has it, else `other` (an
 * operation's own name is the client's text, and so is a field the schema doesn't have).
 */
export function requestMetrics(
  rootFields: ReadonlySet<string>,
): ApolloServerPlugin<RequestContext> {
  const labelOf = (operation: OperationDefinitionNode | undefined) => {
    const first = operation?.selectionSet.selections[0];
    return first?.kind === Kind.FIELD && rootFields.has(first.name.value)
      ? first.name.value
      : 'other';
  };
  return {
    async contextCreationDidFail({ error }) {
      const code = error instanceof AppError ? error.code : 'INTERNAL_SERVER_ERROR';
      metrics.graphqlRequests.inc({ operation: 'other', outcome: 'error' });
      metrics.graphqlErrors.inc({ code });
    },
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse({ operation, response }) {
          const label = labelOf(operation);
          const errors =
            response.body.kind === 'single' ? (response.body.singleResult.errors ?? []) : [];
          metrics.graphqlRequests.inc({
            operation: label,
            outcome: errors.length > 0 ? 'error' : 'ok',
          });
          metrics.graphqlDuration.observe(
            { operation: label },
            (performance.now() - started) / 1000,
          );
          countErrors(errors);
        },
      };
    },
  };
}

/** graphql_errors_total, by the codes of errors as they were answered (formatted). */
export function countErrors(errors: readonly GraphQLFormattedError[]): void {
  for (const error of errors) {
    // formatError gives every error a string code.
    const code = error.extensions?.code;
    metrics.graphqlErrors.inc({ code: typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR' });
  }
}
