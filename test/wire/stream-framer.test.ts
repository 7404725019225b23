import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HeaderId } from '../../src/wire/header-names.ts';
import { ScanCode } from '../../src/wire/scan-codes.ts';
import { DEFAULT_STREAM_LIMITS, FrameKind, StreamFramer } from '../../src/wire/stream-framer.ts';
import { bytes, messageBytes, sipBytes } from './bytes.ts';
import { type Frame, feedChunks } from './framing.ts';

const A = sipBytes('OPTIONS sip:a@example.com SIP/2.0', ['Call-ID: a', 'Content-Length: 0']);
const B = sipBytes('MESSAGE sip:b@example.com SIP/2.0', ['Call-ID: b', 'Content-Length: 5'], 'hello');
const C = sipBytes('SIP/2.0 200 OK', ['Call-ID: c', 'l: 3'], 'xyz');

function kinds(frames: readonly Frame[]): string[] {
  return frames.map((f) =>
    f.kind === 'message' ? `message:${f.code}` : f.kind === 'broken' ? `broken:${f.code}` : f.kind,
  );
}

describe('StreamFramer', () => {
  test('pipelined messages in one chunk come out one by one, each exactly its own bytes', () => {
    const frames = feedChunks([Buffer.concat([A, B, C])]);
    assert.deepEqual(kinds(frames), ['message:ok', 'message:ok', 'message:ok']);
    assert.ok(frames[0].bytes!.equals(A));
    assert.ok(frames[1].bytes!.equals(B));
    assert.ok(frames[2].bytes!.equals(C));
  });

  test('a message is a view into the received bytes, with the scan result and body', () => {
    const f = new StreamFramer();
    const chunk = Buffer.concat([A, B]);
    f.push(chunk);
    assert.equal(f.next(), FrameKind.MESSAGE);
    assert.equal(f.next(), FrameKind.MESSAGE);
    const m = f.result!.message!;
    assert.equal(m.buf.buffer, chunk.buffer, 'no copy when the message sits in one chunk');
    assert.equal(m.start, A.length);
    assert.equal(m.end, A.length + B.length);
    assert.equal(m.buf.toString('latin1', m.bodyStart, m.end), 'hello');
    assert.equal(m.value(HeaderId.CALL_ID), 'b');
    assert.equal(f.next(), FrameKind.NEED_MORE);
    assert.equal(f.bufferedBytes, 0);
  });

  test('a partial message waits for more bytes, then is joined once', () => {
    const f = new StreamFramer();
    f.push(B.subarray(0, 20));
    assert.equal(f.next(), FrameKind.NEED_MORE);
    assert.equal(f.bufferedBytes, 20);
    f.push(B.subarray(20, B.length - 2));
    assert.equal(f.next(), FrameKind.NEED_MORE, 'header complete, body still 2 bytes short');
    f.push(B.subarray(B.length - 2));
    assert.equal(f.next(), FrameKind.MESSAGE);
    assert.ok(messageBytes(f.result!.message!).equals(B));
    assert.equal(f.result!.message!.value(HeaderId.CALL_ID), 'b');
  });

  test('a message dripped one byte at a time comes out once, whole', () => {
    const frames = feedChunks(Array.from(Buffer.concat([B, A]), (x) => Buffer.from([x])));
    assert.deepEqual(kinds(frames), ['message:ok', 'message:ok']);
    assert.ok(frames[0].bytes!.equals(B));
    assert.ok(frames[1].bytes!.equals(A));
  });

  test('CRLFCRLF between messages is a ping (RFC 5626 §3.5.1)', () => {
    const frames = feedChunks([Buffer.concat([A, bytes('\r\n\r\n'), B])]);
    assert.deepEqual(kinds(frames), ['message:ok', 'ping', 'message:ok']);
  });

  test('a lone CRLF (a pong) is skipped without a frame', () => {
    const frames = feedChunks([Buffer.concat([bytes('\r\n'), A, bytes('\r\n'), B])]);
    assert.deepEqual(kinds(frames), ['message:ok', 'message:ok']);
    assert.ok(frames[1].bytes!.equals(B));
  });

  test('a ping alone is one ping, and a CR waiting for its LF needs more', () => {
    assert.deepEqual(kinds(feedChunks([bytes('\r\n\r\n')])), ['ping']);
    const f = new StreamFramer();
    f.push(bytes('\r'));
    assert.equal(f.next(), FrameKind.NEED_MORE);
  });

  for (const cut of [1, 2, 3]) {
    test(`regression: a ping split by TCP after byte ${cut} is still one ping`, () => {
      // Before the fix, "\r\n" + "\r\n" was taken as two pongs and the ping got no answer.
      const ping = bytes('\r\n\r\n');
      assert.deepEqual(kinds(feedChunks([ping.subarray(0, cut), ping.subarray(cut)])), ['ping']);
      assert.deepEqual(kinds(feedChunks([A, ping.subarray(0, cut), ping.subarray(cut), B])), [
        'message:ok',
        'ping',
        'message:ok',
      ]);
    });
  }

  test('a pong, a pause and then a message is no ping', () => {
    assert.deepEqual(kinds(feedChunks([bytes('\r\n'), A])), ['message:ok']);
  });

  test('a missing Content-Length breaks the stream (RFC 3261 §18.3)', () => {
    const f = new StreamFramer();
    f.push(sipBytes('OPTIONS sip:a@example.com SIP/2.0', ['Call-ID: x']));
    assert.equal(f.next(), FrameKind.BROKEN);
    assert.equal(f.brokenCode, ScanCode.MISSING_CONTENT_LENGTH);
    assert.equal(f.bufferedBytes, 0, 'everything is dropped');
  });

  test('a negative or non-numeric Content-Length breaks the stream (RFC 4475 ncl)', () => {
    for (const v of ['-999', 'abc']) {
      const frames = feedChunks([sipBytes('INVITE sip:a@example.com SIP/2.0', [`Content-Length: ${v}`])]);
      assert.deepEqual(kinds(frames), ['broken:bad-content-length']);
    }
  });

  test('two Content-Length lines break the stream (RFC 4475 mcl01)', () => {
    const frames = feedChunks([A, sipBytes('OPTIONS sip:a@example.com SIP/2.0', ['l: 13', 'l: 5'], 'hello')]);
    assert.deepEqual(kinds(frames), ['message:ok', 'broken:duplicate-content-length']);
  });

  test('a message larger than maxMessageBytes breaks the stream, by header or by Content-Length', () => {
    const limits = { ...DEFAULT_STREAM_LIMITS, maxMessageBytes: 100 };
    const big = sipBytes('MESSAGE sip:a@example.com SIP/2.0', ['Content-Length: 80'], 'x'.repeat(80));
    assert.deepEqual(kinds(feedChunks([big], limits)), ['broken:message-too-large']);
    const endless = bytes(`OPTIONS sip:a@example.com SIP/2.0\r\nX-Pad: ${'p'.repeat(200)}`);
    assert.deepEqual(kinds(feedChunks([endless], limits)), ['broken:message-too-large']);
  });

  test('a header section that never ends is bounded by maxMessageBytes while it drips in', () => {
    const limits = { ...DEFAULT_STREAM_LIMITS, maxMessageBytes: 100 };
    const f = new StreamFramer(limits);
    f.push(bytes('OPTIONS sip:a@example.com SIP/2.0\r\n'));
    let k: FrameKind = FrameKind.NEED_MORE;
    for (let i = 0; i < 50 && k === FrameKind.NEED_MORE; i++) {
      f.push(bytes('X-A: b\r\n'));
      k = f.next();
      if (k === FrameKind.NEED_MORE) assert.ok(f.bufferedBytes <= 100);
    }
    assert.equal(k, FrameKind.BROKEN);
    assert.equal(f.brokenCode, ScanCode.MESSAGE_TOO_LARGE);
  });

  test('regression: too many header fields break the stream with that code, not "missing Content-Length"', () => {
    const many = sipBytes('OPTIONS sip:a@example.com SIP/2.0', [
      'Content-Length: 0',
      ...Array.from({ length: 300 }, (_, i) => `X-H${i}: v`),
    ]);
    assert.deepEqual(kinds(feedChunks([many])), ['broken:too-many-headers']);
  });

  test('a start-line error is a message with its code, framed by Content-Length (badvers over TCP)', () => {
    const bad = sipBytes('OPTIONS sip:a@example.com SIP/7.0', ['Call-ID: v', 'l: 2'], 'ab');
    const frames = feedChunks([Buffer.concat([bad, A])]);
    assert.deepEqual(kinds(frames), ['message:unsupported-version', 'message:ok']);
    assert.ok(frames[0].bytes!.equals(bad));
  });

  test('after reset() the framer starts clean', () => {
    const f = new StreamFramer();
    f.push(B.subarray(0, 30));
    assert.equal(f.next(), FrameKind.NEED_MORE);
    f.reset();
    assert.equal(f.bufferedBytes, 0);
    f.push(A);
    assert.equal(f.next(), FrameKind.MESSAGE);
    assert.ok(messageBytes(f.result!.message!).equals(A));
  });

  test('empty chunks change nothing', () => {
    const frames = feedChunks([
      Buffer.alloc(0),
      A.subarray(0, 10),
      Buffer.alloc(0),
      A.subarray(10),
      Buffer.alloc(0),
    ]);
    assert.deepEqual(kinds(frames), ['message:ok']);
  });

  test('bare-LF messages frame too', () => {
    const lf = bytes('OPTIONS sip:a@example.com SIP/2.0\nCall-ID: lf\nl: 2\n\nok');
    const frames = feedChunks([lf, A]);
    assert.deepEqual(kinds(frames), ['message:ok', 'message:ok']);
    assert.ok(frames[0].bytes!.equals(lf));
  });
});
