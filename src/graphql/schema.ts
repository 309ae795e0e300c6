import { writeFileSync } from 'node:fs';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { createPubSub } from '@graphql-yoga/subscription';
import { buildSchema, type ContainerType } from 'type-graphql';
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

/** Without services the schema can be printed but not executed. */
export async function buildAppSchema(services?: Services): Promise<GraphQLSchema> {
  const container = containerFor(services);
  const schema = await buildSchema({
    resolvers: RESOLVERS,
    container,
    authChecker,
    authMode: 'error',
    scalarsMap,
    validate: { forbidUnknownValues: false },
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
