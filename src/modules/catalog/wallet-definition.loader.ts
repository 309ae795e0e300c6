import { createByIdLoader } from '../../shared/by-id-loader';
import { WalletDefinitionModel, type WalletDefinition } from './wallet-definition.model';

export const createDefinitionLoader = () =>
  createByIdLoader((ids) =>
    WalletDefinitionModel.find({ _id: { $in: ids } })
      .lean<WalletDefinition[]>()
      .exec(),
  );
