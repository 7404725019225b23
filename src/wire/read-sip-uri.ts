import type { Buffer } from 'node:buffer';
import { indexOfByte } from './byte-search.ts';
import { COLON, LBRACKET, QMARK, RBRACKET, SEMI } from './chars.ts';
import { equalsLower } from './header-names.ts';

/** The parts of a sip:/sips: URI that routing needs (RFC 3261 §19.1.1). */
export interface SipUri {
  secure: boolean;
  host: string;
  isIPv6: boolean;
  /** 0 when absent. */
  port: number;
  /** Lower-cased `transport` parameter, or null. */
  transport: string | null;
  lr: boolean;
  maddr: string | null;
  /** True when the URI has a `?headers` part (not allowed in a Request-URI, RFC 4475 §3.1.2.11). */
  hasHeaders: boolean;
}

/** Where the parts of a sip:/sips: URI lie (scanSipUri), -1 for an absent one. */
interface UriParts {
  secure: boolean;
  hostStart: number;
  hostEnd: number;
  isIPv6: boolean;
  port: number;
  transportStart: number;
  transportEnd: number;
  lr: boolean;
  maddrStart: number;
  maddrEnd: number;
  hasHeaders: boolean;
}

/** Filled by each scan and read at once: nothing is allocated to check or read a URI. */
const PARTS: UriParts = {
  secure: false,
  hostStart: -1,
  hostEnd: -1,
  isIPv6: false,
  port: 0,
  transportStart: -1,
  transportEnd: -1,
  lr: false,
  maddrStart: -1,
  maddrEnd: -1,
  hasHeaders: false,
};

/**
 * Parse a sip: or sips: URI in buf[start, end); null for other schemes or a
 * malformed host. An IPv6 address must be bracketed: `sip:2001:db8::10` is
 * invalid (RFC 5118 §4.2), while `[2001:db8::10:5070]` is a well-formed host
 * with no port (§4.3) and `[2001:db8:::192.0.2.1]` is tolerated (§4.10).
 */
export function readSipUri(buf: Buffer, start: number, end: number): SipUri | null {
  if (!scanSipUri(buf, start, end)) return null;
  const u = PARTS;
  return {
    secure: u.secure,
    host: buf.toString('latin1', u.hostStart, u.hostEnd),
    isIPv6: u.isIPv6,
    port: u.port,
    transport:
      u.transportStart === -1 ? null : buf.toString('latin1', u.transportStart, u.transportEnd).toLowerCase(),
    lr: u.lr,
    maddr: u.maddrStart === -1 ? null : buf.toString('latin1', u.maddrStart, u.maddrEnd),
    hasHeaders: u.hasHeaders,
  };
}

/**
 * What a Request-URI check needs (RFC 3261 §16.3 step 2, RFC 4475 §3.1.2.11), without the strings
 * readSipUri makes: -1 when buf[start, end) is no well-formed sip:/sips: URI, 1 when it is one with
 * a `?headers` part, 0 when it is one without.
 */
export function checkSipUri(buf: Buffer, start: number, end: number): -1 | 0 | 1 {
  if (!scanSipUri(buf, start, end)) return -1;
  return PARTS.hasHeaders ? 1 : 0;
}

/** One pass over a sip:/sips: URI into PARTS; false for other schemes or a malformed host. */
function scanSipUri(buf: Buffer, start: number, end: number): boolean {
  const u = PARTS;
  let p = start;
  let secure = false;
  if (end - p >= 4 && equalsLower(buf, p, p + 4, 'sip:')) p += 4;
  else if (end - p >= 5 && equalsLower(buf, p, p + 5, 'sips:')) {
    p += 5;
    secure = true;
  } else return false;
  // userinfo ends at the last "@" before any ";" of uri-parameters ... but user may hold ";" (RFC 4475 §3.1.1.9 semiuri).
  let hostStart = p;
  for (let i = p; i < end; i++) {
    const b = buf[i];
    if (b === 0x40) {
      hostStart = i + 1;
      break;
    }
    // RFC 3261 §25.1: "?" is an unreserved user character (RFC 4475 §3.1.1.2 intmeth), and an
    // unescaped "@" cannot appear after the host, so only the end of the URI stops the search.
    if (b === 0x3e) break;
  }
  p = hostStart;
  let isIPv6 = false;
  if (buf[p] === LBRACKET) {
    const close = indexOfByte(buf, RBRACKET, p, end);
    if (close === -1) return false;
    u.hostStart = p + 1;
    u.hostEnd = close;
    isIPv6 = true;
    p = close + 1;
  } else {
    const hs = p;
    while (p < end && buf[p] !== COLON && buf[p] !== SEMI && buf[p] !== QMARK) p++;
    if (p === hs) return false;
    u.hostStart = hs;
    u.hostEnd = p;
  }
  let port = 0;
  if (p < end && buf[p] === COLON) {
    p++;
    const d = p;
    while (p < end && buf[p] >= 0x30 && buf[p] <= 0x39) {
      port = port * 10 + buf[p] - 0x30;
      p++;
    }
    // A second colon here is an unbracketed IPv6 address (RFC 5118 §4.2): invalid.
    if (p === d || port > 65535 || (p < end && buf[p] !== SEMI && buf[p] !== QMARK)) return false;
  }
  u.secure = secure;
  u.isIPv6 = isIPv6;
  u.port = port;
  u.transportStart = -1;
  u.transportEnd = -1;
  u.lr = false;
  u.maddrStart = -1;
  u.maddrEnd = -1;
  while (p < end && buf[p] === SEMI) {
    p++;
    const n = p;
    while (p < end && buf[p] !== 0x3d && buf[p] !== SEMI && buf[p] !== QMARK) p++;
    const nameEnd = p;
    let vs = -1;
    if (p < end && buf[p] === 0x3d) {
      vs = ++p;
      while (p < end && buf[p] !== SEMI && buf[p] !== QMARK) p++;
    }
    if (equalsLower(buf, n, nameEnd, 'lr')) u.lr = true;
    else if (vs !== -1 && equalsLower(buf, n, nameEnd, 'transport')) {
      u.transportStart = vs;
      u.transportEnd = p;
    } else if (vs !== -1 && equalsLower(buf, n, nameEnd, 'maddr')) {
      u.maddrStart = vs;
      u.maddrEnd = p;
    }
  }
  u.hasHeaders = p < end && buf[p] === QMARK;
  return true;
}
