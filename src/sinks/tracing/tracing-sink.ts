import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import type { InstrumentationScope } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpGrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { ConsoleSpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace';
import { sendJson } from '../../admin/http-listener.ts';
import type { Sipspan } from '../../app.ts';
import { channels } from '../../observe/channels.ts';
import type { TransactionRecord } from '../../observe/records.ts';
import type { Sink } from '../sink.ts';
import { batcherOptionsFromEnv, SpanBatcher } from './span-batcher.ts';
import { buildSpans } from './span-builder.ts';
import { otlpJson, SpanStore, spanJson, summarize } from './span-store.ts';

export interface TracingOptions {
  env?: NodeJS.ProcessEnv;
  /** Keep the embedded store even when an exporter is configured (the demo). */
  store?: boolean;
}

/** OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value, values percent-encoded (OpenTelemetry SDK spec). */
function resourceAttributesFromEnv(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === undefined) return out;
  for (const pair of text.split(',')) {
    const i = pair.indexOf('=');
    if (i <= 0) continue;
    try {
      out[pair.slice(0, i).trim()] = decodeURIComponent(pair.slice(i + 1).trim());
    } catch {
      // a malformed value is skipped, as the SDK does
    }
  }
  return out;
}

/** The exporter named by OTEL_TRACES_EXPORTER (+ protocol); null for none / unset (store only). */
export function exporterFromEnv(env: NodeJS.ProcessEnv): SpanExporter | null {
  const name = (env.OTEL_TRACES_EXPORTER ?? '').split(',')[0].trim().toLowerCase();
  switch (name) {
    case '':
    case 'none':
      return null;
    case 'console':
      return new ConsoleSpanExporter();
    case 'zipkin':
      return new ZipkinExporter({
        url: env.OTEL_EXPORTER_ZIPKIN_ENDPOINT ?? 'http://localhost:9411/api/v2/spans',
      });
    default: {
      const protocol = (
        env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ??
        env.OTEL_EXPORTER_OTLP_PROTOCOL ??
        'http/protobuf'
      ).trim();
      const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
      const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
      if (protocol === 'grpc')
        return new OtlpGrpcExporter(traces ? { url: traces } : base ? { url: base } : {});
      // The exporters read the environment too; the endpoint is passed so an env given to the sink (tests) wins.
      const url = traces ?? (base ? `${base.replace(/\/$/, '')}/v1/traces` : undefined);
      if (protocol === 'http/json') return new OtlpJsonExporter(url ? { url } : {});
      return new OtlpProtoExporter(url ? { url } : {});
    }
  }
}

/**
 * OpenTelemetry spans, built after the fact from each finished transaction
 * (ids as sipspan chose and injected them), exported by the standard OTEL_*
 * variables through a bounded queue, and kept in an embedded store served on
 * the admin listener.
 */
export function startTracingSink(
  app: Sipspan,
  opts: TracingOptions = {},
): Sink & { store: SpanStore | null } {
  const env = opts.env ?? process.env;
  const exporter = exporterFromEnv(env);
  const batcher = exporter === null ? null : new SpanBatcher(exporter, batcherOptionsFromEnv(env));
  const store =
    exporter === null || opts.store === true
      ? new SpanStore(app.config.tracing.store_max_calls, app.config.tracing.store_max_spans)
      : null;
  const resource: Resource = resourceFromAttributes({
    ...resourceAttributesFromEnv(env.OTEL_RESOURCE_ATTRIBUTES),
    'service.name': env.OTEL_SERVICE_NAME ?? 'sipspan',
    'service.instance.id': randomUUID(),
    'host.name': hostname(),
    'sipspan.node': app.config.node,
  });
  const scope: InstrumentationScope = { name: 'sipspan' };

  const onEnd = (m: unknown) => {
    const tx = m as TransactionRecord;
    // Unsampled calls produce nothing at all (parent-based, decided once per call).
    if (!tx.sampled || tx.traceId === '') return;
    const spans = buildSpans(tx, resource, scope);
    for (const s of spans) {
      batcher?.add(s);
      store?.add(s);
    }
  };
  channels.transactionEnd.subscribe(onEnd);

  if (store !== null) {
    app.admin.handle('/api/traces', (_req: IncomingMessage, res: ServerResponse, url: URL) => {
      const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 50)));
      sendJson(res, 200, { traces: store.recent(limit).map(summarize) });
    });
    app.admin.handle('/api/traces/', (_req, res, url) => {
      const rest = url.pathname.slice('/api/traces/'.length).split('/');
      const t = store.get(rest[0]);
      if (t === undefined) {
        sendJson(res, 404, { error: 'trace not found (evicted, unsampled, or unknown)' });
        return;
      }
      if (rest[1] === 'otlp') sendJson(res, 200, otlpJson(t));
      else sendJson(res, 200, { ...summarize(t), spans: t.spans.map(spanJson) });
    });
    app.admin.handle('/api/calls', (_req, res, url) => {
      const callId = url.searchParams.get('call_id');
      if (callId === null) {
        sendJson(res, 400, { error: 'give ?call_id=' });
        return;
      }
      const traceId = store.findByCallId(callId);
      sendJson(res, traceId === undefined ? 404 : 200, {
        call_id: callId,
        trace_ids: traceId === undefined ? [] : [traceId],
      });
    });
  }

  return {
    name: 'tracing',
    store,
    async flush(deadlineMs: number) {
      await batcher?.flush(deadlineMs);
    },
    async shutdown() {
      channels.transactionEnd.unsubscribe(onEnd);
      await batcher?.shutdown();
    },
  };
}
