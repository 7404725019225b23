/**
 * The telemetry sinks as the reliability tests drive them: the tracing sink
 * with its in-memory store (and, when asked, an OTLP exporter), the metrics
 * sink scraped over HTTP like Prometheus does, the log sink writing to a file
 * the test reads back.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SinkFactory, Sipspan } from '../../../src/app.ts';
import { startLogSink } from '../../../src/sinks/logs/log-sink.ts';
import { startMetricsSink } from '../../../src/sinks/metrics/metrics-sink.ts';
import type { SpanStore } from '../../../src/sinks/tracing/span-store.ts';
import { startTracingSink } from '../../../src/sinks/tracing/tracing-sink.ts';

/** One exported span as the tests look at it. */
export interface ProbedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  routeName: string;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
  status: { code: number; message?: string };
}

export interface TracingProbe {
  sinkName: string;
  factory: SinkFactory;
  spans(): ProbedSpan[];
}

/** The tracing sink with its embedded store (no exporter unless `env` names one). */
export function tracingProbe(env: NodeJS.ProcessEnv = {}): TracingProbe {
  let store: SpanStore | null = null;
  return {
    sinkName: 'tracing',
    factory: (app) => {
      const sink = startTracingSink(app, { env, store: true });
      store = sink.store;
      return [sink];
    },
    spans() {
      if (store === null) return [];
      const out: ProbedSpan[] = [];
      for (const t of store.recent(100_000)) {
        for (const s of t.spans) {
          const c = s.spanContext();
          out.push({
            name: s.name,
            kind: s.kind,
            traceId: c.traceId,
            spanId: c.spanId,
            parentSpanId: s.parentSpanContext?.spanId ?? null,
            routeName: String(s.attributes['sipspan.route'] ?? ''),
            attributes: { ...s.attributes },
            links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
            status: s.status,
          });
        }
      }
      return out;
    },
  };
}

export interface MetricsProbe {
  factory: SinkFactory;
  /** Every series (name{labels}) exposed on the routes' /metrics listeners. */
  series(app: Sipspan): Promise<string[]>;
  /** The value of one series line on the routes' listeners (sum over routes), or NaN. */
  value(app: Sipspan, series: string): Promise<number>;
}

async function scrape(app: Sipspan): Promise<string> {
  let text = '';
  for (const h of app.routeHttp) {
    if (h === null) continue;
    const r = await fetch(`http://${h.host}:${h.port}/metrics`, { signal: AbortSignal.timeout(2000) });
    text += await r.text();
  }
  return text;
}

export function metricsProbe(): MetricsProbe {
  return {
    factory: (app) => [startMetricsSink(app)],
    async series(app) {
      const out: string[] = [];
      for (const line of (await scrape(app)).split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        out.push(line.slice(0, i));
      }
      return out.sort();
    },
    async value(app, series) {
      let sum = Number.NaN;
      for (const line of (await scrape(app)).split('\n')) {
        const i = line.lastIndexOf(' ');
        if (line.slice(0, i) === series) sum = (Number.isNaN(sum) ? 0 : sum) + Number(line.slice(i + 1));
      }
      return sum;
    },
  };
}

export interface LogsProbe {
  factory: SinkFactory;
  /** The `logs:` config section that sends lines where lines() reads them. */
  config: Record<string, unknown>;
  /** Longest acceptable line: every wire value is cut at max_value_bytes (256) before escaping. */
  maxLineBytes: number;
  lines(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export function logsProbe(extra: Record<string, unknown> = {}): LogsProbe {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-logs-'));
  const file = join(dir, 'sipspan.log');
  return {
    factory: (app) => [startLogSink(app)],
    config: { destination: file, ...extra },
    maxLineBytes: 8192,
    async lines() {
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        return [];
      }
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      return lines;
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One factory starting several, in order. */
export function combineSinks(factories: SinkFactory[]): SinkFactory {
  return async (app) => {
    const out = [];
    for (const f of factories) out.push(...(await f(app)));
    return out;
  };
}
