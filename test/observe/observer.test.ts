import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { channels } from '../../src/observe/channels.ts';
import { MAX_WAIT_MS } from '../../src/observe/deferred-events.ts';
import { LegCorrelator } from '../../src/observe/leg-correlator.ts';
import { type InboundTrace, Observer } from '../../src/observe/observer.ts';
import {
  type CallRecord,
  EndedTransaction,
  type ObservedTransaction,
  TransactionRecord,
} from '../../src/observe/records.ts';
import { samplerFromEnv } from '../../src/observe/sampler.ts';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const A = { index: 0, name: 'sip-gateway' };
const B = { index: 1, name: 'sip-signaling' };

function observer(overrides: Partial<ConstructorParameters<typeof Observer>[0]> = {}): Observer {
  return new Observer(
    {
      maxTransactions: 1000,
      maxCalls: 1000,
      t1Ms: 20,
      inviteProvisionalMs: 3000,
      callIdleMs: 60_000,
      sampler: samplerFromEnv({}),
      logSampleRatio: 1,
      correlator: new LegCorrelator(10_000, 1000),
      ...overrides,
    },
    2,
  );
}

function send(
  o: Observer,
  opts: {
    route?: typeof A;
    method?: string;
    branch?: string;
    callId?: string;
    toTag?: string | null;
    now?: number;
    inbound?: InboundTrace | null;
    trusted?: boolean;
    legKeys?: string[] | null;
  } = {},
): ObservedTransaction | null {
  return o.onRequest(
    opts.route ?? A,
    opts.method ?? 'INVITE',
    opts.branch ?? 'z9hG4bK-sS1',
    opts.callId ?? 'call-1',
    1,
    'from-tag',
    opts.toTag ?? null,
    'downstream',
    'udp',
    '127.0.0.1:5080',
    opts.now ?? 0,
    opts.inbound ?? null,
    opts.trusted ?? true,
    opts.legKeys ?? null,
    'alice',
    'bob',
  );
}

/** A request that opens a transaction (or finds an open one): the full record. */
function request(o: Observer, opts: Parameters<typeof send>[1] = {}): TransactionRecord | null {
  const r = send(o, opts);
  assert.ok(r === null || r instanceof TransactionRecord, 'an open transaction');
  return r;
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('trace context, decided per request', () => {
  test('a valid inbound traceparent on a trusted route is continued, its tracestate passed on', () => {
    const tx = request(observer(), {
      inbound: {
        traceparent: `00-${TRACE}-${SPAN}-01`,
        repeated: false,
        tracestate: 'vendor=1',
        traceId: null,
      },
    })!;
    assert.equal(tx.traceId, TRACE);
    assert.equal(tx.parentSpanId, SPAN);
    assert.equal(tx.traceOrigin, 'inbound');
    assert.equal(tx.traceState, 'vendor=1');
    assert.notEqual(tx.clientSpanId, tx.serverSpanId);
  });

  test('on an untrusted route the inbound context starts a new trace and is kept only as a link', () => {
    const tx = request(observer(), {
      trusted: false,
      inbound: {
        traceparent: `00-${TRACE}-${SPAN}-01`,
        repeated: false,
        tracestate: 'vendor=1',
        traceId: TRACE,
      },
    })!;
    assert.notEqual(tx.traceId, TRACE);
    assert.equal(tx.parentSpanId, null);
    assert.equal(tx.traceState, null);
    assert.equal(tx.linkTraceId, TRACE);
    assert.equal(tx.linkSpanId, SPAN);
  });

  test('invalid or repeated traceparent values are not continued (W3C Trace Context §3.2)', () => {
    for (const inbound of [
      { traceparent: `00-${TRACE.toUpperCase()}-${SPAN}-01`, repeated: false },
      { traceparent: `00-${'0'.repeat(32)}-${SPAN}-01`, repeated: false },
      { traceparent: `ff-${TRACE}-${SPAN}-01`, repeated: false },
      { traceparent: `00-${TRACE}-${SPAN}-01`, repeated: true },
    ]) {
      const tx = request(observer(), { inbound: { ...inbound, tracestate: null, traceId: null } })!;
      assert.notEqual(tx.traceId, TRACE, inbound.traceparent);
      assert.equal(tx.traceOrigin, 'new');
    }
  });

  test('ACK, BYE and re-INVITE of a call reuse the call trace; CANCEL reuses its INVITE trace', () => {
    const o = observer();
    const invite = request(o, { branch: 'b1' })!;
    o.onResponse('b1', 'INVITE', 200, 5);
    o.onResponseSent(invite, 200, 5, 6);
    for (const [method, branch] of [
      ['ACK', 'b2'],
      ['BYE', 'b3'],
      ['INVITE', 'b4'],
    ]) {
      const tx = request(o, { method, branch, toTag: 'to-tag', now: 10 })!;
      assert.equal(tx.traceId, invite.traceId, method);
      assert.equal(tx.parentSpanId, invite.serverSpanId, method);
      assert.equal(tx.traceOrigin, 'call');
    }
    const o2 = observer();
    const inv2 = request(o2, { branch: 'c1', callId: 'call-2' })!;
    const cancel = request(o2, { method: 'CANCEL', branch: 'c1', callId: 'call-2', now: 3 })!;
    assert.equal(cancel.traceId, inv2.traceId);
    assert.equal(inv2.cancelledAt, 3);
  });

  test('a B2BUA leg entering another route joins the trace of the leg it came from', () => {
    const o = observer();
    const a = request(o, {
      route: A,
      branch: 'a1',
      callId: 'leg-a',
      legKeys: ['sdp-origin:- 42 1 IN IP4 127.0.0.1', 'users:alice|bob'],
    })!;
    const b = request(o, {
      route: B,
      branch: 'b1',
      callId: 'leg-b',
      now: 5,
      legKeys: ['sdp-origin:- 42 1 IN IP4 127.0.0.1'],
    })!;
    assert.equal(b.traceId, a.traceId);
    assert.equal(b.parentSpanId, a.clientSpanId);
    assert.equal(b.traceOrigin, 'stitched');
    assert.equal(b.stitchedBy, 'sdp-origin');
  });

  test('sampling is decided once per call: OTEL_TRACES_SAMPLER=always_off leaves every request of the call unsampled', () => {
    const o = observer({ sampler: samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_off' }) });
    const invite = request(o, { branch: 'x1' })!;
    o.onResponse('x1', 'INVITE', 200, 1);
    const bye = request(o, { method: 'BYE', branch: 'x2', toTag: 't' })!;
    assert.equal(invite.sampled, false);
    assert.equal(bye.sampled, false);
  });
});

describe('transactions and calls', () => {
  test('a retransmitted request is counted on its transaction, not a new one', () => {
    const o = observer();
    const first = request(o, { branch: 'r1' });
    const again = request(o, { branch: 'r1', now: 500 });
    assert.equal(again, first);
    assert.equal(o.lastWasRetransmission, true);
    assert.equal(first!.retransmissions, 1);
    assert.equal(o.transactionCount, 1);
  });

  test('a non-2xx ACK belongs to its INVITE transaction', () => {
    const o = observer();
    const inv = request(o, { branch: 'n1' })!;
    const ack = request(o, { method: 'ACK', branch: 'n1', toTag: 't' });
    assert.equal(ack, inv);
    assert.equal(o.lastMatchedInvite, inv);
    assert.equal(inv.retransmissions, 0);
  });

  test('an unanswered INVITE times out at Timer B = 64·T1 and the call ends with outcome timeout', () => {
    const o = observer({ t1Ms: 20 });
    const ended: TransactionRecord[] = [];
    const outcomes: CallRecord[] = [];
    const onEnd = (m: unknown) => ended.push(m as TransactionRecord);
    const onOutcome = (m: unknown) => outcomes.push(m as CallRecord);
    channels.transactionEnd.subscribe(onEnd);
    channels.callOutcome.subscribe(onOutcome);
    try {
      const tx = request(o, { branch: 't1', now: 100 })!;
      o.onRequestSent(tx, '127.0.0.1:5070', 'udp', 100);
      o.sweep(100 + 64 * 20 - 1);
      o.flushEvents();
      assert.equal(ended.length, 0);
      o.sweep(100 + 64 * 20 + 5);
      o.flushEvents();
      assert.equal(ended.length, 1);
      assert.equal(tx.outcome, 'timeout');
      assert.equal(tx.endedAt, 100 + 64 * 20);
      assert.equal(outcomes[0].outcome, 'timeout');
      assert.equal(o.callCount, 0);
      assert.equal(o.pendingTransactions(0), 0);
    } finally {
      channels.transactionEnd.unsubscribe(onEnd);
      channels.callOutcome.unsubscribe(onOutcome);
    }
  });

  test('end events go out after the turn, at most MAX_WAIT_MS later, in the order they happened', async () => {
    const o = observer();
    const seen: string[] = [];
    const onEnd = (m: unknown) => seen.push(`end ${(m as TransactionRecord).method}`);
    const onOutcome = (m: unknown) => seen.push(`outcome ${(m as CallRecord).outcome}`);
    const onCallEnd = (m: unknown) => seen.push(`call end ${(m as CallRecord).state}`);
    channels.transactionEnd.subscribe(onEnd);
    channels.callOutcome.subscribe(onOutcome);
    channels.callEnd.subscribe(onCallEnd);
    try {
      const tx = request(o, { branch: 'd1', callId: 'd' })!;
      o.onResponse('d1', 'INVITE', 486, 1);
      o.onResponseSent(tx, 486, 1, 2);
      assert.deepEqual(seen, [], 'nothing is published inside the turn');
      await new Promise((r) => setTimeout(r, MAX_WAIT_MS + 10));
      assert.deepEqual(seen, ['outcome failed_4xx', 'end INVITE', 'call end failed']);
    } finally {
      channels.transactionEnd.unsubscribe(onEnd);
      channels.callOutcome.unsubscribe(onOutcome);
      channels.callEnd.unsubscribe(onCallEnd);
    }
  });

  test('a provisional response extends an INVITE to the provisional timeout', () => {
    const o = observer({ t1Ms: 20, inviteProvisionalMs: 3000 });
    const tx = request(o, { branch: 'p1' })!;
    o.onRequestSent(tx, 'x', 'udp', 0);
    o.onResponse('p1', 'INVITE', 180, 10);
    o.sweep(2000);
    assert.equal(tx.outcome, null);
    o.sweep(3011);
    assert.equal(tx.outcome, 'timeout');
  });

  test('call outcomes: answered, failed by class, cancelled; a BYE completes an answered call', () => {
    const o = observer();
    const outcomes: string[] = [];
    const ends: CallRecord[] = [];
    const onOutcome = (m: unknown) => outcomes.push((m as CallRecord).outcome!);
    const onEnd = (m: unknown) => ends.push(m as CallRecord);
    channels.callOutcome.subscribe(onOutcome);
    channels.callEnd.subscribe(onEnd);
    try {
      for (const [callId, status] of [
        ['c200', 200],
        ['c486', 486],
        ['c503', 503],
        ['c603', 603],
        ['c302', 302],
      ] as const) {
        const tx = request(o, { branch: `b-${callId}`, callId })!;
        o.onResponse(`b-${callId}`, 'INVITE', status, 1);
        o.onResponseSent(tx, status, 1, 2);
      }
      const cancelled = request(o, { branch: 'b-cx', callId: 'cx' })!;
      request(o, { method: 'CANCEL', branch: 'b-cx', callId: 'cx' });
      o.onResponse('b-cx', 'INVITE', 487, 3);
      o.onResponseSent(cancelled, 487, 3, 4);
      o.flushEvents();
      assert.deepEqual(outcomes, [
        'answered',
        'failed_4xx',
        'failed_5xx',
        'failed_6xx',
        'redirected',
        'cancelled',
      ]);
      assert.equal(o.activeCalls(0), 1);
      const bye = request(o, { method: 'BYE', branch: 'bye', callId: 'c200', toTag: 't', now: 1000 })!;
      o.onResponse('bye', 'BYE', 200, 1010);
      o.onResponseSent(bye, 200, 1010, 1011);
      o.flushEvents();
      const answered = ends.find((c) => c.callId === 'c200')!;
      assert.equal(answered.completed, true);
      assert.equal(answered.byeAt, 1000);
      assert.equal(o.activeCalls(0), 0);
    } finally {
      channels.callOutcome.unsubscribe(onOutcome);
      channels.callEnd.unsubscribe(onEnd);
    }
  });

  /** Every call outcome and call end the observer publishes while `body` runs, flushed. */
  function watchCalls(body: () => void): { outcomes: CallRecord[]; ends: CallRecord[] } {
    const outcomes: CallRecord[] = [];
    const ends: CallRecord[] = [];
    const onOutcome = (m: unknown) => outcomes.push(m as CallRecord);
    const onEnd = (m: unknown) => ends.push(m as CallRecord);
    channels.callOutcome.subscribe(onOutcome);
    channels.callEnd.subscribe(onEnd);
    try {
      body();
    } finally {
      channels.callOutcome.unsubscribe(onOutcome);
      channels.callEnd.unsubscribe(onEnd);
    }
    return { outcomes, ends };
  }

  test('an initial INVITE that could not be sent and was answered 503 fails its call as a 503 would (RFC 3261 §16.9): one attempt, no call left', () => {
    const o = observer();
    let answered: TransactionRecord | null = null;
    const { outcomes, ends } = watchCalls(() => {
      answered = request(o, { branch: 's1', callId: 's1', now: 10 })!;
      o.onRequestSent(answered, '127.0.0.1:5070', 'tcp', 11);
      o.onSendFailureAnswered(answered, 503, 15);
      // Reported once: a second failure of the same transaction (a retransmission) changes nothing.
      o.onSendFailureAnswered(answered, 503, 16);
      o.flushEvents();
    });
    assert.deepEqual(
      outcomes.map((c) => [c.callId, c.outcome, c.finalStatus]),
      [['s1', 'failed_5xx', 503]],
    );
    assert.deepEqual(
      ends.map((c) => c.state),
      ['failed'],
    );
    assert.equal(o.callCount, 0);
    assert.equal(o.pendingTransactions(0), 0);
    const a = answered as unknown as TransactionRecord;
    assert.deepEqual(
      [a.outcome, a.status, a.statusClass, a.generatedStatus, a.endedAt],
      ['send-failed', 503, '5xx', 503, 15],
    );
  });

  test('an INVITE challenged 407 and sent again with credentials is one call, answered, in one trace', () => {
    const o = observer();
    let first: TransactionRecord | null = null;
    let retry: TransactionRecord | null = null;
    const { outcomes, ends } = watchCalls(() => {
      first = request(o, { branch: 'a1', callId: 'auth', now: 0 })!;
      o.onRequestSent(first, 'x', 'udp', 0);
      o.onResponse('a1', 'INVITE', 407, 5);
      o.onResponseSent(first, 407, 5, 6);
      o.flushEvents();
      assert.equal(o.activeCalls(0), 1, 'the call waits for the retried INVITE');
      retry = request(o, { branch: 'a2', callId: 'auth', now: 10 })!;
      o.onRequestSent(retry, 'x', 'udp', 10);
      o.onResponse('a2', 'INVITE', 180, 15);
      o.onResponse('a2', 'INVITE', 200, 20);
      o.onResponseSent(retry, 200, 20, 21);
      // Long after a transaction timeout: the call is answered, not an expired challenge.
      o.sweep(10_000);
      o.flushEvents();
    });
    assert.deepEqual(
      outcomes.map((c) => [c.outcome, c.finalStatus]),
      [['answered', 200]],
    );
    assert.deepEqual(ends, []);
    const f = first as unknown as TransactionRecord;
    const r = retry as unknown as TransactionRecord;
    assert.equal(r.traceId, f.traceId);
    assert.equal(r.parentSpanId, f.serverSpanId);
    assert.equal(o.activeCalls(0), 1);
  });

  test('a challenge nobody answers ends the call after 64·T1 (at the next walk of the calls) with the challenge as its outcome', () => {
    const o = observer({ t1Ms: 20 });
    const { outcomes, ends } = watchCalls(() => {
      const tx = request(o, { branch: 'n1', callId: 'noauth', now: 0 })!;
      o.onRequestSent(tx, 'x', 'udp', 0);
      o.onResponse('n1', 'INVITE', 401, 5);
      o.onResponseSent(tx, 401, 5, 6);
      o.sweep(5 + 64 * 20 - 1);
      o.flushEvents();
      assert.equal(o.callCount, 1);
      // The call table is walked at most every 5 s: the call ends at the first walk past its deadline.
      o.sweep(5 + 64 * 20 - 1 + 5000);
      o.flushEvents();
    });
    assert.deepEqual(
      outcomes.map((c) => [c.outcome, c.finalStatus]),
      [['failed_4xx', 401]],
    );
    assert.deepEqual(
      ends.map((c) => c.state),
      ['failed'],
    );
    assert.equal(o.callCount, 0);
  });

  test('a BYE challenged 407 then sent again completes the call; one never sent again leaves it not completed', () => {
    const o = observer({ t1Ms: 20 });
    const answer = (callId: string) => {
      const tx = request(o, { branch: `i-${callId}`, callId, now: 0 })!;
      o.onResponse(`i-${callId}`, 'INVITE', 200, 1);
      o.onResponseSent(tx, 200, 1, 2);
    };
    const bye = (callId: string, branch: string, status: number, now: number) => {
      const tx = request(o, { method: 'BYE', branch, callId, toTag: 't', now })!;
      o.onResponse(branch, 'BYE', status, now + 1);
      o.onResponseSent(tx, status, now + 1, now + 2);
    };
    const { ends } = watchCalls(() => {
      answer('retried');
      answer('abandoned');
      bye('retried', 'b1', 407, 100);
      bye('abandoned', 'b2', 407, 100);
      o.flushEvents();
      assert.equal(o.activeCalls(0), 2, 'both calls wait for their BYE again');
      bye('retried', 'b3', 200, 110);
      o.sweep(102 + 64 * 20 + 1);
      o.flushEvents();
    });
    assert.deepEqual(
      ends.map((c) => [c.callId, c.state, c.completed, c.byeAt]),
      [
        ['retried', 'terminated', true, 100],
        ['abandoned', 'terminated', false, 100],
      ],
    );
    assert.equal(o.callCount, 0);
  });

  test('a full table refuses new transactions (forwarding goes on without them) and counts it', () => {
    const o = observer({ maxTransactions: 3 });
    for (let i = 0; i < 3; i++) assert.notEqual(request(o, { branch: `f${i}`, callId: `f${i}` }), null);
    assert.equal(request(o, { branch: 'f3', callId: 'f3' }), null);
    assert.equal(o.refusedTransactions, 1);
    assert.equal(o.transactionCount, 3);
  });

  test('with the heap guard engaged, nothing new is observed', () => {
    const o = observer();
    o.acceptNew = false;
    assert.equal(request(o), null);
    assert.equal(o.transactionCount, 0);
  });
});

describe('ended transactions', () => {
  /** An INVITE answered with `status` and the answer sent back: the transaction has ended. */
  function endedInvite(o: Observer, branch: string, status: number, callId = 'call-1') {
    const tx = request(o, { branch, callId })!;
    o.onRequestSent(tx, '127.0.0.1:5070', 'udp', 1);
    o.onResponse(branch, 'INVITE', status, 2);
    o.onResponseSent(tx, status, 2, 3);
    assert.equal(tx.outcome, 'completed');
    return tx;
  }

  test('a retransmission after the end finds the ended entry: same trace context, counted, nothing reported again', () => {
    const o = observer();
    const tx = endedInvite(o, 'e1', 486);
    const again = send(o, { branch: 'e1', now: 100 });
    assert.ok(again instanceof EndedTransaction);
    assert.equal(o.lastWasRetransmission, true);
    assert.equal(again.traceId, tx.traceId);
    assert.equal(again.clientSpanId, tx.clientSpanId);
    assert.equal(again.sampled, tx.sampled);
    assert.equal(again.retransmissions, 1, 'counted after the end');
    assert.equal(tx.retransmissions, 0, 'the reported record is left as it was reported');
    o.onRequestSent(again, '127.0.0.1:5070', 'udp', 101);
    assert.equal(o.transactionCount, 1);
  });

  test('a final response repeated after the end is counted on the ended entry and published as a retransmission', () => {
    const o = observer();
    endedInvite(o, 'e2', 200);
    const seen: ObservedTransaction[] = [];
    const onRetransmission = (m: unknown) => seen.push(m as ObservedTransaction);
    channels.transactionRetransmission.subscribe(onRetransmission);
    try {
      const entry = o.onResponse('e2', 'INVITE', 200, 50);
      assert.ok(entry instanceof EndedTransaction);
      assert.equal(entry.responseRetransmissions, 1);
      assert.equal(entry.retransmissions, 0);
      assert.deepEqual(seen, [entry]);
      o.onResponseSent(entry, 200, 50, 51);
      // A provisional after the end is relayed but is not a retransmission of the final.
      o.onResponse('e2', 'INVITE', 180, 52);
      assert.equal(seen.length, 1);
    } finally {
      channels.transactionRetransmission.unsubscribe(onRetransmission);
    }
  });

  test('a non-2xx ACK after the end belongs to the ended INVITE; a late CANCEL stays in its trace', () => {
    const o = observer();
    const inv = endedInvite(o, 'e3', 486);
    const ack = send(o, { method: 'ACK', branch: 'e3', toTag: 't', now: 10 });
    assert.ok(ack instanceof EndedTransaction);
    assert.equal(o.lastMatchedInvite, ack);
    assert.equal(ack.traceId, inv.traceId);
    assert.equal(ack.retransmissions, 0, 'an ACK is not a retransmission of the INVITE');
    const cancel = request(o, { method: 'CANCEL', branch: 'e3', now: 11 })!;
    assert.equal(cancel.traceId, inv.traceId);
    assert.equal(cancel.parentSpanId, inv.serverSpanId);
    assert.equal(inv.cancelledAt, -1, 'the reported INVITE is not changed');
  });

  test('the record of an ended transaction is let go: only its ended entry lingers, then that expires too', async () => {
    const o = observer();
    let ref: WeakRef<TransactionRecord>;
    (() => {
      ref = new WeakRef(endedInvite(o, 'e4', 200));
    })();
    // WeakRef targets are kept to the end of the turn they were read in.
    await new Promise((r) => setImmediate(r));
    gc();
    assert.equal(ref!.deref(), undefined, 'the record is collected while its entry lingers');
    assert.equal(o.transactionCount, 1);
    o.sweep(3 + 4999);
    assert.equal(o.transactionCount, 1, 'still inside T4');
    o.sweep(3 + 5000);
    assert.equal(o.transactionCount, 0);
  });

  test('an INVITE that ended leaves the B2BUA correlator: only a pending leg can be joined', () => {
    const correlator = new LegCorrelator(10_000, 1000);
    const o = observer({ correlator });
    const legKeys = ['users:alice|bob'];
    const a = request(o, { route: A, branch: 'l1', callId: 'leg-a', legKeys })!;
    assert.equal(correlator.size, 1);
    const ringing = request(o, { route: A, branch: 'l2', callId: 'leg-c', legKeys: ['x-cid:7'] })!;
    o.onResponse('l1', 'INVITE', 486, 2);
    o.onResponseSent(a, 486, 2, 3);
    assert.equal(correlator.size, 1, 'the ended leg is forgotten, the ringing one kept');
    const b = request(o, { route: B, branch: 'l3', callId: 'leg-b', now: 5, legKeys })!;
    assert.notEqual(b.traceId, a.traceId);
    const d = request(o, { route: B, branch: 'l4', callId: 'leg-d', now: 6, legKeys: ['x-cid:7'] })!;
    assert.equal(d.traceId, ringing.traceId);
  });
});
