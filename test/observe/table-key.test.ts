import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { tableKey, tableKeyAt } from '../../src/observe/table-key.ts';

describe('table keys', () => {
  test('a key is the two texts joined by a bar, however long or wide they are', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 300, unit: 'binary' }),
        fc.string({ maxLength: 20 }),
        (first, second) => {
          assert.equal(tableKey(first, second), `${first}|${second}`);
        },
      ),
      { numRuns: 3000 },
    );
    assert.equal(tableKey('z9hG4bK-ü€', 'INVITE'), 'z9hG4bK-ü€|INVITE', 'a character wider than a byte');
    assert.equal(tableKey('b', 'ME\u0100'), 'b|ME\u0100');
  });

  test('a key read from the bytes equals the one made from their latin1 text', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.nat(),
        fc.nat(),
        fc.constantFrom('INVITE', 'ACK', 'BYE', 'CANCEL', 'X\u00ff', 'W\u0101'),
        (bytes, a, b, method) => {
          const buf = Buffer.from(bytes);
          const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
          const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
          assert.equal(
            tableKeyAt(buf, start, end, method),
            `${buf.toString('latin1', start, end)}|${method}`,
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('the scratch it is made in leaves nothing behind: each key stands alone', () => {
    const long = tableKey('z9hG4bK-sS0123456789abcdef0123', 'INVITE');
    const short = tableKey('a', 'BYE');
    assert.equal(long, 'z9hG4bK-sS0123456789abcdef0123|INVITE');
    assert.equal(short, 'a|BYE');
  });
});
