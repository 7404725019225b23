import { Buffer } from 'node:buffer';
import type { HrTime } from '@opentelemetry/api';

/**
 * The protobuf primitives the OTLP encoders write with: one growing buffer,
 * length prefixes reserved and filled in when a message closes, and the
 * common/v1 AnyValue kinds sipspan's attributes take. The encoders
 * (otlp-encoder.ts for span objects, transaction-spans.ts for transaction
 * records) write the same bytes through these, as the SDK serializer would.
 */

// Wire types.
export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
const I32 = 5;
export const tag = (field: number, wire: number) => (field << 3) | wire;

// Span flags (trace/v1 SpanFlags): the context's isRemote is known and, when set, true.
const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

/** Length prefixes reserved before a message whose size is not known yet. */
export const RESERVE_SMALL = 1; // KeyValue, AnyValue, Status, Event, Link
export const RESERVE_SPAN = 2; // spans: 128 B–16 KiB
export const RESERVE_BATCH = 3; // ResourceSpans, ScopeSpans: up to 2 MiB

const INITIAL_BYTES = 64 * 1024;

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x61 + i] = 10 + i;
  HEX[0x41 + i] = 10 + i;
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** KeyValue.key with its tag and length prefix, ready to copy into every attribute of that key. */
export function encodedKey(key: string): Buffer {
  const len = Buffer.byteLength(key, 'utf8');
  const bytes = Buffer.allocUnsafe(1 + varintSize(len) + len);
  bytes[0] = tag(1, LEN);
  let p = 1;
  for (let v = len; ; ) {
    if (v < 0x80) {
      bytes[p++] = v;
      break;
    }
    bytes[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  bytes.write(key, p, 'utf8');
  return bytes;
}

export class ProtoWriter {
  protected buf = Buffer.allocUnsafe(INITIAL_BYTES);
  protected pos = 0;

  /** A length-delimited string field (s, or its range start..end); ASCII is written as it is scanned, anything else as UTF-8. */
  string(fieldTag: number, s: string, start = 0, end = s.length): void {
    const n = end - start;
    this.ensure(1 + 5 + n * 3);
    const buf = this.buf;
    const at = this.pos;
    buf[at] = fieldTag;
    let p = at + 1;
    if (n < 0x80) buf[p++] = n;
    else p = this.varintAt(p, n);
    for (let i = start; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        // Not ASCII: the length in bytes differs from the length in characters.
        const text = start === 0 && end === s.length ? s : s.slice(start, end);
        const len = Buffer.byteLength(text, 'utf8');
        p = this.varintAt(at + 1, len);
        this.pos = p + buf.write(text, p, 'utf8');
        return;
      }
      buf[p++] = c;
    }
    this.pos = p;
  }

  /** A bytes field from a hex id, decoded in place (the SDK's hexToBinary semantics). */
  id(fieldTag: number, hex: string): void {
    const n = hex.length >>> 1;
    this.ensure(2 + 5 + n);
    const buf = this.buf;
    buf[this.pos++] = fieldTag;
    this.pos = this.varintAt(this.pos, n);
    // A typed array keeps the low 8 bits, as in the SDK.
    for (let i = 0; i < n; i++) buf[this.pos++] = (nibble(hex, 2 * i) << 4) | nibble(hex, 2 * i + 1);
  }

  /** HrTime as fixed64 nanoseconds since the epoch, exact past 2^53 (split into 32-bit halves). */
  time(t: HrTime): void {
    const seconds = t[0];
    const nanos = t[1];
    // seconds·1e9 = hi16·1e9·2^16 + lo16·1e9, each product exact in a double.
    const hiProduct = Math.floor(seconds / 0x10000) * 1e9;
    const loProduct = (seconds % 0x10000) * 1e9 + nanos;
    let low = (hiProduct % 0x10000) * 0x10000 + (loProduct % 0x100000000);
    let high = Math.floor(hiProduct / 0x10000) + Math.floor(loProduct / 0x100000000);
    if (low >= 0x100000000) {
      high += Math.floor(low / 0x100000000);
      low %= 0x100000000;
    }
    this.ensure(8);
    this.buf.writeUInt32LE(low >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** Span.flags or Link.flags in `field`: the trace flags, and whether the parent's (the link's) isRemote is known and set. */
  spanFlags(field: number, traceFlags: number, isRemote: boolean | undefined): void {
    this.varint(tag(field, I32)); // field 16 takes two bytes
    this.ensure(4);
    this.buf.writeUInt32LE(
      (traceFlags & 0xff) | FLAG_HAS_IS_REMOTE | (isRemote ? FLAG_IS_REMOTE : 0),
      this.pos,
    );
    this.pos += 4;
  }

  /** AnyValue of a string. */
  anyString(s: string): void {
    this.string(tag(1, LEN), s);
  }

  /** AnyValue of a number: int_value when it is a 64-bit integer, double_value otherwise (as the SDK). */
  anyNumber(v: number): void {
    if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) {
      this.byte(tag(3, VARINT));
      this.varint(v);
    } else {
      this.byte(tag(4, I64));
      this.ensure(8);
      this.buf.writeDoubleLE(v, this.pos);
      this.pos += 8;
    }
  }

  /** AnyValue of a boolean. */
  anyBool(v: boolean): void {
    this.byte(tag(2, VARINT));
    this.byte(v ? 1 : 0);
  }

  /**
   * A KeyValue in the field of `fieldTag` whose value is an ASCII string (s,
   * or its range start..end) and whose whole size is under 128 bytes: every
   * length is known before writing, so nothing is reserved and moved. False,
   * with nothing written, for any other string.
   */
  shortAsciiAttribute(fieldTag: number, key: Buffer, s: string, start: number, end: number): boolean {
    const n = end - start;
    const anyLength = 2 + n;
    const kvLength = key.length + 2 + anyLength;
    if (kvLength > 0x7f) return false;
    let p = this.shortKeyValueAt(fieldTag, key, kvLength, anyLength);
    const buf = this.buf;
    buf[p++] = tag(1, LEN); // AnyValue.string_value
    buf[p++] = n;
    for (let i = start; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) return false;
      buf[p++] = c;
    }
    this.pos = p;
    return true;
  }

  /** A KeyValue in the field of `fieldTag` whose value is an unsigned 32-bit integer, and whose size is under 128 bytes; false (nothing written) otherwise. */
  shortUintAttribute(fieldTag: number, key: Buffer, v: number): boolean {
    if (!(v >= 0 && v <= 0xffffffff && Number.isInteger(v))) return false;
    const anyLength = 1 + varintSize(v);
    const kvLength = key.length + 2 + anyLength;
    if (kvLength > 0x7f) return false;
    const p = this.shortKeyValueAt(fieldTag, key, kvLength, anyLength);
    this.buf[p] = tag(3, VARINT); // AnyValue.int_value
    this.pos = this.varintAt(p + 1, v);
    return true;
  }

  /**
   * Room for a short KeyValue, and its head written at pos: tag, length, key,
   * the value's tag and length. Returns where the AnyValue goes; pos is left
   * where it was, for the caller to move once the value is written.
   */
  private shortKeyValueAt(fieldTag: number, key: Buffer, kvLength: number, anyLength: number): number {
    this.ensure(2 + kvLength);
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = fieldTag;
    buf[p++] = kvLength;
    p = copySmall(key, buf, p);
    buf[p++] = tag(2, LEN); // KeyValue.value
    buf[p++] = anyLength;
    return p;
  }

  /** Reserve a length prefix; returns where the message's content starts. */
  open(reserve: number): number {
    this.ensure(reserve);
    this.pos += reserve;
    return this.pos;
  }

  /** Write the length before the content started at `contentStart`, moving the content if the prefix differs. */
  close(contentStart: number, reserve: number): void {
    const len = this.pos - contentStart;
    const size = varintSize(len);
    const prefixAt = contentStart - reserve;
    if (size !== reserve) {
      this.ensure(size - reserve);
      this.buf.copyWithin(prefixAt + size, contentStart, this.pos);
      this.pos += size - reserve;
    }
    this.varintAt(prefixAt, len);
  }

  varint(v: number): void {
    this.ensure(10);
    if (v >= 0 && v <= 0xffffffff) {
      this.pos = this.varintAt(this.pos, v);
      return;
    }
    // int64 as protobuf writes it: two's complement for negatives, ten bytes.
    let low: number;
    let high: number;
    const abs = Math.abs(v);
    low = abs >>> 0;
    high = Math.floor(abs / 0x100000000) >>> 0;
    if (v < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    const buf = this.buf;
    while (high > 0 || low > 0x7f) {
      buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.pos++] = low;
  }

  /** An unsigned 32-bit varint at p; returns the position after it. */
  protected varintAt(p: number, v: number): number {
    const buf = this.buf;
    while (v > 0x7f) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p++] = v;
    return p;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  bytes(b: Buffer): void {
    this.ensure(b.length);
    this.pos = copySmall(b, this.buf, this.pos);
  }

  /** Where the next byte goes. */
  get position(): number {
    return this.pos;
  }

  /** The bytes written since `from` copied into `to`; their length, or -1 (nothing copied) when `to` is too short. */
  copyWritten(from: number, to: Buffer): number {
    const n = this.pos - from;
    if (n > to.length) return -1;
    this.buf.copy(to, 0, from, this.pos);
    return n;
  }

  /** The first `length` bytes of `from`, written as they are. */
  copy(from: Buffer, length: number): void {
    this.ensure(length);
    this.pos += from.copy(this.buf, this.pos, 0, length);
  }

  protected ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/**
 * `from` copied into `to` at `p`; returns the position after it. Keys and
 * headers are tens of bytes, where Buffer#copy's call into C++ costs more than
 * the copy: those are copied here.
 */
function copySmall(from: Buffer, to: Buffer, p: number): number {
  const n = from.length;
  if (n > 64) return p + from.copy(to, p);
  for (let i = 0; i < n; i++) to[p + i] = from[i];
  return p + n;
}

/** One hex digit's value; what is not hex decodes as the SDK's hexToBinary decodes it (c - 55). */
function nibble(hex: string, i: number): number {
  const c = hex.charCodeAt(i);
  const v = c < 128 ? HEX[c] : -1;
  return v >= 0 ? v : c - 55;
}
