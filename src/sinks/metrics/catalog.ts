import { KNOWN_METHODS } from '../../wire/methods.ts';
import { ScanCode } from '../../wire/scan-codes.ts';

/**
 * Every metric sipspan exports, in one table (docs/telemetry-contract.md).
 * Route series carry `service` and `node` as default labels of the route's
 * registry; process series carry `node`.
 */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 32,
];
export const PROXY_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.2,
];
export const DURATION_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export const METHOD_LABELS: readonly string[] = [...KNOWN_METHODS, 'other'];
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
/** RFC 6076 §4.4–4.8 need these final answers of session attempts apart. */
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
export const GENERATED_CODES = ['400', '416', '420', '482', '483', '501', '503', '505', '513'] as const;
/** Scan codes: a drop or answer for one of these is a parse error. */
export const PARSE_REASONS: ReadonlySet<string> = new Set(
  Object.values(ScanCode).filter((c) => c !== ScanCode.OK && c !== ScanCode.EMPTY),
);
/** Closed set of drop and parse-error reasons (anything else is `other`): the scan codes and the proxy's own. */
export const REASONS: readonly string[] = [
  'empty',
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
  'max_transactions',
  'max_calls',
  'heap_hard_limit',
  'upstream_resolve',
  'upstream_send',
  'other',
] as const;

export interface MetricSpec {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  labels: readonly string[];
  buckets?: readonly number[];
}

export const ROUTE_METRICS = {
  requests: {
    name: 'sip_requests_total',
    help: 'SIP requests received at this hop.',
    type: 'counter',
    labels: ['method', 'direction'],
  },
  responses: {
    name: 'sip_responses_total',
    help: 'SIP responses forwarded at this hop.',
    type: 'counter',
    labels: ['method', 'status_class'],
  },
  transactions: {
    name: 'sip_transactions_total',
    help: 'Transactions completed at this hop (final response or timeout).',
    type: 'counter',
    labels: ['method', 'status_class'],
  },
  retransmissions: {
    name: 'sip_retransmissions_total',
    help: 'Request and final-response retransmissions seen.',
    type: 'counter',
    labels: ['method'],
  },
  upstreamRtt: {
    name: 'sip_upstream_rtt_seconds',
    help: 'Request forwarded upstream to the first response from upstream.',
    type: 'histogram',
    labels: ['method'],
    buckets: LATENCY_BUCKETS,
  },
  transactionDuration: {
    name: 'sip_transaction_duration_seconds',
    help: 'Request forwarded to final response (or timeout).',
    type: 'histogram',
    labels: ['method', 'status_class'],
    buckets: LATENCY_BUCKETS,
  },
  callsProcessed: {
    name: 'sip_calls_processed_total',
    help: 'Initial INVITEs that reached an outcome.',
    type: 'counter',
    labels: ['outcome'],
  },
  sessionAttempts: {
    name: 'sip_session_attempts_total',
    help: 'Initial INVITEs by final answer (RFC 6076 §4.6-4.10 numerators and denominators).',
    type: 'counter',
    labels: ['final'],
  },
  sessionsCompleted: {
    name: 'sip_sessions_completed_total',
    help: 'Established sessions ended by a BYE answered 2xx (RFC 6076 §4.9).',
    type: 'counter',
    labels: [],
  },
  sessionRequestDelay: {
    name: 'sip_session_request_delay_seconds',
    help: 'RFC 6076 §4.3 Session Request Delay: INVITE to the first non-100 provisional or final response.',
    type: 'histogram',
    labels: ['result'],
    buckets: LATENCY_BUCKETS,
  },
  sessionDisconnectDelay: {
    name: 'sip_session_disconnect_delay_seconds',
    help: 'RFC 6076 §4.4 Session Disconnect Delay: BYE to its final response.',
    type: 'histogram',
    labels: [],
    buckets: LATENCY_BUCKETS,
  },
  sessionDuration: {
    name: 'sip_session_duration_seconds',
    help: 'RFC 6076 §4.5 Session Duration Time: 2xx to the INVITE until the BYE.',
    type: 'histogram',
    labels: [],
    buckets: DURATION_BUCKETS,
  },
  registrationRequestDelay: {
    name: 'sip_registration_request_delay_seconds',
    help: 'RFC 6076 §4.1 Registration Request Delay: REGISTER to its final response.',
    type: 'histogram',
    labels: ['result'],
    buckets: LATENCY_BUCKETS,
  },
  activeCalls: {
    name: 'sip_active_calls',
    help: 'Calls in trying, early or confirmed state.',
    type: 'gauge',
    labels: [],
  },
  pendingTransactions: {
    name: 'sip_pending_transactions',
    help: 'Transactions without a final response.',
    type: 'gauge',
    labels: [],
  },
  dropped: {
    name: 'sipspan_messages_dropped_total',
    help: 'Messages sipspan discarded.',
    type: 'counter',
    labels: ['reason'],
  },
  parseErrors: {
    name: 'sipspan_parse_errors_total',
    help: 'Messages that failed framing or scanning.',
    type: 'counter',
    labels: ['reason'],
  },
  generated: {
    name: 'sipspan_generated_responses_total',
    help: 'Responses sipspan answered itself.',
    type: 'counter',
    labels: ['code'],
  },
  upstreamErrors: {
    name: 'sipspan_upstream_errors_total',
    help: 'Failures sending toward the service.',
    type: 'counter',
    labels: ['kind'],
  },
  proxySeconds: {
    name: 'sipspan_proxy_seconds',
    help: 'Time a message spends inside sipspan, received to sent.',
    type: 'histogram',
    labels: ['kind'],
    buckets: PROXY_BUCKETS,
  },
  tcpConnections: {
    name: 'sipspan_tcp_connections',
    help: 'Open TCP connections of the route.',
    type: 'gauge',
    labels: [],
  },
  limitHits: {
    name: 'sipspan_limit_hits_total',
    help: 'A configured limit was reached.',
    type: 'counter',
    labels: ['limit'],
  },
} as const satisfies Record<string, MetricSpec>;

export const PROCESS_METRICS = {
  buildInfo: {
    name: 'sipspan_build_info',
    help: 'sipspan version (value 1).',
    type: 'gauge',
    labels: ['version'],
  },
  spansDropped: {
    name: 'sipspan_spans_dropped_total',
    help: 'Spans dropped because the export queue was full.',
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
} as const satisfies Record<string, MetricSpec>;
