/**
 * Properties of the wire layer over mutated corpus messages, shared by the
 * bounded test (fuzz-properties.test.ts) and the long run (bench/fuzz-wire.ts).
 *
 * Inputs are the 62 corpus files plus the RFC 5118 wire forms, damaged by a few
 * byte-level mutations (flips, inserted separators and line breaks, cuts,
 * duplicated lines). Each property throws on a violation, so fast-check can
 * shrink the mutation list to a minimal counterexample.
 */
import fc from 'fast-check';
import { EditList } from '../../src/wire/edit-list.ts';
import { frameDatagram } from '../../src/wire/frame-datagram.ts';
import { HeaderId } from '../../src/wire/header-names.ts';
import { readCSeq, readMaxForwards } from '../../src/wire/read-cseq.ts';
import { locateAddress, readParam, readTag, readUser } from '../../src/wire/read-name-addr.ts';
import { readSipUri } from '../../src/wire/read-sip-uri.ts';
import { readTokenList } from '../../src/wire/read-token-list.ts';
import {
  isAcceptableTracestate,
  parseSessionId,
  parseTraceId,
  parseTraceparent,
} from '../../src/wire/read-trace-context.ts';
import { readVia } from '../../src/wire/read-via.ts';
import { DEFAULT_SCAN_LIMITS, scanMessage } from '../../src/wire/scan.ts';
import { ScanCode } from '../../src/wire/scan-codes.ts';
import { F_NAME_END, FIELD_STRIDE, type SipMessage } from '../../src/wire/sip-message.ts';
import { DEFAULT_STREAM_LIMITS } from '../../src/wire/stream-framer.ts';
import { loadCorpus } from '../support/corpus.ts';
import { describeFrames, feedChunks, sameFrames, splitAt } from './framing.ts';
import { addProxyEdits, type SplicedEdit, spliceReference, unspliceReference } from './proxy-edit.ts';

/** Every corpus input: the 62 files as archived and the 12 RFC 5118 wire forms. */
export const FUZZ_INPUTS: readonly { label: string; bytes: Buffer }[] = [
  ...loadCorpus().map((f) => ({ label: `${f.set}/${f.name}`, bytes: f.raw })),
  ...loadCorpus()
    .filter((f) => f.set === 'rfc5118')
    .map((f) => ({ label: `${f.set}/${f.name}#wire`, bytes: f.wire })),
];

/** Bytes that matter to a SIP scanner: line breaks, NUL, blanks and the separators. */
const SPECIAL = Buffer.from('\r\n\0 \t:,;="<>[]/\\@', 'latin1');

export type Mutation =
  | { op: 'flip'; pos: number; byte: number }
  | { op: 'insert'; pos: number; byte: number }
  | { op: 'delete'; pos: number; len: number }
  | { op: 'truncate'; pos: number }
  | { op: 'dup-line'; pos: number };

const byteArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('flip' as const), pos: fc.nat(), byte: byteArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('insert' as const), pos: fc.nat(), byte: byteArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('delete' as const),
      pos: fc.nat(),
      len: fc.integer({ min: 1, max: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), pos: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('dup-line' as const), pos: fc.nat() }) },
);

export interface MutatedInput {
  input: number;
  mutations: Mutation[];
}

export const mutatedInputArb: fc.Arbitrary<MutatedInput> = fc.record({
  input: fc.nat(FUZZ_INPUTS.length - 1),
  mutations: fc.array(mutationArb, { maxLength: 6 }),
});

/** Apply the mutations in order; positions wrap around the current length. */
export function mutate(m: MutatedInput): Buffer {
  let b = FUZZ_INPUTS[m.input].bytes;
  for (const mu of m.mutations) {
    const n = b.length;
    const pos = n === 0 ? 0 : mu.pos % (n + 1);
    switch (mu.op) {
      case 'flip':
        if (n > 0) {
          b = Buffer.from(b);
          b[pos % n] = mu.byte;
        }
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, pos), Buffer.from([mu.byte]), b.subarray(pos)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, pos), b.subarray(Math.min(n, pos + mu.len))]);
        break;
      case 'truncate':
        b = b.subarray(0, pos);
        break;
      case 'dup-line': {
        // Duplicate the line that holds `pos` (a repeated header field, start line or body line).
        const s = pos === 0 ? 0 : b.lastIndexOf(0x0a, pos - 1) + 1;
        const lf = b.indexOf(0x0a, pos);
        const e = lf === -1 ? n : lf + 1;
        b = Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]);
        break;
      }
    }
  }
  return b;
}

export function describeInput(m: MutatedInput): string {
  const b = mutate(m);
  return `${FUZZ_INPUTS[m.input].label} ${JSON.stringify(m.mutations)} -> ${JSON.stringify(b.toString('latin1'))}`;
}

class PropertyViolation extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new PropertyViolation(what);
}

const CODES: ReadonlySet<string> = new Set(Object.values(ScanCode));

/** Every offset in the message lies inside its buffer and the ranges nest as documented. */
export function checkMessageOffsets(msg: SipMessage, code: ScanCode): void {
  const n = msg.buf.length;
  const inBuf = (x: number) => Number.isInteger(x) && x >= 0 && x <= n;
  check(
    inBuf(msg.start) && inBuf(msg.end) && msg.start <= msg.end,
    `start/end ${msg.start}/${msg.end} of ${n}`,
  );
  check(inBuf(msg.startLineEnd) && msg.startLineEnd > msg.start, 'startLineEnd');
  if (msg.isRequest) {
    check(inBuf(msg.methodStart) && inBuf(msg.methodEnd) && msg.methodStart <= msg.methodEnd, 'method range');
    check(inBuf(msg.uriStart) && inBuf(msg.uriEnd) && msg.uriStart <= msg.uriEnd, 'uri range');
    check(msg.uriEnd <= msg.startLineEnd, 'uri inside the start line');
    void msg.method;
    void msg.requestUri;
  } else {
    check(inBuf(msg.reasonStart) && inBuf(msg.reasonEnd) && msg.reasonStart <= msg.reasonEnd, 'reason range');
    check(msg.statusCode === 0 || (msg.statusCode >= 100 && msg.statusCode <= 699), 'status code range');
    void msg.reason;
  }
  check(msg.fieldCount >= 0 && msg.fieldCount <= DEFAULT_SCAN_LIMITS.maxHeaderFields, 'fieldCount');
  let prevEnd = msg.startLineEnd;
  for (let i = 0; i < msg.fieldCount; i++) {
    const ls = msg.fieldLineStart(i);
    const vs = msg.fieldValueStart(i);
    const ve = msg.fieldValueEnd(i);
    const le = msg.fieldLineEnd(i);
    check(ls >= prevEnd && ls < le && ls <= vs && vs <= ve && ve <= le && le <= n, `field ${i} ranges`);
    const ne = msg.fields[i * FIELD_STRIDE + F_NAME_END];
    check(ne > ls && ne <= vs, `field ${i} name end`);
    prevEnd = le;
  }
  if (code === ScanCode.OK) {
    check(
      msg.headersEnd >= prevEnd && msg.bodyStart > msg.headersEnd && msg.bodyStart <= msg.end,
      'body offsets',
    );
    if (msg.contentLength >= 0) check(msg.end - msg.bodyStart === msg.contentLength, 'body = Content-Length');
  }
}

/** Run every reader on every field it applies to; returns a small digest so nothing is optimised away. */
export function runReaders(msg: SipMessage): number {
  const buf = msg.buf;
  let digest = 0;
  if (msg.isRequest) {
    const u = readSipUri(buf, msg.uriStart, msg.uriEnd);
    if (u !== null) digest += u.port;
  }
  for (let i = 0; i < msg.fieldCount; i++) {
    const s = msg.fieldValueStart(i);
    const e = msg.fieldValueEnd(i);
    switch (msg.fieldId(i)) {
      case HeaderId.VIA: {
        let at = s;
        for (let k = 0; k <= e - s; k++) {
          const v = readVia(buf, at, e);
          if (v === null) break;
          check(v.end >= at && v.end <= e, 'via end');
          check(v.rportNameEnd === -1 || (v.rportNameEnd > at && v.rportNameEnd <= e), 'rportNameEnd');
          check(v.port >= 0 && v.port <= 65535 && v.rport >= -1 && v.rport <= 65535, 'via port');
          if (v.next === -1) break;
          check(v.next > at && v.next < e, 'via next moves forward');
          at = v.next;
        }
        break;
      }
      case HeaderId.CSEQ: {
        const c = readCSeq(buf, s, e);
        if (c !== null) check(c.seq >= 0 && c.seq <= 0x7fffffff && c.method.length > 0, 'cseq');
        break;
      }
      case HeaderId.MAX_FORWARDS: {
        const n = readMaxForwards(buf, s, e);
        check(n >= -1 && n <= 255, 'max-forwards');
        break;
      }
      case HeaderId.FROM:
      case HeaderId.TO:
      case HeaderId.CONTACT:
      case HeaderId.ROUTE:
      case HeaderId.RECORD_ROUTE: {
        const span = locateAddress(buf, s, e);
        if (span !== null) {
          check(span.uriStart >= s && span.uriStart <= span.uriEnd && span.uriEnd <= e, 'address span');
          check(span.paramsStart >= span.uriEnd && span.paramsStart <= e, 'params start');
          const u = readSipUri(buf, span.uriStart, span.uriEnd);
          if (u !== null) digest += u.host.length;
          digest += readParam(buf, span.paramsStart, e, 'expires')?.length ?? 0;
        }
        digest += readTag(buf, s, e)?.length ?? 0;
        digest += readUser(buf, s, e)?.length ?? 0;
        break;
      }
      case HeaderId.REQUIRE:
      case HeaderId.PROXY_REQUIRE:
        digest += readTokenList(buf, s, e).length;
        break;
      default: {
        const text = buf.toString('latin1', s, e);
        if (parseTraceparent(text) !== null) digest++;
        if (parseTraceId(text) !== null) digest++;
        if (parseSessionId(text) !== null) digest++;
        if (isAcceptableTracestate(text)) digest++;
      }
    }
  }
  digest += msg.findByName('x-unknown-name');
  return digest;
}

/** Property 1: a mutated message as a UDP datagram, then every reader on it. */
export function datagramProperty(m: MutatedInput): void {
  const buf = mutate(m);
  const r = frameDatagram(buf);
  check(CODES.has(r.code), `unknown code ${r.code}`);
  check(r.at >= -1 && r.at <= buf.length, 'at');
  if (r.message === null) {
    check(r.code !== ScanCode.OK, 'ok without a message');
    return;
  }
  checkMessageOffsets(r.message, r.code);
  runReaders(r.message);
  if (r.code === ScanCode.OK && r.message.isRequest) {
    // The proxy edit of any scannable request splices exactly its own bytes.
    const msg = r.message;
    const edits = new EditList();
    const record: SplicedEdit[] = [];
    addProxyEdits(msg, edits, record);
    const out = Buffer.concat(edits.apply(buf, msg.start, msg.end));
    check(out.equals(spliceReference(buf, msg.start, msg.end, record)), 'proxy edit = reference splice');
    const back = unspliceReference(out, buf, msg.start, record);
    check(back?.equals(buf.subarray(msg.start, msg.end)) === true, 'proxy edit removed = original');
  }
}

/** Property 2: a pipeline of mutated messages over TCP, chunked at random, frames as when whole. */
export interface StreamCase {
  messages: { input: MutatedInput; keepalive: number }[];
  cuts: number[];
}

export const streamCaseArb: fc.Arbitrary<StreamCase> = fc.record({
  messages: fc.array(fc.record({ input: mutatedInputArb, keepalive: fc.nat(3) }), {
    minLength: 1,
    maxLength: 4,
  }),
  cuts: fc.array(fc.nat(), { maxLength: 10 }),
});

const KEEPALIVES = [Buffer.alloc(0), Buffer.from('\r\n'), Buffer.from('\r\n\r\n'), Buffer.from('\n')];
const SMALL_LIMITS = Object.freeze({ ...DEFAULT_STREAM_LIMITS, maxMessageBytes: 1024 });

export function streamBytes(c: StreamCase): Buffer {
  return Buffer.concat(c.messages.flatMap((x) => [KEEPALIVES[x.keepalive], mutate(x.input)]));
}

export function streamProperty(c: StreamCase): void {
  const stream = streamBytes(c);
  const chunks = splitAt(
    stream,
    c.cuts.map((x) => x % (stream.length + 1)),
  );
  const whole = feedChunks([stream]);
  const chunked = feedChunks(chunks);
  check(sameFrames(whole, chunked), `chunked ${describeFrames(chunked)} != whole ${describeFrames(whole)}`);
  for (const f of whole)
    if (f.bytes !== null) check(stream.includes(f.bytes), 'a message is a view of the stream');
  // With a small bound, the framer never holds more than maxMessageBytes between calls.
  feedChunks(chunks, SMALL_LIMITS, (framer) => {
    check(framer.bufferedBytes <= SMALL_LIMITS.maxMessageBytes, `buffered ${framer.bufferedBytes}`);
  });
}

/** Property 3: arbitrary non-overlapping edits apply as the reference splice, and undo to the original. */
export interface EditCase {
  input: MutatedInput;
  regions: {
    cut: number;
    inserts: number;
    op: 'none' | 'remove' | 'replace';
    len: number;
    replaceLen: number;
  }[];
  order: number[];
}

export const editCaseArb: fc.Arbitrary<EditCase> = fc.record({
  input: mutatedInputArb,
  regions: fc.array(
    fc.record({
      cut: fc.nat(),
      inserts: fc.nat(2),
      op: fc.constantFrom('none' as const, 'remove' as const, 'replace' as const),
      len: fc.nat(40),
      replaceLen: fc.nat(6),
    }),
    { maxLength: 8 },
  ),
  order: fc.array(fc.nat(), { maxLength: 8 }),
});

let insertSerial = 0;

export function editProperty(c: EditCase): void {
  const buf = mutate(c.input);
  // A message range inside the buffer, as after frameDatagram (dblreq).
  const start = Math.min(3, buf.length);
  const end = buf.length;
  const cuts = [...new Set(c.regions.map((r) => start + (r.cut % (end - start + 1))))].sort((a, b) => a - b);
  // Per region: inserts at the cut, then at most one removal/replacement that stops before the next cut.
  const regionEdits: SplicedEdit[][] = cuts.map((cut, i) => {
    const r = c.regions[i];
    const list: SplicedEdit[] = [];
    for (let k = 0; k < r.inserts; k++) {
      list.push({ start: cut, end: cut, bytes: Buffer.from(`<ins${insertSerial++ % 1000}>`, 'latin1') });
    }
    const limit = i + 1 < cuts.length ? cuts[i + 1] : end;
    const len = Math.min(r.len, limit - cut);
    if (r.op !== 'none' && len > 0) {
      const bytes = r.op === 'remove' ? Buffer.alloc(0) : Buffer.from('R'.repeat(r.replaceLen), 'latin1');
      list.push({ start: cut, end: cut + len, bytes });
    }
    return list;
  });
  // Regions are added in a shuffled order; within a region the order is kept (it decides same-offset order).
  const order = regionEdits.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = (c.order[i % Math.max(1, c.order.length)] ?? 0) % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const edits = new EditList();
  const record: SplicedEdit[] = [];
  for (const i of order) {
    for (const e of regionEdits[i]) {
      if (e.end === e.start) edits.insert(e.start, e.bytes);
      else if (e.bytes.length === 0) edits.remove(e.start, e.end);
      else edits.replace(e.start, e.end, e.bytes);
      record.push(e);
    }
  }
  const chunks = edits.apply(buf, start, end);
  const out = Buffer.concat(chunks);
  check(out.equals(spliceReference(buf, start, end, record)), 'apply = reference splice');
  const back = unspliceReference(out, buf, start, record);
  check(back?.equals(buf.subarray(start, end)) === true, 'removing the edits gives back the original');
  // Unedited bytes are never copied: every chunk is either an edit's bytes or a view of buf.
  for (const ch of chunks)
    check(ch.buffer === buf.buffer || record.some((e) => e.bytes === ch), 'chunk origin');
}

/** Property 4: the scanner alone on a random range of a mutated buffer (start > 0, end < length). */
export function rangeProperty(m: MutatedInput, a: number, b: number): void {
  const buf = mutate(m);
  const s = buf.length === 0 ? 0 : a % (buf.length + 1);
  const e = s + (b % (buf.length - s + 1));
  const r = scanMessage(buf, s, e);
  check(CODES.has(r.code), 'code');
  if (r.message !== null) {
    check(r.message.start >= s && r.message.end <= e, 'message inside the range');
    for (let i = 0; i < r.message.fieldCount; i++)
      check(r.message.fieldLineEnd(i) <= e, 'field inside the range');
    runReaders(r.message);
  }
}

export const rangeArb = fc.tuple(mutatedInputArb, fc.nat(), fc.nat());

/** Property 5: readers look only at buf[start, end): a byte after `end` never changes their answer. */
const READERS: readonly [string, (b: Buffer, s: number, e: number) => unknown][] = [
  ['readVia', readVia],
  ['readCSeq', readCSeq],
  ['readMaxForwards', readMaxForwards],
  ['locateAddress', locateAddress],
  ['readTag', readTag],
  ['readUser', readUser],
  ['readSipUri', readSipUri],
  ['readTokenList', readTokenList],
  ['readParam', (b, s, e) => readParam(b, s, e, 'tag')],
];

/** Header-value material: the bytes the readers branch on, plus some letters and digits. */
const VALUE_ALPHABET = Buffer.from(
  'SIP/2.0UDP sip:[2001:db8::1]@h.example;branch=z9;rport,tag="a\\"b"<>?\t\r\n1',
  'latin1',
);

/** Every header value and Request-URI of the corpus: real material to cut short at any byte. */
const VALUE_POOL: readonly Buffer[] = FUZZ_INPUTS.flatMap(({ bytes }) => {
  const msg = frameDatagram(bytes).message;
  if (msg === null) return [];
  const out: Buffer[] = [];
  if (msg.isRequest) out.push(bytes.subarray(msg.uriStart, msg.uriEnd));
  for (let i = 0; i < msg.fieldCount; i++)
    out.push(bytes.subarray(msg.fieldValueStart(i), msg.fieldValueEnd(i)));
  return out;
});

export const valueArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(fc.nat(VALUE_POOL.length - 1), fc.nat()).map(([i, cut]) => {
    const v = VALUE_POOL[i];
    return v.subarray(0, cut % (v.length + 1));
  }),
  fc.array(fc.constantFrom(...VALUE_ALPHABET), { maxLength: 60 }).map((a) => Buffer.from(a)),
);

export const junkArb = fc.constantFrom(...SPECIAL, 0x61, 0x31, 0x3f);

export function boundsProperty(value: Buffer, prefixLen: number, junk: number): void {
  // The value sits after a prefix (readers get absolute offsets) and is followed by one junk byte.
  const prefix = Buffer.alloc(prefixLen % 8, 0x20);
  const exact = Buffer.concat([prefix, value]);
  const withJunk = Buffer.concat([exact, Buffer.from([junk])]);
  const s = prefix.length;
  const e = exact.length;
  for (const [name, read] of READERS) {
    const a = JSON.stringify(read(exact, s, e));
    const b = JSON.stringify(read(withJunk, s, e));
    check(a === b, `${name} looked past end: ${a} vs ${b}`);
  }
}

export const boundsArb = fc.tuple(valueArb, fc.nat(), junkArb);
