/**
 * A transaction's spans written straight from its record are the bytes the
 * span encoder writes for the spans buildSpans() makes of the same record —
 * which are the SDK serializer's bytes (otlp-encoder.test.ts) — for every
 * shape of record: answered, generated, timed out, unsent, with parents,
 * links, trace state, marks, retransmissions, unknown methods, IPv6 and odd
 * addresses, and values past every length-prefix width.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import fc from 'fast-check';
import type { TraceOrigin, TransactionOutcome, TransactionRecord } from '../../../src/observe/records.ts';
import { OtlpTraceEncoder } from '../../../src/sinks/tracing/otlp-encoder.ts';
import {
  buildSpans,
  type RetransmissionTimes,
  transactionSpanCount,
} from '../../../src/sinks/tracing/span-builder.ts';
import { transactionRecord } from '../../support/records.ts';
import { finishedTransaction } from '../../support/spans.ts';

const resource = resourceFromAttributes({ 'service.name': 'sipspan', 'sipspan.node': 'nodé-1' });
const scope = { name: 'sipspan', version: '0.1.0' };
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** The request holding `records`' spans, written from the records, and the same from span objects. */
function bothWays(
  records: readonly TransactionRecord[],
  times: (RetransmissionTimes | null)[] = [],
  direct = new OtlpTraceEncoder(),
): { direct: string; objects: string; spans: number } {
  const spans = records.flatMap((tx, i) => buildSpans(tx, resource, scope, times[i] ?? null));
  const objects = new OtlpTraceEncoder().encode(spans);
  assert.ok(objects !== null);
  assert.ok(direct.beginFor(resource, scope));
  let written = 0;
  for (let i = 0; i < records.length; i++)
    for (let span = 0; span < transactionSpanCount(records[i]); span++) {
      assert.ok(direct.appendTransactionSpan(records[i], times[i] ?? null, span, resource, scope));
      written++;
    }
  assert.equal(written, spans.length);
  return { direct: hex(direct.finish()), objects: hex(objects), spans: written };
}

/** An INVITE answered 200 through sipspan, with a 100 and a 180 from upstream. */
function answered(): TransactionRecord {
  const t = finishedTransaction(0);
  t.addMark(100, 110);
  t.addMark(180, 120);
  return t;
}

describe('transaction spans written from the record', () => {
  test('an answered INVITE: SERVER and CLIENT, provisional events, the SDK bytes', () => {
    const tx = answered();
    const { direct, objects, spans } = bothWays([tx]);
    assert.equal(spans, 2);
    assert.equal(direct, objects);
    const sdk = ProtobufTraceSerializer.serializeRequest(buildSpans(tx, resource, scope, null));
    assert.ok(sdk !== undefined);
    assert.equal(direct, hex(sdk));
  });

  test('a continued trace with trace state, a CANCEL, retransmissions both ways and a 5xx', () => {
    const tx = answered();
    tx.parentSpanId = '00f067aa0ba902b7';
    tx.traceOrigin = 'inbound';
    tx.traceState = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
    tx.addMark(-1, 125);
    tx.status = 503;
    tx.retransmissions = 2;
    tx.responseRetransmissions = 1;
    const times = { request: [100.75, 101.25], response: [131] };
    const { direct, objects } = bothWays([tx], [times]);
    assert.equal(direct, objects);
  });

  test('a call root, a stitched leg with its link, an untrusted context kept as a link', () => {
    for (const origin of ['call', 'stitched', 'inbound', 'new'] as TraceOrigin[]) {
      const tx = answered();
      tx.traceOrigin = origin;
      tx.parentSpanId = origin === 'new' ? null : '00f067aa0ba902b7';
      tx.linkTraceId = '0af7651916cd43dd8448eb211c80319c';
      tx.linkSpanId = 'b7ad6b7169203331';
      tx.stitchedBy = origin === 'stitched' ? 'x-cid' : null;
      const { direct, objects } = bothWays([tx]);
      assert.equal(direct, objects, origin);
    }
  });

  test('answered by sipspan (no CLIENT span), timed out, not sent, unknown method, IPv6 upstream', () => {
    const generated = transactionRecord({ method: 'OPTIONS', requestIn: 5 });
    generated.traceId = '0123456789abcdef0123456789abcdef';
    generated.serverSpanId = '1111111111111111';
    generated.status = 483;
    generated.generatedStatus = 483;
    generated.outcome = 'rejected';
    generated.finalResponseOut = 5.01;

    const timeout = answered();
    timeout.finalResponseIn = -1;
    timeout.finalResponseOut = -1;
    timeout.status = 408;
    timeout.generatedStatus = 408;
    timeout.outcome = 'timeout';
    timeout.endedAt = 33_000;

    const unsent = answered();
    unsent.outcome = 'send-failed';
    unsent.finalResponseIn = -1;

    const unknown = answered();
    Object.assign(unknown, { method: 'FOO-BAR' });
    unknown.upstream = '[2001:db8::5]:5070';
    unknown.upstreamTransport = 'tcp';

    const records = [generated, timeout, unsent, unknown];
    const { direct, objects, spans } = bothWays(records);
    assert.equal(spans, 1 + 2 + 2 + 2);
    assert.equal(direct, objects);
  });

  test('unsampled and untraced records write nothing', () => {
    const unsampled = answered();
    unsampled.sampled = false;
    const untraced = answered();
    untraced.traceId = '';
    const { direct, objects, spans } = bothWays([unsampled, untraced, answered()]);
    assert.equal(spans, 2);
    assert.equal(direct, objects);
  });

  test('another resource or scope is refused and writes nothing', () => {
    const encoder = new OtlpTraceEncoder();
    assert.ok(encoder.beginFor(resource, scope));
    const other = resourceFromAttributes({ 'service.name': 'other' });
    assert.equal(encoder.appendTransactionSpan(answered(), null, 0, other, scope), false);
    assert.equal(encoder.appendTransactionSpan(answered(), null, 0, resource, { name: 'x' }), false);
    assert.ok(encoder.appendTransactionSpan(answered(), null, 0, resource, scope));
    assert.ok(encoder.appendTransactionSpan(answered(), null, 1, resource, scope));
    const objects = new OtlpTraceEncoder().encode(buildSpans(answered(), resource, scope, null));
    assert.ok(objects !== null);
    assert.equal(hex(encoder.finish()), hex(objects));
  });

  test('any record the property generator makes, one encoder across many requests', () => {
    const hexId = (n: number) =>
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: n, maxLength: n });
    // ASCII and any text, up to past the 127 bytes of a one-byte length.
    const text = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.string({ minLength: 100, maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.string({ unit: 'binary', minLength: 100, maxLength: 300 }),
    );
    const address = fc.oneof(
      fc.constant('192.0.2.10:5060'),
      fc.constant('[2001:db8::1]:5061'),
      fc.constant('[]:1'),
      fc.constant(''),
      fc.constant(':5060'),
      fc.constant('host:'),
      fc.constant('host:+12'),
      fc.constant('h:1234567890123456789'),
      text,
    );
    const time = fc.double({ min: 0, max: 1e10, noNaN: true });
    const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
    // What the record is made with, what is set on it after (its own fields, by name), and the rest.
    const record = fc.record({
      made: fc.record({
        method: fc.oneof(fc.constantFrom('INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER'), text),
        callId: text,
        cseq: fc.nat(),
        downstream: address,
        routeName: text,
        transport: fc.constantFrom('udp', 'tcp' as const),
        requestIn: time,
      }),
      own: fc.record({
        upstream: address,
        upstreamTransport: fc.constantFrom('udp', 'tcp' as const),
        traceId: hexId(32),
        serverSpanId: fc.oneof(hexId(16), fc.constant('')),
        clientSpanId: hexId(16),
        parentSpanId: maybe(fc.oneof(hexId(16), fc.constant(''))),
        traceState: maybe(fc.constantFrom('a=1', 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', 'bad key=1', '')),
        traceOrigin: fc.constantFrom<TraceOrigin>('inbound', 'call', 'stitched', 'new'),
        stitchedBy: maybe(fc.constantFrom('session-id', 'x-cid')),
        requestOut: fc.oneof(fc.constant(-1), time),
        finalResponseIn: fc.oneof(fc.constant(-1), time),
        finalResponseOut: fc.oneof(fc.constant(-1), time),
        endedAt: fc.oneof(fc.constant(-1), time),
        status: fc.integer({ min: 0, max: 699 }),
        outcome: maybe(
          fc.constantFrom<TransactionOutcome>('completed', 'timeout', 'forwarded', 'rejected', 'send-failed'),
        ),
        retransmissions: fc.nat({ max: 20 }),
        responseRetransmissions: fc.nat({ max: 20 }),
      }),
      link: fc.boolean(),
      generated: fc.boolean(),
      marks: fc.array(
        fc.record({ status: fc.oneof(fc.constant(-1), fc.integer({ min: 100, max: 199 })), at: time }),
        { maxLength: 4 },
      ),
      times: maybe(
        fc.record({ request: fc.array(time, { maxLength: 3 }), response: fc.array(time, { maxLength: 3 }) }),
      ),
    });
    const encoder = new OtlpTraceEncoder();
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 4 }), (shapes) => {
        const records = shapes.map(({ made, own, link, generated, marks }) => {
          const tx = transactionRecord({ ...made, route: { index: 0, name: made.routeName } });
          Object.assign(tx, own, { generatedStatus: generated ? own.status : 0 });
          if (link) {
            tx.linkTraceId = own.traceId;
            tx.linkSpanId = own.clientSpanId;
          }
          for (const m of marks) tx.addMark(m.status, m.at);
          return tx;
        });
        const { direct, objects } = bothWays(
          records,
          shapes.map((r) => r.times),
          encoder,
        );
        assert.equal(direct, objects);
      }),
      { numRuns: 400 },
    );
  });
});
