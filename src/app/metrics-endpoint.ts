import { timingSafeEqual } from 'node:crypto';
import type { Express } from 'express';
import type { GraphQLSchema } from 'graphql';
import { clientAddressOf } from './request-context';
import type { TrustProxy } from '../shared/client-address';
import { registry } from '../core/metrics';

/** The schema's own operations: the only names a metric's operation label may hold. */
export function rootFieldsOf(schema: GraphQLSchema): Set<string> {
  return new Set(
    [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap(
      (type) => (type ? Object.keys(type.getFields()) : []),
    ),
  );
}

/** On a canonical address (clientAddressOf's): an IPv4-mapped one is already IPv4. */
function isLoopback(address: string): boolean {
  return /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$/.test(address);
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * GET /metrics in Prometheus' text format, on the service's own port: open to loopback (a scraper
 * beside the service), and to anyone else only with `Authorization: Bearer <METRICS_TOKEN>`.
 * Behind a trusted proxy the client is the one the proxy saw, so neither the proxy itself nor an
 * entry the client wrote into X-Forwarded-For opens anything.
 */
export function mountMetrics(
  app: Express,
  options: { token: string | undefined; trustProxy: TrustProxy },
): void {
  app.get('/metrics', async (req, res) => {
    const address = clientAddressOf(req, options.trustProxy);
    const header = req.headers.authorization ?? '';
    const bearer = /^Bearer (.+)$/.exec(header)?.[1];
    if (!isLoopback(address) && !(options.token && bearer && sameToken(bearer, options.token))) {
      res
        .status(401)
        .set('www-authenticate', 'Bearer')
        .json({ error: 'metrics need a bearer token from outside this machine' });
      return;
    }
    res
      .set({ 'content-type': registry.contentType, 'cache-control': 'no-store' })
      .send(await registry.metrics());
  });
}
