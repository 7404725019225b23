import { performance } from 'node:perf_hooks';
import { ExportResultCode, type InstrumentationScope } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { TransactionRecord } from '../../observe/records.ts';
import { processStats } from '../process-stats.ts';
import { EncodedSpanQueue, takesEncodedBodies } from './encoded-span-queue.ts';
import { type RetransmissionTimes, transactionSpanCount } from './span-builder.ts';
import { type QueuedBatch, SpanArrayQueue, type SpanQueue } from './span-queue.ts';

export interface BatcherOptions {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMs: number;
  exportTimeoutMs: number;
}

/**
 * Spans per export request unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE says otherwise: four times the
 * specification's 512, with the queue four times its 2048 (OTEL_BSP_MAX_QUEUE_SIZE).
 *
 * Why not the SDK's defaults: an SDK in an application ends a few spans a request; sipspan ends
 * about six a call at every hop, thousands a second. With batches of 512 that was a request every
 * ~40 ms at 2000 calls/s, and each request costs the forwarding path more than its bytes (the HTTP
 * client, its promises and timers, the response, the caches they take from the path): all telemetry
 * on cost 4–9% more CPU per call than with batches of 2048 (~15 µs at 2000 calls/s; bench/README.md,
 * "Span export batches").
 * A request of 2048 SIPp spans is ~1 MB; an encoded batch also closes at MAX_BATCH_BYTES
 * (encoded-span-queue.ts), under the 4 MiB a collector's gRPC receiver takes by default.
 */
const DEFAULT_EXPORT_BATCH_SIZE = 2048;
const DEFAULT_QUEUE_SIZE = 4 * DEFAULT_EXPORT_BATCH_SIZE;

/**
 * OTEL_BSP_* (OpenTelemetry SDK environment variables), with sipspan's defaults for the batch and
 * queue sizes (above) and the specification's for the delay and the timeout. The 3.x
 * BatchSpanProcessor no longer reads them itself (sdk-node does), so they are read here, from the
 * sink's environment.
 */
export function batcherOptionsFromEnv(env: NodeJS.ProcessEnv): BatcherOptions {
  const n = (name: string, d: number) => {
    const text = env[name];
    const v = text === undefined || text.trim() === '' ? Number.NaN : Number(text);
    return Number.isFinite(v) && v > 0 ? Math.floor(v) : d;
  };
  const maxQueueSize = n('OTEL_BSP_MAX_QUEUE_SIZE', DEFAULT_QUEUE_SIZE);
  // A queue set alone keeps a batch a quarter of it (the specification's ratio), so one batch in
  // flight leaves room for the spans that end meanwhile; a batch equal to the queue would drop them.
  const batchDefault = Math.min(DEFAULT_EXPORT_BATCH_SIZE, Math.max(1, Math.floor(maxQueueSize / 4)));
  return {
    maxQueueSize,
    // Spec: the batch size must not exceed the queue size.
    maxExportBatchSize: Math.min(maxQueueSize, n('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', batchDefault)),
    scheduledDelayMs: n('OTEL_BSP_SCHEDULE_DELAY', 5000),
    exportTimeoutMs: n('OTEL_BSP_EXPORT_TIMEOUT', 30_000),
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());

/**
 * A bounded export queue in front of one SpanExporter: the SDK's
 * BatchSpanProcessor behaviour (queue, batch size, delay, export timeout)
 * with every loss counted in processStats. Why not the SDK class itself: in
 * 3.x it drops silently when full (the count is only reachable through an
 * experimental self-observability meter option), its forceFlush sends every
 * queued batch at once with no deadline, and its shutdown waits for the
 * exporter without one. Here at most one export is in flight, flush and
 * shutdown stop at their deadline, and nothing here can throw into the code
 * that ended the transaction. An exporter that takes encoded bodies gets its
 * spans queued as bytes (encoded-span-queue.ts), the others as span objects.
 *
 *   add ──▶ [ queue ≤ maxQueueSize ] ──(a full batch: maxExportBatchSize, or MAX_BATCH_BYTES encoded; else every scheduledDelayMs)──▶ exporter
 *            full: drop, spansDropped++            ok: spansExported += n
 *                                                  failed or exportTimeoutMs: spanExportFailures++, spansDropped += n
 */
export class SpanBatcher implements SpanProcessor {
  private readonly exporter: SpanExporter;
  private readonly opts: BatcherOptions;
  private readonly queue: SpanQueue;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private stopped = false;
  private readonly onTimer = () => {
    this.timer = null;
    this.kick();
  };

  constructor(exporter: SpanExporter, opts: BatcherOptions) {
    this.exporter = exporter;
    this.opts = opts;
    this.queue = takesEncodedBodies(exporter)
      ? new EncodedSpanQueue(exporter, opts.maxExportBatchSize)
      : new SpanArrayQueue(exporter, opts.maxExportBatchSize);
  }

  get queued(): number {
    return this.queue.length;
  }

  // SpanProcessor: the sink calls add() directly; these let the batcher stand where a processor is expected.
  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    this.add(span);
  }

  forceFlush(): Promise<void> {
    return this.flush(this.opts.exportTimeoutMs);
  }

  add(span: ReadableSpan): void {
    if (this.stopped || this.queue.length >= this.opts.maxQueueSize) {
      processStats.spansDropped++;
      return;
    }
    let queued: boolean;
    try {
      queued = this.queue.push(span);
    } catch {
      queued = false;
    }
    if (!queued) {
      processStats.spansDropped++;
      return;
    }
    if (this.queue.full) this.kick();
    else this.arm();
  }

  /**
   * The spans of a finished, sampled transaction, queued straight from its
   * record when the queue takes encoded bodies. False when it takes span
   * objects: the caller then builds them and add()s each. A queue without
   * room for all of the transaction's spans drops them together (counted).
   */
  addTransaction(
    tx: TransactionRecord,
    retransmissions: RetransmissionTimes | null,
    resource: ReadableSpan['resource'],
    scope: InstrumentationScope,
  ): boolean {
    const spans = transactionSpanCount(tx);
    if (spans === 0) return true;
    if (this.stopped || this.queue.length + spans > this.opts.maxQueueSize) {
      processStats.spansDropped += spans;
      return true;
    }
    let queued: number;
    try {
      queued = this.queue.pushTransaction(tx, retransmissions, resource, scope);
    } catch {
      queued = -1;
    }
    if (queued < 0) return false;
    // A span the encoder threw on is lost, and counted.
    processStats.spansDropped += spans - queued;
    if (this.queue.full) this.kick();
    else this.arm();
    return true;
  }

  private arm(): void {
    if (this.timer !== null || this.stopped) return;
    this.timer = setTimeout(this.onTimer, this.opts.scheduledDelayMs);
    this.timer.unref();
  }

  private kick(): void {
    if (this.inFlight !== null || this.queue.length === 0) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    let batch: QueuedBatch;
    try {
      batch = this.queue.take();
    } catch {
      // Whatever was queued cannot be told apart any more: all of it is lost, and counted.
      processStats.spanExportFailures++;
      processStats.spansDropped += this.queue.length;
      this.queue.clear();
      return;
    }
    this.inFlight = this.exportBatch(batch).then(() => {
      this.inFlight = null;
      if (this.queue.full) this.kick();
      else if (this.queue.length > 0) this.arm();
    });
  }

  /** One export call; resolves (never rejects) on the callback, a throw, or exportTimeoutMs. */
  private exportBatch(batch: QueuedBatch): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false;
      const settle = (ok: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timeout);
        if (ok) processStats.spansExported += batch.count;
        else {
          processStats.spanExportFailures++;
          processStats.spansDropped += batch.count;
        }
        resolve();
      };
      const timeout = setTimeout(() => settle(false), this.opts.exportTimeoutMs);
      timeout.unref();
      try {
        batch.send((result) => settle(result.code === ExportResultCode.SUCCESS));
      } catch {
        settle(false);
      }
    });
  }

  /** Export what is queued; resolves when the queue is empty and nothing is in flight, or at the deadline. */
  async flush(deadlineMs: number): Promise<void> {
    const deadline = performance.now() + deadlineMs;
    for (;;) {
      this.kick();
      const pending = this.inFlight;
      if (pending === null) return;
      const left = deadline - performance.now();
      if (left <= 0) return;
      await Promise.race([pending, sleep(left)]);
    }
  }

  /**
   * Stop taking spans, export what is queued and shut the exporter down, all
   * within the deadline. Spans still queued then are counted as dropped.
   */
  async shutdown(deadlineMs = this.opts.exportTimeoutMs): Promise<void> {
    const deadline = performance.now() + deadlineMs;
    await this.flush(deadlineMs);
    this.stopped = true;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    processStats.spansDropped += this.queue.length;
    this.queue.clear();
    let closing: Promise<void>;
    try {
      // An exporter failing to shut down must not keep the process from stopping.
      closing = this.exporter.shutdown().catch(() => {});
    } catch {
      return;
    }
    // One that cannot shut down in time (a request stuck on a dead collector) is left behind.
    await Promise.race([closing, sleep(deadline - performance.now())]);
  }
}
