import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { indexOfByte, indexOfBytes, startsWithBytes } from '../../src/wire/byte-search.ts';

/** What a search of buf[from, end) must answer: Buffer#indexOf on a view of just that range. */
function expected(buf: Buffer, needle: number | Uint8Array, from: number, end: number): number {
  const i = buf.subarray(from, end).indexOf(needle);
  return i === -1 ? -1 : from + i;
}

// Texts of few letters, so that needles are found, half found, and found only past the range.
const text = fc
  .uint8Array({ minLength: 0, maxLength: 400 })
  .map((a) => Buffer.from(a.map((b) => 0x61 + (b % 3))));
const range = (buf: Buffer) =>
  fc
    .tuple(fc.nat(buf.length), fc.nat(buf.length))
    .map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);

describe('byte search', () => {
  test('indexOfByte answers as Buffer#indexOf on the range alone, short ranges and long ones', () => {
    fc.assert(
      fc.property(
        text.chain((buf) => fc.tuple(fc.constant(buf), range(buf), fc.constantFrom(0x61, 0x62, 0x63, 0x64))),
        ([buf, [from, end], byte]) => {
          assert.equal(indexOfByte(buf, byte, from, end), expected(buf, byte, from, end));
        },
      ),
      { numRuns: 5000 },
    );
  });

  test('indexOfBytes answers as Buffer#indexOf on the range alone, a needle across its end too', () => {
    const needle = fc
      .uint8Array({ minLength: 1, maxLength: 4 })
      .map((a) => Buffer.from(a.map((b) => 0x61 + (b % 3))));
    fc.assert(
      fc.property(
        text.chain((buf) => fc.tuple(fc.constant(buf), range(buf), needle)),
        ([buf, [from, end], n]) => {
          assert.equal(indexOfBytes(buf, n, from, end), expected(buf, n, from, end));
        },
      ),
      { numRuns: 5000 },
    );
  });

  test('indexOfByte finds the first LF in [from, end) and nothing at or past end', () => {
    const b = Buffer.from(`${'a'.repeat(150)}\n${'b'.repeat(10)}\n`);
    assert.equal(indexOfByte(b, 0x0a, 0, b.length), 150);
    assert.equal(indexOfByte(b, 0x0a, 100, b.length), 150);
    assert.equal(indexOfByte(b, 0x0a, 0, 150), -1);
    assert.equal(indexOfByte(b, 0x0a, 151, b.length), 161);
    assert.equal(indexOfByte(b, 0x0a, 151, 161), -1);
    assert.equal(indexOfByte(b, 0x0a, 0, 20), -1);
  });

  test('nothing past the end is found, however near: a message in an arena of other datagrams', () => {
    const arena = Buffer.from(`Via: SIP/2.0/UDP a;branch=z9hG4bK-1\r\n${'x'.repeat(200)}@z9hG4bK-sS\n`);
    const end = arena.indexOf('\r\n') + 2;
    assert.equal(indexOfBytes(arena, Buffer.from('z9hG4bK-sS'), 0, end), -1);
    assert.equal(indexOfByte(arena, 0x40, 0, end), -1);
    assert.equal(indexOfByte(arena, 0x0a, end, arena.length - 1), -1);
    assert.equal(indexOfByte(arena, 0x0a, end, arena.length), arena.length - 1);
  });

  test('startsWithBytes is true exactly when the prefix lies at the start of the range, within it', () => {
    fc.assert(
      fc.property(
        text.chain((buf) => fc.tuple(fc.constant(buf), range(buf), fc.constantFrom('a', 'ab', 'abc', 'cab'))),
        ([buf, [from, end], prefix]) => {
          const needle = Buffer.from(prefix);
          assert.equal(startsWithBytes(buf, from, end, needle), expected(buf, needle, from, end) === from);
        },
      ),
      { numRuns: 5000 },
    );
  });
});
