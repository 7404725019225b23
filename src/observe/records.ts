import type { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { TransportName } from '../transport/flow.ts';
import { type MethodLabel, methodLabel } from '../wire/methods.ts';

/**
 * A record's time (performance.now() milliseconds, the one monotonic clock every record uses) on
 * the wall clock: unix epoch milliseconds, as spans, log lines and exemplars give it.
 */
export function toEpochMs(ms: number): number {
  return performance.timeOrigin + ms;
}

export type Direction = 'downstream' | 'upstream';
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | '6xx' | 'timeout';
export type CallOutcome =
  | 'answered'
  | 'redirected'
  | 'failed_4xx'
  | 'failed_5xx'
  | 'failed_6xx'
  | 'cancelled'
  | 'timeout';
export type CallState =
  | 'trying'
  | 'early'
  | 'confirmed'
  | 'terminated'
  | 'failed'
  | 'cancelled'
  /** The initial INVITE was answered 401/407: the caller retries it with credentials in the same call. */
  | 'challenged';
/** How a transaction ended at this hop. */
export type TransactionOutcome = 'completed' | 'timeout' | 'forwarded' | 'rejected' | 'send-failed';
/** How the trace context of a request was chosen. */
export type TraceOrigin = 'inbound' | 'call' | 'stitched' | 'new';

/** The identity of a route as sinks see it. */
export interface RouteInfo {
  index: number;
  name: string;
}

export interface ResponseMark {
  status: number;
  /** performance.now() when it came from upstream. */
  at: number;
}

const NO_MARKS: readonly ResponseMark[] = Object.freeze([]);
const MAX_MARKS = 16;

/**
 * One request and its responses at one hop (RFC 3261 §17), keyed by the branch
 * sipspan put in its Via. Owned by the transaction table; sinks read it.
 * Times are performance.now() milliseconds (one monotonic clock; toEpochMs
 * gives wall time).
 */
export class TransactionRecord {
  readonly key: string;
  readonly route: RouteInfo;
  readonly method: string;
  readonly methodLabel: MethodLabel;
  readonly callId: string;
  readonly cseq: number;
  readonly branch: string;
  readonly direction: Direction;
  readonly transport: TransportName;
  /** Who sent the request to sipspan (address:port). */
  readonly downstream: string;
  /** Where sipspan sent it (address:port), set when sent. */
  upstream = '';
  upstreamTransport: TransportName = 'udp';
  fromTag: string | null;
  toTag: string | null;
  /** True for an INVITE without To tag: it starts a call. */
  readonly isInitialInvite: boolean;
  call: CallRecord | null = null;
  /** The B2BUA correlation keys an initial INVITE was remembered under (null when it was not). */
  legKeys: readonly string[] | null = null;

  // Trace context
  traceId = '';
  serverSpanId = '';
  clientSpanId = '';
  /** The inbound parent span id when the context was continued or stitched; null for a root. */
  parentSpanId: string | null = null;
  sampled = true;
  traceState: string | null = null;
  traceOrigin: TraceOrigin = 'new';
  /** An inbound context that was not trusted or not valid, kept as a span link. */
  linkTraceId: string | null = null;
  linkSpanId: string | null = null;
  /** How a B2BUA leg was stitched (`session-id`, `x-cid`, `sdp-origin`, `users`), or null. */
  stitchedBy: string | null = null;
  /** A B2BUA leg left in a trace of its own: it matched unanswered legs of more than one call. */
  stitchAmbiguous = false;

  // Times (performance.now() ms); -1 when not reached.
  readonly requestIn: number;
  requestOut = -1;
  firstResponseIn = -1;
  finalResponseIn = -1;
  finalResponseOut = -1;
  endedAt = -1;
  /**
   * Provisional responses and CANCEL as they happened (bounded). Most non-INVITE transactions
   * never get one, so until the first they share one empty list.
   */
  marks: readonly ResponseMark[] = NO_MARKS;
  cancelledAt = -1;

  status = 0;
  statusClass: StatusClass | null = null;
  outcome: TransactionOutcome | null = null;
  /** A status sipspan generated itself (then status equals it), or 0. */
  generatedStatus = 0;
  retransmissions = 0;
  responseRetransmissions = 0;
  /** performance.now() after which the table forgets it. */
  expiresAt: number;
  /** Time spent inside sipspan for the request (receive → send), ms. */
  requestProxyMs = 0;
  /** Time spent inside sipspan for the final response (receive → send), ms. */
  responseProxyMs = 0;

  constructor(
    key: string,
    route: RouteInfo,
    method: string,
    methodLabel: MethodLabel,
    callId: string,
    cseq: number,
    branch: string,
    direction: Direction,
    transport: TransportName,
    downstream: string,
    fromTag: string | null,
    toTag: string | null,
    requestIn: number,
    expiresAt: number,
  ) {
    this.key = key;
    this.route = route;
    this.method = method;
    this.methodLabel = methodLabel;
    this.callId = callId;
    this.cseq = cseq;
    this.branch = branch;
    this.direction = direction;
    this.transport = transport;
    this.downstream = downstream;
    this.fromTag = fromTag;
    this.toTag = toTag;
    this.isInitialInvite = method === 'INVITE' && toTag === null;
    this.requestIn = requestIn;
    this.expiresAt = expiresAt;
  }

  /** Note a provisional response (status) or a CANCEL (-1); past MAX_MARKS the rest are not kept. */
  addMark(status: number, at: number): void {
    if (this.marks === NO_MARKS) this.marks = [{ status, at }];
    else if (this.marks.length < MAX_MARKS) (this.marks as ResponseMark[]).push({ status, at });
  }

  get isFinal(): boolean {
    return this.finalResponseIn !== -1 || this.outcome !== null;
  }

  /** Request forwarded → first response from upstream, ms; -1 if none. */
  get upstreamRttMs(): number {
    return this.firstResponseIn === -1 || this.requestOut === -1
      ? -1
      : this.firstResponseIn - this.requestOut;
  }
}

/**
 * A transaction after it ended, as a lookup finds it during its linger (T4, 5 s): enough to recognise a
 * retransmission or a late response and keep it in the call's trace, nothing else. The full record
 * has been reported (`sipspan:transaction:end`) and let go; the table (EndedTransactions) keeps these
 * fields in typed columns and builds this object only when a message finds the entry.
 */
export class EndedTransaction {
  readonly route: RouteInfo;
  readonly method: string;
  readonly methodLabel: MethodLabel;
  readonly traceId: string;
  readonly serverSpanId: string;
  readonly clientSpanId: string;
  readonly sampled: boolean;
  readonly traceState: string | null;
  readonly outcome: TransactionOutcome;
  /** A final response came from upstream (false: timeout, send failure, answered by sipspan). */
  readonly hadFinalResponse: boolean;
  /** Counted after the end (the record reported those before it). */
  retransmissions = 0;
  responseRetransmissions = 0;

  constructor(
    route: RouteInfo,
    method: string,
    traceId: string,
    serverSpanId: string,
    clientSpanId: string,
    sampled: boolean,
    traceState: string | null,
    outcome: TransactionOutcome,
    hadFinalResponse: boolean,
  ) {
    this.route = route;
    this.method = method;
    this.methodLabel = methodLabel(method);
    this.traceId = traceId;
    this.serverSpanId = serverSpanId;
    this.clientSpanId = clientSpanId;
    this.sampled = sampled;
    this.traceState = traceState;
    this.outcome = outcome;
    this.hadFinalResponse = hadFinalResponse;
  }
}

/** A transaction as the table holds it: open (the full record) or ended (what its linger needs). */
export type ObservedTransaction = TransactionRecord | EndedTransaction;

/** A dialog at one hop: from the initial INVITE to BYE, failure, CANCEL or expiry. One call is one trace. */
export class CallRecord {
  readonly key: string;
  readonly route: RouteInfo;
  readonly callId: string;
  readonly fromTag: string | null;
  toTag: string | null = null;
  fromUser: string | null;
  toUser: string | null;
  state: CallState = 'trying';
  outcome: CallOutcome | null = null;
  /** The final status of the initial INVITE (0 while pending). */
  finalStatus = 0;
  traceId: string;
  /** The SERVER span of the initial INVITE at this hop: in-dialog requests hang their spans under the trace. */
  rootSpanId: string;
  sampled: boolean;
  logSampled: boolean;
  readonly invitedAt: number;
  firstProvisionalAt = -1;
  answeredAt = -1;
  byeAt = -1;
  endedAt = -1;
  /** performance.now() of the last message of the call. */
  lastSeen: number;
  cancelled = false;
  /** Set when a BYE of a confirmed call got its final response. */
  completed = false;
  byeCompletedAt = -1;
  /**
   * After a 401/407 to the initial INVITE or to a BYE: when the call ends if no retried request has
   * come to move it on (-1: no challenge pending). A challenge is not an outcome (RFC 6076 §4.2).
   */
  challengeDeadline = -1;
  challengeStatus = 0;

  constructor(
    key: string,
    route: RouteInfo,
    callId: string,
    fromTag: string | null,
    fromUser: string | null,
    toUser: string | null,
    traceId: string,
    rootSpanId: string,
    sampled: boolean,
    logSampled: boolean,
    invitedAt: number,
  ) {
    this.key = key;
    this.route = route;
    this.callId = callId;
    this.fromTag = fromTag;
    this.fromUser = fromUser;
    this.toUser = toUser;
    this.traceId = traceId;
    this.rootSpanId = rootSpanId;
    this.sampled = sampled;
    this.logSampled = logSampled;
    this.invitedAt = invitedAt;
    this.lastSeen = invitedAt;
  }
}

/** Published for every message sent on (scratch object: valid during the publish only). */
export interface ForwardedEvent {
  route: RouteInfo;
  isRequest: boolean;
  methodLabel: MethodLabel;
  /** Response status, 0 for requests. */
  status: number;
  direction: Direction;
  transport: TransportName;
  /** Time inside sipspan, seconds. */
  proxySeconds: number;
  /** The trace id of the message's transaction, when known (for exemplars). */
  traceId: string | null;
}

/** A message sipspan answered itself (status > 0) or dropped (status 0). */
export interface RejectedEvent {
  route: RouteInfo;
  isRequest: boolean;
  status: number;
  /** Closed set of reason codes. */
  reason: string;
  transport: TransportName;
  remote: string;
  /** Raw method token, Call-ID and CSeq when readable (escaped by sinks before any output). */
  method: string | null;
  callId: string | null;
  cseq: number;
  at: number;
}

export interface LimitEvent {
  route: RouteInfo | null;
  limit: string;
}

export interface CapturedEvent {
  route: RouteInfo;
  callId: string;
  traceId: string | null;
  /** 'in' as received, 'out' as forwarded. */
  direction: 'in' | 'out';
  transport: TransportName;
  source: string;
  destination: string;
  at: number;
  bytes: Buffer;
}

export interface ProcessStateEvent {
  state:
    | 'starting'
    | 'ready'
    | 'draining'
    | 'stopped'
    | 'heap-soft'
    | 'heap-hard'
    | 'heap-ok'
    | 'reloaded'
    | 'reload-failed'
    | 'reload-ignored'
    | 'udp-buffers-capped'
    | 'udp-io-dgram'
    | 'heap-guard-unreachable';
  detail: Record<string, unknown>;
}
