import type { ExportResult, InstrumentationScope } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { TransactionRecord } from '../../observe/records.ts';
import type { RetransmissionTimes } from './span-builder.ts';

export type ExportDone = (result: ExportResult) => void;

/** Spans taken off a queue together, for one export call. */
export interface QueuedBatch {
  readonly count: number;
  /** One export call; `done` once with its result (unless the exporter never answers: the batcher times it out). */
  send(done: ExportDone): void;
}

/**
 * Where the batcher keeps spans between their end and their export: as span
 * objects (SpanArrayQueue, any exporter) or as the bytes of the batch they will
 * go in (EncodedSpanQueue, for an exporter that takes encoded bodies).
 */
export interface SpanQueue {
  /** Spans queued, not yet taken. */
  readonly length: number;
  /** A whole batch waits: the batch size reached (or, for bytes, their bound). */
  readonly full: boolean;
  /** False when the span could not be queued (the caller counts it as dropped). */
  push(span: ReadableSpan): boolean;
  /**
   * The spans of a finished transaction, queued without span objects: how
   * many were queued, or -1 when this queue takes span objects only (the
   * caller then builds them and push()es each).
   */
  pushTransaction(
    tx: TransactionRecord,
    retransmissions: RetransmissionTimes | null,
    resource: ReadableSpan['resource'],
    scope: InstrumentationScope,
  ): number;
  /** The oldest spans, at most the batch size the queue was made with (at least one: the caller checks `length`), off the queue. */
  take(): QueuedBatch;
  /** Forget every queued span (the caller counts them as dropped). */
  clear(): void;
}

class SpanArrayBatch implements QueuedBatch {
  private readonly exporter: SpanExporter;
  private readonly spans: ReadableSpan[];

  constructor(exporter: SpanExporter, spans: ReadableSpan[]) {
    this.exporter = exporter;
    this.spans = spans;
  }

  get count(): number {
    return this.spans.length;
  }

  send(done: ExportDone): void {
    this.exporter.export(this.spans, done);
  }
}

/** Span objects in an array, exported as they are: what every exporter takes. */
export class SpanArrayQueue implements SpanQueue {
  private readonly exporter: SpanExporter;
  private readonly batchSize: number;
  private spans: ReadableSpan[] = [];

  constructor(exporter: SpanExporter, batchSize: number) {
    this.exporter = exporter;
    this.batchSize = batchSize;
  }

  get length(): number {
    return this.spans.length;
  }

  get full(): boolean {
    return this.spans.length >= this.batchSize;
  }

  push(span: ReadableSpan): boolean {
    this.spans.push(span);
    return true;
  }

  pushTransaction(): number {
    return -1;
  }

  take(): QueuedBatch {
    let batch: ReadableSpan[];
    if (this.spans.length <= this.batchSize) {
      batch = this.spans;
      this.spans = [];
    } else batch = this.spans.splice(0, this.batchSize);
    return new SpanArrayBatch(this.exporter, batch);
  }

  clear(): void {
    this.spans = [];
  }
}
