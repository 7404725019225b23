/**
 * The far side of "all telemetry on": an OTLP/HTTP receiver that accepts
 * POST /v1/traces and answers 200 (counting what arrived, so the report can
 * show the spans were really exported), and a scraper that reads the route's
 * /metrics every second as Prometheus would.
 */
import { createServer, type Server } from 'node:http';
import { type Buckets, parseHistogram } from './stats.ts';

export interface OtlpReceiver {
  readonly port: number;
  requests: number;
  bytes: number;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const state = { requests: 0, bytes: 0 };
  const server: Server = createServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => {
      n += d.length;
    });
    req.on('end', () => {
      if (req.method === 'POST' && (req.url ?? '').startsWith('/v1/traces')) {
        state.requests++;
        state.bytes += n;
        // An empty ExportTraceServiceResponse in either encoding the exporter asked for.
        const json = (req.headers['content-type'] ?? '').includes('json');
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : '');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get requests() {
      return state.requests;
    },
    get bytes() {
      return state.bytes;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** GET /metrics every second from each port while a path runs. */
export class Scraper {
  scrapes = 0;
  failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private ports: number[] = [];

  watch(ports: number[]): void {
    this.ports = ports;
    if (this.timer === null && ports.length > 0) {
      this.timer = setInterval(() => {
        for (const p of this.ports) {
          fetch(`http://127.0.0.1:${p}/metrics`)
            .then((r) => r.text())
            .then(
              () => {
                this.scrapes++;
              },
              () => {
                this.failures++;
              },
            );
        }
      }, 1000);
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.ports = [];
  }
}

/** sipspan_proxy_seconds (or another histogram) summed over the given metrics ports (and `label`'s series). */
export async function scrapeHistogram(
  ports: number[],
  name: string,
  label?: string,
): Promise<Buckets | null> {
  const total: Buckets = new Map();
  for (const p of ports) {
    try {
      const text = await (await fetch(`http://127.0.0.1:${p}/metrics`)).text();
      for (const [bound, n] of parseHistogram(text, name, label))
        total.set(bound, (total.get(bound) ?? 0) + n);
    } catch {
      return null;
    }
  }
  return total.size === 0 ? null : total;
}

export interface RuntimeSample {
  gcSeconds: number;
  eventLoopDelayP50Us: number | null;
  eventLoopDelayP99Us: number | null;
}

/**
 * The process metrics of sipspan's admin /metrics: GC time so far (summed over
 * kinds) and prom-client's event-loop delay percentiles since the previous
 * scrape (it resets its monitor on each one), so a scrape before and one after
 * a run bound that run.
 */
export async function scrapeRuntime(adminPort: number): Promise<RuntimeSample | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    let gc = 0;
    let p50: number | null = null;
    let p99: number | null = null;
    for (const line of text.split('\n')) {
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.startsWith('nodejs_gc_duration_seconds_sum')) gc += value;
      else if (line.startsWith('nodejs_eventloop_lag_p50_seconds')) p50 = Math.round(value * 1e6);
      else if (line.startsWith('nodejs_eventloop_lag_p99_seconds')) p99 = Math.round(value * 1e6);
    }
    return { gcSeconds: gc, eventLoopDelayP50Us: p50, eventLoopDelayP99Us: p99 };
  } catch {
    return null;
  }
}
