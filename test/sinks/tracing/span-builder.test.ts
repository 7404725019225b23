/**
 * Spans built after the fact from TransactionRecords: exact ids and times,
 * parent/child, status and error.type, events, links, trace state, `_OTHER`,
 * and nothing at all for an unsampled transaction.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { hrTimeToNanoseconds } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import * as semconv from '@opentelemetry/semantic-conventions';
import { type TransactionRecord, toEpochMs } from '../../../src/observe/records.ts';
import { ATTR, EVENT, RESOURCE } from '../../../src/sinks/tracing/semconv.ts';
import { buildSpans, toHrTime } from '../../../src/sinks/tracing/span-builder.ts';
import { transactionRecord } from '../../support/records.ts';

const resource = resourceFromAttributes({ 'service.name': 'sipspan' });
const scope = { name: 'sipspan' };
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

function tx(method = 'INVITE', requestIn = 1000.25): TransactionRecord {
  const t = transactionRecord({
    route: { index: 1, name: 'sip-signaling' },
    method,
    callId: 'call-1@example',
    branch: 'z9hG4bK-x',
    fromTag: 'from-tag',
    requestIn,
  });
  t.traceId = TRACE;
  t.serverSpanId = 'a1a1a1a1a1a1a1a1';
  t.clientSpanId = 'c2c2c2c2c2c2c2c2';
  t.parentSpanId = PARENT;
  t.traceOrigin = 'inbound';
  t.upstream = '[2001:db8::5]:5070';
  t.upstreamTransport = 'tcp';
  return t;
}

/** An INVITE answered 200 after a 180: in 1000.25, out 1000.5, 180 at 1040, 200 in 1150.5, out 1150.75. */
function answered(): TransactionRecord {
  const t = tx();
  t.requestOut = 1000.5;
  t.firstResponseIn = 1040;
  t.addMark(180, 1040);
  t.finalResponseIn = 1150.5;
  t.finalResponseOut = 1150.75;
  t.endedAt = 1150.75;
  t.status = 200;
  t.outcome = 'completed';
  return t;
}

const nanos = (ms: number) => BigInt(Math.round(toEpochMs(ms) * 1e6));

describe('span builder', () => {
  test('performance.now() ms map to wall-clock HrTime at nanosecond resolution', () => {
    for (const ms of [0, 0.000001, 1.5, 999.999999, 1000, 86_400_000.123456]) {
      const [s, ns] = toHrTime(ms);
      assert.ok(Number.isInteger(s) && Number.isInteger(ns) && ns >= 0 && ns < 1e9);
      const diff = BigInt(s) * 1_000_000_000n + BigInt(ns) - nanos(ms);
      // The reference itself is a double near 1.7e18 ns: ±512 ns of rounding there.
      assert.ok(diff >= -1000n && diff <= 1000n, `${ms}: ${diff} ns off`);
    }
    // Differences between two times survive exactly (the part that matters for durations).
    const a = toHrTime(1234.5);
    const b = toHrTime(1234.500001);
    assert.equal(BigInt(b[0] - a[0]) * 1_000_000_000n + BigInt(b[1] - a[1]), 1n);
  });

  test('SERVER <METHOD> and CLIENT <METHOD> <route> with the ids and times of the record', () => {
    const [server, client] = buildSpans(answered(), resource, scope, null);
    assert.equal(server.name, 'INVITE');
    assert.equal(server.kind, SpanKind.SERVER);
    assert.equal(server.spanContext().traceId, TRACE);
    assert.equal(server.spanContext().spanId, 'a1a1a1a1a1a1a1a1');
    assert.equal(server.parentSpanContext?.spanId, PARENT);
    assert.equal(server.parentSpanContext?.isRemote, true);
    assert.deepEqual(server.startTime, toHrTime(1000.25));
    assert.deepEqual(server.endTime, toHrTime(1150.75));
    assert.equal(hrTimeToNanoseconds(server.duration), 150_500_000);

    assert.equal(client.name, 'INVITE sip-signaling');
    assert.equal(client.kind, SpanKind.CLIENT);
    assert.equal(client.spanContext().spanId, 'c2c2c2c2c2c2c2c2');
    assert.equal(client.parentSpanContext?.spanId, 'a1a1a1a1a1a1a1a1');
    assert.deepEqual(client.startTime, toHrTime(1000.5));
    assert.deepEqual(client.endTime, toHrTime(1150.5));
    assert.equal(hrTimeToNanoseconds(client.duration), 150_000_000);
    assert.equal(server.status.code, SpanStatusCode.UNSET);
    assert.equal(client.status.code, SpanStatusCode.UNSET);
    assert.equal(server.ended, true);
  });

  test('attributes: SIP, route, client side on SERVER, server side on CLIENT', () => {
    const [server, client] = buildSpans(answered(), resource, scope, null);
    assert.deepEqual(server.attributes, {
      [ATTR.SIP_METHOD]: 'INVITE',
      [ATTR.SIP_CALL_ID]: 'call-1@example',
      [ATTR.SIP_CSEQ]: 1,
      [ATTR.SIP_RETRANSMISSIONS]: 0,
      [ATTR.ROUTE]: 'sip-signaling',
      [ATTR.TRACE_ORIGIN]: 'inbound',
      [ATTR.CLIENT_ADDRESS]: '192.0.2.10',
      [ATTR.CLIENT_PORT]: 5060,
      [ATTR.PEER_ADDRESS]: '192.0.2.10',
      [ATTR.PEER_PORT]: 5060,
      [ATTR.TRANSPORT]: 'udp',
      [ATTR.PROTOCOL]: 'sip',
      [ATTR.SIP_STATUS]: 200,
      [ATTR.OUTCOME]: 'completed',
    });
    assert.equal(client.attributes[ATTR.SERVER_ADDRESS], '2001:db8::5');
    assert.equal(client.attributes[ATTR.SERVER_PORT], 5070);
    assert.equal(client.attributes[ATTR.TRANSPORT], 'tcp');
    assert.equal(client.attributes[ATTR.SIP_STATUS], 200);
    assert.equal(client.attributes[ATTR.CLIENT_ADDRESS], undefined);
  });

  test('the stable attribute keys are the OpenTelemetry semantic conventions', () => {
    assert.equal(ATTR.SERVER_ADDRESS, semconv.ATTR_SERVER_ADDRESS);
    assert.equal(ATTR.SERVER_PORT, semconv.ATTR_SERVER_PORT);
    assert.equal(ATTR.CLIENT_ADDRESS, semconv.ATTR_CLIENT_ADDRESS);
    assert.equal(ATTR.CLIENT_PORT, semconv.ATTR_CLIENT_PORT);
    assert.equal(ATTR.PEER_ADDRESS, semconv.ATTR_NETWORK_PEER_ADDRESS);
    assert.equal(ATTR.PEER_PORT, semconv.ATTR_NETWORK_PEER_PORT);
    assert.equal(ATTR.TRANSPORT, semconv.ATTR_NETWORK_TRANSPORT);
    assert.equal(ATTR.PROTOCOL, semconv.ATTR_NETWORK_PROTOCOL_NAME);
    assert.equal(ATTR.ERROR_TYPE, semconv.ATTR_ERROR_TYPE);
    assert.equal(RESOURCE.SERVICE_NAME, semconv.ATTR_SERVICE_NAME);
    assert.equal(RESOURCE.SERVICE_VERSION, semconv.ATTR_SERVICE_VERSION);
  });

  test('an unsampled transaction produces no span objects', () => {
    const t = answered();
    t.sampled = false;
    assert.deepEqual(buildSpans(t, resource, scope, null), []);
  });

  test('an unknown method is _OTHER in the name and the attribute, the token kept aside', () => {
    const t = tx('FOO');
    t.requestOut = 1001;
    t.finalResponseIn = 1002;
    t.finalResponseOut = 1003;
    t.status = 501;
    t.outcome = 'completed';
    const [server, client] = buildSpans(t, resource, scope, null);
    assert.equal(server.name, '_OTHER');
    assert.equal(client.name, '_OTHER sip-signaling');
    assert.equal(server.attributes[ATTR.SIP_METHOD], '_OTHER');
    assert.equal(server.attributes[ATTR.SIP_METHOD_ORIGINAL], 'FOO');
  });

  test('a root transaction has no parent; an in-call one has a local parent', () => {
    const t = answered();
    t.parentSpanId = null;
    t.traceOrigin = 'new';
    assert.equal(buildSpans(t, resource, scope, null)[0].parentSpanContext, undefined);
    const bye = tx('BYE');
    bye.traceOrigin = 'call';
    assert.equal(buildSpans(bye, resource, scope, null)[0].parentSpanContext?.isRemote, false);
  });

  test('a timeout is ERROR with error.type timeout on both spans, ending at the timer', () => {
    const t = tx();
    t.requestOut = 1001;
    t.outcome = 'timeout';
    t.endedAt = 33_000;
    const [server, client] = buildSpans(t, resource, scope, null);
    for (const s of [server, client]) {
      assert.equal(s.status.code, SpanStatusCode.ERROR);
      assert.equal(s.attributes[ATTR.ERROR_TYPE], 'timeout');
      assert.deepEqual(s.endTime, toHrTime(33_000));
    }
    assert.equal(server.attributes[ATTR.SIP_STATUS], undefined);
  });

  test('5xx and 6xx from upstream are errors typed by the code; 4xx is not', () => {
    for (const [status, error] of [
      [503, '503'],
      [603, '603'],
      [486, null],
      [487, null],
    ] as const) {
      const t = answered();
      t.status = status;
      const [server, client] = buildSpans(t, resource, scope, null);
      for (const s of [server, client]) {
        assert.equal(
          s.status.code,
          error === null ? SpanStatusCode.UNSET : SpanStatusCode.ERROR,
          `${status}`,
        );
        assert.equal(s.attributes[ATTR.ERROR_TYPE], error ?? undefined);
      }
    }
  });

  test('an answer sipspan generated is an error of the SERVER span, and there is no CLIENT span', () => {
    const t = tx('OPTIONS');
    t.generatedStatus = 483;
    t.status = 483;
    t.finalResponseOut = 1000.3;
    t.endedAt = 1000.3;
    t.outcome = 'rejected';
    const spans = buildSpans(t, resource, scope, null);
    assert.equal(spans.length, 1);
    assert.equal(spans[0].status.code, SpanStatusCode.ERROR);
    assert.equal(spans[0].attributes[ATTR.ERROR_TYPE], '483');
    assert.equal(spans[0].attributes[ATTR.GENERATED], true);
  });

  test('provisional responses are CLIENT events, CANCEL and retransmissions SERVER events', () => {
    const t = answered();
    t.addMark(-1, 1100);
    t.retransmissions = 2;
    t.responseRetransmissions = 1;
    const [server, client] = buildSpans(t, resource, scope, {
      request: [1500, 2500],
      response: [1150.6],
    });
    assert.deepEqual(
      server.events.map((e) => [e.name, e.time]),
      [
        [EVENT.CANCEL, toHrTime(1100)],
        [EVENT.RETRANSMISSION, toHrTime(1500)],
        [EVENT.RETRANSMISSION, toHrTime(2500)],
      ],
    );
    assert.equal(server.attributes[ATTR.SIP_RETRANSMISSIONS], 2);
    assert.deepEqual(
      client.events.map((e) => [e.name, e.time, e.attributes?.[ATTR.SIP_STATUS]]),
      [
        [EVENT.PROVISIONAL, toHrTime(1040), 180],
        [EVENT.RESPONSE_RETRANSMISSION, toHrTime(1150.6), undefined],
      ],
    );
    assert.equal(client.attributes[ATTR.SIP_RESPONSE_RETRANSMISSIONS], 1);
  });

  test('an untrusted or stitched inbound context becomes a link; tracestate rides on the context', () => {
    const t = answered();
    t.linkTraceId = '0af7651916cd43dd8448eb211c80319c';
    t.linkSpanId = 'b7ad6b7169203331';
    t.traceState = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
    const [server, client] = buildSpans(t, resource, scope, null);
    assert.equal(server.links.length, 1);
    assert.equal(server.links[0].context.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(server.links[0].context.spanId, 'b7ad6b7169203331');
    assert.equal(server.links[0].attributes?.[ATTR.LINK_REASON], 'untrusted_inbound');
    assert.equal(server.spanContext().traceState?.serialize(), 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    assert.equal(client.spanContext().traceState?.get('rojo'), '00f067aa0ba902b7');
    t.traceOrigin = 'stitched';
    t.stitchedBy = 'session-id';
    const [stitched] = buildSpans(t, resource, scope, null);
    assert.equal(stitched.links[0].attributes?.[ATTR.LINK_REASON], 'stitched');
    assert.equal(stitched.attributes[ATTR.STITCHED_BY], 'session-id');
  });

  test('an ACK for a 2xx: SERVER over the proxy time, a zero-length CLIENT at the send', () => {
    const t = tx('ACK');
    t.requestOut = 1000.4;
    t.outcome = 'forwarded';
    t.endedAt = 1000.4;
    const [server, client] = buildSpans(t, resource, scope, null);
    assert.deepEqual(server.startTime, toHrTime(1000.25));
    assert.deepEqual(server.endTime, toHrTime(1000.4));
    assert.deepEqual(client.startTime, client.endTime);
    assert.equal(server.attributes[ATTR.OUTCOME], 'forwarded');
  });

  test('an end before the start (clock edge) is clamped to a zero-length span', () => {
    const t = tx();
    t.finalResponseOut = 999;
    const [server] = buildSpans(t, resource, scope, null);
    assert.deepEqual(server.endTime, server.startTime);
    assert.deepEqual(server.duration, [0, 0]);
  });
});
