import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { Types } from 'mongoose';
import type { Config } from '../../core/config';
import { UnauthenticatedError } from '../../core/errors';
import { Role } from './roles';

/**
 * Tokens are HS256 JWTs with iss, aud, exp and sub. `typ` tells a user token from an agent token,
 * and their subjects differ in shape (an ObjectId vs "agent:<ObjectId>"), so neither passes as the
 * other.
 */
export type TokenClaims =
  /** `tv`: the account's token_version when issued (missing on tokens older than it: 0). */
  | {
      typ: 'user';
      sub: string;
      role: Role.USER | Role.ADMIN;
      tv?: number;
      iat: number;
      exp: number;
    }
  /**
   * `jti`: the id of the token's record in agent_tokens (the same id as in its subject). A
   * GRANTED_WALLETS token is typed `scoped-agent`, which versions of the service from before scopes
   * refuse as an invalid token: during a rolling deploy such a token fails closed on them instead
   * of reaching every wallet. Its scope comes from its record all the same.
   */
  | {
      typ: 'agent' | 'scoped-agent';
      sub: string;
      role: Role.AGENT;
      name: string;
      jti?: string;
      iat: number;
      exp: number;
    };

export interface SignedToken {
  token: string;
  expiresAt: Date;
}

type JwtConfig = Config['jwt'];
const AGENT_SUBJECT = /^agent:([0-9a-f]{24})$/;

/**
 * The secret as a KeyObject, made once: handed a string, jsonwebtoken first tries it as a public
 * key on every call, which costs more than the HMAC itself.
 */
const keys = new Map<string, KeyObject>();
function keyOf(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) keys.set(secret, (key = createSecretKey(Buffer.from(secret, 'utf8'))));
  return key;
}

export function signUserToken(
  jwtConfig: JwtConfig,
  userId: Types.ObjectId,
  role: Role.USER | Role.ADMIN,
  tokenVersion: number,
): SignedToken {
  return sign(
    jwtConfig,
    { typ: 'user', role, tv: tokenVersion },
    userId.toHexString(),
    Math.floor(Date.now() / 1000) + jwtConfig.expiresInSeconds,
  );
}

/** The token of the agent_tokens record `id`, expiring when it does. */
export function signAgentToken(
  jwtConfig: JwtConfig,
  id: Types.ObjectId,
  name: string,
  expiresAt: Date,
  scoped: boolean,
): SignedToken {
  return sign(
    jwtConfig,
    { typ: scoped ? 'scoped-agent' : 'agent', role: Role.AGENT, name, jti: id.toHexString() },
    `agent:${id.toHexString()}`,
    Math.floor(expiresAt.getTime() / 1000),
  );
}

function sign(
  jwtConfig: JwtConfig,
  payload: object,
  subject: string,
  expiresAtSeconds: number,
): SignedToken {
  const now = Math.floor(Date.now() / 1000);
  const token = jwt.sign({ ...payload, iat: now, exp: expiresAtSeconds }, keyOf(jwtConfig.secret), {
    algorithm: 'HS256',
    issuer: jwtConfig.issuer,
    audience: jwtConfig.audience,
    subject,
  });
  return { token, expiresAt: new Date(expiresAtSeconds * 1000) };
}

/** Verifies signature (HS256 only), iss, aud, exp and nbf, then the claims' shape. */
export function verifyToken(jwtConfig: JwtConfig, token: string): TokenClaims {
  let decoded: jwt.JwtPayload | string;
  try {
    decoded = jwt.verify(token, keyOf(jwtConfig.secret), {
      algorithms: ['HS256'],
      issuer: jwtConfig.issuer,
      audience: jwtConfig.audience,
    });
  } catch (error) {
    throw new UnauthenticatedError(
      error instanceof jwt.TokenExpiredError ? 'token expired' : 'invalid token',
    );
  }
  if (
    typeof decoded !== 'object' ||
    typeof decoded.sub !== 'string' ||
    typeof decoded.exp !== 'number'
  ) {
    throw new UnauthenticatedError('invalid token');
  }
  const claims = decoded as Record<string, unknown>;
  if (
    claims.typ === 'user' &&
    (claims.role === Role.USER || claims.role === Role.ADMIN) &&
    /^[0-9a-f]{24}$/.test(decoded.sub) &&
    (claims.tv === undefined || Number.isSafeInteger(claims.tv))
  ) {
    return claims as TokenClaims;
  }
  if (
    (claims.typ === 'agent' || claims.typ === 'scoped-agent') &&
    claims.role === Role.AGENT &&
    typeof claims.name === 'string' &&
    AGENT_SUBJECT.test(decoded.sub) &&
    (claims.jti === undefined || claims.jti === decoded.sub.slice('agent:'.length))
  ) {
    return claims as TokenClaims;
  }
  throw new UnauthenticatedError('invalid token');
}

export function agentIdOf(subject: string): Types.ObjectId {
  return new Types.ObjectId(AGENT_SUBJECT.exec(subject)![1]);
}
