import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HttpHandler } from '../../admin/http-listener.ts';
import { buildCallDetail, type RouteTopology } from './call-detail.ts';
import { type CallFilter, matchesFilter, summarizeCall, wallMs } from './call-summary.ts';
import type { HealthCounters } from './health-counters.ts';
import type { MessageStore, StoredCall } from './message-store.ts';
import { writePcap } from './pcap-writer.ts';

/**
 * The call view's HTTP surface on the admin listener:
 *
 *   GET /                                  the calls page          (src/admin/ui/index.html)
 *   GET /calls/<trace_id>                  the one-call page       (same page; app.js reads the path)
 *   GET /ui/<file>                         static assets, read from disk once at start
 *   GET /api/capture/info                  node, routes, store figures
 *   GET /api/capture/calls?service=&outcome=&min_setup_ms=&q=&limit=
 *   GET /api/capture/calls/<trace_id>      every message, raw, with sipspan's edits
 *   GET /api/capture/calls/<trace_id>/pcap libpcap file of the call
 *   GET /api/capture/calls/<trace_id>/otlp the span store's OTLP JSON of the trace (proxied)
 *   GET /api/capture/events                server-sent events: `call` (summary), `evict` ({trace_id})
 *   GET /api/capture/health                per-minute calls, outcomes and RTT per hop
 *
 * A filter that cannot be right (a limit that is not a whole number from 1 to 5000, an unknown outcome
 * or route name) is a 400 saying what was expected; a trace id matches in either case.
 */
export interface CallViewDeps {
  store: MessageStore;
  health: HealthCounters;
  node: string;
  topology: () => RouteTopology[];
  /** Base URL of the admin listener, for the OTLP proxy (the span store lives there). */
  adminBase: () => string;
  uiDir: string;
}

interface Registrar {
  handle(path: string, handler: HttpHandler): void;
}

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const TRACE_ID = /^[0-9a-f]{32}$/;
const DEFAULT_LIST_LIMIT = 500;
const MAX_LIST_LIMIT = 5000;
const SSE_FLUSH_MS = 400;
const SSE_HEARTBEAT_MS = 15_000;
const MAX_SSE_CLIENTS = 32;
const OTLP_TIMEOUT_MS = 5000;

/** The static files of the page, read once; an ETag each so a reload revalidates instead of refetching. */
export function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return files; // The API still works without the page (a build that did not copy admin/ui).
  }
  for (const name of names) {
    const type = CONTENT_TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`;
    files.set(name, { body, type, etag });
  }
  return files;
}

function sendStatic(req: IncomingMessage, res: ServerResponse, file: StaticFile): void {
  const headers: Record<string, string> = {
    'content-type': file.type,
    'cache-control': 'no-store',
    etag: file.etag,
    ...PAGE_HEADERS,
  };
  if (req.headers['if-none-match'] === file.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  headers['content-length'] = String(file.body.length);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : file.body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

/** A query parameter that is wrong: answered 400 with what was expected, never ignored. */
class BadParam extends Error {}

/** A number parameter in [min, max] (whole when `whole`), or null when absent. */
function numberParam(url: URL, name: string, min: number, max: number, whole: boolean): number | null {
  const v = url.searchParams.get(name);
  if (v === null || v.trim() === '') return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n)))
    throw new BadParam(
      `${name}: expected a ${whole ? 'whole ' : ''}number from ${min} to ${max}, got "${v}"`,
    );
  return n;
}

function strParam(url: URL, name: string): string | null {
  const v = url.searchParams.get(name);
  return v === null || v.trim() === '' ? null : v.trim();
}

const OUTCOME_FILTERS = [
  'answered',
  'redirected',
  'failed',
  'failed_4xx',
  'failed_5xx',
  'failed_6xx',
  'cancelled',
  'timeout',
  'in_progress',
];

/** A trace id in the form the store keys it by (hex is case-insensitive); other ids as they are. */
function normalizeId(id: string): string {
  const lower = id.toLowerCase();
  return TRACE_ID.test(lower) ? lower : id;
}

export class CallViewHttp {
  private readonly deps: CallViewDeps;
  private readonly files: Map<string, StaticFile>;
  private readonly clients = new Set<ServerResponse>();
  private readonly dirty = new Set<StoredCall>();
  private readonly evicted: string[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;

  constructor(deps: CallViewDeps) {
    this.deps = deps;
    this.files = loadStaticFiles(deps.uiDir);
  }

  register(admin: Registrar): void {
    const page = (req: IncomingMessage, res: ServerResponse) => {
      const index = this.files.get('index.html');
      if (index !== undefined) sendStatic(req, res, index);
      else json(res, 503, { error: `call view page not installed (no index.html in ${this.deps.uiDir})` });
    };
    admin.handle('/', page);
    admin.handle('/calls/', page);
    admin.handle('/ui/', (req, res, url) => {
      const file = this.files.get(url.pathname.slice('/ui/'.length));
      if (file === undefined) json(res, 404, { error: 'not found' });
      else sendStatic(req, res, file);
    });
    admin.handle('/api/capture/info', (_req, res) => json(res, 200, this.info()));
    admin.handle('/api/capture/health', (_req, res) =>
      json(res, 200, { ...this.deps.health.report(), store: this.deps.store.stats() }),
    );
    admin.handle('/api/capture/calls', (_req, res, url) => {
      try {
        json(res, 200, this.list(url));
      } catch (err) {
        if (!(err instanceof BadParam)) throw err;
        json(res, 400, { error: err.message });
      }
    });
    admin.handle('/api/capture/calls/', (req, res, url) => this.oneCall(req, res, url));
    admin.handle('/api/capture/events', (req, res) => this.subscribe(req, res));
  }

  private info(): Record<string, unknown> {
    return {
      node: this.deps.node,
      routes: this.deps.topology(),
      store: this.deps.store.stats(),
      now_ms: Date.now(),
    };
  }

  private list(url: URL): Record<string, unknown> {
    const limit = numberParam(url, 'limit', 1, MAX_LIST_LIMIT, true) ?? DEFAULT_LIST_LIMIT;
    const outcome = strParam(url, 'outcome');
    if (outcome !== null && !OUTCOME_FILTERS.includes(outcome))
      throw new BadParam(`outcome: expected one of ${OUTCOME_FILTERS.join(', ')}, got "${outcome}"`);
    const service = strParam(url, 'service');
    const services = this.deps.topology().map((r) => r.name);
    if (service !== null && !services.includes(service))
      throw new BadParam(`service: expected a route name (${services.join(', ')}), got "${service}"`);
    const filter: CallFilter = {
      service,
      outcome,
      minSetupMs: numberParam(url, 'min_setup_ms', 0, Number.MAX_SAFE_INTEGER, false),
      q: strParam(url, 'q'),
      limit,
    };
    const all = [...this.deps.store.calls()];
    const calls = [];
    let matched = 0;
    const now = performance.now();
    for (let i = all.length - 1; i >= 0; i--) {
      const s = summarizeCall(all[i], now);
      if (!matchesFilter(s, filter)) continue;
      matched++;
      if (calls.length < limit) calls.push(s);
    }
    return { calls, matched, total: all.length, store: this.deps.store.stats(), now_ms: Date.now() };
  }

  private findCall(id: string): StoredCall | undefined {
    if (TRACE_ID.test(id)) return this.deps.store.get(id);
    return this.deps.store.findByCallId(id);
  }

  private async oneCall(_req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const parts = url.pathname.slice('/api/capture/calls/'.length).split('/');
    let id: string;
    try {
      id = normalizeId(decodeURIComponent(parts[0]));
    } catch {
      json(res, 400, { error: 'bad id' });
      return;
    }
    const what = parts[1] ?? '';
    if (parts.length > 2 || (what !== '' && what !== 'pcap' && what !== 'otlp')) {
      json(res, 404, { error: 'not found' });
      return;
    }
    if (what === 'otlp') {
      await this.proxyOtlp(res, id);
      return;
    }
    const call = this.findCall(id);
    if (call === undefined) {
      json(res, 404, { error: 'no such call in the capture store', id });
      return;
    }
    if (what === 'pcap') {
      const packets = call.messages
        .map((m) => ({
          timeMs: wallMs(m.at),
          transport: m.transport,
          source: m.source,
          destination: m.destination,
          payload: m.bytes,
        }))
        .sort((a, b) => a.timeMs - b.timeMs);
      const body = writePcap(packets);
      res.writeHead(200, {
        'content-type': 'application/vnd.tcpdump.pcap',
        'content-disposition': `attachment; filename="sipspan-${call.traceId}.pcap"`,
        'content-length': String(body.length),
        'cache-control': 'no-store',
      });
      res.end(body);
      return;
    }
    json(res, 200, buildCallDetail(call, this.deps.topology()));
  }

  /** The span store serves OTLP JSON at /api/traces/<id>/otlp on this same listener: relay it as a download. */
  private async proxyOtlp(res: ServerResponse, id: string): Promise<void> {
    const traceId = TRACE_ID.test(id) ? id : this.deps.store.findByCallId(id)?.traceId;
    if (traceId === undefined) {
      json(res, 404, { error: 'unknown trace', id });
      return;
    }
    let upstream: Response;
    try {
      upstream = await fetch(`${this.deps.adminBase()}/api/traces/${traceId}/otlp`, {
        signal: AbortSignal.timeout(OTLP_TIMEOUT_MS),
      });
    } catch (err) {
      json(res, 502, { error: 'span store unreachable', detail: (err as Error).message });
      return;
    }
    if (!upstream.ok) {
      json(res, upstream.status === 404 ? 404 : 502, {
        error:
          upstream.status === 404 ? 'no spans for this trace (is the span store on?)' : 'span store error',
        status: upstream.status,
      });
      return;
    }
    const body = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-disposition': `attachment; filename="sipspan-${traceId}.otlp.json"`,
      'content-length': String(body.length),
      'cache-control': 'no-store',
    });
    res.end(body);
  }

  // ───────────────────────────── server-sent events ─────────────────────────────

  private subscribe(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_SSE_CLIENTS) {
      json(res, 503, { error: 'too many event streams' });
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify(this.info())}\n\n`);
    this.clients.add(res);
    req.socket.setTimeout(0);
    const drop = () => this.unsubscribe(res);
    req.on('close', drop);
    res.on('error', drop);
    if (this.clients.size === 1) this.startEvents();
  }

  private unsubscribe(res: ServerResponse): void {
    if (!this.clients.delete(res)) return;
    if (this.clients.size === 0) this.stopEvents();
  }

  /** Changes are collected only while someone listens, and sent in batches. */
  private startEvents(): void {
    const store = this.deps.store;
    store.onChange = (call) => {
      this.dirty.add(call);
    };
    store.onEvict = (call) => {
      this.dirty.delete(call);
      this.evicted.push(call.traceId);
    };
    this.flushTimer = setInterval(() => this.flushEvents(), SSE_FLUSH_MS);
    this.flushTimer.unref();
    this.heartbeatTimer = setInterval(() => this.broadcast(': ping\n\n'), SSE_HEARTBEAT_MS);
    this.heartbeatTimer.unref();
  }

  private stopEvents(): void {
    this.deps.store.onChange = null;
    this.deps.store.onEvict = null;
    this.dirty.clear();
    this.evicted.length = 0;
    if (this.flushTimer !== null) clearInterval(this.flushTimer);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.flushTimer = null;
    this.heartbeatTimer = null;
  }

  private flushEvents(): void {
    if (this.dirty.size === 0 && this.evicted.length === 0) return;
    let text = '';
    for (const id of this.evicted) text += `event: evict\ndata: ${JSON.stringify({ trace_id: id })}\n\n`;
    this.evicted.length = 0;
    const now = performance.now();
    for (const call of this.dirty)
      text += `event: call\ndata: ${JSON.stringify(summarizeCall(call, now))}\n\n`;
    this.dirty.clear();
    this.broadcast(text);
  }

  private broadcast(text: string): void {
    for (const res of this.clients) {
      // A client that cannot keep up is dropped rather than buffered without bound.
      if (res.writableLength > 4 * 1024 * 1024) {
        res.destroy();
        this.unsubscribe(res);
        continue;
      }
      res.write(text);
    }
  }

  close(): void {
    for (const res of [...this.clients]) {
      res.end();
      this.unsubscribe(res);
    }
  }
}
