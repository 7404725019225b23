import type { Buffer } from 'node:buffer';
import { indexOfByte } from './byte-search.ts';
import { COLON, CR, HTAB, IS_TOKEN, isDigit, LF, SP } from './chars.ts';
import { HeaderId, identifyHeader } from './header-names.ts';
import { ScanCode } from './scan-codes.ts';
import {
  F_LINE_END,
  F_LINE_START,
  F_NAME_END,
  F_VALUE_END,
  F_VALUE_START,
  FIELD_STRIDE,
  SipMessage,
} from './sip-message.ts';

export interface ScanLimits {
  /** Most header field lines one message may have. */
  maxHeaderFields: number;
  /** Most bytes one header field (with its folded lines) may span. */
  maxFieldBytes: number;
}

export const DEFAULT_SCAN_LIMITS: ScanLimits = Object.freeze({ maxHeaderFields: 256, maxFieldBytes: 16384 });

const INITIAL_FIELD_CAPACITY = 32;

/** What scanMessage gives back: the message, or the reason it cannot be used. */
export interface ScanResult {
  code: ScanCode;
  message: SipMessage | null;
  /** Byte offset where the fault was found (for logs), or -1. */
  at: number;
}

function fail(code: ScanCode, at: number): ScanResult {
  return { code, message: null, at };
}

/** A failure after some fields were indexed: they stay readable for a stateless answer. */
function partial(msg: SipMessage, count: number, code: ScanCode, at: number): ScanResult {
  msg.fieldCount = count;
  return { code, message: msg, at };
}

/**
 * One pass over a message's start line and header section.
 *
 * RFC 3261 §7: start line, header fields, an empty line, an optional body.
 * Lines end with CRLF; a bare LF is tolerated (RFC 3261 §7.5 asks for CRLF, but
 * implementations in the field and the RFC 5118 archive send LF alone).
 * Folded lines (§7.3.1: a line starting with SP or HTAB continues the previous
 * field) stay inside the field's value range; nothing is unfolded or copied.
 *
 * The body is not framed here: `end` is where the caller's framing ended (a UDP
 * datagram's end, or Content-Length for a stream). Content-Length is read and
 * checked so framers can use it.
 */
export function scanMessage(
  buf: Buffer,
  start: number,
  end: number,
  limits: ScanLimits = DEFAULT_SCAN_LIMITS,
  into: SipMessage | null = null,
): ScanResult {
  // RFC 3261 §7.5: implementations SHOULD ignore CRLFs before the start line.
  let p = start;
  while (p < end && (buf[p] === CR || buf[p] === LF)) p++;
  if (p >= end) return fail(ScanCode.EMPTY, start);

  const lineEnd = indexOfByte(buf, LF, p, end);
  if (lineEnd === -1) return fail(ScanCode.INCOMPLETE_HEADERS, p);
  const contentEnd = lineEnd > p && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;

  const msg = messageFor(buf, p, contentEnd, end, into);
  // A broken start line is reported after the header fields are indexed, so a
  // stateless answer (400, 505) can still copy Via, From, To, Call-ID and CSeq.
  let lineError: ScanCode = scanStartLine(msg, p, contentEnd);
  let errorAt = p;
  msg.startLineEnd = lineEnd + 1;

  // Header fields.
  p = lineEnd + 1;
  let fields = msg.fields;
  let count = 0;
  let lastO = -1;
  const maxFieldBytes = limits.maxFieldBytes;
  for (;;) {
    if (p >= end) return partial(msg, count, ScanCode.INCOMPLETE_HEADERS, p);
    const b = buf[p];
    // Empty line: end of the header section.
    if (b === LF || (b === CR && p + 1 < end && buf[p + 1] === LF)) {
      msg.headersEnd = p;
      msg.bodyStart = b === LF ? p + 1 : p + 2;
      break;
    }
    const eol = indexOfByte(buf, LF, p, end);
    if (eol === -1) return partial(msg, count, ScanCode.INCOMPLETE_HEADERS, p);
    const lineContentEnd = eol > p && buf[eol - 1] === CR ? eol - 1 : eol;

    if (b === SP || b === HTAB) {
      // RFC 3261 §7.3.1 folding: this line continues the previous field.
      if (lastO === -1) {
        if (lineError === ScanCode.OK) lineError = ScanCode.BAD_HEADER_LINE;
        errorAt = p;
        p = eol + 1;
        continue;
      }
      const v = trimRight(buf, p, lineContentEnd);
      if (v > p) {
        if (fields[lastO + F_VALUE_START] === fields[lastO + F_VALUE_END]) {
          fields[lastO + F_VALUE_START] = skipWsp(buf, p, lineContentEnd);
        }
        fields[lastO + F_VALUE_END] = v;
      }
      fields[lastO + F_LINE_END] = eol + 1;
      if (eol + 1 - fields[lastO + F_LINE_START] > maxFieldBytes) {
        return partial(msg, count, ScanCode.HEADER_TOO_LONG, p);
      }
      p = eol + 1;
      continue;
    }

    // field-name HCOLON field-value; HCOLON = *( SP / HTAB ) ":" SWS
    let q = p;
    while (q < lineContentEnd && IS_TOKEN[buf[q]] === 1) q++;
    const nameEnd = q;
    while (q < lineContentEnd && (buf[q] === SP || buf[q] === HTAB)) q++;
    if (nameEnd === p || q >= lineContentEnd || buf[q] !== COLON) {
      // A line that is no header field (RFC 4475 test.dat: "Foobar roobar") makes the
      // message unusable, but the rest is still indexed so the 400 can copy Via & co.
      if (lineError === ScanCode.OK) {
        lineError = ScanCode.BAD_HEADER_LINE;
        errorAt = p;
      }
      lastO = -1;
      p = eol + 1;
      continue;
    }
    const valueStart = skipWsp(buf, q + 1, lineContentEnd);
    const valueEnd = valueStart < lineContentEnd ? trimRight(buf, valueStart, lineContentEnd) : valueStart;
    if (eol + 1 - p > maxFieldBytes) return partial(msg, count, ScanCode.HEADER_TOO_LONG, p);

    if (count === limits.maxHeaderFields) return partial(msg, count, ScanCode.TOO_MANY_HEADERS, p);
    if ((count + 1) * FIELD_STRIDE > fields.length) {
      const grown = new Int32Array(fields.length * 2);
      grown.set(fields);
      fields = grown;
      msg.fields = grown;
    }
    const id = identifyHeader(buf, p, nameEnd);
    const o = count * FIELD_STRIDE;
    fields[o] = id;
    fields[o + F_LINE_START] = p;
    fields[o + F_NAME_END] = nameEnd;
    fields[o + F_VALUE_START] = valueStart;
    fields[o + F_VALUE_END] = valueEnd;
    fields[o + F_LINE_END] = eol + 1;
    if (msg.firstField[id] === -1) msg.firstField[id] = count;
    msg.fieldTally[id]++;
    lastO = o;
    count++;
    p = eol + 1;
  }
  msg.fieldCount = count;
  return finishScan(msg, lineError, errorAt);
}

/**
 * The message a scan of buf[start, end) fills: `into`, reset, or a new one. Its start line is
 * buf[start, lineContentEnd), a status line when it begins with "SIP/".
 */
export function messageFor(
  buf: Buffer,
  start: number,
  lineContentEnd: number,
  end: number,
  into: SipMessage | null,
): SipMessage {
  const isResponse =
    lineContentEnd - start >= 4 &&
    buf[start] === 0x53 &&
    buf[start + 1] === 0x49 &&
    buf[start + 2] === 0x50 &&
    buf[start + 3] === 0x2f;
  if (into === null) return new SipMessage(buf, start, end, !isResponse, INITIAL_FIELD_CAPACITY);
  into.reset(buf, start, end, !isResponse);
  return into;
}

/** The start line buf[start, lineContentEnd) read into msg (a request or a status line, as msg says). */
export function scanStartLine(msg: SipMessage, start: number, lineContentEnd: number): ScanCode {
  return msg.isRequest
    ? scanRequestLine(msg, start, lineContentEnd)
    : scanStatusLine(msg, start, lineContentEnd);
}

/**
 * What a scan whose header fields are all indexed gives: Content-Length read and checked, then the
 * start line's fault if it had one (`lineError` found at `errorAt`).
 */
export function finishScan(msg: SipMessage, lineError: ScanCode, errorAt: number): ScanResult {
  // RFC 3261 §20.14: Content-Length is a decimal count of body octets; one value only
  // (RFC 4475 §3.3.9: differing values make the framing unrecoverable). It is read even
  // when the start line is broken: a stream framer still needs it to step over the
  // message (RFC 4475 §3.1.2.16 badvers over TCP gets a 505, not a closed connection).
  const clIndex = msg.firstField[HeaderId.CONTENT_LENGTH];
  if (clIndex !== -1) {
    const o = clIndex * FIELD_STRIDE;
    const fields = msg.fields;
    const cl = readDecimal(msg.buf, fields[o + F_VALUE_START], fields[o + F_VALUE_END]);
    if (cl < 0) return { code: ScanCode.BAD_CONTENT_LENGTH, message: msg, at: fields[o + F_VALUE_START] };
    if (msg.fieldTally[HeaderId.CONTENT_LENGTH] > 1) {
      return { code: ScanCode.DUPLICATE_CONTENT_LENGTH, message: msg, at: fields[o + F_VALUE_START] };
    }
    msg.contentLength = cl;
  }
  if (lineError !== ScanCode.OK) return { code: lineError, message: msg, at: errorAt };
  return { code: ScanCode.OK, message: msg, at: -1 };
}

// Request-Line = Method SP Request-URI SP SIP-Version CRLF (RFC 3261 §7.1): exactly one SP
// between elements, none trailing (RFC 4475 §3.1.2.9, §3.1.2.10).
function scanRequestLine(msg: SipMessage, start: number, end: number): ScanCode {
  const buf = msg.buf;
  let p = start;
  while (p < end && IS_TOKEN[buf[p]] === 1) p++;
  if (p === start || p >= end || buf[p] !== SP) return ScanCode.BAD_START_LINE;
  msg.methodStart = start;
  msg.methodEnd = p;
  const uriStart = ++p;
  while (p < end && buf[p] > SP && buf[p] !== 0x7f) p++;
  if (p === uriStart || p >= end || buf[p] !== SP) return ScanCode.BAD_START_LINE;
  msg.uriStart = uriStart;
  msg.uriEnd = p;
  const versionStart = ++p;
  return scanVersion(buf, versionStart, end);
}

// Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF (RFC 3261 §7.2);
// Status-Code is exactly 3 digits (RFC 4475 §3.1.2.19: 4294967301 must not break us).
function scanStatusLine(msg: SipMessage, start: number, end: number): ScanCode {
  const buf = msg.buf;
  let p = start;
  while (p < end && buf[p] !== SP) p++;
  const versionCode = scanVersion(buf, start, p);
  if (versionCode !== ScanCode.OK) return versionCode;
  if (p >= end) return ScanCode.BAD_START_LINE;
  p++;
  const codeStart = p;
  while (p < end && isDigit(buf[p])) p++;
  if (p - codeStart !== 3 || (p < end && buf[p] !== SP)) return ScanCode.BAD_STATUS_CODE;
  const status =
    (buf[codeStart] - 0x30) * 100 + (buf[codeStart + 1] - 0x30) * 10 + (buf[codeStart + 2] - 0x30);
  if (status < 100 || status > 699) return ScanCode.BAD_STATUS_CODE;
  msg.statusCode = status;
  msg.reasonStart = p < end ? p + 1 : end;
  msg.reasonEnd = end;
  return ScanCode.OK;
}

// SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT; only 2.0 is spoken (RFC 4475 §3.1.2.16: 505).
function scanVersion(buf: Buffer, start: number, end: number): ScanCode {
  const n = end - start;
  if (n === 7 && isSip20(buf, start)) return ScanCode.OK;
  // Anything shaped like a version but another number is "unsupported"; the rest is malformed.
  if (
    n < 7 ||
    (buf[start] | 0x20) !== 0x73 ||
    (buf[start + 1] | 0x20) !== 0x69 ||
    (buf[start + 2] | 0x20) !== 0x70 ||
    buf[start + 3] !== 0x2f
  ) {
    return ScanCode.BAD_START_LINE;
  }
  let p = start + 4;
  const major = p;
  while (p < end && isDigit(buf[p])) p++;
  if (p === major || p >= end || buf[p] !== 0x2e) return ScanCode.BAD_START_LINE;
  const minor = ++p;
  while (p < end && isDigit(buf[p])) p++;
  if (p === minor || p !== end) return ScanCode.BAD_START_LINE;
  return ScanCode.UNSUPPORTED_VERSION;
}

function isSip20(buf: Buffer, p: number): boolean {
  // "SIP/2.0", case-insensitive on the letters (RFC 3261 §7.1: the version string is case-insensitive).
  return (
    (buf[p] | 0x20) === 0x73 &&
    (buf[p + 1] | 0x20) === 0x69 &&
    (buf[p + 2] | 0x20) === 0x70 &&
    buf[p + 3] === 0x2f &&
    buf[p + 4] === 0x32 &&
    buf[p + 5] === 0x2e &&
    buf[p + 6] === 0x30
  );
}

function skipWsp(buf: Buffer, p: number, end: number): number {
  while (p < end && (buf[p] === SP || buf[p] === HTAB)) p++;
  return p;
}

function trimRight(buf: Buffer, start: number, end: number): number {
  while (end > start && (buf[end - 1] === SP || buf[end - 1] === HTAB)) end--;
  return end;
}

/** A decimal number in buf[start, end) surrounded by optional LWS; -1 when not a number or above 2^31-1. */
export function readDecimal(buf: Buffer, start: number, end: number): number {
  let p = start;
  while (p < end && (buf[p] === SP || buf[p] === HTAB || buf[p] === CR || buf[p] === LF)) p++;
  const digits = p;
  let n = 0;
  while (p < end && isDigit(buf[p])) {
    n = n * 10 + (buf[p] - 0x30);
    if (n > 0x7fffffff) return -1;
    p++;
  }
  if (p === digits) return -1;
  while (p < end && (buf[p] === SP || buf[p] === HTAB || buf[p] === CR || buf[p] === LF)) p++;
  return p === end ? n : -1;
}
