import {
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  type GraphQLField,
  type GraphQLFormattedError,
  type GraphQLInputField,
  type GraphQLSchema,
} from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import type { ValidationError } from 'class-validator';
import { ArgumentValidationError } from 'type-graphql';
import { AppError } from '../core/errors';

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
const UNAVAILABLE =
  /^Mongo(ose)?(ServerSelection|Network|NetworkTimeout|NotConnected|PoolCleared|Topology\w*)Error$/;

function isDatabaseUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (UNAVAILABLE.test((e as { name?: string }).name ?? '')) return true;
    e =
      (e as { originalError?: unknown; cause?: unknown }).originalError ??
      (e as { cause?: unknown }).cause;
  }
  return false;
}

export function classifyError(
  formatted: Pick<GraphQLFormattedError, 'extensions' | 'path'>,
  error: unknown,
): ErrorKind {
  const original = unwrapResolverError(error);
  if (original instanceof AppError) return 'app';
  if (original instanceof ArgumentValidationError) return 'validation';
  if (isDatabaseUnavailable(error)) return 'unavailable';
  // GraphQL's own request errors (parse, validation, variable coercion) come before any
  // resolver runs, so they have no path; anything with a path came out of a resolver.
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && CLIENT_ERROR_CODES.has(code) && formatted.path === undefined)
    return 'client';
  return 'internal';
}

export interface ErrorFormatting {
  /** Production masks what a client wrote in a name's place, and every suggestion. */
  production: boolean;
  /**
   * Every name the schema defines (types, fields, arguments, enum values, directives): safe to
   * repeat.
   */
  schemaNames: ReadonlySet<string>;
}

/** Apollo's formatError for this service. */
export function createFormatError(
  options: ErrorFormatting,
): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  return (formatted, error) => {
    const base = { locations: formatted.locations, path: formatted.path };
    switch (classifyError(formatted, error)) {
      case 'app': {
        const original = unwrapResolverError(error) as AppError;
        const { http: _http, ...extensions } = original.extensions as Record<string, unknown>;
        return { ...base, message: original.message, extensions };
      }
      case 'validation': {
        const original = unwrapResolverError(error) as ArgumentValidationError;
        const { field, message } = firstViolation(original.extensions.validationErrors);
        return {
          ...base,
          message: `${field}: ${message}`,
          extensions: { code: 'BAD_USER_INPUT', field },
        };
      }
      case 'client':
        return {
          ...base,
          message: clientMessage(formatted, options),
          extensions: { code: 'BAD_USER_INPUT' },
        };
      case 'unavailable':
        return {
          ...base,
          message: 'database unavailable',
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        };
      default:
        return {
          ...base,
          message: 'internal server error',
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        };
    }
  };
}

/**
 * GraphQL's own request errors, without anything the client sent: no value in any environment (a
 * secret can be written inline), and in production no name the client wrote either (an API key
 * pasted where a name goes is a valid name) and no suggestions. The place is said instead: the
 * variable's path, and the line and column.
 */
export function clientMessage(
  formatted: Pick<GraphQLFormattedError, 'message' | 'locations' | 'extensions'>,
  options: ErrorFormatting,
): string {
  const at = formatted.locations?.[0];
  const where = at ? ` at line ${at.line}, column ${at.column}` : '';
  if (formatted.extensions?.code === 'GRAPHQL_PARSE_FAILED') {
    const tokens = /Document contains more th[ae][nt] (\d+) tokens/.exec(formatted.message);
    // The parser names the token it found, which can be a value (a string literal, say).
    return tokens
      ? `Token limit of ${tokens[1]} exceeded${where}.`
      : `Syntax Error${where}: the document is not valid GraphQL.`;
  }
  // graphql-armor's limits are validation errors that call themselves "Syntax Error".
  const message = scrubValues(
    formatted.message.replace(/^Syntax Error: (?=.* limit of \d+ exceeded)/, ''),
  );
  if (!options.production) return message;
  const masked = message
    .replace(/\s*Did you mean[\s\S]*$/, '')
    .replace(
      /"([^"\\]*(?:\\.[^"\\]*)*)"/g,
      (_quoted, inside: string) => `"${maskNames(inside, options.schemaNames)}"`,
    );
  return masked === message || !where ? masked : `${masked.replace(/\.$/, '')}${where}.`;
}

/**
 * One quoted part of a message, with every name the schema doesn't define replaced by "…": a
 * type reference ("[Foo!]!"), a coordinate ("Query.me"), a variable's path ("$input" or
 * "input.values[0].value") keep their schema's names, their indexes and their punctuation.
 */
function maskNames(quoted: string, schemaNames: ReadonlySet<string>): string {
  if (schemaNames.has(quoted)) return quoted;
  return quoted.replace(/[^.[\]!@$\s]+/g, (part) =>
    /^\d+$/.test(part) || schemaNames.has(part) ? part : '…',
  );
}

/** The names a schema defines, for clientMessage: the only ones a production error repeats. */
export function schemaNamesOf(schema: GraphQLSchema): Set<string> {
  const names = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    names.add(type.name);
    if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
      const fields = Object.values<GraphQLField<unknown, unknown> | GraphQLInputField>(
        type.getFields(),
      );
      for (const field of fields) {
        names.add(field.name);
        names.add(`${type.name}.${field.name}`);
        for (const arg of 'args' in field ? field.args : []) names.add(arg.name);
      }
    }
    if (isEnumType(type)) for (const value of type.getValues()) names.add(value.name);
  }
  for (const directive of schema.getDirectives()) names.add(directive.name);
  return names;
}

/** The first broken rule, with its path in the API's names: "authFields[1].key". */
export function firstViolation(
  errors: ValidationError[],
  prefix = '',
): { field: string; message: string } {
  const error = errors[0];
  if (!error) return { field: prefix || 'input', message: 'is invalid' };
  const field = /^\d+$/.test(error.property)
    ? `${prefix}[${error.property}]`
    : prefix
      ? `${prefix}.${error.property}`
      : error.property;
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
    // Inside the echoed value every quote is escaped, so ` at "<path>"; ` can only be graphql's
    // own.
    const path = new RegExp(` at "(${name}(?:\\.[A-Za-z_][A-Za-z0-9_]*|\\[\\d+\\])*)"; `).exec(
      message,
    )?.[1];
    return `Variable "${variable[1]}" got an invalid value${path ? ` at "${path}"` : ''}: ${knownReason(message)}`;
  }
  const literal = /^Expected value of type "([^"]+)", found /.exec(message);
  if (literal) return `Expected value of type "${literal[1]}": ${knownReason(message)}`;
  // Built-in scalars, enums ('Enum "X" cannot represent non-enum value: …') and graphql-scalars'
  // own.
  const scalar = /^((?:Enum )?"?[A-Za-z_][A-Za-z0-9_]*"?) cannot (?:represent|be serialized)/.exec(
    message,
  );
  if (scalar) return `${scalar[1]} cannot represent this value`;
  const enumValue =
    /^Value "(?:[^"\\]|\\.)*" does not exist in "([A-Za-z_][A-Za-z0-9_]*)" enum\.([\s\S]*)$/.exec(
      message,
    );
  if (enumValue) return `Not a value of the enum "${enumValue[1]}".${enumValue[2]}`;
  // Scalars of graphql-scalars put the value after a colon.
  if (/^Value is not /.test(message) || /^Can only validate /.test(message))
    return message.replace(/:[\s\S]*$/, '');
  return message;
}

const REASONS: Array<[RegExp, (m: RegExpExecArray) => string]> = [
  [
    /Field "([A-Za-z_][A-Za-z0-9_]*)" of required type "([^"]+)" was not provided/,
    (m) => `field "${m[1]}" of required type "${m[2]}" was not provided`,
  ],
  [
    /is not defined by type "([A-Za-z_][A-Za-z0-9_]*)"/,
    (m) => `a field is not defined by type "${m[1]}"`,
  ],
  [
    /Expected non-nullable type "([^"]+)" not to be null/,
    (m) => `expected non-nullable type "${m[1]}" not to be null`,
  ],
  [/Expected type "([^"]+)"/, (m) => `expected type "${m[1]}"`],
  [
    /\b((?:Enum )?"?[A-Za-z_][A-Za-z0-9_]*"?) cannot (?:represent|be serialized)/,
    (m) => `${m[1]} cannot represent this value`,
  ],
  [/does not exist in "([A-Za-z_][A-Za-z0-9_]*)" enum/, (m) => `not a value of the enum "${m[1]}"`],
  [/Value is not ([^:;]*)/, (m) => `not ${m[1]}`],
];

function knownReason(message: string): string {
  for (const [pattern, say] of REASONS) {
    const match = pattern.exec(message);
    if (match) return say(match);
  }
  return 'not a valid value of its type';
}
