import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import mongoose from 'mongoose';
import { parseConfig, type Config } from '../../src/core/config';
import { createLogger } from '../../src/core/logger';
import { startApp, type App } from '../../src/app/server';

export const TEST_JWT_SECRET = 'test-jwt-secret-that-is-long-enough-0123456789';
export const TEST_ENCRYPTION_KEY = 'a2V5LWZvci10ZXN0cy1vbmx5LTMyLWJ5dGVzLWxvbmc=';
export const ADMIN_EMAIL = 'admin@wallet.test';
export const ADMIN_PASSWORD = 'admin-password-for-tests';

export interface GqlResult<T> {
  status: number;
  data: T | null | undefined;
  errors:
    | Array<{
        message: string;
        path?: Array<string | number>;
        extensions?: { code?: string; field?: string };
      }>
    | undefined;
  headers: Headers;
}

export interface TestApp {
  app: App;
  config: Config;
  url: string;
  /** Every log line the service wrote, as text. */
  logs: string[];
  gql<T, V>(
    document: TypedDocumentNode<T, V>,
    variables?: V,
    token?: string,
  ): Promise<GqlResult<T>>;
  raw<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<GqlResult<T>>;
  close(): Promise<void>;
}

/**
 * What a second instance of the service needs to share this test app's database, secrets and admin
 * (for startInstance).
 */
export function sameDatabaseEnv(t: TestApp): Record<string, string | undefined> {
  return {
    NODE_ENV: 'test',
    MONGODB_URI: t.config.mongodbUri,
    JWT_SECRET: TEST_JWT_SECRET,
    ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
  };
}

/** Unique database name per test file, so files never see each other's data. */
export function testDatabaseUri(): string {
  const base = process.env.TEST_MONGODB_URI;
  if (!base)
    throw new Error('TEST_MONGODB_URI is not set: run the tests through jest (globalSetup)');
  const url = new URL(base);
  url.pathname = `/t_${randomBytes(6).toString('hex')}`;
  return url.toString();
}

export function testEnv(
  overrides: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    MONGODB_URI: testDatabaseUri(),
    JWT_SECRET: TEST_JWT_SECRET,
    ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_MS: '2000',
    // Every test registers its users from 127.0.0.1; test/rate-limits.test.ts sets its own limits.
    RATE_LIMIT_REGISTRATIONS_PER_HOUR: '100000',
    ...overrides,
  };
}

export async function startTestApp(
  overrides: Record<string, string | undefined> = {},
): Promise<TestApp> {
  const { config } = parseConfig(testEnv(overrides));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString());
      callback();
    },
  });
  const app = await startApp(config, createLogger(config, sink));
  const url = app.url;

  return {
    app,
    config,
    url,
    logs,
    gql: (document, variables, token) => gqlAt(url, document, variables, token),
    raw: (query, variables, token, headers) =>
      postGraphql(url, { query, variables }, token, headers),
    close: async () => {
      await mongoose.connection.db?.dropDatabase().catch(() => undefined);
      await app.stop();
    },
  };
}

/** The codes of a result's errors, for terse assertions. */
export function codes(result: GqlResult<unknown>): Array<string | undefined> {
  return (result.errors ?? []).map((e) => e.extensions?.code);
}

/** An operation against another instance of the service (startInstance), as TestApp.gql does. */
export function gqlAt<T, V>(
  url: string,
  document: TypedDocumentNode<T, V>,
  variables?: V,
  token?: string,
): Promise<GqlResult<T>> {
  return postGraphql(url, { query: print(document), variables }, token);
}

async function postGraphql<T>(
  url: string,
  body: unknown,
  token?: string,
  headers: Record<string, string> = {},
): Promise<GqlResult<T>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { data?: T | null; errors?: GqlResult<T>['errors'] };
  return {
    status: response.status,
    data: json.data,
    errors: json.errors,
    headers: response.headers,
  };
}
