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
  const start = offset;
  offset += n;
  // All-zero ids are invalid (W3C Trace Context §3.2.2.3); astronomically rare, but cheap to rule out.
  let any = 0;
  for (let i = start; i < offset; i++) any |= pool[i];
  return any === 0 ? take(n) : pool.toString('hex', start, offset);
}

export function newTraceId(): string {
  return take(16);
}

export function newSpanId(): string {
  return take(8);
}
