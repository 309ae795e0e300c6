import type http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import type { GraphQLSchema } from 'graphql';
import type { Config } from '../core/config';
import type { RequestContext } from '../core/context';
import type { Logger } from '../core/logger';
import { costLimitPlugin, createCostLimit, type CostLimit } from '../graphql/cost';
import { createFormatError, schemaNamesOf } from '../graphql/format-error';
import { graphqlLimits, PARSE_OPTIONS } from '../graphql/limits';
import { requestErrorStatus, requestLogging, requestMetrics } from '../graphql/request-plugins';
import type { LiveServer } from '../modules/live/ws-server';
import { rootFieldsOf } from './metrics-endpoint';

/** The rules every operation meets, over HTTP and over WebSocket alike. */
export interface OperationRules {
  limits: ReturnType<typeof graphqlLimits>;
  cost: CostLimit;
  formatError: ReturnType<typeof createFormatError>;
}

export function operationRules(schema: GraphQLSchema, config: Config): OperationRules {
  return {
    limits: graphqlLimits(),
    cost: createCostLimit(schema, { caps: config.caps, maxCost: config.maxRequestCost }),
    formatError: createFormatError({
      production: config.nodeEnv === 'production',
      schemaNames: schemaNamesOf(schema),
    }),
  };
}

export interface ApolloOptions {
  schema: GraphQLSchema;
  rules: OperationRules;
  httpServer: http.Server;
  /** Closed when Apollo stops, after the HTTP server stops accepting. */
  live: LiveServer;
  config: Config;
  logger: Logger;
}

/** Apollo for /graphql over HTTP, started; its stop() drains HTTP and WebSocket alike. */
export async function startApollo(options: ApolloOptions): Promise<ApolloServer<RequestContext>> {
  const { schema, rules, httpServer, live, config, logger } = options;
  const apollo = new ApolloServer<RequestContext>({
    schema,
    parseOptions: PARSE_OPTIONS,
    validationRules: rules.limits.validationRules,
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    introspection: config.nodeEnv !== 'production',
    includeStacktraceInErrorResponses: false,
    // main.ts owns SIGTERM/SIGINT and stops everything in order.
    stopOnTerminationSignals: false,
    formatError: rules.formatError,
    logger: {
      debug: (m) => logger.debug(m),
      info: (m) => logger.info(m),
      warn: (m) => logger.warn(m),
      error: (m) => logger.error(m),
    },
    plugins: [
      ApolloServerPluginDrainHttpServer({
        httpServer,
        stopGracePeriodMillis: config.shutdownGraceMs,
      }),
      // Apollo's documented set-up for graphql-ws: stopping closes every WebSocket (1001, going
      // away).
      { serverWillStart: () => Promise.resolve({ drainServer: () => live.dispose() }) },
      ApolloServerPluginLandingPageDisabled(),
      // No cache hints are used; and nothing may report to Apollo's cloud, whatever the environment
      // says.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
      requestLogging(logger),
      requestErrorStatus(),
      requestMetrics(rootFieldsOf(schema)),
      ...rules.limits.plugins,
      costLimitPlugin(rules.cost),
    ],
  });
  await apollo.start();
  return apollo;
}
