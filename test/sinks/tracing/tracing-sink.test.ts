/**
 * One trace per call across two hops, exported to real receivers: SIPp UAC →
 * sip-gateway route → forwarding element → sip-signaling route → UAS that
 * answers after a known delay.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { samplerFromEnv } from '../../../src/observe/sampler.ts';
import { processStats } from '../../../src/sinks/process-stats.ts';
import { startTracingSink } from '../../../src/sinks/tracing/tracing-sink.ts';
import { ForwardStandin } from '../../../src/standins/forward-standin.ts';
import { UasStandin } from '../../../src/standins/uas-standin.ts';
import { type ReceivedSpan, TraceReceiver } from '../../support/otlp-receiver.ts';
import { freePort, runSippUac } from '../../support/sipp.ts';

const ANSWER_MS = 150;
const SERVER = 2;
const CLIENT = 3;

async function runChain(env: NodeJS.ProcessEnv, calls: number) {
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
  let sink: ReturnType<typeof startTracingSink> | null = null;
  const app = await Sipspan.start(
    buildConfig({
      node: 'test',
      admin: '127.0.0.1:0',
      routes: [
        {
          name: 'sip-gateway',
          listen: [`udp://127.0.0.1:${gatewayPort}`],
          upstream: `udp://127.0.0.1:${forward.port}`,
        },
        {
          name: 'sip-signaling',
          listen: [`udp://127.0.0.1:${signalingPort}`],
          upstream: `udp://127.0.0.1:${uas.port}`,
        },
      ],
    }),
    {
      sampler: samplerFromEnv(env),
      sinks: (a) => {
        sink = startTracingSink(a, {
          env: { OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_BSP_EXPORT_TIMEOUT: '2000', ...env },
          store: true,
        });
        return [sink];
      },
    },
  );
  try {
    const r = await runSippUac({
      target: `127.0.0.1:${gatewayPort}`,
      port: await freePort(),
      calls,
      rate: 20,
      timeoutS: 30,
    });
    await new Promise((res) => setTimeout(res, 100));
    await sink!.flush(3000);
    return { result: r, store: sink!.store!, uasReceived: uas.endpoint.received! };
  } finally {
    await app.stop(1000);
    await forward.stop();
    await uas.stop();
  }
}

function byTrace(spans: ReceivedSpan[]): Map<string, ReceivedSpan[]> {
  const m = new Map<string, ReceivedSpan[]>();
  for (const s of spans) m.set(s.traceId, [...(m.get(s.traceId) ?? []), s]);
  return m;
}

function one(spans: ReceivedSpan[], name: string, kind: number, nth = 0): ReceivedSpan {
  const found = spans
    .filter((s) => s.name === name && s.kind === kind)
    .sort((a, b) => Number(a.startNs - b.startNs));
  assert.ok(found.length > nth, `no ${name} span of kind ${kind} (#${nth})`);
  return found[nth];
}

describe('tracing sink', { concurrency: false }, () => {
  test('OTLP/HTTP protobuf: one trace per call, SERVER ⊃ CLIENT per hop, the second hop nested in the first, ACK and BYE in the trace', async () => {
    const receiver = await new TraceReceiver().start();
    try {
      const calls = 20;
      const { result, store, uasReceived } = await runChain(
        {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
        },
        calls,
      );
      assert.equal(result.successful, calls, result.stderr);
      assert.ok([...receiver.contentTypes].includes('/v1/traces application/x-protobuf'));
      const traces = byTrace(receiver.spans);
      assert.equal(traces.size, calls, 'one trace per call');
      const clientDurations: number[] = [];
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
        for (const m of ['ACK', 'BYE']) {
          assert.equal(
            spans.filter((s) => s.name === m && s.kind === SERVER).length,
            2,
            `${m} SERVER spans at both hops`,
          );
        }
        clientDurations.push(Number(bClient.endNs - bClient.startNs) / 1e6);
        // Each hop's own time is the difference of its spans.
        assert.ok(aServer.endNs - aServer.startNs >= aClient.endNs - aClient.startNs);
      }
      // The UAS answers after ANSWER_MS: the CLIENT span of the hop in front of it matches within 2 ms.
      clientDurations.sort((a, b) => a - b);
      const median = clientDurations[clientDurations.length >> 1];
      assert.ok(
        Math.abs(median - ANSWER_MS) < 2,
        `CLIENT span median ${median.toFixed(2)} ms vs answer delay ${ANSWER_MS} ms`,
      );
      // The UAS received X-Trace-Id equal to the call's trace id.
      let checked = 0;
      for (const raw of uasReceived) {
        const text = raw.toString('latin1');
        if (!text.startsWith('INVITE ')) continue;
        const callId = /\r\nCall-ID: *([^\r\n]+)/i.exec(text)?.[1];
        const xTraceId = /\r\nX-Trace-Id: *([0-9a-f]{32})\r\n/.exec(text)?.[1];
        assert.ok(callId && xTraceId, 'the UAS got no X-Trace-Id');
        assert.equal(xTraceId, store.findByCallId(callId));
        assert.equal((text.match(/\r\ntraceparent:/gi) ?? []).length, 1, 'exactly one traceparent');
        checked++;
      }
      assert.equal(checked, calls);
    } finally {
      await receiver.stop();
    }
  });

  for (const variant of [
    {
      name: 'OTLP/HTTP JSON',
      env: (p: number) => ({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${p}/v1/traces`,
      }),
    },
    {
      name: 'Zipkin',
      env: (p: number) => ({
        OTEL_TRACES_EXPORTER: 'zipkin',
        OTEL_EXPORTER_ZIPKIN_ENDPOINT: `http://127.0.0.1:${p}/api/v2/spans`,
      }),
    },
  ]) {
    test(`spans reach a real ${variant.name} receiver with the same shape`, async () => {
      const receiver = await new TraceReceiver().start();
      try {
        const { result } = await runChain(variant.env(receiver.port), 5);
        assert.equal(result.successful, 5, result.stderr);
        const traces = byTrace(receiver.spans);
        assert.equal(traces.size, 5);
        for (const spans of traces.values()) {
          const aClient = one(spans, 'INVITE sip-gateway', CLIENT);
          assert.equal(one(spans, 'INVITE', SERVER, 1).parentSpanId, aClient.spanId);
        }
      } finally {
        await receiver.stop();
      }
    });
  }

  test('with the receiver down, calls complete with 0 failures and the lost spans are counted', async () => {
    const closed = await freePort();
    const failuresBefore = processStats.spanExportFailures + processStats.spansDropped;
    const { result } = await runChain(
      {
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closed}`,
      },
      10,
    );
    assert.equal(result.successful, 10, result.stderr);
    assert.equal(result.failed, 0);
    assert.ok(
      processStats.spanExportFailures + processStats.spansDropped > failuresBefore,
      'no failure or drop was counted',
    );
  });

  test('OTEL_TRACES_SAMPLER=always_off: no spans, calls unaffected', async () => {
    const receiver = await new TraceReceiver().start();
    try {
      const { result } = await runChain(
        {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
          OTEL_TRACES_SAMPLER: 'always_off',
        },
        5,
      );
      assert.equal(result.successful, 5);
      assert.equal(receiver.spans.length, 0);
    } finally {
      await receiver.stop();
    }
  });
});
