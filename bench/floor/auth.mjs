// Authentication: the same token rules as src/modules/auth/jwt.ts and AuthService.authenticate.

import jwt from 'jsonwebtoken';
import { ObjectId } from './db.mjs';
import { forbidden, unauthenticated } from './errors.mjs';

const AGENT_SUBJECT = /^agent:([0-9a-f]{24})$/;
const BEARER = /^Bearer ([A-Za-z0-9_.~+/=-]+)$/;

/** authenticate(header): the principal of an Authorization header, null without one. */
export function authenticator({ secret, issuer, audience }, users) {
  return async function authenticate(header) {
    if (header === undefined || header === '') return null;
    const match = BEARER.exec(header);
    if (!match) throw unauthenticated('malformed Authorization header: expected "Bearer <token>"');
    let claims;
    try {
      claims = jwt.verify(match[1], secret, { algorithms: ['HS256'], issuer, audience });
    } catch (error) {
      throw unauthenticated(
        error instanceof jwt.TokenExpiredError ? 'token expired' : 'invalid token',
      );
    }
    if (
      typeof claims !== 'object' ||
      typeof claims.sub !== 'string' ||
      typeof claims.exp !== 'number'
    )
      throw unauthenticated('invalid token');
    if (
      claims.typ === 'agent' &&
      claims.role === 'agent' &&
      typeof claims.name === 'string' &&
      AGENT_SUBJECT.test(claims.sub)
    ) {
      return {
        kind: 'agent',
        role: 'agent',
        name: claims.name,
        id: new ObjectId(AGENT_SUBJECT.exec(claims.sub)[1]),
      };
    }
    if (
      claims.typ === 'user' &&
      (claims.role === 'user' || claims.role === 'admin') &&
      /^[0-9a-f]{24}$/.test(claims.sub)
    ) {
      const user = await users.findOne(
        { _id: new ObjectId(claims.sub) },
        { projection: { role: 1, email: 1 } },
      );
      if (!user || (user.role !== 'user' && user.role !== 'admin'))
        throw unauthenticated('invalid token');
      return { kind: 'user', userId: user._id, role: user.role, email: user.email };
    }
    throw unauthenticated('invalid token');
  };
}

export function requireUser(principal) {
  if (!principal) throw unauthenticated();
  if (principal.kind !== 'user') throw forbidden('userWallets is for USER or ADMIN only');
  return principal;
}

export function requireAgent(principal) {
  if (!principal) throw unauthenticated();
  if (principal.kind !== 'agent') throw forbidden('updateAiManagedState is for AGENT only');
  return principal;
}
