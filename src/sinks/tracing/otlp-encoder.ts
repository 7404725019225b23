import { Buffer } from 'node:buffer';
import type { Attributes, AttributeValue, Link } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import type { TransactionRecord } from '../../observe/records.ts';
import {
  encodedKey,
  I64,
  LEN,
  ProtoWriter,
  RESERVE_BATCH,
  RESERVE_SMALL,
  RESERVE_SPAN,
  tag,
  VARINT,
} from './proto-writer.ts';
import type { RetransmissionTimes } from './span-builder.ts';
import { writeTransactionSpan } from './transaction-spans.ts';

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

/** Attribute keys come from a fixed set in code; this bounds the cache should something else pass through. */
const MAX_CACHED_KEYS = 512;

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

export class OtlpTraceEncoder extends ProtoWriter {
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
    return this.beginFor(first.resource, first.instrumentationScope);
  }

  /** begin(), for spans of `resource` and `scope`. */
  beginFor(resource: ReadableSpan['resource'], scope: InstrumentationScope): boolean {
    this.pos = 0;
    this.current = null;
    try {
      const header = this.header(resource, scope);
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

  /**
   * Add span `index` of a finished transaction (0 its SERVER span, 1 its
   * CLIENT span), written straight from its record (transaction-spans.ts):
   * the bytes append() writes for that span of buildSpans(), without making
   * it. False when the request begun is for another resource or scope, and
   * then nothing is written.
   */
  appendTransactionSpan(
    tx: TransactionRecord,
    retransmissions: RetransmissionTimes | null,
    index: number,
    resource: ReadableSpan['resource'],
    scope: InstrumentationScope,
  ): boolean {
    const current = this.current;
    if (current === null || resource !== current.header.resource || scope !== current.header.scope)
      return false;
    const start = this.pos;
    try {
      writeTransactionSpan(this, tx, retransmissions, index);
      return true;
    } catch (err) {
      this.pos = start;
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
    this.spanFlags(16, ctx.traceFlags, parent?.isRemote);
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
    this.spanFlags(6, ctx.traceFlags, ctx.isRemote);
    this.close(start, RESERVE_SMALL);
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
    if (typeof v === 'string') this.anyString(v);
    else if (typeof v === 'number') this.anyNumber(v);
    else if (typeof v === 'boolean') this.anyBool(v);
    else if (v != null) throw UNSUPPORTED;
    // null and undefined: an empty AnyValue, as the SDK writes it.
  }

  /** KeyValue.key with its tag and length, encoded once per key. */
  private key(key: string): Buffer {
    let bytes = this.keys.get(key);
    if (bytes !== undefined) return bytes;
    bytes = encodedKey(key);
    if (this.keys.size < MAX_CACHED_KEYS) this.keys.set(key, bytes);
    return bytes;
  }
}
