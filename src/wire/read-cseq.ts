import type { Buffer } from 'node:buffer';
import { IS_TOKEN } from './chars.ts';
import { skipLws, trimLwsRight } from './lws.ts';
import { readMethod } from './methods.ts';

export interface CSeqValue {
  seq: number;
  method: string;
}

/**
 * CSeq = 1*DIGIT LWS Method (RFC 3261 §20.16). "The sequence number MUST be
 * expressible as a 32-bit unsigned integer and MUST be less than 2**31"
 * (§8.1.1.5); RFC 4475 §3.1.2.4 scalar02 must get a 400. Leading zeros are fine
 * (wsinv: `0009`).
 */
export function readCSeq(buf: Buffer, start: number, end: number): CSeqValue | null {
  let p = skipLws(buf, start, end);
  const e = trimLwsRight(buf, p, end);
  const d = p;
  let seq = 0;
  while (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) {
    seq = seq * 10 + buf[p] - 0x30;
    if (seq > 0x7fffffff) return null;
    p++;
  }
  if (p === d) return null;
  const ws = p;
  p = skipLws(buf, p, e);
  if (p === ws) return null;
  const m = p;
  while (p < e && IS_TOKEN[buf[p]] === 1) p++;
  if (p === m || p !== e) return null;
  return { seq, method: readMethod(buf, m, p) };
}

/** Max-Forwards = 1*DIGIT, 0–255 (RFC 3261 §20.22; RFC 4475 §3.1.2.4: 300 is out of range). -1 when invalid. */
export function readMaxForwards(buf: Buffer, start: number, end: number): number {
  let p = skipLws(buf, start, end);
  const e = trimLwsRight(buf, p, end);
  const d = p;
  let n = 0;
  while (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) {
    n = n * 10 + buf[p] - 0x30;
    if (n > 255) return -1;
    p++;
  }
  return p === d || p !== e ? -1 : n;
}
