/**
 * The edit a forwarding proxy makes to a request (RFC 3261 §16.6): its own Via
 * on top, Max-Forwards decremented (or `Max-Forwards: 70` added), and the trace
 * headers. Shared by the conformance test, the fuzz properties and the
 * micro-benchmark, so all three exercise the same EditList usage.
 */

import { EditList } from '../../src/wire/edit-list.ts';
import { HeaderId } from '../../src/wire/header-names.ts';
import { readMaxForwards } from '../../src/wire/read-cseq.ts';
import type { SipMessage } from '../../src/wire/sip-message.ts';

export const PROXY_VIA_LINE = Buffer.from(
  'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-test\r\n',
  'latin1',
);
export const TRACEPARENT_LINE = Buffer.from(
  'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n',
  'latin1',
);
export const TRACE_ID_LINE = Buffer.from('X-Trace-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r\n', 'latin1');
export const MAX_FORWARDS_LINE = Buffer.from('Max-Forwards: 70\r\n', 'latin1');

/** Decimal bytes of 0..255, built once: the hot path formats no number. */
export const DECIMAL_BYTES: readonly Buffer[] = Array.from({ length: 256 }, (_, n) =>
  Buffer.from(String(n), 'latin1'),
);

/** One edit as the test records it, in original-message offsets. */
export interface SplicedEdit {
  start: number;
  end: number;
  bytes: Buffer;
}

/**
 * Add the proxy edit of `msg` to `edits` (and to `record`, when given).
 * Returns the Max-Forwards value that was decremented, 70 when one was added,
 * or -1 when the existing value is unusable (left unchanged).
 */
export function addProxyEdits(msg: SipMessage, edits: EditList, record: SplicedEdit[] | null): number {
  const buf = msg.buf;
  const via = msg.firstField[HeaderId.VIA];
  const viaAt = via === -1 ? msg.startLineEnd : msg.fieldLineStart(via);
  edits.insert(viaAt, PROXY_VIA_LINE);
  if (record !== null) record.push({ start: viaAt, end: viaAt, bytes: PROXY_VIA_LINE });

  let maxForwards = -1;
  const mf = msg.firstField[HeaderId.MAX_FORWARDS];
  if (mf === -1) {
    edits.insert(msg.headersEnd, MAX_FORWARDS_LINE);
    if (record !== null)
      record.push({ start: msg.headersEnd, end: msg.headersEnd, bytes: MAX_FORWARDS_LINE });
    maxForwards = 70;
  } else {
    const vs = msg.fieldValueStart(mf);
    const ve = msg.fieldValueEnd(mf);
    const n = readMaxForwards(buf, vs, ve);
    if (n > 0) {
      edits.replace(vs, ve, DECIMAL_BYTES[n - 1]);
      if (record !== null) record.push({ start: vs, end: ve, bytes: DECIMAL_BYTES[n - 1] });
      maxForwards = n;
    }
  }

  edits.insert(msg.headersEnd, TRACEPARENT_LINE);
  edits.insert(msg.headersEnd, TRACE_ID_LINE);
  if (record !== null) {
    record.push({ start: msg.headersEnd, end: msg.headersEnd, bytes: TRACEPARENT_LINE });
    record.push({ start: msg.headersEnd, end: msg.headersEnd, bytes: TRACE_ID_LINE });
  }
  return maxForwards;
}

/**
 * Reference splice, independent of EditList: apply `record` to
 * buf[start, end) one edit at a time from the highest offset down, so every
 * offset still points into original bytes. Edits at one offset keep the order
 * they were recorded in.
 */
export function spliceReference(
  buf: Buffer,
  start: number,
  end: number,
  record: readonly SplicedEdit[],
): Buffer {
  const order = record.map((e, i) => ({ e, i }));
  order.sort((a, b) => b.e.start - a.e.start || b.i - a.i);
  let out = Buffer.from(buf.subarray(start, end));
  for (const { e } of order) {
    const s = e.start - start;
    const t = Math.max(e.end - start, s);
    out = Buffer.concat([out.subarray(0, s), e.bytes, out.subarray(t)]);
  }
  return out;
}

/**
 * The inverse: walk `output` and take out exactly the recorded edits, putting
 * back the original bytes they replaced. Returns null when an edit's bytes are
 * not found where the record says they must be.
 */
export function unspliceReference(
  output: Buffer,
  original: Buffer,
  start: number,
  record: readonly SplicedEdit[],
): Buffer | null {
  const order = record.map((e, i) => ({ e, i }));
  order.sort((a, b) => a.e.start - b.e.start || a.i - b.i);
  const parts: Buffer[] = [];
  let out = 0;
  let orig = start;
  for (const { e } of order) {
    const same = e.start - orig;
    if (same < 0) return null;
    parts.push(output.subarray(out, out + same));
    out += same;
    if (!output.subarray(out, out + e.bytes.length).equals(e.bytes)) return null;
    out += e.bytes.length;
    parts.push(original.subarray(e.start, e.end));
    orig = Math.max(e.end, e.start);
  }
  parts.push(output.subarray(out));
  return Buffer.concat(parts);
}

/** Apply the edits and join the chunks (what one send would put on the wire). */
export function applyJoined(edits: EditList, msg: SipMessage): Buffer {
  return Buffer.concat(edits.apply(msg.buf, msg.start, msg.end));
}

export { EditList };
