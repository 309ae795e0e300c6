import type { Types } from 'mongoose';
import { createByIdLoader } from '../../shared/by-id-loader';
import { WalletDefinitionModel, type WalletDefinition } from './wallet-definition.model';

export const createDefinitionLoader = () =>
  createByIdLoader((ids) =>
    WalletDefinitionModel.find({ _id: { $in: ids } })
      .lean<WalletDefinition[]>()
      .exec(),
  );

type DefinitionLoader = ReturnType<typeof createDefinitionLoader>;

/**
 * The definition a stored document refers to, through the request's loader. Definitions are only
 * soft-deleted, so a missing one is a broken reference: an unknown error, logged with the request
 * id, that reaches the client as INTERNAL_SERVER_ERROR without this message.
 */
export async function referencedDefinition(
  loaders: { definitionById: DefinitionLoader },
  id: Types.ObjectId,
  referrer: string,
): Promise<WalletDefinition> {
  const definition = await loaders.definitionById.load(id);
  if (!definition) throw new Error(`${referrer} refers to a missing wallet definition`);
  return definition;
}
