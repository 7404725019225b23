import type { TransactionRecord } from '../../observe/records.ts';
import { safeValue } from './safe-value.ts';

/**
 * The transaction line, written as text in the order pino writes a line:
 * level, time, the logger's bindings (`node`, `service`), the fields, `msg`.
 *
 * Why not pino's own `logger.info(fields, 'transaction')`: this line is
 * written once per transaction at each hop, and pino's generic path (an
 * object literal per line, a loop over its keys, a type switch and a Date
 * per line) was the largest part of the log sink's cost that code controls.
 * The shape is fixed, so it is written straight. Every other line still goes
 * through pino. A test pins the text to pino's for the same fields.
 */

/** ".001" … ".999" without trailing zeros, "" for none: the fraction of a whole number of µs. */
const FRACTIONS = Array.from({ length: 1000 }, (_, i) =>
  i === 0 ? '' : `.${String(i).padStart(3, '0').replace(/0+$/, '')}`,
);

/**
 * Milliseconds rounded to µs (enough for a proxy that adds tens of µs, and short lines), as JSON
 * writes the rounded number (`12.345`, `0.5`, `3`). Turning a double into its shortest text is the
 * slowest part of a line's numbers (~80 ns each, three per line); the whole milliseconds are a small
 * integer, which converts fast, and the µs fraction comes from a table.
 */
export function msText(v: number): string {
  const us = Math.round(v * 1000);
  if (!(us >= 0 && us <= 0x7fffffff)) return String(us / 1000);
  const whole = Math.floor(us / 1000);
  return `${whole}${FRACTIONS[us - whole * 1000]}`;
}

/**
 * A string as JSON, as pino writes it: quoted, with `"` and `\` escaped. The
 * values here came through safeValue (no control characters, no lone
 * surrogates) or are socket addresses, so the quote-only path is the usual one.
 */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c < 0x20) return JSON.stringify(s);
  }
  return `"${s}"`;
}

const nullable = (s: string | null) => (s === null ? 'null' : jsonString(s));

/** `time` as pino's isoTime writes it, formatted once per millisecond. */
export class IsoClock {
  private at = -1;
  private text = '';

  now(): string {
    const t = Date.now();
    if (t !== this.at) {
      this.at = t;
      this.text = new Date(t).toISOString();
    }
    return this.text;
  }
}

export interface LineOptions {
  maxValue: number;
  redactUsers: boolean;
}

/**
 * One transaction line, newline included. `bindings` is the logger's
 * bindings as pino writes them (`,"node":"a","service":"b"`).
 */
export function transactionLine(
  tx: TransactionRecord,
  level: 'info' | 'warn',
  time: string,
  bindings: string,
  opts: LineOptions,
): string {
  const maxValue = opts.maxValue;
  const end = tx.finalResponseOut !== -1 ? tx.finalResponseOut : tx.endedAt;
  const rtt = tx.upstreamRttMs;
  let line =
    `{"level":"${level}","time":"${time}"${bindings}` +
    `,"trace_id":${jsonString(tx.traceId)}` +
    `,"span_id":${jsonString(tx.serverSpanId)}` +
    `,"call_id":${jsonString(safeValue(tx.callId, maxValue))}` +
    `,"method":${jsonString(safeValue(tx.method, maxValue))}` +
    `,"cseq":${tx.cseq},"status":${tx.status}` +
    `,"status_class":${nullable(tx.statusClass)}` +
    `,"outcome":${nullable(tx.outcome)}` +
    `,"transport":"${tx.transport}"` +
    // Socket addresses (never wire text).
    `,"downstream":${jsonString(tx.downstream)}` +
    `,"upstream":${tx.upstream === '' ? 'null' : jsonString(tx.upstream)}` +
    `,"upstream_rtt_ms":${rtt >= 0 ? msText(rtt) : 'null'}` +
    `,"duration_ms":${end >= tx.requestIn ? msText(end - tx.requestIn) : 'null'}` +
    `,"proxy_ms":${msText(tx.requestProxyMs + tx.responseProxyMs)}` +
    `,"retransmissions":${tx.retransmissions}`;
  if (tx.generatedStatus !== 0) line += ',"generated":true';
  if (tx.stitchedBy !== null) line += `,"stitched_by":${jsonString(tx.stitchedBy)}`;
  const call = tx.call;
  if (tx.isInitialInvite && call !== null)
    line += `,"from_user":${userField(call.fromUser, opts)}` + `,"to_user":${userField(call.toUser, opts)}`;
  return `${line},"msg":"transaction"}\n`;
}

/** logs.redact_users: a user part is shown as `***` (absent stays null). */
function userField(user: string | null, opts: LineOptions): string {
  if (user === null) return 'null';
  return opts.redactUsers ? '"***"' : jsonString(safeValue(user, opts.maxValue));
}
