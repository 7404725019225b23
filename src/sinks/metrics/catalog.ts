import { KNOWN_METHODS } from '../../wire/methods.ts';
import { ScanCode } from '../../wire/scan-codes.ts';

/**
 * Every metric sipspan exports, in one table (docs/telemetry-contract.md is the
 * public description; test/sinks/metrics/catalog.test.ts holds the two equal).
 *
 * Route series live in one registry per route, served on that route's metrics
 * listener, with `service` (route name) and `node` as default labels. Every
 * other label takes its values from a closed set declared here, so the worst
 * case number of series of a route is fixed at build time (see maxSeries()).
 * Process series live in the admin listener's registry with `node`.
 */

// ─────────────────────────────── closed label sets ───────────────────────────────

export const METHOD_LABELS = [...KNOWN_METHODS, 'other'] as const;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', '6xx', 'timeout'] as const;
export const DIRECTIONS = ['downstream', 'upstream'] as const;
export const CALL_OUTCOMES = [
  'answered',
  'redirected',
  'failed_4xx',
  'failed_5xx',
  'failed_6xx',
  'cancelled',
  'timeout',
] as const;
/**
 * Final answers of session attempts, kept apart where RFC 6076 needs them:
 * §4.6 SER (2xx, 3xx), §4.7 SEER (480, 486, 600, 603), §4.8 ISA (408, 500, 503,
 * 504, timeout); everything else folds into its class.
 */
export const FINALS = [
  '2xx',
  '3xx',
  '408',
  '480',
  '486',
  '500',
  '503',
  '504',
  '600',
  '603',
  'other_4xx',
  'other_5xx',
  'other_6xx',
  'cancelled',
  'timeout',
] as const;
export const RESULTS = ['success', 'failure'] as const;
export const PROXY_KINDS = ['request', 'response'] as const;
/** Statuses sipspan answers with itself (proxy/outcomes.ts REASON_PHRASES); anything else is `other`. */
export const GENERATED_CODES = [
  '400',
  '416',
  '420',
  '482',
  '483',
  '501',
  '503',
  '505',
  '513',
  'other',
] as const;
/** Framing and scan failures: a drop or answer with one of these reasons is also a parse error. */
export const PARSE_REASONS: readonly string[] = Object.values(ScanCode).filter(
  (c) => c !== ScanCode.OK && c !== ScanCode.EMPTY,
);
/**
 * Drop and parse-error reasons: the scan codes and the proxy's own
 * (proxy/read-request.ts, proxy/proxy-engine.ts). A reason outside this list is
 * counted as `other`, so a new code path cannot add series unnoticed.
 */
export const REASONS: readonly string[] = [
  'empty',
  'keepalive',
  ...PARSE_REASONS,
  'missing-call-id',
  'missing-cseq',
  'missing-from',
  'missing-to',
  'missing-via',
  'duplicate-field',
  'bad-via',
  'bad-cseq',
  'cseq-method-mismatch',
  'bad-max-forwards',
  'bad-from',
  'bad-to',
  'unsupported-proxy-require',
  'too-many-hops',
  'loop-detected',
  'overloaded',
  'bad-route',
  'not-our-via',
  'no-next-via',
  'unsupported-transport',
  'broadcast-via',
  'send-failed',
  'queue-full',
  'resolve-failed',
  'internal-error',
  'other',
];
export const LIMITS = [
  'max_message_bytes',
  'tcp_max_connections',
  'tcp_max_connections_per_ip',
  'tcp_first_byte',
  'tcp_read_message',
  'tcp_idle',
  'tcp_write_queue',
  'tcp_write_queue_total',
  'tcp_write_stall',
  'max_transactions',
  'max_calls',
  'max_pending_lookups',
  'heap_hard_limit',
  'upstream_resolve',
  'upstream_send',
  'upstream_connect',
  'upstream_reset',
  'upstream_unreachable',
  'other',
] as const;
/** What became of an initial INVITE that could be a B2BUA's second leg (routes[].b2bua_correlation). */
export const B2BUA_STITCH = ['joined', 'ambiguous'] as const;
/** `upstream_<kind>` limit events; `send` is a send refused locally (no connection, queue full). */
export const UPSTREAM_ERROR_KINDS = ['unreachable', 'connect', 'reset', 'resolve', 'send', 'other'] as const;

// ─────────────────────────────────── buckets ───────────────────────────────────

/** Seconds. 0.2 is a bound so an "RTT > 200 ms" alert reads an exact bucket; 32 s is Timer B/F (64·T1). */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 32,
] as const;
/** Seconds. Finer between 50 and 250 µs, where a hop's median sits (kernel-stamped, on a LAN or loopback). */
export const PROXY_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.000075, 0.0001, 0.00015, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.2,
] as const;
export const DURATION_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const;

// ─────────────────────────────────── tables ───────────────────────────────────

export interface MetricSpec {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  /** Label name → its closed set of values, in exposition order. */
  readonly labels: Readonly<Record<string, readonly string[]>>;
  readonly buckets?: readonly number[];
  /** OpenMetrics exemplars `{trace_id="…"}` on bucket lines (sampled traces only). */
  readonly exemplars?: boolean;
  /** Every series exists at 0 from the start: ratio terms and rate() need both sides before the first event. */
  readonly zeroed?: boolean;
}

/** The series of each route (route `metrics` listener), keyed by the name the sink uses. */
export const ROUTE_METRICS = {
  requests: {
    name: 'sip_requests_total',
    help: 'SIP requests received at this hop and sent on.',
    type: 'counter',
    labels: { method: METHOD_LABELS, direction: DIRECTIONS },
  },
  responses: {
    name: 'sip_responses_total',
    help: 'SIP responses forwarded at this hop.',
    type: 'counter',
    labels: { method: METHOD_LABELS, status_class: STATUS_CLASSES },
  },
  transactions: {
    name: 'sip_transactions_total',
    help: 'Transactions completed at this hop (final response or timeout), answers sipspan generated included.',
    type: 'counter',
    labels: { method: METHOD_LABELS, status_class: STATUS_CLASSES },
  },
  retransmissions: {
    name: 'sip_retransmissions_total',
    help: 'Request retransmissions seen.',
    type: 'counter',
    labels: { method: METHOD_LABELS },
  },
  upstreamRtt: {
    name: 'sip_upstream_rtt_seconds',
    help: 'Request forwarded upstream to the first response from upstream.',
    type: 'histogram',
    labels: { method: METHOD_LABELS },
    buckets: LATENCY_BUCKETS,
    exemplars: true,
  },
  transactionDuration: {
    name: 'sip_transaction_duration_seconds',
    help: 'Request forwarded to its final response, or to the timeout (status_class="timeout").',
    type: 'histogram',
    labels: { method: METHOD_LABELS, status_class: STATUS_CLASSES },
    buckets: LATENCY_BUCKETS,
    exemplars: true,
  },
  callsProcessed: {
    name: 'sip_calls_processed_total',
    help: 'Initial INVITEs that reached an outcome.',
    type: 'counter',
    labels: { outcome: CALL_OUTCOMES },
    zeroed: true,
  },
  b2buaLegs: {
    name: 'sipspan_b2bua_legs_total',
    help: 'Initial INVITEs joined to the trace of a call on another route, or left in a trace of their own because they matched unanswered INVITEs of more than one call (ambiguous).',
    type: 'counter',
    labels: { stitch: B2BUA_STITCH },
    zeroed: true,
  },
  sessionAttempts: {
    name: 'sip_session_attempts_total',
    help: 'Initial INVITEs by final answer (RFC 6076 §4.6-4.10 numerators and denominators).',
    type: 'counter',
    labels: { final: FINALS },
    zeroed: true,
  },
  sessionsCompleted: {
    name: 'sip_sessions_completed_total',
    help: 'Established sessions ended by a BYE answered 2xx (RFC 6076 §4.9 SCR numerator).',
    type: 'counter',
    labels: {},
  },
  sessionRequestDelay: {
    name: 'sip_session_request_delay_seconds',
    help: 'RFC 6076 §4.3 SRD: INVITE to the first non-100 provisional or final response; result by the final answer.',
    type: 'histogram',
    labels: { result: RESULTS },
    buckets: LATENCY_BUCKETS,
  },
  sessionDisconnectDelay: {
    name: 'sip_session_disconnect_delay_seconds',
    help: 'RFC 6076 §4.4 SDD of successful disconnects: BYE to its 2xx.',
    type: 'histogram',
    labels: {},
    buckets: LATENCY_BUCKETS,
  },
  sessionDuration: {
    name: 'sip_session_duration_seconds',
    help: 'RFC 6076 §4.5 SDT: 2xx to the INVITE until the BYE.',
    type: 'histogram',
    labels: {},
    buckets: DURATION_BUCKETS,
  },
  registrationRequestDelay: {
    name: 'sip_registration_request_delay_seconds',
    help: 'RFC 6076 §4.1 RRD: first REGISTER (an auth challenge included) to its final response; result by that answer.',
    type: 'histogram',
    labels: { result: RESULTS },
    buckets: LATENCY_BUCKETS,
  },
  activeCalls: {
    name: 'sip_active_calls',
    help: 'Calls in trying, early or confirmed state.',
    type: 'gauge',
    labels: {},
  },
  pendingTransactions: {
    name: 'sip_pending_transactions',
    help: 'Transactions without a final response.',
    type: 'gauge',
    labels: {},
  },
  dropped: {
    name: 'sipspan_messages_dropped_total',
    help: 'Messages sipspan discarded.',
    type: 'counter',
    labels: { reason: REASONS },
  },
  parseErrors: {
    name: 'sipspan_parse_errors_total',
    help: 'Messages that failed framing or scanning.',
    type: 'counter',
    labels: { reason: REASONS },
  },
  generated: {
    name: 'sipspan_generated_responses_total',
    help: 'Responses sipspan answered itself.',
    type: 'counter',
    labels: { code: GENERATED_CODES },
  },
  upstreamErrors: {
    name: 'sipspan_upstream_errors_total',
    help: 'Failures sending toward the service.',
    type: 'counter',
    labels: { kind: UPSTREAM_ERROR_KINDS },
  },
  proxySeconds: {
    name: 'sipspan_proxy_seconds',
    help: 'Time a message spends inside sipspan, received to sent.',
    type: 'histogram',
    labels: { kind: PROXY_KINDS },
    buckets: PROXY_BUCKETS,
  },
  tcpConnections: {
    name: 'sipspan_tcp_connections',
    help: 'Open TCP connections of the route.',
    type: 'gauge',
    labels: {},
  },
  limitHits: {
    name: 'sipspan_limit_hits_total',
    help: 'A configured limit was reached.',
    type: 'counter',
    labels: { limit: LIMITS },
  },
  udpReceiveDrops: {
    name: 'sipspan_udp_receive_drops_total',
    help: 'Datagrams the kernel dropped at the route UDP sockets of this process (receive buffer full), read from /proc when scraped.',
    type: 'counter',
    labels: {},
  },
} as const satisfies Record<string, MetricSpec>;

export interface ProcessMetricSpec {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  /** Label names; their values are fixed at start (the package version). */
  readonly labels: readonly string[];
}

/**
 * Process series (admin listener), besides prom-client's default process and
 * Node.js runtime metrics. The counters read processStats at scrape time.
 */
export const PROCESS_METRICS = {
  buildInfo: {
    name: 'sipspan_build_info',
    help: 'sipspan version, and the clock UDP messages are timed with: kernel or event_loop (value 1).',
    type: 'gauge',
    labels: ['version', 'receive_clock'],
  },
  spansDropped: {
    name: 'sipspan_spans_dropped_total',
    help: 'Spans dropped: export queue full, export failed or timed out, left at shutdown, or not encodable.',
    type: 'counter',
    labels: [],
  },
  spansExported: {
    name: 'sipspan_spans_exported_total',
    help: 'Spans exported.',
    type: 'counter',
    labels: [],
  },
  spanExportFailures: {
    name: 'sipspan_span_export_failures_total',
    help: 'Span export batches that failed.',
    type: 'counter',
    labels: [],
  },
  logLinesDropped: {
    name: 'sipspan_log_lines_dropped_total',
    help: 'Log lines dropped because the writer queue was full.',
    type: 'counter',
    labels: [],
  },
  heapGuard: {
    name: 'sipspan_heap_guard_state',
    help: 'Heap guard: 0 ok, 1 no new observation state, 2 shedding.',
    type: 'gauge',
    labels: [],
  },
  heapLive: {
    name: 'sipspan_heap_live_bytes',
    help: 'The V8 heap the heap guard judges: in use after the last full collection, or now when less.',
    type: 'gauge',
    labels: [],
  },
  heapLimit: {
    name: 'sipspan_heap_limit_bytes',
    help: "The heap guard's soft and hard limits, and V8's own heap limit.",
    type: 'gauge',
    labels: ['limit'],
  },
} as const satisfies Record<string, ProcessMetricSpec>;

/**
 * prom-client default metrics left out: gauges named `*_total`, a suffix
 * Prometheus reserves for counters (promtool check metrics flags them). Their
 * values stay available as sum() of nodejs_active_handles / _requests / _resources.
 */
export const DROPPED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

/** Lines a metric can expose per route at most (histograms: one per bucket, +Inf, _sum, _count). */
export function maxSeries(spec: MetricSpec): number {
  let combinations = 1;
  for (const values of Object.values(spec.labels)) combinations *= values.length;
  return spec.type === 'histogram' ? combinations * ((spec.buckets?.length ?? 0) + 3) : combinations;
}
