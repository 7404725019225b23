import type { TransportName } from '../transport/flow.ts';
import { methodLabel } from '../wire/methods.ts';
import { isAcceptableTracestate, parseTraceId, parseTraceparent } from '../wire/read-trace-context.ts';
import { isCredentialChallenge } from '../wire/status.ts';
import { channels } from './channels.ts';
import { DeferredEvents } from './deferred-events.ts';
import { ACK_LINGER, EndedTransactions, TRANSACTION_LINGER } from './ended-transactions.ts';
import type { LegCorrelator, LegMatch } from './leg-correlator.ts';
import {
  type CallOutcome,
  CallRecord,
  type Direction,
  EndedTransaction,
  type ForwardedEvent,
  type ObservedTransaction,
  type RejectedEvent,
  type RouteInfo,
  type StatusClass,
  TransactionRecord,
} from './records.ts';
import type { Sampler } from './sampler.ts';
import { SlotTable } from './slot-table.ts';
import { tableKey } from './table-key.ts';
import { newSpanId, newTraceId } from './trace-ids.ts';

/** Trace headers found on an inbound request (raw values; null when absent). */
export interface InboundTrace {
  traceparent: string | null;
  /** True when the traceparent (or X-Traceparent) field appeared more than once: invalid (W3C §3.2). */
  repeated: boolean;
  tracestate: string | null;
  traceId: string | null;
}

export interface ObserverOptions {
  maxTransactions: number;
  maxCalls: number;
  t1Ms: number;
  inviteProvisionalMs: number;
  callIdleMs: number;
  sampler: Sampler;
  /** Fraction of calls whose transaction log lines are written. */
  logSampleRatio: number;
  correlator: LegCorrelator | null;
}

/** How long a transaction with a final response is kept to recognise retransmissions (RFC 3261 T4). */
const COMPLETED_LINGER_MS = 5000;

/**
 * The observing tables: transactions and calls at each hop. sipspan forwards
 * statelessly; these tables only time and describe what passes, so a full
 * table never stops forwarding (it stops observing new things and counts it).
 *
 *   request in ──▶ onRequest ──▶ (forward) ──▶ onRequestSent
 *   response in ─▶ onResponse ─▶ (forward) ──▶ onResponseSent ──▶ end (final)
 *   sweep (coarse timer) ──▶ Timer B/F timeouts, call expiry, lingering entries
 */
export class Observer {
  private readonly opts: ObserverOptions;
  /**
   * Open transactions (full records, outcome still null) in creation order. A record leaves the
   * moment it ends (endEntry) and what its linger needs goes to `ended`.
   */
  private readonly transactions: SlotTable<TransactionRecord>;
  private readonly calls: SlotTable<CallRecord>;
  /** What a sweep found due, acted on once the walk is over (a table must not change during one). */
  private readonly dueTransactions: TransactionRecord[] = [];
  private readonly dueCalls: CallRecord[] = [];
  /**
   * Ended transactions, kept COMPLETED_LINGER_MS to recognise retransmissions. 2xx ACKs are kept
   * there too, to recognise their retransmissions: as long as an ended transaction (T4), or 64·T1
   * when that is shorter. A UAC repeats the ACK for each 200 the UAS retransmits, which stops once an
   * ACK gets through; keeping every ACK the full 64·T1 (32 s) held six times as many records at any
   * rate (at 4,000 calls/s: 128,000, past the table's bound) for the rare ACK repeated after 5 s,
   * which is then observed as an ACK of its own, still in the call's trace.
   */
  private readonly ended: EndedTransactions;
  private readonly ackLingerMs: number;
  /** transaction:end, call:outcome and call:end, published in groups after a turn's forwarding. */
  private readonly events = new DeferredEvents(4096);
  private nextCallSweep = 0;
  private readonly forwarded: ForwardedEvent;
  /** Heap guard: when false no new transactions or calls are created. */
  acceptNew = true;
  /** Set by onRequest: the request was a retransmission of a known transaction. */
  lastWasRetransmission = false;
  /** Set by onRequest: the request was a non-2xx ACK or a CANCEL matched to an INVITE transaction. */
  lastMatchedInvite: ObservedTransaction | null = null;
  /** Per-route counts of what the tables refused, read by the metrics sink. */
  refusedTransactions = 0;
  refusedCalls = 0;
  private readonly pendingPerRoute: number[] = [];
  private readonly activeCallsPerRoute: number[] = [];
  /** Each route's index as text, the first part of its calls' keys: no number made a string per request. */
  private readonly routeTexts: string[] = [];

  constructor(opts: ObserverOptions, routeCount: number) {
    this.opts = opts;
    this.ackLingerMs = Math.min(64 * opts.t1Ms, COMPLETED_LINGER_MS);
    this.ended = new EndedTransactions(opts.maxTransactions);
    this.transactions = new SlotTable(opts.maxTransactions);
    this.calls = new SlotTable(opts.maxCalls);
    for (let i = 0; i < routeCount; i++) {
      this.pendingPerRoute.push(0);
      this.activeCallsPerRoute.push(0);
      this.routeTexts.push(String(i));
    }
    this.forwarded = {
      route: { index: 0, name: '' },
      isRequest: true,
      methodLabel: 'other',
      status: 0,
      direction: 'downstream',
      transport: 'udp',
      proxySeconds: 0,
      traceId: null,
    };
  }

  /** logs.sample_ratio changed by a reload: calls from now on are sampled with it. */
  setLogSampleRatio(ratio: number): void {
    this.opts.logSampleRatio = ratio;
  }

  private routeText(index: number): string {
    return this.routeTexts[index] ?? String(index);
  }

  /** Open and lingering. */
  get transactionCount(): number {
    return this.transactions.size + this.ended.size;
  }

  /** Open only: the table `max_transactions` bounds (ended ones are bounded apart). */
  get openTransactionCount(): number {
    return this.transactions.size;
  }

  /** Ended, lingering to recognise retransmissions. */
  get endedTransactionCount(): number {
    return this.ended.size;
  }

  get callCount(): number {
    return this.calls.size;
  }

  /** Initial INVITEs are matched with legs on other routes (a correlator exists): their keys are wanted. */
  get correlatesLegs(): boolean {
    return this.opts.correlator !== null;
  }

  /** B2BUA legs left unstitched because they matched unanswered legs of more than one call. */
  get ambiguousLegCount(): number {
    return this.opts.correlator?.ambiguous ?? 0;
  }

  pendingTransactions(routeIndex: number): number {
    return this.pendingPerRoute[routeIndex];
  }

  activeCalls(routeIndex: number): number {
    return this.activeCallsPerRoute[routeIndex];
  }

  /** The call of a Call-ID at a route (for the admin API and tests). */
  findCall(routeIndex: number, callId: string): CallRecord | undefined {
    return this.calls.get(tableKey(this.routeText(routeIndex), callId));
  }

  /**
   * A request is about to be forwarded. Returns its transaction — new, or the
   * known one for a retransmission (lastWasRetransmission), or the INVITE
   * transaction a non-2xx ACK / CANCEL belongs to (lastMatchedInvite) — with
   * its trace context decided. Null when the tables refuse new state.
   */
  onRequest(
    route: RouteInfo,
    method: string,
    branch: string,
    callId: string,
    cseq: number,
    fromTag: string | null,
    toTag: string | null,
    direction: Direction,
    transport: TransportName,
    downstream: string,
    now: number,
    inbound: InboundTrace | null,
    trusted: boolean,
    legKeys: readonly string[] | null,
    fromUser: string | null,
    toUser: string | null,
  ): ObservedTransaction | null {
    this.lastWasRetransmission = false;
    this.lastMatchedInvite = null;
    const isAck = method === 'ACK';
    const key = tableKey(branch, isAck ? 'INVITE' : method);
    const known = this.transactions.get(key) ?? this.ended.find(key);
    if (known !== undefined) {
      if (isAck && known.method === 'INVITE') {
        // RFC 3261 §17.1.1.3: the ACK of a non-2xx final response belongs to the INVITE transaction.
        this.lastMatchedInvite = known;
        return known;
      }
      known.retransmissions++;
      this.lastWasRetransmission = true;
      if (channels.transactionRetransmission.hasSubscribers)
        channels.transactionRetransmission.publish(known);
      return known;
    }

    let invite: ObservedTransaction | undefined;
    if (method === 'CANCEL') {
      // RFC 3261 §9.2: a CANCEL carries the branch of the INVITE it cancels.
      const inviteKey = tableKey(branch, 'INVITE');
      invite = this.transactions.get(inviteKey) ?? this.ended.find(inviteKey);
      if (invite instanceof TransactionRecord) {
        invite.cancelledAt = now;
        invite.addMark(-1, now);
        if (invite.call !== null) invite.call.cancelled = true;
      }
    }

    if (!this.acceptNew) return null;
    if (this.transactions.size >= this.opts.maxTransactions) {
      this.refusedTransactions++;
      this.publishLimit(route, 'max_transactions');
      return null;
    }

    const callKey = tableKey(this.routeText(route.index), callId);
    let call = this.calls.get(callKey) ?? null;
    // An in-dialog request keeps the call's strings: its own copies would only be more to carry.
    const tx = new TransactionRecord(
      key,
      route,
      method,
      methodLabel(method),
      call === null ? callId : call.callId,
      cseq,
      branch,
      direction,
      transport,
      downstream,
      call !== null && fromTag === call.fromTag ? call.fromTag : fromTag,
      toTag,
      now,
      now + 64 * this.opts.t1Ms,
    );
    tx.serverSpanId = newSpanId();
    tx.clientSpanId = newSpanId();

    this.decideTraceContext(tx, inbound, trusted, call, legKeys, now, invite ?? null);

    if (call === null && tx.isInitialInvite) {
      if (this.calls.size < this.opts.maxCalls) {
        call = new CallRecord(
          callKey,
          route,
          callId,
          fromTag,
          fromUser,
          toUser,
          tx.traceId,
          tx.serverSpanId,
          tx.sampled,
          this.opts.logSampleRatio >= 1 || Math.random() < this.opts.logSampleRatio,
          now,
        );
        this.calls.set(callKey, call);
        this.activeCallsPerRoute[route.index]++;
      } else {
        this.refusedCalls++;
        this.publishLimit(route, 'max_calls');
      }
    }
    if (call !== null) {
      call.lastSeen = now;
      tx.call = call;
      if (method === 'BYE' && call.byeAt === -1) call.byeAt = now;
      // The request a challenge asked for came again: the call goes on with it.
      if (call.challengeDeadline !== -1 && (tx.isInitialInvite || method === 'BYE'))
        call.challengeDeadline = -1;
    }
    if (tx.isInitialInvite && legKeys !== null && legKeys.length > 0 && this.opts.correlator !== null) {
      tx.legKeys = legKeys;
      this.opts.correlator.remember(legKeys, tx);
    }

    this.transactions.set(key, tx);
    if (!isAck) this.pendingPerRoute[route.index]++;
    if (channels.transactionStart.hasSubscribers) channels.transactionStart.publish(tx);
    return tx;
  }

  /**
   * W3C trace context for a request, decided in this order: a valid inbound
   * traceparent on a trusted route; the trace of the call (Call-ID) or of the
   * INVITE a CANCEL belongs to; a B2BUA leg matched by the correlator; a new
   * trace. An inbound context that is not used is kept as a link.
   */
  private decideTraceContext(
    tx: TransactionRecord,
    inbound: InboundTrace | null,
    trusted: boolean,
    call: CallRecord | null,
    legKeys: readonly string[] | null,
    now: number,
    invite: ObservedTransaction | null,
  ): void {
    const sampler = this.opts.sampler;
    if (inbound !== null && inbound.traceparent !== null) {
      const parent = inbound.repeated ? null : parseTraceparent(inbound.traceparent);
      if (parent !== null && trusted) {
        tx.traceId = parent.traceId;
        tx.parentSpanId = parent.spanId;
        tx.sampled = sampler.sampleChild(parent.traceId, (parent.flags & 1) === 1);
        tx.traceOrigin = 'inbound';
        if (inbound.tracestate !== null && isAcceptableTracestate(inbound.tracestate))
          tx.traceState = inbound.tracestate;
        return;
      }
      if (parent !== null) {
        tx.linkTraceId = parent.traceId;
        tx.linkSpanId = parent.spanId;
      }
    } else if (inbound !== null && inbound.traceId !== null && trusted && call === null && invite === null) {
      // Only X-Trace-Id came: keep its trace id, start a root span in it.
      const id = parseTraceId(inbound.traceId);
      if (id !== null) {
        tx.traceId = id;
        tx.sampled = sampler.sampleRoot(id);
        tx.traceOrigin = 'inbound';
        return;
      }
    }
    if (call !== null) {
      tx.traceId = call.traceId;
      tx.parentSpanId = call.rootSpanId;
      tx.sampled = call.sampled;
      tx.traceOrigin = 'call';
      return;
    }
    if (invite !== null) {
      tx.traceId = invite.traceId;
      tx.parentSpanId = invite.serverSpanId;
      tx.sampled = invite.sampled;
      tx.traceOrigin = 'call';
      return;
    }
    if (tx.isInitialInvite && legKeys !== null && this.opts.correlator !== null) {
      const correlator = this.opts.correlator;
      const ambiguousBefore = correlator.ambiguous;
      const match: LegMatch | null = correlator.find(tx.route.index, legKeys, now, tx.downstream);
      if (match !== null) {
        tx.traceId = match.entry.traceId;
        tx.parentSpanId = match.entry.clientSpanId;
        tx.sampled = match.entry.sampled;
        tx.traceOrigin = 'stitched';
        tx.stitchedBy = match.by;
        if (tx.linkTraceId === null) {
          tx.linkTraceId = match.entry.traceId;
          tx.linkSpanId = match.entry.clientSpanId;
        }
        return;
      }
      tx.stitchAmbiguous = correlator.ambiguous !== ambiguousBefore;
    }
    tx.traceId = newTraceId();
    tx.sampled = sampler.sampleRoot(tx.traceId);
    tx.traceOrigin = 'new';
  }

  /**
   * Where the request goes, known before it leaves: a send held for the end of the turn
   * (proxy/udp-outbox.ts) has its next hop at once, as a B2BUA leg matched meanwhile needs it.
   */
  onRequestRouted(tx: ObservedTransaction, upstream: string, transport: TransportName): void {
    if (tx instanceof EndedTransaction) return;
    tx.upstream = upstream;
    tx.upstreamTransport = transport;
  }

  onRequestSent(tx: ObservedTransaction, upstream: string, transport: TransportName, now: number): void {
    if (tx instanceof EndedTransaction) return; // a retransmission after the end: reported already
    if (tx.requestOut === -1) {
      tx.requestOut = now;
      tx.requestProxyMs = now - tx.requestIn;
    }
    tx.upstream = upstream;
    tx.upstreamTransport = transport;
    if (tx.method === 'ACK') {
      // An ACK for a 2xx has no response: its transaction ends when it is sent on.
      if (tx.outcome === null) {
        tx.outcome = 'forwarded';
        tx.endedAt = now;
        this.endEntry(tx);
        this.ended.add(ACK_LINGER, tx, now + this.ackLingerMs);
        if (tx.call !== null) tx.call.lastSeen = now;
        this.events.publish(channels.transactionEnd, tx);
      }
    }
  }

  /**
   * The request could not be sent (no connection to the service, queue full) and sipspan answered it
   * `status` (503) itself: the transaction ends here, and an initial INVITE's call fails with it
   * (RFC 3261 §16.9: a transport error counts as a 503 from the next hop). A failure left unanswered
   * (inside a dialog) is not reported: the sender's retransmission may get through, else Timer B ends it.
   */
  onSendFailureAnswered(tx: ObservedTransaction, status: number, now: number): void {
    if (tx instanceof EndedTransaction || tx.outcome !== null || tx.finalResponseIn !== -1) return;
    tx.outcome = 'send-failed';
    tx.generatedStatus = status;
    tx.status = status;
    tx.statusClass = statusClassOf(status);
    tx.finalResponseOut = now;
    tx.endedAt = now;
    this.onFinalForCall(tx, status, now);
    this.finish(tx, now);
  }

  /** A response from the far side of a transaction; null when no transaction is known for it. */
  onResponse(branch: string, cseqMethod: string, status: number, now: number): ObservedTransaction | null {
    return this.onResponseTo(tableKey(branch, cseqMethod), status, now);
  }

  /**
   * onResponse by the transaction's key, `tableKey(branch, CSeq method)`: the proxy makes it from
   * the response's bytes (`tableKeyAt`) without a string for the branch.
   */
  onResponseTo(key: string, status: number, now: number): ObservedTransaction | null {
    const tx = this.transactions.get(key) ?? this.ended.find(key);
    if (tx === undefined) return null;
    if (tx instanceof EndedTransaction) {
      // A final response again (the far side did not see ours arrive, or a 2xx before its ACK): counted.
      // Anything else after the end — a late answer to a timeout, a send failure, a request sipspan
      // answered — is relayed statelessly (§16.11) and was reported with the transaction.
      if (tx.hadFinalResponse && status >= 200) {
        tx.responseRetransmissions++;
        if (channels.transactionRetransmission.hasSubscribers) channels.transactionRetransmission.publish(tx);
      }
      return tx;
    }
    if (tx.firstResponseIn === -1) tx.firstResponseIn = now;
    if (tx.call !== null) tx.call.lastSeen = now;
    if (status < 200) {
      if (tx.finalResponseIn === -1) {
        tx.addMark(status, now);
        if (tx.method === 'INVITE') tx.expiresAt = now + this.opts.inviteProvisionalMs;
        const call = tx.call;
        if (call !== null && tx.isInitialInvite && status > 100 && call.firstProvisionalAt === -1) {
          call.firstProvisionalAt = now;
          if (call.state === 'trying' || call.state === 'challenged') call.state = 'early';
        }
      }
    } else if (tx.finalResponseIn === -1) {
      tx.finalResponseIn = now;
      tx.status = status;
      tx.statusClass = statusClassOf(status);
      this.onFinalForCall(tx, status, now);
    } else {
      tx.responseRetransmissions++;
      if (channels.transactionRetransmission.hasSubscribers) channels.transactionRetransmission.publish(tx);
      return tx;
    }
    if (channels.transactionResponse.hasSubscribers) channels.transactionResponse.publish(tx);
    return tx;
  }

  /** The response was sent back toward the request's sender. A final one ends the transaction. */
  onResponseSent(tx: ObservedTransaction, status: number, receivedAt: number, now: number): void {
    if (tx instanceof EndedTransaction) return;
    if (status >= 200 && tx.outcome === null && tx.finalResponseOut === -1 && tx.finalResponseIn !== -1) {
      tx.finalResponseOut = now;
      tx.responseProxyMs = now - receivedAt;
      tx.outcome = 'completed';
      tx.endedAt = now;
      this.finish(tx, now);
    }
  }

  /** sipspan answered a request itself (483, 482, 420, 503): a transaction that ends at once. */
  onGenerated(tx: ObservedTransaction, status: number, now: number): void {
    if (tx instanceof EndedTransaction) return; // answered once already
    tx.generatedStatus = status;
    tx.status = status;
    tx.statusClass = statusClassOf(status);
    tx.finalResponseOut = now;
    tx.outcome = 'rejected';
    tx.endedAt = now;
    this.onFinalForCall(tx, status, now);
    this.finish(tx, now);
  }

  private finish(tx: TransactionRecord, now: number): void {
    if (tx.method !== 'ACK') this.pendingPerRoute[tx.route.index]--;
    this.endEntry(tx);
    // Bounded like the open table: past its size the oldest ended entry goes before its linger is over.
    this.ended.add(TRANSACTION_LINGER, tx, now + COMPLETED_LINGER_MS);
    this.events.publish(channels.transactionEnd, tx);
    const call = tx.call;
    if (call === null) return;
    const state = call.state;
    if (state !== 'trying' && state !== 'early' && state !== 'confirmed' && state !== 'challenged')
      this.endCall(call, now);
    else if (tx.method === 'BYE' && state === 'confirmed') {
      if (isCredentialChallenge(tx.status)) {
        // RFC 3261 §22.2: the BYE comes again with credentials; the call ends with that one.
        this.awaitRetry(call, tx.status, now);
        return;
      }
      call.completed = tx.status >= 200 && tx.status < 300;
      call.byeCompletedAt = now;
      call.state = 'terminated';
      this.endCall(call, now);
    }
  }

  /**
   * The record leaves the open table (its linger is kept by `ended`) and is let go once the sinks have
   * read it. An initial INVITE no B2BUA leg can join any more (it is no longer pending) leaves the
   * correlator too.
   */
  private endEntry(tx: TransactionRecord): void {
    if (this.transactions.get(tx.key) === tx) this.transactions.delete(tx.key);
    if (tx.legKeys !== null && this.opts.correlator !== null) this.opts.correlator.forget(tx.legKeys, tx);
  }

  private onFinalForCall(tx: TransactionRecord, status: number, now: number): void {
    const call = tx.call;
    if (call === null || !tx.isInitialInvite || call.outcome !== null) return;
    if (isCredentialChallenge(status) && tx.generatedStatus === 0) {
      // The INVITE comes again with credentials in the same call (Call-ID, From tag): still one attempt.
      call.state = 'challenged';
      this.awaitRetry(call, status, now);
      return;
    }
    call.challengeDeadline = -1;
    call.finalStatus = status;
    if (status < 300) {
      call.state = 'confirmed';
      call.answeredAt = now;
      call.outcome = 'answered';
    } else {
      call.state = status === 487 && call.cancelled ? 'cancelled' : 'failed';
      call.outcome = callOutcomeOf(status, call.cancelled);
    }
    this.events.publish(channels.callOutcome, call);
  }

  /** A challenged call waits one transaction timeout (64·T1) for the retried request, then ends. */
  private awaitRetry(call: CallRecord, status: number, now: number): void {
    call.challengeStatus = status;
    call.challengeDeadline = now + 64 * this.opts.t1Ms;
  }

  /** A challenge nobody answered: the call ends as the challenge left it. */
  private endChallenged(call: CallRecord, now: number): void {
    call.challengeDeadline = -1;
    if (call.state === 'challenged') {
      call.finalStatus = call.challengeStatus;
      call.state = 'failed';
      call.outcome = callOutcomeOf(call.challengeStatus, false);
      this.events.publish(channels.callOutcome, call);
    } else {
      call.state = 'terminated';
      call.completed = false;
      call.byeCompletedAt = now;
    }
    this.endCall(call, now);
  }

  private endCall(call: CallRecord, now: number): void {
    if (call.endedAt !== -1) return;
    call.endedAt = now;
    if (this.calls.get(call.key) === call) {
      this.calls.delete(call.key);
      this.activeCallsPerRoute[call.route.index]--;
    }
    this.events.publish(channels.callEnd, call);
  }

  /** Per message sent on: counters and proxy time (one scratch event, no allocation). */
  publishForwarded(
    route: RouteInfo,
    isRequest: boolean,
    method: string,
    status: number,
    direction: Direction,
    transport: TransportName,
    receivedAt: number,
    now: number,
    traceId: string | null,
  ): void {
    if (!channels.messageForwarded.hasSubscribers) return;
    const e = this.forwarded;
    e.route = route;
    e.isRequest = isRequest;
    e.methodLabel = methodLabel(method);
    e.status = status;
    e.direction = direction;
    e.transport = transport;
    e.proxySeconds = (now - receivedAt) / 1000;
    e.traceId = traceId;
    channels.messageForwarded.publish(e);
  }

  publishRejected(event: RejectedEvent): void {
    if (channels.messageRejected.hasSubscribers) channels.messageRejected.publish(event);
  }

  publishLimit(route: RouteInfo | null, limit: string): void {
    if (channels.limitHit.hasSubscribers) channels.limitHit.publish({ route, limit });
  }

  /**
   * The coarse timer: Timer B/F timeouts (RFC 3261 §17.1.1.2, §17.1.2.2: 64*T1),
   * INVITEs left in a provisional state, lingering entries, idle calls.
   */
  sweep(now: number): void {
    this.ended.drain(now);
    // Transactions still open, oldest first (the table keeps creation order). None expires sooner
    // than 64·T1 after its request (a provisional only moves an INVITE's deadline later), so the walk
    // stops at the first entry younger than that: it costs the old entries, not the whole table.
    const timerB = 64 * this.opts.t1Ms;
    const due = this.dueTransactions;
    for (let s = this.transactions.oldest; s !== -1; s = this.transactions.newer(s)) {
      const tx = this.transactions.valueAt(s);
      if (now < tx.requestIn + timerB) break;
      if (now >= tx.expiresAt) due.push(tx);
    }
    for (let i = 0; i < due.length; i++) {
      const tx = due[i];
      if (tx.finalResponseIn === -1) {
        tx.outcome = 'timeout';
        tx.statusClass = 'timeout';
        tx.endedAt = tx.expiresAt;
        const call = tx.call;
        if (call !== null && tx.isInitialInvite && call.outcome === null) {
          call.outcome = 'timeout';
          call.state = 'failed';
          this.events.publish(channels.callOutcome, call);
        }
        this.finish(tx, now);
      } else {
        // Final response came but was never sent back (dropped): end it now.
        tx.outcome = 'completed';
        tx.endedAt = tx.finalResponseIn;
        this.finish(tx, now);
      }
    }
    due.length = 0;
    // Idle calls (an hour by default) need no sweep-period precision: walk the call table an eighth
    // of the idle time apart, at most every 5 s, not on every sweep.
    const idle = this.opts.callIdleMs;
    if (now >= this.nextCallSweep) {
      this.nextCallSweep = now + Math.min(5000, idle / 8);
      const dueCalls = this.dueCalls;
      for (let s = this.calls.oldest; s !== -1; s = this.calls.newer(s)) {
        const call = this.calls.valueAt(s);
        if (challengeOver(call, now) || now - call.lastSeen > idle) dueCalls.push(call);
      }
      for (let i = 0; i < dueCalls.length; i++) {
        const call = dueCalls[i];
        if (challengeOver(call, now)) {
          this.endChallenged(call, now);
          continue;
        }
        call.state = call.state === 'confirmed' ? 'terminated' : 'failed';
        this.endCall(call, now);
      }
      dueCalls.length = 0;
    }
    this.opts.correlator?.sweep(now);
  }

  /** On shutdown: end every pending transaction as it stands, so sinks can flush them. */
  endAll(now: number): void {
    const due = this.dueTransactions;
    for (let s = this.transactions.oldest; s !== -1; s = this.transactions.newer(s)) {
      const tx = this.transactions.valueAt(s);
      if (tx.finalResponseIn === -1) due.push(tx);
    }
    for (const tx of due) {
      tx.outcome = 'timeout';
      tx.statusClass = 'timeout';
      tx.endedAt = now;
      this.finish(tx, now);
    }
    due.length = 0;
    const calls = this.dueCalls;
    for (let s = this.calls.oldest; s !== -1; s = this.calls.newer(s)) calls.push(this.calls.valueAt(s));
    for (const call of calls) this.endCall(call, now);
    calls.length = 0;
    this.transactions.clear();
    this.ended.clear();
    this.events.flush();
  }

  /** A batch of reads begins: the events it ends are published at its end at the earliest (DeferredEvents). */
  batchStart(): void {
    this.events.batchStart();
  }

  batchEnd(): void {
    this.events.batchEnd();
  }

  /** Publish the queued end events now (otherwise they wait for a group, at most 50 ms: DeferredEvents). */
  flushEvents(): void {
    this.events.flush();
  }
}

/** A 401/407 was not answered with credentials within its 64·T1. */
function challengeOver(call: CallRecord, now: number): boolean {
  return call.challengeDeadline !== -1 && now >= call.challengeDeadline;
}

export function statusClassOf(status: number): StatusClass {
  if (status < 200) return '1xx';
  if (status < 300) return '2xx';
  if (status < 400) return '3xx';
  if (status < 500) return '4xx';
  if (status < 600) return '5xx';
  return '6xx';
}

function callOutcomeOf(status: number, cancelled: boolean): CallOutcome {
  if (status < 300) return 'answered';
  if (status < 400) return 'redirected';
  if (status === 487 && cancelled) return 'cancelled';
  if (status < 500) return 'failed_4xx';
  if (status < 600) return 'failed_5xx';
  return 'failed_6xx';
}
