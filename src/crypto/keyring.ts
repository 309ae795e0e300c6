import { Fernet, InvalidToken } from './fernet';

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Python's MultiFernet semantics over ENCRYPTION_KEYS: the first key encrypts, every key
 * decrypts, so the Python services can use the same list during a rotation.
 */
export class Keyring {
  private readonly fernets: Fernet[];

  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new Error('a keyring needs at least one key');
    this.fernets = keys.map((key) => new Fernet(key));
  }

  encrypt(value: string): string {
    return this.fernets[0].encrypt(value);
  }

  /** Stored secrets never expire: no TTL. */
  decrypt(token: string): string {
    for (const fernet of this.fernets) {
      try {
        return UTF8.decode(fernet.decrypt(token));
      } catch {
        // Not this key's token; try the next.
      }
    }
    throw new InvalidToken();
  }

  /**
   * The token under the first key, or null when it already is. Like MultiFernet.rotate, the
   * original timestamp is kept. InvalidToken when no key reads it.
   */
  rotate(token: string): string | null {
    const [primary, ...older] = this.fernets;
    try {
      primary.decrypt(token);
      return null;
    } catch {
      // Not under the primary key: look for the key that made it.
    }
    for (const fernet of older) {
      let opened: { plaintext: Buffer; timestamp: number };
      try {
        opened = fernet.open(token);
      } catch {
        continue;
      }
      return primary.encrypt(opened.plaintext, { now: opened.timestamp });
    }
    throw new InvalidToken();
  }
}
