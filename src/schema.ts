import { writeFileSync } from 'node:fs';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType } from 'type-graphql';
import { authChecker } from './auth/auth-checker';
import { AuthResolver } from './auth/auth.resolver';
import type { AuthService } from './auth/auth.service';
import { WalletDefinitionResolver } from './modules/wallet-definitions/wallet-definition.resolver';
import type { WalletDefinitionService } from './modules/wallet-definitions/wallet-definition.service';
import { scalarsMap } from './shared/scalars';

export interface Services {
  auth: AuthService;
  definitions: WalletDefinitionService;
}

const RESOLVERS = [AuthResolver, WalletDefinitionResolver] as const;

/** Resolvers get their services through their constructors; nothing else is in the container. */
function containerFor(services: Services | undefined): ContainerType {
  const instances = new Map<unknown, unknown>(
    services
      ? [
          [AuthResolver, new AuthResolver(services.auth)],
          [WalletDefinitionResolver, new WalletDefinitionResolver(services.definitions)],
        ]
      : [],
  );
  return {
    get(resolverClass) {
      const instance = instances.get(resolverClass);
      if (!instance) throw new Error(`no instance of ${String((resolverClass as { name?: string }).name)} in this schema`);
      return instance;
    },
  };
}

/** Without services the schema can be printed but not executed. */
export function buildAppSchema(services?: Services): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: RESOLVERS,
    container: containerFor(services),
    authChecker,
    authMode: 'error',
    scalarsMap,
    validate: { forbidUnknownValues: false },
  });
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
