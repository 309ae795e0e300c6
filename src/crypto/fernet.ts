import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/**
 * Fernet (https://github.com/fernet/spec), byte-compatible with Python's cryptography.fernet so the
 * platform's Python services read what we store: AES-128-CBC with PKCS#7 padding, then
 * HMAC-SHA256 over version || timestamp || IV || ciphertext, all in URL-safe base64 with padding.
 *
 * Our own on node:crypto: the npm `fernet` package sits on the discontinued crypto-js and
 * expires tokens after 60 s by default, which would lose stored secrets.
 */

const VERSION = 0x80;
const HEADER = 1 + 8 + 16;
const HMAC_LENGTH = 32;
const BLOCK = 16;
/**
 * Python's _MAX_CLOCK_SKEW: a token from further in the future than this is refused (with a TTL).
 */
const MAX_CLOCK_SKEW_SECONDS = 60;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** The one error for every unreadable token: which check failed is nobody's business. */
export class InvalidToken extends Error {
  constructor() {
    super('invalid token');
    this.name = 'InvalidToken';
  }
}

export class InvalidKey extends Error {
  constructor() {
    super('a Fernet key is 32 bytes in URL-safe base64');
    this.name = 'InvalidKey';
  }
}

/**
 * Strict URL-safe base64: Node's decoder skips characters it does not know, so a token with
 * garbage in it would otherwise decode to something.
 */
function decodeBase64Url(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  // Round-trip: non-canonical encodings (stray bits in the last character) are refused too.
  return bytes.toString('base64url') === text.replace(/=+$/, '') ? bytes : undefined;
}

/** Python's base64.urlsafe_b64encode: with '=' padding. */
function encodeBase64Url(bytes: Buffer): string {
  const text = bytes.toString('base64url');
  return text + '='.repeat((4 - (text.length % 4)) % 4);
}

export interface EncryptOptions {
  /** Seconds since the epoch; now by default. */
  now?: number;
  /** 16 bytes; random by default. Only the test vectors fix it. */
  iv?: Buffer;
}

export interface DecryptOptions {
  /** Refuse tokens older than this many seconds. Stored secrets pass none: they never expire. */
  ttlSeconds?: number;
  now?: number;
}

export class Fernet {
  private readonly signingKey: Buffer;
  private readonly encryptionKey: Buffer;

  constructor(key: string) {
    const bytes = decodeBase64Url(key);
    if (!bytes || bytes.length !== 32) throw new InvalidKey();
    this.signingKey = bytes.subarray(0, 16);
    this.encryptionKey = bytes.subarray(16);
  }

  static generateKey(): string {
    return encodeBase64Url(randomBytes(32));
  }

  encrypt(plaintext: string | Buffer, options: EncryptOptions = {}): string {
    const iv = options.iv ?? randomBytes(16);
    const now = options.now ?? Math.floor(Date.now() / 1000);
    const cipher = createCipheriv('aes-128-cbc', this.encryptionKey, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const header = Buffer.alloc(9);
    header[0] = VERSION;
    header.writeBigUInt64BE(BigInt(now), 1);
    const signed = Buffer.concat([header, iv, ciphertext]);
    return encodeBase64Url(Buffer.concat([signed, this.mac(signed)]));
  }

  decrypt(token: string, options: DecryptOptions = {}): Buffer {
    return this.open(token, options).plaintext;
  }

  /** The plaintext and the token's creation time (seconds), once the token proved authentic. */
  open(token: string, options: DecryptOptions = {}): { plaintext: Buffer; timestamp: number } {
    const data = decodeBase64Url(token);
    if (!data || data.length < HEADER + BLOCK + HMAC_LENGTH || data[0] !== VERSION)
      throw new InvalidToken();
    const timestamp = Number(data.readBigUInt64BE(1));
    if (options.ttlSeconds !== undefined) {
      const now = options.now ?? Math.floor(Date.now() / 1000);
      if (timestamp + options.ttlSeconds < now || now + MAX_CLOCK_SKEW_SECONDS < timestamp)
        throw new InvalidToken();
    }
    const signed = data.subarray(0, data.length - HMAC_LENGTH);
    if (!timingSafeEqual(this.mac(signed), data.subarray(data.length - HMAC_LENGTH)))
      throw new InvalidToken();
    const ciphertext = signed.subarray(HEADER);
    if (ciphertext.length % BLOCK !== 0) throw new InvalidToken();
    try {
      const decipher = createDecipheriv(
        'aes-128-cbc',
        this.encryptionKey,
        signed.subarray(9, HEADER),
      );
      return {
        plaintext: Buffer.concat([decipher.update(ciphertext), decipher.final()]),
        timestamp,
      };
    } catch {
      // Bad padding: the one error, like every other failure.
      throw new InvalidToken();
    }
  }

  private mac(signed: Buffer): Buffer {
    return createHmac('sha256', this.signingKey).update(signed).digest();
  }
}
