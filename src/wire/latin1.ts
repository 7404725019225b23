import type { Buffer } from 'node:buffer';

/**
 * Write `s` into `out` at `at` as latin1 (the low byte of each code unit, as Buffer.from(s, 'latin1'));
 * returns the offset after it. For the few short lines a proxy inserts per message: a loop here
 * makes no flat copy of a concatenated string and no call into C++ per piece.
 */
export function writeLatin1(out: Uint8Array, at: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) out[at + i] = s.charCodeAt(i);
  return at + n;
}

/** Slots of internLatin1's cache (a power of two). */
const INTERN_SLOTS = 64;
/** Longer texts are not cached: the comparison would cost what it saves. */
const INTERN_MAX = 64;
const interned: string[] = new Array<string>(INTERN_SLOTS).fill('');

/**
 * buf[start, end) as a latin1 string, the one read last from the same bytes when it is still in a
 * small cache. For values that repeat from message to message (a Via's host, its received): a
 * comparison of a few characters in place of a call into C++ and a new string each time
 * (`Buffer#toString` was 3% of sipspan's CPU at 2000 calls/s in a perf profile, most of it Via
 * hosts). Unique values (branches, tags, Call-IDs) gain nothing from it.
 */
export function internLatin1(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  if (n <= 0) return '';
  if (n > INTERN_MAX) return buf.toString('latin1', start, end);
  const slot = (n * 31 + buf[start] * 7 + buf[start + (n >> 1)] * 3 + buf[end - 1]) & (INTERN_SLOTS - 1);
  const cached = interned[slot];
  if (cached.length === n) {
    let i = 0;
    while (i < n && cached.charCodeAt(i) === buf[start + i]) i++;
    if (i === n) return cached;
  }
  const fresh = buf.toString('latin1', start, end);
  interned[slot] = fresh;
  return fresh;
}
