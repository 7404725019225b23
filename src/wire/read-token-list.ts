import type { Buffer } from 'node:buffer';
import { IS_TOKEN } from './chars.ts';
import { skipLws } from './lws.ts';

/** A comma-separated list of option tags (RFC 3261 §20.29 Proxy-Require, §20.32 Require). Non-token bytes end an item. */
export function readTokenList(buf: Buffer, start: number, end: number): string[] {
  const out: string[] = [];
  let p = start;
  while (p < end) {
    p = skipLws(buf, p, end);
    const t = p;
    while (p < end && IS_TOKEN[buf[p]] === 1) p++;
    if (p > t) out.push(buf.toString('latin1', t, p));
    while (p < end && buf[p] !== 0x2c) p++;
    p++;
  }
  return out;
}
