/**
 * The bounded export queue: OTEL_BSP_* honoured, every lost span counted
 * (queue full, failed or timed-out export, left at shutdown), flush and
 * shutdown stop at their deadline whatever the exporter does. The same
 * behaviours whether spans wait as objects (any exporter) or as encoded bytes
 * (an exporter taking encoded bodies).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { processStats } from '../../../src/sinks/process-stats.ts';
import { batcherOptionsFromEnv, SpanBatcher } from '../../../src/sinks/tracing/span-batcher.ts';
import { finishedTransaction, spanResource, spanScope, transactionSpans } from '../../support/spans.ts';

type Mode = 'ok' | 'fail' | 'hang' | 'throw';

class FakeExporter implements SpanExporter {
  readonly batches: number[] = [];
  mode: Mode = 'ok';
  shutdownHangs = false;
  shutdowns = 0;
  /** Callbacks of hanging exports, to release them. */
  readonly held: ((r: ExportResult) => void)[] = [];

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.sent(spans.length, done);
  }

  protected sent(count: number, done: (r: ExportResult) => void): void {
    this.batches.push(count);
    if (this.mode === 'throw') throw new Error('boom');
    if (this.mode === 'hang') {
      this.held.push(done);
      return;
    }
    setImmediate(() =>
      done({
        code: this.mode === 'ok' ? ExportResultCode.SUCCESS : ExportResultCode.FAILED,
      }),
    );
  }

  shutdown(): Promise<void> {
    this.shutdowns++;
    return this.shutdownHangs ? new Promise(() => {}) : Promise.resolve();
  }
}

/** Takes encoded bodies: the batcher queues its spans as bytes. */
class FakeEncodedExporter extends FakeExporter {
  readonly bodies: Uint8Array[] = [];

  exportEncoded(body: Uint8Array, count: number, done: (r: ExportResult) => void): void {
    this.bodies.push(body);
    this.sent(count, done);
  }
}

const KINDS = [
  { kind: 'span objects', Exporter: FakeExporter },
  { kind: 'encoded bytes', Exporter: FakeEncodedExporter },
];

/** A span of a finished transaction, as the sink builds it: the encoder writes it. */
const span = transactionSpans(0)[0];
const snapshot = () => ({ ...processStats });
const delta = (before: typeof processStats) => ({
  exported: processStats.spansExported - before.spansExported,
  dropped: processStats.spansDropped - before.spansDropped,
  failures: processStats.spanExportFailures - before.spanExportFailures,
});
const opts = (o: Partial<ReturnType<typeof batcherOptionsFromEnv>> = {}) => ({
  maxQueueSize: 100,
  maxExportBatchSize: 10,
  scheduledDelayMs: 20,
  exportTimeoutMs: 1000,
  ...o,
});

describe('span batcher', () => {
  test('OTEL_BSP_* honoured; batches of 2048 in a queue of 8192 unless set; the batch never exceeds the queue', () => {
    assert.deepEqual(batcherOptionsFromEnv({}), {
      maxQueueSize: 8192,
      maxExportBatchSize: 2048,
      scheduledDelayMs: 5000,
      exportTimeoutMs: 30_000,
    });
    assert.deepEqual(
      batcherOptionsFromEnv({
        OTEL_BSP_MAX_QUEUE_SIZE: '100',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '500',
        OTEL_BSP_SCHEDULE_DELAY: '250',
        OTEL_BSP_EXPORT_TIMEOUT: 'soon',
      }),
      { maxQueueSize: 100, maxExportBatchSize: 100, scheduledDelayMs: 250, exportTimeoutMs: 30_000 },
    );
    // A queue set alone: batches a quarter of it, so a batch in flight leaves room for new spans.
    assert.equal(batcherOptionsFromEnv({ OTEL_BSP_MAX_QUEUE_SIZE: '2048' }).maxExportBatchSize, 512);
    assert.equal(batcherOptionsFromEnv({ OTEL_BSP_MAX_QUEUE_SIZE: '100000' }).maxExportBatchSize, 2048);
    assert.equal(batcherOptionsFromEnv({ OTEL_BSP_MAX_QUEUE_SIZE: '3' }).maxExportBatchSize, 1);
  });
});

for (const { kind, Exporter } of KINDS) {
  describe(`span batcher, spans queued as ${kind}`, () => {
    test('batches of at most maxExportBatchSize, one export at a time, all counted as exported', async () => {
      const ex = new Exporter();
      const b = new SpanBatcher(ex, opts());
      const before = snapshot();
      for (let i = 0; i < 35; i++) b.add(span);
      await b.flush(1000);
      assert.deepEqual(ex.batches, [10, 10, 10, 5]);
      assert.deepEqual(delta(before), { exported: 35, dropped: 0, failures: 0 });
    });

    test('a partial batch goes after the schedule delay', async () => {
      const ex = new Exporter();
      const b = new SpanBatcher(ex, opts({ scheduledDelayMs: 30 }));
      b.add(span);
      assert.deepEqual(ex.batches, []);
      await new Promise((r) => setTimeout(r, 80));
      assert.deepEqual(ex.batches, [1]);
    });

    test('a full queue drops and counts, and never grows', async () => {
      const ex = new Exporter();
      ex.mode = 'hang';
      const b = new SpanBatcher(ex, opts({ maxQueueSize: 20, maxExportBatchSize: 10 }));
      const before = snapshot();
      for (let i = 0; i < 100; i++) b.add(span);
      // 10 in flight (hung), 20 queued, 70 dropped.
      assert.equal(b.queued, 20);
      assert.equal(delta(before).dropped, 70);
      for (const done of ex.held) done({ code: ExportResultCode.SUCCESS });
    });

    test('a finished transaction is queued from its record as bytes; as objects it is left to the caller', async () => {
      const ex = new Exporter();
      const b = new SpanBatcher(ex, opts());
      const before = snapshot();
      for (let i = 0; i < 7; i++) {
        const handled = b.addTransaction(finishedTransaction(i), null, spanResource, spanScope);
        assert.equal(handled, ex instanceof FakeEncodedExporter);
        if (!handled) for (const s of transactionSpans(i)) b.add(s);
      }
      await b.flush(1000);
      assert.deepEqual(ex.batches, [10, 4]);
      assert.deepEqual(delta(before), { exported: 14, dropped: 0, failures: 0 });
      // An unsampled transaction has no span: nothing to queue, nothing for the caller to build.
      const unsampled = finishedTransaction(8);
      unsampled.sampled = false;
      assert.ok(b.addTransaction(unsampled, null, spanResource, spanScope));
      assert.equal(b.queued, 0);
    });

    test('failed, throwing and timed-out exports count a failure and drop their spans', async () => {
      for (const mode of ['fail', 'throw', 'hang'] as const) {
        const ex = new Exporter();
        ex.mode = mode;
        const b = new SpanBatcher(ex, opts({ exportTimeoutMs: 50 }));
        const before = snapshot();
        for (let i = 0; i < 10; i++) b.add(span);
        await b.flush(500);
        assert.deepEqual(delta(before), { exported: 0, dropped: 10, failures: 1 }, mode);
        // A late success of a timed-out export changes nothing.
        for (const done of ex.held) done({ code: ExportResultCode.SUCCESS });
        assert.deepEqual(delta(before), { exported: 0, dropped: 10, failures: 1 }, mode);
      }
    });

    test('flush stops at its deadline when the exporter hangs', async () => {
      const ex = new Exporter();
      ex.mode = 'hang';
      const b = new SpanBatcher(ex, opts({ exportTimeoutMs: 60_000 }));
      for (let i = 0; i < 10; i++) b.add(span);
      const t0 = performance.now();
      await b.flush(100);
      const took = performance.now() - t0;
      assert.ok(took >= 95 && took < 300, `flush took ${took} ms`);
    });

    test('shutdown stops at its deadline, counts what is left, and takes nothing more', async () => {
      const ex = new Exporter();
      ex.mode = 'hang';
      ex.shutdownHangs = true;
      const b = new SpanBatcher(ex, opts({ exportTimeoutMs: 60_000 }));
      for (let i = 0; i < 25; i++) b.add(span);
      const before = snapshot();
      const t0 = performance.now();
      await b.shutdown(150);
      const took = performance.now() - t0;
      assert.ok(took < 400, `shutdown took ${took} ms`);
      assert.equal(ex.shutdowns, 1);
      assert.equal(delta(before).dropped, 15, 'the queued spans (10 are in the hung export)');
      b.add(span);
      assert.equal(delta(before).dropped, 16, 'a span after shutdown is dropped and counted');
      assert.equal(b.queued, 0);
    });

    test('shutdown exports what is queued first', async () => {
      const ex = new Exporter();
      const b = new SpanBatcher(ex, opts({ scheduledDelayMs: 60_000 }));
      const before = snapshot();
      for (let i = 0; i < 3; i++) b.add(span);
      await b.shutdown(1000);
      assert.deepEqual(ex.batches, [3]);
      assert.deepEqual(delta(before), { exported: 3, dropped: 0, failures: 0 });
    });
  });
}

test("span batcher, spans queued as bytes: a full queue drops a transaction's spans together, and counts them", () => {
  const ex = new FakeEncodedExporter();
  ex.mode = 'hang';
  const b = new SpanBatcher(ex, opts({ maxQueueSize: 5, maxExportBatchSize: 3 }));
  const before = snapshot();
  // A batch closes between a transaction's two spans: 3 go out in the first (hung) export, the
  // next 5 fill the queue, and the fifth transaction finds no room for its two.
  for (let i = 0; i < 5; i++)
    assert.ok(b.addTransaction(finishedTransaction(i), null, spanResource, spanScope));
  assert.deepEqual(ex.batches, [3]);
  assert.equal(b.queued, 5);
  assert.equal(delta(before).dropped, 2);
  for (const done of ex.held) done({ code: ExportResultCode.SUCCESS });
});
