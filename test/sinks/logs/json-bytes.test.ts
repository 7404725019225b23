/**
 * The pieces of a log line written as bytes read back as the JSON they stand for, and a piece
 * that does not fit before its limit writes nothing at or past it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  copyPlain,
  NOT_PLAIN,
  putAscii,
  putInteger,
  putMs,
  putString,
} from '../../../src/sinks/logs/json-bytes.ts';

const SENTINEL = 0xee;

/** What `put` writes from offset 3 of a roomy buffer, as text; and that every shorter limit gets -1 with nothing past it. */
function written(put: (out: Buffer, p: number, limit: number) => number): string {
  const out = Buffer.alloc(4096, SENTINEL);
  const end = put(out, 3, out.length);
  assert.ok(end >= 3);
  for (const limit of [3, 4, end - 1]) {
    if (limit < 3 || limit >= end) continue;
    const small = Buffer.alloc(out.length, SENTINEL);
    assert.equal(put(small, 3, limit), -1, `limit ${limit}`);
    assert.ok(
      small.subarray(limit).every((b) => b === SENTINEL),
      `written past the limit ${limit}`,
    );
  }
  return out.toString('utf8', 3, end);
}

/** Milliseconds rounded to µs, as the line's *_ms fields mean them. */
const ms = (v: number) => Math.round(v * 1000) / 1000;

describe('JSON pieces as bytes', () => {
  test('strings: plain text copied, quotes, backslashes, controls, UTF-8 and lone surrogates as JSON.stringify writes them', () => {
    for (const s of ['127.0.0.1:5060', '', 'a"b\\c', 'x\ny', 'tab\t', 'café', '☎ 𝄞', '\ud800', '\x7f'])
      assert.equal(
        written((o, p, l) => putString(o, p, l, s)),
        JSON.stringify(s),
        s,
      );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        assert.equal(
          written((o, p, l) => putString(o, p, l, s)),
          JSON.stringify(s),
        );
      }),
      { numRuns: 500 },
    );
  });

  test('copyPlain copies only what needs no escape', () => {
    const out = Buffer.alloc(64);
    assert.equal(copyPlain(out, 0, 64, 'sip:bob@h'), 11);
    assert.equal(out.toString('latin1', 0, 11), '"sip:bob@h"');
    for (const s of ['a"b', 'a\\b', 'a\rb', 'é']) assert.equal(copyPlain(out, 0, 64, s), NOT_PLAIN, s);
  });

  test('integers as JSON writes them, anything else as its String()', () => {
    for (const n of [0, 7, 10, 99, 100, 314159, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, -1, 1.5, 1e21])
      assert.equal(
        written((o, p, l) => putInteger(o, p, l, n)),
        String(n),
      );
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 - 1 }), (n) => {
        assert.equal(
          written((o, p, l) => putInteger(o, p, l, n)),
          String(n),
        );
      }),
    );
  });

  test('milliseconds as JSON writes the number rounded to µs', () => {
    for (const v of [0, 0.0004, 0.0005, 0.001, 0.01, 0.1, 0.5, 1, 3, 12.345, 12.3456, 999.9995, 1e6 + 0.25])
      assert.equal(
        written((o, p, l) => putMs(o, p, l, v)),
        JSON.stringify(ms(v)),
        String(v),
      );
    // Beyond the fast path's range the double's own text is used.
    for (const v of [-0.25, 2 ** 31 / 1000 + 1, 3e6, 1e300])
      assert.equal(
        written((o, p, l) => putMs(o, p, l, v)),
        JSON.stringify(ms(v)),
        String(v),
      );
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), (v) => {
        assert.equal(
          written((o, p, l) => putMs(o, p, l, v)),
          JSON.stringify(ms(v)),
        );
      }),
      { numRuns: 2000 },
    );
  });

  test('-1 goes through: a piece after one that did not fit writes nothing', () => {
    const out = Buffer.alloc(8, SENTINEL);
    let p = putAscii(out, 0, 8, '{"a":');
    p = putString(out, p, 8, 'long value');
    assert.equal(p, -1);
    for (const put of [putAscii, putString] as const) assert.equal(put(out, p, 8, 'x'), -1);
    assert.equal(putInteger(out, -1, 8, 5), -1);
    assert.equal(putMs(out, -1, 8, 5.5), -1);
  });
});
