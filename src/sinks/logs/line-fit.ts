import { Buffer } from 'node:buffer';
import { truncateBytes } from './safe-value.ts';

/**
 * The largest line written. Docker's json-file and journald drivers split
 * lines longer than 16 KiB into partial messages that log agents must stitch
 * back; 8 KiB stays clear of that with room for the agent's own envelope.
 */
export const MAX_LINE_BYTES = 8192;
/** Longest string kept in a line that had to be cut. */
const CORE_VALUE_BYTES = 256;

/** Fields a cut line keeps: what identifies the line and lets it be found. Everything else is optional. */
const CORE_FIELDS = new Set([
  'time',
  'level',
  'msg',
  'service',
  'node',
  'trace_id',
  'span_id',
  'call_id',
  'method',
  'cseq',
  'status',
  'status_class',
  'outcome',
  'reason',
  'remote',
  'state',
  'limit',
  'suppressed',
]);

/**
 * A line as written: unchanged when within `maxBytes`; otherwise its optional
 * fields are dropped (named in `dropped_fields`), long strings of the rest cut,
 * and `truncated: true` added. Every value is bounded before logging, so this
 * only runs when a configuration makes lines huge (max_value_bytes raised, a
 * large state detail): the JSON round trip costs nothing on the usual path.
 */
export function fitLine(line: string, maxBytes = MAX_LINE_BYTES): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: most lines pass without measuring.
  if (line.length * 3 <= maxBytes || Buffer.byteLength(line, 'utf8') <= maxBytes) return line;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    parsed = null;
  }
  const out: Record<string, unknown> = {};
  const dropped: string[] = [];
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (!CORE_FIELDS.has(key) || (value !== null && typeof value === 'object')) {
        if (dropped.length < 32) dropped.push(truncateBytes(key, 64));
        continue;
      }
      out[key] = typeof value === 'string' ? truncateBytes(value, CORE_VALUE_BYTES) : value;
    }
  }
  out.truncated = true;
  out.dropped_fields = dropped;
  let s = `${JSON.stringify(out)}\n`;
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  out.dropped_fields = undefined;
  s = `${JSON.stringify(out)}\n`;
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  return `${JSON.stringify({ time: out.time, level: out.level, msg: 'line too long', truncated: true })}\n`;
}
