import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';

/**
 * Random trace and span ids as lowercase hex, from a pooled buffer refilled by
 * the OS CSPRNG: one randomFillSync per 256 ids instead of one call per id.
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/** The lowercase hex digits' character codes. */
const HEX = Array.from({ length: 16 }, (_, i) => i.toString(16).charCodeAt(0));

/** Where the next `n` random bytes are in the pool: not all zero (W3C Trace Context §3.2.2.3 rules such ids out). */
function take(n: number): number {
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const start = offset;
  offset += n;
  let any = 0;
  for (let i = start; i < offset; i++) any |= pool[i];
  return any === 0 ? take(n) : start;
}

/**
 * Eight random bytes as hex, one flat string made at once: Buffer#toString('hex') is a call into
 * C++ per id (~80 ns against ~30 here), and a call makes seven ids. Unrolled on purpose:
 * `String.fromCharCode.apply` of a reused array of the digits took ~70 ns.
 */
function hex8(p: number): string {
  const b = pool;
  return String.fromCharCode(
    HEX[b[p] >> 4],
    HEX[b[p] & 15],
    HEX[b[p + 1] >> 4],
    HEX[b[p + 1] & 15],
    HEX[b[p + 2] >> 4],
    HEX[b[p + 2] & 15],
    HEX[b[p + 3] >> 4],
    HEX[b[p + 3] & 15],
    HEX[b[p + 4] >> 4],
    HEX[b[p + 4] & 15],
    HEX[b[p + 5] >> 4],
    HEX[b[p + 5] & 15],
    HEX[b[p + 6] >> 4],
    HEX[b[p + 6] & 15],
    HEX[b[p + 7] >> 4],
    HEX[b[p + 7] & 15],
  );
}

/**
 * Sixteen random bytes as hex, in one call into C++ (one per call): two span ids joined with `+`
 * made a rope, which its first reader (the traceparent line) flattened in V8's runtime.
 */
export function newTraceId(): string {
  const p = take(16);
  return pool.toString('hex', p, p + 16);
}

export function newSpanId(): string {
  return hex8(take(8));
}
