import { Buffer } from 'node:buffer';
import type { InstrumentationScope } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { TransactionRecord } from '../../observe/records.ts';
import { OtlpTraceEncoder } from './otlp-encoder.ts';
import { type RetransmissionTimes, transactionSpanCount } from './span-builder.ts';
import type { ExportDone, QueuedBatch, SpanQueue } from './span-queue.ts';

/** An exporter that sends a batch already encoded as an OTLP/protobuf ExportTraceServiceRequest. */
export interface EncodedBodyExporter extends SpanExporter {
  exportEncoded(body: Uint8Array, spans: number, done: ExportDone): void;
}

export function takesEncodedBodies(exporter: SpanExporter): exporter is EncodedBodyExporter {
  return typeof (exporter as Partial<EncodedBodyExporter>).exportEncoded === 'function';
}

class EncodedBatch implements QueuedBatch {
  readonly count: number;
  private readonly exporter: EncodedBodyExporter;
  private readonly body: Uint8Array;

  constructor(exporter: EncodedBodyExporter, body: Uint8Array, count: number) {
    this.exporter = exporter;
    this.body = body;
    this.count = count;
  }

  send(done: ExportDone): void {
    this.exporter.exportEncoded(this.body, this.count, done);
  }
}

const NOTHING = new Uint8Array(0);

/** A batch's body closes at this size: under the 4 MiB a collector's gRPC receiver takes by default. */
const MAX_BATCH_BYTES = 3 * 1024 * 1024;

/** One span as a request of its own, by the SDK serializer; null when even that fails. */
function serializeAlone(span: ReadableSpan): Uint8Array | null {
  try {
    return ProtobufTraceSerializer.serializeRequest([span]) ?? null;
  } catch {
    return null;
  }
}

/**
 * Spans kept as the bytes of the batch they will be exported in: each span is
 * written into the open batch's request when it is queued, and the span object
 * is left to die young.
 *
 * Why: queued as objects, ~1,000 spans were alive at any time under load (a
 * batch of 512 filling while the previous one was encoded and sent), and every
 * scavenge copied the survivors and promoted them to old space. With tracing
 * exported at 500 calls/s, scavenges took 4–9 ms and old space grew to a
 * mark-compact of 9–13 ms; those pauses were the per-hop p99 (bench/README.md).
 * Bytes in a Buffer live outside the collected heap.
 *
 * A batch is closed when it holds `batchSize` spans, or when the batcher takes
 * it early (its timer, a flush). A span the encoder does not write (another
 * resource or scope, an attribute value of another kind) is written by the SDK
 * serializer as a request of its own and appended to the batch's body at close:
 * protobuf merges concatenated messages, so the receiver reads one request with
 * one more ResourceSpans.
 *
 * A batch also closes once its body reaches MAX_BATCH_BYTES, whatever its span count: spans carry
 * wire values (a Call-ID may be kilobytes), and a collector's gRPC receiver refuses a request over
 * 4 MiB by default.
 *
 *   push ─▶ [ open request in the encoder | strays ] ─(batchSize or MAX_BATCH_BYTES, or taken)─▶ [ closed bodies ] ─▶ take
 */
export class EncodedSpanQueue implements SpanQueue {
  private readonly exporter: EncodedBodyExporter;
  private readonly batchSize: number;
  private readonly encoder = new OtlpTraceEncoder();
  private readonly closed: EncodedBatch[] = [];
  private closedSpans = 0;
  /** The open batch: the spans the encoder wrote, and the strays. */
  private encoded = 0;
  private strays: Uint8Array[] = [];
  private readonly maxBytes: number;

  constructor(exporter: EncodedBodyExporter, batchSize: number, maxBytes = MAX_BATCH_BYTES) {
    this.exporter = exporter;
    this.batchSize = batchSize;
    this.maxBytes = maxBytes;
  }

  get length(): number {
    return this.closedSpans + this.openSpans;
  }

  get full(): boolean {
    return this.closed.length > 0;
  }

  private get openSpans(): number {
    return this.encoded + this.strays.length;
  }

  push(span: ReadableSpan): boolean {
    if (this.write(span)) this.encoded++;
    else {
      const alone = serializeAlone(span);
      if (alone === null) return false;
      this.strays.push(alone);
    }
    this.closeWhenFull();
    return true;
  }

  /**
   * A finished transaction's spans, each written straight from its record
   * into the open request (transaction-spans.ts): no span object is made. A
   * batch closes between the two spans when the first fills it. -1 when the
   * open request is for another resource or scope (the caller then push()es
   * span objects); otherwise how many spans were queued, fewer than the
   * transaction has only when writing one threw.
   */
  pushTransaction(
    tx: TransactionRecord,
    retransmissions: RetransmissionTimes | null,
    resource: ReadableSpan['resource'],
    scope: InstrumentationScope,
  ): number {
    const spans = transactionSpanCount(tx);
    for (let i = 0; i < spans; i++) {
      try {
        // No span in the open batch (the first, or a batch closed after the first span): begin a request.
        const open = this.encoded > 0 || this.encoder.beginFor(resource, scope);
        if (!open || !this.encoder.appendTransactionSpan(tx, retransmissions, i, resource, scope))
          return i === 0 ? -1 : i;
      } catch {
        return i;
      }
      this.encoded++;
      this.closeWhenFull();
    }
    return spans;
  }

  take(): QueuedBatch {
    if (this.closed.length === 0) this.close();
    const batch = this.closed.shift() as EncodedBatch;
    this.closedSpans -= batch.count;
    return batch;
  }

  clear(): void {
    this.closed.length = 0;
    this.closedSpans = 0;
    this.encoded = 0;
    this.strays = [];
  }

  private closeWhenFull(): void {
    if (this.openSpans >= this.batchSize || this.openBytes() >= this.maxBytes) this.close();
  }

  /** The open batch's body so far: the encoder's request and the strays (rare: usually none). */
  private openBytes(): number {
    let n = this.encoder.size;
    for (let i = 0; i < this.strays.length; i++) n += this.strays[i].length;
    return n;
  }

  /** Into the encoder's open request; false when the encoder leaves the span to the SDK serializer. */
  private write(span: ReadableSpan): boolean {
    try {
      if (this.encoded === 0 && !this.encoder.begin(span)) return false;
      return this.encoder.append(span);
    } catch {
      return false;
    }
  }

  private close(): void {
    if (this.openSpans === 0) return;
    // An encoder request with no span in it (its first span became a stray) is left unfinished.
    let body = this.encoded > 0 ? this.encoder.finish() : NOTHING;
    if (this.strays.length > 0) body = Buffer.concat([body, ...this.strays]);
    const count = this.openSpans;
    this.closed.push(new EncodedBatch(this.exporter, body, count));
    this.closedSpans += count;
    this.encoded = 0;
    this.strays = [];
  }
}
