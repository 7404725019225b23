/**
 * The OTLP/gRPC exporter behind the batcher: spans are queued as the bytes
 * of their batch, as for OTLP/HTTP, and arrive whole at a real gRPC receiver,
 * those the encoder leaves to the SDK serializer in the same request; a
 * refused request is a counted failure; OTEL_EXPORTER_OTLP_PROTOCOL=grpc
 * builds this exporter.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { processStats } from '../../../src/sinks/process-stats.ts';
import { OtlpGrpcTraceExporter } from '../../../src/sinks/tracing/otlp-grpc-exporter.ts';
import { SpanBatcher } from '../../../src/sinks/tracing/span-batcher.ts';
import { exportersFromEnv } from '../../../src/sinks/tracing/tracing-sink.ts';
import { GrpcTraceReceiver } from '../../support/otlp-grpc-receiver.ts';
import { oddSpan, transactionSpans } from '../../support/spans.ts';

const batcherFor = (exporter: OtlpGrpcTraceExporter) =>
  new SpanBatcher(exporter, {
    maxQueueSize: 1000,
    maxExportBatchSize: 100,
    scheduledDelayMs: 10,
    exportTimeoutMs: 5000,
  });

describe('OTLP/gRPC exporter', () => {
  const receiver = new GrpcTraceReceiver();
  before(() => receiver.start());
  after(() => receiver.stop());

  test('spans queued as bytes arrive whole over gRPC, odd ones in the same request', async () => {
    const exporter = new OtlpGrpcTraceExporter({ url: receiver.url });
    const batcher = batcherFor(exporter);
    const sent: ReadableSpan[] = [];
    for (let i = 300; i < 370; i++) sent.push(...transactionSpans(i));
    sent.splice(120, 0, oddSpan('OPTIONS', 'ddddddddddddddd1', { 'sip.list': ['a', 'b'] }));
    sent.splice(
      130,
      0,
      oddSpan('MESSAGE', 'ddddddddddddddd2', {}, resourceFromAttributes({ 'service.name': 'other' })),
    );
    const before = processStats.spansExported;
    const firstRequest = receiver.requests.length;
    const firstSpan = receiver.spans.length;
    for (const s of sent) batcher.add(s);
    await batcher.flush(5000);
    await receiver.waitForSpans(firstSpan + sent.length, 5000);

    assert.equal(processStats.spansExported - before, sent.length);
    assert.deepEqual(receiver.requests.slice(firstRequest), [100, 42]);
    const got = new Map(receiver.spans.slice(firstSpan).map((s) => [s.spanId, s]));
    for (const s of sent) {
      const r = got.get(s.spanContext().spanId);
      assert.ok(r !== undefined, `span ${s.name} arrived`);
      assert.equal(r.name, s.name);
      assert.equal(r.traceId, s.spanContext().traceId);
      assert.equal(r.resource['service.name'], s.resource.attributes['service.name']);
    }
    assert.deepEqual(got.get('ddddddddddddddd1')?.attributes['sip.list'], ['a', 'b']);
    await batcher.shutdown(1000);
  });

  test('a request the receiver refuses is one failed export, its spans dropped and counted', async () => {
    receiver.failWith = status.INVALID_ARGUMENT;
    try {
      const batcher = batcherFor(new OtlpGrpcTraceExporter({ url: receiver.url }));
      const before = { ...processStats };
      for (const s of transactionSpans(400)) batcher.add(s);
      await batcher.flush(5000);
      assert.equal(processStats.spanExportFailures - before.spanExportFailures, 1);
      assert.equal(processStats.spansDropped - before.spansDropped, 2);
      assert.equal(processStats.spansExported - before.spansExported, 0);
      await batcher.shutdown(1000);
    } finally {
      receiver.failWith = null;
    }
  });

  test('OTEL_EXPORTER_OTLP_PROTOCOL=grpc builds it, at the endpoint given', () => {
    const [built] = exportersFromEnv({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    });
    assert.equal(built.name, 'otlp/grpc');
    assert.ok(built.exporter instanceof OtlpGrpcTraceExporter);
  });
});
