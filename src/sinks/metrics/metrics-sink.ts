import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { sendText } from '../../admin/http-listener.ts';
import type { Sipspan } from '../../app.ts';
import { channels } from '../../observe/channels.ts';
import type {
  CallRecord,
  ForwardedEvent,
  LimitEvent,
  RejectedEvent,
  TransactionRecord,
} from '../../observe/records.ts';
import { processStats } from '../process-stats.ts';
import type { Sink } from '../sink.ts';
import {
  CALL_OUTCOMES,
  DIRECTIONS,
  FINALS,
  GENERATED_CODES,
  LIMITS,
  METHOD_LABELS,
  PARSE_REASONS,
  PROCESS_METRICS,
  REASONS,
  ROUTE_METRICS,
  STATUS_CLASSES,
} from './catalog.ts';

type Child = { inc(v?: number): void };
type HistChild = { observe(v: number): void };

const METHOD_INDEX = new Map(METHOD_LABELS.map((m, i) => [m, i]));
const CLASS_INDEX = new Map<string, number>(STATUS_CLASSES.map((c, i) => [c, i]));
const REASON_SET: ReadonlySet<string> = new Set(REASONS);
const LIMIT_SET: ReadonlySet<string> = new Set(LIMITS);
const GENERATED_SET: ReadonlySet<string> = new Set(GENERATED_CODES);

function methodIndex(label: string): number {
  return METHOD_INDEX.get(label) ?? METHOD_INDEX.get('other')!;
}

function classIndex(status: number): number {
  if (status >= 100 && status <= 699) return Math.floor(status / 100) - 1;
  return CLASS_INDEX.get('timeout')!;
}

/** RFC 6076 §4.6–4.10 need these finals apart; everything else folds into its class. */
function finalOf(call: CallRecord): (typeof FINALS)[number] {
  if (call.outcome === 'timeout') return 'timeout';
  if (call.outcome === 'cancelled') return 'cancelled';
  const s = call.finalStatus;
  if (s >= 200 && s < 300) return '2xx';
  if (s >= 300 && s < 400) return '3xx';
  const exact = String(s);
  if ((FINALS as readonly string[]).includes(exact)) return exact as (typeof FINALS)[number];
  if (s < 500) return 'other_4xx';
  if (s < 600) return 'other_5xx';
  return 'other_6xx';
}

/**
 * Children are bound lazily, once per label combination, and kept in arrays
 * indexed by closed-set positions: the per-message path is array reads and an
 * increment, never a label object or a string built per message.
 */
class RouteMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<string>;
  private readonly responses: Counter<string>;
  private readonly transactions: Counter<string>;
  private readonly retransmissions: Counter<string>;
  private readonly upstreamRtt: Histogram<string>;
  private readonly transactionDuration: Histogram<string>;
  private readonly callsProcessed: Counter<string>;
  private readonly sessionAttempts: Counter<string>;
  private readonly sessionsCompleted: Counter<string>;
  private readonly srd: Histogram<string>;
  private readonly sdd: Histogram<string>;
  private readonly sdt: Histogram<string>;
  private readonly rrd: Histogram<string>;
  private readonly dropped: Counter<string>;
  private readonly parseErrors: Counter<string>;
  private readonly generated: Counter<string>;
  private readonly upstreamErrors: Counter<string>;
  private readonly proxySeconds: Histogram<string>;
  private readonly limitHits: Counter<string>;
  private readonly requestChildren: (Child | undefined)[] = [];
  private readonly responseChildren: (Child | undefined)[] = [];
  private readonly proxyRequest: HistChild;
  private readonly proxyResponse: HistChild;

  constructor(app: Sipspan, routeIndex: number, name: string) {
    const r = [this.registry];
    this.registry.setDefaultLabels({ service: name, node: app.config.node });
    const counter = (s: { name: string; help: string; labels: readonly string[] }) =>
      new Counter({ name: s.name, help: s.help, labelNames: [...s.labels], registers: r });
    const histogram = (s: {
      name: string;
      help: string;
      labels: readonly string[];
      buckets: readonly number[];
    }) =>
      new Histogram({
        name: s.name,
        help: s.help,
        labelNames: [...s.labels],
        buckets: [...s.buckets],
        registers: r,
      });
    const M = ROUTE_METRICS;
    this.requests = counter(M.requests);
    this.responses = counter(M.responses);
    this.transactions = counter(M.transactions);
    this.retransmissions = counter(M.retransmissions);
    this.upstreamRtt = histogram(M.upstreamRtt);
    this.transactionDuration = histogram(M.transactionDuration);
    this.callsProcessed = counter(M.callsProcessed);
    this.sessionAttempts = counter(M.sessionAttempts);
    this.sessionsCompleted = counter(M.sessionsCompleted);
    this.srd = histogram(M.sessionRequestDelay);
    this.sdd = histogram(M.sessionDisconnectDelay);
    this.sdt = histogram(M.sessionDuration);
    this.rrd = histogram(M.registrationRequestDelay);
    this.dropped = counter(M.dropped);
    this.parseErrors = counter(M.parseErrors);
    this.generated = counter(M.generated);
    this.upstreamErrors = counter(M.upstreamErrors);
    this.proxySeconds = histogram(M.proxySeconds);
    this.limitHits = counter(M.limitHits);
    const observer = app.observer;
    new Gauge({
      name: M.activeCalls.name,
      help: M.activeCalls.help,
      registers: r,
      collect() {
        this.set(observer.activeCalls(routeIndex));
      },
    });
    new Gauge({
      name: M.pendingTransactions.name,
      help: M.pendingTransactions.help,
      registers: r,
      collect() {
        this.set(observer.pendingTransactions(routeIndex));
      },
    });
    new Gauge({
      name: M.tcpConnections.name,
      help: M.tcpConnections.help,
      registers: r,
      collect() {
        this.set(app.tcp.countForRoute(routeIndex));
      },
    });
    this.proxyRequest = this.proxySeconds.labels('request');
    this.proxyResponse = this.proxySeconds.labels('response');
    // Zero series for the outcomes, so rates and ratios exist before the first call ends.
    for (const o of CALL_OUTCOMES) this.callsProcessed.labels(o).inc(0);
    for (const f of FINALS) this.sessionAttempts.labels(f).inc(0);
    this.sessionsCompleted.inc(0);
  }

  forwarded(e: ForwardedEvent): void {
    const m = methodIndex(e.methodLabel);
    if (e.isRequest) {
      const i = m * 2 + (e.direction === 'downstream' ? 0 : 1);
      let c = this.requestChildren[i];
      if (c === undefined) {
        c = this.requests.labels(METHOD_LABELS[m], DIRECTIONS[i & 1]);
        this.requestChildren[i] = c;
      }
      c.inc();
      this.proxyRequest.observe(e.proxySeconds);
    } else {
      const k = classIndex(e.status);
      const i = m * STATUS_CLASSES.length + k;
      let c = this.responseChildren[i];
      if (c === undefined) {
        c = this.responses.labels(METHOD_LABELS[m], STATUS_CLASSES[k]);
        this.responseChildren[i] = c;
      }
      c.inc();
      this.proxyResponse.observe(e.proxySeconds);
    }
  }

  transactionEnded(tx: TransactionRecord): void {
    if (tx.method === 'ACK') return;
    const method = METHOD_LABELS[methodIndex(tx.methodLabel)];
    const cls =
      tx.outcome === 'timeout' || tx.outcome === 'send-failed' ? 'timeout' : (tx.statusClass ?? 'timeout');
    this.transactions.labels(method, cls).inc();
    if (tx.generatedStatus === 0 && tx.requestOut !== -1) {
      const end = tx.finalResponseIn !== -1 ? tx.finalResponseIn : tx.endedAt;
      this.transactionDuration.labels(method, cls).observe(Math.max(0, end - tx.requestOut) / 1000);
      if (tx.upstreamRttMs >= 0) this.upstreamRtt.labels(method).observe(tx.upstreamRttMs / 1000);
    }
    if (tx.method === 'REGISTER' && tx.requestOut !== -1 && tx.finalResponseIn !== -1) {
      // RFC 6076 §4.1: REGISTER sent → final response; 2xx is a success, anything else a failure.
      this.rrd
        .labels(tx.status < 300 ? 'success' : 'failure')
        .observe((tx.finalResponseIn - tx.requestOut) / 1000);
    }
    if (tx.method === 'BYE' && tx.requestOut !== -1 && tx.finalResponseIn !== -1) {
      // RFC 6076 §4.4: BYE → its final response.
      this.sdd.observe((tx.finalResponseIn - tx.requestOut) / 1000);
    }
    if (tx.isInitialInvite && tx.requestOut !== -1) {
      // RFC 6076 §4.3: INVITE → first non-100 provisional (or the final) response; "failed" when the
      // attempt ended with a failure final response.
      let first = -1;
      for (const mark of tx.marks) {
        if (mark.status > 100) {
          first = mark.at;
          break;
        }
      }
      if (first === -1 && tx.finalResponseIn !== -1) first = tx.finalResponseIn;
      if (first !== -1)
        this.srd
          .labels(tx.status >= 200 && tx.status < 300 ? 'success' : 'failure')
          .observe((first - tx.requestOut) / 1000);
    }
  }

  retransmission(tx: TransactionRecord): void {
    this.retransmissions.labels(METHOD_LABELS[methodIndex(tx.methodLabel)]).inc();
  }

  callOutcome(call: CallRecord): void {
    if (call.outcome === null) return;
    this.callsProcessed.labels(call.outcome).inc();
    this.sessionAttempts.labels(finalOf(call)).inc();
  }

  callEnded(call: CallRecord): void {
    if (call.completed) this.sessionsCompleted.inc();
    // RFC 6076 §4.5: from the 2xx of the INVITE to the BYE.
    if (call.answeredAt !== -1 && call.byeAt !== -1)
      this.sdt.observe(Math.max(0, call.byeAt - call.answeredAt) / 1000);
  }

  rejected(e: RejectedEvent): void {
    const raw = e.reason.startsWith('closed-') ? e.reason.slice(7) : e.reason;
    const reason = REASON_SET.has(raw) ? raw : 'other';
    if (PARSE_REASONS.has(reason)) this.parseErrors.labels(reason).inc();
    if (e.status === 0) this.dropped.labels(reason).inc();
    else {
      const code = String(e.status);
      this.generated.labels(GENERATED_SET.has(code) ? code : 'other').inc();
    }
  }

  limit(e: LimitEvent): void {
    const limit = LIMIT_SET.has(e.limit) ? e.limit : 'other';
    this.limitHits.labels(limit).inc();
    if (e.limit.startsWith('upstream_'))
      this.upstreamErrors.labels(e.limit === 'upstream_resolve' ? 'resolve' : 'send').inc();
  }
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8'));
    return String(pkg.version);
  } catch {
    return 'unknown';
  }
}

const OPENMETRICS = 'application/openmetrics-text';

/**
 * Prometheus metrics (prom-client): each route's series on that route's
 * metrics listener, process-wide series on the admin listener; every series
 * exposed exactly once.
 */
export function startMetricsSink(app: Sipspan): Sink {
  const routes = app.routes.map((r) => new RouteMetrics(app, r.info.index, r.info.name));
  const processRegistry = new Registry();
  processRegistry.setDefaultLabels({ node: app.config.node });
  const P = PROCESS_METRICS;
  const pr = [processRegistry];
  new Gauge({ name: P.buildInfo.name, help: P.buildInfo.help, labelNames: ['version'], registers: pr })
    .labels(version())
    .set(1);
  const statCounter = (spec: { name: string; help: string }, read: () => number) =>
    new Counter({
      name: spec.name,
      help: spec.help,
      registers: pr,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  statCounter(P.spansDropped, () => processStats.spansDropped);
  statCounter(P.spansExported, () => processStats.spansExported);
  statCounter(P.spanExportFailures, () => processStats.spanExportFailures);
  statCounter(P.logLinesDropped, () => processStats.logLinesDropped);
  new Gauge({
    name: P.heapGuard.name,
    help: P.heapGuard.help,
    registers: pr,
    collect() {
      const s = app.heapGuardState;
      this.set(s === 'ok' ? 0 : s === 'soft' ? 1 : 2);
    },
  });
  collectDefaultMetrics({ register: processRegistry });
  // prom-client also exports these as gauges named *_total, which Prometheus naming reserves for
  // counters (promtool check metrics rejects them); the same values remain without the suffix.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    processRegistry.removeSingleMetric(name);
  }

  const onForwarded = (m: unknown) => {
    const e = m as ForwardedEvent;
    routes[e.route.index]?.forwarded(e);
  };
  const onEnd = (m: unknown) => {
    const tx = m as TransactionRecord;
    routes[tx.route.index]?.transactionEnded(tx);
  };
  const onRetransmission = (m: unknown) => {
    const tx = m as TransactionRecord;
    routes[tx.route.index]?.retransmission(tx);
  };
  const onOutcome = (m: unknown) => {
    const c = m as CallRecord;
    routes[c.route.index]?.callOutcome(c);
  };
  const onCallEnd = (m: unknown) => {
    const c = m as CallRecord;
    routes[c.route.index]?.callEnded(c);
  };
  const onRejected = (m: unknown) => {
    const e = m as RejectedEvent;
    routes[e.route.index]?.rejected(e);
  };
  const onLimit = (m: unknown) => {
    const e = m as LimitEvent;
    if (e.route !== null) routes[e.route.index]?.limit(e);
  };
  channels.messageForwarded.subscribe(onForwarded);
  channels.transactionEnd.subscribe(onEnd);
  channels.transactionRetransmission.subscribe(onRetransmission);
  channels.callOutcome.subscribe(onOutcome);
  channels.callEnd.subscribe(onCallEnd);
  channels.messageRejected.subscribe(onRejected);
  channels.limitHit.subscribe(onLimit);

  const serve =
    (registry: Registry) =>
    async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      const wantsOpenMetrics = (req.headers.accept ?? '').includes(OPENMETRICS);
      if (wantsOpenMetrics) {
        // One registry serves both formats: prom-client renders by its current content type.
        const typed = registry as unknown as { setContentType(t: string): void };
        typed.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
        const body = await registry.metrics();
        typed.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
        sendText(res, 200, body, Registry.OPENMETRICS_CONTENT_TYPE);
        return;
      }
      sendText(res, 200, await registry.metrics(), Registry.PROMETHEUS_CONTENT_TYPE);
    };
  app.admin.handle('/metrics', serve(processRegistry));
  app.routes.forEach((r, i) => {
    const listener = app.routeHttp[r.info.index];
    if (listener !== null && listener !== undefined) listener.handle('/metrics', serve(routes[i].registry));
  });

  return {
    name: 'metrics',
    async flush() {},
    async shutdown() {
      channels.messageForwarded.unsubscribe(onForwarded);
      channels.transactionEnd.unsubscribe(onEnd);
      channels.transactionRetransmission.unsubscribe(onRetransmission);
      channels.callOutcome.unsubscribe(onOutcome);
      channels.callEnd.unsubscribe(onCallEnd);
      channels.messageRejected.unsubscribe(onRejected);
      channels.limitHit.unsubscribe(onLimit);
      processRegistry.clear();
      for (const r of routes) r.registry.clear();
    },
  };
}
