/**
 * The one-pass OTLP encoder writes the bytes the SDK's protobuf serializer
 * writes, for the spans sipspan builds and for generated ones (ids, times at
 * any second, every attribute kind it encodes, non-ASCII text, messages past
 * every length-prefix width); what it does not encode is left to the SDK.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Attributes,
  createTraceState,
  type Link,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
} from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import fc from 'fast-check';
import type { TransactionRecord } from '../../../src/observe/records.ts';
import { OtlpTraceEncoder } from '../../../src/sinks/tracing/otlp-encoder.ts';
import { buildSpans, FinishedSpan } from '../../../src/sinks/tracing/span-builder.ts';
import { transactionRecord } from '../../support/records.ts';

const resource = resourceFromAttributes({
  'service.name': 'sipspan',
  'service.instance.id': '6c1f0e1e-0000-4000-8000-000000000001',
  'sipspan.node': 'nodé-1',
});
const scope = { name: 'sipspan', version: '0.1.0' };

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** Both ways in write the SDK's bytes: the batch at once, and a span at a time. */
function assertSameBytes(
  spans: ReadableSpan[],
  encoder = new OtlpTraceEncoder(),
  appending = new OtlpTraceEncoder(),
): void {
  const sdk = ProtobufTraceSerializer.serializeRequest(spans);
  assert.ok(sdk !== undefined);
  const whole = encoder.encode(spans);
  assert.ok(whole !== null, 'encoded here');
  assert.equal(hex(whole), hex(sdk));
  if (spans.length === 0) return;
  assert.ok(appending.begin(spans[0]));
  for (const s of spans) assert.ok(appending.append(s));
  assert.equal(hex(appending.finish()), hex(sdk));
}

function invite(): TransactionRecord {
  const t = transactionRecord({
    callId: 'a84b4c76e66710@pc33.atlanta.com',
    cseq: 314159,
    requestIn: 1000.25,
  });
  t.traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  t.serverSpanId = 'a1a1a1a1a1a1a1a1';
  t.clientSpanId = 'c2c2c2c2c2c2c2c2';
  t.parentSpanId = '00f067aa0ba902b7';
  t.traceOrigin = 'inbound';
  t.traceState = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
  t.upstream = '[2001:db8::5]:5070';
  t.upstreamTransport = 'udp';
  t.requestOut = 1000.5;
  t.addMark(180, 1040);
  t.addMark(-1, 1100);
  t.finalResponseIn = 1150.5;
  t.finalResponseOut = 1150.75;
  t.endedAt = 1150.75;
  t.status = 503;
  t.outcome = 'completed';
  t.linkTraceId = '0af7651916cd43dd8448eb211c80319c';
  t.linkSpanId = 'b7ad6b7169203331';
  return t;
}

function span(over: {
  name?: string;
  kind?: SpanKind;
  startMs?: number;
  endMs?: number;
  attributes?: Attributes;
  events?: TimedEvent[];
  links?: Link[];
  message?: string;
  parentRemote?: boolean | null;
}): FinishedSpan {
  const context = {
    traceId: '0123456789abcdef0123456789abcdef',
    spanId: 'fedcba9876543210',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: false,
  };
  const parent =
    over.parentRemote === null || over.parentRemote === undefined
      ? undefined
      : { ...context, spanId: '0011223344556677', isRemote: over.parentRemote };
  return new FinishedSpan(
    over.name ?? 'INVITE',
    over.kind ?? SpanKind.SERVER,
    context,
    parent,
    over.startMs ?? 10,
    over.endMs ?? 20,
    over.message === undefined
      ? { code: SpanStatusCode.UNSET }
      : { code: SpanStatusCode.ERROR, message: over.message },
    over.attributes ?? {},
    over.links ?? [],
    over.events ?? [],
    resource,
    scope,
  );
}

describe('OTLP encoder', () => {
  test('the spans of a transaction with events, a link and trace state encode as the SDK encodes them', () => {
    const spans = buildSpans(invite(), resource, scope, { request: [1001, 1002], response: [1151] });
    assert.equal(spans.length, 2);
    assertSameBytes(spans);
  });

  test('a batch of 512 spans (ResourceSpans past 16 KiB) and an empty batch', () => {
    const spans: ReadableSpan[] = [];
    for (let i = 0; i < 256; i++) spans.push(...buildSpans(invite(), resource, scope, null));
    assertSameBytes(spans);
    assertSameBytes([]);
  });

  test('one encoder reused for many batches keeps every batch exact', () => {
    const encoder = new OtlpTraceEncoder();
    const sliced = new OtlpTraceEncoder();
    for (let i = 1; i < 40; i += 7) {
      const batch: ReadableSpan[] = [];
      for (let j = 0; j < i; j++) batch.push(...buildSpans(invite(), resource, scope, null));
      assertSameBytes(batch, encoder, sliced);
    }
  });

  test('long values move the length prefixes: a value past 127 bytes, a span past 16 KiB', () => {
    assertSameBytes([span({ attributes: { 'sip.call_id': 'x'.repeat(200) } })]);
    assertSameBytes([span({ attributes: { big: 'y'.repeat(20_000), more: 'z'.repeat(300) } })]);
  });

  test('number, boolean, null and non-ASCII values; negative and 64-bit integers; doubles', () => {
    assertSameBytes([
      span({
        name: 'INVITE sip-gâteway',
        attributes: {
          zero: 0,
          small: 7,
          u32: 0xffffffff,
          above32: 2 ** 40 + 3,
          max: Number.MAX_SAFE_INTEGER,
          negative: -1,
          negative64: -(2 ** 40),
          double: 0.125,
          nan: Number.NaN,
          inf: Number.POSITIVE_INFINITY,
          beyond: 2 ** 64,
          yes: true,
          no: false,
          none: undefined,
          text: 'José → 東京 😀',
          kéy: 'v',
        },
        message: 'timeout ✗',
      }),
    ]);
  });

  test('kinds, a remote and a local parent, no parent', () => {
    for (const kind of [
      SpanKind.INTERNAL,
      SpanKind.SERVER,
      SpanKind.CLIENT,
      SpanKind.PRODUCER,
      SpanKind.CONSUMER,
    ])
      for (const parentRemote of [null, true, false]) assertSameBytes([span({ kind, parentRemote })]);
  });

  test('links with trace state and attributes, events with attributes', () => {
    const links: Link[] = [
      {
        context: {
          traceId: 'ffffffffffffffffffffffffffffffff',
          spanId: '0000000000000001',
          traceFlags: TraceFlags.NONE,
          isRemote: true,
          traceState: createTraceState('a=1,b=2'),
        },
        attributes: { 'sipspan.link.reason': 'stitched' },
      },
      {
        context: { traceId: 'ABCDEF0123456789ABCDEF0123456789', spanId: 'ABCDEF0123456789', traceFlags: 1 },
      },
    ];
    const events: TimedEvent[] = [
      { name: 'sip.provisional_response', time: [1_700_000_000, 999_999_999], attributes: { code: 180 } },
      { name: 'sip.cancel', time: [0, 0] },
      { name: 'e', time: [4_294_967_295, 1], attributes: {}, droppedAttributesCount: 2 },
    ];
    assertSameBytes([span({ links, events })]);
  });

  test('any time, id and attribute set the property generator makes', () => {
    const hex = (n: number) =>
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
    const value = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double(),
      fc.boolean(),
    );
    fc.assert(
      fc.property(
        hex(32),
        hex(16),
        fc.integer({ min: 0, max: 4_000_000_000 }),
        fc.integer({ min: 0, max: 999_999_999 }),
        fc.dictionary(fc.string({ maxLength: 40 }), value, { maxKeys: 20 }),
        fc.string({ unit: 'binary', maxLength: 50 }),
        (traceId, spanId, seconds, nanos, attributes, name) => {
          const s = span({ name, attributes });
          const patched = Object.assign(Object.create(Object.getPrototypeOf(s)), s, {
            startTime: [seconds, nanos],
            endTime: [seconds + 1, nanos],
            spanContext: () => ({ traceId, spanId, traceFlags: 1, isRemote: false }),
          });
          assertSameBytes([patched]);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('ids that repeat across spans, as the spans of a call repeat them, and ids that are not hex: one encoder, the SDK bytes', () => {
    // Few enough to repeat, more than the decoded ids the writer remembers; equal text in another string.
    const traceIds = [
      '4bf92f3577b34da6a3ce929d0e0e4736',
      '0af7651916cd43dd8448eb211c80319c',
      'ZZf92f3577b34da6a3ce929d0e0e47XY',
    ];
    traceIds.push(traceIds[0].split('').join(''), 'abc', '');
    const spanIds = [
      'a1a1a1a1a1a1a1a1',
      'c2c2c2c2c2c2c2c2',
      '00f067aa0ba902b7',
      'b7ad6b7169203331',
      'QQ00f067aa0ba9',
      'c2c2c2c2c2c2c2c2c2c2',
    ];
    spanIds.push(spanIds[1].split('').join(''));
    const encoder = new OtlpTraceEncoder();
    const appending = new OtlpTraceEncoder();
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom(...traceIds), fc.constantFrom(...spanIds), fc.constantFrom(...spanIds)),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        (ids) => {
          const spans = ids.map(([traceId, spanId, parentId]) => {
            const s = span({ parentRemote: false });
            return Object.assign(Object.create(Object.getPrototypeOf(s)), s, {
              spanContext: () => ({ traceId, spanId, traceFlags: 1, isRemote: false }),
              parentSpanContext: { traceId, spanId: parentId, traceFlags: 1, isRemote: false },
            });
          });
          assertSameBytes(spans, encoder, appending);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('array values and a second resource are left to the SDK serializer', () => {
    const encoder = new OtlpTraceEncoder();
    assert.equal(encoder.encode([span({ attributes: { list: ['a', 'b'] } })]), null);
    const other = new FinishedSpan(
      'x',
      SpanKind.SERVER,
      { traceId: '0123456789abcdef0123456789abcdef', spanId: 'fedcba9876543210', traceFlags: 1 },
      undefined,
      1,
      2,
      { code: SpanStatusCode.UNSET },
      {},
      [],
      [],
      resourceFromAttributes({ 'service.name': 'other' }),
      scope,
    );
    assert.equal(encoder.encode([span({}), other]), null);
    // The encoder still encodes the next batch.
    assertSameBytes([span({ attributes: { ok: 1 } })], encoder);

    // A span at a time: a span of another resource, or with an array value, is refused and leaves
    // nothing behind; the request goes on with the spans that are encoded here.
    const appending = new OtlpTraceEncoder();
    const kept = [span({}), span({ attributes: { ok: 1 } })];
    assert.ok(appending.begin(kept[0]));
    assert.ok(appending.append(kept[0]));
    assert.equal(appending.append(other), false);
    assert.equal(appending.append(span({ attributes: { list: ['a'] } })), false);
    assert.ok(appending.append(kept[1]));
    assert.equal(hex(appending.finish()), hex(ProtobufTraceSerializer.serializeRequest(kept) as Uint8Array));
    // The next request is exact again.
    assertSameBytes([span({}), span({ attributes: { ok: 1 } })], encoder, appending);
  });
});
