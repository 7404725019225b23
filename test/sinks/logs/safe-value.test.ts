import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitLine, MAX_LINE_BYTES } from '../../../src/sinks/logs/line-fit.ts';
import { RateLimiter } from '../../../src/sinks/logs/rate-limiter.ts';
import { safeValue, truncateBytes } from '../../../src/sinks/logs/safe-value.ts';

/** Bytes as the wire layer hands them over: one latin1 character per byte. */
const wire = (bytes: number[] | string) =>
  typeof bytes === 'string'
    ? Buffer.from(bytes, 'utf8').toString('latin1')
    : Buffer.from(bytes).toString('latin1');

const byteLength = (s: string) => Buffer.byteLength(s, 'utf8');

function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

describe('safeValue', () => {
  test('printable ASCII within the bound comes back as the same string', () => {
    const v = 'a84b4c76e66710@pc33.atlanta.example.com';
    assert.equal(safeValue(v, 256), v);
  });

  test('CR, LF, TAB, NUL, other C0 controls and DEL become visible escapes', () => {
    assert.equal(safeValue('a\r\nb\tc\u0000d\u0007e\u007f', 256), 'a\\r\\nb\\tc\\u0000d\\u0007e\\u007f');
  });

  test('a backslash is doubled, so an escape in the output always means an escape', () => {
    assert.equal(safeValue('x\\r', 256), 'x\\\\r');
  });

  test('valid UTF-8 off the wire is shown as its characters', () => {
    assert.equal(safeValue(wire('José ☃ 😀'), 256), 'José ☃ 😀');
  });

  test('bytes that are not valid UTF-8 become \\xNN', () => {
    // stray continuation, overlong '/', a UTF-16 surrogate, above U+10FFFF, a truncated sequence, 0xFF
    assert.equal(safeValue(wire([0x80, 0x41]), 256), '\\x80A');
    assert.equal(safeValue(wire([0xc0, 0xaf]), 256), '\\xc0\\xaf');
    assert.equal(safeValue(wire([0xed, 0xa0, 0x80]), 256), '\\xed\\xa0\\x80');
    assert.equal(safeValue(wire([0xf4, 0x90, 0x80, 0x80]), 256), '\\xf4\\x90\\x80\\x80');
    assert.equal(safeValue(wire([0xe2, 0x82]), 256), '\\xe2\\x82');
    assert.equal(safeValue(wire([0xff]), 256), '\\xff');
  });

  test('validly encoded C1 controls, line separators and bidi overrides are escaped', () => {
    assert.equal(
      safeValue(wire('\u0085|\u2028|\u2029|\u202e|\u2066'), 256),
      '\\u0085|\\u2028|\\u2029|\\u202e|\\u2066',
    );
  });

  test('a JS string with a lone surrogate gets it escaped; a pair is kept', () => {
    assert.equal(safeValue('a\ud800b\udc00c😀', 256), 'a\\ud800b\\udc00c😀');
  });

  test('a 10 KB value is cut to max bytes with a marker, reading only its start', () => {
    const v = safeValue('A'.repeat(10 * 1024), 256);
    assert.equal(byteLength(v), 256);
    assert.ok(v.endsWith('…'));
    assert.equal(v, `${'A'.repeat(253)}…`);
  });

  test('a cut never splits an escape or a multi-byte character', () => {
    for (let max = 4; max < 40; max++) {
      for (const v of [
        '\r\n'.repeat(30),
        wire('é'.repeat(30)),
        wire('😀'.repeat(30)),
        `ab${'\u0000'.repeat(30)}`,
      ]) {
        const out = safeValue(v, max);
        assert.ok(byteLength(out) <= max, `${JSON.stringify(out)} over ${max} bytes`);
        assert.ok(out.endsWith('…'));
        const body = out.slice(0, -1);
        assert.ok(
          !/\\(u[0-9a-f]{0,3}|x[0-9a-f]?)?$/.test(body) || body.endsWith('\\\\'),
          `cut inside an escape: ${out}`,
        );
        assert.ok(!/[\ud800-\udbff]$/.test(body), `cut inside a pair: ${out}`);
      }
    }
  });

  test('hostile values of every length give valid single-line JSON within the bound', () => {
    const alphabet = ['\r', '\n', '\u0000', '\u0085', '\\', '"', 'A', '\u00e9', '\u00c3', '\u00ff', '\u2028'];
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let k = 0; k < 500; k++) {
      let v = '';
      const len = rnd() % 600;
      for (let i = 0; i < len; i++) v += alphabet[rnd() % alphabet.length];
      const out = safeValue(v, 128);
      assert.ok(byteLength(out) <= 128);
      const json = JSON.stringify({ v: out });
      assert.ok(!['\r', '\n', '\u0000', '\u2028'].some((c) => json.includes(c)));
      assert.equal(JSON.parse(json).v, out);
      assert.ok(!hasControlCharacter(out), `control character left in ${JSON.stringify(out)}`);
    }
  });

  test('truncateBytes cuts an already-safe string at a character boundary', () => {
    assert.equal(truncateBytes('abc', 10), 'abc');
    assert.equal(truncateBytes('é'.repeat(10), 9), 'ééé…');
    assert.equal(truncateBytes('😀😀😀', 8), '😀…');
  });
});

describe('fitLine', () => {
  test('a line within the bound is returned unchanged', () => {
    const line = `${JSON.stringify({ level: 'info', msg: 'transaction', call_id: 'x' })}\n`;
    assert.equal(fitLine(line), line);
  });

  test('an oversized line keeps its core fields, drops the optional ones and says so', () => {
    const line = `${JSON.stringify({
      level: 'info',
      time: '2026-01-01T00:00:00.000Z',
      msg: 'transaction',
      call_id: 'C'.repeat(9000),
      from_user: 'u'.repeat(5000),
      detail: { a: 'b'.repeat(5000) },
      status: 200,
    })}\n`;
    const out = fitLine(line);
    assert.ok(byteLength(out) <= MAX_LINE_BYTES);
    assert.ok(out.endsWith('\n') && out.indexOf('\n') === out.length - 1);
    const v = JSON.parse(out);
    assert.equal(v.truncated, true);
    assert.deepEqual(v.dropped_fields, ['from_user', 'detail']);
    assert.equal(v.status, 200);
    assert.equal(v.level, 'info');
    assert.ok(byteLength(v.call_id) <= 256 && v.call_id.endsWith('…'));
  });
});

describe('RateLimiter', () => {
  test('at most perSecond lines per key each second; the next line carries the suppressed count', () => {
    const r = new RateLimiter(3);
    const got = [];
    for (let i = 0; i < 10; i++) got.push(r.admit('bad-via', 1000 + i));
    assert.deepEqual(got, [0, 0, 0, -1, -1, -1, -1, -1, -1, -1]);
    assert.equal(r.admit('max-forwards', 1010), 0, 'each reason has its own budget');
    assert.equal(r.admit('bad-via', 2000), 7, 'the first line of the next window carries 7');
    assert.equal(r.admit('bad-via', 2001), 0);
  });

  test('suppressed counts no line carried are handed over once their window is over', () => {
    const r = new RateLimiter(1);
    r.admit('x', 0);
    r.admit('x', 1);
    r.admit('x', 2);
    assert.deepEqual(r.takeStale(1500, 1000), [], 'still in the grace time');
    assert.deepEqual(r.takeStale(2000, 1000), [['x', 2]]);
    assert.deepEqual(r.takeStale(5000, 1000), [], 'handed over once');
    assert.equal(r.hasSuppressed, false);
  });
});
