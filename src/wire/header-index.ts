import type { Buffer } from 'node:buffer';
import { CR } from './chars.ts';
import {
  finishScan,
  messageFor,
  type ScanLimits,
  type ScanResult,
  scanMessage,
  scanStartLine,
} from './scan.ts';
import type { SipMessage } from './sip-message.ts';
import { F_LINE_END, F_LINE_START, FIELD_STRIDE } from './sip-message.ts';

/**
 * A message's header fields found before JavaScript sees it: the UDP socket of native/udp-io.c
 * indexes each datagram of a batch in C (native/header-index.h), where memchr finds the line ends
 * that the scanner would look for one byte at a time. One index per datagram, INDEX_STRIDE int32s:
 *
 *   [ fields or -1 | startLineEnd | headersEnd | bodyStart | fields × FIELD_STRIDE ... ]
 *
 * Each field is laid out as in SipMessage.fields, offsets in the batch's Buffer. -1: the message is
 * not of the plain shape (folded lines, a line that is no field, more than INDEX_FIELDS fields, ...)
 * and only the scanner says what it is.
 */
export const INDEX_FIELDS = 64;
export const INDEX_HEAD = 4;
export const INDEX_STRIDE = INDEX_HEAD + INDEX_FIELDS * FIELD_STRIDE;
const I_FIELDS = 0;
const I_START_LINE_END = 1;
const I_HEADERS_END = 2;
const I_BODY_START = 3;

/**
 * scanMessage's result for buf[start, end), from its index at index[at]: the same message and code,
 * for a fraction of the work (bench/wire-scan-edit.ts). What the index leaves out, and a message
 * past the limits, is scanned.
 */
export function scanIndexed(
  buf: Buffer,
  start: number,
  end: number,
  index: Int32Array,
  at: number,
  limits: ScanLimits,
  into: SipMessage | null,
): ScanResult {
  const count = index[at + I_FIELDS];
  if (count < 0 || count > limits.maxHeaderFields) return scanMessage(buf, start, end, limits, into);
  const startLineEnd = index[at + I_START_LINE_END];
  const lineEnd = startLineEnd - 1;
  const lineContentEnd = lineEnd > start && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
  const msg = messageFor(buf, start, lineContentEnd, end, into);
  const lineCode = scanStartLine(msg, start, lineContentEnd);
  msg.startLineEnd = startLineEnd;

  let fields = msg.fields;
  const length = count * FIELD_STRIDE;
  if (length > fields.length) {
    fields = new Int32Array(Math.max(length, fields.length * 2));
    msg.fields = fields;
  }
  const first = msg.firstField;
  const tally = msg.fieldTally;
  const maxFieldBytes = limits.maxFieldBytes;
  const from = at + INDEX_HEAD;
  for (let o = 0, n = 0; o < length; o += FIELD_STRIDE, n++) {
    const i = from + o;
    const id = index[i];
    const lineStart = index[i + F_LINE_START];
    const lineEndAt = index[i + F_LINE_END];
    if (lineEndAt - lineStart > maxFieldBytes) return scanMessage(buf, start, end, limits, into);
    fields[o] = id;
    fields[o + 1] = lineStart;
    fields[o + 2] = index[i + 2];
    fields[o + 3] = index[i + 3];
    fields[o + 4] = index[i + 4];
    fields[o + 5] = lineEndAt;
    if (first[id] === -1) first[id] = n;
    tally[id]++;
  }
  msg.fieldCount = count;
  msg.headersEnd = index[at + I_HEADERS_END];
  msg.bodyStart = index[at + I_BODY_START];
  return finishScan(msg, lineCode, start);
}
