/**
 * The native header index (native/header-index.h) held to the scanner (src/wire/scan.ts): for any
 * bytes, a message read through the index is the message scanMessage makes, with the same code and
 * fault offset; and where the index says it indexed, its fields are the scanner's, so the fallback
 * cannot hide a difference. Shared by the bounded test (header-index.test.ts) and the long run
 * (bench/fuzz-wire.ts).
 */
import fc from 'fast-check';
import { nativeHeaderIndex } from '../../src/transport/batched-udp.ts';
import { INDEX_HEAD, INDEX_STRIDE, scanIndexed } from '../../src/wire/header-index.ts';
import { KNOWN_HEADER_NAMES } from '../../src/wire/header-names.ts';
import { DEFAULT_SCAN_LIMITS, type ScanLimits, type ScanResult, scanMessage } from '../../src/wire/scan.ts';
import { FIELD_STRIDE, type SipMessage } from '../../src/wire/sip-message.ts';
import { mutate, mutatedInputArb } from '../wire/wire-properties.ts';

/** The native index of buf[start, end), or null when the module is not built. */
export const indexNative = nativeHeaderIndex();

/** Everything a scan sets on a message, as plain data. */
export function messageShape(msg: SipMessage | null): unknown {
  if (msg === null) return null;
  return {
    start: msg.start,
    end: msg.end,
    isRequest: msg.isRequest,
    method: [msg.methodStart, msg.methodEnd],
    uri: [msg.uriStart, msg.uriEnd],
    status: msg.statusCode,
    reason: [msg.reasonStart, msg.reasonEnd],
    startLineEnd: msg.startLineEnd,
    headersEnd: msg.headersEnd,
    bodyStart: msg.bodyStart,
    contentLength: msg.contentLength,
    fields: Array.from(msg.fields.subarray(0, msg.fieldCount * FIELD_STRIDE)),
    firstField: Array.from(msg.firstField),
    fieldTally: Array.from(msg.fieldTally),
  };
}

export function resultShape(r: ScanResult): unknown {
  return { code: r.code, at: r.at, message: messageShape(r.message) };
}

class IndexMismatch extends Error {}

function same(a: unknown, b: unknown, what: string): void {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  if (x !== y) throw new IndexMismatch(`${what}:\n  scanner ${x}\n  index   ${y}`);
}

const out = new Int32Array(INDEX_STRIDE);
const TIGHT: ScanLimits = { maxHeaderFields: 6, maxFieldBytes: 48 };

/**
 * The message at an offset in a larger buffer, with bytes after it that would change the answer
 * were they read (a line end, an empty line): the index reads only its range, as the scanner does.
 * Returns the index's field count.
 */
export function indexProperty(bytes: Buffer, prefix: number): number {
  if (indexNative === null) throw new Error('native header index not built');
  const buf = Buffer.concat([
    Buffer.alloc(prefix, 0x41),
    bytes,
    Buffer.from('\n\r\n\r\nX: y\r\n\r\n', 'latin1'),
  ]);
  const start = prefix;
  const end = prefix + bytes.length;
  out.fill(-7);
  const count = indexNative(buf, start, end, out);
  if (count !== out[0]) throw new IndexMismatch(`returned ${count}, wrote ${out[0]}`);
  for (const limits of [DEFAULT_SCAN_LIMITS, TIGHT]) {
    const scanned = scanMessage(buf, start, end, limits, null);
    same(resultShape(scanned), resultShape(scanIndexed(buf, start, end, out, 0, limits, null)), 'result');
    if (count >= 0 && limits === DEFAULT_SCAN_LIMITS) {
      const msg = scanned.message as SipMessage;
      const indexed = Array.from(out.subarray(INDEX_HEAD, INDEX_HEAD + count * FIELD_STRIDE));
      same(messageShape(msg), { ...(messageShape(msg) as object), fields: indexed }, 'fields');
      same([msg.startLineEnd, msg.headersEnd, msg.bodyStart], [out[1], out[2], out[3]], 'section');
      if (msg.fieldCount !== count) throw new IndexMismatch(`${count} fields, scanner ${msg.fieldCount}`);
    }
  }
  return count;
}

const knownNameArb = fc
  .constantFrom(...KNOWN_HEADER_NAMES.map(([name]) => name))
  .chain((name) =>
    fc
      .array(fc.boolean(), { minLength: name.length, maxLength: name.length })
      .map((upper) => [...name].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('')),
  );
const nameArb = fc.oneof(
  { weight: 3, arbitrary: knownNameArb },
  { weight: 2, arbitrary: fc.stringMatching(/^[-.!%*_+`'~a-zA-Z0-9]{1,40}$/) },
  { weight: 1, arbitrary: fc.constantFrom('', 'Bad Name', 'x@y', 'ü') },
);
const wspArb = fc.constantFrom('', ' ', '\t', '  ', ' \t');
const valueByteArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
  { weight: 2, arbitrary: fc.constantFrom(0x20, 0x09, 0x3a) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const eolArb = fc.constantFrom('\r\n', '\r\n', '\n', '\r');
const lineArb = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .tuple(nameArb, wspArb, wspArb, fc.array(valueByteArb, { maxLength: 60 }), wspArb, eolArb)
      .map(([name, before, after, value, trail, eol]) =>
        Buffer.concat([
          Buffer.from(`${name}${before}:${after}`, 'latin1'),
          Buffer.from(value),
          Buffer.from(`${trail}${eol}`, 'latin1'),
        ]),
      ),
  },
  // A folded line, a line with no colon, or noise.
  {
    weight: 1,
    arbitrary: fc
      .tuple(wspArb, fc.string({ maxLength: 12 }))
      .map(([w, t]) => Buffer.from(` ${w}${t}\r\n`, 'latin1')),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('No colon here\r\n', ':\r\n', ' : x\r\n').map((s) => Buffer.from(s, 'latin1')),
  },
);
const startLineArb = fc.constantFrom(
  'INVITE sip:bob@example.com SIP/2.0',
  'BYE sip:b@h;transport=udp SIP/2.0',
  'SIP/2.0 200 OK',
  'SIP/2.0 180 Ringing',
  'sip/2.0 404 Not Found',
  'OPTIONS  sip:x SIP/2.0',
  'SIP/2.0 2000 OK',
  'INVITE sip:x SIP/3.0',
  '',
  '\r\nINVITE sip:x SIP/2.0',
);

/** Messages of the plain shape the index takes, and near misses of it, built field by field. */
export const builtMessageArb: fc.Arbitrary<Buffer> = fc
  .tuple(
    startLineArb,
    eolArb,
    fc.array(lineArb, { maxLength: 70 }),
    fc.constantFrom('\r\n', '\n', '', '\r'),
    fc.uint8Array({ maxLength: 40 }),
  )
  .map(([start, eol, lines, blank, body]) =>
    Buffer.concat([Buffer.from(`${start}${eol}`, 'latin1'), ...lines, Buffer.from(blank, 'latin1'), body]),
  );

export const indexCaseArb = fc.tuple(
  fc.oneof(
    mutatedInputArb.map(mutate),
    builtMessageArb,
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  ),
  fc.nat(9),
);

/** Show a case as text for a counterexample. */
export function describeIndexCase([bytes, prefix]: [Buffer, number]): string {
  return `prefix ${prefix}: ${JSON.stringify(bytes.toString('latin1'))}`;
}
