import type { Buffer } from 'node:buffer';
import { HEADER_ID_COUNT, type HeaderId } from './header-names.ts';
import { readMethod } from './methods.ts';

/**
 * One SIP message as a Buffer plus offsets. Nothing is copied or decoded until
 * a getter asks for it (`buf.toString('latin1', start, end)`), and the bytes are
 * never re-serialised: changes go through an EditList.
 *
 * Header fields are indexed in `fields`, FIELD_STRIDE int32s per field:
 *
 *   [ id | lineStart | nameEnd | valueStart | valueEnd | lineEnd ]
 *     lineStart..lineEnd spans the whole field including folded lines and the
 *     final line break; valueStart..valueEnd is the value without surrounding LWS
 *     (it may contain folded CRLF + WSP, which readers treat as LWS).
 */
export const FIELD_STRIDE = 6;
export const F_ID = 0;
export const F_LINE_START = 1;
export const F_NAME_END = 2;
export const F_VALUE_START = 3;
export const F_VALUE_END = 4;
export const F_LINE_END = 5;

export class SipMessage {
  buf: Buffer;
  /** Offsets of the message within buf. */
  start: number;
  end: number;
  isRequest: boolean;
  // start line
  methodStart = 0;
  methodEnd = 0;
  uriStart = 0;
  uriEnd = 0;
  statusCode = 0;
  reasonStart = 0;
  reasonEnd = 0;
  /** End of the start line including its line break: where the first header field begins. */
  startLineEnd = 0;
  /** Offset of the empty line that ends the header section, and of the body. */
  headersEnd = 0;
  bodyStart = 0;
  /** Value of Content-Length, or -1 when the message has none. */
  contentLength = -1;
  fieldCount = 0;
  fields: Int32Array;
  /** Index (field number) of the first field with each HeaderId, or -1. */
  firstField: Int16Array;
  /** Number of field lines with each HeaderId. */
  fieldTally: Uint16Array;

  private methodCache: string | null = null;

  constructor(buf: Buffer, start: number, end: number, isRequest: boolean, capacity: number) {
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.isRequest = isRequest;
    this.fields = allocFieldIndex(capacity * FIELD_STRIDE);
    this.firstField = new Int16Array(HEADER_ID_COUNT).fill(-1);
    this.fieldTally = new Uint16Array(HEADER_ID_COUNT);
  }

  /**
   * Describe another message in place: a UDP listener scans every datagram into
   * one SipMessage of its own, since a datagram is handled to the end before the
   * next is read. Nothing may keep such a message past its handler.
   */
  reset(buf: Buffer, start: number, end: number, isRequest: boolean): void {
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.isRequest = isRequest;
    this.methodStart = 0;
    this.methodEnd = 0;
    this.uriStart = 0;
    this.uriEnd = 0;
    this.statusCode = 0;
    this.reasonStart = 0;
    this.reasonEnd = 0;
    this.startLineEnd = 0;
    this.headersEnd = 0;
    this.bodyStart = 0;
    this.contentLength = -1;
    this.fieldCount = 0;
    // A loop, not fill(): TypedArray#fill is a call into the runtime, twice per message (0.3% of a
    // perf profile at 2000 calls/s) for 23 entries each.
    const first = this.firstField;
    const tally = this.fieldTally;
    for (let i = 0; i < HEADER_ID_COUNT; i++) {
      first[i] = -1;
      tally[i] = 0;
    }
    this.methodCache = null;
  }

  get method(): string {
    if (this.methodCache === null) this.methodCache = readMethod(this.buf, this.methodStart, this.methodEnd);
    return this.methodCache;
  }

  get requestUri(): string {
    return this.buf.toString('latin1', this.uriStart, this.uriEnd);
  }

  get reason(): string {
    return this.buf.toString('latin1', this.reasonStart, this.reasonEnd);
  }

  get bodyLength(): number {
    return this.end - this.bodyStart;
  }

  /** Whether the message has at least one field line with this id. */
  has(id: HeaderId): boolean {
    return this.firstField[id] !== -1;
  }

  count(id: HeaderId): number {
    return this.fieldTally[id];
  }

  /** Field number of the n-th field line with this id, or -1. */
  fieldIndex(id: HeaderId, nth = 0): number {
    const i = this.firstField[id];
    if (i === -1 || nth === 0) return i;
    const f = this.fields;
    for (let k = i + 1; k < this.fieldCount; k++) {
      if (f[k * FIELD_STRIDE] === id && --nth === 0) return k;
    }
    return -1;
  }

  fieldValueStart(index: number): number {
    return this.fields[index * FIELD_STRIDE + F_VALUE_START];
  }

  fieldValueEnd(index: number): number {
    return this.fields[index * FIELD_STRIDE + F_VALUE_END];
  }

  fieldLineStart(index: number): number {
    return this.fields[index * FIELD_STRIDE + F_LINE_START];
  }

  fieldLineEnd(index: number): number {
    return this.fields[index * FIELD_STRIDE + F_LINE_END];
  }

  fieldId(index: number): HeaderId {
    return this.fields[index * FIELD_STRIDE] as HeaderId;
  }

  /** The raw value bytes of the first field with this id as a latin1 string (folding kept), or null. */
  value(id: HeaderId): string | null {
    const i = this.firstField[id];
    if (i === -1) return null;
    const o = i * FIELD_STRIDE;
    return this.buf.toString('latin1', this.fields[o + F_VALUE_START], this.fields[o + F_VALUE_END]);
  }

  /** Field number of the first field whose name equals `lowerName` (for configured, non-builtin names). */
  findByName(lowerName: string, from = 0): number {
    const f = this.fields;
    const n = lowerName.length;
    for (let k = from; k < this.fieldCount; k++) {
      const o = k * FIELD_STRIDE;
      const s = f[o + F_LINE_START];
      if (f[o + F_NAME_END] - s !== n) continue;
      let ok = true;
      for (let j = 0; j < n; j++) {
        let b = this.buf[s + j];
        if (b >= 0x41 && b <= 0x5a) b |= 0x20;
        if (b !== lowerName.charCodeAt(j)) {
          ok = false;
          break;
        }
      }
      if (ok) return k;
    }
    return -1;
  }
}

/**
 * Field indexes are views carved from a shared 16 KiB slab, as Node's Buffer pool
 * does for small Buffers. A typed array above 64 bytes gets its own off-heap
 * ArrayBuffer, and that allocation (plus its GC) was a third of a whole scan: the
 * profile of bench/wire-scan-edit.ts showed the SipMessage constructor at 32% self
 * time. A view costs ~100 ns instead of ~800 ns. The price: a message kept alive
 * keeps its slab alive (16 KiB at most; a TCP message already keeps its whole
 * socket chunk alive, as its bytes are a view of it).
 */
const SLAB_BYTES = 16384;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabOffset = 0;

function allocFieldIndex(length: number): Int32Array {
  const bytes = length * 4;
  if (bytes > SLAB_BYTES >>> 3) return new Int32Array(length);
  if (slabOffset + bytes > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabOffset = 0;
  }
  const view = new Int32Array(slab, slabOffset, length);
  slabOffset += bytes;
  return view;
}
