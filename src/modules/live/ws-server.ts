import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import {
  getVariableValues,
  GraphQLError,
  Kind,
  type ExecutionResult,
  OperationTypeNode,
  parse,
  specifiedRules,
  validate,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { WebSocket, WebSocketServer } from 'ws';
import type { AuthService, Session } from '../auth/auth.service';
import { principalKey } from '../auth/roles';
import { logSecurityEvent, type RequestMeta } from '../auth/security-log';
import type { RequestContext } from '../../core/context';
import { clientAddressOf } from '../../app/request-context';
import {
  CostLimitError,
  RateLimitedError,
  UnauthenticatedError,
  UserInputError,
} from '../../core/errors';
import type { CostLimit } from '../../graphql/cost';
import { PARSE_OPTIONS } from '../../graphql/limits';
import type { Logger } from '../../core/logger';
import { metrics } from '../../core/metrics';
import { countErrors, logRequestErrors } from '../../graphql/request-plugins';
import type { TrustProxy } from '../../shared/client-address';
import type { TokenBudget } from '../../shared/token-budget';
import { SLOW_CONSUMER_CLOSE, type LiveEventsService } from './live-events.service';
import { LiveSessions, SESSION_CHECK_MS, type LiveSession } from './live-sessions';
import { CheckedDocuments } from './checked-documents';
import { sentAsFrames, type Corkable } from './next-frames';
import { subscriptionContext } from './subscription-context';
import { serveGraphqlWs, type SocketExtra } from './ws-transport';
import { isAsyncIterable, payloadOf, sharedSubscribe } from './shared-execution';
import { HEAP_GROWTH_CHECK_MS, heapGrowthFollowing } from './heap-growth';

/**
 * Subscriptions over graphql-ws, on the HTTP server's own port and path (/graphql). The token goes
 * in connection_init's payload ({ authorization: "Bearer ..." }) and is checked as an HTTP
 * request's is; a token that stops being good while the connection lasts (revoked, expired, its
 * user gone, their password or role changed, an agent token's issuer no longer an admin) closes it
 * with 4403 within seconds (see live-sessions.ts). Each operation gets the same shape limits as
 * over HTTP.
 */

export const LIVE_LIMITS = {
  subscriptionsPerConnection: 20,
  connectionsPerToken: 100,
  /** Events that may wait for one subscription's consumer; past it the connection is closed. */
  maxWaiting: 1_000,
  /** Bytes the socket may hold unsent before its consumer counts as too slow. */
  maxBuffered: 4 * 1024 * 1024,
  maxPayloadBytes: 100 * 1024,
} as const;

export const TOO_MANY_CONNECTIONS_CLOSE = 4429;

/**
 * What the service keeps with each socket: its client's address, its TCP socket, its session once
 * admitted.
 */
interface ConnectionExtra extends SocketExtra {
  readonly clientAddress: string;
  /** The TCP socket under the WebSocket: its frames are gathered into fewer writes on it. */
  readonly tcp: Corkable;
  live?: LiveSession;
}

export interface LiveServerOptions {
  httpServer: http.Server;
  schema: GraphQLSchema;
  auth: AuthService;
  /** The per-token request budget HTTP requests take from: connections and subscribes do too. */
  budget: TokenBudget;
  service: LiveEventsService;
  validationRules: readonly ValidationRule[];
  /** The request cost limit, checked with each subscription's variables before it starts. */
  cost: CostLimit;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  trustProxy: TrustProxy;
  /** SUBSCRIPTION_AUTH_RECHECK: the longest an open connection's token goes unchecked. */
  recheckMs: number;
  logger: Logger;
}

export interface LiveServer {
  /** Closes every socket (1001) and the WebSocket server. */
  dispose(): Promise<void>;
}

export function startLiveServer(options: LiveServerOptions): LiveServer {
  const { auth, logger } = options;
  const wss = new WebSocketServer({
    server: options.httpServer,
    path: '/graphql',
    maxPayload: LIVE_LIMITS.maxPayloadBytes,
  });
  // The heap's growth follows the connections held (heap-growth.ts).
  const followHeap = heapGrowthFollowing();
  const heapCheck = setInterval(() => followHeap(wss.clients.size), HEAP_GROWTH_CHECK_MS);
  heapCheck.unref();
  const sessions = new LiveSessions(
    auth,
    logger,
    LIVE_LIMITS.connectionsPerToken,
    Math.min(options.recheckMs, SESSION_CHECK_MS),
  );
  const format = (errors: readonly GraphQLError[]) =>
    errors.map((error) => options.formatError(error.toJSON(), error));
  /** Errors as they are answered: logged and counted as requestLogging and requestMetrics do. */
  const answer = (meta: RequestMeta, errors: readonly GraphQLError[]) => {
    logRequestErrors(meta, errors);
    const formatted = format(errors);
    countErrors(formatted);
    return formatted;
  };
  /** A result with its errors answered as HTTP's are (logged, counted, formatted). */
  const answered = (ctx: RequestContext, result: ExecutionResult) => {
    if (!result.errors) return result;
    const errors = result.errors.map((error) =>
      error instanceof GraphQLError ? error : new GraphQLError(String(error)),
    );
    return { ...result, errors: answer(ctx, errors) };
  };
  const tooSlow = (socket: { close(code: number, reason: string): void }) =>
    socket.close(
      SLOW_CONSUMER_CLOSE,
      `consumer too slow: more than ${LIVE_LIMITS.maxBuffered} bytes waiting`,
    );
  /** A request of the token's budget; the refusal when it has none left. */
  const spend = (live: LiveSession): RateLimitedError | null => {
    try {
      options.budget.take(live.key);
      return null;
    } catch (error) {
      if (error instanceof RateLimitedError) return error;
      throw error;
    }
  };
  /** A connection refused by a limit: closed with 4429, logged and counted as RATE_LIMITED. */
  const tooMany = (socket: WebSocket, meta: RequestMeta, message: string): false => {
    logSecurityEvent(meta, 'rate limited', { message, transport: 'websocket' });
    metrics.graphqlErrors.inc({ code: 'RATE_LIMITED' });
    socket.close(TOO_MANY_CONNECTIONS_CLOSE, message);
    return false;
  };

  const documents = new CheckedDocuments((text) => {
    let document;
    try {
      document = parse(text, PARSE_OPTIONS);
    } catch (error) {
      if (error instanceof GraphQLError) return [withCode(error, 'GRAPHQL_PARSE_FAILED')];
      throw error;
    }
    const errors = validate(options.schema, document, [
      ...specifiedRules,
      ...options.validationRules,
    ]);
    if (errors.length > 0) return errors.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
    return document;
  });

  const transport = serveGraphqlWs<ConnectionExtra>(
    {
      schema: options.schema,
      connectionInitWaitTimeout: 5_000,
      subscribe: sharedSubscribe(
        (args) => (args.contextValue as RequestContext).live?.shareKey ?? null,
      ),
      onConnect: async (ctx) => {
        const extra = ctx.extra;
        const { clientAddress } = extra;
        const header =
          typeof ctx.connectionParams?.authorization === 'string'
            ? ctx.connectionParams.authorization
            : '';
        let session: Session | null = null;
        try {
          session = await auth.authenticateSession(header);
        } catch (error) {
          if (!(error instanceof UnauthenticatedError)) throw error;
          logSecurityEvent({ logger, clientAddress, actor: null }, 'token refused', {
            reason: error.message,
            transport: 'websocket',
          });
        }
        // Subscriptions are for signed-in callers only: graphql-ws closes with 4403.
        if (!session) {
          metrics.graphqlErrors.inc({ code: 'UNAUTHENTICATED' });
          return false;
        }
        // Gone while its token was checked: its close has been handled already, with nothing to
        // give back, so nothing is taken for it.
        if (extra.socket.readyState !== WebSocket.OPEN) return false;
        const { principal } = session;
        const close = (code: number, reason: string) => extra.socket.close(code, reason);
        const live: LiveSession = {
          session,
          key: principalKey(principal),
          clientAddress,
          close,
          // One for all the connection's subscriptions.
          connection: { maxWaiting: LIVE_LIMITS.maxWaiting, close },
        };
        const meta: RequestMeta = { logger, clientAddress, actor: principal };
        // The token's check cost what an HTTP request's does: so does the connection.
        const spent = spend(live);
        if (spent) return tooMany(extra.socket, meta, spent.message);
        if (!sessions.admit(live)) {
          metrics.rateLimitRefusals.inc({ kind: 'websocket' });
          return tooMany(
            extra.socket,
            meta,
            `too many connections for this token: at most ${LIVE_LIMITS.connectionsPerToken}`,
          );
        }
        extra.live = live;
        return true;
      },
      onClose: (ctx) => {
        if (ctx.extra.live) sessions.release(ctx.extra.live);
      },
      onSubscribe: (ctx, _id, payload) => {
        const extra = ctx.extra;
        const live = extra.live!;
        const { principal } = live.session;
        // Each subscribe is a request of the token's budget, as over HTTP.
        const spent = spend(live);
        if (spent) return [spent];
        if (Object.keys(ctx.subscriptions).length > LIVE_LIMITS.subscriptionsPerConnection) {
          metrics.rateLimitRefusals.inc({ kind: 'websocket' });
          return [
            new RateLimitedError(
              `too many subscriptions on this connection: at most ${LIVE_LIMITS.subscriptionsPerConnection}`,
            ),
          ];
        }
        const checked = documents.of(payload.query);
        if (!('document' in checked)) return [...checked];
        const { document, key: operationKey } = checked;
        const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
        const operation = payload.operationName
          ? operations.find((o) => o.name?.value === payload.operationName)
          : operations.length === 1
            ? operations[0]
            : undefined;
        if (!operation || operation.operation !== OperationTypeNode.SUBSCRIPTION) {
          return [
            new UserInputError(
              'only subscriptions run over WebSocket: send queries and mutations to POST /graphql',
            ),
          ];
        }
        // Checked here, as Apollo does over HTTP: graphql-js would answer them as the execution's
        // own errors, which carry no code.
        const variables = getVariableValues(
          options.schema,
          operation.variableDefinitions ?? [],
          payload.variables ?? {},
        );
        if (variables.errors) return variables.errors.map((e) => withCode(e, 'BAD_USER_INPUT'));
        try {
          options.cost.assertWithin(document, operation, variables.coerced);
        } catch (error) {
          if (error instanceof CostLimitError) return [error];
          throw error;
        }
        const contextValue = subscriptionContext(
          {
            clientAddress: live.clientAddress,
            actor: principal,
            live: {
              service: options.service,
              connection: live.connection,
              // Everything the answer to an event may depend on besides the event itself.
              shareKey: JSON.stringify([
                live.key,
                principal.role,
                payload.operationName ?? null,
                payload.variables ?? null,
                operationKey,
              ]),
            },
          },
          logger,
        );
        return {
          schema: options.schema,
          document,
          variableValues: payload.variables ?? undefined,
          operationName: payload.operationName ?? undefined,
          contextValue,
        };
      },
      // A subscription's events go out as frames the service sends itself (next-frames.ts): each
      // distinct result serialised once, whatever the number of sockets it goes to.
      onOperation: (ctx, id, _payload, args, result) => {
        if (!isAsyncIterable(result)) return undefined;
        const context = args.contextValue as RequestContext;
        return sentAsFrames((result as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator](), {
          id,
          socket: ctx.extra.socket,
          tcp: ctx.extra.tcp,
          payloadOf: (shared) => payloadOf(shared, (r) => JSON.stringify(answered(context, r))),
          maxBuffered: LIVE_LIMITS.maxBuffered,
          onSlow: tooSlow,
        });
      },
      // A subscription answered at once, without a stream (FORBIDDEN, NOT_FOUND): graphql-ws sends
      // that one result itself.
      onNext: (_ctx, _id, _payload, args, result) =>
        result.errors ? answered(args.contextValue as RequestContext, result) : undefined,
      // Errors of onSubscribe (limits, syntax, validation, variables) and of a failed source.
      onError: (ctx, _id, _payload, errors) => {
        const live = ctx.extra.live!;
        return answer(
          {
            logger: logger.child({ requestId: randomUUID(), transport: 'websocket' }),
            clientAddress: live.clientAddress,
            actor: live.session.principal,
          },
          errors,
        );
      },
    },
    wss,
    // The client's address, taken when the socket opens, and the TCP socket under it (which the
    // WebSocket holds anyway); nothing else of the upgrade request is kept.
    (socket, request) => ({
      socket,
      tcp: request.socket,
      clientAddress: clientAddressOf(request, options.trustProxy),
    }),
    logger,
  );

  return {
    dispose: async () => {
      clearInterval(heapCheck);
      followHeap(0);
      sessions.stop();
      await transport.dispose();
    },
  };
}

/**
 * graphql-js's errors carry no code: the one Apollo gives them over HTTP, so they are formatted
 * alike.
 */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}
