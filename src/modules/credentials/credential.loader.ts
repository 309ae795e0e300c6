import { createByIdLoader } from '../../shared/by-id-loader';
import { CredentialModel, type Credential } from './credential.model';

export const createCredentialLoader = () => createByIdLoader((ids) => CredentialModel.find({ _id: { $in: ids } }).lean<Credential[]>().exec());
