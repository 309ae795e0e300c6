import { GraphQLError } from 'graphql';

/**
 * The only errors that leave the service with their message. Each carries one code of the
 * contract; formatError (graphql/format-error.ts) turns anything else into INTERNAL_SERVER_ERROR.
 */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'INTERNAL_SERVER_ERROR';

export abstract class AppError extends GraphQLError {
  abstract readonly code: ErrorCode;

  protected constructor(
    message: string,
    code: ErrorCode,
    extensions: Record<string, unknown> = {},
  ) {
    super(message, { extensions: { code, ...extensions } });
  }
}

export class UnauthenticatedError extends AppError {
  readonly code = 'UNAUTHENTICATED' as const;
  constructor(message = 'authentication required') {
    super(message, 'UNAUTHENTICATED', { http: { status: 401 } });
  }
}

export class ForbiddenError extends AppError {
  readonly code = 'FORBIDDEN' as const;
  constructor(message = 'not allowed') {
    super(message, 'FORBIDDEN');
  }
}

export class NotFoundError extends AppError {
  readonly code = 'NOT_FOUND' as const;
  constructor(message: string) {
    super(message, 'NOT_FOUND');
  }
}

/** A bound an input breaks: `field` in the API's names, `value` the number the client sent. */
export interface BoundViolation {
  field: string;
  rule: 'AT_MOST' | 'AT_LEAST';
  bound: number;
  value: number;
}

/**
 * `field` names the offending input in the API's names, e.g. "features.leverage.max";
 * `violations`, when given, every numeric bound the input breaks (`field` is the first refused).
 */
export class UserInputError extends AppError {
  readonly code = 'BAD_USER_INPUT' as const;
  constructor(
    message: string,
    readonly field?: string,
    readonly violations?: readonly BoundViolation[],
  ) {
    super(message, 'BAD_USER_INPUT', {
      ...(field === undefined ? {} : { field }),
      ...(violations === undefined ? {} : { violations }),
    });
  }
}

/**
 * `currentVersion`, when given: the version the wallet is at now, so an agent can re-read or retry.
 */
export class ConflictError extends AppError {
  readonly code = 'CONFLICT' as const;
  constructor(
    message: string,
    readonly currentVersion?: number,
  ) {
    super(message, 'CONFLICT', currentVersion === undefined ? {} : { currentVersion });
  }
}

/** An operation whose answer could hold more than the limit allows (see graphql/cost.ts). */
export class CostLimitError extends AppError {
  readonly code = 'BAD_USER_INPUT' as const;
  constructor(
    readonly cost: number,
    readonly limit: number,
  ) {
    super(
      `the operation's cost of ${cost} is over the limit of ${limit}: ask for smaller pages or fewer fields`,
      'BAD_USER_INPUT',
      { cost, limit },
    );
  }
}

export class RateLimitedError extends AppError {
  readonly code = 'RATE_LIMITED' as const;
  constructor(message = 'too many requests', retryAfterSeconds?: number) {
    super(message, 'RATE_LIMITED', {
      http: { status: 429 },
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    });
  }
}

/** For a failure we understand but whose details must stay inside, e.g. the database being down. */
export class InternalError extends AppError {
  readonly code = 'INTERNAL_SERVER_ERROR' as const;
  constructor(message = 'internal server error') {
    super(message, 'INTERNAL_SERVER_ERROR');
  }
}

/** MongoDB's duplicate-key error, on insert and on update alike. */
export function isDuplicateKeyError(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000
  );
}
