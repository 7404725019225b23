import { randomFillSync } from 'node:crypto';

/**
 * Random trace and span ids as lowercase hex, from a pooled buffer refilled by
 * the OS CSPRNG: one randomFillSync per 256 ids instead of one call per id.
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

function take(n: number): string {
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const s = pool.toString('hex', offset, offset + n);
  offset += n;
  // All-zero ids are invalid (W3C Trace Context §3.2.2.3); astronomically rare, but cheap to rule out.
  return s === '0'.repeat(n * 2) ? take(n) : s;
}

export function newTraceId(): string {
  return take(16);
}

export function newSpanId(): string {
  return take(8);
}
