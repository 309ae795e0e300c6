import {
  Arg,
  Authorized,
  Ctx,
  FieldResolver,
  Mutation,
  Query,
  Resolver,
  Root,
  UseMiddleware,
} from 'type-graphql';
import { Role } from '../auth/roles';
import { Deadline } from '../../shared/deadline';
import type { RequestContext, UserContext } from '../../core/context';
import { UserCtx } from '../auth/ctx-decorators';
import {
  CreateWalletDefinitionInput,
  UpdateWalletDefinitionInput,
  WalletDefinitionFilter,
} from './wallet-definition.inputs';
import { ExchangeTemplate } from './exchange-template.types';
import { WalletDefinition } from './wallet-definition.model';
import { isConnectionTestable, type WalletDefinitionService } from './wallet-definition.service';

@UseMiddleware(Deadline)
@Resolver(() => WalletDefinition)
export class WalletDefinitionResolver {
  constructor(private readonly definitions: WalletDefinitionService) {}

  @Query(() => [WalletDefinition], { description: 'Public. Sorted by order, then name.' })
  walletDefinitions(
    @Ctx() ctx: RequestContext,
    @Arg('filter', () => WalletDefinitionFilter, { nullable: true })
    filter?: WalletDefinitionFilter | null,
  ): Promise<WalletDefinition[]> {
    return this.definitions.list(ctx, filter);
  }

  @Query(() => WalletDefinition, { description: 'Public. NOT_FOUND for an unknown slug.' })
  walletDefinition(
    @Arg('slug', () => String) slug: string,
    @Ctx() ctx: RequestContext,
  ): Promise<WalletDefinition> {
    return this.definitions.getBySlug(ctx, slug);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => WalletDefinition, { description: 'ADMIN. CONFLICT on a duplicate slug.' })
  createWalletDefinition(
    @Arg('input', () => CreateWalletDefinitionInput) input: CreateWalletDefinitionInput,
    @UserCtx() ctx: UserContext,
  ): Promise<WalletDefinition> {
    return this.definitions.create(ctx, input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => WalletDefinition, { description: 'ADMIN.' })
  updateWalletDefinition(
    @Arg('slug', () => String) slug: string,
    @Arg('input', () => UpdateWalletDefinitionInput) input: UpdateWalletDefinitionInput,
    @UserCtx() ctx: UserContext,
  ): Promise<WalletDefinition> {
    return this.definitions.update(ctx, slug, input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => WalletDefinition, { description: 'ADMIN. Soft delete: isActive becomes false.' })
  deleteWalletDefinition(
    @Arg('slug', () => String) slug: string,
    @UserCtx() ctx: UserContext,
  ): Promise<WalletDefinition> {
    return this.definitions.softDelete(ctx, slug);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => [WalletDefinition], {
    description:
      'ADMIN. Inserts or refreshes the built-in catalog (Binance, Hyperliquid); idempotent.',
  })
  seedWalletDefinitions(@UserCtx() ctx: UserContext): Promise<WalletDefinition[]> {
    return this.definitions.seed(ctx);
  }

  @Authorized(Role.ADMIN)
  @Query(() => [ExchangeTemplate], {
    description:
      'ADMIN: the exchanges ccxt supports whose id or name contains search (case-insensitive), by id.',
  })
  exchangeTemplates(
    @UserCtx() ctx: UserContext,
    @Arg('search', () => String, { nullable: true }) search?: string | null,
  ): ExchangeTemplate[] {
    return this.definitions.templates(ctx, search);
  }

  @Authorized(Role.ADMIN)
  @Query(() => ExchangeTemplate, { description: 'ADMIN: NOT_FOUND for an id ccxt does not know.' })
  exchangeTemplate(
    @Arg('ccxtId', () => String) ccxtId: string,
    @UserCtx() ctx: UserContext,
  ): ExchangeTemplate {
    return this.definitions.template(ctx, ccxtId);
  }

  @FieldResolver(() => Boolean, {
    description:
      'Whether a connection test can prove a key of this exchange with a signed request.',
  })
  connectionTestable(@Root() definition: WalletDefinition): boolean {
    return isConnectionTestable(definition);
  }
}
