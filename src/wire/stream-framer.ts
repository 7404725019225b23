import { Buffer } from 'node:buffer';
import { CR, LF } from './chars.ts';
import { DEFAULT_SCAN_LIMITS, type ScanLimits, type ScanResult, scanMessage } from './scan.ts';
import { ScanCode } from './scan-codes.ts';

/** What StreamFramer.next() found. */
export const FrameKind = {
  /** Nothing complete yet: push more bytes. */
  NEED_MORE: 0,
  /** A whole message: `result` holds it (its code may still be a scan error). */
  MESSAGE: 1,
  /** RFC 5626 §3.5.1 keep-alive ping (CRLFCRLF): answer with a CRLF pong. */
  PING: 2,
  /** The stream cannot be framed any more: close the connection. `code` says why. */
  BROKEN: 3,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface StreamFramerLimits extends ScanLimits {
  /** Most bytes one message (headers and body) may have; past it the stream is broken. */
  maxMessageBytes: number;
}

export const DEFAULT_STREAM_LIMITS: StreamFramerLimits = Object.freeze({
  ...DEFAULT_SCAN_LIMITS,
  maxMessageBytes: 65535,
});

/**
 * Splits a TCP byte stream into SIP messages by Content-Length.
 *
 * RFC 3261 §18.3: "In the case of stream-oriented transports such as TCP, the
 * Content-Length header field indicates the size of the body. All
 * stream-oriented transports MUST use Content-Length." A missing, negative,
 * non-numeric or repeated Content-Length leaves no way to find the next message,
 * so the stream is BROKEN (RFC 4475 §3.1.2.3 ncl, §3.3.9 mcl01).
 *
 * Usage, with no closure per chunk:
 *   framer.push(chunk);
 *   for (let k = framer.next(); k !== FrameKind.NEED_MORE; k = framer.next()) { ... framer.result ... }
 *
 * Messages are views (subarray) into the received chunks; a message split over
 * chunks is joined once.
 */
export class StreamFramer {
  readonly limits: StreamFramerLimits;
  /** Set when next() returns MESSAGE. */
  result: ScanResult | null = null;
  /** Set when next() returns BROKEN. */
  brokenCode: ScanCode = ScanCode.OK;
  private pending: Buffer | null = null;
  private pos = 0;
  /** Where the search for the end of the header section resumes, so a slow drip costs O(n) in all. */
  private searchFrom = 0;
  /** The scanned header section of the message whose body is still arriving. */
  private headed: ScanResult | null = null;
  /**
   * The last bytes consumed were a keep-alive CRLF at the very end of the data: if
   * the next bytes start with CRLF, the two halves are one ping that TCP split.
   */
  private crlfAtEnd = false;

  constructor(limits: StreamFramerLimits = DEFAULT_STREAM_LIMITS) {
    this.limits = limits;
  }

  /** Bytes received and not yet returned as a message. */
  get bufferedBytes(): number {
    return this.pending === null ? 0 : this.pending.length - this.pos;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.pending === null || this.pos >= this.pending.length) {
      this.pending = chunk;
      this.searchFrom = 0;
      this.pos = 0;
      return;
    }
    const rest = this.pending.length - this.pos;
    this.pending = Buffer.concat([this.pending.subarray(this.pos), chunk], rest + chunk.length);
    this.searchFrom -= this.pos;
    if (this.headed !== null) this.rebase(this.pos);
    this.pos = 0;
  }

  next(): FrameKind {
    const buf = this.pending;
    if (buf === null) return FrameKind.NEED_MORE;
    const end = buf.length;
    let p = this.pos;

    if (this.headed === null) {
      // Keep-alives between messages: CRLFCRLF is a ping, a lone CRLF a pong (RFC 5626 §3.5.1).
      if (this.crlfAtEnd) {
        if (p + 1 < end && buf[p] === CR && buf[p + 1] === LF) {
          this.crlfAtEnd = false;
          this.consume(p + 2);
          return FrameKind.PING;
        }
        if (end - p !== 1 || buf[p] !== CR) this.crlfAtEnd = false;
      }
      let lastWasCrlf = false;
      while (p < end && (buf[p] === CR || buf[p] === LF)) {
        if (p + 3 < end && buf[p] === CR && buf[p + 1] === LF && buf[p + 2] === CR && buf[p + 3] === LF) {
          this.consume(p + 4);
          return FrameKind.PING;
        }
        if (p + 1 < end && buf[p] === CR && buf[p + 1] === LF) {
          p += 2;
          lastWasCrlf = true;
          continue;
        }
        if (buf[p] === LF) {
          p++;
          lastWasCrlf = false;
          continue;
        }
        break; // a CR whose LF has not arrived yet
      }
      if (p > this.pos) this.consume(p);
      if (p >= end || (end - p === 1 && buf[p] === CR)) {
        if (lastWasCrlf) this.crlfAtEnd = true;
        return FrameKind.NEED_MORE;
      }
      this.crlfAtEnd = false;

      const bodyStart = findHeaderEnd(buf, Math.max(p, this.searchFrom), end);
      if (bodyStart === -1) {
        if (end - p > this.limits.maxMessageBytes) return this.broken(ScanCode.MESSAGE_TOO_LARGE);
        this.searchFrom = Math.max(p, end - 3);
        return FrameKind.NEED_MORE;
      }
      const scanned = scanMessage(buf, p, bodyStart, this.limits);
      const msg = scanned.message;
      if (
        msg === null ||
        scanned.code === ScanCode.BAD_CONTENT_LENGTH ||
        scanned.code === ScanCode.DUPLICATE_CONTENT_LENGTH ||
        scanned.code === ScanCode.INCOMPLETE_HEADERS ||
        // Limits stop the scan before Content-Length may have been seen: the real reason, not "missing".
        scanned.code === ScanCode.TOO_MANY_HEADERS ||
        scanned.code === ScanCode.HEADER_TOO_LONG
      ) {
        return this.broken(scanned.code === ScanCode.OK ? ScanCode.BAD_START_LINE : scanned.code);
      }
      if (msg.contentLength < 0) return this.broken(ScanCode.MISSING_CONTENT_LENGTH);
      if (msg.bodyStart - p + msg.contentLength > this.limits.maxMessageBytes) {
        return this.broken(ScanCode.MESSAGE_TOO_LARGE);
      }
      this.headed = scanned;
    }

    const headed = this.headed;
    const msg = headed.message!;
    const messageEnd = msg.bodyStart + msg.contentLength;
    if (messageEnd > end) return FrameKind.NEED_MORE;
    msg.end = messageEnd;
    this.headed = null;
    this.result = headed;
    this.consume(messageEnd);
    return FrameKind.MESSAGE;
  }

  /** Drop everything buffered (after BROKEN, or when the connection closes). */
  reset(): void {
    this.pending = null;
    this.pos = 0;
    this.searchFrom = 0;
    this.headed = null;
    this.crlfAtEnd = false;
  }

  private consume(to: number): void {
    this.pos = to;
    this.searchFrom = to;
    if (this.pending !== null && to >= this.pending.length) {
      this.pending = null;
      this.pos = 0;
      this.searchFrom = 0;
    }
  }

  private broken(code: ScanCode): FrameKind {
    this.brokenCode = code;
    this.reset();
    return FrameKind.BROKEN;
  }

  /** The pending buffer was re-joined: re-scan the header section in the new buffer. */
  private rebase(shift: number): void {
    const old = this.headed!.message!;
    this.headed = scanMessage(this.pending!, old.start - shift, old.bodyStart - shift, this.limits);
  }
}

/** Offset just past the empty line that ends the header section (CRLFCRLF, or LF-terminated lines), or -1. */
function findHeaderEnd(buf: Buffer, from: number, end: number): number {
  let i = buf.indexOf(LF, from);
  while (i !== -1 && i < end) {
    const n = i + 1;
    if (n < end && buf[n] === LF) return n + 1;
    if (n + 1 < end && buf[n] === CR && buf[n + 1] === LF) return n + 2;
    i = buf.indexOf(LF, n);
  }
  return -1;
}
