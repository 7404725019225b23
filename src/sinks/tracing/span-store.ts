import { type Attributes, type HrTime, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { toEpochMs } from '../../observe/records.ts';
import { isCredentialChallenge } from '../../wire/status.ts';
import { ATTR, RESOURCE } from './semconv.ts';
import type { FinishedSpan } from './span-builder.ts';

/** What the sink knows about a call beyond its spans (from the transaction's call record). */
export interface TraceMeta {
  callId: string;
  /** From and To user parts of the initial INVITE, when known. */
  caller: string | null;
  callee: string | null;
}

/** One trace as the store keeps it. */
export interface StoredTrace {
  readonly traceId: string;
  readonly spans: FinishedSpan[];
  readonly callIds: string[];
  caller: string | null;
  callee: string | null;
  /** performance.now() ms of the earliest start and latest end among its spans. */
  startMs: number;
  endMs: number;
  /** Spans refused because the trace reached maxSpansPerTrace. */
  droppedSpans: number;
}

export interface SpanStoreLimits {
  /** Traces kept (config tracing.store_max_calls: one call is one trace). */
  maxTraces: number;
  /** Spans kept across all traces (config tracing.store_max_spans). */
  maxSpans: number;
  /** Spans kept for one trace: a trace id reused for everything by a peer cannot fill the store alone. */
  maxSpansPerTrace?: number;
}

/** Call-IDs remembered per trace (a B2BUA call has one per leg). */
const MAX_CALL_IDS_PER_TRACE = 8;
const DEFAULT_MAX_SPANS_PER_TRACE = 1000;

/**
 * The embedded trace store: recent traces in memory, bounded by traces and by
 * spans, oldest trace (first seen) evicted first; indexed by trace id and by
 * Call-ID. It serves the admin API when no tracing backend is configured, and
 * the demo.
 *
 *   add(spans) ─▶ traces: Map<traceId, StoredTrace>   (insertion order = age)
 *                   │ over maxTraces or maxSpans → evict the first entry
 *                 byCallId: Map<Call-ID, traceId[]>     (cleaned on eviction)
 */
export class SpanStore {
  private readonly traces = new Map<string, StoredTrace>();
  private readonly byCallId = new Map<string, string[]>();
  private spanCount = 0;
  private readonly maxTraces: number;
  private readonly maxSpans: number;
  private readonly maxSpansPerTrace: number;
  /** Spans refused (per-trace bound) and traces evicted since start. */
  droppedSpans = 0;
  evictedTraces = 0;

  constructor(limits: SpanStoreLimits) {
    this.maxTraces = Math.max(1, limits.maxTraces);
    this.maxSpans = Math.max(1, limits.maxSpans);
    this.maxSpansPerTrace = Math.max(
      1,
      Math.min(this.maxSpans, limits.maxSpansPerTrace ?? DEFAULT_MAX_SPANS_PER_TRACE),
    );
  }

  get size(): number {
    return this.traces.size;
  }

  get spans(): number {
    return this.spanCount;
  }

  /** The spans of one transaction (all of one trace). */
  add(spans: readonly FinishedSpan[], meta: TraceMeta | null): void {
    if (spans.length === 0) return;
    const traceId = spans[0].spanContext().traceId;
    let t = this.traces.get(traceId);
    if (t === undefined) {
      t = {
        traceId,
        spans: [],
        callIds: [],
        caller: null,
        callee: null,
        startMs: spans[0].startMs,
        endMs: spans[0].endMs,
        droppedSpans: 0,
      };
      this.traces.set(traceId, t);
    }
    for (const span of spans) {
      if (t.spans.length >= this.maxSpansPerTrace) {
        t.droppedSpans++;
        this.droppedSpans++;
        continue;
      }
      t.spans.push(span);
      this.spanCount++;
      if (span.startMs < t.startMs) t.startMs = span.startMs;
      if (span.endMs > t.endMs) t.endMs = span.endMs;
    }
    if (meta !== null) {
      if (t.caller === null) t.caller = meta.caller;
      if (t.callee === null) t.callee = meta.callee;
      if (!t.callIds.includes(meta.callId) && t.callIds.length < MAX_CALL_IDS_PER_TRACE) {
        t.callIds.push(meta.callId);
        const ids = this.byCallId.get(meta.callId);
        if (ids === undefined) this.byCallId.set(meta.callId, [traceId]);
        else if (!ids.includes(traceId)) ids.push(traceId);
      }
    }
    while (this.traces.size > this.maxTraces || this.spanCount > this.maxSpans) {
      const oldest = this.traces.values().next().value;
      // The trace just added is never evicted for its own spans: it holds at most maxSpansPerTrace ≤ maxSpans.
      if (oldest === undefined || oldest === t) break;
      this.evict(oldest);
    }
  }

  private evict(t: StoredTrace): void {
    this.traces.delete(t.traceId);
    this.spanCount -= t.spans.length;
    this.evictedTraces++;
    for (const c of t.callIds) {
      const ids = this.byCallId.get(c);
      if (ids === undefined) continue;
      const i = ids.indexOf(t.traceId);
      if (i !== -1) ids.splice(i, 1);
      if (ids.length === 0) this.byCallId.delete(c);
    }
  }

  get(traceId: string): StoredTrace | undefined {
    return this.traces.get(traceId);
  }

  /** Trace ids of a Call-ID (usually one; more when a hop started a new trace for the same dialog). */
  traceIdsOfCall(callId: string): readonly string[] {
    return this.byCallId.get(callId) ?? [];
  }

  /** The first trace of a Call-ID. */
  findByCallId(callId: string): string | undefined {
    return this.byCallId.get(callId)?.[0];
  }

  /** Newest (latest start) first. */
  recent(limit: number): StoredTrace[] {
    const all = [...this.traces.values()];
    all.sort((a, b) => b.startMs - a.startMs);
    return all.length > limit ? all.slice(0, limit) : all;
  }
}

const KIND_NAMES = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS_NAMES = ['UNSET', 'OK', 'ERROR'];

function hrNanos(t: HrTime): string {
  return (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
}

function hrMs(t: HrTime): number {
  return t[0] * 1000 + t[1] / 1e6;
}

/** The span a trace's waterfall hangs from: the earliest one whose parent is not in the trace. */
function rootOf(t: StoredTrace): FinishedSpan | undefined {
  const ids = new Set<string>();
  for (const s of t.spans) ids.add(s.spanContext().spanId);
  let root: FinishedSpan | undefined;
  for (const s of t.spans) {
    const p = s.parentSpanContext?.spanId;
    if (p !== undefined && ids.has(p)) continue;
    if (root === undefined || s.startMs < root.startMs) root = s;
  }
  return root ?? t.spans[0];
}

/**
 * The final status the caller got: the root request's, or when that was a 401/407 challenge, that of
 * the request sent again with credentials at the same hop (RFC 3261 §22.2), the next one after it.
 */
function callerStatus(root: FinishedSpan, servers: readonly FinishedSpan[]): unknown {
  let status = root.attributes[ATTR.SIP_STATUS] ?? null;
  for (const s of servers) {
    if (typeof status !== 'number' || !isCredentialChallenge(status)) break;
    if (
      s.startMs <= root.startMs ||
      s.attributes[ATTR.ROUTE] !== root.attributes[ATTR.ROUTE] ||
      s.attributes[ATTR.SIP_METHOD] !== root.attributes[ATTR.SIP_METHOD]
    )
      continue;
    status = s.attributes[ATTR.SIP_STATUS] ?? null;
  }
  return status;
}

/** A per-trace summary for `GET /api/traces`. */
export function summarize(t: StoredTrace): Record<string, unknown> {
  const root = rootOf(t);
  const hops: string[] = [];
  const services: string[] = [];
  let errors = 0;
  const servers = t.spans.filter((s) => s.kind === SpanKind.SERVER).sort((a, b) => a.startMs - b.startMs);
  for (const s of servers) {
    const route = s.attributes[ATTR.ROUTE];
    if (typeof route === 'string' && !hops.includes(route)) hops.push(route);
  }
  for (const s of t.spans) {
    if (s.status.code === SpanStatusCode.ERROR) errors++;
    const service = s.resource.attributes[RESOURCE.SERVICE_NAME];
    if (typeof service === 'string' && !services.includes(service)) services.push(service);
  }
  return {
    trace_id: t.traceId,
    start_ms: toEpochMs(t.startMs),
    duration_ms: t.endMs - t.startMs,
    spans: t.spans.length,
    dropped_spans: t.droppedSpans,
    services,
    hops,
    root: root?.name ?? null,
    root_method: root?.attributes[ATTR.SIP_METHOD] ?? null,
    status: root === undefined ? null : callerStatus(root, servers),
    errors,
    call_id: t.callIds[0] ?? null,
    call_ids: t.callIds,
    caller: t.caller,
    callee: t.callee,
  };
}

/** One span for `GET /api/traces/<id>`: epoch milliseconds and unix nanoseconds (as strings). */
export function spanJson(s: FinishedSpan): Record<string, unknown> {
  const ctx = s.spanContext();
  return {
    trace_id: ctx.traceId,
    span_id: ctx.spanId,
    parent_span_id: s.parentSpanContext?.spanId ?? null,
    trace_state: ctx.traceState?.serialize() ?? null,
    name: s.name,
    kind: KIND_NAMES[s.kind] ?? 'INTERNAL',
    start_ms: hrMs(s.startTime),
    end_ms: hrMs(s.endTime),
    start_unix_nano: hrNanos(s.startTime),
    end_unix_nano: hrNanos(s.endTime),
    duration_ms: s.endMs - s.startMs,
    attributes: s.attributes,
    events: s.events.map((e) => ({
      name: e.name,
      time_ms: hrMs(e.time),
      time_unix_nano: hrNanos(e.time),
      attributes: e.attributes ?? {},
    })),
    links: s.links.map((l) => ({
      trace_id: l.context.traceId,
      span_id: l.context.spanId,
      attributes: l.attributes ?? {},
    })),
    status: { code: STATUS_NAMES[s.status.code] ?? 'UNSET', message: s.status.message ?? null },
  };
}

// OTLP/JSON (opentelemetry-proto's JSON mapping, as @opentelemetry/otlp-transformer writes it):
// ids in hex, times as decimal strings of unix nanoseconds, kind = SpanKind + 1.

type AnyValue =
  | { stringValue: string }
  | { intValue: number }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: AnyValue[] } }
  | Record<string, never>;

function anyValue(v: unknown): AnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  return {};
}

function keyValues(attributes: Attributes | undefined): { key: string; value: AnyValue }[] {
  if (attributes === undefined) return [];
  return Object.keys(attributes).map((key) => ({ key, value: anyValue(attributes[key]) }));
}

/** OTLP span flags: the W3C flags plus "has is_remote" (0x100) and "is_remote" (0x200) of the parent. */
function spanFlags(traceFlags: number, parentIsRemote: boolean | undefined): number {
  let flags = (traceFlags & 0xff) | 0x100;
  if (parentIsRemote === true) flags |= 0x200;
  return flags;
}

function otlpSpan(s: FinishedSpan): Record<string, unknown> {
  const ctx = s.spanContext();
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: s.parentSpanContext?.spanId,
    traceState: ctx.traceState?.serialize(),
    name: s.name,
    kind: s.kind + 1,
    startTimeUnixNano: hrNanos(s.startTime),
    endTimeUnixNano: hrNanos(s.endTime),
    attributes: keyValues(s.attributes),
    droppedAttributesCount: s.droppedAttributesCount,
    events: s.events.map((e) => ({
      attributes: keyValues(e.attributes),
      name: e.name,
      timeUnixNano: hrNanos(e.time),
      droppedAttributesCount: e.droppedAttributesCount ?? 0,
    })),
    droppedEventsCount: s.droppedEventsCount,
    status: { code: s.status.code, message: s.status.message },
    links: s.links.map((l) => ({
      attributes: keyValues(l.attributes),
      spanId: l.context.spanId,
      traceId: l.context.traceId,
      traceState: l.context.traceState?.serialize(),
      droppedAttributesCount: l.droppedAttributesCount ?? 0,
      flags: spanFlags(l.context.traceFlags, l.context.isRemote),
    })),
    droppedLinksCount: s.droppedLinksCount,
    flags: spanFlags(ctx.traceFlags, s.parentSpanContext?.isRemote),
  };
}

/**
 * One trace as an OTLP/JSON ExportTraceServiceRequest (`resourceSpans` →
 * `scopeSpans` → `spans`), the body an OTLP/HTTP JSON exporter would POST:
 * it can be replayed to a collector's /v1/traces or loaded by tools that read OTLP.
 */
export function otlpJson(t: StoredTrace): Record<string, unknown> {
  const byResource = new Map<Resource, Map<string, FinishedSpan[]>>();
  for (const s of t.spans) {
    let scopes = byResource.get(s.resource);
    if (scopes === undefined) {
      scopes = new Map();
      byResource.set(s.resource, scopes);
    }
    const scope = s.instrumentationScope;
    const key = `${scope.name}@${scope.version ?? ''}:${scope.schemaUrl ?? ''}`;
    const list = scopes.get(key);
    if (list === undefined) scopes.set(key, [s]);
    else list.push(s);
  }
  const resourceSpans: Record<string, unknown>[] = [];
  for (const [resource, scopes] of byResource) {
    const scopeSpans: Record<string, unknown>[] = [];
    for (const spans of scopes.values()) {
      const scope = spans[0].instrumentationScope;
      scopeSpans.push({
        scope: { name: scope.name, version: scope.version },
        spans: spans.map(otlpSpan),
        schemaUrl: scope.schemaUrl,
      });
    }
    resourceSpans.push({
      resource: { attributes: keyValues(resource.attributes), droppedAttributesCount: 0 },
      scopeSpans,
      schemaUrl: resource.schemaUrl,
    });
  }
  return { resourceSpans };
}
