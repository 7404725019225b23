import {
  type Attributes,
  type HrTime,
  type Link,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
} from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import type { TransactionRecord } from '../../observe/records.ts';
import { KNOWN_METHODS } from '../../wire/methods.ts';
import { ATTR, EVENT } from './semconv.ts';

const KNOWN: ReadonlySet<string> = new Set(KNOWN_METHODS);

/** performance.now() milliseconds → HrTime on the wall clock, anchored once (performance.timeOrigin). */
export function toHrTime(ms: number): HrTime {
  const epochMs = performance.timeOrigin + ms;
  const seconds = Math.floor(epochMs / 1000);
  return [seconds, Math.round((epochMs - seconds * 1000) * 1e6)];
}

function duration(startMs: number, endMs: number): HrTime {
  const d = Math.max(0, endMs - startMs);
  const s = Math.floor(d / 1000);
  return [s, Math.round((d - s * 1000) * 1e6)];
}

function splitHostPort(text: string): [string, number] {
  const i = text.lastIndexOf(':');
  if (i === -1) return [text, 0];
  return [text.slice(0, i).replace(/^\[|\]$/g, ''), Number(text.slice(i + 1))];
}

/** A finished span, built after the fact with the ids sipspan chose and injected. */
export class FinishedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext?: SpanContext;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: { code: SpanStatusCode; message?: string };
  readonly attributes: Attributes;
  readonly links: Link[];
  readonly events: TimedEvent[];
  readonly ended = true;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  /** Milliseconds (performance.now()), kept for the store and the call view. */
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
    status: { code: SpanStatusCode; message?: string },
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
    this.duration = duration(startMs, this.endMs);
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

/**
 * The two spans of one transaction at one hop:
 *
 *   SERVER <METHOD>            request received ─────────────────────── final response sent back
 *     CLIENT <METHOD> <route>        request forwarded ──────── final response from upstream
 *
 * The injected traceparent names the CLIENT span, so the next hop's SERVER span
 * nests inside it and each hop's own time is SERVER minus CLIENT.
 */
export function buildSpans(
  tx: TransactionRecord,
  resource: Resource,
  scope: InstrumentationScope,
): FinishedSpan[] {
  const flags = TraceFlags.SAMPLED;
  const server: SpanContext = {
    traceId: tx.traceId,
    spanId: tx.serverSpanId,
    traceFlags: flags,
    isRemote: false,
  };
  const client: SpanContext = {
    traceId: tx.traceId,
    spanId: tx.clientSpanId,
    traceFlags: flags,
    isRemote: false,
  };
  const parent: SpanContext | undefined =
    tx.parentSpanId === null
      ? undefined
      : { traceId: tx.traceId, spanId: tx.parentSpanId, traceFlags: flags, isRemote: true };
  const method = KNOWN.has(tx.method) ? tx.method : '_OTHER';
  const end =
    tx.finalResponseOut !== -1 ? tx.finalResponseOut : tx.endedAt !== -1 ? tx.endedAt : tx.requestIn;

  let status: { code: SpanStatusCode; message?: string } = { code: SpanStatusCode.UNSET };
  let errorType: string | null = null;
  if (tx.outcome === 'timeout' || tx.outcome === 'send-failed')
    errorType = tx.outcome === 'timeout' ? 'timeout' : 'send_failed';
  else if (tx.generatedStatus !== 0) errorType = String(tx.generatedStatus);
  else if (tx.status >= 500) errorType = String(tx.status);
  if (errorType !== null) status = { code: SpanStatusCode.ERROR, message: errorType };

  const [downHost, downPort] = splitHostPort(tx.downstream);
  const attributes: Attributes = {
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
    [ATTR.PROTOCOL]: 'sip',
  };
  if (tx.status > 0) attributes[ATTR.SIP_STATUS] = tx.status;
  if (tx.outcome !== null) attributes[ATTR.OUTCOME] = tx.outcome;
  if (tx.stitchedBy !== null) attributes[ATTR.STITCHED_BY] = tx.stitchedBy;
  if (tx.generatedStatus !== 0) attributes[ATTR.GENERATED] = true;
  if (errorType !== null) attributes[ATTR.ERROR_TYPE] = errorType;

  const events: TimedEvent[] = [];
  for (const mark of tx.marks) {
    if (mark.status === -1) events.push({ name: EVENT.CANCEL, time: toHrTime(mark.at), attributes: {} });
    else
      events.push({
        name: EVENT.PROVISIONAL,
        time: toHrTime(mark.at),
        attributes: { [ATTR.SIP_STATUS]: mark.status },
      });
  }
  if (tx.retransmissions > 0 || tx.responseRetransmissions > 0) {
    events.push({
      name: EVENT.RETRANSMISSION,
      time: toHrTime(end),
      attributes: {
        [ATTR.SIP_RETRANSMISSIONS]: tx.retransmissions,
        [ATTR.SIP_RESPONSE_RETRANSMISSIONS]: tx.responseRetransmissions,
      },
    });
  }
  const links: Link[] =
    tx.linkTraceId !== null && tx.linkSpanId !== null
      ? [
          {
            context: { traceId: tx.linkTraceId, spanId: tx.linkSpanId, traceFlags: flags, isRemote: true },
            attributes: {},
          },
        ]
      : [];

  const spans = [
    new FinishedSpan(
      method,
      SpanKind.SERVER,
      server,
      parent,
      tx.requestIn,
      end,
      status,
      attributes,
      links,
      events,
      resource,
      scope,
    ),
  ];
  if (tx.requestOut !== -1) {
    const [upHost, upPort] = splitHostPort(tx.upstream);
    const clientEnd =
      tx.finalResponseIn !== -1 ? tx.finalResponseIn : tx.endedAt !== -1 ? tx.endedAt : tx.requestOut;
    const clientAttributes: Attributes = {
      [ATTR.SIP_METHOD]: method,
      [ATTR.SIP_CALL_ID]: tx.callId,
      [ATTR.SIP_CSEQ]: tx.cseq,
      [ATTR.ROUTE]: tx.route.name,
      [ATTR.SERVER_ADDRESS]: upHost,
      [ATTR.SERVER_PORT]: upPort,
      [ATTR.PEER_ADDRESS]: upHost,
      [ATTR.PEER_PORT]: upPort,
      [ATTR.TRANSPORT]: tx.upstreamTransport,
      [ATTR.PROTOCOL]: 'sip',
    };
    if (tx.status > 0 && tx.generatedStatus === 0) clientAttributes[ATTR.SIP_STATUS] = tx.status;
    if (errorType !== null && tx.generatedStatus === 0) clientAttributes[ATTR.ERROR_TYPE] = errorType;
    spans.push(
      new FinishedSpan(
        `${method} ${tx.route.name}`,
        SpanKind.CLIENT,
        client,
        server,
        tx.requestOut,
        clientEnd,
        tx.generatedStatus === 0 ? status : { code: SpanStatusCode.UNSET },
        clientAttributes,
        [],
        [],
        resource,
        scope,
      ),
    );
  }
  return spans;
}
