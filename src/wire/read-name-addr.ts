import type { Buffer } from 'node:buffer';
import { indexOfByte } from './byte-search.ts';
import { DQUOTE, EQUAL, IS_TOKEN, LAQUOT, RAQUOT, SEMI } from './chars.ts';
import { equalsLower } from './header-names.ts';
import { skipLws, skipQuoted } from './lws.ts';

/** Offsets of the URI inside a name-addr or addr-spec value, and where its header parameters start. */
export interface AddressSpan {
  uriStart: number;
  uriEnd: number;
  /** Offset where header parameters (";tag=...") begin, or the value end. */
  paramsStart: number;
  /** True when the URI was enclosed in <...>. */
  bracketed: boolean;
}

/**
 * Locate the URI of a From/To/Contact/Route value (RFC 3261 §20.10 name-addr /
 * addr-spec). Display names may be quoted strings with escaped quotes (RFC 4475
 * §3.1.1.1 wsinv). Returns null when no URI can be found (e.g. an unterminated
 * quote, RFC 4475 §3.1.2.6 quotbal).
 *
 * `into`: a span to fill instead of a new one, for a caller that reads it at once.
 */
export function locateAddress(
  buf: Buffer,
  start: number,
  end: number,
  into: AddressSpan | null = null,
): AddressSpan | null {
  let p = skipLws(buf, start, end);
  let lt = -1;
  let q = p;
  while (q < end) {
    const b = buf[q];
    if (b === DQUOTE) {
      q = skipQuoted(buf, q, end);
      if (q === -1) return null;
      continue;
    }
    if (b === LAQUOT) {
      lt = q;
      break;
    }
    if (b === SEMI || b === 0x2c) break;
    q++;
  }
  if (lt !== -1) {
    const gt = indexOfByte(buf, RAQUOT, lt + 1, end);
    if (gt === -1) return null;
    return span(into, lt + 1, gt, gt + 1, true);
  }
  // addr-spec without <>: parameters after it are header parameters (RFC 3261 §20.10).
  p = skipLws(buf, p, end);
  q = p;
  while (q < end && buf[q] !== SEMI && buf[q] !== 0x2c && buf[q] !== 0x20 && buf[q] !== 0x09) q++;
  if (q === p) return null;
  return span(into, p, q, q, false);
}

function span(
  into: AddressSpan | null,
  uriStart: number,
  uriEnd: number,
  paramsStart: number,
  bracketed: boolean,
): AddressSpan {
  if (into === null) return { uriStart, uriEnd, paramsStart, bracketed };
  into.uriStart = uriStart;
  into.uriEnd = uriEnd;
  into.paramsStart = paramsStart;
  into.bracketed = bracketed;
  return into;
}

/** The span readTag and readUser fill: read at once, never kept. */
const SCRATCH: AddressSpan = { uriStart: -1, uriEnd: -1, paramsStart: -1, bracketed: false };

/** Whether a From/To/Contact value holds a URI at all (strict validation), nothing allocated. */
export function hasAddress(buf: Buffer, start: number, end: number): boolean {
  return locateAddress(buf, start, end, SCRATCH) !== null;
}

/** The `tag` parameter of a From/To value (RFC 3261 §19.3), or null. LWS around "=" is allowed (wsinv). */
export function readTag(buf: Buffer, start: number, end: number): string | null {
  const span = locateAddress(buf, start, end, SCRATCH);
  if (span === null) return null;
  return readParam(buf, span.paramsStart, end, 'tag');
}

/** A generic parameter `;name=value` in buf[start, end), compared case-insensitively; the value as latin1, or null. */
export function readParam(buf: Buffer, start: number, end: number, lowerName: string): string | null {
  let p = start;
  while (p < end) {
    p = skipLws(buf, p, end);
    if (buf[p] !== SEMI) return null;
    p = skipLws(buf, p + 1, end);
    const n = p;
    while (p < end && IS_TOKEN[buf[p]] === 1) p++;
    const nameEnd = p;
    p = skipLws(buf, p, end);
    let vs = -1;
    let ve = -1;
    if (buf[p] === EQUAL) {
      p = skipLws(buf, p + 1, end);
      vs = p;
      if (buf[p] === DQUOTE) {
        const q = skipQuoted(buf, p, end);
        p = q === -1 ? end : q;
      } else {
        while (p < end && buf[p] !== SEMI && buf[p] !== 0x2c && buf[p] > 0x20) p++;
      }
      ve = p;
    }
    if (equalsLower(buf, n, nameEnd, lowerName)) return vs === -1 ? '' : buf.toString('latin1', vs, ve);
    if (nameEnd === n) return null;
  }
  return null;
}

/** The user part of a From/To URI (for trace attributes and the call view), or null. */
export function readUser(buf: Buffer, start: number, end: number): string | null {
  const span = locateAddress(buf, start, end, SCRATCH);
  if (span === null) return null;
  let p = span.uriStart;
  const e = span.uriEnd;
  while (p < e && buf[p] !== 0x3a) p++;
  const userStart = p + 1;
  const at = indexOfByte(buf, 0x40, userStart, e);
  if (at === -1) return null;
  return buf.toString('latin1', userStart, at);
}
