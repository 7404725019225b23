/**
 * The sink on the diagnostics channels, without sockets: retransmissions seen
 * before the end become timed events, unsampled transactions leave nothing,
 * users are withheld when the config redacts them, shutdown unsubscribes,
 * OTEL_SDK_DISABLED turns it all off.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpListener } from '../../../src/admin/http-listener.ts';
import type { Sipspan } from '../../../src/app.ts';
import { channels } from '../../../src/observe/channels.ts';
import { CallRecord, type TransactionRecord } from '../../../src/observe/records.ts';
import { EVENT } from '../../../src/sinks/tracing/semconv.ts';
import { startTracingSink } from '../../../src/sinks/tracing/tracing-sink.ts';
import { transactionRecord } from '../../support/records.ts';

function fakeApp(redactUsers = false): Sipspan {
  return {
    config: {
      node: 'n1',
      tracing: { store_max_calls: 10, store_max_spans: 100 },
      logs: { redact_users: redactUsers },
    },
    admin: new HttpListener('127.0.0.1', 0),
  } as unknown as Sipspan;
}

let n = 0;
function invite(sampled = true): TransactionRecord {
  n++;
  const route = { index: 0, name: 'sip-gateway' };
  const t = transactionRecord({
    route,
    callId: `call-${n}`,
    branch: `b${n}`,
    downstream: '127.0.0.1:5060',
  });
  t.traceId = n.toString(16).padStart(32, 'a');
  t.serverSpanId = n.toString(16).padStart(16, 'b');
  t.clientSpanId = n.toString(16).padStart(16, 'c');
  t.sampled = sampled;
  t.call = new CallRecord(
    `0|call-${n}`,
    route,
    `call-${n}`,
    'ft',
    'alice',
    'bob',
    t.traceId,
    t.serverSpanId,
    sampled,
    true,
    100,
  );
  t.requestOut = 100.2;
  return t;
}

function finish(t: TransactionRecord): void {
  t.finalResponseIn = 250;
  t.finalResponseOut = 250.1;
  t.endedAt = 250.1;
  t.status = 200;
  t.outcome = 'completed';
  channels.transactionEnd.publish(t);
}

describe('tracing sink on the channels', () => {
  test('request retransmissions before the end are SERVER events at the time they came', async () => {
    const sink = startTracingSink(fakeApp(), { env: {} });
    try {
      const t = invite();
      t.retransmissions = 1;
      const t0 = performance.now();
      channels.transactionRetransmission.publish(t);
      t.retransmissions = 2;
      channels.transactionRetransmission.publish(t);
      finish(t);
      // After the end: ignored (the spans are built).
      t.responseRetransmissions = 1;
      channels.transactionRetransmission.publish(t);
      const [server, client] = sink.store!.get(t.traceId)!.spans;
      const names = server.events.map((e) => e.name);
      assert.deepEqual(names, [EVENT.RETRANSMISSION, EVENT.RETRANSMISSION]);
      const at = server.events[0].time[0] * 1000 + server.events[0].time[1] / 1e6;
      assert.ok(Math.abs(at - (performance.timeOrigin + t0)) < 5);
      assert.deepEqual(client.events, []);
    } finally {
      await sink.shutdown();
    }
  });

  test('unsampled transactions leave nothing; caller and callee are kept unless users are redacted', async () => {
    const sink = startTracingSink(fakeApp(), { env: {} });
    const redacted = startTracingSink(fakeApp(true), { env: {} });
    try {
      finish(invite(false));
      assert.equal(sink.store!.size, 0);
      const t = invite();
      finish(t);
      assert.equal(sink.store!.get(t.traceId)?.caller, 'alice');
      assert.equal(sink.store!.get(t.traceId)?.callee, 'bob');
      assert.equal(redacted.store!.get(t.traceId)?.caller, null);
      assert.equal(redacted.store!.get(t.traceId)?.callee, null);
    } finally {
      await sink.shutdown();
      await redacted.shutdown();
    }
  });

  test('shutdown unsubscribes: no work on the channels afterwards', async () => {
    const had = channels.transactionEnd.hasSubscribers;
    const sink = startTracingSink(fakeApp(), { env: {} });
    assert.equal(channels.transactionEnd.hasSubscribers, true);
    await sink.shutdown();
    assert.equal(channels.transactionEnd.hasSubscribers, had);
    assert.equal(channels.transactionRetransmission.hasSubscribers, false);
    finish(invite());
    assert.equal(sink.store!.size, 0);
  });

  test('OTEL_SDK_DISABLED=true: no subscription, no store, and the trace API says tracing is off', async () => {
    const had = channels.transactionEnd.hasSubscribers;
    const app = fakeApp();
    const sink = startTracingSink(app, {
      env: { OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' },
      store: true,
    });
    try {
      assert.equal(channels.transactionEnd.hasSubscribers, had);
      assert.equal(sink.store, null);
      assert.deepEqual(sink.exporters, []);
      await app.admin.listen();
      const r = await fetch(`http://127.0.0.1:${app.admin.port}/api/traces`);
      assert.equal(r.status, 404);
      assert.deepEqual(await r.json(), { error: 'tracing is off: OTEL_SDK_DISABLED=true' });
    } finally {
      await sink.shutdown();
      await app.admin.close();
    }
  });
});
