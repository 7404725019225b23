import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HeaderId } from '../../src/wire/header-names.ts';
import { DEFAULT_SCAN_LIMITS, readDecimal, scanMessage } from '../../src/wire/scan.ts';
import { ScanCode } from '../../src/wire/scan-codes.ts';
import { allValues, bytes, fieldLine, fieldValue, sipBytes, sipBytesLf } from './bytes.ts';

const BASE = [
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@example.com>',
  'From: Alice <sip:alice@example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.example.com',
  'CSeq: 314159 INVITE',
  'Content-Length: 0',
];

function scan(buf: Buffer) {
  return scanMessage(buf, 0, buf.length);
}

function scanOk(buf: Buffer) {
  const r = scan(buf);
  assert.equal(r.code, ScanCode.OK, `expected ok, got ${r.code} at ${r.at}`);
  assert.ok(r.message !== null);
  return r.message;
}

describe('scanMessage: start lines', () => {
  test('a request line gives the method, the Request-URI and the offset of the first header field', () => {
    const buf = sipBytes('INVITE sip:bob@example.com;transport=tcp SIP/2.0', BASE);
    const m = scanOk(buf);
    assert.equal(m.isRequest, true);
    assert.equal(m.method, 'INVITE');
    assert.equal(m.requestUri, 'sip:bob@example.com;transport=tcp');
    assert.equal(m.startLineEnd, buf.indexOf('\r\n') + 2);
    assert.equal(m.start, 0);
    assert.equal(m.end, buf.length);
  });

  test('an unknown method token is kept as it is, never decoded', () => {
    const m = scanOk(sipBytes('RE%47IST%45R sip:registrar.example.com SIP/2.0', BASE));
    assert.equal(m.method, 'RE%47IST%45R');
  });

  test('a status line gives the code and the reason phrase bytes', () => {
    const m = scanOk(sipBytes('SIP/2.0 180 Ringing', BASE));
    assert.equal(m.isRequest, false);
    assert.equal(m.statusCode, 180);
    assert.equal(m.reason, 'Ringing');
  });

  test('an empty reason phrase after the status code is accepted (RFC 4475 §3.1.1.13)', () => {
    const m = scanOk(sipBytes('SIP/2.0 100 ', BASE));
    assert.equal(m.statusCode, 100);
    assert.equal(m.reason, '');
  });

  test('a UTF-8 reason phrase is left as bytes', () => {
    const reason = Buffer.from('Привет', 'utf8');
    const buf = Buffer.concat([bytes('SIP/2.0 200 '), reason, sipBytes('', BASE)]);
    const m = scanOk(buf);
    assert.ok(buf.subarray(m.reasonStart, m.reasonEnd).equals(reason));
  });

  test('the SIP-Version letters are case-insensitive (RFC 3261 §7.1)', () => {
    assert.equal(scan(sipBytes('OPTIONS sip:a@example.com sip/2.0', BASE)).code, ScanCode.OK);
    assert.equal(scan(sipBytes('OPTIONS sip:a@example.com Sip/2.0', BASE)).code, ScanCode.OK);
  });

  for (const [line, why] of [
    ['INVITE  sip:user@example.com  SIP/2.0', 'two SP between elements (lwsstart)'],
    ['OPTIONS sip:remote-target@example.com SIP/2.0  ', 'SP after the version (trws)'],
    ['INVITE sip:user@example.com; lr SIP/2.0', 'LWS inside the Request-URI (lwsruri)'],
    ['INVITE sip:alan@jasomi.com', 'no SIP-Version (test.dat)'],
    ['INVITE sip:alan@jasomi.com SIP/2.0x', 'junk after the version'],
    ['INVITE sip:alan@jasomi.com SIP/2', 'a version without minor'],
    ['INV(TE sip:a@example.com SIP/2.0', 'a method that is no token'],
    [' INVITE sip:a@example.com SIP/2.0', 'leading SP'],
    ['INVITE\tsip:a@example.com SIP/2.0', 'HTAB instead of SP'],
    ['SIP/2.0', 'a version alone'],
  ] as const) {
    test(`a malformed request line is bad-start-line: ${why}`, () => {
      const r = scan(sipBytes(line, BASE));
      assert.equal(r.code, ScanCode.BAD_START_LINE);
    });
  }

  test('another SIP version is unsupported-version in requests and responses (RFC 4475 §3.1.2.16)', () => {
    assert.equal(
      scan(sipBytes('OPTIONS sip:t.watson@example.org SIP/7.0', BASE)).code,
      'unsupported-version',
    );
    assert.equal(scan(sipBytes('SIP/1.0 200 OK', BASE)).code, 'unsupported-version');
    assert.equal(scan(sipBytes('SIP/2.1 200 OK', BASE)).code, 'unsupported-version');
  });

  for (const code of ['4294967301', '99', '700', '2000', '20', '2x0', '']) {
    test(`status code "${code}" is bad-status-code (RFC 4475 §3.1.2.19)`, () => {
      const r = scan(sipBytes(`SIP/2.0 ${code} Nope`, BASE));
      assert.equal(r.code, ScanCode.BAD_STATUS_CODE);
    });
  }

  test('status codes 100 and 699 are the bounds that are accepted', () => {
    assert.equal(scanOk(sipBytes('SIP/2.0 100 Trying', BASE)).statusCode, 100);
    assert.equal(scanOk(sipBytes('SIP/2.0 699 Whatever', BASE)).statusCode, 699);
  });

  test('CRLFs before the start line are skipped (RFC 3261 §7.5) and the message starts after them', () => {
    const buf = Buffer.concat([bytes('\r\n\r\n\n'), sipBytes('OPTIONS sip:a@example.com SIP/2.0', BASE)]);
    const m = scanOk(buf);
    assert.equal(m.start, 5);
    assert.equal(m.method, 'OPTIONS');
  });

  test('nothing but line breaks is empty', () => {
    assert.equal(scan(bytes('\r\n\r\n')).code, ScanCode.EMPTY);
    assert.equal(scan(bytes('')).code, ScanCode.EMPTY);
  });

  test('a start line with no line break is incomplete-headers', () => {
    assert.equal(scan(bytes('INVITE sip:a@example.com SIP/2.0')).code, ScanCode.INCOMPLETE_HEADERS);
  });

  test('a broken start line still indexes the header fields so a 400/505 can copy them', () => {
    const r = scan(sipBytes('INVITE  sip:user@example.com SIP/2.0', BASE));
    assert.equal(r.code, ScanCode.BAD_START_LINE);
    const m = r.message!;
    assert.equal(m.fieldCount, BASE.length);
    assert.equal(m.value(HeaderId.CALL_ID), 'a84b4c76e66710@pc33.example.com');
    assert.equal(m.value(HeaderId.CSEQ), '314159 INVITE');
  });

  test('regression: a broken start line still reads Content-Length, so a stream can step over the message', () => {
    // Before the fix the scan returned at the start-line error and left contentLength at -1,
    // and the TCP framer closed the connection on RFC 4475 badvers ("missing Content-Length").
    const r = scan(
      sipBytes('OPTIONS sip:t.watson@example.org SIP/7.0', [...BASE.slice(0, 6), 'l: 5'], 'hello'),
    );
    assert.equal(r.code, ScanCode.UNSUPPORTED_VERSION);
    assert.equal(r.message!.contentLength, 5);
  });
});

describe('scanMessage: header fields', () => {
  test('long names are identified in any letter case (RFC 3261 §7.3.1)', () => {
    const m = scanOk(
      sipBytes('OPTIONS sip:a@example.com SIP/2.0', [
        'vIA: SIP/2.0/UDP h1;branch=z9hG4bK1',
        'cALL-iD: abc',
        'CSEQ: 1 OPTIONS',
        'FROM: <sip:a@example.com>;tag=1',
        'tO: <sip:b@example.com>',
        'MAX-forwards: 70',
        'content-LENGTH: 0',
      ]),
    );
    assert.equal(m.value(HeaderId.VIA), 'SIP/2.0/UDP h1;branch=z9hG4bK1');
    assert.equal(m.value(HeaderId.CALL_ID), 'abc');
    assert.equal(m.value(HeaderId.CSEQ), '1 OPTIONS');
    assert.equal(m.value(HeaderId.FROM), '<sip:a@example.com>;tag=1');
    assert.equal(m.value(HeaderId.TO), '<sip:b@example.com>');
    assert.equal(m.value(HeaderId.MAX_FORWARDS), '70');
    assert.equal(m.contentLength, 0);
  });

  test('compact forms are the same fields as the long names (RFC 3261 §7.3.3)', () => {
    const m = scanOk(
      sipBytes(
        'OPTIONS sip:a@example.com SIP/2.0',
        [
          'v: SIP/2.0/UDP h1;branch=z9hG4bK1',
          'i: abc',
          'f: <sip:a@example.com>;tag=1',
          'T: <sip:b@example.com>',
          'm: <sip:a@h1>',
          'c: text/plain',
          'L: 3',
          's: a subject',
        ],
        'abc',
      ),
    );
    assert.equal(m.value(HeaderId.VIA), 'SIP/2.0/UDP h1;branch=z9hG4bK1');
    assert.equal(m.value(HeaderId.CALL_ID), 'abc');
    assert.equal(m.value(HeaderId.FROM), '<sip:a@example.com>;tag=1');
    assert.equal(m.value(HeaderId.TO), '<sip:b@example.com>');
    assert.equal(m.value(HeaderId.CONTACT), '<sip:a@h1>');
    assert.equal(m.value(HeaderId.CONTENT_TYPE), 'text/plain');
    assert.equal(m.contentLength, 3);
    assert.equal(m.fieldId(7), HeaderId.OTHER, '`s` (Subject) is not one of the fields sipspan reads');
  });

  test('SP and HTAB may stand before the colon and around the value, and are not part of it', () => {
    const m = scanOk(
      sipBytes('OPTIONS sip:a@example.com SIP/2.0', [
        'Call-ID \t :  \t abc \t ',
        'Via  :  SIP/2.0/UDP h1',
        'l:0',
      ]),
    );
    assert.equal(m.value(HeaderId.CALL_ID), 'abc');
    assert.equal(m.value(HeaderId.VIA), 'SIP/2.0/UDP h1');
    assert.equal(m.contentLength, 0);
  });

  test('an empty value is an empty range at the end of the line', () => {
    const m = scanOk(sipBytes('OPTIONS sip:a@example.com SIP/2.0', ['Subject:', 'X-Empty:   ', 'l: 0']));
    assert.equal(fieldValue(m, 0), '');
    assert.equal(fieldValue(m, 1), '');
    assert.equal(m.fieldValueStart(1), m.fieldValueEnd(1));
  });

  test('folded lines stay inside one field: value and line span every continuation (RFC 3261 §7.3.1)', () => {
    const buf = sipBytes('INVITE sip:a@example.com SIP/2.0', [
      'Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw',
      'NewFangledHeader:   newfangled value\r\n continued newfangled value',
      'Content-Length: 0',
    ]);
    const m = scanOk(buf);
    assert.equal(m.fieldCount, 3);
    assert.equal(fieldValue(m, 0), 'SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw');
    assert.equal(fieldLine(m, 0), 'Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n');
    assert.equal(fieldValue(m, 1), 'newfangled value\r\n continued newfangled value');
    assert.equal(m.fieldLineEnd(0), m.fieldLineStart(1));
  });

  test('a value that starts on a continuation line begins at its first non-blank byte (wsinv "TO :")', () => {
    const m = scanOk(
      sipBytes('INVITE sip:a@example.com SIP/2.0', [
        'TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
        'l: 0',
      ]),
    );
    assert.equal(m.value(HeaderId.TO), 'sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n');
  });

  test('a blank continuation line extends the field line but not its value', () => {
    const m = scanOk(sipBytes('INVITE sip:a@example.com SIP/2.0', ['Subject: hi\r\n \t ', 'l: 0']));
    assert.equal(fieldValue(m, 0), 'hi');
    assert.equal(fieldLine(m, 0), 'Subject: hi\r\n \t \r\n');
  });

  test('several Via values on one line are one field line (RFC 3261 §7.3.1)', () => {
    const m = scanOk(
      sipBytes('OPTIONS sip:a@example.com SIP/2.0', [
        'Via: SIP/2.0/UDP h1;branch=z9hG4bK1, SIP/2.0/TCP h2;branch=z9hG4bK2',
        'Via: SIP/2.0/UDP h3;branch=z9hG4bK3',
        'l: 0',
      ]),
    );
    assert.equal(m.count(HeaderId.VIA), 2);
    assert.deepEqual(allValues(m, HeaderId.VIA), [
      'SIP/2.0/UDP h1;branch=z9hG4bK1, SIP/2.0/TCP h2;branch=z9hG4bK2',
      'SIP/2.0/UDP h3;branch=z9hG4bK3',
    ]);
  });

  test('bare LF line ends are tolerated everywhere, with the same values as CRLF', () => {
    const lf = sipBytesLf(
      'INVITE sip:a@example.com SIP/2.0',
      [...BASE.slice(0, 6), 'Content-Length: 4'],
      'abcd',
    );
    const m = scanOk(lf);
    assert.equal(m.method, 'INVITE');
    assert.equal(m.fieldCount, 7);
    assert.equal(m.value(HeaderId.CALL_ID), 'a84b4c76e66710@pc33.example.com');
    assert.equal(m.contentLength, 4);
    assert.equal(m.bodyStart, lf.length - 4);
    assert.equal(m.headersEnd, lf.length - 5);
  });

  test('CRLF and LF may be mixed, and folding works after a bare LF', () => {
    const buf = bytes('OPTIONS sip:a@example.com SIP/2.0\nCall-ID: x\r\nSubject: a\n b\nl: 0\n\r\n');
    const m = scanOk(buf);
    assert.equal(m.value(HeaderId.CALL_ID), 'x');
    assert.equal(fieldValue(m, 1), 'a\n b');
    assert.equal(m.bodyStart, buf.length);
  });

  test('headersEnd is the empty line and bodyStart the byte after it', () => {
    const buf = sipBytes('MESSAGE sip:a@example.com SIP/2.0', ['Content-Length: 5'], 'hello');
    const m = scanOk(buf);
    assert.equal(buf.toString('latin1', m.headersEnd, m.bodyStart), '\r\n');
    assert.equal(buf.toString('latin1', m.bodyStart), 'hello');
    assert.equal(m.bodyLength, 5);
  });

  test('the index counts field lines per id and finds the n-th one', () => {
    const m = scanOk(
      sipBytes('INVITE sip:a@example.com SIP/2.0', [
        'Record-Route: <sip:p1;lr>',
        'Via: SIP/2.0/UDP h1',
        'Record-Route: <sip:p2;lr>',
        'v: SIP/2.0/UDP h2',
        'X-Custom: one',
        'Record-Route: <sip:p3;lr>',
        'l: 0',
      ]),
    );
    assert.equal(m.count(HeaderId.RECORD_ROUTE), 3);
    assert.equal(m.count(HeaderId.VIA), 2);
    assert.equal(m.count(HeaderId.ROUTE), 0);
    assert.equal(m.has(HeaderId.RECORD_ROUTE), true);
    assert.equal(m.has(HeaderId.ROUTE), false);
    assert.equal(m.fieldIndex(HeaderId.RECORD_ROUTE), 0);
    assert.equal(m.fieldIndex(HeaderId.RECORD_ROUTE, 1), 2);
    assert.equal(m.fieldIndex(HeaderId.RECORD_ROUTE, 2), 5);
    assert.equal(m.fieldIndex(HeaderId.RECORD_ROUTE, 3), -1);
    assert.equal(m.fieldIndex(HeaderId.ROUTE), -1);
    assert.equal(m.fieldIndex(HeaderId.VIA, 1), 3);
    assert.equal(m.firstField[HeaderId.VIA], 1);
    assert.equal(m.value(HeaderId.ROUTE), null);
    assert.equal(m.findByName('x-custom'), 4);
    assert.equal(m.findByName('x-custom', 5), -1);
    assert.equal(m.findByName('x-other'), -1);
    assert.equal(fieldValue(m, m.findByName('x-custom')), 'one');
  });

  test('more fields than the initial index capacity are all indexed', () => {
    const headers = Array.from({ length: 100 }, (_, i) => `X-H${i}: v${i}`);
    const m = scanOk(sipBytes('OPTIONS sip:a@example.com SIP/2.0', [...headers, 'Call-ID: last', 'l: 0']));
    assert.equal(m.fieldCount, 102);
    assert.equal(fieldValue(m, 99), 'v99');
    assert.equal(m.value(HeaderId.CALL_ID), 'last');
  });

  test('a header line without a colon is bad-header-line, and the fields after it are still indexed (test.dat)', () => {
    const r = scan(
      sipBytes('INVITE sip:a@example.com SIP/2.0', ['Call-ID: x', 'Foobar roobar', 'CSeq: 1 INVITE', 'l: 0']),
    );
    assert.equal(r.code, ScanCode.BAD_HEADER_LINE);
    assert.equal(r.message!.value(HeaderId.CSEQ), '1 INVITE');
    assert.equal(r.message!.contentLength, 0);
  });

  test('a continuation line right after the start line is bad-header-line', () => {
    const r = scan(sipBytes('INVITE sip:a@example.com SIP/2.0', [' folded: nothing', 'l: 0']));
    assert.equal(r.code, ScanCode.BAD_HEADER_LINE);
  });

  test('a NUL in a field name makes the line no header field', () => {
    const r = scan(sipBytes('INVITE sip:a@example.com SIP/2.0', ['Sub\0ject: x', 'l: 0']));
    assert.equal(r.code, ScanCode.BAD_HEADER_LINE);
  });

  test('NUL and high bytes in values are kept as they are', () => {
    const buf = Buffer.concat([
      bytes('INVITE sip:a@example.com SIP/2.0\r\nX-Bin: a'),
      Buffer.from([0x00, 0xff, 0x80]),
      bytes('b\r\nl: 0\r\n\r\n'),
    ]);
    const m = scanOk(buf);
    assert.ok(
      buf.subarray(m.fieldValueStart(0), m.fieldValueEnd(0)).equals(Buffer.from([0x61, 0, 0xff, 0x80, 0x62])),
    );
  });

  test('no empty line at the end is incomplete-headers, with the fields so far indexed (baddn)', () => {
    const buf = bytes('OPTIONS sip:a@example.com SIP/2.0\r\nCall-ID: x\r\nl: 0\r\n');
    const r = scan(buf);
    assert.equal(r.code, ScanCode.INCOMPLETE_HEADERS);
    assert.equal(r.message!.fieldCount, 2);
    assert.equal(r.at, buf.length);
  });

  test('a last header line without its line break is incomplete-headers', () => {
    const r = scan(bytes('OPTIONS sip:a@example.com SIP/2.0\r\nCall-ID: x'));
    assert.equal(r.code, ScanCode.INCOMPLETE_HEADERS);
  });

  test('a CR alone at the end does not close the header section', () => {
    const r = scan(bytes('OPTIONS sip:a@example.com SIP/2.0\r\nCall-ID: x\r\n\r'));
    assert.equal(r.code, ScanCode.INCOMPLETE_HEADERS);
  });

  test('lines of every length around the short-line fast path (96 bytes) end at their own LF', () => {
    for (let n = 1; n <= 200; n++) {
      const value = 'v'.repeat(n);
      const m = scanOk(
        sipBytes('OPTIONS sip:a@example.com SIP/2.0', [`X-Len: ${value}`, `Call-ID: ${value}`, 'l: 0']),
      );
      assert.equal(fieldValue(m, 0), value, `length ${n}`);
      assert.equal(m.value(HeaderId.CALL_ID), value, `length ${n}`);
    }
  });

  test('scanning a range of a larger buffer gives offsets into that buffer', () => {
    const msg = sipBytes('OPTIONS sip:a@example.com SIP/2.0', ['Call-ID: in-the-middle', 'l: 0']);
    const buf = Buffer.concat([bytes('JUNK'), msg, bytes('MORE')]);
    const r = scanMessage(buf, 4, 4 + msg.length);
    assert.equal(r.code, ScanCode.OK);
    const m = r.message!;
    assert.equal(m.start, 4);
    assert.equal(m.end, 4 + msg.length);
    assert.equal(buf.toString('latin1', m.methodStart, m.methodEnd), 'OPTIONS');
    assert.equal(m.value(HeaderId.CALL_ID), 'in-the-middle');
  });
});

describe('scanMessage: Content-Length', () => {
  const START = 'MESSAGE sip:a@example.com SIP/2.0';

  test('a missing Content-Length is -1 (datagrams run to their end; streams refuse them)', () => {
    assert.equal(scanOk(sipBytes(START, ['Call-ID: x'])).contentLength, -1);
  });

  test('Content-Length may have leading zeros and LWS, even folded', () => {
    assert.equal(scanOk(sipBytes(START, ['Content-Length: 000150'])).contentLength, 150);
    assert.equal(scanOk(sipBytes(START, ['Content-Length:\r\n  42  '])).contentLength, 42);
  });

  test('Content-Length is not compared with the bytes present: that is the framer’s job', () => {
    assert.equal(scanOk(sipBytes(START, ['Content-Length: 9999'], 'short')).contentLength, 9999);
  });

  for (const v of ['-999', '', 'abc', '12a', '1 2', '+5', '2147483648', '99999999999999999999']) {
    test(`Content-Length "${v}" is bad-content-length (RFC 4475 §3.1.2.3)`, () => {
      const r = scan(sipBytes(START, [`Content-Length: ${v}`]));
      assert.equal(r.code, ScanCode.BAD_CONTENT_LENGTH);
      assert.ok(r.message !== null);
    });
  }

  test('2^31-1 is the largest Content-Length read', () => {
    assert.equal(scanOk(sipBytes(START, ['Content-Length: 2147483647'])).contentLength, 2147483647);
  });

  test('two Content-Length lines are duplicate-content-length, even with equal values (mcl01)', () => {
    assert.equal(
      scan(sipBytes(START, ['Content-Length: 13', 'l: 5'])).code,
      ScanCode.DUPLICATE_CONTENT_LENGTH,
    );
    assert.equal(
      scan(sipBytes(START, ['l: 0', 'Content-Length: 0'])).code,
      ScanCode.DUPLICATE_CONTENT_LENGTH,
    );
  });

  test('readDecimal reads digits surrounded by LWS and refuses anything else', () => {
    const b = bytes(' \t\r\n 0068 \r\n');
    assert.equal(readDecimal(b, 0, b.length), 68);
    assert.equal(readDecimal(bytes('7'), 0, 1), 7);
    assert.equal(readDecimal(bytes('  '), 0, 2), -1);
    assert.equal(readDecimal(bytes('0x10'), 0, 4), -1);
  });
});

describe('scanMessage: limits', () => {
  const START = 'OPTIONS sip:a@example.com SIP/2.0';

  test('exactly maxHeaderFields fields are accepted, one more is too-many-headers', () => {
    const limits = { ...DEFAULT_SCAN_LIMITS, maxHeaderFields: 10 };
    const ten = Array.from({ length: 10 }, (_, i) => `X-H${i}: v`);
    const ok = sipBytes(START, ten);
    assert.equal(scanMessage(ok, 0, ok.length, limits).code, ScanCode.OK);
    const eleven = sipBytes(START, [...ten, 'X-H10: v']);
    const r = scanMessage(eleven, 0, eleven.length, limits);
    assert.equal(r.code, ScanCode.TOO_MANY_HEADERS);
    assert.equal(r.message!.fieldCount, 10);
    assert.equal(r.at, eleven.indexOf('X-H10'));
  });

  test('the default allows 256 fields', () => {
    const many = sipBytes(
      START,
      Array.from({ length: 256 }, (_, i) => `X-H${i}: v`),
    );
    assert.equal(scan(many).code, ScanCode.OK);
    const more = sipBytes(
      START,
      Array.from({ length: 257 }, (_, i) => `X-H${i}: v`),
    );
    assert.equal(scan(more).code, ScanCode.TOO_MANY_HEADERS);
  });

  test('a field of exactly maxFieldBytes (line break included) is accepted, one byte more is header-too-long', () => {
    const limits = { ...DEFAULT_SCAN_LIMITS, maxFieldBytes: 40 };
    const line = (n: number) => `X-Long: ${'a'.repeat(n - 'X-Long: '.length - 2)}`;
    const ok = sipBytes(START, [line(40)]);
    assert.equal(scanMessage(ok, 0, ok.length, limits).code, ScanCode.OK);
    const long = sipBytes(START, [line(41)]);
    assert.equal(scanMessage(long, 0, long.length, limits).code, ScanCode.HEADER_TOO_LONG);
  });

  test('continuation lines count towards maxFieldBytes', () => {
    const limits = { ...DEFAULT_SCAN_LIMITS, maxFieldBytes: 40 };
    const folded = sipBytes(START, [`X-Fold: ${'a'.repeat(20)}\r\n ${'b'.repeat(20)}`]);
    const r = scanMessage(folded, 0, folded.length, limits);
    assert.equal(r.code, ScanCode.HEADER_TOO_LONG);
  });

  test('RFC 4475 longreq-sized values pass the default limits', () => {
    const m = scanOk(sipBytes(START, [`To: "${'x'.repeat(2000)}" <sip:a@example.com>`, 'l: 0']));
    assert.equal(m.fieldCount, 2);
  });
});
