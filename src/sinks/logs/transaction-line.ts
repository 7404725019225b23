import { Buffer } from 'node:buffer';
import { type TransactionRecord, toEpochMs } from '../../observe/records.ts';
import { copyPlain, NOT_PLAIN, putAscii, putBytes, putInteger, putMs, putString } from './json-bytes.ts';
import { safeValue } from './safe-value.ts';

/**
 * The transaction line, written in the order pino writes a line: level,
 * time, the logger's bindings (`node`, `service`), the fields, `msg`.
 *
 * Why not pino's own `logger.info(fields, 'transaction')`: this line is
 * written once per transaction at each hop, and pino's generic path (an
 * object literal per line, a loop over its keys, a type switch and a Date
 * per line) was the largest part of the log sink's cost that code controls.
 * The shape is fixed, so it is written straight, as bytes into the writer's
 * queue: no string per line to build, hold, join and encode again. Every
 * other line still goes through pino. A test pins the text to pino's for the
 * same fields.
 */

/**
 * `time` as pino's isoTime writes it. A Date and its ISO text once per second (the date and time up
 * to the seconds); the milliseconds from a table: a Date per line cost ~1.5 µs, most of it in V8's
 * date formatting.
 */
export class IsoClock {
  private ms = -1;
  private text = '';
  private second = Number.NaN;
  private prefix = '';

  /** A wall-clock time in milliseconds since the epoch, as pino's isoTime writes it. */
  at(epochMs: number): string {
    const t = Math.floor(epochMs);
    if (t !== this.ms) {
      this.ms = t;
      const second = Math.floor(t / 1000);
      if (second !== this.second) {
        this.second = second;
        this.prefix = new Date(second * 1000).toISOString().slice(0, 20); // 2026-12-07T17:40:12.
      }
      this.text = this.prefix + MILLIS[t - second * 1000];
    }
    return this.text;
  }
}

/** "000Z" … "999Z". */
const MILLIS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

/**
 * When a transaction ended, on the wall clock its spans use: its final response sent back, or its
 * end. The line is written later, with
 * others (observe/deferred-events.ts), and its `time` must not say when.
 */
export function endedAtWall(tx: TransactionRecord): number {
  const end = endOf(tx);
  return end === -1 ? Date.now() : toEpochMs(end);
}

/** The final response sent back, else the end (performance.now() ms): where `duration_ms` stops. */
function endOf(tx: TransactionRecord): number {
  return tx.finalResponseOut !== -1 ? tx.finalResponseOut : tx.endedAt;
}

export interface LineOptions {
  maxValue: number;
  redactUsers: boolean;
}

/**
 * One transaction line, newline included, written into `out` from `p`: the
 * offset after it, or -1 when it does not end before `limit`. `bindings` is
 * the logger's bindings as pino writes them (`,"node":"a","service":"b"`).
 */
export function writeTransactionLine(
  out: Buffer,
  p: number,
  limit: number,
  tx: TransactionRecord,
  level: 'info' | 'warn',
  time: string,
  bindings: Uint8Array,
  opts: LineOptions,
): number {
  const maxValue = opts.maxValue;
  const end = endOf(tx);
  const rtt = tx.upstreamRttMs;
  p = putAscii(out, p, limit, level === 'warn' ? '{"level":"warn","time":"' : '{"level":"info","time":"');
  p = putAscii(out, p, limit, time);
  p = putAscii(out, p, limit, '"');
  p = putBytes(out, p, limit, bindings);
  p = putAscii(out, p, limit, ',"trace_id":');
  p = putString(out, p, limit, tx.traceId);
  p = putAscii(out, p, limit, ',"span_id":');
  p = putString(out, p, limit, tx.serverSpanId);
  p = putAscii(out, p, limit, ',"call_id":');
  p = putWireValue(out, p, limit, tx.callId, maxValue);
  p = putAscii(out, p, limit, ',"method":');
  p = putWireValue(out, p, limit, tx.method, maxValue);
  p = putAscii(out, p, limit, ',"cseq":');
  p = putInteger(out, p, limit, tx.cseq);
  p = putAscii(out, p, limit, ',"status":');
  p = putInteger(out, p, limit, tx.status);
  p = putAscii(out, p, limit, ',"status_class":');
  p = putNullable(out, p, limit, tx.statusClass);
  p = putAscii(out, p, limit, ',"outcome":');
  p = putNullable(out, p, limit, tx.outcome);
  p = putAscii(out, p, limit, ',"transport":');
  p = putString(out, p, limit, tx.transport);
  // Socket addresses (never wire text).
  p = putAscii(out, p, limit, ',"downstream":');
  p = putString(out, p, limit, tx.downstream);
  p = putAscii(out, p, limit, ',"upstream":');
  p = putNullable(out, p, limit, tx.upstream === '' ? null : tx.upstream);
  p = putAscii(out, p, limit, ',"upstream_rtt_ms":');
  p = rtt >= 0 ? putMs(out, p, limit, rtt) : putAscii(out, p, limit, 'null');
  p = putAscii(out, p, limit, ',"duration_ms":');
  p = end >= tx.requestIn ? putMs(out, p, limit, end - tx.requestIn) : putAscii(out, p, limit, 'null');
  p = putAscii(out, p, limit, ',"proxy_ms":');
  p = putMs(out, p, limit, tx.requestProxyMs + tx.responseProxyMs);
  p = putAscii(out, p, limit, ',"retransmissions":');
  p = putInteger(out, p, limit, tx.retransmissions);
  if (tx.generatedStatus !== 0) p = putAscii(out, p, limit, ',"generated":true');
  if (tx.stitchedBy !== null) {
    p = putAscii(out, p, limit, ',"stitched_by":');
    p = putString(out, p, limit, tx.stitchedBy);
  }
  const call = tx.call;
  if (tx.isInitialInvite && call !== null) {
    p = putAscii(out, p, limit, ',"from_user":');
    p = putUser(out, p, limit, call.fromUser, opts);
    p = putAscii(out, p, limit, ',"to_user":');
    p = putUser(out, p, limit, call.toUser, opts);
  }
  return putAscii(out, p, limit, ',"msg":"transaction"}\n');
}

/** Grown when a line is longer: lines past the usual are written as text only to be cut (fitLine). */
let scratch = Buffer.allocUnsafe(16 * 1024);

/** The transaction line as text (a line too long for a writer's room goes through fitLine). */
export function transactionLine(
  tx: TransactionRecord,
  level: 'info' | 'warn',
  time: string,
  bindings: Uint8Array,
  opts: LineOptions,
): string {
  for (;;) {
    const end = writeTransactionLine(scratch, 0, scratch.length, tx, level, time, bindings, opts);
    if (end >= 0) return scratch.toString('utf8', 0, end);
    scratch = Buffer.allocUnsafe(scratch.length * 2);
  }
}

/** A value off the wire, made safe (safeValue): the usual one, plain and short, is copied as it is. */
function putWireValue(out: Buffer, p: number, limit: number, s: string, maxValue: number): number {
  const end = s.length <= maxValue ? copyPlain(out, p, limit, s) : NOT_PLAIN;
  return end === NOT_PLAIN ? putString(out, p, limit, safeValue(s, maxValue)) : end;
}

function putNullable(out: Buffer, p: number, limit: number, s: string | null): number {
  return s === null ? putAscii(out, p, limit, 'null') : putString(out, p, limit, s);
}

/** logs.redact_users: a user part is shown as `***` (absent stays null). */
function putUser(out: Buffer, p: number, limit: number, user: string | null, opts: LineOptions): number {
  if (user === null) return putAscii(out, p, limit, 'null');
  return opts.redactUsers
    ? putAscii(out, p, limit, '"***"')
    : putWireValue(out, p, limit, user, opts.maxValue);
}
