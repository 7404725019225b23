/** Drive a StreamFramer over chunks and record what comes out, for comparisons. */
import type { ScanCode } from '../../src/wire/scan-codes.ts';
import {
  DEFAULT_STREAM_LIMITS,
  FrameKind,
  StreamFramer,
  type StreamFramerLimits,
} from '../../src/wire/stream-framer.ts';

export interface Frame {
  kind: 'message' | 'ping' | 'broken';
  /** The scan code of a message, or the broken code. */
  code: ScanCode | null;
  /** A message's own bytes (a copy, so later pushes cannot change it). */
  bytes: Buffer | null;
}

/**
 * Push the chunks one by one, draining the framer after each. Stops at the
 * first BROKEN (the transport closes the connection there).
 */
export function feedChunks(
  chunks: readonly Buffer[],
  limits: StreamFramerLimits = DEFAULT_STREAM_LIMITS,
  onNeedMore: ((framer: StreamFramer) => void) | null = null,
): Frame[] {
  const framer = new StreamFramer(limits);
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    framer.push(chunk);
    for (;;) {
      const k = framer.next();
      if (k === FrameKind.NEED_MORE) {
        if (onNeedMore !== null) onNeedMore(framer);
        break;
      }
      if (k === FrameKind.PING) frames.push({ kind: 'ping', code: null, bytes: null });
      else if (k === FrameKind.BROKEN) {
        frames.push({ kind: 'broken', code: framer.brokenCode, bytes: null });
        return frames;
      } else {
        const r = framer.result!;
        const m = r.message!;
        frames.push({ kind: 'message', code: r.code, bytes: Buffer.from(m.buf.subarray(m.start, m.end)) });
      }
    }
  }
  return frames;
}

/** Split `buf` at the given offsets (sorted, deduplicated here). */
export function splitAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const sorted = [...new Set(cuts.map((c) => Math.max(0, Math.min(buf.length, c))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of sorted) {
    out.push(buf.subarray(from, c));
    from = c;
  }
  out.push(buf.subarray(from));
  return out;
}

/** Frames compared by kind, code and bytes. */
export function sameFrames(a: readonly Frame[], b: readonly Frame[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.kind !== y.kind || x.code !== y.code) return false;
    if ((x.bytes === null) !== (y.bytes === null)) return false;
    if (x.bytes !== null && y.bytes !== null && !x.bytes.equals(y.bytes)) return false;
  }
  return true;
}

export function describeFrames(frames: readonly Frame[]): string {
  return frames
    .map(
      (f) =>
        `${f.kind}${f.code === null ? '' : `:${f.code}`}${f.bytes === null ? '' : `(${f.bytes.length}B)`}`,
    )
    .join(' ');
}
