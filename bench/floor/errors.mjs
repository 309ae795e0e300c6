// Errors, with the service's codes.

import { GraphQLError } from 'graphql';

export const coded = (code, message, extra = {}) =>
  new GraphQLError(message, { extensions: { code, ...extra } });
export const unauthenticated = (message = 'not signed in') => coded('UNAUTHENTICATED', message);
export const forbidden = (message) => coded('FORBIDDEN', message);
export const notFound = (message) => coded('NOT_FOUND', message);
export const conflict = (message) => coded('CONFLICT', message);
export const userInput = (message, field) => coded('BAD_USER_INPUT', message, { field });
