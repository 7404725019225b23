import { Buffer } from 'node:buffer';
import { writeLatin1 } from '../../wire/latin1.ts';

/**
 * The pieces of a JSON log line, written as bytes into a Buffer at `p`.
 *
 * Each returns the offset after what it wrote, or -1 when that would pass
 * `limit` (nothing is then promised about the bytes between `p` and `limit`).
 * -1 goes through: every writer given -1 returns -1, so a line is checked once,
 * at its end.
 */
/** A string known to be JSON already (keys, punctuation, closed-set values), ASCII. */
export function putAscii(out: Buffer, p: number, limit: number, s: string): number {
  return p < 0 || p + s.length > limit ? -1 : writeLatin1(out, p, s);
}

/** Bytes that are JSON already (a logger's bindings, UTF-8). */
export function putBytes(out: Buffer, p: number, limit: number, b: Uint8Array): number {
  const n = b.length;
  if (p < 0 || p + n > limit) return -1;
  // Tens of bytes: a loop costs less than Buffer#copy's call into C++.
  for (let i = 0; i < n; i++) out[p + i] = b[i];
  return p + n;
}

/** copyPlain's answer for a string that needs escaping. */
export const NOT_PLAIN = -2;

/**
 * A string of printable ASCII without `"` and `\` (socket addresses, ids, the usual wire value),
 * quoted, copied as it is scanned; NOT_PLAIN when a character needs more.
 */
export function copyPlain(out: Buffer, p: number, limit: number, s: string): number {
  const n = s.length;
  // An escaped string is never shorter than the plain one would be.
  if (p < 0 || p + n + 2 > limit) return -1;
  out[p] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return NOT_PLAIN;
    out[p + 1 + i] = c;
  }
  out[p + 1 + n] = 0x22;
  return p + n + 2;
}

/** A string as a JSON string: plain text copied, anything else written from JSON.stringify as UTF-8. */
export function putString(out: Buffer, p: number, limit: number, s: string): number {
  const end = copyPlain(out, p, limit, s);
  return end === NOT_PLAIN ? putUtf8(out, p, limit, JSON.stringify(s)) : end;
}

/** Any string, as UTF-8. */
function putUtf8(out: Buffer, p: number, limit: number, s: string): number {
  if (p < 0) return -1;
  // A UTF-16 unit is at most 3 UTF-8 bytes: measured only when that bound does not fit.
  if (p + s.length * 3 > limit && p + Buffer.byteLength(s, 'utf8') > limit) return -1;
  return p + out.write(s, p, 'utf8');
}

/** A non-negative integer as JSON writes it; anything else as its String(). */
export function putInteger(out: Buffer, p: number, limit: number, n: number): number {
  if (!(n >= 0 && n <= 0xffffffff && n === Math.floor(n))) return putAscii(out, p, limit, String(n));
  let digits = 1;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
  if (p < 0 || p + digits > limit) return -1;
  let v = n;
  for (let i = p + digits - 1; i >= p; i--) {
    const q = Math.floor(v / 10);
    out[i] = 0x30 + v - q * 10;
    v = q;
  }
  return p + digits;
}

/**
 * Milliseconds rounded to µs (enough for a proxy that adds tens of µs, and short lines), as JSON
 * writes the rounded number (`12.345`, `0.5`, `3`). Turning a double into its shortest text is the
 * slowest part of a line's numbers; the whole milliseconds are an integer and the µs fraction
 * three digits, trailing zeros dropped.
 */
export function putMs(out: Buffer, p: number, limit: number, v: number): number {
  const us = Math.round(v * 1000);
  if (!(us >= 0 && us <= 0x7fffffff)) return putAscii(out, p, limit, String(us / 1000));
  const whole = Math.floor(us / 1000);
  let frac = us - whole * 1000;
  p = putInteger(out, p, limit, whole);
  if (frac === 0) return p;
  if (p < 0 || p + 4 > limit) return -1;
  out[p++] = 0x2e;
  let scale = 100;
  while (frac > 0) {
    const d = Math.floor(frac / scale);
    out[p++] = 0x30 + d;
    frac -= d * scale;
    scale /= 10;
  }
  return p;
}
