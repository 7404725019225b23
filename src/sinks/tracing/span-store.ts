import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ATTR } from './semconv.ts';
import type { FinishedSpan } from './span-builder.ts';

/** One trace as the store keeps it. */
export interface StoredTrace {
  traceId: string;
  spans: FinishedSpan[];
  callIds: Set<string>;
  startMs: number;
  endMs: number;
}

const KIND_NAMES = ['internal', 'server', 'client', 'producer', 'consumer'];

/**
 * The embedded trace store: recent traces in memory, bounded by traces and by
 * spans, oldest trace evicted first; indexed by trace id and Call-ID. Serves
 * the admin API when no tracing backend is configured, and the demo.
 */
export class SpanStore {
  private readonly traces = new Map<string, StoredTrace>();
  private readonly byCallId = new Map<string, string>();
  private spanCount = 0;
  private readonly maxTraces: number;
  private readonly maxSpans: number;

  constructor(maxTraces: number, maxSpans: number) {
    this.maxTraces = maxTraces;
    this.maxSpans = maxSpans;
  }

  get size(): number {
    return this.traces.size;
  }

  get spans(): number {
    return this.spanCount;
  }

  add(span: FinishedSpan): void {
    const traceId = span.spanContext().traceId;
    let t = this.traces.get(traceId);
    if (t === undefined) {
      t = { traceId, spans: [], callIds: new Set(), startMs: span.startMs, endMs: span.endMs };
      this.traces.set(traceId, t);
    }
    t.spans.push(span);
    this.spanCount++;
    if (span.startMs < t.startMs) t.startMs = span.startMs;
    if (span.endMs > t.endMs) t.endMs = span.endMs;
    const callId = span.attributes[ATTR.SIP_CALL_ID];
    if (typeof callId === 'string' && !t.callIds.has(callId)) {
      t.callIds.add(callId);
      this.byCallId.set(callId, traceId);
    }
    while (this.traces.size > this.maxTraces || this.spanCount > this.maxSpans) {
      const oldest = this.traces.values().next().value;
      if (oldest === undefined || oldest === t) break;
      this.evict(oldest);
    }
  }

  private evict(t: StoredTrace): void {
    this.traces.delete(t.traceId);
    this.spanCount -= t.spans.length;
    for (const c of t.callIds) if (this.byCallId.get(c) === t.traceId) this.byCallId.delete(c);
  }

  get(traceId: string): StoredTrace | undefined {
    return this.traces.get(traceId);
  }

  findByCallId(callId: string): string | undefined {
    return this.byCallId.get(callId);
  }

  /** Newest first. */
  recent(limit: number): StoredTrace[] {
    const all = [...this.traces.values()];
    all.sort((a, b) => b.startMs - a.startMs);
    return all.slice(0, limit);
  }
}

const wallMs = (ms: number) => performance.timeOrigin + ms;

export function summarize(t: StoredTrace): Record<string, unknown> {
  const roots = t.spans.filter((s) => s.parentSpanContext === undefined);
  const root = roots[0] ?? t.spans[0];
  const hops = [...new Set(t.spans.map((s) => s.attributes[ATTR.ROUTE]))];
  const errors = t.spans.filter((s) => s.status.code === SpanStatusCode.ERROR).length;
  const status = root?.attributes[ATTR.SIP_STATUS];
  return {
    trace_id: t.traceId,
    start_ms: wallMs(t.startMs),
    duration_ms: t.endMs - t.startMs,
    spans: t.spans.length,
    hops,
    root: root?.name ?? null,
    status: status ?? null,
    errors,
    call_ids: [...t.callIds],
  };
}

export function spanJson(s: FinishedSpan): Record<string, unknown> {
  const ctx = s.spanContext();
  return {
    trace_id: ctx.traceId,
    span_id: ctx.spanId,
    parent_span_id: s.parentSpanContext?.spanId ?? null,
    name: s.name,
    kind: KIND_NAMES[s.kind] ?? 'internal',
    start_ms: wallMs(s.startMs),
    end_ms: wallMs(s.endMs),
    duration_ms: s.endMs - s.startMs,
    attributes: s.attributes,
    events: s.events.map((e) => ({
      name: e.name,
      time_ms: e.time[0] * 1000 + e.time[1] / 1e6,
      attributes: e.attributes ?? {},
    })),
    links: s.links.map((l) => ({ trace_id: l.context.traceId, span_id: l.context.spanId })),
    status: {
      code:
        s.status.code === SpanStatusCode.ERROR
          ? 'error'
          : s.status.code === SpanStatusCode.OK
            ? 'ok'
            : 'unset',
      message: s.status.message ?? null,
    },
  };
}

const hrNanos = (ms: number) => String(BigInt(Math.round(wallMs(ms) * 1000)) * 1000n);

/** One trace in OTLP/JSON (ExportTraceServiceRequest), for exports and tools that read OTLP. */
export function otlpJson(t: StoredTrace): Record<string, unknown> {
  const first = t.spans[0];
  const resourceAttributes = first
    ? Object.entries(first.resource.attributes).map(([key, value]) => ({
        key,
        value: { stringValue: String(value) },
      }))
    : [];
  return {
    resourceSpans: [
      {
        resource: { attributes: resourceAttributes },
        scopeSpans: [
          {
            scope: { name: 'sipspan' },
            spans: t.spans.map((s) => ({
              traceId: s.spanContext().traceId,
              spanId: s.spanContext().spanId,
              parentSpanId: s.parentSpanContext?.spanId ?? '',
              name: s.name,
              kind: s.kind === SpanKind.SERVER ? 2 : s.kind === SpanKind.CLIENT ? 3 : 1,
              startTimeUnixNano: hrNanos(s.startMs),
              endTimeUnixNano: hrNanos(s.endMs),
              attributes: Object.entries(s.attributes).map(([key, value]) => ({
                key,
                value:
                  typeof value === 'number'
                    ? { intValue: String(value) }
                    : typeof value === 'boolean'
                      ? { boolValue: value }
                      : { stringValue: String(value) },
              })),
              status: { code: s.status.code },
            })),
          },
        ],
      },
    ],
  };
}
