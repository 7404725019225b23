/**
 * The OTLP/protobuf exporter behind the batcher: spans are queued as the
 * bytes of their batch, what the encoder leaves to the SDK serializer (an
 * array value, another resource) rides in the same body, and export() called
 * directly encodes what it is given. A real OTLP/HTTP receiver decodes every
 * span.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { processStats } from '../../../src/sinks/process-stats.ts';
import { OtlpProtoTraceExporter } from '../../../src/sinks/tracing/otlp-proto-exporter.ts';
import { SpanBatcher } from '../../../src/sinks/tracing/span-batcher.ts';
import { TraceReceiver } from '../../support/otlp-receiver.ts';
import { oddSpan, transactionSpans } from '../../support/spans.ts';

describe('OTLP/protobuf exporter', () => {
  const receiver = new TraceReceiver();
  before(() => receiver.start());
  after(() => receiver.stop());

  test('spans queued as bytes arrive whole, those the SDK serializer writes in the same request', async () => {
    const exporter = new OtlpProtoTraceExporter({ url: `${receiver.url}/v1/traces` });
    const batcher = new SpanBatcher(exporter, {
      maxQueueSize: 1000,
      maxExportBatchSize: 150,
      scheduledDelayMs: 10,
      exportTimeoutMs: 5000,
    });
    const sent: ReadableSpan[] = [];
    // 150 spans the encoder writes, then a batch with two it leaves to the SDK serializer.
    for (let i = 0; i < 100; i++) sent.push(...transactionSpans(i));
    sent.splice(160, 0, oddSpan('OPTIONS', 'aaaaaaaaaaaaaaa1', { 'sip.list': ['a', 'b'] }));
    sent.splice(
      170,
      0,
      oddSpan('MESSAGE', 'aaaaaaaaaaaaaaa2', {}, resourceFromAttributes({ 'service.name': 'other' })),
    );
    const before = processStats.spansExported;
    const firstRequest = receiver.requests.length;
    for (const s of sent) batcher.add(s);
    // The first 150 went as soon as they were a batch; the rest waits for the flush.
    assert.equal(batcher.queued, sent.length - 150);
    await batcher.flush(5000);
    await receiver.waitForSpans(sent.length, 5000);

    assert.equal(processStats.spansExported - before, sent.length);
    const requests = receiver.requests.slice(firstRequest);
    assert.deepEqual(
      requests.map((r) => r.spans),
      [150, sent.length - 150],
    );
    const got = new Map(receiver.spans.map((s) => [s.spanId, s]));
    for (const s of sent) {
      const r = got.get(s.spanContext().spanId);
      assert.ok(r !== undefined, `span ${s.name} arrived`);
      assert.equal(r.name, s.name);
      assert.equal(r.traceId, s.spanContext().traceId);
      assert.deepEqual(Object.keys(r.attributes).sort(), Object.keys(s.attributes).sort());
      assert.equal(r.resource['service.name'], s.resource.attributes['service.name']);
    }
    assert.deepEqual(got.get('aaaaaaaaaaaaaaa1')?.attributes['sip.list'], ['a', 'b']);
    await batcher.shutdown(1000);
  });

  test('export() called directly encodes the spans it is given, odd ones by the SDK serializer', async () => {
    const exporter = new OtlpProtoTraceExporter({ url: `${receiver.url}/v1/traces` });
    const plain: ReadableSpan[] = [];
    for (let i = 200; i < 210; i++) plain.push(...transactionSpans(i));
    const odd = [...plain.slice(0, 2), oddSpan('OPTIONS', 'ccccccccccccccc1', { 'sip.list': ['x'] })];
    const n = receiver.spans.length;
    for (const batch of [plain.slice(2), odd]) {
      const code = await new Promise<number>((resolve) => exporter.export(batch, (r) => resolve(r.code)));
      assert.equal(code, 0);
    }
    await receiver.waitForSpans(n + plain.length + 1, 5000);
    const ids = new Set(receiver.spans.slice(n).map((s) => s.spanId));
    for (const s of plain) assert.ok(ids.has(s.spanContext().spanId));
    assert.ok(ids.has('ccccccccccccccc1'));
    await exporter.shutdown();
  });
});
