/**
 * Every RFC 4475 / RFC 5118 torture message through the wire layer.
 *
 * The wire layer judges only framing and the start line. Faults in Via, CSeq,
 * the Request-URI or required fields are left for the proxy layer (RFC 3261
 * §16.3 step 1), so those messages scan `ok` here and their verdict column
 * (from ../shared/sip-corpus/README.md) is what the proxy will do later.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { EditList } from '../../src/wire/edit-list.ts';
import { frameDatagram } from '../../src/wire/frame-datagram.ts';
import { HeaderId } from '../../src/wire/header-names.ts';
import { readMaxForwards } from '../../src/wire/read-cseq.ts';
import { readVia } from '../../src/wire/read-via.ts';
import { scanMessage } from '../../src/wire/scan.ts';
import { ScanCode } from '../../src/wire/scan-codes.ts';
import type { SipMessage } from '../../src/wire/sip-message.ts';
import { type CorpusFile, loadCorpus } from '../support/corpus.ts';
import { messageBytes } from './bytes.ts';
import { describeFrames, type Frame, feedChunks, sameFrames, splitAt } from './framing.ts';
import {
  addProxyEdits,
  PROXY_VIA_LINE,
  type SplicedEdit,
  spliceReference,
  TRACE_ID_LINE,
  TRACEPARENT_LINE,
  unspliceReference,
} from './proxy-edit.ts';

type Verdict = 'FWD' | '400' | '420' | '483' | '501' | '505' | 'DROP';

const NO_VIA = 'no Via field';
const BAD_VIA = 'malformed top Via';

interface Expectation {
  /** What the proxy should do (README table). */
  verdict: Verdict;
  /** Scan outcome of the file as archived, framed as one UDP datagram. */
  code: ScanCode;
  /** Method of a request, or status code of a response (0: unreadable status). */
  start: string | number;
  /** Call-ID value, or null when the message has none (insuf). */
  callId: string | null;
  /** Branch of the top via-parm, null when it has none, or NO_VIA / BAD_VIA. */
  branch: string | null;
}

const SSG = 'SSG9559905523997077@hlau_4100';
const E = (
  verdict: Verdict,
  code: ScanCode,
  start: string | number,
  callId: string | null,
  branch: string | null,
): Expectation => ({ verdict, code, start, callId, branch });
const { OK } = ScanCode;

const RFC4475: Record<string, Expectation> = {
  wsinv: E('FWD', OK, 'INVITE', 'wsinv.ndaksdj@192.0.2.1', '390skdjuw'),
  intmeth: E(
    'FWD',
    OK,
    "!interesting-Method0123456789_*+`.%indeed'~",
    'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{',
    "z9hG4bK-.!%66*_+`'~",
  ),
  esc01: E('FWD', OK, 'INVITE', 'esc01.239409asdfakjkn23onasd0-3234', 'z9hG4bKkdjuw'),
  escnull: E('FWD', OK, 'REGISTER', 'escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd', 'z9hG4bKkdjuw'),
  esc02: E('FWD', OK, 'RE%47IST%45R', 'esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf', 'z9hG4bK209%fzsnel234'),
  lwsdisp: E('FWD', OK, 'OPTIONS', 'lwsdisp.1234abcd@funky.example.com', 'z9hG4bKkdjuw'),
  longreq: E(
    'FWD',
    OK,
    'INVITE',
    `longreq.one${'really'.repeat(20)}longcallid`,
    null /* the top Via (sip33.example.com) has no branch */,
  ),
  dblreq: E('FWD', OK, 'REGISTER', 'dblreq.0ha0isndaksdj99sdfafnl3lk233412', 'z9hG4bKkdjuw23492'),
  semiuri: E('FWD', OK, 'OPTIONS', 'semiuri.0ha0isndaksdj', 'z9hG4bKkdjuw'),
  transports: E('FWD', OK, 'OPTIONS', 'transports.kijh4akdnaqjkwendsasfdj', 'z9hG4bKkdjuw'),
  mpart01: E(
    'FWD',
    OK,
    'MESSAGE',
    '3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..',
    'z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-',
  ),
  unreason: E('FWD', OK, 200, 'unreason.1234ksdfak3j2erwedfsASdf', 'z9hG4bK1324923'),
  noreason: E('FWD', OK, 100, 'noreason.asndj203insdf99223ndf', 'z9hG4bK2398ndaoe'),
  badinv01: E('400', OK, 'INVITE', 'badinv01.0ha0isndaksdjasdf3234nas', BAD_VIA),
  clerr: E('400', ScanCode.BODY_TRUNCATED, 'INVITE', 'clerr.0ha0isndaksdjweiafasdk3', 'z9hG4bK-39234-23523'),
  ncl: E('400', ScanCode.BAD_CONTENT_LENGTH, 'INVITE', 'ncl.0ha0isndaksdj2193423r542w35', 'z9hG4bKkdjuw'),
  scalar02: E('400', OK, 'REGISTER', 'scalar02.23o0pd9vanlq3wnrlnewofjas9ui32', 'z9hG4bK342sdfoi3'),
  scalarlg: E('DROP', OK, 503, 'scalarlg.noase0of0234hn2qofoaf0232aewf2394r', 'z9hG4bKzzxdiwo34sw'),
  quotbal: E('FWD', OK, 'INVITE', 'quotbal.aksdj', 'z9hG4bKkdjuw39234'),
  ltgtruri: E('400', OK, 'INVITE', 'ltgtruri.1@192.0.2.5', null),
  lwsruri: E(
    '400',
    ScanCode.BAD_START_LINE,
    'INVITE',
    'lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423',
    'z9hG4bKkdjuw2395',
  ),
  lwsstart: E(
    '400',
    ScanCode.BAD_START_LINE,
    'INVITE',
    'lwsstart.dfknq234oi243099adsdfnawe3@example.com',
    'z9hG4bKkdjuw3923',
  ),
  trws: E('400', ScanCode.BAD_START_LINE, 'OPTIONS', 'trws.oicu34958239neffasdhr2345r', 'z9hG4bK299342093'),
  escruri: E('400', OK, 'INVITE', 'escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5', 'z9hG4bKkdjuw'),
  baddate: E('FWD', OK, 'INVITE', 'baddate.239423mnsadf3j23lj42--sedfnm234', 'z9hG4bKkdjuw'),
  regbadct: E('FWD', OK, 'REGISTER', 'regbadct.k345asrl3fdbv@10.0.0.1', 'z9hG4bKkdjuw'),
  badaspec: E('FWD', OK, 'OPTIONS', 'badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3', 'z9hG4bKkdju43234'),
  baddn: E('400', ScanCode.INCOMPLETE_HEADERS, 'OPTIONS', 'baddn.31415@c.example.com', 'z9hG4bKkdjuw'),
  badvers: E('505', ScanCode.UNSUPPORTED_VERSION, 'OPTIONS', 'badvers.31417@c.example.com', 'z9hG4bKkdjuw'),
  mismatch01: E('400', OK, 'OPTIONS', 'mismatch01.dj0234sxdfl3', 'z9hG4bKkdjuw'),
  mismatch02: E('501', OK, 'NEWMETHOD', 'mismatch02.dj0234sxdfl3', 'z9hG4bKkdjuw'),
  bigcode: E(
    'DROP',
    ScanCode.BAD_STATUS_CODE,
    0,
    'bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i',
    'z9hG4bK2398ndaoe',
  ),
  badbranch: E('FWD', OK, 'OPTIONS', 'badbranch.sadonfo23i420jv0as0derf3j3n', 'z9hG4bK'),
  insuf: E('400', OK, 'INVITE', null, 'z9hG4bKkdj.insuf'),
  unkscm: E('FWD', OK, 'OPTIONS', 'unkscm.nasdfasser0q239nwsdfasdkl34', 'z9hG4bKkdjuw39234'),
  novelsc: E('FWD', OK, 'OPTIONS', 'novelsc.asdfasser0q239nwsdfasdkl34', 'z9hG4bKkdjuw39234'),
  unksm2: E('FWD', OK, 'REGISTER', 'unksm2.daksdj@hyphenated-host.example.com', 'z9hG4bKkdjuw'),
  bext01: E('420', OK, 'OPTIONS', 'bext01.0ha0isndaksdj', 'z9hG4bKkdjuw'),
  invut: E('FWD', OK, 'INVITE', 'invut.0ha0isndaksdjadsfij34n23d', 'z9hG4bKkdjuw'),
  regaut01: E('FWD', OK, 'REGISTER', 'regaut01.0ha0isndaksdj', 'z9hG4bKkdjuw'),
  multi01: E('400', OK, 'INVITE', 'multi01.98asdh@192.0.2.1', 'z9hG4bKkdjuw'),
  mcl01: E(
    '400',
    ScanCode.DUPLICATE_CONTENT_LENGTH,
    'OPTIONS',
    'mcl01.fhn2323orihawfdoa3o4r52o3irsdf',
    'z9hG4bK293423',
  ),
  bcast: E('DROP', OK, 200, 'bcast.0384840201234ksdfak3j2erwedfsASdf', 'z9hG4bK1324923'),
  zeromf: E('483', OK, 'OPTIONS', 'zeromf.jfasdlfnm2o2l43r5u0asdfas', 'z9hG4bKkdjuw2349i'),
  cparam01: E('FWD', OK, 'REGISTER', 'cparam01.70710@saturn.example.com', 'z9hG4bKkdjuw'),
  cparam02: E('FWD', OK, 'REGISTER', 'cparam02.70710@saturn.example.com', 'z9hG4bKkdjuw'),
  regescrt: E('FWD', OK, 'REGISTER', 'regescrt.k345asrl3fdbv@192.0.2.1', 'z9hG4bKkdjuw'),
  sdp01: E('FWD', OK, 'INVITE', 'sdp01.ndaksdj9342dasdd', 'z9hG4bKkdjuw'),
  inv2543: E('FWD', OK, 'INVITE', 'inv2543.1717@ift.client.example.com', null),
  test: E('400', ScanCode.BAD_START_LINE, 'INVITE', 'test.0ha0isndaksdj@192.0.2.1', NO_VIA),
};

/** RFC 5118: `code` is the file as archived (bare LF, CL mismatches); every wire form scans ok. */
const RFC5118: Record<string, Expectation> = {
  'ipv6-good': E('FWD', OK, 'REGISTER', SSG, 'z9hG4bKas3-111'),
  'ipv6-bad': E('400', OK, 'REGISTER', SSG, 'z9hG4bKas3-111'),
  'port-ambiguous': E('FWD', OK, 'REGISTER', SSG, 'z9hG4bKas3-111'),
  'port-unambiguous': E('FWD', OK, 'REGISTER', SSG, 'z9hG4bKas3-111'),
  'via-received-param-with-delim': E('FWD', OK, 'BYE', SSG, 'z9hG4bKas3-111'),
  'via-received-param-no-delim': E('FWD', OK, 'OPTIONS', 'SSG95523997077@hlau_4100', 'z9hG4bKas3'),
  'ipv6-in-sdp': E('FWD', ScanCode.BODY_TRUNCATED, 'INVITE', SSG, 'z9hG4bKas3-111'),
  'mult-ip-in-header': E('FWD', OK, 'BYE', '997077@lau_4100', 'z9hG4bKas3-111'),
  'mult-ip-in-sdp': E('FWD', ScanCode.BODY_TRUNCATED, 'INVITE', SSG, 'z9hG4bKas3-111'),
  'ipv4-mapped-ipv6': E('FWD', OK, 'INVITE', SSG, 'z9hG4bKbh19'),
  'ipv6-bug-abnf-3-colons': E(
    'FWD',
    ScanCode.INCOMPLETE_HEADERS,
    'OPTIONS',
    'G9559905523997077@hlau_4100',
    'z9hG4bKas3-111',
  ),
  'ipv6-correct-abnf-2-colons': E(
    'FWD',
    ScanCode.INCOMPLETE_HEADERS,
    'OPTIONS',
    'G9559905523997077@hlau_4100',
    'z9hG4bKas3-111',
  ),
};

const CORPUS = loadCorpus();

function expectationOf(f: CorpusFile): Expectation {
  const e = (f.set === 'rfc4475' ? RFC4475 : RFC5118)[f.name];
  assert.ok(e !== undefined, `no expectation for ${f.set}/${f.name}`);
  return e;
}

function topBranch(msg: SipMessage): string | null {
  const i = msg.firstField[HeaderId.VIA];
  if (i === -1) return NO_VIA;
  const v = readVia(msg.buf, msg.fieldValueStart(i), msg.fieldValueEnd(i));
  return v === null ? BAD_VIA : v.branch;
}

/** What a correct parse must see, whatever the scan code. */
function assertParse(msg: SipMessage, e: Expectation, label: string): void {
  if (typeof e.start === 'string') {
    assert.equal(msg.isRequest, true, label);
    assert.equal(msg.method, e.start, label);
  } else {
    assert.equal(msg.isRequest, false, label);
    assert.equal(msg.statusCode, e.start, label);
  }
  assert.equal(msg.value(HeaderId.CALL_ID), e.callId, label);
  assert.equal(topBranch(msg), e.branch, label);
}

/** Every offset of a scanned message lies inside its buffer and in order. */
function assertOffsetsSane(msg: SipMessage): void {
  const n = msg.buf.length;
  assert.ok(msg.start >= 0 && msg.start <= msg.end && msg.end <= n);
  assert.ok(msg.startLineEnd <= n);
  for (let i = 0; i < msg.fieldCount; i++) {
    const ls = msg.fieldLineStart(i);
    const vs = msg.fieldValueStart(i);
    const ve = msg.fieldValueEnd(i);
    const le = msg.fieldLineEnd(i);
    assert.ok(msg.start <= ls && ls <= vs && vs <= ve && ve <= le && le <= n, `field ${i}`);
  }
}

const FWD_FILES = CORPUS.filter((f) => expectationOf(f).verdict === 'FWD');

describe('corpus: the files', () => {
  test('the corpus holds the 62 archived files: 50 of RFC 4475 and 12 of RFC 5118', () => {
    assert.equal(CORPUS.length, 62);
    assert.equal(CORPUS.filter((f) => f.set === 'rfc4475').length, 50);
    assert.equal(CORPUS.filter((f) => f.set === 'rfc5118').length, 12);
    assert.deepEqual(
      CORPUS.filter((f) => f.set === 'rfc4475')
        .map((f) => f.name)
        .sort(),
      Object.keys(RFC4475).sort(),
    );
    assert.deepEqual(
      CORPUS.filter((f) => f.set === 'rfc5118')
        .map((f) => f.name)
        .sort(),
      Object.keys(RFC5118).sort(),
    );
  });

  test('the README verdicts add up: 28 RFC 4475 messages forwarded, 3 responses dropped', () => {
    const v4475 = Object.values(RFC4475).map((e) => e.verdict);
    assert.equal(v4475.filter((v) => v === 'FWD').length, 28);
    assert.equal(v4475.filter((v) => v === 'DROP').length, 3);
  });

  test('the byte quirks the README lists are really in the files (they were not decoded)', () => {
    const get = (set: string, name: string) => CORPUS.find((f) => f.set === set && f.name === name)!.raw;
    const count = (b: Buffer, pred: (x: number) => boolean) => b.reduce((n, x) => n + (pred(x) ? 1 : 0), 0);
    assert.equal(
      count(get('rfc4475', 'intmeth'), (x) => x === 0),
      1,
    );
    assert.equal(
      count(get('rfc4475', 'intmeth'), (x) => x >= 0x80),
      32,
    );
    assert.equal(
      count(get('rfc4475', 'mpart01'), (x) => x === 0),
      2,
    );
    assert.equal(
      count(get('rfc4475', 'mpart01'), (x) => x >= 0x80),
      89,
    );
    assert.equal(get('rfc4475', 'longreq').length, 3515);
    assert.equal(get('rfc4475', 'dblreq').length, 750);
    assert.equal(get('rfc5118', 'ipv6-good').indexOf(0x0d), -1, 'RFC 5118 files end lines with LF alone');
  });

  test('the wire form of an RFC 5118 file has CRLF lines, a closed header section and a true Content-Length', () => {
    for (const f of CORPUS.filter((c) => c.set === 'rfc5118')) {
      const w = f.wire;
      for (let i = 0; i < w.length; i++) if (w[i] === 0x0a) assert.equal(w[i - 1], 0x0d, `${f.name} @${i}`);
      const head = w.indexOf('\r\n\r\n');
      assert.ok(head > 0, f.name);
      const m = frameDatagram(w).message!;
      assert.equal(m.contentLength, w.length - head - 4, f.name);
    }
  });
});

describe('corpus: each message framed as a UDP datagram', () => {
  for (const f of CORPUS) {
    const e = expectationOf(f);
    test(`${f.set}/${f.name} scans as ${e.code} and parses what the RFC describes`, () => {
      const r = frameDatagram(f.raw);
      assert.equal(r.code, e.code, `at ${r.at}`);
      assert.ok(r.message !== null);
      assertOffsetsSane(r.message);
      assertParse(r.message, e, 'raw');
      if (r.code === OK && r.message.contentLength >= 0) {
        assert.equal(r.message.bodyLength, r.message.contentLength);
      }
      if (f.set === 'rfc5118') {
        const w = frameDatagram(f.wire);
        assert.equal(w.code, OK, `wire form: ${w.code} at ${w.at}`);
        assertParse(w.message!, e, 'wire form');
        assert.equal(w.message!.bodyLength, w.message!.contentLength);
        assert.ok(messageBytes(w.message!).equals(f.wire));
      }
    });
  }

  test('dblreq is cut after its 300-byte REGISTER; clerr keeps its 9999 claim; inv2543 runs to the end', () => {
    const at = (name: string) => frameDatagram(CORPUS.find((f) => f.name === name)!.raw).message!;
    assert.equal(at('dblreq').end, 300);
    assert.equal(at('clerr').contentLength, 9999);
    assert.equal(at('inv2543').contentLength, -1);
    assert.equal(at('inv2543').bodyLength, 105);
    assert.equal(at('mpart01').bodyLength, 553);
  });
});

describe('corpus: the proxy edit of every forwarded message is byte-exact', () => {
  for (const f of FWD_FILES) {
    test(`${f.set}/${f.name}: Via, Max-Forwards and trace headers are the only changed bytes`, () => {
      const buf = f.wire;
      const r = frameDatagram(buf);
      assert.equal(r.code, OK);
      const msg = r.message!;
      const edits = new EditList();
      const record: SplicedEdit[] = [];
      let maxForwards = -1;
      if (msg.isRequest) {
        maxForwards = addProxyEdits(msg, edits, record);
        assert.ok(maxForwards > 0, 'a forwarded request has a usable Max-Forwards or gets one');
      } else {
        // A response: the proxy takes its own (top) via-parm off and adds the trace headers.
        const i = msg.firstField[HeaderId.VIA];
        const top = readVia(buf, msg.fieldValueStart(i), msg.fieldValueEnd(i))!;
        const s = top.next === -1 ? msg.fieldLineStart(i) : msg.fieldValueStart(i);
        const t = top.next === -1 ? msg.fieldLineEnd(i) : top.next;
        edits.remove(s, t);
        record.push({ start: s, end: t, bytes: Buffer.alloc(0) });
        for (const line of [TRACEPARENT_LINE, TRACE_ID_LINE]) {
          edits.insert(msg.headersEnd, line);
          record.push({ start: msg.headersEnd, end: msg.headersEnd, bytes: line });
        }
      }
      const out = Buffer.concat(edits.apply(buf, msg.start, msg.end));
      const original = buf.subarray(msg.start, msg.end);

      // The output is the original with exactly those spans spliced in...
      assert.ok(out.equals(spliceReference(buf, msg.start, msg.end, record)));
      // ...and taking exactly those edits out again gives back the original bytes.
      const back = unspliceReference(out, buf, msg.start, record);
      assert.ok(back !== null, 'every edit is where it was put');
      assert.ok(back.equals(original));
      assert.equal(
        out.length,
        original.length + record.reduce((n, e) => n + e.bytes.length - (e.end - e.start), 0),
      );

      // The edited message still scans, with the edit visible and every other field untouched.
      const again = scanMessage(out, 0, out.length);
      assert.equal(again.code, OK);
      const m2 = again.message!;
      assert.equal(m2.value(HeaderId.CALL_ID), msg.value(HeaderId.CALL_ID));
      assert.equal(m2.count(HeaderId.TRACEPARENT), 1);
      assert.equal(m2.count(HeaderId.X_TRACE_ID), 1);
      assert.ok(out.subarray(m2.bodyStart).equals(buf.subarray(msg.bodyStart, msg.end)), 'body untouched');
      if (msg.isRequest) {
        assert.equal(m2.count(HeaderId.VIA), msg.count(HeaderId.VIA) + 1);
        assert.equal(topBranch(m2), 'z9hG4bK-test');
        assert.ok(
          out
            .subarray(m2.fieldLineStart(m2.firstField[HeaderId.VIA]))
            .subarray(0, PROXY_VIA_LINE.length)
            .equals(PROXY_VIA_LINE),
        );
        const mf = m2.firstField[HeaderId.MAX_FORWARDS];
        assert.equal(
          readMaxForwards(out, m2.fieldValueStart(mf), m2.fieldValueEnd(mf)),
          msg.has(HeaderId.MAX_FORWARDS) ? maxForwards - 1 : 70,
        );
      }
      // Every original field line other than Max-Forwards (and a removed Via) is in the output, in order, byte for byte.
      const kept: Buffer[] = [];
      for (let i = 0; i < msg.fieldCount; i++) {
        const s = msg.fieldLineStart(i);
        if (record.some((e) => e.end > e.start && e.start < msg.fieldLineEnd(i) && e.end > s)) continue;
        kept.push(buf.subarray(s, msg.fieldLineEnd(i)));
      }
      let from = 0;
      for (const line of kept) {
        const at = out.indexOf(line, from);
        assert.ok(at !== -1, `field line kept: ${line.toString('latin1').slice(0, 40)}`);
        from = at + line.length;
      }
    });
  }

  test('inv2543 (RFC 2543, no Max-Forwards) gets "Max-Forwards: 70" (RFC 3261 §16.6)', () => {
    const f = FWD_FILES.find((c) => c.name === 'inv2543')!;
    const msg = frameDatagram(f.wire).message!;
    const edits = new EditList();
    addProxyEdits(msg, edits, null);
    const out = Buffer.concat(edits.apply(f.wire, msg.start, msg.end));
    const m2 = scanMessage(out, 0, out.length).message!;
    assert.equal(m2.value(HeaderId.MAX_FORWARDS), '70');
  });

  test('wsinv: Max-Forwards "0068" becomes "67", and the folded Via stays folded under the new one', () => {
    const f = FWD_FILES.find((c) => c.name === 'wsinv')!;
    const msg = frameDatagram(f.wire).message!;
    const edits = new EditList();
    addProxyEdits(msg, edits, null);
    const out = Buffer.concat(edits.apply(f.wire, msg.start, msg.end));
    assert.ok(out.includes('MaX-fOrWaRdS: 67\r\n'));
    assert.ok(
      out.includes('Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-test\r\nVia  : SIP  /   2.0\r\n /UDP\r\n'),
    );
  });

  test('dblreq: only the 300-byte REGISTER is sent on, never the trailing octets', () => {
    const f = FWD_FILES.find((c) => c.name === 'dblreq')!;
    const msg = frameDatagram(f.wire).message!;
    const edits = new EditList();
    addProxyEdits(msg, edits, null);
    const out = Buffer.concat(edits.apply(f.wire, msg.start, msg.end));
    assert.equal(out.includes('INVITE sip:joe@example.com'), false);
  });
});

/** Frames of a whole input, computed once per input. */
function wholeFrames(buf: Buffer): Frame[] {
  return feedChunks([buf]);
}

const STREAM_INPUTS: { label: string; buf: Buffer }[] = [
  ...CORPUS.map((f) => ({ label: `${f.set}/${f.name}`, buf: f.raw })),
  ...CORPUS.filter((f) => f.set === 'rfc5118').map((f) => ({
    label: `${f.set}/${f.name} (wire form)`,
    buf: f.wire,
  })),
];

describe('corpus: StreamFramer over TCP', () => {
  test('over a stream, what needs Content-Length and what is complete behaves as RFC 3261 §18.3 says', () => {
    const byLabel = new Map(STREAM_INPUTS.map((i) => [i.label, wholeFrames(i.buf)]));
    const kinds = (label: string) => describeFrames(byLabel.get(label)!);
    assert.equal(kinds('rfc4475/inv2543'), 'broken:missing-content-length');
    assert.equal(kinds('rfc4475/ncl'), 'broken:bad-content-length');
    assert.equal(kinds('rfc4475/mcl01'), 'broken:duplicate-content-length');
    assert.equal(kinds('rfc4475/clerr'), '', 'waits for 9999 body bytes');
    assert.equal(kinds('rfc4475/baddn'), '', 'waits for the end of the header section');
    assert.equal(kinds('rfc5118/ipv6-bug-abnf-3-colons'), '');
    assert.equal(kinds('rfc5118/ipv6-in-sdp'), '', 'CL 268 > 242 archived body bytes');
    assert.equal(kinds('rfc4475/badvers'), 'message:unsupported-version(291B)');
    assert.equal(kinds('rfc4475/test'), 'message:bad-start-line(318B)');
    assert.equal(kinds('rfc4475/wsinv'), 'message:ok(1001B)');
    assert.equal(
      kinds('rfc5118/ipv6-in-sdp (wire form)'),
      `message:ok(${CORPUS.find((f) => f.name === 'ipv6-in-sdp')!.wire.length}B)`,
    );
    assert.ok(kinds('rfc4475/dblreq').startsWith('message:ok(300B)'), kinds('rfc4475/dblreq'));
  });

  test('every corpus message (raw and wire form) split at every byte offset frames exactly as when whole', () => {
    let splits = 0;
    for (const { label, buf } of STREAM_INPUTS) {
      const whole = wholeFrames(buf);
      for (let cut = 1; cut < buf.length; cut++) {
        const split = feedChunks([buf.subarray(0, cut), buf.subarray(cut)]);
        if (!sameFrames(whole, split)) {
          assert.fail(
            `${label} split at ${cut}: ${describeFrames(split)} instead of ${describeFrames(whole)}`,
          );
        }
        splits++;
      }
    }
    assert.ok(splits > 30000);
  });

  test('every single message is a byte-exact view of its input', () => {
    for (const { label, buf } of STREAM_INPUTS) {
      for (const frame of wholeFrames(buf)) {
        if (frame.kind === 'message') assert.ok(buf.includes(frame.bytes!), label);
      }
    }
  });

  // Messages that frame on their own as exactly one message: the pipeline material.
  const FRAMABLE = STREAM_INPUTS.flatMap(({ label, buf }) => {
    const frames = wholeFrames(buf);
    return frames.length >= 1 && frames[0].kind === 'message'
      ? [{ label, bytes: frames[0].bytes!, code: frames[0].code }]
      : [];
  });

  test('random pipelines of corpus messages and keep-alives, randomly chunked, frame as when whole', () => {
    assert.ok(FRAMABLE.length >= 55, `${FRAMABLE.length} framable inputs`);
    const KEEPALIVES = [Buffer.alloc(0), Buffer.from('\r\n'), Buffer.from('\r\n\r\n')];
    fc.assert(
      fc.property(
        fc.array(fc.record({ msg: fc.nat(FRAMABLE.length - 1), keepalive: fc.nat(2) }), {
          minLength: 2,
          maxLength: 6,
        }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (items, rawCuts) => {
          const parts: Buffer[] = [];
          const expected: string[] = [];
          for (const it of items) {
            const m = FRAMABLE[it.msg];
            parts.push(KEEPALIVES[it.keepalive], m.bytes);
            if (it.keepalive === 2) expected.push('ping');
            expected.push(`message:${m.code}(${m.bytes.length}B)`);
          }
          const stream = Buffer.concat(parts);
          const whole = feedChunks([stream]);
          assert.equal(describeFrames(whole), expected.join(' '));
          const chunks = splitAt(
            stream,
            rawCuts.map((c) => c % (stream.length + 1)),
          );
          const chunked = feedChunks(chunks);
          assert.ok(sameFrames(whole, chunked), `${describeFrames(chunked)} != ${describeFrames(whole)}`);
          let k = 0;
          for (const it of items) {
            while (whole[k].kind !== 'message') k++;
            assert.ok(whole[k].bytes!.equals(FRAMABLE[it.msg].bytes));
            k++;
          }
        },
      ),
      { numRuns: 400, seed: 4475 },
    );
  });
});
