import type { Attributes, AttributeValue, HrTime, Link, SpanContext } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';

/**
 * An OTLP/protobuf ExportTraceServiceRequest written in one pass from
 * finished spans (opentelemetry-proto trace/v1, common/v1, resource/v1).
 *
 * Why not the SDK's serializer: it sizes every batch in a first pass and
 * writes it in a second, converts each id through a new array, and writes
 * every attribute key byte by byte. Under load that was the largest single
 * cost of tracing (a fifth of sipspan's CPU with every span exported). Here
 * the resource and scope are encoded once; attribute keys, a fixed set, are
 * encoded once each; ids go from hex to bytes in place.
 *
 * A batch can be written at once (encode) or a span at a time (begin,
 * append, finish): the export queue writes each span into its batch as it is
 * queued (encoded-span-queue.ts), so no span object waits for its export.
 *
 * The bytes equal the SDK serializer's for the same spans (same field order,
 * same defaults written, minimal varints); a test pins that. What the spans
 * sipspan builds never carry (array or map attribute values, several
 * resources or scopes) is not encoded here (null): the caller then uses the
 * SDK serializer for those spans.
 */

// Wire types.
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const tag = (field: number, wire: number) => (field << 3) | wire;

// Span flags (trace/v1 SpanFlags): the context's isRemote is known and, when set, true.
const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

/** Length prefixes reserved before a message whose size is not known yet. */
const RESERVE_SMALL = 1; // KeyValue, AnyValue, Status, Event, Link
const RESERVE_SPAN = 2; // spans: 128 B–16 KiB
const RESERVE_BATCH = 3; // ResourceSpans, ScopeSpans: up to 2 MiB

/** Attribute keys come from a fixed set in code; this bounds the cache should something else pass through. */
const MAX_CACHED_KEYS = 512;
const INITIAL_BYTES = 64 * 1024;

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x61 + i] = 10 + i;
  HEX[0x41 + i] = 10 + i;
}

/** The resource and scope of a batch, encoded. */
interface Header {
  resource: ReadableSpan['resource'];
  scope: InstrumentationScope;
  /** ResourceSpans.resource, then the tag of ResourceSpans.scope_spans. */
  bytes: Buffer;
  /** ScopeSpans.scope. */
  scopeBytes: Buffer;
  /** ScopeSpans.schema_url, or nothing. */
  scopeTail: Buffer;
  /** ResourceSpans.schema_url, or nothing. */
  resourceTail: Buffer;
}

class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported('attribute value not encoded here');

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

export class OtlpTraceEncoder {
  private buf = Buffer.allocUnsafe(INITIAL_BYTES);
  private pos = 0;
  private readonly keys = new Map<string, Buffer>();
  private headerFor: Header | null = null;
  /** The request being written: its header and where its two open messages start. */
  private current: { header: Header; resourceSpans: number; scopeSpans: number } | null = null;

  /** Bytes of the request begun so far. */
  get size(): number {
    return this.current === null ? 0 : this.pos;
  }

  /** The request for `spans`, a fresh buffer the caller owns; null when the batch needs the SDK serializer. */
  encode(spans: readonly ReadableSpan[]): Uint8Array | null {
    if (spans.length === 0) return new Uint8Array(0);
    if (!this.begin(spans[0])) return null;
    for (let i = 0; i < spans.length; i++)
      if (!this.append(spans[i])) {
        this.current = null;
        return null;
      }
    return this.finish();
  }

  /**
   * Start a request for spans of `first`'s resource and scope; append() them
   * one by one, then finish(). False when the resource is not encoded here.
   */
  begin(first: ReadableSpan): boolean {
    this.pos = 0;
    this.current = null;
    try {
      const header = this.header(first.resource, first.instrumentationScope);
      this.byte(tag(1, LEN)); // ExportTraceServiceRequest.resource_spans
      const resourceSpans = this.open(RESERVE_BATCH);
      this.bytes(header.bytes); // ResourceSpans.resource, then the tag of scope_spans
      const scopeSpans = this.open(RESERVE_BATCH);
      this.bytes(header.scopeBytes);
      this.current = { header, resourceSpans, scopeSpans };
      return true;
    } catch (err) {
      if (err === UNSUPPORTED) return false;
      throw err;
    }
  }

  /**
   * Add one span to the request begun. False when it is not encoded here
   * (another resource or scope, an attribute value of another kind): nothing
   * of it is written, and the request stays open for the next span.
   */
  append(span: ReadableSpan): boolean {
    const current = this.current;
    if (current === null) return false;
    if (span.resource !== current.header.resource || span.instrumentationScope !== current.header.scope)
      return false;
    const start = this.pos;
    try {
      this.byte(tag(2, LEN)); // ScopeSpans.spans
      this.span(span);
      return true;
    } catch (err) {
      this.pos = start;
      if (err === UNSUPPORTED) return false;
      throw err;
    }
  }

  /** The request begun, a fresh buffer the caller owns. */
  finish(): Uint8Array {
    const current = this.current;
    if (current === null) throw new Error('finish() without a request begun');
    this.current = null;
    this.bytes(current.header.scopeTail);
    this.close(current.scopeSpans, RESERVE_BATCH);
    this.bytes(current.header.resourceTail);
    this.close(current.resourceSpans, RESERVE_BATCH);
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  /** Resource and scope, encoded once per pair (sipspan has one of each). */
  private header(resource: ReadableSpan['resource'], scope: InstrumentationScope): Header {
    const cached = this.headerFor;
    if (cached !== null && cached.resource === resource && cached.scope === scope) return cached;
    const saved = this.pos;
    this.pos = 0;
    this.byte(tag(1, LEN)); // ResourceSpans.resource
    const r = this.open(RESERVE_SMALL);
    this.attributes(1, resource.attributes);
    this.byte(tag(2, VARINT)); // dropped_attributes_count
    this.byte(0);
    this.close(r, RESERVE_SMALL);
    this.byte(tag(2, LEN)); // ResourceSpans.scope_spans
    const bytes = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    this.byte(tag(1, LEN)); // ScopeSpans.scope
    const s = this.open(RESERVE_SMALL);
    this.string(tag(1, LEN), scope.name);
    if (scope.version) this.string(tag(2, LEN), scope.version);
    const scopeWithAttributes = scope as InstrumentationScope & {
      attributes?: Attributes;
      droppedAttributesCount?: number;
    };
    if (scopeWithAttributes.attributes) this.attributes(3, scopeWithAttributes.attributes);
    if (scopeWithAttributes.droppedAttributesCount) {
      this.byte(tag(4, VARINT));
      this.varint(scopeWithAttributes.droppedAttributesCount);
    }
    this.close(s, RESERVE_SMALL);
    const scopeBytes = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    if (scope.schemaUrl) this.string(tag(3, LEN), scope.schemaUrl);
    const scopeTail = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    if (resource.schemaUrl) this.string(tag(3, LEN), resource.schemaUrl);
    const resourceTail = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = saved;
    const header: Header = { resource, scope, bytes, scopeBytes, scopeTail, resourceTail };
    this.headerFor = header;
    return header;
  }

  private span(span: ReadableSpan): void {
    const start = this.open(RESERVE_SPAN);
    const ctx = span.spanContext();
    this.id(tag(1, LEN), ctx.traceId);
    this.id(tag(2, LEN), ctx.spanId);
    const traceState = ctx.traceState?.serialize();
    if (traceState) this.string(tag(3, LEN), traceState);
    const parent = span.parentSpanContext;
    if (parent?.spanId) this.id(tag(4, LEN), parent.spanId);
    this.string(tag(5, LEN), span.name);
    // SpanKind in the API counts from INTERNAL = 0; in the proto 0 is UNSPECIFIED.
    const kind = span.kind == null ? 0 : span.kind + 1;
    if (kind !== 0) {
      this.byte(tag(6, VARINT));
      this.varint(kind);
    }
    this.byte(tag(7, I64));
    this.time(span.startTime);
    this.byte(tag(8, I64));
    this.time(span.endTime);
    if (span.attributes) this.attributes(9, span.attributes);
    this.byte(tag(10, VARINT));
    this.varint(span.droppedAttributesCount);
    const events = span.events;
    for (let i = 0; i < events.length; i++) this.event(events[i]);
    this.byte(tag(12, VARINT));
    this.varint(span.droppedEventsCount);
    const links = span.links;
    for (let i = 0; i < links.length; i++) this.link(links[i]);
    this.byte(tag(14, VARINT));
    this.varint(span.droppedLinksCount);
    this.byte(tag(15, LEN)); // Status
    const status = this.open(RESERVE_SMALL);
    if (span.status.message) this.string(tag(2, LEN), span.status.message);
    this.byte(tag(3, VARINT));
    this.varint(span.status.code);
    this.close(status, RESERVE_SMALL);
    this.flags(16, ctx, parent?.isRemote);
    this.close(start, RESERVE_SPAN);
  }

  private event(event: TimedEvent): void {
    this.byte(tag(11, LEN));
    const start = this.open(RESERVE_SMALL);
    this.byte(tag(1, I64));
    this.time(event.time);
    this.string(tag(2, LEN), event.name);
    if (event.attributes) this.attributes(3, event.attributes);
    this.byte(tag(4, VARINT));
    this.varint(event.droppedAttributesCount || 0);
    this.close(start, RESERVE_SMALL);
  }

  private link(link: Link): void {
    this.byte(tag(13, LEN));
    const start = this.open(RESERVE_SMALL);
    const ctx = link.context;
    this.id(tag(1, LEN), ctx.traceId);
    this.id(tag(2, LEN), ctx.spanId);
    const traceState = ctx.traceState?.serialize();
    if (traceState) this.string(tag(3, LEN), traceState);
    if (link.attributes) this.attributes(4, link.attributes);
    this.byte(tag(5, VARINT));
    this.varint(link.droppedAttributesCount || 0);
    this.flags(6, ctx, ctx.isRemote);
    this.close(start, RESERVE_SMALL);
  }

  private flags(field: number, ctx: SpanContext, isRemote: boolean | undefined): void {
    this.varint(tag(field, I32)); // field 16 takes two bytes
    const v = (ctx.traceFlags & 0xff) | FLAG_HAS_IS_REMOTE | (isRemote ? FLAG_IS_REMOTE : 0);
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }

  /** Repeated KeyValue in `field`: key bytes from the cache, then the AnyValue. */
  private attributes(field: number, attributes: Attributes): void {
    for (const key in attributes) {
      if (!Object.hasOwn(attributes, key)) continue;
      this.byte(tag(field, LEN));
      const kv = this.open(RESERVE_SMALL);
      this.bytes(this.key(key));
      this.byte(tag(2, LEN)); // KeyValue.value
      const value = this.open(RESERVE_SMALL);
      this.anyValue(attributes[key]);
      this.close(value, RESERVE_SMALL);
      this.close(kv, RESERVE_SMALL);
    }
  }

  private anyValue(v: AttributeValue | undefined): void {
    if (typeof v === 'string') this.string(tag(1, LEN), v);
    else if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) {
        this.byte(tag(3, VARINT));
        this.varint(v);
      } else {
        this.byte(tag(4, I64));
        this.ensure(8);
        this.buf.writeDoubleLE(v, this.pos);
        this.pos += 8;
      }
    } else if (typeof v === 'boolean') {
      this.byte(tag(2, VARINT));
      this.byte(v ? 1 : 0);
    } else if (v != null) throw UNSUPPORTED;
    // null and undefined: an empty AnyValue, as the SDK writes it.
  }

  /** KeyValue.key with its tag and length, encoded once per key. */
  private key(key: string): Buffer {
    let bytes = this.keys.get(key);
    if (bytes !== undefined) return bytes;
    const len = Buffer.byteLength(key, 'utf8');
    bytes = Buffer.allocUnsafe(1 + varintSize(len) + len);
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
    if (this.keys.size < MAX_CACHED_KEYS) this.keys.set(key, bytes);
    return bytes;
  }

  /** A length-delimited string field; ASCII is written as it is scanned, anything else as UTF-8. */
  private string(fieldTag: number, s: string): void {
    const n = s.length;
    this.ensure(1 + 5 + n * 3);
    const buf = this.buf;
    const start = this.pos;
    buf[start] = fieldTag;
    let p = start + 1;
    if (n < 0x80) buf[p++] = n;
    else p = this.varintAt(p, n);
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        // Not ASCII: the length in bytes differs from the length in characters.
        const len = Buffer.byteLength(s, 'utf8');
        p = this.varintAt(start + 1, len);
        this.pos = p + buf.write(s, p, 'utf8');
        return;
      }
      buf[p++] = c;
    }
    this.pos = p;
  }

  /** A bytes field from a hex id, decoded in place (the SDK's hexToBinary semantics). */
  private id(fieldTag: number, hex: string): void {
    const n = hex.length >>> 1;
    this.ensure(2 + 5 + n);
    const buf = this.buf;
    buf[this.pos++] = fieldTag;
    this.pos = this.varintAt(this.pos, n);
    // A typed array keeps the low 8 bits, as in the SDK.
    for (let i = 0; i < n; i++) buf[this.pos++] = (nibble(hex, 2 * i) << 4) | nibble(hex, 2 * i + 1);
  }

  /** HrTime as fixed64 nanoseconds since the epoch, exact past 2^53 (split into 32-bit halves). */
  private time(t: HrTime): void {
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

  /** Reserve a length prefix; returns where the message's content starts. */
  private open(reserve: number): number {
    this.ensure(reserve);
    this.pos += reserve;
    return this.pos;
  }

  /** Write the length before the content started at `contentStart`, moving the content if the prefix differs. */
  private close(contentStart: number, reserve: number): void {
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

  private varint(v: number): void {
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
  private varintAt(p: number, v: number): number {
    const buf = this.buf;
    while (v > 0x7f) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p++] = v;
    return p;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  private bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/** One hex digit's value; what is not hex decodes as the SDK's hexToBinary decodes it (c - 55). */
function nibble(hex: string, i: number): number {
  const c = hex.charCodeAt(i);
  const v = c < 128 ? HEX[c] : -1;
  return v >= 0 ? v : c - 55;
}
