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
