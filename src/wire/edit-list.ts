import type { Buffer } from 'node:buffer';

/**
 * Byte edits of one message, applied once at send time.
 *
 * Every byte not named by an edit is sent as it arrived: the message is never
 * re-serialised (the envoy sip_proxy model: insert/delete/replace at offsets,
 * spliced into a list of chunks for one `send([...])` / `writev`).
 *
 *   original: [ start ........ a ....... b ......... c ......... end )
 *   edits:              insert@a   delete[b, c) + insert
 *   output:   [start, a) X [a, b) Y [c, end)
 */
export class EditList {
  private readonly at: number[] = [];
  private readonly until: number[] = [];
  private readonly data: (Buffer | null)[] = [];
  /**
   * Edits in use. clear() resets this instead of truncating the arrays: setting
   * `length = 0` dropped their backing stores and every push re-grew them (5% of a
   * scan + edit in the bench/wire-scan-edit.ts profile).
   */
  private count = 0;
  /** apply()'s sort order, reused: nothing of it outlives the call. */
  private readonly order: number[] = [];

  get size(): number {
    return this.count;
  }

  /** Insert bytes before offset `at`. Inserts at one offset keep the order they were added in. */
  insert(at: number, bytes: Buffer): void {
    this.push(at, at, bytes);
  }

  /** Remove bytes [start, end). */
  remove(start: number, end: number): void {
    this.push(start, end, null);
  }

  /** Replace bytes [start, end) with `bytes`. */
  replace(start: number, end: number, bytes: Buffer): void {
    this.push(start, end, bytes);
  }

  clear(): void {
    // Drop the inserted bytes so a reused list keeps no old message alive.
    for (let i = 0; i < this.count; i++) this.data[i] = null;
    this.count = 0;
  }

  /**
   * The message buf[start, end) with the edits spliced in, as chunks for one
   * send. Edits must not overlap (a removal inside another removal is a bug of
   * the caller, and the later one is clipped).
   */
  apply(buf: Buffer, start: number, end: number): Buffer[] {
    const n = this.count;
    // Few edits per message (typically 3–6): an insertion sort of indices beats Array.prototype.sort here.
    const order = this.order;
    for (let i = 0; i < n; i++) {
      let j = i - 1;
      const a = this.at[i];
      while (j >= 0 && this.at[order[j]] > a) {
        order[j + 1] = order[j];
        j--;
      }
      order[j + 1] = i;
    }
    const out: Buffer[] = [];
    let cursor = start;
    for (let k = 0; k < n; k++) {
      const i = order[k];
      const a = this.at[i];
      if (a > cursor) {
        out.push(buf.subarray(cursor, a));
        cursor = a;
      }
      const d = this.data[i];
      if (d !== null) out.push(d);
      if (this.until[i] > cursor) cursor = this.until[i];
    }
    if (cursor < end) out.push(buf.subarray(cursor, end));
    return out;
  }

  private push(at: number, until: number, bytes: Buffer | null): void {
    const i = this.count++;
    this.at[i] = at;
    this.until[i] = until;
    this.data[i] = bytes;
  }
}

/** Total bytes of a chunk list. */
export function chunksLength(chunks: readonly Buffer[]): number {
  let n = 0;
  for (let i = 0; i < chunks.length; i++) n += chunks[i].length;
  return n;
}
