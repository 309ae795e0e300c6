import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Fernet, InvalidKey, InvalidToken } from '../src/crypto/fernet';
import { Keyring } from '../src/crypto/keyring';
import { python } from './helpers/python';

interface Vector {
  token: string;
  now: string;
  secret: string;
  src?: string;
  iv?: number[];
  ttl_sec?: number;
  desc?: string;
}

/** The Fernet specification's test vectors (github.com/fernet/spec), as the spec publishes them. */
const VECTORS = join(__dirname, 'fixtures', 'fernet');
const load = (name: string) => JSON.parse(readFileSync(join(VECTORS, name), 'utf8')) as Vector[];
const seconds = (iso: string) => Math.floor(new Date(iso).getTime() / 1000);

describe("Fernet: the specification's vectors", () => {
  it.each(load('generate.json').map((v) => [v.src, v]))(
    'generates the exact token for %j',
    (_src, v) => {
      const token = new Fernet(v.secret).encrypt(v.src!, {
        now: seconds(v.now),
        iv: Buffer.from(v.iv!),
      });
      expect(token).toBe(v.token);
    },
  );

  it.each(load('verify.json').map((v) => [v.src, v]))('verifies and decrypts %j', (_src, v) => {
    const plaintext = new Fernet(v.secret).decrypt(v.token, {
      ttlSeconds: v.ttl_sec,
      now: seconds(v.now),
    });
    expect(plaintext.toString('utf8')).toBe(v.src);
  });

  it.each(load('invalid.json').map((v) => [v.desc, v]))(
    'rejects a token with %s, with the one generic error',
    (_desc, v) => {
      const attempt = () =>
        new Fernet(v.secret).decrypt(v.token, { ttlSeconds: v.ttl_sec, now: seconds(v.now) });
      expect(attempt).toThrow(InvalidToken);
      expect(attempt).toThrow(/^invalid token$/);
    },
  );
});

describe('Fernet: our own rules', () => {
  const key = Fernet.generateKey();
  const fernet = new Fernet(key);

  it('never expires a stored secret when no TTL is asked', () => {
    const old = fernet.encrypt('from 1990', { now: seconds('1990-01-01T00:00:00Z') });
    expect(fernet.decrypt(old).toString()).toBe('from 1990');
  });

  it('refuses base64 that Node would silently repair', () => {
    const token = fernet.encrypt('value');
    for (const broken of [
      `${token.slice(0, 10)}*${token.slice(11)}`,
      ` ${token}`,
      token.replace(/=+$/, ''),
      `${token}==`,
      token.replace(/-/g, '+'),
    ]) {
      if (broken === token) continue;
      expect(() => fernet.decrypt(broken)).toThrow(InvalidToken);
    }
  });

  it('refuses a token made with another key', () => {
    expect(() => new Fernet(Fernet.generateKey()).decrypt(fernet.encrypt('x'))).toThrow(
      InvalidToken,
    );
  });

  it('refuses malformed keys', () => {
    expect(() => new Fernet('short')).toThrow(InvalidKey);
    expect(() => new Fernet(Buffer.alloc(31).toString('base64url') + '=')).toThrow(InvalidKey);
  });

  it('round-trips unicode and multi-block values', () => {
    const value = `ключ-🔑-${'x'.repeat(5000)}`;
    expect(fernet.decrypt(fernet.encrypt(value)).toString('utf8')).toBe(value);
  });
});

describe('Keyring (MultiFernet)', () => {
  const oldKey = Fernet.generateKey();
  const newKey = Fernet.generateKey();

  it('encrypts with the first key and decrypts with any', () => {
    const before = new Keyring([oldKey]).encrypt('secret-1');
    const ring = new Keyring([newKey, oldKey]);
    expect(ring.decrypt(before)).toBe('secret-1');
    expect(new Keyring([newKey]).decrypt(ring.encrypt('secret-2'))).toBe('secret-2');
  });

  it('rotates to the first key, keeping the timestamp, and skips what is already there', () => {
    const made = new Fernet(oldKey).encrypt('secret-3', { now: 1_700_000_000 });
    const ring = new Keyring([newKey, oldKey]);
    const rotated = ring.rotate(made)!;
    expect(new Keyring([newKey]).decrypt(rotated)).toBe('secret-3');
    expect(new Fernet(newKey).open(rotated).timestamp).toBe(1_700_000_000);
    expect(ring.rotate(rotated)).toBeNull();
  });

  it('refuses a token no key reads, never handing the ciphertext back as a value', () => {
    const foreign = new Fernet(Fernet.generateKey()).encrypt('x');
    const ring = new Keyring([newKey, oldKey]);
    expect(() => ring.decrypt(foreign)).toThrow(InvalidToken);
    expect(() => ring.rotate(foreign)).toThrow(InvalidToken);
    expect(() => ring.decrypt('not a token')).toThrow(InvalidToken);
  });
});

describe("interop with Python's cryptography.fernet", () => {
  const key = Fernet.generateKey();

  it('decrypts a token Python made with our key', () => {
    const token = python(
      [
        'import sys',
        'from cryptography.fernet import Fernet',
        'key = sys.stdin.read().strip()',
        'print(Fernet(key.encode()).encrypt("pässwörd-from-python".encode()).decode())',
      ].join('\n'),
      key,
    ).trim();
    expect(new Keyring([key]).decrypt(token)).toBe('pässwörd-from-python');
  });

  it('is read by Python, alone and through MultiFernet', () => {
    const token = new Keyring([key]).encrypt('sécret-from-node');
    const other = Fernet.generateKey();
    const out = python(
      [
        'import sys',
        'from cryptography.fernet import Fernet, MultiFernet',
        'key, other, token = sys.stdin.read().split()',
        'print(Fernet(key.encode()).decrypt(token.encode()).decode())',
        'print(MultiFernet([Fernet(other.encode()), Fernet(key.encode())]).decrypt(token.encode()).decode())',
      ].join('\n'),
      `${key} ${other} ${token}`,
    );
    expect(out.trim().split('\n')).toEqual(['sécret-from-node', 'sécret-from-node']);
  });

  it("agrees with Python's rotation", () => {
    const newKey = Fernet.generateKey();
    const rotated = new Keyring([newKey, key]).rotate(new Fernet(key).encrypt('rotate-me'))!;
    const out = python(
      [
        'import sys',
        'from cryptography.fernet import Fernet',
        'key, token = sys.stdin.read().split()',
        'print(Fernet(key.encode()).decrypt(token.encode()).decode())',
      ].join('\n'),
      `${newKey} ${rotated}`,
    );
    expect(out.trim()).toBe('rotate-me');
  });
});
