// Tokens, as src/auth/jwt.ts signs them.

import jwt from 'jsonwebtoken';

const JWT_ISSUER = 'wallet-service';
const JWT_AUDIENCE = 'wallet-platform';

export function userToken(secret, user) {
  return jwt.sign({ typ: 'user', role: user.role, iat: Math.floor(Date.now() / 1000) }, secret, {
    algorithm: 'HS256',
    expiresIn: 3_600,
    issuer: JWT_ISSUER,
    audience: JWT_AUDIENCE,
    subject: user._id.toHexString(),
  });
}

export function agentToken(secret, name, id) {
  return jwt.sign(
    {
      typ: 'agent',
      role: 'agent',
      name,
      jti: id.toHexString(),
      iat: Math.floor(Date.now() / 1000),
    },
    secret,
    {
      algorithm: 'HS256',
      expiresIn: 3_600,
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      subject: `agent:${id.toHexString()}`,
    },
  );
}
