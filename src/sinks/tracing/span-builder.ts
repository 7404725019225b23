import { performance } from 'node:perf_hooks';
import {
  type Attributes,
  createTraceState,
  type HrTime,
  type Link,
  type SpanContext,
  SpanKind,
  type SpanStatus,
  SpanStatusCode,
  TraceFlags,
  type TraceState,
} from '@opentelemetry/api';
import { hrTimeDuration, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import type { TransactionRecord } from '../../observe/records.ts';
import { KNOWN_METHODS } from '../../wire/methods.ts';
import { ATTR, ERROR, EVENT, LINK_REASON, OTHER_METHOD, PROTOCOL_NAME } from './semconv.ts';

const KNOWN: ReadonlySet<string> = new Set(KNOWN_METHODS);

/** A method the span names and sip.request.method take as it is; any other is `_OTHER`. */
export function isKnownMethod(method: string): boolean {
  return KNOWN.has(method);
}

/**
 * The wall-clock anchor, split once into whole seconds and the millisecond
 * remainder: adding a performance.now() value to the full epoch milliseconds
 * (~1.7e12) in one double keeps only ~0.2 µs; adding it to the remainder keeps
 * nanoseconds for months of uptime.
 */
const ORIGIN_S = Math.floor(performance.timeOrigin / 1000);
const ORIGIN_REM_MS = performance.timeOrigin - ORIGIN_S * 1000;

/** performance.now() milliseconds → HrTime on the wall clock (performance.timeOrigin + ms). */
export function toHrTime(ms: number): HrTime {
  return wallTime(ms, [0, 0]);
}

/** toHrTime(), written into `into` (for encoders that keep one array rather than make one per time). */
export function wallTime(ms: number, into: HrTime): HrTime {
  const total = ORIGIN_REM_MS + ms;
  let s = Math.floor(total / 1000);
  let ns = Math.round((total - s * 1000) * 1e6);
  if (ns >= 1e9) {
    s++;
    ns -= 1e9;
  }
  into[0] = ORIGIN_S + s;
  into[1] = ns;
  return into;
}

/** Request and response retransmission times of one transaction (performance.now() ms), as the sink saw them. */
export interface RetransmissionTimes {
  request: number[];
  response: number[];
}

/** The status of a span: UNSET, or ERROR with error.type as its description. */
const UNSET: SpanStatus = { code: SpanStatusCode.UNSET };

/**
 * A finished span built after the fact, with the ids sipspan chose and
 * injected (the SDK Tracer would pick its own). Everything an exporter reads
 * is computed once, in the constructor.
 */
export class FinishedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
  readonly links: Link[];
  readonly events: TimedEvent[];
  readonly ended = true;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  /** performance.now() milliseconds, kept for the store (ordering, durations). */
  readonly startMs: number;
  readonly endMs: number;
  private readonly context: SpanContext;

  constructor(
    name: string,
    kind: SpanKind,
    context: SpanContext,
    parent: SpanContext | undefined,
    startMs: number,
    endMs: number,
    status: SpanStatus,
    attributes: Attributes,
    links: Link[],
    events: TimedEvent[],
    resource: Resource,
    scope: InstrumentationScope,
  ) {
    this.name = name;
    this.kind = kind;
    this.context = context;
    this.parentSpanContext = parent;
    this.startMs = startMs;
    this.endMs = Math.max(startMs, endMs);
    this.startTime = toHrTime(startMs);
    this.endTime = toHrTime(this.endMs);
    this.duration = hrTimeDuration(this.startTime, this.endTime);
    this.status = status;
    this.attributes = attributes;
    this.links = links;
    this.events = events;
    this.resource = resource;
    this.instrumentationScope = scope;
  }

  spanContext(): SpanContext {
    return this.context;
  }
}

function splitHostPort(text: string): [string, number] {
  const i = text.lastIndexOf(':');
  if (i <= 0) return [text, 0];
  let host = text.slice(0, i);
  if (host.charCodeAt(0) === 0x5b /* [ */ && host.charCodeAt(host.length - 1) === 0x5d /* ] */)
    host = host.slice(1, -1);
  return [host, Number(text.slice(i + 1))];
}

/**
 * error.type of a transaction, or null when it is not an error. Server-side
 * rules for both spans: timeouts, sending failures, 5xx and 6xx are errors;
 * 3xx and 4xx (486 Busy, 487 after CANCEL) are ordinary call outcomes. An
 * answer sipspan generated itself (483, 482, 503 when shedding...) is an error
 * of the SERVER span, typed by its code.
 */
export function errorTypeOf(tx: TransactionRecord): string | null {
  if (tx.outcome === 'timeout') return ERROR.TIMEOUT;
  if (tx.outcome === 'send-failed') return ERROR.SEND_FAILED;
  if (tx.generatedStatus !== 0) return String(tx.generatedStatus);
  if (tx.status >= 500) return String(tx.status);
  return null;
}

export function endOf(primary: number, tx: TransactionRecord, fallback: number): number {
  if (primary !== -1) return primary;
  if (tx.endedAt !== -1) return tx.endedAt;
  return fallback;
}

function timedEvents(name: string, times: readonly number[], out: TimedEvent[]): void {
  for (let i = 0; i < times.length; i++) out.push({ name, time: toHrTime(times[i]), attributes: {} });
}

/**
 * How many spans buildSpans makes of a finished transaction: 0 when it is not
 * sampled (or has no trace), 1 without a CLIENT span (sipspan answered it, or
 * could not send it), 2 otherwise.
 */
export function transactionSpanCount(tx: TransactionRecord): number {
  if (!tx.sampled || tx.traceId === '') return 0;
  return tx.requestOut === -1 ? 1 : 2;
}

/**
 * The spans of one finished transaction at one hop:
 *
 *   SERVER <METHOD>                request in ────────────────────────────────── final response out
 *     │ events: sip.cancel, sip.retransmission
 *     └─ CLIENT <METHOD> <route>        request out ────────────── final response in
 *          events: sip.provisional_response, sip.response_retransmission
 *
 * The injected traceparent names the CLIENT span, so the next hop's SERVER span
 * nests inside it, and each hop's own time is SERVER minus CLIENT. A request
 * sipspan answered itself or could not send has no CLIENT span. A timed-out
 * transaction ends at its timer (tx.endedAt). Returns [] for an unsampled
 * transaction: nothing is allocated for it.
 */
export function buildSpans(
  tx: TransactionRecord,
  resource: Resource,
  scope: InstrumentationScope,
  retransmissions: RetransmissionTimes | null,
): FinishedSpan[] {
  const count = transactionSpanCount(tx);
  if (count === 0) return [];
  const flags = TraceFlags.SAMPLED;
  const traceState: TraceState | undefined =
    tx.traceState === null ? undefined : createTraceState(tx.traceState);
  const server: SpanContext = {
    traceId: tx.traceId,
    spanId: tx.serverSpanId,
    traceFlags: flags,
    isRemote: false,
    traceState,
  };
  const parent: SpanContext | undefined =
    tx.parentSpanId === null
      ? undefined
      : // The parent is remote when it came in a traceparent; a call's root span is this process's own.
        {
          traceId: tx.traceId,
          spanId: tx.parentSpanId,
          traceFlags: flags,
          isRemote: tx.traceOrigin !== 'call',
          traceState,
        };
  const known = isKnownMethod(tx.method);
  const method = known ? tx.method : OTHER_METHOD;
  const errorType = errorTypeOf(tx);
  const status: SpanStatus = errorType === null ? UNSET : { code: SpanStatusCode.ERROR, message: errorType };
  const serverEnd = endOf(tx.finalResponseOut, tx, tx.requestIn);

  const [downHost, downPort] = splitHostPort(tx.downstream);
  const serverAttributes: Attributes = {
    [ATTR.SIP_METHOD]: method,
    [ATTR.SIP_CALL_ID]: tx.callId,
    [ATTR.SIP_CSEQ]: tx.cseq,
    [ATTR.SIP_RETRANSMISSIONS]: tx.retransmissions,
    [ATTR.ROUTE]: tx.route.name,
    [ATTR.TRACE_ORIGIN]: tx.traceOrigin,
    [ATTR.CLIENT_ADDRESS]: downHost,
    [ATTR.CLIENT_PORT]: downPort,
    [ATTR.PEER_ADDRESS]: downHost,
    [ATTR.PEER_PORT]: downPort,
    [ATTR.TRANSPORT]: tx.transport,
    [ATTR.PROTOCOL]: PROTOCOL_NAME,
  };
  if (!known) serverAttributes[ATTR.SIP_METHOD_ORIGINAL] = tx.method;
  if (tx.status > 0) serverAttributes[ATTR.SIP_STATUS] = tx.status;
  if (tx.outcome !== null) serverAttributes[ATTR.OUTCOME] = tx.outcome;
  if (tx.stitchedBy !== null) serverAttributes[ATTR.STITCHED_BY] = tx.stitchedBy;
  if (tx.generatedStatus !== 0) serverAttributes[ATTR.GENERATED] = true;
  if (errorType !== null) serverAttributes[ATTR.ERROR_TYPE] = errorType;

  const serverEvents: TimedEvent[] = [];
  for (const mark of tx.marks)
    if (mark.status === -1)
      serverEvents.push({ name: EVENT.CANCEL, time: toHrTime(mark.at), attributes: {} });
  if (retransmissions !== null) timedEvents(EVENT.RETRANSMISSION, retransmissions.request, serverEvents);

  const links: Link[] =
    tx.linkTraceId === null || tx.linkSpanId === null
      ? []
      : [
          {
            context: { traceId: tx.linkTraceId, spanId: tx.linkSpanId, traceFlags: flags, isRemote: true },
            attributes: {
              [ATTR.LINK_REASON]:
                tx.traceOrigin === 'stitched' ? LINK_REASON.STITCHED : LINK_REASON.UNTRUSTED,
            },
          },
        ];

  const serverSpan = new FinishedSpan(
    method,
    SpanKind.SERVER,
    server,
    parent,
    tx.requestIn,
    serverEnd,
    status,
    serverAttributes,
    links,
    serverEvents,
    resource,
    scope,
  );
  if (count === 1) return [serverSpan];

  const [upHost, upPort] = splitHostPort(tx.upstream);
  // The CLIENT span describes what upstream did: a status sipspan generated is not upstream's.
  const upstreamError = tx.generatedStatus === 0 ? errorType : null;
  const clientAttributes: Attributes = {
    [ATTR.SIP_METHOD]: method,
    [ATTR.SIP_CALL_ID]: tx.callId,
    [ATTR.SIP_CSEQ]: tx.cseq,
    [ATTR.SIP_RESPONSE_RETRANSMISSIONS]: tx.responseRetransmissions,
    [ATTR.ROUTE]: tx.route.name,
    [ATTR.SERVER_ADDRESS]: upHost,
    [ATTR.SERVER_PORT]: upPort,
    [ATTR.PEER_ADDRESS]: upHost,
    [ATTR.PEER_PORT]: upPort,
    [ATTR.TRANSPORT]: tx.upstreamTransport,
    [ATTR.PROTOCOL]: PROTOCOL_NAME,
  };
  if (!known) clientAttributes[ATTR.SIP_METHOD_ORIGINAL] = tx.method;
  if (tx.finalResponseIn !== -1 && tx.status > 0) clientAttributes[ATTR.SIP_STATUS] = tx.status;
  if (upstreamError !== null) clientAttributes[ATTR.ERROR_TYPE] = upstreamError;

  const clientEvents: TimedEvent[] = [];
  for (const mark of tx.marks)
    if (mark.status > 0)
      clientEvents.push({
        name: EVENT.PROVISIONAL,
        time: toHrTime(mark.at),
        attributes: { [ATTR.SIP_STATUS]: mark.status },
      });
  if (retransmissions !== null)
    timedEvents(EVENT.RESPONSE_RETRANSMISSION, retransmissions.response, clientEvents);

  const clientSpan = new FinishedSpan(
    `${method} ${tx.route.name}`,
    SpanKind.CLIENT,
    { traceId: tx.traceId, spanId: tx.clientSpanId, traceFlags: flags, isRemote: false, traceState },
    server,
    tx.requestOut,
    endOf(tx.finalResponseIn, tx, tx.requestOut),
    upstreamError === null ? UNSET : { code: SpanStatusCode.ERROR, message: upstreamError },
    clientAttributes,
    [],
    clientEvents,
    resource,
    scope,
  );
  return [serverSpan, clientSpan];
}
