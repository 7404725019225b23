/**
 * A B2BUA's new leg is matched with a remembered initial INVITE only where that
 * is structurally possible: another route, inside the window, the remembered
 * INVITE still unanswered, and the new leg coming from where it was forwarded.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LegCorrelator } from '../../src/observe/leg-correlator.ts';
import type { TransactionRecord } from '../../src/observe/records.ts';
import { transactionRecord } from '../support/records.ts';

const KEYS = ['session-id:ab12', 'users:alice|bob'];

function invite(
  routeIndex: number,
  requestIn: number,
  traceId = '0af7651916cd43dd8448eb211c80319c',
): TransactionRecord {
  const tx = transactionRecord({
    route: { index: routeIndex, name: `route-${routeIndex}` },
    callId: `call-${routeIndex}`,
    branch: `z9hG4bK-${routeIndex}-${requestIn}`,
    downstream: '192.0.2.1:5060',
    requestIn,
  });
  tx.traceId = traceId;
  tx.clientSpanId = 'b7ad6b7169203331';
  return tx;
}

describe('leg correlator', () => {
  test('a leg on another route, in the window, from where leg A went, matches by the strongest key', () => {
    const c = new LegCorrelator(10_000, 100);
    const a = invite(0, 1000);
    c.remember(KEYS, a);
    a.upstream = '192.0.2.9:5070';
    const m = c.find(1, ['users:alice|bob', 'session-id:ab12'], 1500, '192.0.2.9:5070');
    assert.ok(m !== null);
    assert.equal(m.entry, a);
    assert.equal(m.by, 'users');
    assert.equal(c.find(1, KEYS, 1500, '192.0.2.9:5070')?.by, 'session-id');
  });

  test('no match on the same route, after the window, once leg A is answered or ended, or from elsewhere', () => {
    const c = new LegCorrelator(10_000, 100);
    const a = invite(0, 1000);
    c.remember(KEYS, a);
    assert.equal(c.find(0, KEYS, 1500, '192.0.2.9:5070'), null, 'same route');
    assert.equal(c.find(1, KEYS, 11_001, '192.0.2.9:5070'), null, 'outside the window');
    a.upstream = '192.0.2.9:5070';
    assert.equal(c.find(1, KEYS, 1500, '192.0.2.7:5070'), null, 'not from where leg A was forwarded');
    a.finalResponseIn = 1200;
    assert.equal(c.find(1, KEYS, 1500, '192.0.2.9:5070'), null, 'answered');
    a.finalResponseIn = -1;
    a.outcome = 'timeout';
    assert.equal(c.find(1, KEYS, 1500, '192.0.2.9:5070'), null, 'ended');
  });

  test('before leg A is sent on, where it went is not known: any source matches', () => {
    const c = new LegCorrelator(10_000, 100);
    c.remember(KEYS, invite(0, 1000));
    assert.ok(c.find(1, KEYS, 1001, '198.51.100.1:5060') !== null);
  });

  test('bounded: past maxEntries the oldest keys go; a sweep forgets what left the window', () => {
    const c = new LegCorrelator(10_000, 3);
    c.remember(['x:1'], invite(0, 1));
    c.remember(['x:2'], invite(0, 2));
    c.remember(['x:3', 'x:4'], invite(0, 3));
    assert.equal(c.size, 3);
    assert.equal(c.find(1, ['x:1'], 5, ''), null);
    c.sweep(10_002.5);
    assert.equal(c.size, 2);
    c.sweep(20_000);
    assert.equal(c.size, 0);
  });

  // SIPp sends one SDP o= line and the same users on every call: a key two calls hold at once.
  const SDP = ['sdp-origin:- 53655765 2353687637 IN IP4 127.0.0.1', 'users:sipp|service'];
  const T1 = '11111111111111111111111111111111';
  const T2 = '22222222222222222222222222222222';

  test('a leg matching pending legs of two traces is not stitched to either, and is counted', () => {
    const c = new LegCorrelator(10_000, 100);
    const a1 = invite(0, 1000, T1);
    const a2 = invite(0, 1001, T2);
    c.remember(SDP, a1);
    c.remember(SDP, a2);
    assert.equal(c.find(1, SDP, 1002, '192.0.2.9:5070'), null);
    assert.equal(c.ambiguous, 1, 'once per leg, not per key');
    // Once one of them is answered, the key points at the other again.
    a1.finalResponseIn = 1003;
    assert.equal(c.find(1, SDP, 1004, '192.0.2.9:5070')?.entry, a2);
    // And once it has ended, its keys are let go.
    c.forget(SDP, a1);
    c.forget(SDP, a2);
    assert.equal(c.size, 0);
  });

  test('legs that cannot be the one asking do not make a key ambiguous', () => {
    const c = new LegCorrelator(10_000, 100);
    const a1 = invite(0, 1000, T1);
    a1.upstream = '192.0.2.9:5070';
    c.remember(SDP, a1);
    // Leg B of the first call, stitched into its trace, on the second route.
    const b1 = invite(1, 1001, T1);
    b1.upstream = '192.0.2.20:5060';
    c.remember(SDP, b1);
    // The second call arrives; a later leg on route 1 can only be its leg B.
    const a2 = invite(0, 1002, T2);
    a2.upstream = '192.0.2.9:5070';
    c.remember(SDP, a2);
    assert.equal(c.find(1, SDP, 1003, '192.0.2.9:5070')?.entry, a2);
    // A leg on a third route, from where leg A of the first call went, is that call's.
    assert.equal(c.find(2, SDP, 1003, '192.0.2.20:5060')?.entry, b1);
    assert.equal(c.ambiguous, 0);
  });

  test('two INVITEs of one trace (a retry after 407) share a key without ambiguity: the newest matches', () => {
    const c = new LegCorrelator(10_000, 100);
    const first = invite(0, 1000, T1);
    const retry = invite(0, 1100, T1);
    c.remember(SDP, first);
    c.remember(SDP, retry);
    assert.equal(c.find(1, SDP, 1101, '')?.entry, retry);
    assert.equal(c.ambiguous, 0);
  });

  test('a shared key is bounded and leaves with the window after its newest leg', () => {
    const c = new LegCorrelator(10_000, 100);
    for (let i = 0; i < 20; i++)
      c.remember(['users:sipp|service'], invite(0, 1000 + i, `${i}`.padStart(32, '0')));
    assert.equal(c.size, 1);
    assert.equal(c.find(1, ['users:sipp|service'], 1020, ''), null);
    c.sweep(11_018);
    assert.equal(c.size, 1, 'the newest leg is still in the window');
    c.sweep(11_020);
    assert.equal(c.size, 0);
  });
});
