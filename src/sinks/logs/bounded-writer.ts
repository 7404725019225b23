import { Buffer } from 'node:buffer';
import process from 'node:process';
import { processStats } from '../process-stats.ts';
import type { LogTarget } from './destination.ts';
import { CHUNK_BYTES, LineChunks } from './line-chunks.ts';

/** After a destination error (disk full), how long until the file is opened again. */
const REOPEN_MS = 5000;
/**
 * Lines wait up to this long to share one write. Measured in-process with the
 * log sink writing to a file at 3 transaction lines a millisecond (~1000
 * calls/s): one write per event-loop turn cost ~11 µs of system CPU per line
 * (the libuv pool hand-off and the syscall), one write per 20 ms ~4 µs, no
 * logging ~2.5 µs. At 500 calls/s the lines come in groups of ~32 every
 * ~30 ms (observe/deferred-events.ts), so 20 ms made a write of every group:
 * a timer wake-up, then the pool thread and its completion, on the box's one
 * core. 100 ms gathers three groups: 96 fewer context switches a second (9%
 * of the process's, logs and metrics on, three alternated 10 s runs); the CPU
 * per call moved less than the machine's noise (`npm run bench:ab`, all on,
 * eight rounds: 0.99×). A log agent reads a file once a second or so; a line
 * still reaches the file within ~150 ms of its transaction's end.
 */
const BATCH_MS = 100;
/** A batch this large goes out at the next turn instead of waiting for the timer. */
const BATCH_BYTES = 64 * 1024;

/**
 * Where log lines go, without ever blocking forwarding: pino hands each line
 * to write(), which only queues its bytes; the transaction line is written
 * into the queue straight (room, then commit). Queued lines go out together,
 * a stream.write per 64 KiB chunk (every 100 ms, sooner when 64 KiB are
 * waiting, at once on flush); while the destination says it is full (write()
 * returned false) they wait for 'drain'. Everything not yet written — queued
 * here or held by the stream — counts against one bound, in bytes; past it new
 * lines are dropped and counted. A destination error drops (and counts) until
 * a file is reopened.
 *
 *   write(line) ─▶ [ chunks ]─(100 ms or 64 KiB)─▶ stream.write(chunk, cb) ─▶ fd
 *   room/commit      │                            │ false: wait 'drain'
 *                    │ queued + in stream > bound │ cb(err) / 'error': drop + count,
 *                    └▶ drop + count              │   files reopened after 5 s
 *                                                 └ cb(): count written
 */
export class BoundedWriter {
  readonly maxBytes: number;
  private readonly reopenMs: number;
  /** Lines written by this writer (also added to processStats). */
  written = 0;
  /** Lines dropped by this writer (also added to processStats). */
  dropped = 0;
  private target: LogTarget;
  private readonly queue = new LineChunks();
  /** Handed to the stream, not yet reported written. */
  private inStreamBytes = 0;
  /**
   * Bumped when a reopened stream replaces the one before: late callbacks of a failed one leave the
   * bound alone; those of a rotated one (`retired`, by generation) leave it as they complete.
   */
  private generation = 0;
  private readonly retired = new Map<number, number>();
  private retiredBytes = 0;
  private readonly batchBytes: number;
  private blocked = false;
  private batchTimer: NodeJS.Timeout | null = null;
  private immediateArmed = false;
  private failed = false;
  private closed = false;
  private reported = false;
  private reopenTimer: NodeJS.Timeout | null = null;
  private readonly waiters = new Set<() => void>();
  private readonly pumpNow = () => this.pump();
  private readonly onDrain = () => {
    this.blocked = false;
    this.pump();
  };
  private readonly onError = (err: Error) => this.fail(err);

  constructor(target: LogTarget, maxBytes: number, reopenMs = REOPEN_MS) {
    this.target = target;
    this.maxBytes = maxBytes;
    this.reopenMs = reopenMs;
    this.batchBytes = Math.min(BATCH_BYTES, Math.max(1, Math.floor(maxBytes / 4)));
    this.attach();
  }

  /** Queued here plus handed to the stream and not yet written. */
  get pendingBytes(): number {
    return this.queue.bytes + this.inStreamBytes + this.retiredBytes;
  }

  /** True while lines are dropped because the destination failed. */
  get isFailed(): boolean {
    return this.failed;
  }

  /** One complete line (with its newline). Never blocks, never throws. */
  write(line: string): boolean {
    if (this.failed || this.closed) {
      this.drop(1);
      return true;
    }
    // A UTF-16 unit is at most 3 UTF-8 bytes: measured only for a line too long for that bound.
    const n = line.length * 3 <= CHUNK_BYTES ? line.length * 3 : Buffer.byteLength(line, 'utf8');
    const buf = this.queue.room(n);
    this.commit(this.queue.at + buf.write(line, this.queue.at, 'utf8'));
    return true;
  }

  /** A buffer with `n` bytes free from `at`, for a line written straight (then `commit`). */
  room(n: number): Buffer {
    return this.queue.room(n);
  }

  /** Where a line written into `room` starts. */
  get at(): number {
    return this.queue.at;
  }

  /** The line written into `room` ends at `end` (its newline included): it is queued, or dropped and counted. */
  commit(end: number): void {
    if (this.failed || this.closed || this.pendingBytes + (end - this.queue.at) > this.maxBytes) {
      this.drop(1);
      return;
    }
    this.queue.add(end);
    if (this.blocked) return; // 'drain' pumps
    if (this.queue.bytes >= this.batchBytes) {
      if (!this.immediateArmed) {
        this.immediateArmed = true;
        setImmediate(this.pumpNow);
      }
    } else if (this.batchTimer === null) {
      this.batchTimer = setTimeout(this.pumpNow, BATCH_MS);
    }
  }

  /** Write out what is queued; resolves when all of it is written, or at the deadline. */
  flush(deadlineMs: number): Promise<void> {
    this.pump();
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, deadlineMs);
      timer.unref();
      this.waiters.add(done);
    });
  }

  /**
   * A log file opened again at its path (SIGHUP, after logrotate moved it away): lines queued and
   * lines to come go to the new file; what the old one holds is written to it, then it is closed.
   * Streams that are not files (stdout, stderr) stay as they are.
   */
  reopenFile(): void {
    const reopen = this.target.reopen;
    if (this.closed || reopen === null) return;
    if (this.failed) {
      // Failed: the reopen the failure scheduled happens now.
      if (this.reopenTimer !== null) clearTimeout(this.reopenTimer);
      this.reopen();
      return;
    }
    const old = this.target;
    this.detach();
    // What the old stream still holds counts against the bound until it reports it written; an
    // error it reports is the old file's, not a reason to fail the new one.
    if (this.inStreamBytes > 0) {
      this.retired.set(this.generation, this.inStreamBytes);
      this.retiredBytes += this.inStreamBytes;
    }
    old.stream.on('error', () => {});
    if (old.owned) old.stream.end();
    this.target = reopen();
    this.generation++;
    this.inStreamBytes = 0;
    this.blocked = false;
    this.attach();
    this.pump();
  }

  /** Stop: what is still queued is dropped (counted); a stream the writer opened is ended. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reopenTimer !== null) clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
    if (this.batchTimer !== null) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    this.drop(this.queue.clear());
    this.detach();
    if (this.target.owned && !this.failed) this.target.stream.end();
    this.settle();
  }

  private pump(): void {
    if (this.batchTimer !== null) {
      clearTimeout(this.batchTimer);
      this.batchTimer = null;
    }
    this.immediateArmed = false;
    if (this.blocked || this.failed) {
      this.settle();
      return;
    }
    for (let data = this.queue.take(); data !== null; data = this.queue.take()) {
      const lines = this.queue.takenLines;
      const bytes = data.length;
      this.inStreamBytes += bytes;
      const generation = this.generation;
      try {
        const ok = this.target.stream.write(data, (err?: Error | null) =>
          this.onWritten(err, lines, bytes, generation),
        );
        if (!ok) {
          this.blocked = true;
          return;
        }
      } catch (err) {
        // A stream destroyed under us throws on some paths: same as an error event.
        this.fail(err as Error);
        return;
      }
    }
    this.settle();
  }

  private onWritten(err: Error | null | undefined, lines: number, bytes: number, generation: number): void {
    const current = generation === this.generation;
    if (current) this.inStreamBytes -= bytes;
    else this.retire(generation, bytes);
    if (err) {
      this.drop(lines);
      // The stream reports its error here before (or instead of) an 'error' event.
      if (current) this.fail(err);
    } else {
      this.written += lines;
      processStats.logLinesWritten += lines;
      this.reported = false;
    }
    this.settle();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.blocked = false;
    this.drop(this.queue.clear());
    if (!this.reported && this.target.label !== 'stderr') {
      this.reported = true;
      const code = (err as NodeJS.ErrnoException).code ?? err.message;
      try {
        process.stderr.write(
          `sipspan: log destination ${this.target.label}: ${code}; log lines are dropped and counted until it works again\n`,
        );
      } catch {
        // stderr gone too: the counter still tells.
      }
    }
    if (this.target.reopen !== null && !this.closed) {
      this.reopenTimer = setTimeout(() => this.reopen(), this.reopenMs);
      this.reopenTimer.unref();
    }
    this.settle();
  }

  private reopen(): void {
    this.reopenTimer = null;
    const reopen = this.target.reopen;
    if (this.closed || reopen === null) return;
    this.detach();
    this.target = reopen();
    this.generation++;
    this.inStreamBytes = 0;
    this.failed = false;
    this.blocked = false;
    this.attach();
  }

  private retire(generation: number, bytes: number): void {
    const left = this.retired.get(generation);
    if (left === undefined) return;
    this.retiredBytes -= bytes;
    if (left - bytes <= 0) this.retired.delete(generation);
    else this.retired.set(generation, left - bytes);
  }

  private attach(): void {
    this.target.stream.on('drain', this.onDrain);
    this.target.stream.on('error', this.onError);
  }

  private detach(): void {
    this.target.stream.removeListener('drain', this.onDrain);
    this.target.stream.removeListener('error', this.onError);
  }

  private drop(lines: number): void {
    this.dropped += lines;
    processStats.logLinesDropped += lines;
  }

  private isIdle(): boolean {
    return (
      this.queue.lines === 0 &&
      ((this.inStreamBytes === 0 && this.retiredBytes === 0) || this.failed || this.closed)
    );
  }

  private settle(): void {
    if (this.waiters.size === 0 || !this.isIdle()) return;
    for (const done of [...this.waiters]) done();
  }
}
