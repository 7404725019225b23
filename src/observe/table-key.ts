import { Buffer } from 'node:buffer';

/** Keys longer than this (a branch or a Call-ID of hundreds of bytes) are joined as strings. */
const SCRATCH_BYTES = 256;
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
const BAR = 0x7c;

/**
 * A key of the observer's tables, `first|second`: a transaction's `branch|METHOD` (the branch and
 * the method identify it: RFC 3261 §17.1.3, §17.2.3), a call's `route|Call-ID`.
 *
 * The key is made as one flat string. Joined with `+` it was a rope (a V8 ConsString), and the
 * tables hash their keys character by character: the first hash of each key went into the
 * runtime to flatten it (Runtime_StringCharCodeAt, ~4 µs per call at 500 calls/s in bench:perf).
 */
export function tableKey(first: string, second: string): string {
  const n = first.length + 1 + second.length;
  if (n > SCRATCH_BYTES || !writeText(0, first)) return `${first}|${second}`;
  scratch[first.length] = BAR;
  if (!writeText(first.length + 1, second)) return `${first}|${second}`;
  return scratch.toString('latin1', 0, n);
}

/**
 * The same key with its first part read from buf[start, end): a response's top Via branch, which
 * is looked up and never kept, so it is never made a string of its own.
 */
export function tableKeyAt(buf: Buffer, start: number, end: number, second: string): string {
  const length = end - start;
  const n = length + 1 + second.length;
  if (n > SCRATCH_BYTES) return `${buf.toString('latin1', start, end)}|${second}`;
  for (let i = 0; i < length; i++) scratch[i] = buf[start + i];
  scratch[length] = BAR;
  if (!writeText(length + 1, second)) return `${buf.toString('latin1', start, end)}|${second}`;
  return scratch.toString('latin1', 0, n);
}

/**
 * `s` into the scratch at `at`; false when a character is wider than a byte. What comes off the
 * wire is latin1-decoded and never is; a caller's own string may be, and is then joined as
 * strings, so that two keys are equal exactly when their texts are.
 */
function writeText(at: number, s: string): boolean {
  let wide = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    scratch[at + i] = c;
    wide |= c;
  }
  return wide <= 0xff;
}
