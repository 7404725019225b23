import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HttpListener, sendJson } from '../../admin/http-listener.ts';
import { otlpJson, type SpanStore, spanJson, summarize } from './span-store.ts';

const TRACE_ID = /^[0-9a-f]{32}$/;
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;

/** `limit`: absent is the default; anything but a whole number from 1 to MAX_LIMIT is a bad request. */
function limitOf(url: URL): number | string {
  const text = url.searchParams.get('limit');
  if (text === null || text.trim() === '') return DEFAULT_LIMIT;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
    return `limit: expected a whole number from 1 to ${MAX_LIMIT}, got "${text}"`;
  return n;
}

/**
 * The span store on the admin listener:
 *
 *   GET /api/traces?limit=N          recent traces, newest first (summaries)
 *   GET /api/traces/<trace_id>       every span of one trace (ids, parent, kind, times, attributes, events, links, status)
 *   GET /api/traces/<trace_id>/otlp  the same trace as an OTLP/JSON ExportTraceServiceRequest
 *   GET /api/calls?call_id=X         the trace ids of a Call-ID
 *
 * With the store off (an exporter configured, no `store` option) the same
 * paths answer 404 and say where the spans go; with tracing off
 * (`exporters` null: OTEL_SDK_DISABLED) they say that.
 */
export function installTraceApi(
  admin: HttpListener,
  store: SpanStore | null,
  exporters: string[] | null,
): void {
  if (store === null) {
    const body =
      exporters === null
        ? { error: 'tracing is off: OTEL_SDK_DISABLED=true' }
        : { error: 'the span store is off: spans are exported', exporters };
    const off = (_req: IncomingMessage, res: ServerResponse) => sendJson(res, 404, body);
    admin.handle('/api/traces', off);
    admin.handle('/api/traces/', off);
    admin.handle('/api/calls', off);
    return;
  }

  admin.handle('/api/traces', (_req, res, url) => {
    const limit = limitOf(url);
    if (typeof limit === 'string') {
      sendJson(res, 400, { error: limit });
      return;
    }
    sendJson(res, 200, {
      traces: store.recent(limit).map(summarize),
      stored_traces: store.size,
      stored_spans: store.spans,
      evicted_traces: store.evictedTraces,
      dropped_spans: store.droppedSpans,
    });
  });

  admin.handle('/api/traces/', (_req, res, url) => {
    const rest = url.pathname.slice('/api/traces/'.length).split('/');
    const traceId = rest[0].toLowerCase();
    const otlp = rest.length === 2 && rest[1] === 'otlp';
    if (!TRACE_ID.test(traceId) || (rest.length > 1 && !otlp)) {
      sendJson(res, 400, { error: 'give /api/traces/<32 hex trace id>[/otlp]' });
      return;
    }
    const t = store.get(traceId);
    if (t === undefined) {
      sendJson(res, 404, { error: 'trace not found (evicted, unsampled, or unknown)', trace_id: traceId });
      return;
    }
    if (otlp) sendJson(res, 200, otlpJson(t));
    else sendJson(res, 200, { ...summarize(t), spans: t.spans.map(spanJson) });
  });

  admin.handle('/api/calls', (_req, res, url) => {
    const callId = url.searchParams.get('call_id');
    if (callId === null || callId === '') {
      sendJson(res, 400, { error: 'give ?call_id=' });
      return;
    }
    const traceIds = store.traceIdsOfCall(callId);
    sendJson(res, traceIds.length === 0 ? 404 : 200, { call_id: callId, trace_ids: traceIds });
  });
}
