/**
 * The transaction line written straight is the line pino writes for the
 * same fields: same keys, order, escaping and numbers, for every optional
 * field, hostile wire values, both levels and redaction.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { CallRecord, type TransactionRecord } from '../../../src/observe/records.ts';
import { safeValue } from '../../../src/sinks/logs/safe-value.ts';
import { IsoClock, transactionLine, writeTransactionLine } from '../../../src/sinks/logs/transaction-line.ts';
import { completed, transactionRecord } from '../../support/records.ts';

const TIME = '2026-12-04T21:00:00.123Z';
const route = { index: 0, name: 'sip-gateway' };
const MAX_VALUE = 256;
/** Milliseconds rounded to µs, the number the line's *_ms fields write. */
const ms = (v: number) => Math.round(v * 1000) / 1000;

/** pino configured as the sink configures it (log-sink.ts createLogger), with a fixed time. */
function pinoLine(fields: Record<string, unknown>, level: 'info' | 'warn'): string {
  let out = '';
  const logger = pino(
    {
      level: 'info',
      base: { node: 'node-a' },
      messageKey: 'msg',
      timestamp: () => `,"time":"${TIME}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    {
      write: (s: string) => {
        out = s;
      },
    },
  );
  logger.child({ service: route.name })[level](fields, 'transaction');
  return out;
}

/** The fields of a transaction line, as the sink defined them before the line was written straight. */
function fields(tx: TransactionRecord, redactUsers: boolean): Record<string, unknown> {
  const end = tx.finalResponseOut !== -1 ? tx.finalResponseOut : tx.endedAt;
  const rtt = tx.upstreamRttMs;
  const line: Record<string, unknown> = {
    trace_id: tx.traceId,
    span_id: tx.serverSpanId,
    call_id: safeValue(tx.callId, MAX_VALUE),
    method: safeValue(tx.method, MAX_VALUE),
    cseq: tx.cseq,
    status: tx.status,
    status_class: tx.statusClass,
    outcome: tx.outcome,
    transport: tx.transport,
    downstream: tx.downstream,
    upstream: tx.upstream === '' ? null : tx.upstream,
    upstream_rtt_ms: rtt >= 0 ? ms(rtt) : null,
    duration_ms: end >= tx.requestIn ? ms(end - tx.requestIn) : null,
    proxy_ms: ms(tx.requestProxyMs + tx.responseProxyMs),
    retransmissions: tx.retransmissions,
  };
  if (tx.generatedStatus !== 0) line.generated = true;
  if (tx.stitchedBy !== null) line.stitched_by = tx.stitchedBy;
  const call = tx.call;
  if (tx.isInitialInvite && call !== null) {
    const user = (u: string | null) => (u === null ? null : redactUsers ? '***' : safeValue(u, MAX_VALUE));
    line.from_user = user(call.fromUser);
    line.to_user = user(call.toUser);
  }
  return line;
}

function record(over: { callId?: string; method?: string; toTag?: string | null } = {}): TransactionRecord {
  const tx = transactionRecord({ ...over, route, cseq: 314159, downstream: '[2001:db8::1]:5060' });
  tx.traceId = '0af7651916cd43dd8448eb211c80319c';
  tx.serverSpanId = 'b7ad6b7169203331';
  return tx;
}

function answered(tx: TransactionRecord): TransactionRecord {
  tx.upstream = '127.0.0.1:5070';
  tx.requestProxyMs = 0.0512;
  tx.responseProxyMs = 0.03;
  return completed(tx, {
    requestOut: 100.05,
    firstResponseIn: 101.123456,
    finalResponseIn: 102,
    finalResponseOut: 102.0301,
  });
}

function call(fromUser: string | null, toUser: string | null): CallRecord {
  return new CallRecord(
    'c',
    route,
    'x',
    'ft',
    fromUser,
    toUser,
    'a'.repeat(32),
    'b'.repeat(16),
    true,
    true,
    100,
  );
}

const BINDINGS = Buffer.from(',"node":"node-a","service":"sip-gateway"');

const OPTIONS = { maxValue: MAX_VALUE, redactUsers: false };

function assertLikePino(tx: TransactionRecord, level: 'info' | 'warn', redactUsers = false): void {
  const ours = transactionLine(tx, level, TIME, BINDINGS, { maxValue: MAX_VALUE, redactUsers });
  assert.equal(ours, pinoLine(fields(tx, redactUsers), level));
}

describe('transaction line', () => {
  test('an answered INVITE that starts a call, with users shown and redacted', () => {
    const tx = answered(record());
    tx.call = call('alice', 'bob');
    assertLikePino(tx, 'info');
    assertLikePino(tx, 'info', true);
    tx.call = call(null, 'bob');
    assertLikePino(tx, 'info');
  });

  test('a timeout with nothing from upstream: nulls where nothing was seen, at warn', () => {
    const tx = record({ method: 'BYE', toTag: 'tt' });
    tx.endedAt = 32_100;
    tx.outcome = 'timeout';
    tx.retransmissions = 10;
    assertLikePino(tx, 'warn');
    const open = record();
    assertLikePino(open, 'info');
  });

  test('generated answers and stitched legs add their fields', () => {
    const tx = answered(record());
    tx.generatedStatus = 483;
    tx.status = 483;
    tx.statusClass = '4xx';
    tx.stitchedBy = 'x-correlation';
    assertLikePino(tx, 'info');
  });

  test('wire values with quotes, backslashes, controls and UTF-8 escape as pino escapes them', () => {
    for (const callId of [
      'a"b@h',
      'back\\slash',
      'cr\r\nlf',
      'tab\there',
      'caf\xc3\xa9@h',
      '\xff\xfe',
      'x'.repeat(400),
    ]) {
      const tx = answered(record({ callId, method: 'X"\\' }));
      tx.call = call('jo"se\\', 'b\u0000');
      assertLikePino(tx, 'info');
    }
  });

  test('any latin1 wire text as Call-ID, method and users', () => {
    const wire = fc.string({
      unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
      maxLength: 300,
    });
    fc.assert(
      fc.property(wire, wire, wire, fc.boolean(), (callId, method, user, redact) => {
        const tx = answered(record({ callId, method }));
        tx.call = call(user, user);
        assertLikePino(tx, 'info', redact);
      }),
      { numRuns: 300 },
    );
  });

  test('written into a buffer at an offset: the same bytes, and nothing at or past the limit', () => {
    const tx = answered(record({ callId: 'caf\xc3\xa9"@h' }));
    tx.call = call('alice', 'bob');
    const text = Buffer.from(transactionLine(tx, 'info', TIME, BINDINGS, OPTIONS), 'utf8');
    const out = Buffer.alloc(text.length + 64, 0xee);
    const end = writeTransactionLine(out, 7, out.length, tx, 'info', TIME, BINDINGS, OPTIONS);
    assert.equal(end, 7 + text.length);
    assert.deepEqual(out.subarray(7, end), text);
    for (const limit of [7, 8, 30, 7 + text.length - 40, 7 + text.length - 1]) {
      const small = Buffer.alloc(out.length, 0xee);
      assert.equal(
        writeTransactionLine(small, 7, limit, tx, 'info', TIME, BINDINGS, OPTIONS),
        -1,
        String(limit),
      );
      assert.ok(
        small.subarray(limit).every((b) => b === 0xee),
        `written past the limit ${limit}`,
      );
    }
  });

  test('the clock writes ISO 8601 UTC with milliseconds', () => {
    const clock = new IsoClock();
    assert.match(clock.at(Date.now()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(
      clock.at(1_700_000_000_123.9),
      '2023-11-14T22:13:20.123Z',
      'a given time, cut to its millisecond',
    );
    assert.equal(clock.at(1_700_000_000_124.2), '2023-11-14T22:13:20.124Z');
  });

  test('the clock reads as Date does across seconds, days and years, forwards and back', () => {
    const clock = new IsoClock();
    const times = [
      1_700_000_000_999.5, 1_700_000_001_000, 1_700_000_000_000, 1_704_067_199_999, 1_704_067_200_000, 0, -1,
      -1000, -1001,
    ];
    for (let t = 1_765_000_000_000; t < 1_765_000_004_000; t += 7.3) times.push(t);
    for (const t of times) assert.equal(clock.at(t), new Date(Math.floor(t)).toISOString(), `at ${t}`);
  });
});
