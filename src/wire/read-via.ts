import type { Buffer } from 'node:buffer';
import { indexOfByte } from './byte-search.ts';
import { COMMA, DQUOTE, EQUAL, IS_TOKEN, LBRACKET, RBRACKET, SEMI, SLASH } from './chars.ts';
import { equalsLower } from './header-names.ts';
import { internLatin1 } from './latin1.ts';
import { skipLws, skipQuoted } from './lws.ts';

/** One via-parm (RFC 3261 §20.42, §25.1), with the offsets an edit needs. */
export interface ViaValue {
  /** Transport token, upper-cased: UDP, TCP, TLS, SCTP, WS, ... (RFC 4475 §3.1.1.10: unknown ones are fine). */
  transport: string;
  /** sent-by host; an IPv6 reference without its brackets. */
  host: string;
  isIPv6: boolean;
  /** sent-by port, or 0 when absent. */
  port: number;
  branch: string | null;
  /** The branch value's bytes, [branchStart, branchEnd), or -1, -1 when it has none. */
  branchStart: number;
  branchEnd: number;
  received: string | null;
  /** -1: no rport; 0: rport without value (RFC 3581 asks us to fill it); else the value. */
  rport: number;
  maddr: string | null;
  /** Offset just after the last byte of this via-parm (before LWS / comma). */
  end: number;
  /** Offset just after the "rport" name when it has no value, else -1. */
  rportNameEnd: number;
  /** Start of the next via-parm on the same field line, or -1. */
  next: number;
}

/**
 * Read the via-parm starting at `start`; null when it is malformed
 * (RFC 4475 §3.1.2.1 badinv01: empty parameters and values, `;;,;,,`).
 * LWS is allowed around "/" and ";" and "=" (RFC 4475 §3.1.1.1 wsinv).
 *
 * `into`: a value to fill instead of a new one, for a caller that reads it and lets it go (a
 * response's Vias). On null its fields are left as they were. `withBranch` false leaves `branch`
 * null (its syntax still checked, its offsets kept): a response's Vias are read for where to send
 * it and for a lookup made from the bytes, and a branch is a new string each time.
 */
export function readVia(
  buf: Buffer,
  start: number,
  end: number,
  into: ViaValue | null = null,
  withBranch = true,
): ViaValue | null {
  let p = skipLws(buf, start, end);
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport
  let t = p;
  while (p < end && IS_TOKEN[buf[p]] === 1) p++;
  if (!equalsLower(buf, t, p, 'sip')) return null;
  p = skipLws(buf, p, end);
  if (buf[p] !== SLASH) return null;
  p = skipLws(buf, p + 1, end);
  t = p;
  while (p < end && IS_TOKEN[buf[p]] === 1) p++;
  if (p === t) return null;
  p = skipLws(buf, p, end);
  if (buf[p] !== SLASH) return null;
  p = skipLws(buf, p + 1, end);
  t = p;
  while (p < end && IS_TOKEN[buf[p]] === 1) p++;
  if (p === t) return null;
  const transport = knownTransport(buf, t, p) ?? buf.toString('latin1', t, p).toUpperCase();
  const afterTransport = p;
  p = skipLws(buf, p, end);
  if (p === afterTransport) return null;

  // sent-by = host [ COLON port ]
  let host: string;
  let isIPv6 = false;
  if (buf[p] === LBRACKET) {
    const close = indexOfByte(buf, RBRACKET, p, end);
    if (close === -1) return null;
    host = internLatin1(buf, p + 1, close);
    isIPv6 = true;
    p = close + 1;
  } else {
    t = p;
    while (p < end && isHostChar(buf[p])) p++;
    if (p === t) return null;
    host = internLatin1(buf, t, p);
  }
  let port = 0;
  let q = skipLws(buf, p, end);
  if (q < end && buf[q] === 0x3a) {
    q = skipLws(buf, q + 1, end);
    const d = q;
    while (q < end && buf[q] >= 0x30 && buf[q] <= 0x39) {
      port = port * 10 + buf[q] - 0x30;
      q++;
    }
    if (q === d || port > 65535) return null;
    p = q;
  }

  const via = into ?? emptyVia();
  via.transport = transport;
  via.host = host;
  via.isIPv6 = isIPv6;
  via.port = port;
  via.branch = null;
  via.branchStart = -1;
  via.branchEnd = -1;
  via.received = null;
  via.rport = -1;
  via.maddr = null;
  via.end = p;
  via.rportNameEnd = -1;
  via.next = -1;

  // *( SEMI via-params ); generic-param = token [ EQUAL gen-value ]
  for (;;) {
    q = skipLws(buf, p, end);
    if (q >= end) break;
    if (buf[q] === COMMA) {
      const n = skipLws(buf, q + 1, end);
      if (n >= end || buf[n] === COMMA || buf[n] === SEMI) return null;
      via.next = n;
      break;
    }
    if (buf[q] !== SEMI) return null;
    q = skipLws(buf, q + 1, end);
    const nameStart = q;
    while (q < end && IS_TOKEN[buf[q]] === 1) q++;
    const nameEnd = q;
    if (nameEnd === nameStart) return null;
    p = nameEnd;
    let valueStart = -1;
    let valueStop = -1;
    q = skipLws(buf, q, end);
    if (q < end && buf[q] === EQUAL) {
      q = skipLws(buf, q + 1, end);
      valueStart = q;
      if (buf[q] === DQUOTE) {
        q = skipQuoted(buf, q, end);
        if (q === -1) return null;
      } else if (buf[q] === LBRACKET) {
        const close = indexOfByte(buf, RBRACKET, q, end);
        if (close === -1) return null;
        q = close + 1;
      } else {
        // Token, or an IPv6 address without brackets (RFC 5118 §4.5 received=2001:db8::9:255).
        while (q < end && (IS_TOKEN[buf[q]] === 1 || buf[q] === 0x3a)) q++;
      }
      if (q === valueStart) return null;
      valueStop = q;
      p = q;
    }
    const nameLen = nameEnd - nameStart;
    if (nameLen === 6 && equalsLower(buf, nameStart, nameEnd, 'branch')) {
      if (valueStart === -1) return null;
      via.branchStart = valueStart;
      via.branchEnd = valueStop;
      if (withBranch) via.branch = buf.toString('latin1', valueStart, valueStop);
    } else if (nameLen === 8 && equalsLower(buf, nameStart, nameEnd, 'received')) {
      if (valueStart === -1) return null;
      let s = valueStart;
      let e = valueStop;
      if (buf[s] === LBRACKET) {
        s++;
        e--;
      }
      via.received = internLatin1(buf, s, e);
    } else if (nameLen === 5 && equalsLower(buf, nameStart, nameEnd, 'rport')) {
      if (valueStart === -1) {
        via.rport = 0;
        via.rportNameEnd = nameEnd;
      } else {
        let n = 0;
        for (let i = valueStart; i < valueStop; i++) {
          const c = buf[i];
          if (c < 0x30 || c > 0x39) return null;
          n = n * 10 + c - 0x30;
        }
        if (n > 65535) return null;
        via.rport = n;
      }
    } else if (nameLen === 5 && equalsLower(buf, nameStart, nameEnd, 'maddr') && valueStart !== -1) {
      via.maddr = internLatin1(buf, valueStart, valueStop);
    }
    via.end = p;
  }
  return via;
}

function isHostChar(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    b === 0x2e ||
    b === 0x2d ||
    b === 0x5f
  );
}

/** A ViaValue before readVia fills it: the one spelling of its shape. */
export function emptyVia(): ViaValue {
  return {
    transport: '',
    host: '',
    isIPv6: false,
    port: 0,
    branch: null,
    branchStart: -1,
    branchEnd: -1,
    received: null,
    rport: -1,
    maddr: null,
    end: -1,
    rportNameEnd: -1,
    next: -1,
  };
}

/**
 * The usual transports as constant strings: no string is built (and upper-cased) per Via for them.
 * RFC 3261 §20.42: the transport token is case-insensitive.
 */
function knownTransport(buf: Buffer, start: number, end: number): string | null {
  for (let i = 0; i < KNOWN_TRANSPORTS.length; i++) {
    if (equalsLower(buf, start, end, KNOWN_TRANSPORTS_LOWER[i])) return KNOWN_TRANSPORTS[i];
  }
  return null;
}

const KNOWN_TRANSPORTS = ['UDP', 'TCP', 'TLS', 'WS', 'WSS'];
const KNOWN_TRANSPORTS_LOWER = KNOWN_TRANSPORTS.map((t) => t.toLowerCase());

/** A Via transport as routes and flows name it ('udp', 'tcp', …), without a string per message. */
export function lowerTransport(transport: string): string {
  const i = KNOWN_TRANSPORTS.indexOf(transport);
  return i === -1 ? transport.toLowerCase() : KNOWN_TRANSPORTS_LOWER[i];
}
