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

function invite(routeIndex: number, requestIn: number): TransactionRecord {
  const tx = transactionRecord({
    route: { index: routeIndex, name: `route-${routeIndex}` },
    callId: `call-${routeIndex}`,
    branch: `z9hG4bK-${routeIndex}-${requestIn}`,
    downstream: '192.0.2.1:5060',
    requestIn,
  });
  tx.traceId = '0af7651916cd43dd8448eb211c80319c';
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
});
