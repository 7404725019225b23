/**
 * One trace per call across two hops, exported to real receivers: SIPp UAC →
 * sip-gateway route → forwarding element → sip-signaling route → UAS that
 * answers after a known delay. Everything real: SIPp, sockets, the app, the
 * exporters, HTTP receivers decoding what arrives.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Sipspan } from '../../../src/app.ts';
import { samplerFromEnv } from '../../../src/observe/sampler.ts';
import { processStats } from '../../../src/sinks/process-stats.ts';
import type { SpanStore } from '../../../src/sinks/tracing/span-store.ts';
import { startTracingSink, type TracingSink } from '../../../src/sinks/tracing/tracing-sink.ts';
import { ForwardStandin } from '../../../src/standins/forward-standin.ts';
import { UasStandin } from '../../../src/standins/uas-standin.ts';
import { type ReceivedSpan, TraceReceiver } from '../../support/otlp-receiver.ts';
import { freePort, runSippUac, type SippResult } from '../../support/sipp.ts';
import { twoRouteConfig } from '../../support/two-routes.ts';

const ANSWER_MS = 150;
const SERVER = 2;
const CLIENT = 3;

interface ChainRun {
  result: SippResult;
  store: SpanStore | null;
  sink: TracingSink;
  uasReceived: Buffer[];
  /** The UAS's own measure of how long each call waited for its 200, ms. */
  uasAnswerDelays: number[];
  /** How long app.stop() took, ms. */
  stopMs: number;
}

/**
 * Run `calls` SIPp calls through the two routes with the tracing sink built
 * from `env`; `during` runs after the calls and the flush, before the stop
 * (the admin listener is still up).
 */
async function runChain(
  env: NodeJS.ProcessEnv,
  calls: number,
  during?: (app: Sipspan, sink: TracingSink) => Promise<void>,
): Promise<ChainRun> {
  const uas = await new UasStandin({
    host: '127.0.0.1',
    port: await freePort(),
    ringMs: 40,
    answerMs: ANSWER_MS,
    keepReceived: true,
  }).start();
  const gatewayPort = await freePort();
  const signalingPort = await freePort();
  const forward = await new ForwardStandin({
    host: '127.0.0.1',
    port: await freePort(),
    next: { transport: 'udp', host: '127.0.0.1', port: signalingPort },
  }).start();
  const sinkEnv = { OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_BSP_EXPORT_TIMEOUT: '2000', ...env };
  let sink: TracingSink | null = null;
  const app = await Sipspan.start(
    twoRouteConfig({
      gateway: gatewayPort,
      gatewayUpstream: forward.port,
      signaling: signalingPort,
      signalingUpstream: uas.port,
    }),
    {
      sampler: samplerFromEnv(sinkEnv),
      sinks: (a) => {
        sink = startTracingSink(a, { env: sinkEnv, store: true });
        return [sink];
      },
    },
  );
  const stopAll = async (): Promise<number> => {
    const t0 = performance.now();
    await app.stop(1000);
    const stopMs = performance.now() - t0;
    await forward.stop();
    await uas.stop();
    return stopMs;
  };
  let result: SippResult;
  try {
    result = await runSippUac({
      target: `127.0.0.1:${gatewayPort}`,
      port: await freePort(),
      calls,
      rate: 20,
      timeoutS: 30,
    });
    // The last BYE's 200 reaches SIPp a moment before sipspan's transaction ends.
    await new Promise((r) => setTimeout(r, 100));
    await sink!.flush(3000);
    if (during !== undefined) await during(app, sink!);
  } catch (err) {
    await stopAll();
    throw err;
  }
  const stopMs = await stopAll();
  return {
    result,
    store: sink!.store,
    sink: sink!,
    uasReceived: uas.endpoint.received!,
    uasAnswerDelays: uas.answerDelaysMs,
    stopMs,
  };
}

function byTrace(spans: ReceivedSpan[]): Map<string, ReceivedSpan[]> {
  const m = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    const list = m.get(s.traceId);
    if (list === undefined) m.set(s.traceId, [s]);
    else list.push(s);
  }
  return m;
}

/** The nth (by start) span of a name and kind; hop order is start order. */
function one(spans: ReceivedSpan[], name: string, kind: number, nth = 0): ReceivedSpan {
  const found = spans
    .filter((s) => s.name === name && s.kind === kind)
    .sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
  assert.ok(found.length > nth, `no ${name} span of kind ${kind} (#${nth})`);
  return found[nth];
}

function header(text: string, name: string): string | undefined {
  return new RegExp(`\\r\\n${name}:[ \\t]*([^\\r\\n]+)`, 'i').exec(text)?.[1]?.trim();
}

interface TraceSummaryJson {
  trace_id: string;
  start_ms: number;
  hops: string[];
  services: string[];
  root_method: string;
  status: number;
  call_id: string;
  caller: string | null;
  callee: string | null;
}
interface TracesJson {
  traces: TraceSummaryJson[];
}
interface TraceJson {
  spans: { span_id: string }[];
}
interface CallJson {
  trace_ids: string[];
}
interface OtlpJsonSpan {
  traceId: string;
  spanId: string;
}
interface OtlpJsonDoc {
  resourceSpans: { scopeSpans: { spans: OtlpJsonSpan[] }[] }[];
}

async function getJson<T>(app: Sipspan, path: string): Promise<{ status: number; body: T }> {
  const r = await fetch(`http://127.0.0.1:${app.admin.port}${path}`);
  return { status: r.status, body: (await r.json()) as T };
}

describe('tracing sink, end to end', { concurrency: false }, () => {
  test('OTLP/HTTP protobuf: one trace per call, SERVER ⊃ CLIENT per hop, hops nested, ACK and BYE in the trace, the UAS sees the trace', async () => {
    const receiver = await new TraceReceiver().start();
    const calls = 20;
    const apiChecks: (() => void)[] = [];
    try {
      const { result, uasReceived, uasAnswerDelays } = await runChain(
        {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_SERVICE_NAME: 'sipspan-e2e',
        },
        calls,
        async (app) => {
          // The admin API, while the app runs: recent traces, one trace, by Call-ID.
          const recent = await getJson<TracesJson>(app, `/api/traces?limit=${calls * 2}`);
          const traced = new Map<string, TraceSummaryJson>();
          for (const t of recent.body.traces) traced.set(t.trace_id, t);
          const oneTrace = await getJson<TraceJson>(app, `/api/traces/${recent.body.traces[0].trace_id}`);
          const byCall = await getJson<CallJson>(
            app,
            `/api/calls?call_id=${encodeURIComponent(recent.body.traces[0].call_id)}`,
          );
          apiChecks.push(() => {
            assert.equal(recent.status, 200);
            assert.equal(traced.size, calls);
            for (const t of traced.values()) {
              assert.deepEqual(t.hops, ['sip-gateway', 'sip-signaling']);
              assert.equal(t.root_method, 'INVITE');
              assert.equal(t.status, 200);
              assert.equal(t.caller, 'sipp');
              assert.equal(t.callee, 'service');
              assert.deepEqual(t.services, ['sipspan-e2e']);
            }
            const starts = recent.body.traces.map((t: { start_ms: number }) => t.start_ms);
            assert.deepEqual(
              starts,
              [...starts].sort((a, b) => b - a),
              'newest first',
            );
            const id = recent.body.traces[0].trace_id;
            const exported = receiver.spans.filter((s) => s.traceId === id).map((s) => s.spanId);
            assert.deepEqual(
              oneTrace.body.spans.map((s: { span_id: string }) => s.span_id).sort(),
              exported.sort(),
              'the store holds exactly the spans exported',
            );
            assert.deepEqual(byCall.body.trace_ids, [id]);
          });
        },
      );
      assert.equal(result.successful, calls, result.stderr);
      assert.equal(result.failed, 0);
      assert.ok(receiver.requests.every((r) => r.contentType === 'application/x-protobuf'));
      const traces = byTrace(receiver.spans);
      assert.equal(traces.size, calls, 'one trace per call');
      for (const check of apiChecks) check();

      const clientDurations: number[] = [];
      const clientSpanIds = new Set<string>();
      for (const spans of traces.values()) {
        const aServer = one(spans, 'INVITE', SERVER, 0);
        const aClient = one(spans, 'INVITE sip-gateway', CLIENT);
        const bServer = one(spans, 'INVITE', SERVER, 1);
        const bClient = one(spans, 'INVITE sip-signaling', CLIENT);
        assert.equal(aServer.parentSpanId, '', 'the first hop starts the trace');
        assert.equal(aClient.parentSpanId, aServer.spanId);
        assert.equal(
          bServer.parentSpanId,
          aClient.spanId,
          "the second hop's SERVER span is a child of the first hop's CLIENT span",
        );
        assert.equal(bClient.parentSpanId, bServer.spanId);
        for (const [outer, inner] of [
          [aServer, aClient],
          [aClient, bServer],
          [bServer, bClient],
        ]) {
          assert.ok(
            outer.startNs <= inner.startNs && inner.endNs <= outer.endNs,
            `${outer.name} does not contain ${inner.name}`,
          );
        }
        // Attributes and resource as they arrive over the wire.
        assert.equal(aServer.attributes['sip.request.method'], 'INVITE');
        assert.equal(aServer.attributes['sip.response.status_code'], 200);
        assert.equal(aServer.attributes['network.protocol.name'], 'sip');
        assert.equal(aServer.attributes['sipspan.route'], 'sip-gateway');
        assert.equal(aServer.attributes['sipspan.trace.origin'], 'new');
        assert.equal(bServer.attributes['sipspan.trace.origin'], 'inbound');
        assert.equal(aServer.attributes['sip.call_id'], bServer.attributes['sip.call_id']);
        assert.equal(bClient.attributes['server.port'], Number(bClient.attributes['network.peer.port']));
        assert.deepEqual(
          bClient.events.map((e) => [e.name, e.attributes['sip.response.status_code']]),
          [
            ['sip.provisional_response', 100],
            ['sip.provisional_response', 180],
          ],
        );
        assert.equal(aServer.resource['service.name'], 'sipspan-e2e');
        assert.equal(aServer.resource['sipspan.node'], 'test-node');
        assert.match(String(aServer.resource['service.instance.id']), /^[0-9a-f-]{36}$/);
        assert.equal(aServer.status.code, 0);
        // ACK and BYE: both hops, in the call's trace; the second hop nests in the first.
        for (const m of ['ACK', 'BYE']) {
          const first = one(spans, m, SERVER, 0);
          const second = one(spans, m, SERVER, 1);
          const firstClient = one(spans, `${m} sip-gateway`, CLIENT);
          assert.equal(second.parentSpanId, firstClient.spanId, `${m} at the second hop`);
          assert.equal(first.parentSpanId, aServer.spanId, `${m} at the first hop hangs under the call`);
        }
        assert.equal(spans.length, 12, '3 transactions × 2 hops × SERVER + CLIENT');
        for (const s of spans)
          if (s.kind === CLIENT && s.name.endsWith('sip-signaling')) clientSpanIds.add(s.spanId);
        clientDurations.push(Number(bClient.endNs - bClient.startNs) / 1e6);
        // Each hop's own time is the difference of its spans.
        assert.ok(aServer.endNs - aServer.startNs >= aClient.endNs - aClient.startNs);
      }
      // The UAS answers after ANSWER_MS, and later when its timer is late on the busy event loop it
      // shares with sipspan: the CLIENT span of the hop in front of it matches the delay the UAS
      // measured within 2 ms.
      const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
      const answered = median(uasAnswerDelays);
      assert.ok(answered >= ANSWER_MS - 0.5, `the UAS answered after ${answered.toFixed(2)} ms`);
      assert.ok(
        Math.abs(median(clientDurations) - answered) < 2,
        `CLIENT span median ${median(clientDurations).toFixed(2)} ms vs the UAS's answer delay ${answered.toFixed(2)} ms`,
      );
      // The UAS got X-Trace-Id = the trace id, and one traceparent naming the CLIENT span of the hop before it.
      const traceOfCall = new Map<string, string>();
      for (const [id, spans] of traces) traceOfCall.set(String(spans[0].attributes['sip.call_id']), id);
      let checked = 0;
      for (const raw of uasReceived) {
        const text = raw.toString('latin1');
        if (text.startsWith('SIP/2.0')) continue;
        const callId = header(text, 'Call-ID')!;
        assert.equal(header(text, 'X-Trace-Id'), traceOfCall.get(callId), 'X-Trace-Id is the trace id');
        assert.equal((text.match(/\r\ntraceparent:/gi) ?? []).length, 1, 'exactly one traceparent');
        const tp = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(header(text, 'traceparent') ?? '');
        assert.ok(tp, 'a sampled W3C traceparent');
        assert.equal(tp[1], traceOfCall.get(callId));
        assert.ok(clientSpanIds.has(tp[2]), 'traceparent names the CLIENT span of the last hop');
        checked++;
      }
      assert.equal(checked, calls * 3, 'INVITE, ACK and BYE of every call');
    } finally {
      await receiver.stop();
    }
  });

  test('OTLP/HTTP JSON: the same shape, and /api/traces/<id>/otlp equals what the exporter sent', async () => {
    const receiver = await new TraceReceiver().start();
    try {
      const otlpDocs: OtlpJsonDoc[] = [];
      const { result } = await runChain(
        {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
        },
        5,
        async (app) => {
          const recent = await getJson<TracesJson>(app, '/api/traces');
          for (const t of recent.body.traces)
            otlpDocs.push((await getJson<OtlpJsonDoc>(app, `/api/traces/${t.trace_id}/otlp`)).body);
        },
      );
      assert.equal(result.successful, 5, result.stderr);
      assert.ok(receiver.requests.every((r) => r.contentType === 'application/json'));
      const traces = byTrace(receiver.spans);
      assert.equal(traces.size, 5);
      for (const spans of traces.values()) {
        const aClient = one(spans, 'INVITE sip-gateway', CLIENT);
        assert.equal(one(spans, 'INVITE', SERVER, 1).parentSpanId, aClient.spanId);
      }
      assert.equal(otlpDocs.length, 5);
      const bySpanId = (a: { spanId: string }, b: { spanId: string }) => (a.spanId < b.spanId ? -1 : 1);
      for (const doc of otlpDocs) {
        const rendered = doc.resourceSpans[0].scopeSpans[0].spans;
        const traceId = rendered[0].traceId;
        const sent = receiver.rawJsonSpans.filter((s) => s.traceId === traceId);
        assert.deepEqual([...rendered].sort(bySpanId), [...sent].sort(bySpanId));
      }
    } finally {
      await receiver.stop();
    }
  });

  test('Zipkin: the same shape, the service name from the resource', async () => {
    const receiver = await new TraceReceiver().start();
    try {
      const { result } = await runChain(
        {
          OTEL_TRACES_EXPORTER: 'zipkin',
          OTEL_EXPORTER_ZIPKIN_ENDPOINT: `${receiver.url}/api/v2/spans`,
        },
        5,
      );
      assert.equal(result.successful, 5, result.stderr);
      const traces = byTrace(receiver.spans);
      assert.equal(traces.size, 5);
      for (const spans of traces.values()) {
        const aClient = one(spans, 'INVITE sip-gateway', CLIENT);
        assert.equal(one(spans, 'INVITE', SERVER, 1).parentSpanId, aClient.spanId);
        assert.equal(aClient.resource['service.name'], 'sipspan');
        assert.equal(aClient.attributes['sipspan.route'], 'sip-gateway');
      }
    } finally {
      await receiver.stop();
    }
  });

  test('with the receiver down, calls complete with 0 failures, every lost span is counted, the stop keeps its deadline', async () => {
    const closed = await freePort();
    const before = { ...processStats };
    const { result, store, stopMs } = await runChain(
      {
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closed}`,
        // The exporter retries a refused connection until its own timeout.
        OTEL_EXPORTER_OTLP_TIMEOUT: '300',
      },
      10,
    );
    assert.equal(result.successful, 10, result.stderr);
    assert.equal(result.failed, 0);
    assert.ok(processStats.spanExportFailures > before.spanExportFailures, 'no export failure was counted');
    assert.equal(processStats.spansExported, before.spansExported);
    assert.equal(
      processStats.spansDropped - before.spansDropped,
      store!.spans,
      'every span built (the store has them all) was counted as dropped',
    );
    assert.ok(stopMs < 2000, `stop took ${stopMs.toFixed(0)} ms`);
  });

  test('OTEL_TRACES_SAMPLER=always_off: no spans anywhere, calls unaffected', async () => {
    const receiver = await new TraceReceiver().start();
    try {
      const before = { ...processStats };
      const { result, store } = await runChain(
        {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_TRACES_SAMPLER: 'always_off',
        },
        5,
      );
      assert.equal(result.successful, 5, result.stderr);
      assert.equal(result.failed, 0);
      assert.equal(receiver.spans.length, 0);
      assert.equal(store!.size, 0);
      assert.equal(processStats.spansDropped, before.spansDropped);
      assert.equal(processStats.spansExported, before.spansExported);
    } finally {
      await receiver.stop();
    }
  });

  test('no exporter configured: spans only in the embedded store', async () => {
    const { result, store, sink } = await runChain({}, 3);
    assert.equal(result.successful, 3, result.stderr);
    assert.deepEqual(sink.exporters, []);
    assert.equal(store!.size, 3);
    assert.equal(store!.spans, 3 * 12);
  });
});
