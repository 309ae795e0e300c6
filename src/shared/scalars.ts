import {
  GraphQLJSONObject,
  GraphQLNonNegativeFloat,
  GraphQLNonNegativeInt,
  GraphQLObjectID,
  GraphQLPositiveFloat,
} from 'graphql-scalars';
import { Types } from 'mongoose';

/** The contract's scalars, as type-graphql sees them. Dates use type-graphql's DateTimeISO. */
export const ObjectIdScalar = GraphQLObjectID;
export const NonNegativeFloatScalar = GraphQLNonNegativeFloat;
export const NonNegativeIntScalar = GraphQLNonNegativeInt;
export const PositiveFloatScalar = GraphQLPositiveFloat;
export const JSONObjectScalar = GraphQLJSONObject;

export const scalarsMap = [{ type: Types.ObjectId, scalar: GraphQLObjectID }];

/** ObjectID arguments arrive as 24-hex strings (the scalar has validated them). */
export function toObjectId(id: string | Types.ObjectId): Types.ObjectId {
  return typeof id === 'string' ? new Types.ObjectId(id) : id;
}
