import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ACK_LINGER, EndedTransactions, TRANSACTION_LINGER } from '../../src/observe/ended-transactions.ts';
import { EndedTransaction, TransactionRecord } from '../../src/observe/records.ts';
import { newSpanId, newTraceId } from '../../src/observe/trace-ids.ts';
import { methodLabel } from '../../src/wire/methods.ts';

const ROUTE = { index: 1, name: 'sip-signaling' };

/** A record that has just ended, as the observer hands it to the table. */
function ended(branch: string, method = 'INVITE', at = 10): TransactionRecord {
  const tx = new TransactionRecord(
    `${branch}|${method}`,
    ROUTE,
    method,
    methodLabel(method),
    'call@x',
    1,
    branch,
    'downstream',
    'udp',
    '127.0.0.1:5060',
    'ft',
    null,
    at,
    at + 32_000,
  );
  tx.traceId = newTraceId();
  tx.serverSpanId = newSpanId();
  tx.clientSpanId = newSpanId();
  tx.sampled = true;
  tx.finalResponseIn = at + 1;
  tx.outcome = 'completed';
  return tx;
}

describe('ended transactions table', () => {
  test('a lookup finds what a retransmission needs, exactly as the record had it', () => {
    const table = new EndedTransactions(100);
    const tx = ended('z9hG4bK-a', 'BYE', 42);
    tx.traceState = 'vendor=1';
    tx.sampled = false;
    tx.outcome = 'timeout';
    tx.finalResponseIn = -1;
    table.add(TRANSACTION_LINGER, tx, 5042);
    const found = table.find('z9hG4bK-a|BYE');
    assert.ok(found instanceof EndedTransaction);
    assert.deepEqual(
      { ...found },
      {
        route: ROUTE,
        method: 'BYE',
        methodLabel: 'BYE',
        traceId: tx.traceId,
        serverSpanId: tx.serverSpanId,
        clientSpanId: tx.clientSpanId,
        sampled: false,
        traceState: 'vendor=1',
        outcome: 'timeout',
        hadFinalResponse: false,
        retransmissions: 0,
        responseRetransmissions: 0,
      },
    );
    assert.equal(table.find('z9hG4bK-a|INVITE'), undefined, 'the method is part of the key');
    assert.equal(table.find('z9hG4bK-b|BYE'), undefined);
  });

  test('every lookup of one entry hands out the same object, so counts after the end add up', () => {
    const table = new EndedTransactions(100);
    table.add(TRANSACTION_LINGER, ended('z9hG4bK-s'), 5000);
    const first = table.find('z9hG4bK-s|INVITE')!;
    first.retransmissions++;
    const second = table.find('z9hG4bK-s|INVITE')!;
    assert.equal(second, first);
    assert.equal(second.retransmissions, 1);
  });

  test('ids that are not lowercase hex of the usual width come back as they were', () => {
    const table = new EndedTransactions(100);
    const tx = ended('z9hG4bK-odd');
    tx.traceId = 'ABCDEF0123456789ABCDEF0123456789';
    tx.clientSpanId = 'not-hex-at-all!!';
    table.add(TRANSACTION_LINGER, tx, 5000);
    const found = table.find('z9hG4bK-odd|INVITE')!;
    assert.equal(found.traceId, tx.traceId);
    assert.equal(found.serverSpanId, tx.serverSpanId);
    assert.equal(found.clientSpanId, tx.clientSpanId);
  });

  test('an id with characters beyond ASCII comes back as it was (no character is taken modulo 128)', () => {
    const table = new EndedTransactions(100);
    const tx = ended('z9hG4bK-wide');
    // U+0131 and U+0161 share their low seven bits with '1' and 'a'.
    tx.serverSpanId = '0123456789abcd\u0131\u0161';
    table.add(TRANSACTION_LINGER, tx, 5000);
    assert.equal(table.find('z9hG4bK-wide|INVITE')!.serverSpanId, tx.serverSpanId);
  });

  test('an id whose last character is not hex comes back as it was, its neighbours too', () => {
    const table = new EndedTransactions(100);
    const tx = ended('z9hG4bK-late');
    tx.clientSpanId = '0123456789abcdeG';
    table.add(TRANSACTION_LINGER, tx, 5000);
    const found = table.find('z9hG4bK-late|INVITE')!;
    assert.deepEqual(
      [found.traceId, found.serverSpanId, found.clientSpanId],
      [tx.traceId, tx.serverSpanId, tx.clientSpanId],
    );
  });

  test('an extension method and a tracestate come back from the side table', () => {
    const table = new EndedTransactions(100);
    const tx = ended('z9hG4bK-x', 'FOO');
    tx.traceState = 'a=1,b=2';
    table.add(TRANSACTION_LINGER, tx, 5000);
    const found = table.find('z9hG4bK-x|FOO')!;
    assert.equal(found.method, 'FOO');
    assert.equal(found.methodLabel, 'other');
    assert.equal(found.traceState, 'a=1,b=2');
    table.drain(5000);
    assert.equal(table.find('z9hG4bK-x|FOO'), undefined);
  });

  test('each linger kind expires on its own delay, oldest first', () => {
    const table = new EndedTransactions(100);
    table.add(TRANSACTION_LINGER, ended('t1'), 5000);
    table.add(ACK_LINGER, ended('a1', 'ACK'), 1280);
    table.add(TRANSACTION_LINGER, ended('t2'), 5100);
    assert.equal(table.size, 3);
    table.drain(1279);
    assert.equal(table.size, 3, 'nothing is due yet');
    table.drain(1280);
    assert.equal(table.find('a1|ACK'), undefined);
    assert.ok(table.find('t1|INVITE'));
    table.drain(5000);
    assert.equal(table.find('t1|INVITE'), undefined);
    assert.ok(table.find('t2|INVITE'));
    table.drain(5100);
    assert.equal(table.size, 0);
  });

  test('past its bound a linger kind lets its oldest entry go early; the other kind keeps its own', () => {
    const table = new EndedTransactions(3);
    table.add(ACK_LINGER, ended('ack', 'ACK'), 100);
    for (let i = 0; i < 5; i++) table.add(TRANSACTION_LINGER, ended(`b${i}`), 5000 + i);
    assert.equal(table.size, 4);
    assert.equal(table.find('b0|INVITE'), undefined);
    assert.equal(table.find('b1|INVITE'), undefined);
    for (const b of ['b2', 'b3', 'b4']) assert.ok(table.find(`${b}|INVITE`), b);
    assert.ok(table.find('ack|ACK'));
  });

  test('a lookup after clear() finds nothing and the table fills again', () => {
    const table = new EndedTransactions(10);
    table.add(TRANSACTION_LINGER, ended('c'), 5000);
    table.clear();
    assert.equal(table.size, 0);
    assert.equal(table.find('c|INVITE'), undefined);
    table.add(TRANSACTION_LINGER, ended('c'), 6000);
    assert.ok(table.find('c|INVITE'));
  });

  test('matches a Map under any sequence of adds, lookups and drains (growth and deletion included)', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        ack: fc.boolean(),
        n: fc.integer({ min: 1, max: 400 }),
      }),
      fc.record({ kind: fc.constant('drain' as const), by: fc.integer({ min: 0, max: 3000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const max = 300; // small enough that runs hit the bound, while the table still grows twice
        const table = new EndedTransactions(max);
        // The model: per linger kind, key → { traceId, expiresAt } in the order added.
        const model = { ack: new Map<string, { traceId: string; expiresAt: number }>(), tx: new Map() };
        let now = 0;
        let serial = 0;
        for (const o of ops) {
          if (o.kind === 'add') {
            const kind = o.ack ? model.ack : model.tx;
            for (let k = 0; k < o.n; k++) {
              now += 1;
              const tx = ended(`z9hG4bK-${serial++}`, o.ack ? 'ACK' : 'INVITE', now);
              if (serial % 7 === 0) tx.traceState = `k=${serial}`;
              const expiresAt = now + (o.ack ? 1280 : 5000);
              if (kind.size >= max) kind.delete(kind.keys().next().value!);
              table.add(o.ack ? ACK_LINGER : TRANSACTION_LINGER, tx, expiresAt);
              kind.set(tx.key, { traceId: tx.traceId, expiresAt });
            }
          } else {
            now += o.by;
            table.drain(now);
            for (const kind of [model.ack, model.tx])
              for (const [key, v] of kind) if (v.expiresAt <= now) kind.delete(key);
          }
          assert.equal(table.size, model.ack.size + model.tx.size);
        }
        for (const kind of [model.ack, model.tx])
          for (const [key, v] of kind) assert.equal(table.find(key)?.traceId, v.traceId, key);
        table.drain(Number.POSITIVE_INFINITY);
        assert.equal(table.size, 0);
        // biome-ignore lint/complexity/useLiteralKeys: a private field, read to check that it does not leak
        assert.equal(table['rare'].size, 0, 'side data goes with its entry');
        for (let s = 0; s < serial; s++) {
          for (const m of ['INVITE', 'ACK']) {
            const key = `z9hG4bK-${s}|${m}`;
            if (!model.ack.has(key) && !model.tx.has(key)) assert.equal(table.find(key), undefined, key);
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});
