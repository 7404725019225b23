import { Buffer } from 'node:buffer';

/** Lines are queued in chunks of this size (a longer line gets a chunk of its own). */
export const CHUNK_BYTES = 64 * 1024;

const EMPTY = Buffer.alloc(0);

/**
 * Log lines queued as bytes, in chunks that go to the destination as they are.
 *
 * A line is written straight into the chunk (`room`, then `add`): no string
 * per line to hold, join and encode later. What `take` hands out is a view of
 * bytes nothing writes again (new lines go after it, or into a new chunk), so
 * the destination may hold it as long as it likes.
 */
export class LineChunks {
  /** Where the next line goes in the current chunk. */
  at = 0;
  /** Lines queued, and their bytes. */
  lines = 0;
  bytes = 0;
  /** How many lines the bytes `take` last returned hold. */
  takenLines = 0;
  private buf: Buffer = EMPTY;
  /** Where the bytes not yet taken begin in the current chunk. */
  private from = 0;
  private linesInBuf = 0;
  /** Chunks filled before they were taken, oldest first, and their lines. */
  private full: Buffer[] = [];
  private fullLines: number[] = [];

  /** The current chunk, with at least `n` bytes free from `at`. */
  room(n: number): Buffer {
    if (this.buf.length - this.at < n) {
      this.seal();
      this.buf = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, n));
      this.from = 0;
      this.at = 0;
    }
    return this.buf;
  }

  /** A line was written into the room, from `at` to `end`. */
  add(end: number): void {
    this.bytes += end - this.at;
    this.lines++;
    this.linesInBuf++;
    this.at = end;
  }

  /** The oldest queued bytes (whole lines, `takenLines` of them), or null when none are queued. */
  take(): Buffer | null {
    if (this.full.length > 0) {
      const data = this.full.shift() as Buffer;
      this.takenLines = this.fullLines.shift() as number;
      this.account(data.length);
      return data;
    }
    if (this.linesInBuf === 0) return null;
    const data = this.buf.subarray(this.from, this.at);
    this.takenLines = this.linesInBuf;
    this.from = this.at;
    this.linesInBuf = 0;
    this.account(data.length);
    return data;
  }

  /** Forget everything queued; returns how many lines that was. */
  clear(): number {
    const n = this.lines;
    this.full = [];
    this.fullLines = [];
    this.from = this.at;
    this.linesInBuf = 0;
    this.lines = 0;
    this.bytes = 0;
    return n;
  }

  private seal(): void {
    if (this.linesInBuf === 0) return;
    this.full.push(this.buf.subarray(this.from, this.at));
    this.fullLines.push(this.linesInBuf);
    this.linesInBuf = 0;
  }

  private account(bytes: number): void {
    this.lines -= this.takenLines;
    this.bytes -= bytes;
  }
}
