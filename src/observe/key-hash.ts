import { randomFillSync } from 'node:crypto';

/**
 * Seeded hashes of the observing tables' string keys (`branch|METHOD`, `route|Call-ID`), which
 * peers choose: with per-process random seeds a peer cannot aim keys at one slot.
 *
 * Two 32-bit multiplicative hashes over the key's UTF-16 units, each seeded and finished with
 * MurmurHash3's fmix32. `fingerprint` leaves both in `hi`/`lo` (no tuple per lookup); 0,0 is never
 * produced, so tables can mark an empty slot with it.
 */
export class KeyHash {
  hi = 0;
  lo = 0;
  private readonly seed1: number;
  private readonly seed2: number;

  constructor() {
    const seeds = new Int32Array(2);
    randomFillSync(seeds);
    this.seed1 = seeds[0];
    this.seed2 = seeds[1];
  }

  /** A 64-bit fingerprint of `key`, into hi and lo. */
  fingerprint(key: string): void {
    let h1 = this.seed1;
    let h2 = this.seed2;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    this.hi = fmix32(h1 ^ key.length);
    this.lo = fmix32(h2 ^ Math.imul(key.length, 0x27d4eb2d));
    if (this.hi === 0 && this.lo === 0) this.lo = 1;
  }

  /** The first half alone, for a table that compares the keys themselves. */
  hash32(key: string): number {
    let h = this.seed1;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return fmix32(h ^ key.length);
  }
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
