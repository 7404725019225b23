/**
 * Spans queued as the bytes of their batch: batches close at their size and
 * leave oldest first, each body the bytes the SDK serializer writes for the
 * same spans; what the encoder leaves alone rides in the same body as a
 * request of its own; what nothing can write is refused, not thrown.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import {
  type EncodedBodyExporter,
  EncodedSpanQueue,
  takesEncodedBodies,
} from '../../../src/sinks/tracing/encoded-span-queue.ts';
import {
  finishedTransaction,
  oddSpan,
  spanResource,
  spanScope,
  transactionSpans,
} from '../../support/spans.ts';

/** A span with an array attribute value: left to the SDK serializer. */
const arraySpan = (spanId: string) => oddSpan('OPTIONS', spanId, { 'sip.list': ['a', 'b'] });

class RecordingExporter implements EncodedBodyExporter {
  readonly sent: { body: Uint8Array; spans: number }[] = [];
  export(): void {
    throw new Error('the queue sends encoded bodies only');
  }
  exportEncoded(body: Uint8Array, spans: number, done: (r: ExportResult) => void): void {
    this.sent.push({ body, spans });
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

const sdkBytes = (spans: ReadableSpan[]) =>
  Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array).toString('hex');

/** The exporter got batches of `sizes` spans, each body the bytes the SDK writes for those of `spans`, in order. */
function assertBatches(exporter: RecordingExporter, spans: ReadableSpan[], sizes: number[]): void {
  assert.deepEqual(
    exporter.sent.map((b) => b.spans),
    sizes,
  );
  let from = 0;
  for (const batch of exporter.sent) {
    assert.equal(Buffer.from(batch.body).toString('hex'), sdkBytes(spans.slice(from, from + batch.spans)));
    from += batch.spans;
  }
}

/** Send every batch queued, as the batcher does one after the other. */
function takeAll(queue: EncodedSpanQueue): void {
  while (queue.length > 0) queue.take().send(() => {});
}

describe('encoded span queue', () => {
  test('an exporter with exportEncoded takes encoded bodies; others do not', () => {
    assert.ok(takesEncodedBodies(new RecordingExporter()));
    assert.ok(!takesEncodedBodies({ export() {}, shutdown: async () => {} }));
  });

  test('batches close at their size and leave oldest first, each the bytes the SDK writes', () => {
    const exporter = new RecordingExporter();
    const queue = new EncodedSpanQueue(exporter, 4);
    const spans: ReadableSpan[] = [];
    for (let n = 0; n < 5; n++) spans.push(...transactionSpans(n));
    for (const s of spans) assert.ok(queue.push(s));
    assert.equal(queue.length, 10);
    const first = queue.take();
    assert.equal(first.count, 4);
    assert.equal(queue.length, 6);
    first.send(() => {});
    takeAll(queue);
    // The open batch of 2 was closed early, as the batcher's timer or a flush takes it.
    assertBatches(exporter, spans, [4, 4, 2]);
  });

  test('transactions written from their records share batches with span objects, in order, as the SDK writes them', () => {
    const exporter = new RecordingExporter();
    const queue = new EncodedSpanQueue(exporter, 4);
    const spans: ReadableSpan[] = [];
    for (let n = 0; n < 5; n++) {
      spans.push(...transactionSpans(n));
      if (n % 2 === 0)
        assert.equal(queue.pushTransaction(finishedTransaction(n), null, spanResource, spanScope), 2);
      else for (const s of transactionSpans(n)) assert.ok(queue.push(s));
    }
    assert.equal(queue.length, 10);
    takeAll(queue);
    assertBatches(exporter, spans, [4, 4, 2]);
  });

  test('a transaction for a resource the open batch is not for is left to the caller', () => {
    const queue = new EncodedSpanQueue(new RecordingExporter(), 4);
    assert.ok(queue.push(transactionSpans(0)[0]));
    const other = { ...spanScope, name: 'other' };
    assert.equal(queue.pushTransaction(finishedTransaction(1), null, spanResource, other), -1);
    assert.equal(queue.length, 1);
  });

  test('a batch closes at its byte bound before its span count, and a closed batch makes the queue full', () => {
    const exporter = new RecordingExporter();
    const spans: ReadableSpan[] = [];
    for (let n = 20; n < 30; n++) spans.push(...transactionSpans(n));
    // The bound: what the first three spans take in a request of their own, less a byte.
    const bound = sdkBytes(spans.slice(0, 3)).length / 2 - 1;
    const queue = new EncodedSpanQueue(exporter, 100, bound);
    assert.ok(queue.push(spans[0]));
    assert.ok(queue.push(spans[1]));
    assert.equal(queue.full, false);
    assert.ok(queue.push(spans[2]));
    assert.equal(queue.full, true, 'three spans reach the bytes bound, far below 100 spans');
    for (const s of spans.slice(3)) assert.ok(queue.push(s));
    takeAll(queue);
    assert.ok(exporter.sent.length >= 5, `${exporter.sent.length} batches of 20 spans`);
    // A body passes its bound by the span that reached it, at most.
    const largestSpan = Math.max(...spans.map((x) => sdkBytes([x]).length / 2));
    let at = 0;
    for (const batch of exporter.sent) {
      assert.ok(batch.body.length < bound + largestSpan, `${batch.body.length} bytes`);
      assert.equal(Buffer.from(batch.body).toString('hex'), sdkBytes(spans.slice(at, at + batch.spans)));
      at += batch.spans;
    }
    assert.equal(at, spans.length);
  });

  test('a span the encoder leaves alone rides in the same body, as a request of its own', () => {
    const exporter = new RecordingExporter();
    const queue = new EncodedSpanQueue(exporter, 10);
    const plain = [...transactionSpans(7), ...transactionSpans(8)];
    const odd = arraySpan('aaaaaaaaaaaaaaa1');
    // A stray first, then in the middle: the encoder's request is begun by the first span it writes.
    for (const s of [odd, plain[0], plain[1], arraySpan('aaaaaaaaaaaaaaa2'), plain[2], plain[3]])
      assert.ok(queue.push(s));
    takeAll(queue);
    assert.equal(exporter.sent.length, 1);
    assert.equal(exporter.sent[0].spans, 6);
    // Concatenated requests are one request to a protobuf reader: the encoded spans, then each stray.
    assert.equal(
      Buffer.from(exporter.sent[0].body).toString('hex'),
      sdkBytes(plain) + sdkBytes([odd]) + sdkBytes([arraySpan('aaaaaaaaaaaaaaa2')]),
    );
  });

  test('a batch of strays only is their requests, one after the other', () => {
    const exporter = new RecordingExporter();
    const queue = new EncodedSpanQueue(exporter, 2);
    const odd = [arraySpan('bbbbbbbbbbbbbbb1'), arraySpan('bbbbbbbbbbbbbbb2')];
    for (const s of odd) assert.ok(queue.push(s));
    takeAll(queue);
    assert.equal(Buffer.from(exporter.sent[0].body).toString('hex'), sdkBytes([odd[0]]) + sdkBytes([odd[1]]));
  });

  test('a span nothing can write is refused, and the queue holds what it held', () => {
    const exporter = new RecordingExporter();
    const queue = new EncodedSpanQueue(exporter, 10);
    const plain = transactionSpans(9);
    assert.ok(queue.push(plain[0]));
    assert.equal(queue.push({} as ReadableSpan), false);
    assert.ok(queue.push(plain[1]));
    assert.equal(queue.length, 2);
    takeAll(queue);
    assert.equal(Buffer.from(exporter.sent[0].body).toString('hex'), sdkBytes(plain));
  });

  test('clear forgets the open batch and the closed ones; the next batch is exact', () => {
    const exporter = new RecordingExporter();
    const queue = new EncodedSpanQueue(exporter, 2);
    for (let n = 10; n < 12; n++) for (const s of transactionSpans(n)) queue.push(s);
    queue.push(transactionSpans(12)[0]);
    assert.equal(queue.length, 5);
    queue.clear();
    assert.equal(queue.length, 0);
    const next = transactionSpans(13);
    for (const s of next) queue.push(s);
    takeAll(queue);
    assert.deepEqual(
      exporter.sent.map((b) => [b.spans, Buffer.from(b.body).toString('hex')]),
      [[2, sdkBytes(next)]],
    );
  });
});
