import { Buffer } from 'node:buffer';

/**
 * Known SIP methods: the closed set used for metric labels. Anything else is
 * `other` in metrics and `_OTHER` in span attributes (OpenTelemetry convention
 * for unknown methods). RFC 4475 §3.1.1.5: `RE%47IST%45R` is an unknown method,
 * never decoded to REGISTER.
 */
export const KNOWN_METHODS = [
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'REGISTER',
  'OPTIONS',
  'PRACK',
  'SUBSCRIBE',
  'NOTIFY',
  'PUBLISH',
  'INFO',
  'REFER',
  'MESSAGE',
  'UPDATE',
] as const;
export type KnownMethod = (typeof KNOWN_METHODS)[number];
export const OTHER_METHOD = 'other';
export type MethodLabel = KnownMethod | typeof OTHER_METHOD;

const KNOWN_SET: ReadonlySet<string> = new Set(KNOWN_METHODS);
const KNOWN_BYTES = KNOWN_METHODS.map((m) => Buffer.from(m, 'latin1'));

/**
 * The method token buf[start, end) as a string: a known method is the shared
 * constant (no string per message, and map keys built from it hash a string
 * V8 has seen before), anything else is read as latin1.
 */
export function readMethod(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  for (let k = 0; k < KNOWN_BYTES.length; k++) {
    const known = KNOWN_BYTES[k];
    if (known.length !== n) continue;
    let i = 0;
    while (i < n && buf[start + i] === known[i]) i++;
    if (i === n) return KNOWN_METHODS[k];
  }
  return buf.toString('latin1', start, end);
}

/** The metric label for a method token (case-sensitive: RFC 3261 §7.1 methods are case-sensitive). */
export function methodLabel(method: string): MethodLabel {
  return KNOWN_SET.has(method) ? (method as KnownMethod) : OTHER_METHOD;
}

/** The status-class label for a status code; out-of-range codes never reach here (the scanner rejects them). */
export function statusClass(status: number): '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | '6xx' {
  if (status < 200) return '1xx';
  if (status < 300) return '2xx';
  if (status < 400) return '3xx';
  if (status < 500) return '4xx';
  if (status < 600) return '5xx';
  return '6xx';
}
