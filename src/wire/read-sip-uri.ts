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

/**
 * Parse a sip: or sips: URI in buf[start, end); null for other schemes or a
 * malformed host. An IPv6 address must be bracketed: `sip:2001:db8::10` is
 * invalid (RFC 5118 §4.2), while `[2001:db8::10:5070]` is a well-formed host
 * with no port (§4.3) and `[2001:db8:::192.0.2.1]` is tolerated (§4.10).
 */
export function readSipUri(buf: Buffer, start: number, end: number): SipUri | null {
  let p = start;
  let secure = false;
  if (end - p >= 4 && equalsLower(buf, p, p + 4, 'sip:')) p += 4;
  else if (end - p >= 5 && equalsLower(buf, p, p + 5, 'sips:')) {
    p += 5;
    secure = true;
  } else return null;
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
  let host: string;
  let isIPv6 = false;
  if (buf[p] === LBRACKET) {
    const close = buf.indexOf(RBRACKET, p);
    if (close === -1 || close >= end) return null;
    host = buf.toString('latin1', p + 1, close);
    isIPv6 = true;
    p = close + 1;
  } else {
    const hs = p;
    while (p < end && buf[p] !== COLON && buf[p] !== SEMI && buf[p] !== QMARK) p++;
    if (p === hs) return null;
    host = buf.toString('latin1', hs, p);
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
    if (p === d || port > 65535 || (p < end && buf[p] !== SEMI && buf[p] !== QMARK)) return null;
  }
  const uri: SipUri = {
    secure,
    host,
    isIPv6,
    port,
    transport: null,
    lr: false,
    maddr: null,
    hasHeaders: false,
  };
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
    if (equalsLower(buf, n, nameEnd, 'lr')) uri.lr = true;
    else if (vs !== -1 && equalsLower(buf, n, nameEnd, 'transport'))
      uri.transport = buf.toString('latin1', vs, p).toLowerCase();
    else if (vs !== -1 && equalsLower(buf, n, nameEnd, 'maddr')) uri.maddr = buf.toString('latin1', vs, p);
  }
  if (p < end && buf[p] === QMARK) uri.hasHeaders = true;
  return uri;
}
