/**
 * The embedded span store and its admin API: bounded by traces, spans and
 * spans per trace (oldest trace evicted first), indexed by trace id and
 * Call-ID, summaries, span JSON and OTLP/JSON; served over a real HTTP listener.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { HttpListener } from '../../../src/admin/http-listener.ts';
import { buildSpans, type FinishedSpan } from '../../../src/sinks/tracing/span-builder.ts';
import { otlpJson, SpanStore, spanJson, summarize } from '../../../src/sinks/tracing/span-store.ts';
import { installTraceApi } from '../../../src/sinks/tracing/trace-api.ts';
import { decodeOtlpJson } from '../../support/otlp-receiver.ts';
import { transactionRecord } from '../../support/records.ts';

const resource = resourceFromAttributes({ 'service.name': 'sipspan', 'sipspan.node': 'n1' });
const scope = { name: 'sipspan', version: '0.1.0' };
let seq = 0;

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** The spans of one answered transaction of a trace at a route. */
function spansOf(
  traceN: number,
  opts: { method?: string; route?: string; at?: number; parent?: string | null; status?: number } = {},
): FinishedSpan[] {
  const method = opts.method ?? 'INVITE';
  const at = opts.at ?? 1000 + traceN;
  const t = transactionRecord({
    route: { index: 0, name: opts.route ?? 'sip-gateway' },
    method,
    callId: `call-${traceN}`,
    branch: `b${seq}`,
    downstream: '127.0.0.1:5060',
    requestIn: at,
  });
  seq++;
  t.traceId = hex(traceN + 1, 32);
  t.serverSpanId = hex(seq * 2, 16);
  t.clientSpanId = hex(seq * 2 + 1, 16);
  t.parentSpanId = opts.parent ?? null;
  t.requestOut = at + 0.1;
  t.finalResponseIn = at + 50;
  t.finalResponseOut = at + 50.1;
  t.endedAt = at + 50.1;
  t.status = opts.status ?? 200;
  t.outcome = 'completed';
  return buildSpans(t, resource, scope, null);
}

const meta = (n: number) => ({ callId: `call-${n}`, caller: 'alice', callee: 'bob' });

describe('span store', () => {
  test('bounded by traces: the oldest trace goes first, and its Call-ID with it', () => {
    const store = new SpanStore({ maxTraces: 3, maxSpans: 1000 });
    for (let n = 0; n < 5; n++) store.add(spansOf(n), meta(n));
    assert.equal(store.size, 3);
    assert.equal(store.spans, 6);
    assert.equal(store.evictedTraces, 2);
    assert.equal(store.get(hex(1, 32)), undefined);
    assert.equal(store.findByCallId('call-0'), undefined);
    assert.deepEqual(store.traceIdsOfCall('call-4'), [hex(5, 32)]);
  });

  test('bounded by spans across traces, and per trace', () => {
    const store = new SpanStore({ maxTraces: 100, maxSpans: 7, maxSpansPerTrace: 4 });
    for (let n = 0; n < 3; n++) store.add(spansOf(n), meta(n));
    assert.equal(store.spans, 6);
    store.add(spansOf(3), meta(3));
    assert.equal(store.spans, 6, 'the oldest trace was evicted to stay within 7 spans');
    assert.equal(store.get(hex(1, 32)), undefined);
    // One trace id reused for everything cannot grow past maxSpansPerTrace.
    for (let i = 0; i < 5; i++) store.add(spansOf(9, { method: 'OPTIONS' }), meta(9));
    const t = store.get(hex(10, 32));
    assert.equal(t?.spans.length, 4);
    assert.equal(t?.droppedSpans, 6);
    assert.ok(store.spans <= 7);
  });

  test('one Call-ID can name several traces; one trace several Call-IDs (B2BUA legs)', () => {
    const store = new SpanStore({ maxTraces: 10, maxSpans: 100 });
    store.add(spansOf(0), meta(0));
    store.add(spansOf(1), meta(0));
    store.add(spansOf(1, { route: 'sip-signaling' }), { callId: 'leg-b', caller: null, callee: null });
    assert.deepEqual(store.traceIdsOfCall('call-0'), [hex(1, 32), hex(2, 32)]);
    assert.deepEqual(store.get(hex(2, 32))?.callIds, ['call-0', 'leg-b']);
  });

  test('recent traces come newest (latest start) first', () => {
    const store = new SpanStore({ maxTraces: 10, maxSpans: 100 });
    store.add(spansOf(0, { at: 3000 }), meta(0));
    store.add(spansOf(1, { at: 1000 }), meta(1));
    store.add(spansOf(2, { at: 2000 }), meta(2));
    assert.deepEqual(
      store.recent(2).map((t) => t.traceId),
      [hex(1, 32), hex(3, 32)],
    );
  });

  test('summary: root method, final status, hops in order, duration, call and users', () => {
    const store = new SpanStore({ maxTraces: 10, maxSpans: 100 });
    const first = spansOf(0, { at: 1000 });
    const clientOfFirst = first[1].spanContext().spanId;
    store.add(spansOf(0, { at: 1001, route: 'sip-signaling', parent: clientOfFirst, status: 486 }), meta(0));
    store.add(first, meta(0));
    const s = summarize(store.get(hex(1, 32))!);
    assert.equal(s.root, 'INVITE');
    assert.equal(s.root_method, 'INVITE');
    assert.equal(s.status, 200, 'the status of the root span');
    assert.deepEqual(s.hops, ['sip-gateway', 'sip-signaling']);
    assert.deepEqual(s.services, ['sipspan']);
    assert.equal(s.spans, 4);
    assert.equal(s.call_id, 'call-0');
    assert.equal(s.caller, 'alice');
    assert.equal(s.callee, 'bob');
    assert.ok(Math.abs((s.duration_ms as number) - 51.1) < 1e-6, 'first start to last end');
    assert.ok(Math.abs((s.start_ms as number) - (performance.timeOrigin + 1000)) < 1e-3);
  });

  test('summary: after a 407 the status is that of the INVITE sent again with credentials, not of a later re-INVITE', () => {
    const store = new SpanStore({ maxTraces: 10, maxSpans: 100 });
    const challenged = spansOf(4, { at: 1000, status: 407 });
    const root = challenged[0].spanContext().spanId;
    store.add(challenged, meta(4));
    store.add(spansOf(4, { at: 1100, parent: root, status: 486 }), meta(4));
    store.add(spansOf(4, { at: 1200, parent: root, status: 200 }), meta(4));
    assert.equal(summarize(store.get(hex(5, 32))!).status, 486);
  });

  test('span JSON: ids, parent, kind, epoch ms and unix ns, attributes, status names', () => {
    const [server, client] = spansOf(0, { status: 503 });
    const j = spanJson(client);
    assert.equal(j.span_id, client.spanContext().spanId);
    assert.equal(j.parent_span_id, server.spanContext().spanId);
    assert.equal(j.kind, 'CLIENT');
    assert.deepEqual(j.status, { code: 'ERROR', message: '503' });
    const startNs = BigInt(j.start_unix_nano as string);
    assert.ok(Math.abs(Number(startNs / 1000n) / 1000 - (j.start_ms as number)) < 0.002);
    assert.equal(spanJson(server).parent_span_id, null);
  });

  test('OTLP/JSON rendering decodes back to the same spans', () => {
    const store = new SpanStore({ maxTraces: 10, maxSpans: 100 });
    const spans = spansOf(0);
    store.add(spans, meta(0));
    const doc = JSON.parse(JSON.stringify(otlpJson(store.get(hex(1, 32))!)));
    assert.deepEqual(doc.resourceSpans[0].scopeSpans[0].scope, { name: 'sipspan', version: '0.1.0' });
    const decoded = decodeOtlpJson(doc);
    assert.equal(decoded.length, 2);
    assert.equal(decoded[0].parentSpanId, '');
    assert.equal(decoded[1].parentSpanId, spans[0].spanContext().spanId);
    assert.equal(decoded[0].kind, 2);
    assert.equal(decoded[1].kind, 3);
    assert.equal(decoded[1].resource['sipspan.node'], 'n1');
    assert.equal(decoded[0].attributes['sip.response.status_code'], 200);
    assert.deepEqual(decoded[1].links, []);
  });
});

describe('trace API on the admin listener', () => {
  const admin = new HttpListener('127.0.0.1', 0);
  const store = new SpanStore({ maxTraces: 100, maxSpans: 1000 });
  let base = '';

  before(async () => {
    for (let n = 0; n < 60; n++) store.add(spansOf(n, { at: 10_000 + n }), meta(n));
    installTraceApi(admin, store, []);
    await admin.listen();
    base = `http://127.0.0.1:${admin.port}`;
  });
  after(() => admin.close());

  const get = async (path: string, method = 'GET') => {
    const r = await fetch(`${base}${path}`, { method });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  test('GET /api/traces: newest first, limit honoured, a bad limit is a 400 saying what is expected', async () => {
    const { status, body } = await get('/api/traces?limit=5');
    assert.equal(status, 200);
    const traces = body.traces as { trace_id: string }[];
    assert.equal(traces.length, 5);
    assert.equal(traces[0].trace_id, hex(60, 32));
    assert.equal(body.stored_traces, 60);
    assert.equal(((await get('/api/traces?limit=')).body.traces as unknown[]).length, 50);
    for (const bad of ['abc', '-3', '0', '2.5', '1001']) {
      const r = await get(`/api/traces?limit=${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.error, `limit: expected a whole number from 1 to 1000, got "${bad}"`);
    }
  });

  test('GET /api/traces/<id>, /otlp, unknown and malformed ids, other methods', async () => {
    const id = hex(7, 32);
    const one = await get(`/api/traces/${id}`);
    assert.equal(one.status, 200);
    assert.equal((one.body.spans as unknown[]).length, 2);
    assert.equal(one.body.trace_id, id);
    const otlp = await get(`/api/traces/${id}/otlp`);
    assert.equal(otlp.status, 200);
    assert.equal(decodeOtlpJson(otlp.body).length, 2);
    assert.equal((await get(`/api/traces/${hex(999, 32)}`)).status, 404);
    assert.equal((await get('/api/traces/not-a-trace')).status, 400);
    assert.equal((await get(`/api/traces/${id}/zipkin`)).status, 400);
    const post = await fetch(`${base}/api/traces`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('GET /api/calls?call_id=X gives the trace ids of a Call-ID', async () => {
    const { status, body } = await get('/api/calls?call_id=call-7');
    assert.equal(status, 200);
    assert.deepEqual(body.trace_ids, [hex(8, 32)]);
    assert.equal((await get('/api/calls?call_id=nope')).status, 404);
    assert.equal((await get('/api/calls')).status, 400);
  });

  test('with the store off, the paths say where spans go', async () => {
    const off = new HttpListener('127.0.0.1', 0);
    installTraceApi(off, null, ['otlp/http/protobuf']);
    await off.listen();
    try {
      const r = await fetch(`http://127.0.0.1:${off.port}/api/traces`);
      assert.equal(r.status, 404);
      assert.deepEqual(((await r.json()) as { exporters: string[] }).exporters, ['otlp/http/protobuf']);
    } finally {
      await off.close();
    }
  });
});
