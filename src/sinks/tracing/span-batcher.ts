import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { processStats } from '../process-stats.ts';

export interface BatcherOptions {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMs: number;
  exportTimeoutMs: number;
}

/** OTEL_BSP_* (OpenTelemetry SDK environment variables), with the SDK's defaults. */
export function batcherOptionsFromEnv(env: NodeJS.ProcessEnv): BatcherOptions {
  const n = (name: string, d: number) => {
    const v = Number(env[name]);
    return Number.isFinite(v) && v > 0 ? v : d;
  };
  return {
    maxQueueSize: n('OTEL_BSP_MAX_QUEUE_SIZE', 2048),
    maxExportBatchSize: n('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512),
    scheduledDelayMs: n('OTEL_BSP_SCHEDULE_DELAY', 1000),
    exportTimeoutMs: n('OTEL_BSP_EXPORT_TIMEOUT', 30_000),
  };
}

/**
 * A bounded export queue in front of a SpanExporter. The SDK's batch processor
 * drops silently when full; this one counts every dropped span and failed
 * batch (processStats), so "exporter trouble never touches forwarding" is
 * visible: the queue never grows past maxQueueSize, and at most one export is
 * in flight.
 *
 *   add ──▶ [ queue ≤ maxQueueSize ] ──(batch ≤ maxExportBatchSize, every scheduledDelayMs)──▶ exporter
 *            full → drop + count                                 failure/timeout → count
 */
export class SpanBatcher {
  private readonly exporter: SpanExporter;
  private readonly opts: BatcherOptions;
  private queue: ReadableSpan[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private stopped = false;

  constructor(exporter: SpanExporter, opts: BatcherOptions) {
    this.exporter = exporter;
    this.opts = opts;
  }

  get queued(): number {
    return this.queue.length;
  }

  add(span: ReadableSpan): void {
    if (this.stopped) return;
    if (this.queue.length >= this.opts.maxQueueSize) {
      processStats.spansDropped++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.opts.maxExportBatchSize) this.kick();
    else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.kick();
      }, this.opts.scheduledDelayMs);
      this.timer.unref();
    }
  }

  private kick(): void {
    if (this.inFlight !== null || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.opts.maxExportBatchSize);
    this.inFlight = this.exportBatch(batch).finally(() => {
      this.inFlight = null;
      if (this.queue.length >= this.opts.maxExportBatchSize) this.kick();
      else if (this.queue.length > 0 && this.timer === null && !this.stopped) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.kick();
        }, this.opts.scheduledDelayMs);
        this.timer.unref();
      }
    });
  }

  private exportBatch(batch: ReadableSpan[]): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false;
      const timeout = setTimeout(() => {
        if (done) return;
        done = true;
        processStats.spanExportFailures++;
        processStats.spansDropped += batch.length;
        resolve();
      }, this.opts.exportTimeoutMs);
      timeout.unref();
      try {
        this.exporter.export(batch, (result) => {
          if (done) return;
          done = true;
          clearTimeout(timeout);
          if (result.code === ExportResultCode.SUCCESS) processStats.spansExported += batch.length;
          else {
            processStats.spanExportFailures++;
            processStats.spansDropped += batch.length;
          }
          resolve();
        });
      } catch {
        done = true;
        clearTimeout(timeout);
        processStats.spanExportFailures++;
        processStats.spansDropped += batch.length;
        resolve();
      }
    });
  }

  /** Export what is queued, within the deadline. */
  async flush(deadlineMs: number): Promise<void> {
    const deadline = performance.now() + deadlineMs;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while ((this.queue.length > 0 || this.inFlight !== null) && performance.now() < deadline) {
      this.kick();
      const left = deadline - performance.now();
      await Promise.race([
        this.inFlight ?? Promise.resolve(),
        new Promise((r) => setTimeout(r, Math.max(1, left)).unref()),
      ]);
    }
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    processStats.spansDropped += this.queue.length;
    this.queue = [];
    try {
      await this.exporter.shutdown();
    } catch {
      // an exporter that cannot shut down cleanly must not block the process
    }
  }
}
