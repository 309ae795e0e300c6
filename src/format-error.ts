import type { GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import type { ValidationError } from 'class-validator';
import { ArgumentValidationError } from 'type-graphql';
import { AppError } from './errors';

/**
 * What leaves the service: our coded errors as they are, GraphQL's own request errors as
 * BAD_USER_INPUT with any echoed value removed, and everything else as a generic
 * INTERNAL_SERVER_ERROR (logged with its request id by the error-logging plugin).
 */

const CLIENT_ERROR_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
]);

export type ErrorKind = 'app' | 'validation' | 'client' | 'unavailable' | 'internal';

/** The driver's and mongoose's ways of saying the database can't be reached right now. */
const UNAVAILABLE = /^Mongo(ose)?(ServerSelection|Network|NetworkTimeout|NotConnected|PoolCleared|Topology\w*)Error$/;

function isDatabaseUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (UNAVAILABLE.test((e as { name?: string }).name ?? '')) return true;
    e = (e as { originalError?: unknown; cause?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

export function classifyError(formatted: Pick<GraphQLFormattedError, 'extensions' | 'path'>, error: unknown): ErrorKind {
  const original = unwrapResolverError(error);
  if (original instanceof AppError) return 'app';
  if (original instanceof ArgumentValidationError) return 'validation';
  if (isDatabaseUnavailable(error)) return 'unavailable';
  // GraphQL's own request errors (parse, validation, variable coercion) come before any
  // resolver runs, so they have no path; anything with a path came out of a resolver.
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && CLIENT_ERROR_CODES.has(code) && formatted.path === undefined) return 'client';
  return 'internal';
}

export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const base = { locations: formatted.locations, path: formatted.path };
  switch (classifyError(formatted, error)) {
    case 'app': {
      const original = unwrapResolverError(error) as AppError;
      const { http: _http, ...extensions } = original.extensions as Record<string, unknown>;
      return { ...base, message: original.message, extensions };
    }
    case 'validation': {
      const original = unwrapResolverError(error) as ArgumentValidationError;
      const { field, message } = firstViolation(original.extensions.validationErrors as ValidationError[]);
      return { ...base, message: `${field}: ${message}`, extensions: { code: 'BAD_USER_INPUT', field } };
    }
    case 'client':
      return { ...base, message: scrubValues(formatted.message), extensions: { code: 'BAD_USER_INPUT' } };
    case 'unavailable':
      return { ...base, message: 'database unavailable', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
    default:
      return { ...base, message: 'internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  }
}

/** The first broken rule, with its path in the API's names: "authFields[1].key". */
export function firstViolation(errors: ValidationError[], prefix = ''): { field: string; message: string } {
  const error = errors[0];
  if (!error) return { field: prefix || 'input', message: 'is invalid' };
  const field = /^\d+$/.test(error.property) ? `${prefix}[${error.property}]` : prefix ? `${prefix}.${error.property}` : error.property;
  if (error.constraints && Object.keys(error.constraints).length > 0) {
    return { field, message: Object.values(error.constraints)[0] };
  }
  return firstViolation(error.children ?? [], field);
}

/**
 * graphql-js echoes a rejected value in its messages ('Variable "$input" got invalid value {...}',
 * 'found "..."', 'cannot represent ...: "..."'). The value may be a secret the user pasted, so it
 * never goes back out or into a log. Nothing is cut out of such a message: it is rebuilt from
 * fixed words, the variable's name, the path and a known reason.
 */
export function scrubValues(message: string): string {
  const variable = /^Variable "(\$[A-Za-z_][A-Za-z0-9_]*)" got invalid value /.exec(message);
  if (variable) {
    const name = variable[1].slice(1);
    // Inside the echoed value every quote is escaped, so ` at "<path>"; ` can only be graphql's own.
    const path = new RegExp(` at "(${name}(?:\\.[A-Za-z_][A-Za-z0-9_]*|\\[\\d+\\])*)"; `).exec(message)?.[1];
    return `Variable "${variable[1]}" got an invalid value${path ? ` at "${path}"` : ''}: ${knownReason(message)}`;
  }
  const literal = /^Expected value of type "([^"]+)", found /.exec(message);
  if (literal) return `Expected value of type "${literal[1]}": ${knownReason(message)}`;
  const scalar = /^(String|Int|Float|Boolean|ID) cannot represent/.exec(message);
  if (scalar) return `${scalar[1]} cannot represent this value`;
  // Scalars of graphql-scalars put the value after a colon.
  if (/^Value is not a valid [^:]*:/.test(message)) return message.replace(/:[\s\S]*$/, '');
  return message;
}

const REASONS: Array<[RegExp, (m: RegExpExecArray) => string]> = [
  [/Field "([A-Za-z_][A-Za-z0-9_]*)" of required type "([^"]+)" was not provided/, (m) => `field "${m[1]}" of required type "${m[2]}" was not provided`],
  [/is not defined by type "([A-Za-z_][A-Za-z0-9_]*)"/, (m) => `a field is not defined by type "${m[1]}"`],
  [/Expected non-nullable type "([^"]+)" not to be null/, (m) => `expected non-nullable type "${m[1]}" not to be null`],
  [/Expected type "([^"]+)"/, (m) => `expected type "${m[1]}"`],
  [/\b(String|Int|Float|Boolean|ID) cannot represent/, (m) => `${m[1]} cannot represent this value`],
  [/does not exist in "([A-Za-z_][A-Za-z0-9_]*)" enum/, (m) => `not a value of the enum "${m[1]}"`],
];

function knownReason(message: string): string {
  for (const [pattern, say] of REASONS) {
    const match = pattern.exec(message);
    if (match) return say(match);
  }
  return 'not a valid value of its type';
}
