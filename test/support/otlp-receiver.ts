/**
 * A real trace receiver for tests: OTLP/HTTP `POST /v1/traces` in
 * `application/x-protobuf` and `application/json`, and Zipkin v2
 * `POST /api/v2/spans` (JSON), on 127.0.0.1. Every format is decoded into one
 * span shape so tests assert the same things whatever the exporter.
 *
 * The protobuf side is a small hand-written walker over the OTLP messages
 * (opentelemetry-proto trace/v1/trace.proto, common/v1/common.proto): no
 * protobuf library ships with the exporters (their serializer is hand-written
 * too), and the walker only needs the fields below.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

export type AttributeValue = string | number | boolean | AttributeValue[] | null;
export type AttributeMap = Record<string, AttributeValue>;

/** One span as the receivers decode it, whatever the wire format. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP numbering: 1 INTERNAL, 2 SERVER, 3 CLIENT (Zipkin kinds are mapped to it). */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: AttributeMap;
  events: { name: string; timeNs: bigint; attributes: AttributeMap }[];
  links: { traceId: string; spanId: string; attributes: AttributeMap }[];
  /** OTLP status code: 0 UNSET, 1 OK, 2 ERROR (Zipkin: from the otel.status_code tag). */
  status: { code: number; message: string };
  /** Resource attributes (Zipkin: only service.name, from localEndpoint). */
  resource: AttributeMap;
  /** Which receiver path and format it came by. */
  format: 'otlp-protobuf' | 'otlp-json' | 'zipkin';
}

// ---- protobuf ------------------------------------------------------------------------------

interface Field {
  field: number;
  wire: number;
  /** Varint (wire 0) as bigint; length-delimited (2) and fixed64/fixed32 (1, 5) as the raw bytes. */
  value: bigint | Buffer;
}

function readVarint(buf: Buffer, pos: { p: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos.p >= buf.length) throw new Error('truncated varint');
    const b = buf[pos.p++];
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return result;
    shift += 7n;
  }
}

function* fields(buf: Buffer): Generator<Field> {
  const pos = { p: 0 };
  while (pos.p < buf.length) {
    const key = Number(readVarint(buf, pos));
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield { field, wire, value: readVarint(buf, pos) };
    else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (pos.p + n > buf.length) throw new Error('truncated fixed field');
      yield { field, wire, value: buf.subarray(pos.p, pos.p + n) };
      pos.p += n;
    } else if (wire === 2) {
      const len = Number(readVarint(buf, pos));
      if (pos.p + len > buf.length) throw new Error('truncated length-delimited field');
      yield { field, wire, value: buf.subarray(pos.p, pos.p + len) };
      pos.p += len;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

const bytes = (f: Field): Buffer => (f.value instanceof Buffer ? f.value : Buffer.alloc(0));
const fixed64 = (f: Field): bigint =>
  f.value instanceof Buffer && f.value.length === 8 ? f.value.readBigUInt64LE(0) : 0n;
const varint = (f: Field): bigint => (typeof f.value === 'bigint' ? f.value : 0n);

/** AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7. */
function anyValueProto(buf: Buffer): AttributeValue {
  for (const f of fields(buf)) {
    if (f.field === 1) return bytes(f).toString('utf8');
    if (f.field === 2) return varint(f) !== 0n;
    if (f.field === 3) return Number(BigInt.asIntN(64, varint(f)));
    if (f.field === 4) return bytes(f).readDoubleLE(0);
    if (f.field === 5) {
      const out: AttributeValue[] = [];
      for (const v of fields(bytes(f))) if (v.field === 1) out.push(anyValueProto(bytes(v)));
      return out;
    }
    if (f.field === 7) return bytes(f).toString('base64');
  }
  return null;
}

/** repeated KeyValue (key 1, value 2) into a map. */
function keyValueProto(buf: Buffer, into: AttributeMap): void {
  let key = '';
  let value: AttributeValue = null;
  for (const f of fields(buf)) {
    if (f.field === 1) key = bytes(f).toString('utf8');
    else if (f.field === 2) value = anyValueProto(bytes(f));
  }
  into[key] = value;
}

function spanProto(buf: Buffer, resource: AttributeMap): ReceivedSpan {
  const span = emptySpan('otlp-protobuf', resource);
  for (const f of fields(buf)) {
    switch (f.field) {
      case 1:
        span.traceId = bytes(f).toString('hex');
        break;
      case 2:
        span.spanId = bytes(f).toString('hex');
        break;
      case 3:
        span.traceState = bytes(f).toString('utf8');
        break;
      case 4:
        span.parentSpanId = bytes(f).toString('hex');
        break;
      case 5:
        span.name = bytes(f).toString('utf8');
        break;
      case 6:
        span.kind = Number(varint(f));
        break;
      case 7:
        span.startNs = fixed64(f);
        break;
      case 8:
        span.endNs = fixed64(f);
        break;
      case 9:
        keyValueProto(bytes(f), span.attributes);
        break;
      case 11: {
        // Event: time_unix_nano 1, name 2, attributes 3.
        const e = { name: '', timeNs: 0n, attributes: {} as AttributeMap };
        for (const g of fields(bytes(f))) {
          if (g.field === 1) e.timeNs = fixed64(g);
          else if (g.field === 2) e.name = bytes(g).toString('utf8');
          else if (g.field === 3) keyValueProto(bytes(g), e.attributes);
        }
        span.events.push(e);
        break;
      }
      case 13: {
        // Link: trace_id 1, span_id 2, attributes 4.
        const l = { traceId: '', spanId: '', attributes: {} as AttributeMap };
        for (const g of fields(bytes(f))) {
          if (g.field === 1) l.traceId = bytes(g).toString('hex');
          else if (g.field === 2) l.spanId = bytes(g).toString('hex');
          else if (g.field === 4) keyValueProto(bytes(g), l.attributes);
        }
        span.links.push(l);
        break;
      }
      case 15:
        // Status: message 2, code 3.
        for (const g of fields(bytes(f))) {
          if (g.field === 2) span.status.message = bytes(g).toString('utf8');
          else if (g.field === 3) span.status.code = Number(varint(g));
        }
        break;
    }
  }
  return span;
}

/** ExportTraceServiceRequest: resource_spans 1 → (resource 1 → attributes 1), scope_spans 2 → spans 2. */
export function decodeProtobuf(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of fields(body)) {
    if (rs.field !== 1) continue;
    const resource: AttributeMap = {};
    const scopeSpans: Buffer[] = [];
    for (const f of fields(bytes(rs))) {
      if (f.field === 1)
        for (const a of fields(bytes(f))) if (a.field === 1) keyValueProto(bytes(a), resource);
      if (f.field === 2) scopeSpans.push(bytes(f));
    }
    for (const ss of scopeSpans)
      for (const sp of fields(ss)) if (sp.field === 2) out.push(spanProto(bytes(sp), resource));
  }
  return out;
}

// ---- JSON ----------------------------------------------------------------------------------

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
}
type JsonKeyValue = { key: string; value: JsonAnyValue };

function anyValueJson(v: JsonAnyValue | undefined): AttributeValue {
  if (v === undefined) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValueJson);
  return null;
}

function keyValuesJson(list: JsonKeyValue[] | undefined): AttributeMap {
  const out: AttributeMap = {};
  for (const kv of list ?? []) out[kv.key] = anyValueJson(kv.value);
  return out;
}

// biome-ignore lint/suspicious/noExplicitAny: the OTLP/JSON document as parsed
type Json = any;

export function decodeOtlpJson(doc: Json): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of doc.resourceSpans ?? []) {
    const resource = keyValuesJson(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          traceState: s.traceState ?? '',
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          attributes: keyValuesJson(s.attributes),
          events: (s.events ?? []).map((e: Json) => ({
            name: e.name,
            timeNs: BigInt(e.timeUnixNano),
            attributes: keyValuesJson(e.attributes),
          })),
          links: (s.links ?? []).map((l: Json) => ({
            traceId: l.traceId,
            spanId: l.spanId,
            attributes: keyValuesJson(l.attributes),
          })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          format: 'otlp-json',
        });
      }
    }
  }
  return out;
}

const ZIPKIN_KINDS: Record<string, number> = { SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };

/** Zipkin v2: times in microseconds; tags are strings; events are annotations. */
function decodeZipkin(doc: Json[]): ReceivedSpan[] {
  return doc.map((s) => {
    const tags: Record<string, string> = s.tags ?? {};
    const attributes: AttributeMap = { ...tags };
    return {
      traceId: s.traceId,
      spanId: s.id,
      parentSpanId: s.parentId ?? '',
      traceState: '',
      name: s.name,
      kind: ZIPKIN_KINDS[s.kind ?? ''] ?? 1,
      startNs: BigInt(Math.round(s.timestamp)) * 1000n,
      endNs: BigInt(Math.round(s.timestamp + (s.duration ?? 0))) * 1000n,
      attributes,
      events: (s.annotations ?? []).map((a: { timestamp: number; value: string }) => ({
        name: a.value,
        timeNs: BigInt(Math.round(a.timestamp)) * 1000n,
        attributes: {},
      })),
      links: [],
      status: { code: tags['otel.status_code'] === 'ERROR' ? 2 : 0, message: tags.error ?? '' },
      resource: { 'service.name': s.localEndpoint?.serviceName ?? '' },
      format: 'zipkin',
    };
  });
}

// ---- the server ----------------------------------------------------------------------------

export interface ReceivedRequest {
  path: string;
  contentType: string;
  headers: IncomingHttpHeaders;
  spans: number;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        resolve(req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body);
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
  });
}

/** Waits for "at least n spans received", shared by the receivers of each transport. */
export class SpanArrivals {
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  /** Resolves when `spans` holds at least n, or after timeoutMs (whatever came). */
  wait(spans: readonly unknown[], n: number, timeoutMs: number): Promise<void> {
    if (spans.length >= n) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Spans were added to `spans`: release the waits it now satisfies. */
  arrived(spans: readonly unknown[]): void {
    for (let i = this.waiters.length - 1; i >= 0; i--)
      if (spans.length >= this.waiters[i].n) this.waiters.splice(i, 1)[0].resolve();
  }
}

/** A real OTLP/HTTP (protobuf and JSON) and Zipkin v2 receiver on 127.0.0.1:0. */
export class TraceReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly requests: ReceivedRequest[] = [];
  /** The span objects of OTLP/JSON requests exactly as posted (for comparing renderings). */
  readonly rawJsonSpans: Json[] = [];
  /** When set, every request is answered with this status (exporter failure tests). */
  failWith: number | null = null;
  private readonly server: Server;
  private readonly arrivals = new SpanArrivals();
  port = 0;

  constructor() {
    this.server = createServer(async (req, res) => {
      let body: Buffer;
      try {
        body = await readBody(req);
      } catch (err) {
        res.writeHead(400).end(String(err));
        return;
      }
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
      const path = req.url ?? '';
      if (this.failWith !== null) {
        res.writeHead(this.failWith).end();
        return;
      }
      let spans: ReceivedSpan[];
      try {
        if (req.method !== 'POST') throw new Error('POST only');
        if (path === '/v1/traces' && type === 'application/x-protobuf') spans = decodeProtobuf(body);
        else if (path === '/v1/traces' && type === 'application/json') {
          const doc = JSON.parse(body.toString('utf8'));
          for (const rs of doc.resourceSpans ?? [])
            for (const ss of rs.scopeSpans ?? []) this.rawJsonSpans.push(...(ss.spans ?? []));
          spans = decodeOtlpJson(doc);
        } else if (path === '/api/v2/spans') spans = decodeZipkin(JSON.parse(body.toString('utf8')));
        else {
          res.writeHead(404).end();
          return;
        }
      } catch (err) {
        res.writeHead(400).end(String(err));
        return;
      }
      this.requests.push({ path, contentType: type, headers: req.headers, spans: spans.length });
      this.spans.push(...spans);
      // OTLP/HTTP: an empty ExportTraceServiceResponse (full success); Zipkin: 202 Accepted.
      if (path === '/api/v2/spans') res.writeHead(202).end();
      else if (type === 'application/x-protobuf')
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.alloc(0));
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      this.arrivals.arrived(this.spans);
    });
  }

  /** Resolves when at least n spans have arrived, or after timeoutMs (whatever came). */
  waitForSpans(n: number, timeoutMs: number): Promise<void> {
    return this.arrivals.wait(this.spans, n, timeoutMs);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    this.port = typeof a === 'object' && a !== null ? a.port : 0;
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

function emptySpan(format: ReceivedSpan['format'], resource: AttributeMap): ReceivedSpan {
  return {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    traceState: '',
    name: '',
    kind: 0,
    startNs: 0n,
    endNs: 0n,
    attributes: {},
    events: [],
    links: [],
    status: { code: 0, message: '' },
    resource,
    format,
  };
}
