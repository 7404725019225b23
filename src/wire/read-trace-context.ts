/** W3C Trace Context carried in SIP header fields. */
export interface TraceParent {
  traceId: string;
  spanId: string;
  flags: number;
}

const HEX = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) HEX[c] = 1;
for (let c = 0x61; c <= 0x66; c++) HEX[c] = 1;

function isLowerHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++)
    if (HEX[s.charCodeAt(i) & 0xff] !== 1 || s.charCodeAt(i) > 0xff) return false;
  return true;
}

function isAllZero(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (s.charCodeAt(i) !== 0x30) return false;
  return true;
}

/**
 * Parse a `traceparent` value (W3C Trace Context §3.2): version-traceid-parentid-flags,
 * lowercase hex, non-zero ids, version ff invalid; version 00 is exactly 55 characters,
 * later versions may append fields after a dash.
 */
export function parseTraceparent(value: string): TraceParent | null {
  const v = value.trim();
  if (v.length < 55) return null;
  if (
    !isLowerHex(v, 0, 2) ||
    v.charCodeAt(2) !== 0x2d ||
    v.charCodeAt(35) !== 0x2d ||
    v.charCodeAt(52) !== 0x2d
  )
    return null;
  const version = v.slice(0, 2);
  if (version === 'ff') return null;
  if (version === '00' ? v.length !== 55 : v.length > 55 && v.charCodeAt(55) !== 0x2d) return null;
  if (!isLowerHex(v, 3, 35) || !isLowerHex(v, 36, 52) || !isLowerHex(v, 53, 55)) return null;
  if (isAllZero(v, 3, 35) || isAllZero(v, 36, 52)) return null;
  return { traceId: v.slice(3, 35), spanId: v.slice(36, 52), flags: Number.parseInt(v.slice(53, 55), 16) };
}

/** `X-Trace-Id: <32 lowercase hex>`; null unless exactly that and non-zero. */
export function parseTraceId(value: string): string | null {
  const v = value.trim().toLowerCase();
  return v.length === 32 && isLowerHex(v, 0, 32) && !isAllZero(v, 0, 32) ? v : null;
}

/** RFC 7989 Session-ID: sess-uuid = 32LHEX, then optional `;remote=...`. Returns the local uuid (lowercase). */
export function parseSessionId(value: string): string | null {
  const semi = value.indexOf(';');
  const v = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  return v.length === 32 && isLowerHex(v, 0, 32) && !isAllZero(v, 0, 32) ? v : null;
}

/** tracestate is passed on as it came, within W3C's bound of 512 characters and 32 members. */
export function isAcceptableTracestate(value: string): boolean {
  if (value.length === 0 || value.length > 512) return false;
  let members = 1;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
    if (c === 0x2c) members++;
  }
  return members <= 32;
}
