import { createServer, type Server } from 'node:http';

/** One span as the receivers decode it, whatever the wire format. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP numbering: 2 SERVER, 3 CLIENT (Zipkin kinds are mapped to it). */
  kind: number;
  startNs: bigint;
  endNs: bigint;
}

/** Minimal protobuf reading: just what ExportTraceServiceRequest → Span needs. */
function readVarint(buf: Buffer, pos: { p: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos.p++];
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return result;
    shift += 7n;
  }
}

function* fields(buf: Buffer): Generator<{ field: number; wire: number; value: Buffer | bigint }> {
  const pos = { p: 0 };
  while (pos.p < buf.length) {
    const key = Number(readVarint(buf, pos));
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield { field, wire, value: readVarint(buf, pos) };
    else if (wire === 1) {
      yield { field, wire, value: buf.readBigUInt64LE(pos.p) };
      pos.p += 8;
    } else if (wire === 2) {
      const len = Number(readVarint(buf, pos));
      yield { field, wire, value: buf.subarray(pos.p, pos.p + len) };
      pos.p += len;
    } else if (wire === 5) {
      pos.p += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

// ExportTraceServiceRequest.resource_spans = 1; ResourceSpans.scope_spans = 2; ScopeSpans.spans = 2;
// Span: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, start_time_unix_nano 7, end_time_unix_nano 8.
export function decodeProtobuf(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of fields(body)) {
    if (rs.field !== 1 || !(rs.value instanceof Buffer)) continue;
    for (const ss of fields(rs.value)) {
      if (ss.field !== 2 || !(ss.value instanceof Buffer)) continue;
      for (const sp of fields(ss.value)) {
        if (sp.field !== 2 || !(sp.value instanceof Buffer)) continue;
        const span: ReceivedSpan = {
          traceId: '',
          spanId: '',
          parentSpanId: '',
          name: '',
          kind: 0,
          startNs: 0n,
          endNs: 0n,
        };
        for (const f of fields(sp.value)) {
          const v = f.value;
          if (f.field === 1 && v instanceof Buffer) span.traceId = v.toString('hex');
          else if (f.field === 2 && v instanceof Buffer) span.spanId = v.toString('hex');
          else if (f.field === 4 && v instanceof Buffer) span.parentSpanId = v.toString('hex');
          else if (f.field === 5 && v instanceof Buffer) span.name = v.toString('utf8');
          else if (f.field === 6 && typeof v === 'bigint') span.kind = Number(v);
          else if (f.field === 7 && typeof v === 'bigint') span.startNs = v;
          else if (f.field === 8 && typeof v === 'bigint') span.endNs = v;
        }
        out.push(span);
      }
    }
  }
  return out;
}

function decodeOtlpJson(body: Buffer): ReceivedSpan[] {
  const doc = JSON.parse(body.toString('utf8'));
  const out: ReceivedSpan[] = [];
  for (const rs of doc.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
        });
      }
    }
  }
  return out;
}

function decodeZipkin(body: Buffer): ReceivedSpan[] {
  const doc = JSON.parse(body.toString('utf8')) as {
    traceId: string;
    id: string;
    parentId?: string;
    name: string;
    kind?: string;
    timestamp: number;
    duration: number;
  }[];
  return doc.map((s) => ({
    traceId: s.traceId,
    spanId: s.id,
    parentSpanId: s.parentId ?? '',
    name: s.name,
    kind: s.kind === 'SERVER' ? 2 : s.kind === 'CLIENT' ? 3 : 1,
    startNs: BigInt(Math.round(s.timestamp)) * 1000n,
    endNs: BigInt(Math.round(s.timestamp + s.duration)) * 1000n,
  }));
}

/** A real OTLP/HTTP (protobuf and JSON) and Zipkin v2 receiver on 127.0.0.1. */
export class TraceReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly contentTypes = new Set<string>();
  private readonly server: Server;
  port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const type = (req.headers['content-type'] ?? '').split(';')[0];
        this.contentTypes.add(`${req.url} ${type}`);
        try {
          if (req.url === '/v1/traces' && type === 'application/x-protobuf')
            this.spans.push(...decodeProtobuf(body));
          else if (req.url === '/v1/traces' && type === 'application/json')
            this.spans.push(...decodeOtlpJson(body));
          else if (req.url === '/api/v2/spans') this.spans.push(...decodeZipkin(body));
          else {
            res.writeHead(404).end();
            return;
          }
        } catch (err) {
          res.writeHead(400).end(String(err));
          return;
        }
        res.writeHead(req.url === '/api/v2/spans' ? 202 : 200, {
          'content-type': type || 'application/json',
        });
        res.end(type === 'application/x-protobuf' ? Buffer.alloc(0) : '{}');
      });
    });
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
