import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { frameDatagram, frameDatagramAt } from '../../src/wire/frame-datagram.ts';
import { HeaderId } from '../../src/wire/header-names.ts';
import { ScanCode } from '../../src/wire/scan-codes.ts';
import { corpusFile } from '../support/corpus.ts';
import { bytes, messageBytes, sipBytes } from './bytes.ts';

const START = 'MESSAGE sip:a@example.com SIP/2.0';

describe('frameDatagram', () => {
  test('a datagram whose body matches Content-Length is one whole message', () => {
    const buf = sipBytes(START, ['Call-ID: x', 'Content-Length: 5'], 'hello');
    const r = frameDatagram(buf);
    assert.equal(r.code, ScanCode.OK);
    assert.ok(messageBytes(r.message!).equals(buf));
    assert.equal(r.message!.bodyLength, 5);
  });

  test('octets beyond Content-Length are not part of the message (RFC 3261 §18.3, RFC 4475 dblreq)', () => {
    const f = corpusFile('rfc4475', 'dblreq');
    assert.equal(f.raw.length, 750);
    const r = frameDatagram(f.raw);
    assert.equal(r.code, ScanCode.OK);
    const m = r.message!;
    assert.equal(m.end, 300);
    assert.equal(m.method, 'REGISTER');
    assert.equal(m.bodyLength, 0);
    assert.ok(messageBytes(m).equals(f.raw.subarray(0, 300)));
    // The trailing INVITE is not looked at: nothing indexed points past the REGISTER.
    for (let i = 0; i < m.fieldCount; i++) assert.ok(m.fieldLineEnd(i) <= 300);
    assert.equal(m.value(HeaderId.CALL_ID), 'dblreq.0ha0isndaksdj99sdfafnl3lk233412');
  });

  test('a datagram framed where it lies in a larger buffer (a batch of reads) is the same message', () => {
    const one = sipBytes(START, ['Call-ID: x', 'Content-Length: 5'], 'hello');
    const short = sipBytes(START, ['Call-ID: y', 'Content-Length: 9'], 'hi');
    const bare = sipBytes(START, ['Call-ID: z'], 'to the end');
    const batch = Buffer.concat([bytes('ahead'), one, short, bare, bytes('after')]);
    let at = 5;
    for (const datagram of [one, short, bare]) {
      const alone = frameDatagram(datagram);
      const r = frameDatagramAt(batch, at, at + datagram.length);
      assert.equal(r.code, alone.code);
      const m = r.message!;
      const n = alone.message!;
      assert.deepEqual(
        [m.start - at, m.end - at, m.bodyStart - at, m.contentLength],
        [n.start, n.end, n.bodyStart, n.contentLength],
      );
      assert.equal(m.value(HeaderId.CALL_ID), n.value(HeaderId.CALL_ID));
      if (r.code === ScanCode.BODY_TRUNCATED)
        assert.equal(r.at, at + datagram.length, 'short of its own end, not the batch’s');
      else assert.ok(messageBytes(m).equals(messageBytes(n)));
      at += datagram.length;
    }
  });

  test('trailing bytes after a body are cut at Content-Length', () => {
    const msg = sipBytes(START, ['Content-Length: 3'], 'abc');
    const r = frameDatagram(Buffer.concat([msg, bytes('garbage')]));
    assert.equal(r.code, ScanCode.OK);
    assert.equal(r.message!.end, msg.length);
  });

  test('a body shorter than Content-Length is body-truncated (RFC 4475 clerr)', () => {
    const f = corpusFile('rfc4475', 'clerr');
    const r = frameDatagram(f.raw);
    assert.equal(r.code, ScanCode.BODY_TRUNCATED);
    assert.equal(r.message!.contentLength, 9999);
    assert.equal(r.at, f.raw.length);
    assert.equal(r.message!.value(HeaderId.CALL_ID), 'clerr.0ha0isndaksdjweiafasdk3');
  });

  test('without Content-Length the body runs to the end of the datagram (RFC 3261 §18.3, inv2543)', () => {
    const buf = sipBytes(START, ['Call-ID: x'], 'body to the end\r\n');
    const r = frameDatagram(buf);
    assert.equal(r.code, ScanCode.OK);
    assert.equal(r.message!.contentLength, -1);
    assert.equal(r.message!.end, buf.length);
    assert.equal(r.message!.bodyLength, 17);
    const inv = frameDatagram(corpusFile('rfc4475', 'inv2543').raw);
    assert.equal(inv.code, ScanCode.OK);
    assert.equal(inv.message!.bodyLength, 105);
  });

  test('Content-Length 0 with an empty body is exact', () => {
    const buf = sipBytes(START, ['l: 0']);
    const r = frameDatagram(buf);
    assert.equal(r.code, ScanCode.OK);
    assert.equal(r.message!.end, buf.length);
  });

  test('a scan error is passed on with the message, cut at Content-Length when that fits', () => {
    const msg = sipBytes('OPTIONS sip:a@example.com SIP/7.0', ['Call-ID: x', 'l: 2'], 'ab');
    const r = frameDatagram(Buffer.concat([msg, bytes('trailing')]));
    assert.equal(r.code, ScanCode.UNSUPPORTED_VERSION);
    assert.equal(r.message!.end, msg.length);
  });

  test('a datagram without a start line is empty, with no message', () => {
    const r = frameDatagram(bytes('\r\n\r\n'));
    assert.equal(r.code, ScanCode.EMPTY);
    assert.equal(r.message, null);
  });

  test('a header section without its empty line is incomplete-headers (RFC 4475 baddn)', () => {
    const r = frameDatagram(corpusFile('rfc4475', 'baddn').raw);
    assert.equal(r.code, ScanCode.INCOMPLETE_HEADERS);
  });
});
