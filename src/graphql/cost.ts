import type { ApolloServerPlugin } from '@apollo/server';
import {
  getNamedType,
  getNullableType,
  isCompositeType,
  isInterfaceType,
  isLeafType,
  isListType,
  isObjectType,
  Kind,
  valueFromASTUntyped,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { CCXT_CREDENTIALS } from '../exchanges/credentials';
import { MAX_BALANCES } from '../exchanges/findings';
import { MAX_EGRESS_IPS } from '../core/config';
import { CostLimitError } from '../core/errors';
import {
  DEFAULT_BALANCE_HISTORY,
  MAX_BALANCE_HISTORY,
} from '../modules/credentials/credential.loader';
import { MAX_AUTH_FIELDS, MAX_SUPPORTED_ASSETS } from '../modules/catalog/wallet-definition.inputs';
import { BUILT_IN_DEFINITIONS } from '../modules/catalog/wallet-definition.seed';
import { MAX_ALLOWED_SYMBOLS } from '../modules/wallets/symbols';
import { MAX_VIOLATIONS } from '../modules/wallets/ai-policy';
import { MAX_GRANTS_PER_WALLET, MAX_LISTED_GRANTS } from '../modules/wallets/agent-grants';
import { AgentPermission } from '../modules/wallets/user-wallet.model';
import { DEFAULT_EVENTS, MAX_EVENTS } from '../modules/audit/trail.loader';
import {
  DEFAULT_WALLET_PAGE,
  MAX_BATCH,
  MAX_TRAIL_PAGE,
  MAX_WALLET_PAGE,
} from '../modules/wallets/user-wallet.inputs';
import {
  MAX_DEFINITIONS,
  MAX_EXCHANGE_TEMPLATES,
} from '../modules/catalog/wallet-definition.service';
import { MAX_LISTED_AGENT_TOKENS, maxGrantableAgents } from '../modules/auth/auth.service';

/**
 * The cost of an operation: about the number of values its answer can hold, computed with its
 * variables before anything runs. A field costs 1 (a scalar or an enum) or 2 (an object) plus
 * what is selected under it, times the number of items its list can hold: its page size when it
 * takes one (the variable's value, else its default; never more than its maximum), otherwise the
 * most it can ever return (the per-user caps, 100 balances, 500 assets, ...). Every list of the
 * schema has a size here; an unknown one stops the service at start-up (assertEveryListSized).
 *
 * A JSON object (an audit event's before and after) counts JSON_OBJECT_COST: an AI state's
 * fields; the few that hold more (a user's 200 allowed symbols) are counted as they are answered
 * (shared/answer-budget.ts). A connection counts its page on the connection field itself, so its
 * `edges` count once per item. Introspection (off in production) is bounded by the schema and
 * counts each field once.
 */

export const JSON_OBJECT_COST = 10;

export type ListSize =
  /** Never more than `max` items. */
  | { max: number }
  /** A page: the `arg` argument's value, `default` when left out, never more than `max`. */
  | { page: string; default: number; max: number }
  /** As many items as the `arg` list argument has, never more than `max`. */
  | { lengthOf: string; max: number }
  /** A connection's edges: its page is counted on the connection field. */
  | { perPage: true };

export interface CostSettings {
  caps: { credentialsPerUser: number; walletsPerUser: number; agentsPerUser: number };
}

/** Every list field of the schema (and the connection fields), with the most it can hold. */
export function listSizes(settings: CostSettings): Record<string, ListSize> {
  const walletPage = { page: 'first', default: DEFAULT_WALLET_PAGE, max: MAX_WALLET_PAGE };
  return {
    'Query.userWallets': { max: settings.caps.walletsPerUser },
    'Query.credentials': { max: settings.caps.credentialsPerUser },
    'Query.egressAddresses': { max: MAX_EGRESS_IPS },
    'Query.walletDefinitions': { max: MAX_DEFINITIONS },
    'Query.exchangeTemplates': { max: MAX_EXCHANGE_TEMPLATES },
    'Query.agentTokens': { max: MAX_LISTED_AGENT_TOKENS },
    'Query.grantableAgents': { max: maxGrantableAgents(settings.caps.agentsPerUser) },
    'Query.managedWallets': walletPage,
    'Query.managedWalletChanges': walletPage,
    'Mutation.seedWalletDefinitions': { max: BUILT_IN_DEFINITIONS.length },
    'Mutation.updateAiManagedStates': { lengthOf: 'updates', max: MAX_BATCH },
    'OperationError.violations': { max: MAX_VIOLATIONS },
    'Query.myGrants': { max: MAX_LISTED_GRANTS },
    'UserWallet.agentGrants': { max: MAX_GRANTS_PER_WALLET },
    'AgentGrant.permissions': { max: Object.keys(AgentPermission).length },
    'UserWallet.events': { page: 'first', default: DEFAULT_EVENTS, max: MAX_EVENTS },
    'UserWallet.auditTrail': { page: 'first', default: DEFAULT_EVENTS, max: MAX_TRAIL_PAGE },
    'UserWalletConnection.edges': { perPage: true },
    'UserWalletEventConnection.edges': { perPage: true },
    'Credential.balanceHistory': {
      page: 'first',
      default: DEFAULT_BALANCE_HISTORY,
      max: MAX_BALANCE_HISTORY,
    },
    'Credential.balances': { max: MAX_BALANCES },
    'BalanceSnapshot.balances': { max: MAX_BALANCES },
    'ConnectionTestResult.balances': { max: MAX_BALANCES },
    // withdrawalPolicy (exchanges/findings.ts) gives two at the most.
    'ConnectionTestResult.warnings': { max: 10 },
    'Credential.fields': { max: MAX_AUTH_FIELDS },
    'WalletDefinition.authFields': { max: MAX_AUTH_FIELDS },
    'WalletDefinitionDraft.authFields': { max: MAX_AUTH_FIELDS },
    'ExchangeTemplate.requiredCredentials': { max: CCXT_CREDENTIALS.length },
    'WalletFeatures.supportedAssets': { max: MAX_SUPPORTED_ASSETS },
    'UserLimits.allowedSymbols': { max: MAX_ALLOWED_SYMBOLS },
  };
}

/** Refuses to start with a list field that has no size: its cost would be unknown. */
export function assertEveryListSized(
  schema: GraphQLSchema,
  sizes: Readonly<Record<string, ListSize>>,
): void {
  const missing: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || !(isObjectType(type) || isInterfaceType(type))) continue;
    for (const field of Object.values(type.getFields())) {
      const coordinate = `${type.name}.${field.name}`;
      if (isListType(getNullableType(field.type)) && !(coordinate in sizes))
        missing.push(coordinate);
    }
  }
  const unknown = Object.keys(sizes).filter((coordinate) => {
    const [typeName, fieldName] = coordinate.split('.');
    const type = schema.getType(typeName);
    return !(isObjectType(type) || isInterfaceType(type)) || !(fieldName in type.getFields());
  });
  if (missing.length > 0 || unknown.length > 0)
    throw new Error(
      `list sizes out of step with the schema: no size for ${missing.join(', ') || 'none'}; ` +
        `no such field for ${unknown.join(', ') || 'none'} (src/graphql/cost.ts)`,
    );
}

export interface CostLimit {
  readonly limit: number;
  /** The operation's cost with these variables. */
  costOf(
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Readonly<Record<string, unknown>> | null | undefined,
  ): number;
  /** CostLimitError (BAD_USER_INPUT, with the cost and the limit) over the limit. */
  assertWithin(
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Readonly<Record<string, unknown>> | null | undefined,
  ): void;
}

export function createCostLimit(
  schema: GraphQLSchema,
  settings: CostSettings & { maxCost: number },
): CostLimit {
  const sizes = listSizes(settings);
  assertEveryListSized(schema, sizes);
  // An operation without variables costs the same each time it comes: Apollo keeps a parsed
  // document per query text, so its operation's cost is walked once, then remembered with it.
  const fixedCosts = new WeakMap<OperationDefinitionNode, number>();
  const costOf: CostLimit['costOf'] = (document, operation, variables) => {
    const fixed = !operation.variableDefinitions?.length;
    if (fixed) {
      const known = fixedCosts.get(operation);
      if (known !== undefined) return known;
    }
    const cost = new CostWalk(schema, sizes, document, operation, variables ?? {}).total();
    if (fixed) fixedCosts.set(operation, cost);
    return cost;
  };
  return {
    limit: settings.maxCost,
    costOf,
    assertWithin(document, operation, variables) {
      const cost = costOf(document, operation, variables);
      if (cost > settings.maxCost) throw new CostLimitError(cost, settings.maxCost);
    },
  };
}

class CostWalk {
  private readonly fragments = new Map<string, FragmentDefinitionNode>();
  /** A fragment costs the same wherever it is spread: once each, however deep the nesting. */
  private readonly fragmentCosts = new Map<string, number>();
  private readonly variables: Record<string, unknown>;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly sizes: Readonly<Record<string, ListSize>>,
    document: DocumentNode,
    private readonly operation: OperationDefinitionNode,
    variables: Readonly<Record<string, unknown>>,
  ) {
    for (const definition of document.definitions)
      if (definition.kind === Kind.FRAGMENT_DEFINITION)
        this.fragments.set(definition.name.value, definition);
    // A variable left out takes its definition's default. Only the operation's own variables,
    // and only values the client really sent: never a "__proto__" key, which Object.assign would
    // make the prototype every missing variable is then read from.
    this.variables = Object.create(null) as Record<string, unknown>;
    for (const definition of operation.variableDefinitions ?? []) {
      const name = definition.variable.name.value;
      if (Object.hasOwn(variables, name)) this.variables[name] = variables[name];
      else if (definition.defaultValue)
        this.variables[name] = valueFromASTUntyped(definition.defaultValue);
    }
  }

  total(): number {
    const root = this.schema.getRootType(this.operation.operation);
    return root ? this.selections(this.operation.selectionSet, root) : 0;
  }

  private selections(set: SelectionSetNode, parent: GraphQLCompositeType): number {
    let cost = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) cost += this.field(selection, parent);
      else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition
          ? this.schema.getType(selection.typeCondition.name.value)
          : parent;
        if (isCompositeType(on)) cost += this.selections(selection.selectionSet, on);
      } else cost += this.fragment(selection.name.value);
    }
    return cost;
  }

  private fragment(name: string): number {
    const known = this.fragmentCosts.get(name);
    if (known !== undefined) return known;
    const fragment = this.fragments.get(name);
    const on = fragment && this.schema.getType(fragment.typeCondition.name.value);
    // Validation has refused cycles by now; the 0 placed first ends one anyway.
    this.fragmentCosts.set(name, 0);
    const cost = fragment && isCompositeType(on) ? this.selections(fragment.selectionSet, on) : 0;
    this.fragmentCosts.set(name, cost);
    return cost;
  }

  private field(node: FieldNode, parent: GraphQLCompositeType): number {
    if (node.name.value === '__typename') return 1;
    if (!(isObjectType(parent) || isInterfaceType(parent))) return 0;
    const definition = parent.getFields()[node.name.value];
    // Introspection's own fields (__schema, __type) are not among the type's fields.
    const type = definition?.type ?? this.introspectionType(node.name.value);
    if (!type) return 0;
    const named = getNamedType(type);
    const own = !isLeafType(named) ? 2 : named.name === 'JSONObject' ? JSON_OBJECT_COST : 1;
    const below =
      node.selectionSet && isCompositeType(named) ? this.selections(node.selectionSet, named) : 0;
    const size = parent.name.startsWith('__')
      ? 1
      : this.sizeOf(`${parent.name}.${node.name.value}`, node);
    return size * (own + below);
  }

  private introspectionType(name: string) {
    if (name === '__schema') return this.schema.getType('__Schema') ?? undefined;
    if (name === '__type') return this.schema.getType('__Type') ?? undefined;
    return undefined;
  }

  private sizeOf(coordinate: string, node: FieldNode): number {
    const size = this.sizes[coordinate];
    if (!size) return 1;
    if ('perPage' in size) return 1;
    if ('page' in size) {
      const given = this.argument(node, size.page);
      const n = typeof given === 'number' && Number.isFinite(given) ? given : size.default;
      return Math.min(Math.max(Math.trunc(n), 0), size.max);
    }
    if ('lengthOf' in size) {
      const given = this.argument(node, size.lengthOf);
      // A single value is a list of one (GraphQL's input coercion).
      const n = Array.isArray(given) ? given.length : given == null ? 0 : 1;
      return Math.min(n, size.max);
    }
    return size.max;
  }

  /** An argument's value: a literal, or a variable's (given or its default). */
  private argument(node: FieldNode, name: string): unknown {
    const argument = node.arguments?.find((a) => a.name.value === name);
    return argument ? this.value(argument.value) : undefined;
  }

  private value(node: ValueNode): unknown {
    if (node.kind === Kind.VARIABLE) return this.variables[node.name.value];
    if (node.kind === Kind.LIST) return node.values.map((v) => this.value(v));
    return valueFromASTUntyped(node, this.variables);
  }
}

/**
 * Over HTTP: the cost is checked once the operation is known with its variables, before execution
 * (graphql-armor's validation rule cannot see variables). A refusal is a request error: HTTP 400
 * (see requestErrorStatus), no data.
 */
export function costLimitPlugin(cost: CostLimit): ApolloServerPlugin {
  return {
    requestDidStart() {
      return Promise.resolve({
        didResolveOperation({ document, operation, request }) {
          if (operation) cost.assertWithin(document, operation, request.variables);
          return Promise.resolve();
        },
      });
    },
  };
}
