import { closeSync, write as fsWrite, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { processStats } from '../process-stats.ts';

/**
 * Where log lines go, without ever blocking the event loop.
 *
 * process.stdout is synchronous on Linux for pipes and files: a pipe nobody
 * reads would stall forwarding. So lines are queued (bounded by bytes) and
 * written with fs.write on the file descriptor — one write in flight, run on
 * the libuv pool — and when the queue is full, lines are dropped and counted.
 *
 *   write(line) ──▶ [ queue ≤ maxBytes ] ──(one fs.write at a time)──▶ fd
 *                    full → drop + count            error (EPIPE, ENOSPC) → drop batch + count
 */
export class BoundedWriter {
  private readonly fd: number;
  private readonly stream: Writable | null;
  private readonly ownsFd: boolean;
  private readonly maxBytes: number;
  private queue: string[] = [];
  private queuedBytes = 0;
  private writing = false;
  private waiters: (() => void)[] = [];

  constructor(target: 'stdout' | 'stderr' | string | Writable, maxBytes: number) {
    this.maxBytes = maxBytes;
    if (typeof target !== 'string') {
      this.fd = -1;
      this.stream = target;
      this.ownsFd = false;
    } else if (target === 'stdout' || target === 'stderr') {
      this.fd = target === 'stdout' ? 1 : 2;
      this.stream = null;
      this.ownsFd = false;
    } else {
      this.fd = openSync(target, 'a');
      this.stream = null;
      this.ownsFd = true;
    }
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** pino's destination interface. */
  write(line: string): boolean {
    if (this.queuedBytes + line.length > this.maxBytes) {
      processStats.logLinesDropped++;
      return true;
    }
    this.queue.push(line);
    this.queuedBytes += line.length;
    if (!this.writing) this.pump();
    return true;
  }

  private pump(): void {
    if (this.queue.length === 0) {
      this.writing = false;
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
      return;
    }
    this.writing = true;
    const lines = this.queue.length;
    const data = this.queue.join('');
    this.queue = [];
    this.queuedBytes = 0;
    if (this.stream !== null) {
      const ok = this.stream.write(data);
      processStats.logLinesWritten += lines;
      if (ok) setImmediate(() => this.pump());
      else this.stream.once('drain', () => this.pump());
      return;
    }
    const buf = Buffer.from(data, 'utf8');
    this.writeAll(buf, 0, lines);
  }

  private writeAll(buf: Buffer, offset: number, lines: number): void {
    fsWrite(this.fd, buf, offset, buf.length - offset, null, (err, written) => {
      if (err) {
        // EPIPE, ENOSPC, EBADF...: this batch is lost, counted; later lines try again.
        processStats.logLinesDropped += lines;
        this.pump();
        return;
      }
      if (offset + written < buf.length) {
        this.writeAll(buf, offset + written, lines);
        return;
      }
      processStats.logLinesWritten += lines;
      this.pump();
    });
  }

  /** Resolves when the queue is empty, or at the deadline. */
  flush(deadlineMs: number): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, deadlineMs);
      t.unref();
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  close(): void {
    if (this.ownsFd) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
    }
  }
}
