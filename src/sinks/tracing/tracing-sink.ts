import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { type InstrumentationScope, parseKeyPairsIntoRecord } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { ConsoleSpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { Sipspan } from '../../app.ts';
import { ConfigError, type ConfigProblem } from '../../config/config-error.ts';
import { channels } from '../../observe/channels.ts';
import { type ObservedTransaction, TransactionRecord } from '../../observe/records.ts';
import { samplerFromEnv } from '../../observe/sampler.ts';
import type { Sink } from '../sink.ts';
import { OtlpGrpcTraceExporter } from './otlp-grpc-exporter.ts';
import { OtlpProtoTraceExporter } from './otlp-proto-exporter.ts';
import { RESOURCE } from './semconv.ts';
import { batcherOptionsFromEnv, SpanBatcher } from './span-batcher.ts';
import { buildSpans, type FinishedSpan, type RetransmissionTimes } from './span-builder.ts';
import { SpanStore, type TraceMeta } from './span-store.ts';
import { installTraceApi } from './trace-api.ts';

export interface TracingOptions {
  /** Where the OTEL_* variables are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Keep the embedded store even when an exporter is configured (the demo, the bench command). */
  store?: boolean;
}

export interface TracingSink extends Sink {
  /** The embedded store, or null when spans are only exported. */
  readonly store: SpanStore | null;
  /** The exporters in use, as named in OTEL_TRACES_EXPORTER (`otlp/http/protobuf`, `zipkin`...). */
  readonly exporters: string[];
}

/** Time shutdown() gives the exporters after the composition root's flush (which has its own deadline). */
const SHUTDOWN_DEADLINE_MS = 1000;
/** Retransmission times kept per transaction and direction (as the observer bounds its marks). */
const MAX_RETRANSMISSION_TIMES = 16;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8'));
    return String(pkg.version);
  } catch {
    return 'unknown';
  }
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text.trim() === '' ? undefined : text.trim();
}

/**
 * The process's resource. Precedence, lowest first: sipspan's defaults
 * (`service.name` sipspan, a random `service.instance.id` per process,
 * `host.name`, `service.version`), OTEL_RESOURCE_ATTRIBUTES (W3C-baggage
 * style `k=v,k2=v2`, percent-decoded), OTEL_SERVICE_NAME; `sipspan.node` is
 * always the configured node.
 */
export function resourceFromEnv(env: NodeJS.ProcessEnv, node: string): Resource {
  const fromEnv = parseKeyPairsIntoRecord(nonEmpty(env.OTEL_RESOURCE_ATTRIBUTES));
  const serviceName = nonEmpty(env.OTEL_SERVICE_NAME);
  return resourceFromAttributes({
    [RESOURCE.SERVICE_NAME]: 'sipspan',
    [RESOURCE.SERVICE_VERSION]: packageVersion(),
    [RESOURCE.SERVICE_INSTANCE_ID]: randomUUID(),
    [RESOURCE.HOST_NAME]: hostname(),
    ...fromEnv,
    ...(serviceName === undefined ? {} : { [RESOURCE.SERVICE_NAME]: serviceName }),
    [RESOURCE.NODE]: node,
  });
}

/**
 * OTLP exporter options from the given environment. The exporters read the
 * same variables from process.env themselves (verified in
 * @opentelemetry/otlp-exporter-base: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT with
 * `v1/traces` appended to the generic one, _HEADERS, _TIMEOUT, _COMPRESSION,
 * certificates); passing endpoint, headers and timeout explicitly makes an
 * `env` given to the sink win, and equals their own reading when it is
 * process.env. Compression and certificates are left to the exporters.
 */
function otlpHttpOptions(env: NodeJS.ProcessEnv): {
  url?: string;
  headers?: Record<string, string>;
  timeoutMillis?: number;
} {
  const out: { url?: string; headers?: Record<string, string>; timeoutMillis?: number } = {};
  const traces = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (traces !== undefined) out.url = traces;
  else if (base !== undefined) out.url = `${base.endsWith('/') ? base : `${base}/`}v1/traces`;
  const headers = {
    ...parseKeyPairsIntoRecord(nonEmpty(env.OTEL_EXPORTER_OTLP_HEADERS)),
    ...parseKeyPairsIntoRecord(nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS)),
  };
  if (Object.keys(headers).length > 0) out.headers = headers;
  const timeout = Number(
    nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_TIMEOUT) ?? '',
  );
  if (Number.isFinite(timeout) && timeout > 0) out.timeoutMillis = timeout;
  return out;
}

const PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'];

/** OTEL_SDK_DISABLED=true (case-insensitive, as the specification reads booleans): tracing is off. */
export function sdkDisabled(env: NodeJS.ProcessEnv): boolean {
  return (env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true';
}

/**
 * What `run` would refuse in the OTEL_* environment (exporters, OTLP protocol, sampler), without
 * building anything: `validate` reports the same problems as a start would.
 */
export function tracingEnvProblems(env: NodeJS.ProcessEnv): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const check of [() => samplerFromEnv(env), () => exporterChoices(env)]) {
    try {
      check();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  return problems;
}

/** An exporter OTEL_TRACES_EXPORTER names, with its OTLP protocol (null for the others). */
interface ExporterChoice {
  name: 'console' | 'zipkin' | 'otlp';
  protocol: string | null;
}

/**
 * The exporters named by OTEL_TRACES_EXPORTER (a comma-separated list, as the
 * SDK reads it): `otlp` (protocol from OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
 * OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf by default, http/json, grpc),
 * `zipkin` (OTEL_EXPORTER_ZIPKIN_ENDPOINT), `console`. Unset, empty or `none`:
 * no exporter (unlike the SDK, whose default is otlp: without a configured
 * backend sipspan keeps spans in its embedded store). An unknown name or
 * protocol is a configuration error, reported at start rather than ignored.
 */
function exporterChoices(env: NodeJS.ProcessEnv): ExporterChoice[] {
  if (sdkDisabled(env)) return [];
  const names = [
    ...new Set(
      (env.OTEL_TRACES_EXPORTER ?? '')
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter((s) => s !== ''),
    ),
  ];
  if (names.length === 0 || names.includes('none')) return [];
  return names.map((name): ExporterChoice => {
    if (name === 'console' || name === 'zipkin') return { name, protocol: null };
    if (name !== 'otlp')
      throw new ConfigError([
        {
          path: 'OTEL_TRACES_EXPORTER',
          message: `unknown trace exporter "${name}" (otlp, zipkin, console, none)`,
        },
      ]);
    // The error names the variable the value came from: the signal-specific one wins, as in the SDK.
    const protocolVariable =
      nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) !== undefined
        ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
        : 'OTEL_EXPORTER_OTLP_PROTOCOL';
    const protocol = (nonEmpty(env[protocolVariable]) ?? 'http/protobuf').toLowerCase();
    if (!PROTOCOLS.includes(protocol))
      throw new ConfigError([
        {
          path: protocolVariable,
          message: `unknown OTLP protocol "${protocol}" (${PROTOCOLS.join(', ')})`,
        },
      ]);
    return { name, protocol };
  });
}

/** The exporters OTEL_TRACES_EXPORTER names (exporterChoices), built. */
export function exportersFromEnv(env: NodeJS.ProcessEnv): { name: string; exporter: SpanExporter }[] {
  return exporterChoices(env).map(({ name, protocol }) => {
    if (name === 'console') return { name, exporter: new ConsoleSpanExporter() };
    if (name === 'zipkin') {
      const url = nonEmpty(env.OTEL_EXPORTER_ZIPKIN_ENDPOINT) ?? 'http://localhost:9411/api/v2/spans';
      return { name, exporter: new ZipkinExporter({ url }) };
    }
    if (protocol === 'grpc') {
      // gRPC takes the endpoint as given (no path); headers come from process.env through the exporter.
      const url =
        nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
      return {
        name: `otlp/${protocol}`,
        exporter: new OtlpGrpcTraceExporter(url === undefined ? {} : { url }),
      };
    }
    const opts = otlpHttpOptions(env);
    return {
      name: `otlp/${protocol}`,
      exporter: protocol === 'http/json' ? new OtlpJsonExporter(opts) : new OtlpProtoTraceExporter(opts),
    };
  });
}

/**
 * OpenTelemetry spans, built after the fact from each finished transaction
 * with the ids sipspan chose and injected (span-builder.ts), exported through
 * a bounded queue per exporter (span-batcher.ts), and kept in an embedded
 * store served on the admin listener (span-store.ts, trace-api.ts).
 *
 * Where spans go:
 *   OTEL_TRACES_EXPORTER unset / none   → the store only
 *   an exporter configured              → the exporter(s); the store too when opts.store (demo, bench command)
 *
 * Unsampled transactions produce nothing: the check comes before any allocation.
 */
export function startTracingSink(app: Sipspan, opts: TracingOptions = {}): TracingSink {
  const env = opts.env ?? process.env;
  const disabled = sdkDisabled(env);
  const exporters = exportersFromEnv(env);
  const batchOptions = batcherOptionsFromEnv(env);
  const batchers = exporters.map((e) => new SpanBatcher(e.exporter, batchOptions));
  const store =
    !disabled && (exporters.length === 0 || opts.store === true)
      ? new SpanStore({
          maxTraces: app.config.tracing.store_max_calls,
          maxSpans: app.config.tracing.store_max_spans,
        })
      : null;
  const resource = resourceFromEnv(env, app.config.node);
  const scope: InstrumentationScope = { name: 'sipspan', version: packageVersion() };
  const redactUsers = app.config.logs.redact_users;

  // Retransmission times per live transaction; the record itself is the key (no id bookkeeping, no leak).
  const retransmissions = new WeakMap<
    TransactionRecord,
    RetransmissionTimes & { req: number; resp: number }
  >();
  const onRetransmission = (m: unknown) => {
    const tx = m as ObservedTransaction;
    // After the end (an EndedTransaction, or a record about to become one) the spans are already built.
    if (!(tx instanceof TransactionRecord) || !tx.sampled || tx.outcome !== null) return;
    let r = retransmissions.get(tx);
    if (r === undefined) {
      r = { request: [], response: [], req: 0, resp: 0 };
      retransmissions.set(tx, r);
    }
    const now = performance.now();
    if (tx.retransmissions > r.req) {
      r.req = tx.retransmissions;
      if (r.request.length < MAX_RETRANSMISSION_TIMES) r.request.push(now);
    } else if (tx.responseRetransmissions > r.resp) {
      r.resp = tx.responseRetransmissions;
      if (r.response.length < MAX_RETRANSMISSION_TIMES) r.response.push(now);
    }
  };

  const onEnd = (m: unknown) => {
    const tx = m as TransactionRecord;
    if (!tx.sampled) return;
    const times = retransmissions.get(tx) ?? null;
    // Span objects only for what needs them: the store, and exporters that do not take encoded bodies.
    let spans: FinishedSpan[] | null = null;
    for (const b of batchers) {
      if (b.addTransaction(tx, times, resource, scope)) continue;
      spans ??= buildSpans(tx, resource, scope, times);
      for (const s of spans) b.add(s);
    }
    if (store !== null) {
      spans ??= buildSpans(tx, resource, scope, times);
      const call = tx.call;
      const meta: TraceMeta = {
        callId: tx.callId,
        caller: call === null || redactUsers ? null : call.fromUser,
        callee: call === null || redactUsers ? null : call.toUser,
      };
      store.add(spans, meta);
    }
  };
  if (!disabled) {
    channels.transactionRetransmission.subscribe(onRetransmission);
    channels.transactionEnd.subscribe(onEnd);
  }

  const names = exporters.map((e) => e.name);
  installTraceApi(app.admin, store, disabled ? null : names);

  let stopped = false;
  return {
    name: 'tracing',
    store,
    exporters: names,
    async flush(deadlineMs: number) {
      await Promise.all(batchers.map((b) => b.flush(deadlineMs)));
    },
    async shutdown(deadlineMs = SHUTDOWN_DEADLINE_MS) {
      if (stopped) return;
      stopped = true;
      channels.transactionEnd.unsubscribe(onEnd);
      channels.transactionRetransmission.unsubscribe(onRetransmission);
      await Promise.all(batchers.map((b) => b.shutdown(deadlineMs)));
    },
  };
}
