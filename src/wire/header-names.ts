/**
 * The closed set of header fields sipspan reads or edits, by numeric id.
 *
 * RFC 3261 §7.3.3: compact forms are equivalent to the long names, and field
 * names are case-insensitive (§7.3.1). Identification is a byte comparison
 * against lowercase literals, so no string is built for a header name.
 */
export const HeaderId = {
  OTHER: 0,
  VIA: 1,
  CALL_ID: 2,
  CSEQ: 3,
  FROM: 4,
  TO: 5,
  MAX_FORWARDS: 6,
  CONTENT_LENGTH: 7,
  ROUTE: 8,
  RECORD_ROUTE: 9,
  PROXY_REQUIRE: 10,
  CONTACT: 11,
  CONTENT_TYPE: 12,
  TRACEPARENT: 13,
  TRACESTATE: 14,
  X_TRACEPARENT: 15,
  X_TRACE_ID: 16,
  SESSION_ID: 17,
  X_CID: 18,
  REQUIRE: 19,
  USER_AGENT: 20,
  AUTHORIZATION: 21,
  PROXY_AUTHORIZATION: 22,
} as const;
export type HeaderId = (typeof HeaderId)[keyof typeof HeaderId];
export const HEADER_ID_COUNT = 23;

/** Canonical spelling, used when sipspan writes a header itself. */
export const CANONICAL_NAME: readonly string[] = [
  '',
  'Via',
  'Call-ID',
  'CSeq',
  'From',
  'To',
  'Max-Forwards',
  'Content-Length',
  'Route',
  'Record-Route',
  'Proxy-Require',
  'Contact',
  'Content-Type',
  'traceparent',
  'tracestate',
  'X-Traceparent',
  'X-Trace-Id',
  'Session-ID',
  'X-CID',
  'Require',
  'User-Agent',
  'Authorization',
  'Proxy-Authorization',
];

/**
 * Every name identifyHeader knows, in lower case, with its id: the long names and the compact
 * forms (RFC 3261 §7.3.3). The native header index (native/header-index.h) is given this list, so
 * both identify the same names; test/wire/header-names.test.ts holds identifyHeader to it.
 */
export const KNOWN_HEADER_NAMES: readonly (readonly [string, HeaderId])[] = [
  ...CANONICAL_NAME.slice(1).map((name, i) => [name.toLowerCase(), (i + 1) as HeaderId] as const),
  ['v', HeaderId.VIA],
  ['i', HeaderId.CALL_ID],
  ['f', HeaderId.FROM],
  ['t', HeaderId.TO],
  ['l', HeaderId.CONTENT_LENGTH],
  ['m', HeaderId.CONTACT],
  ['c', HeaderId.CONTENT_TYPE],
];

/** Fields that RFC 3261 §7.3.1 allows only once; a second line makes a request unusable (RFC 4475 §3.3.8). */
export const SINGLE_VALUE_FIELDS: readonly HeaderId[] = [
  HeaderId.CALL_ID,
  HeaderId.CSEQ,
  HeaderId.FROM,
  HeaderId.TO,
  HeaderId.MAX_FORWARDS,
  HeaderId.CONTENT_LENGTH,
];

/** True when buf[start, start + lit.length) equals the lowercase ASCII literal, ignoring case. */
export function equalsLower(buf: Uint8Array, start: number, end: number, lit: string): boolean {
  const n = lit.length;
  if (end - start !== n) return false;
  for (let i = 0; i < n; i++) {
    let b = buf[start + i];
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (b !== lit.charCodeAt(i)) return false;
  }
  return true;
}

/** Identify a header name in buf[start, end). Unknown names are OTHER. */
export function identifyHeader(buf: Uint8Array, start: number, end: number): HeaderId {
  const len = end - start;
  let c = buf[start];
  if (c >= 0x41 && c <= 0x5a) c |= 0x20;
  if (len === 1) {
    switch (c) {
      case 0x76: // v
        return HeaderId.VIA;
      case 0x69: // i
        return HeaderId.CALL_ID;
      case 0x66: // f
        return HeaderId.FROM;
      case 0x74: // t
        return HeaderId.TO;
      case 0x6c: // l
        return HeaderId.CONTENT_LENGTH;
      case 0x6d: // m
        return HeaderId.CONTACT;
      case 0x63: // c
        return HeaderId.CONTENT_TYPE;
      default:
        return HeaderId.OTHER;
    }
  }
  switch (c) {
    case 0x61: // a
      if (equalsLower(buf, start, end, 'authorization')) return HeaderId.AUTHORIZATION;
      return HeaderId.OTHER;
    case 0x63: // c
      if (len === 4 && equalsLower(buf, start, end, 'cseq')) return HeaderId.CSEQ;
      if (len === 7) {
        if (equalsLower(buf, start, end, 'call-id')) return HeaderId.CALL_ID;
        if (equalsLower(buf, start, end, 'contact')) return HeaderId.CONTACT;
      }
      if (len === 14 && equalsLower(buf, start, end, 'content-length')) return HeaderId.CONTENT_LENGTH;
      if (len === 12 && equalsLower(buf, start, end, 'content-type')) return HeaderId.CONTENT_TYPE;
      return HeaderId.OTHER;
    case 0x66: // f
      return len === 4 && equalsLower(buf, start, end, 'from') ? HeaderId.FROM : HeaderId.OTHER;
    case 0x6d: // m
      return len === 12 && equalsLower(buf, start, end, 'max-forwards')
        ? HeaderId.MAX_FORWARDS
        : HeaderId.OTHER;
    case 0x70: // p
      if (len === 13 && equalsLower(buf, start, end, 'proxy-require')) return HeaderId.PROXY_REQUIRE;
      if (len === 19 && equalsLower(buf, start, end, 'proxy-authorization'))
        return HeaderId.PROXY_AUTHORIZATION;
      return HeaderId.OTHER;
    case 0x72: // r
      if (len === 5 && equalsLower(buf, start, end, 'route')) return HeaderId.ROUTE;
      if (len === 12 && equalsLower(buf, start, end, 'record-route')) return HeaderId.RECORD_ROUTE;
      if (len === 7 && equalsLower(buf, start, end, 'require')) return HeaderId.REQUIRE;
      return HeaderId.OTHER;
    case 0x73: // s
      return len === 10 && equalsLower(buf, start, end, 'session-id') ? HeaderId.SESSION_ID : HeaderId.OTHER;
    case 0x74: // t
      if (len === 2 && equalsLower(buf, start, end, 'to')) return HeaderId.TO;
      if (len === 11 && equalsLower(buf, start, end, 'traceparent')) return HeaderId.TRACEPARENT;
      if (len === 10 && equalsLower(buf, start, end, 'tracestate')) return HeaderId.TRACESTATE;
      return HeaderId.OTHER;
    case 0x75: // u
      return len === 10 && equalsLower(buf, start, end, 'user-agent') ? HeaderId.USER_AGENT : HeaderId.OTHER;
    case 0x76: // v
      return len === 3 && equalsLower(buf, start, end, 'via') ? HeaderId.VIA : HeaderId.OTHER;
    case 0x78: // x
      if (len === 13 && equalsLower(buf, start, end, 'x-traceparent')) return HeaderId.X_TRACEPARENT;
      if (len === 10 && equalsLower(buf, start, end, 'x-trace-id')) return HeaderId.X_TRACE_ID;
      if (len === 5 && equalsLower(buf, start, end, 'x-cid')) return HeaderId.X_CID;
      return HeaderId.OTHER;
    default:
      return HeaderId.OTHER;
  }
}
