import { writeFileSync } from 'node:fs';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { createPubSub } from '@graphql-yoga/subscription';
import { validateOrReject, type ValidatorOptions } from 'class-validator';
import { ArgumentValidationError, buildSchema, type ContainerType } from 'type-graphql';
import { UserWalletEventResolver } from '../modules/audit/user-wallet-event.resolver';
import { LiveEventsResolver } from '../modules/live/live-events.resolver';
import { authChecker } from '../modules/auth/auth-checker';
import { AuthResolver } from '../modules/auth/auth.resolver';
import type { AuthService } from '../modules/auth/auth.service';
import { CredentialResolver } from '../modules/credentials/credential.resolver';
import type { CredentialService } from '../modules/credentials/credential.service';
import type { AiStateService } from '../modules/wallets/ai-state.service';
import { AgentGrantResolver } from '../modules/wallets/agent-grant.resolver';
import type { AgentGrantService } from '../modules/wallets/agent-grants';
import { UserWalletResolver } from '../modules/wallets/user-wallet.resolver';
import type { UserWalletService } from '../modules/wallets/user-wallet.service';
import { WalletDefinitionResolver } from '../modules/catalog/wallet-definition.resolver';
import type { WalletDefinitionService } from '../modules/catalog/wallet-definition.service';
import { guardLists } from '../shared/answer-budget';
import { usePlainResolvers } from '../shared/plain-resolvers';
import { scalarsMap } from '../shared/scalars';

export interface Services {
  auth: AuthService;
  definitions: WalletDefinitionService;
  credentials: CredentialService;
  wallets: UserWalletService;
  ai: AiStateService;
  grants: AgentGrantService;
}

const RESOLVERS = [
  AuthResolver,
  WalletDefinitionResolver,
  CredentialResolver,
  UserWalletResolver,
  AgentGrantResolver,
  UserWalletEventResolver,
  LiveEventsResolver,
] as const;

/** Resolvers get their services through their constructors; nothing else is in the container. */
function containerFor(
  services: Services | undefined,
): ContainerType & { get(resolverClass: unknown): unknown } {
  const instances = new Map<unknown, unknown>(
    services
      ? [
          [AuthResolver, new AuthResolver(services.auth)],
          [WalletDefinitionResolver, new WalletDefinitionResolver(services.definitions)],
          [CredentialResolver, new CredentialResolver(services.credentials)],
          [UserWalletResolver, new UserWalletResolver(services.wallets, services.ai)],
          [AgentGrantResolver, new AgentGrantResolver(services.grants)],
          [UserWalletEventResolver, new UserWalletEventResolver()],
          [LiveEventsResolver, new LiveEventsResolver()],
        ]
      : [],
  );
  return {
    get(resolverClass) {
      const instance = instances.get(resolverClass);
      if (!instance)
        throw new Error(
          `no instance of ${String((resolverClass as { name?: string }).name)} in this schema`,
        );
      return instance;
    },
  };
}

/** How class-validator checks an argument: as type-graphql would with our settings. */
const VALIDATOR_OPTIONS: ValidatorOptions = {
  forbidUnknownValues: false,
  skipMissingProperties: true,
};

const validated = (value: unknown): value is object => value !== null && typeof value === 'object';

/**
 * type-graphql's own validation of an argument (its input class's class-validator decorators; a
 * list's items each), with class-validator loaded once here: left to itself, type-graphql
 * require()s class-validator again for every argument it validates, a module lookup per argument
 * (and, with tracing on, require-in-the-middle's resolution of the module's path besides).
 * Being the schema's validateFn, it stands in for an argument's own `validate` option too: an
 * argument that must differ needs a `validateFn` of its own.
 */
export async function validateArgument(value: unknown): Promise<void> {
  if (!validated(value)) return;
  try {
    if (Array.isArray(value))
      await Promise.all(
        value.filter(validated).map((item) => validateOrReject(item, VALIDATOR_OPTIONS)),
      );
    else await validateOrReject(value, VALIDATOR_OPTIONS);
  } catch (errors) {
    throw new ArgumentValidationError(
      errors as ConstructorParameters<typeof ArgumentValidationError>[0],
    );
  }
}

/** Without services the schema can be printed but not executed. */
export async function buildAppSchema(services?: Services): Promise<GraphQLSchema> {
  const container = containerFor(services);
  const schema = await buildSchema({
    resolvers: RESOLVERS,
    container,
    authChecker,
    authMode: 'error',
    scalarsMap,
    validateFn: validateArgument,
    // type-graphql insists on a pub/sub once there are subscriptions; ours give their own
    // `subscribe` (src/modules/live/), so this one never carries an event.
    pubSub: createPubSub(),
  });
  if (services) {
    usePlainResolvers(schema, (resolverClass) => container.get(resolverClass) as object);
    guardLists(schema);
  }
  return schema;
}

export function printAppSchema(schema: GraphQLSchema): string {
  return (
    '# Emitted from the type-graphql classes by `npm run schema`; do not edit by hand.\n\n' +
    printSchema(lexicographicSortSchema(schema)) +
    '\n'
  );
}

export async function emitSchema(path: string): Promise<void> {
  writeFileSync(path, printAppSchema(await buildAppSchema()));
}
