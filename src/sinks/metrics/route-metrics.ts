import {
  type OpenMetricsContentType,
  openMetricsContentType,
  Registry,
  type RegistryContentType,
} from 'prom-client';
import {
  type CallRecord,
  type ForwardedEvent,
  type LimitEvent,
  type ObservedTransaction,
  type RejectedEvent,
  type TransactionRecord,
  toEpochMs,
} from '../../observe/records.ts';
import {
  B2BUA_STITCH,
  CALL_OUTCOMES,
  DIRECTIONS,
  FINALS,
  GENERATED_CODES,
  LIMITS,
  METHOD_LABELS,
  PARSE_REASONS,
  PROXY_KINDS,
  REASONS,
  RESULTS,
  ROUTE_METRICS,
  STATUS_CLASSES,
  UPSTREAM_ERROR_KINDS,
} from './catalog.ts';
import {
  CounterFamily,
  GaugeFamily,
  HistogramFamily,
  type MetricFamily,
  ScrapedCounterFamily,
} from './metric-family.ts';

/** What a route's gauges read when scraped. */
export interface RouteGaugeReaders {
  activeCalls(): number;
  pendingTransactions(): number;
  tcpConnections(): number;
  /** Datagrams the kernel dropped at the route's UDP sockets (async: read from /proc). */
  udpReceiveDrops(): Promise<number>;
}

// Positions in the closed sets, resolved once. Lookups take strings the
// publisher already holds (method labels, reason codes): nothing is built per event.
const positions = (values: readonly string[]) => new Map(values.map((v, i) => [v, i]));
const METHOD_POS = positions(METHOD_LABELS);
const OTHER_METHOD = METHOD_LABELS.indexOf('other');
const CLASS_POS = positions(STATUS_CLASSES);
const TIMEOUT_CLASS = STATUS_CLASSES.indexOf('timeout');
const CLASS_COUNT = STATUS_CLASSES.length;
const DOWNSTREAM = DIRECTIONS.indexOf('downstream');
const UPSTREAM = DIRECTIONS.indexOf('upstream');
const DIRECTION_COUNT = DIRECTIONS.length;
const OUTCOME_POS = positions(CALL_OUTCOMES);
const B2BUA_JOINED = B2BUA_STITCH.indexOf('joined');
const B2BUA_AMBIGUOUS = B2BUA_STITCH.indexOf('ambiguous');
/** Finals kept as exact codes ('408', '480', ...), by status number. */
const FINAL_CODE_POS = new Map<number, number>();
FINALS.forEach((f, i) => {
  if (/^\d+$/.test(f)) FINAL_CODE_POS.set(Number(f), i);
});
const FINAL_2XX = FINALS.indexOf('2xx');
const FINAL_3XX = FINALS.indexOf('3xx');
const FINAL_OTHER_4XX = FINALS.indexOf('other_4xx');
const FINAL_OTHER_5XX = FINALS.indexOf('other_5xx');
const FINAL_OTHER_6XX = FINALS.indexOf('other_6xx');
const FINAL_CANCELLED = FINALS.indexOf('cancelled');
const FINAL_TIMEOUT = FINALS.indexOf('timeout');
const SUCCESS = RESULTS.indexOf('success');
const FAILURE = RESULTS.indexOf('failure');
const PROXY_REQUEST = PROXY_KINDS.indexOf('request');
const PROXY_RESPONSE = PROXY_KINDS.indexOf('response');
/** Reasons, and the same prefixed `closed-` (a TCP stream closed after a framing error). */
const REASON_POS = new Map<string, number>();
REASONS.forEach((r, i) => {
  REASON_POS.set(r, i);
  REASON_POS.set(`closed-${r}`, i);
});
const OTHER_REASON = REASONS.indexOf('other');
const IS_PARSE_REASON = REASONS.map((r) => PARSE_REASONS.includes(r));
const GENERATED_POS = new Map<number, number>();
GENERATED_CODES.forEach((c, i) => {
  if (c !== 'other') GENERATED_POS.set(Number(c), i);
});
const OTHER_GENERATED = GENERATED_CODES.indexOf('other');
const LIMIT_POS = positions(LIMITS);
const OTHER_LIMIT = LIMITS.indexOf('other');
const UPSTREAM_KIND_POS = new Map(UPSTREAM_ERROR_KINDS.map((k, i) => [`upstream_${k}`, i]));
const OTHER_UPSTREAM_KIND = UPSTREAM_ERROR_KINDS.indexOf('other');
/** A challenged REGISTER is remembered this long for RRD (RFC 3261 Timer F, 64·T1 with T1 = 500 ms). */
const CHALLENGE_MEMORY_MS = 32_000;
const MAX_CHALLENGES = 4096;

export function methodPosition(label: string): number {
  return METHOD_POS.get(label) ?? OTHER_METHOD;
}

/** 1xx..6xx → 0..5; anything else -1 (the scanner rejects such statuses; never a label). */
export function statusClassPosition(status: number): number {
  return status >= 100 && status <= 699 ? Math.floor(status / 100) - 1 : -1;
}

/** RFC 6076 §4.2, §4.3.2: 401, 402 and 407 are "non-failure challenge response codes". */
function isNonFailureChallenge(status: number): boolean {
  return status === 401 || status === 402 || status === 407;
}

/** RFC 6076 §4.3.2, §4.2: a failure is a 4XX other than a challenge, a 5XX or a 6XX. */
function isFailure(status: number): boolean {
  return status >= 400 && status <= 699 && !isNonFailureChallenge(status);
}

function finalPosition(call: CallRecord): number {
  if (call.outcome === 'timeout') return FINAL_TIMEOUT;
  if (call.outcome === 'cancelled') return FINAL_CANCELLED;
  const s = call.finalStatus;
  const exact = FINAL_CODE_POS.get(s);
  if (exact !== undefined) return exact;
  if (s < 300) return FINAL_2XX;
  if (s < 400) return FINAL_3XX;
  if (s < 500) return FINAL_OTHER_4XX;
  if (s < 600) return FINAL_OTHER_5XX;
  return FINAL_OTHER_6XX;
}

/** performance.now() milliseconds → wall-clock seconds (exemplar timestamps). */
function wallSeconds(at: number): number {
  return toEpochMs(at) / 1000;
}

/**
 * One route's series, in two registries that read the same storage: Prometheus
 * text and OpenMetrics (with exemplars). Each format shows every series once;
 * neither registry ever changes content type, so concurrent scrapes cannot mix.
 */
export class RouteMetrics {
  readonly text = new Registry();
  readonly openMetrics = new Registry<OpenMetricsContentType>();
  readonly requests = new CounterFamily(ROUTE_METRICS.requests);
  readonly responses = new CounterFamily(ROUTE_METRICS.responses);
  readonly transactions = new CounterFamily(ROUTE_METRICS.transactions);
  readonly retransmissions = new CounterFamily(ROUTE_METRICS.retransmissions);
  readonly upstreamRtt = new HistogramFamily(ROUTE_METRICS.upstreamRtt);
  readonly transactionDuration = new HistogramFamily(ROUTE_METRICS.transactionDuration);
  readonly callsProcessed = new CounterFamily(ROUTE_METRICS.callsProcessed);
  readonly b2buaLegs = new CounterFamily(ROUTE_METRICS.b2buaLegs);
  readonly sessionAttempts = new CounterFamily(ROUTE_METRICS.sessionAttempts);
  readonly sessionsCompleted = new CounterFamily(ROUTE_METRICS.sessionsCompleted);
  readonly srd = new HistogramFamily(ROUTE_METRICS.sessionRequestDelay);
  readonly sdd = new HistogramFamily(ROUTE_METRICS.sessionDisconnectDelay);
  readonly sdt = new HistogramFamily(ROUTE_METRICS.sessionDuration);
  readonly rrd = new HistogramFamily(ROUTE_METRICS.registrationRequestDelay);
  readonly dropped = new CounterFamily(ROUTE_METRICS.dropped);
  readonly parseErrors = new CounterFamily(ROUTE_METRICS.parseErrors);
  readonly generated = new CounterFamily(ROUTE_METRICS.generated);
  readonly upstreamErrors = new CounterFamily(ROUTE_METRICS.upstreamErrors);
  readonly proxySeconds = new HistogramFamily(ROUTE_METRICS.proxySeconds);
  readonly limitHits = new CounterFamily(ROUTE_METRICS.limitHits);
  /** Request retransmissions already counted per transaction (the channel also carries response ones). */
  private readonly countedRetransmissions = new WeakMap<ObservedTransaction, number>();
  /** Call-ID → when its challenged REGISTER was sent (RFC 6076 §4.1 measures from the first REGISTER). */
  private readonly challenged = new Map<string, number>();

  constructor(service: string, node: string, gauges: RouteGaugeReaders) {
    const families: MetricFamily[] = [
      this.requests,
      this.responses,
      this.transactions,
      this.retransmissions,
      this.upstreamRtt,
      this.transactionDuration,
      this.callsProcessed,
      this.b2buaLegs,
      this.sessionAttempts,
      this.sessionsCompleted,
      this.srd,
      this.sdd,
      this.sdt,
      this.rrd,
      new GaugeFamily(ROUTE_METRICS.activeCalls, gauges.activeCalls),
      new GaugeFamily(ROUTE_METRICS.pendingTransactions, gauges.pendingTransactions),
      this.dropped,
      this.parseErrors,
      this.generated,
      this.upstreamErrors,
      this.proxySeconds,
      new GaugeFamily(ROUTE_METRICS.tcpConnections, gauges.tcpConnections),
      this.limitHits,
      new ScrapedCounterFamily(ROUTE_METRICS.udpReceiveDrops, gauges.udpReceiveDrops),
    ];
    // Set once and never switched back (prom-client's documented way to an OpenMetrics registry).
    this.openMetrics.setContentType(openMetricsContentType);
    for (const registry of [this.text, this.openMetrics] as Registry<RegistryContentType>[]) {
      registry.setDefaultLabels({ service, node });
      for (const f of families) f.registerIn(registry, registry === this.openMetrics);
    }
  }

  /**
   * Every message sent on: the hot path. Series indexes are mixed-radix in the
   * catalog's label order (method first, see MetricFamily): a multiply and an add.
   */
  forwarded(e: ForwardedEvent): void {
    const m = methodPosition(e.methodLabel);
    if (e.isRequest) {
      this.requests.inc(m * DIRECTION_COUNT + (e.direction === 'upstream' ? UPSTREAM : DOWNSTREAM));
      this.proxySeconds.observe(PROXY_REQUEST, e.proxySeconds);
      return;
    }
    const k = statusClassPosition(e.status);
    if (k >= 0) this.responses.inc(m * CLASS_COUNT + k);
    this.proxySeconds.observe(PROXY_RESPONSE, e.proxySeconds);
  }

  transactionEnded(tx: TransactionRecord): void {
    // RFC 3261 §17.1.1.3: an ACK for a 2xx is its own transaction without a response; it only ends.
    if (tx.outcome === 'forwarded' || tx.method === 'ACK') return;
    const k = tx.statusClass === null ? -1 : CLASS_POS.get(tx.statusClass)!;
    if (k < 0) return;
    const m = methodPosition(tx.methodLabel);
    const series = m * CLASS_COUNT + k;
    this.transactions.inc(series);
    if (tx.stitchedBy !== null) this.b2buaLegs.inc(B2BUA_JOINED);
    else if (tx.stitchAmbiguous) this.b2buaLegs.inc(B2BUA_AMBIGUOUS);
    // Answers sipspan generated never went upstream: no duration, no RTT, no RFC 6076 delay.
    if (tx.generatedStatus !== 0 || tx.requestOut === -1) return;
    const exemplar = tx.sampled && tx.traceId !== '';
    const end = tx.finalResponseIn !== -1 ? tx.finalResponseIn : tx.endedAt;
    if (end !== -1) {
      const seconds = (end - tx.requestOut) / 1000;
      if (exemplar)
        this.transactionDuration.observeWithExemplar(series, seconds, tx.traceId, wallSeconds(end));
      else this.transactionDuration.observe(series, seconds);
    }
    // The service's answer time only: a request the service sent toward a caller (its BYE) is answered
    // by the caller, whose slowness must not raise the service's RTT alert.
    const rttMs = tx.direction === 'downstream' ? tx.upstreamRttMs : -1;
    if (rttMs >= 0) {
      if (exemplar)
        this.upstreamRtt.observeWithExemplar(m, rttMs / 1000, tx.traceId, wallSeconds(tx.firstResponseIn));
      else this.upstreamRtt.observe(m, rttMs / 1000);
    }
    if (tx.isInitialInvite) this.sessionRequestDelay(tx);
    else if (tx.method === 'BYE') this.sessionDisconnectDelay(tx);
    else if (tx.method === 'REGISTER') this.registrationRequestDelay(tx, k === TIMEOUT_CLASS);
  }

  /**
   * RFC 6076 §4.3 SRD = time of status indicative response − time of INVITE.
   * §4.3.1 success: to the first non-100 provisional, or the 2xx when none came.
   * §4.3.2 failure: to the first provisional or the failure response (4XX but
   * 401/402/407, 5XX, 6XX). Success and failure "MUST NOT be combined": the
   * `result` label. 100 Trying is hop-by-hop (RFC 3261 §16.7) and says nothing
   * of the called side, so it is skipped in both. No sample for a 3xx, a
   * challenge (the retried INVITE is measured on its own), an attempt the
   * caller cancelled (487 after CANCEL: the service gave no answer of its own)
   * or a timeout (no response to measure to).
   */
  private sessionRequestDelay(tx: TransactionRecord): void {
    if (tx.finalResponseIn === -1) return;
    const status = tx.status;
    let result: number;
    if (status >= 200 && status < 300) result = SUCCESS;
    else if (isFailure(status) && !(status === 487 && tx.cancelledAt !== -1)) result = FAILURE;
    else return;
    let at = tx.finalResponseIn;
    const marks = tx.marks;
    for (let i = 0; i < marks.length; i++) {
      // Marks of status -1 are CANCELs, not responses.
      if (marks[i].status > 100) {
        at = marks[i].at;
        break;
      }
    }
    this.srd.observe(result, (at - tx.requestOut) / 1000);
  }

  /**
   * RFC 6076 §4.4 SDD = time of 2XX or timeout − time of BYE, successful and
   * failed disconnects never combined. This series holds the successful ones;
   * failed BYEs show as sip_transactions_total{method="BYE",status_class!="2xx"}.
   */
  private sessionDisconnectDelay(tx: TransactionRecord): void {
    if (tx.finalResponseIn === -1 || tx.status < 200 || tx.status >= 300) return;
    this.sdd.observe(0, (tx.finalResponseIn - tx.requestOut) / 1000);
  }

  /**
   * RFC 6076 §4.1 RRD = time of final response − time of REGISTER, from the
   * first REGISTER: "this dialog includes an expected authentication challenge
   * prior to receiving the 200 OK". A 401/407 is remembered by Call-ID (RFC
   * 3261 §10.2: the retried REGISTER keeps it) and the 2xx measured from it.
   * RRD proper is success only; `result="failure"` holds the §4.2 ineffective
   * attempts (4XX but challenges, 5XX, 6XX, timeout) so IRA is their share.
   */
  private registrationRequestDelay(tx: TransactionRecord, timedOut: boolean): void {
    const status = tx.status;
    const remembered = this.challenged.get(tx.callId);
    let start = tx.requestOut;
    if (remembered !== undefined) {
      this.challenged.delete(tx.callId);
      if (tx.requestOut - remembered <= CHALLENGE_MEMORY_MS) start = remembered;
    }
    if (!timedOut && isNonFailureChallenge(status)) {
      if (this.challenged.size >= MAX_CHALLENGES) {
        const oldest = this.challenged.keys().next().value;
        if (oldest !== undefined) this.challenged.delete(oldest);
      }
      this.challenged.set(tx.callId, start);
      return;
    }
    if (timedOut) this.rrd.observe(FAILURE, (tx.endedAt - start) / 1000);
    else if (status >= 200 && status < 300) this.rrd.observe(SUCCESS, (tx.finalResponseIn - start) / 1000);
    else if (isFailure(status)) this.rrd.observe(FAILURE, (tx.finalResponseIn - start) / 1000);
  }

  /** The channel carries request and final-response retransmissions; the contract counts requests. */
  retransmission(tx: ObservedTransaction): void {
    const counted = this.countedRetransmissions.get(tx) ?? 0;
    if (tx.retransmissions <= counted) return;
    this.countedRetransmissions.set(tx, tx.retransmissions);
    this.retransmissions.inc(methodPosition(tx.methodLabel));
  }

  callOutcome(call: CallRecord): void {
    if (call.outcome === null) return;
    this.callsProcessed.inc(OUTCOME_POS.get(call.outcome)!);
    this.sessionAttempts.inc(finalPosition(call));
  }

  callEnded(call: CallRecord): void {
    // RFC 6076 §4.9: a completed session, established and ended by a BYE answered 2xx.
    if (call.completed) this.sessionsCompleted.inc(0);
    // RFC 6076 §4.5 SDT: from the 2xx to the INVITE to the BYE.
    if (call.answeredAt !== -1 && call.byeAt !== -1)
      this.sdt.observe(0, (call.byeAt - call.answeredAt) / 1000);
  }

  rejected(e: RejectedEvent): void {
    const r = REASON_POS.get(e.reason) ?? OTHER_REASON;
    if (IS_PARSE_REASON[r]) this.parseErrors.inc(r);
    if (e.status === 0) this.dropped.inc(r);
    else this.generated.inc(GENERATED_POS.get(e.status) ?? OTHER_GENERATED);
  }

  limit(e: LimitEvent): void {
    this.limitHits.inc(LIMIT_POS.get(e.limit) ?? OTHER_LIMIT);
    if (e.limit.startsWith('upstream_'))
      this.upstreamErrors.inc(UPSTREAM_KIND_POS.get(e.limit) ?? OTHER_UPSTREAM_KIND);
  }
}
