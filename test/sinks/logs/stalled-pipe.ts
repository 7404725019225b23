import { Writable } from 'node:stream';

/** A pipe nobody reads: write() says "full" once past its high-water mark and 'drain' never comes. */
export class StalledPipe extends Writable {
  chunks = 0;
  override _write(_chunk: unknown, _enc: BufferEncoding, _cb: (err?: Error | null) => void): void {
    this.chunks++;
    // never calls back: the stream stays full
  }
}
