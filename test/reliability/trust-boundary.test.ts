/**
 * The trust boundary of trace context. On a route with
 * `trust_trace_headers: false` an outsider's traceparent, tracestate,
 * X-Trace-Id and X-Traceparent must never reach the forwarded request or the
 * trace sipspan records (they may be kept as a span link); exactly one
 * traceparent and one X-Trace-Id of sipspan's own leave, over UDP and TCP,
 * whatever the outsider sent: duplicates, odd casing, comma lists, or while
 * the tables are full and no transaction is observed.
 *
 * When the tracing sink is present its in-memory exporter is checked too: no
 * exported span carries the inbound trace id except as a link.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { channels } from '../../src/observe/channels.ts';
import type { TransactionRecord } from '../../src/observe/records.ts';
import {
  type Arrival,
  headerValues,
  RawReceiver,
  RawTcpClient,
  RawUdpClient,
  waitUntil,
} from '../support/raw-peers.ts';
import { collect, HOST, type StartedProxy, sipRequest, startProxy } from './support/harness.ts';
import { type TracingProbe, tracingProbe } from './support/sinks.ts';

const EVIL_TRACE = 'deadbeefdeadbeefdeadbeefdeadbeef';
const EVIL_SPAN = 'badc0ffee0ddf00d';
const EVIL_TRACE_2 = '0123456789abcdef0123456789abcdef';
const EVIL_TRACEPARENT = `00-${EVIL_TRACE}-${EVIL_SPAN}-01`;

/** Trace headers an outsider might send, in the ways a parser could miss one. */
const HOSTILE_HEADERS = [
  `traceparent: ${EVIL_TRACEPARENT}`,
  `TRACEPARENT: 00-${EVIL_TRACE_2}-${EVIL_SPAN}-01`,
  'tracestate: evil=1,other=2',
  'Tracestate: evil=3',
  `X-Trace-Id: ${EVIL_TRACE}`,
  `x-trace-id: ${EVIL_TRACE_2}`,
  `X-Traceparent: 00-${EVIL_TRACE}-${EVIL_SPAN}-01`,
];

function countOf(bytes: Buffer, name: string): number {
  return headerValues(bytes, name).length;
}

/** Every trace header of a forwarded request, checked against the rules; returns the traceparent. */
function assertOwnTraceHeaders(bytes: Buffer, label: string): string {
  const text = bytes.toString('latin1');
  for (const evil of [EVIL_TRACE, EVIL_TRACE_2, EVIL_SPAN, 'evil=']) {
    assert.ok(!text.includes(evil), `${label}: inbound trace value ${evil} was forwarded:\n${text}`);
  }
  assert.equal(countOf(bytes, 'traceparent'), 1, `${label}: traceparent lines\n${text}`);
  assert.equal(countOf(bytes, 'x-trace-id'), 1, `${label}: X-Trace-Id lines\n${text}`);
  assert.ok(countOf(bytes, 'tracestate') <= 1, `${label}: tracestate lines\n${text}`);
  assert.equal(countOf(bytes, 'x-traceparent'), 0, `${label}: X-Traceparent forwarded\n${text}`);
  const tp = headerValues(bytes, 'traceparent')[0];
  assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  assert.equal(
    headerValues(bytes, 'x-trace-id')[0],
    tp.slice(3, 35),
    `${label}: X-Trace-Id matches traceparent`,
  );
  return tp;
}

describe('trust boundary for trace headers', { concurrency: false }, () => {
  let proxy: StartedProxy;
  let upstream: RawReceiver;
  const tracing: TracingProbe = tracingProbe();

  before(async () => {
    upstream = await RawReceiver.start(HOST);
    proxy = await startProxy({
      routes: [
        { name: 'edge', upstream: `udp://${HOST}:${upstream.port}`, trust_trace_headers: false },
        { name: 'inside', upstream: `udp://${HOST}:${upstream.port}`, trust_trace_headers: true },
      ],
      limits: { max_transactions: 50, max_calls: 50 },
      // Short timers: unanswered requests end (and their spans are built) within 1.28 s.
      timers: { t1_ms: 20 },
      sinks: tracing.factory,
    });
  });

  after(async () => {
    await proxy.stop();
    await upstream.close();
  });

  async function forward(
    route: number,
    bytes: Buffer,
    transport: 'udp' | 'tcp',
    callId: string,
  ): Promise<Arrival> {
    const before = upstream.arrivals.length;
    if (transport === 'udp') {
      const c = await RawUdpClient.open(HOST);
      await c.send(bytes, proxy.ports[route]);
      await c.close();
    } else {
      const c = await RawTcpClient.connect(HOST, proxy.ports[route]);
      c.write(bytes);
      await waitUntil(() => upstream.arrivals.length > before, 2000);
      c.close();
    }
    assert.ok(
      await waitUntil(() => upstream.arrivals.slice(before).some((a) => a.bytes.includes(callId)), 2000),
      `${callId} forwarded`,
    );
    return upstream.arrivals.slice(before).find((a) => a.bytes.includes(callId))!;
  }

  for (const transport of ['udp', 'tcp'] as const) {
    test(`${transport.toUpperCase()}: untrusted route replaces every inbound trace header with exactly one of its own, keeps the inbound context only as a link`, async () => {
      const starts = collect<TransactionRecord>(channels.transactionStart);
      try {
        const callId = `edge-${transport}-1@x`;
        const a = await forward(
          0,
          sipRequest({
            transport: transport === 'tcp' ? 'TCP' : 'UDP',
            viaPort: 5999,
            branch: `z9hG4bK-e${transport}1`,
            callId,
            extra: HOSTILE_HEADERS,
          }),
          transport,
          callId,
        );
        const tp = assertOwnTraceHeaders(a.bytes, callId);
        const tx = starts.items.find((t) => t.callId === callId)!;
        assert.ok(tx !== undefined, 'transaction observed');
        assert.notEqual(tx.traceId, EVIL_TRACE);
        assert.notEqual(tx.traceId, EVIL_TRACE_2);
        assert.equal(tx.parentSpanId, null, 'the inbound span is not a parent');
        assert.equal(tx.traceState, null, 'the inbound tracestate is not kept');
        assert.equal(tp.slice(3, 35), tx.traceId);
        assert.equal(tp.slice(36, 52), tx.clientSpanId, 'the injected traceparent names the CLIENT span');
        // Two traceparents came: invalid (W3C §3.2), so nothing to link to either.
        assert.equal(tx.linkTraceId, null);
      } finally {
        starts.stop();
      }
    });
  }

  test('untrusted route, one valid inbound traceparent: a new trace, the inbound one kept as the link only', async () => {
    const starts = collect<TransactionRecord>(channels.transactionStart);
    try {
      const callId = 'edge-link@x';
      const a = await forward(
        0,
        sipRequest({
          viaPort: 5999,
          branch: 'z9hG4bK-elink',
          callId,
          extra: [`traceparent: ${EVIL_TRACEPARENT}`, 'tracestate: evil=1', `X-Trace-Id: ${EVIL_TRACE}`],
        }),
        'udp',
        callId,
      );
      assertOwnTraceHeaders(a.bytes, callId);
      const tx = starts.items.find((t) => t.callId === callId)!;
      assert.notEqual(tx.traceId, EVIL_TRACE);
      assert.equal(tx.linkTraceId, EVIL_TRACE);
      assert.equal(tx.linkSpanId, EVIL_SPAN);
    } finally {
      starts.stop();
    }
  });

  test('untrusted route, only X-Trace-Id or only X-Traceparent inbound: not adopted, not forwarded', async () => {
    const starts = collect<TransactionRecord>(channels.transactionStart);
    try {
      for (const [i, h] of [`X-Trace-Id: ${EVIL_TRACE}`, `X-Traceparent: ${EVIL_TRACEPARENT}`].entries()) {
        const callId = `edge-only-${i}@x`;
        const a = await forward(
          0,
          sipRequest({ viaPort: 5999, branch: `z9hG4bK-eonly${i}`, callId, extra: [h] }),
          'udp',
          callId,
        );
        assertOwnTraceHeaders(a.bytes, callId);
        assert.notEqual(starts.items.find((t) => t.callId === callId)?.traceId, EVIL_TRACE);
      }
    } finally {
      starts.stop();
    }
  });

  test('untrusted route, in-dialog request with a forged traceparent: the call keeps its own trace, nothing inbound leaves', async () => {
    const starts = collect<TransactionRecord>(channels.transactionStart);
    try {
      const callId = 'edge-dialog@x';
      await forward(0, sipRequest({ viaPort: 5999, branch: 'z9hG4bK-edlg1', callId }), 'udp', callId);
      const invite = starts.items.find((t) => t.callId === callId && t.method === 'INVITE')!;
      const bye = await forward(
        0,
        sipRequest({
          method: 'BYE',
          viaPort: 5999,
          branch: 'z9hG4bK-edlg2',
          callId,
          cseq: 2,
          toTag: 'tt',
          extra: HOSTILE_HEADERS,
        }),
        'udp',
        callId,
      );
      const tp = assertOwnTraceHeaders(bye.bytes, `${callId} BYE`);
      assert.equal(tp.slice(3, 35), invite.traceId, 'the BYE joins the call trace');
    } finally {
      starts.stop();
    }
  });

  test('trusted route: exactly one traceparent leaves even when two came in (a repeated traceparent is invalid, W3C §3.2)', async () => {
    const callId = 'inside-dup@x';
    const a = await forward(
      1,
      sipRequest({ viaPort: 5999, branch: 'z9hG4bK-idup', callId, extra: HOSTILE_HEADERS }),
      'udp',
      callId,
    );
    assertOwnTraceHeaders(a.bytes, callId);
  });

  test('trusted route: a valid inbound traceparent is continued, and still exactly one of each header leaves', async () => {
    const callId = 'inside-ok@x';
    const a = await forward(
      1,
      sipRequest({
        viaPort: 5999,
        branch: 'z9hG4bK-iok',
        callId,
        extra: [`traceparent: ${EVIL_TRACEPARENT}`, 'tracestate: vendor=1', 'tracestate: vendor=2'],
      }),
      'udp',
      callId,
    );
    assert.equal(countOf(a.bytes, 'traceparent'), 1);
    assert.equal(countOf(a.bytes, 'x-trace-id'), 1);
    assert.ok(countOf(a.bytes, 'tracestate') <= 1);
    assert.equal(
      headerValues(a.bytes, 'traceparent')[0].slice(3, 35),
      EVIL_TRACE,
      'continued on a trusted route',
    );
  });

  test('untrusted route with the transaction table full: inbound trace headers are still removed before forwarding', async () => {
    // Fill the table (max_transactions 50) with INVITEs the upstream never answers.
    const c = await RawUdpClient.open(HOST);
    try {
      for (let i = 0; i < 60; i++) {
        await c.send(
          sipRequest({ viaPort: c.port, branch: `z9hG4bK-fill${i}`, callId: `fill-${i}@x` }),
          proxy.ports[1],
        );
      }
      assert.ok(await waitUntil(() => proxy.app.observer.transactionCount >= 50, 2000), 'table full');
      await sleep(20);
      const callId = 'edge-full@x';
      const a = await forward(
        0,
        sipRequest({ viaPort: 5999, branch: 'z9hG4bK-efull', callId, extra: HOSTILE_HEADERS }),
        'udp',
        callId,
      );
      const text = a.bytes.toString('latin1');
      for (const evil of [EVIL_TRACE, EVIL_TRACE_2, EVIL_SPAN, 'evil=']) {
        assert.ok(
          !text.includes(evil),
          `inbound trace value ${evil} forwarded while the table was full:\n${text}`,
        );
      }
      assert.ok(countOf(a.bytes, 'traceparent') <= 1);
      assert.ok(countOf(a.bytes, 'x-trace-id') <= 1);
    } finally {
      await c.close();
    }
  });

  test('exported spans never carry an inbound trace id of the untrusted route (tracing sink in-memory exporter)', async () => {
    const probe = tracing;
    assert.ok(
      await waitUntil(() => probe.spans().filter((s) => s.routeName === 'edge').length >= 10, 4000),
      'spans of the edge route were built',
    );
    const spans = probe.spans().filter((s) => s.routeName === 'edge');
    const linked = spans.filter((s) => s.links.some((l) => l.traceId === EVIL_TRACE));
    assert.ok(linked.length > 0, 'the single valid inbound context is kept as a link');
    for (const s of spans) {
      assert.ok(
        s.traceId !== EVIL_TRACE && s.traceId !== EVIL_TRACE_2,
        `span ${s.name} is in the inbound trace`,
      );
      assert.ok(s.parentSpanId !== EVIL_SPAN, `span ${s.name} has the inbound parent`);
      const attrs = JSON.stringify(s.attributes);
      assert.ok(
        !attrs.includes(EVIL_TRACE) && !attrs.includes(EVIL_TRACE_2),
        `span ${s.name} attributes carry it: ${attrs}`,
      );
    }
  });
});
