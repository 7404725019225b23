/**
 * A stand-in OTLP/HTTP trace collector: accepts POST /v1/traces (JSON or
 * protobuf), counts spans by name, answers 200 — after `delayMs` when set (a
 * slow collector). Protobuf is walked with a minimal wire-format reader
 * (ExportTraceServiceRequest → resource_spans(1) → scope_spans(2) → spans(2) →
 * name(5)), so no schema package is needed. stop()/start() on the same port
 * make it absent and present again (a flapping collector).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export class OtlpCounter {
  spans = 0;
  requests = 0;
  /** Delay before answering each export, ms. */
  delayMs = 0;
  readonly byName = new Map<string, number>();
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly held = new Set<NodeJS.Timeout>();
  port = 0;

  get listening(): boolean {
    return this.server !== null;
  }

  async start(host: string, port: number): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const body = Buffer.concat(chunks);
        const type = req.headers['content-type'] ?? '';
        try {
          if (type.includes('json')) this.countJson(JSON.parse(body.toString('utf8')));
          else this.countProtobuf(body);
        } catch {
          // A body we cannot read is still acknowledged: the count shows it.
        }
        const answer = (r: ServerResponse) => {
          r.writeHead(200, {
            'content-type': type.includes('json') ? 'application/json' : 'application/x-protobuf',
          });
          r.end(type.includes('json') ? '{}' : undefined);
        };
        if (this.delayMs <= 0) answer(res);
        else {
          const t = setTimeout(() => {
            this.held.delete(t);
            answer(res);
          }, this.delayMs);
          this.held.add(t);
        }
      });
    });
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('error', () => {});
    await new Promise<void>((r) => server.listen(port, host, () => r()));
    this.server = server;
    this.port = port;
  }

  private add(name: string): void {
    this.spans++;
    this.byName.set(name, (this.byName.get(name) ?? 0) + 1);
  }

  private countJson(doc: { resourceSpans?: { scopeSpans?: { spans?: { name?: string }[] }[] }[] }): void {
    for (const rs of doc.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) this.add(s.name ?? '');
  }

  private countProtobuf(buf: Buffer): void {
    for (const rs of fields(buf, 1))
      for (const ss of fields(rs, 2))
        for (const span of fields(ss, 2)) {
          const name = fields(span, 5)[0];
          this.add(name === undefined ? '' : name.toString('utf8'));
        }
  }

  /** Stop listening and drop every connection (the collector goes away). */
  close(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const t of this.held) clearTimeout(t);
    this.held.clear();
    for (const c of this.sockets) c.destroy();
    this.sockets.clear();
    return new Promise((r) => (s === null ? r() : s.close(() => r())));
  }
}

/** The length-delimited fields numbered `wanted` of a protobuf message. */
function fields(buf: Buffer, wanted: number): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[p++];
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  };
  while (p < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) varint();
    else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else if (wire === 2) {
      const len = varint();
      if (field === wanted) out.push(buf.subarray(p, p + len));
      p += len;
    } else break;
  }
  return out;
}
