import { Buffer } from 'node:buffer';
import { createTraceState, type HrTime, SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import type { TransactionRecord } from '../../observe/records.ts';
import {
  encodedKey,
  I64,
  LEN,
  type ProtoWriter,
  RESERVE_SMALL,
  RESERVE_SPAN,
  tag,
  VARINT,
} from './proto-writer.ts';
import { ATTR, EVENT, LINK_REASON, OTHER_METHOD, PROTOCOL_NAME } from './semconv.ts';
import { endOf, errorTypeOf, isKnownMethod, type RetransmissionTimes, wallTime } from './span-builder.ts';

/**
 * The SERVER and CLIENT spans of one finished transaction, written as OTLP
 * protobuf straight from its record: the bytes the span encoder writes for
 * the spans buildSpans() makes of the same record (span-builder.ts says what
 * each span holds), without making them.
 *
 * Why: with every span exported, building two span objects per transaction
 * (attribute objects, contexts, times as arrays, events) and walking them
 * back generically (a for-in and a key lookup per attribute) was most of
 * tracing's cost per call. Here each attribute is written with its key's
 * bytes encoded once, in the order buildSpans sets them; a test checks the
 * bytes against the span encoder's for generated records.
 */

// SpanKind in the API counts from INTERNAL = 0; in the proto 0 is UNSPECIFIED.
const KIND_SERVER = SpanKind.SERVER + 1;
const KIND_CLIENT = SpanKind.CLIENT + 1;

const KEY = {
  method: encodedKey(ATTR.SIP_METHOD),
  methodOriginal: encodedKey(ATTR.SIP_METHOD_ORIGINAL),
  callId: encodedKey(ATTR.SIP_CALL_ID),
  cseq: encodedKey(ATTR.SIP_CSEQ),
  retransmissions: encodedKey(ATTR.SIP_RETRANSMISSIONS),
  responseRetransmissions: encodedKey(ATTR.SIP_RESPONSE_RETRANSMISSIONS),
  route: encodedKey(ATTR.ROUTE),
  traceOrigin: encodedKey(ATTR.TRACE_ORIGIN),
  clientAddress: encodedKey(ATTR.CLIENT_ADDRESS),
  clientPort: encodedKey(ATTR.CLIENT_PORT),
  serverAddress: encodedKey(ATTR.SERVER_ADDRESS),
  serverPort: encodedKey(ATTR.SERVER_PORT),
  peerAddress: encodedKey(ATTR.PEER_ADDRESS),
  peerPort: encodedKey(ATTR.PEER_PORT),
  transport: encodedKey(ATTR.TRANSPORT),
  protocol: encodedKey(ATTR.PROTOCOL),
  status: encodedKey(ATTR.SIP_STATUS),
  outcome: encodedKey(ATTR.OUTCOME),
  stitchedBy: encodedKey(ATTR.STITCHED_BY),
  generated: encodedKey(ATTR.GENERATED),
  errorType: encodedKey(ATTR.ERROR_TYPE),
  linkReason: encodedKey(ATTR.LINK_REASON),
};

/** One array for every time written (wallTime fills it): no HrTime per time. */
const scratch: HrTime = [0, 0];

/** Where the host and the port of an `address:port` text are, as span-builder's splitHostPort reads it. */
const where = { hostStart: 0, hostEnd: 0, port: 0 };

/** What both spans take from the record, read by writeTransactionSpan for the span it writes. */
const facts = {
  /** The serialized trace state, or '' for none. */
  traceState: '',
  /** The method as spans name it: `_OTHER` for one not known. */
  method: '',
  errorType: null as string | null,
};

/**
 * Write span `index` of `tx` (0 the SERVER span, 1 the CLIENT span; see
 * transactionSpanCount in span-builder.ts) as a ScopeSpans.spans field into the request `w` has open.
 */
export function writeTransactionSpan(
  w: ProtoWriter,
  tx: TransactionRecord,
  retransmissions: RetransmissionTimes | null,
  index: number,
): void {
  facts.traceState = tx.traceState === null ? '' : createTraceState(tx.traceState).serialize();
  facts.method = isKnownMethod(tx.method) ? tx.method : OTHER_METHOD;
  facts.errorType = errorTypeOf(tx);
  if (index === 0) writeServerSpan(w, tx, retransmissions);
  else writeClientSpan(w, tx, retransmissions);
}

/** SERVER: request in → final response out. */
function writeServerSpan(
  w: ProtoWriter,
  tx: TransactionRecord,
  retransmissions: RetransmissionTimes | null,
): void {
  const { traceState, method, errorType } = facts;
  const parent = tx.parentSpanId;
  const server = openSpan(w, tx, tx.serverSpanId, parent, traceState, method, KIND_SERVER);
  times(w, tx.requestIn, endOf(tx.finalResponseOut, tx, tx.requestIn));
  leadingAttributes(w, tx, method, KEY.retransmissions, tx.retransmissions);
  stringAttribute(w, 9, KEY.traceOrigin, tx.traceOrigin);
  peerAttributes(w, downstreamPeer, tx.downstream, tx.transport);
  if (method === OTHER_METHOD) stringAttribute(w, 9, KEY.methodOriginal, tx.method);
  if (tx.status > 0) numberAttribute(w, 9, KEY.status, tx.status);
  if (tx.outcome !== null) stringAttribute(w, 9, KEY.outcome, tx.outcome);
  if (tx.stitchedBy !== null) stringAttribute(w, 9, KEY.stitchedBy, tx.stitchedBy);
  if (tx.generatedStatus !== 0) {
    w.byte(tag(9, LEN));
    const kv = w.open(RESERVE_SMALL);
    w.bytes(KEY.generated);
    w.byte(tag(2, LEN));
    const value = w.open(RESERVE_SMALL);
    w.anyBool(true);
    w.close(value, RESERVE_SMALL);
    w.close(kv, RESERVE_SMALL);
  }
  if (errorType !== null) stringAttribute(w, 9, KEY.errorType, errorType);
  droppedCount(w, 10);
  const marks = tx.marks;
  for (let i = 0; i < marks.length; i++) if (marks[i].status === -1) event(w, EVENT.CANCEL, marks[i].at, 0);
  if (retransmissions !== null) events(w, EVENT.RETRANSMISSION, retransmissions.request);
  droppedCount(w, 12);
  if (tx.linkTraceId !== null && tx.linkSpanId !== null) {
    w.byte(tag(13, LEN));
    const link = w.open(RESERVE_SMALL);
    w.id(tag(1, LEN), tx.linkTraceId);
    w.id(tag(2, LEN), tx.linkSpanId);
    stringAttribute(
      w,
      4,
      KEY.linkReason,
      tx.traceOrigin === 'stitched' ? LINK_REASON.STITCHED : LINK_REASON.UNTRUSTED,
    );
    droppedCount(w, 5);
    w.spanFlags(6, TraceFlags.SAMPLED, true);
    w.close(link, RESERVE_SMALL);
  }
  droppedCount(w, 14);
  status(w, errorType);
  // The parent is remote when it came in a traceparent; a call's root span is this process's own.
  w.spanFlags(16, TraceFlags.SAMPLED, parent === null ? false : tx.traceOrigin !== 'call');
  w.close(server, RESERVE_SPAN);
}

/** CLIENT: request out → final response in, a child of the SERVER span. */
function writeClientSpan(
  w: ProtoWriter,
  tx: TransactionRecord,
  retransmissions: RetransmissionTimes | null,
): void {
  const { traceState, method, errorType } = facts;
  // It describes what upstream did: a status sipspan generated is not upstream's.
  const upstreamError = tx.generatedStatus === 0 ? errorType : null;
  const name = `${method} ${tx.route.name}`;
  const client = openSpan(w, tx, tx.clientSpanId, tx.serverSpanId, traceState, name, KIND_CLIENT);
  times(w, tx.requestOut, endOf(tx.finalResponseIn, tx, tx.requestOut));
  leadingAttributes(w, tx, method, KEY.responseRetransmissions, tx.responseRetransmissions);
  peerAttributes(w, upstreamPeer, tx.upstream, tx.upstreamTransport);
  if (method === OTHER_METHOD) stringAttribute(w, 9, KEY.methodOriginal, tx.method);
  if (tx.finalResponseIn !== -1 && tx.status > 0) numberAttribute(w, 9, KEY.status, tx.status);
  if (upstreamError !== null) stringAttribute(w, 9, KEY.errorType, upstreamError);
  droppedCount(w, 10);
  const marks = tx.marks;
  for (let i = 0; i < marks.length; i++)
    if (marks[i].status > 0) event(w, EVENT.PROVISIONAL, marks[i].at, marks[i].status);
  if (retransmissions !== null) events(w, EVENT.RESPONSE_RETRANSMISSION, retransmissions.response);
  droppedCount(w, 12);
  droppedCount(w, 14);
  status(w, upstreamError);
  w.spanFlags(16, TraceFlags.SAMPLED, false);
  w.close(client, RESERVE_SPAN);
}

/**
 * A ScopeSpans.spans field opened, and the span's fields up to its times:
 * ids, trace state, parent (none when null or empty), name, kind. Returns
 * where the span's content starts, for w.close().
 */
function openSpan(
  w: ProtoWriter,
  tx: TransactionRecord,
  spanId: string,
  parentSpanId: string | null,
  traceState: string,
  name: string,
  kind: number,
): number {
  w.byte(tag(2, LEN)); // ScopeSpans.spans
  const start = w.open(RESERVE_SPAN);
  w.id(tag(1, LEN), tx.traceId);
  w.id(tag(2, LEN), spanId);
  if (traceState !== '') w.string(tag(3, LEN), traceState);
  if (parentSpanId) w.id(tag(4, LEN), parentSpanId);
  w.string(tag(5, LEN), name);
  w.byte(tag(6, VARINT));
  w.varint(kind);
  return start;
}

/** The attributes both spans begin with: method, Call-ID, CSeq, a retransmission count, route. */
function leadingAttributes(
  w: ProtoWriter,
  tx: TransactionRecord,
  method: string,
  retransmissionsKey: Buffer,
  retransmissions: number,
): void {
  stringAttribute(w, 9, KEY.method, method);
  stringAttribute(w, 9, KEY.callId, tx.callId);
  numberAttribute(w, 9, KEY.cseq, tx.cseq);
  numberAttribute(w, 9, retransmissionsKey, retransmissions);
  stringAttribute(w, 9, KEY.route, tx.route.name);
}

/** Span.start_time_unix_nano and end_time_unix_nano; the end never before the start. */
function times(w: ProtoWriter, startMs: number, endMs: number): void {
  w.byte(tag(7, I64));
  w.time(wallTime(startMs, scratch));
  w.byte(tag(8, I64));
  w.time(wallTime(Math.max(startMs, endMs), scratch));
}

/** A dropped_*_count field: sipspan drops nothing from a span it builds, and the SDK writes the 0. */
function droppedCount(w: ProtoWriter, field: number): void {
  w.byte(tag(field, VARINT));
  w.byte(0);
}

/** Span.status: UNSET, or ERROR with error.type as its message. */
function status(w: ProtoWriter, errorType: string | null): void {
  w.byte(tag(15, LEN));
  const start = w.open(RESERVE_SMALL);
  if (errorType !== null) w.string(tag(2, LEN), errorType);
  w.byte(tag(3, VARINT));
  w.varint(errorType === null ? SpanStatusCode.UNSET : SpanStatusCode.ERROR);
  w.close(start, RESERVE_SMALL);
}

/** A span event at `atMs`; `status` > 0 gives it sip.response.status_code. */
function event(w: ProtoWriter, name: string, atMs: number, status: number): void {
  w.byte(tag(11, LEN));
  const start = w.open(RESERVE_SMALL);
  w.byte(tag(1, I64));
  w.time(wallTime(atMs, scratch));
  w.string(tag(2, LEN), name);
  if (status > 0) numberAttribute(w, 3, KEY.status, status);
  droppedCount(w, 4);
  w.close(start, RESERVE_SMALL);
}

function events(w: ProtoWriter, name: string, times: readonly number[]): void {
  for (let i = 0; i < times.length; i++) event(w, name, times[i], 0);
}

/** A KeyValue in `field` with a string value (or the range start..end of it). */
function stringAttribute(
  w: ProtoWriter,
  field: number,
  key: Buffer,
  s: string,
  start = 0,
  end = s.length,
): void {
  if (w.shortAsciiAttribute(tag(field, LEN), key, s, start, end)) return;
  w.byte(tag(field, LEN));
  const kv = w.open(RESERVE_SMALL);
  w.bytes(key);
  w.byte(tag(2, LEN)); // KeyValue.value
  const value = w.open(RESERVE_SMALL);
  w.string(tag(1, LEN), s, start, end);
  w.close(value, RESERVE_SMALL);
  w.close(kv, RESERVE_SMALL);
}

function numberAttribute(w: ProtoWriter, field: number, key: Buffer, v: number): void {
  if (w.shortUintAttribute(tag(field, LEN), key, v)) return;
  w.byte(tag(field, LEN));
  const kv = w.open(RESERVE_SMALL);
  w.bytes(key);
  w.byte(tag(2, LEN)); // KeyValue.value
  const value = w.open(RESERVE_SMALL);
  w.anyNumber(v);
  w.close(value, RESERVE_SMALL);
  w.close(kv, RESERVE_SMALL);
}

/** The address and port attributes of `text`, split by the last splitHostPort(). */
function hostPortAttributes(w: ProtoWriter, addressKey: Buffer, portKey: Buffer, text: string): void {
  stringAttribute(w, 9, addressKey, text, where.hostStart, where.hostEnd);
  numberAttribute(w, 9, portKey, where.port);
}

/** Longer runs of peer attributes (an address of a hundred characters) are written each time. */
const PEER_BYTES = 512;

/**
 * The attributes a span takes from its peer, as they were written for the last one: its address and
 * port (client.* or server.*), the same as network.peer.*, then transport and protocol.
 */
class PeerAttributes {
  peer: string | null = null;
  transport: string | null = null;
  length = 0;
  readonly bytes = Buffer.allocUnsafe(PEER_BYTES);
  readonly addressKey: Buffer;
  readonly portKey: Buffer;

  constructor(addressKey: Buffer, portKey: Buffer) {
    this.addressKey = addressKey;
    this.portKey = portKey;
  }
}

const downstreamPeer = new PeerAttributes(KEY.clientAddress, KEY.clientPort);
const upstreamPeer = new PeerAttributes(KEY.serverAddress, KEY.serverPort);

/**
 * The peer's six attributes. A route has one upstream and, as a rule, a few downstreams, so one
 * transaction after another names the same peer: the bytes written last for this side are copied
 * when it comes again, in place of six attribute writes and an address split (the largest part of
 * the span writer's time in a perf profile at 2000 calls/s).
 */
function peerAttributes(w: ProtoWriter, last: PeerAttributes, peer: string, transport: string): void {
  if (peer === last.peer && transport === last.transport) {
    w.copy(last.bytes, last.length);
    return;
  }
  const from = w.position;
  splitHostPort(peer);
  hostPortAttributes(w, last.addressKey, last.portKey, peer);
  hostPortAttributes(w, KEY.peerAddress, KEY.peerPort, peer);
  stringAttribute(w, 9, KEY.transport, transport);
  stringAttribute(w, 9, KEY.protocol, PROTOCOL_NAME);
  const length = w.copyWritten(from, last.bytes);
  last.peer = length < 0 ? null : peer;
  last.transport = transport;
  last.length = length;
}

/**
 * `where` for an `address:port` text, as span-builder reads one: the host
 * before the last colon without IPv6 brackets, the port after it as Number()
 * reads it; no colon (or one at the start): the whole text, port 0.
 */
function splitHostPort(text: string): void {
  const i = text.lastIndexOf(':');
  if (i <= 0) {
    where.hostStart = 0;
    where.hostEnd = text.length;
    where.port = 0;
    return;
  }
  const bracketed = text.charCodeAt(0) === 0x5b /* [ */ && text.charCodeAt(i - 1) === 0x5d; /* ] */
  where.hostStart = bracketed ? 1 : 0;
  where.hostEnd = bracketed ? i - 1 : i;
  where.port = portNumber(text, i + 1);
}

/** Number(text.slice(from)), without the slice for the usual run of at most 15 digits. */
function portNumber(text: string, from: number): number {
  const end = text.length;
  if (end - from > 15) return Number(text.slice(from));
  let n = 0;
  for (let i = from; i < end; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return Number(text.slice(from));
    n = n * 10 + d;
  }
  return n;
}
