import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chunksLength, EditList } from '../../src/wire/edit-list.ts';
import { bytes } from './bytes.ts';

const ORIGINAL = bytes('0123456789abcdefghij');

function applied(e: EditList, buf = ORIGINAL, start = 0, end = buf.length): string {
  return Buffer.concat(e.apply(buf, start, end)).toString('latin1');
}

describe('EditList', () => {
  test('no edits gives the original range as one chunk that is a view, not a copy', () => {
    const e = new EditList();
    const chunks = e.apply(ORIGINAL, 0, ORIGINAL.length);
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0].buffer, ORIGINAL.buffer);
    assert.ok(chunks[0].equals(ORIGINAL));
  });

  test('insert puts bytes before the offset', () => {
    const e = new EditList();
    e.insert(3, bytes('[X]'));
    assert.equal(applied(e), '012[X]3456789abcdefghij');
  });

  test('inserts at the start and at the end of the range', () => {
    const e = new EditList();
    e.insert(20, bytes('>'));
    e.insert(0, bytes('<'));
    assert.equal(applied(e), '<0123456789abcdefghij>');
  });

  test('inserts at one offset keep the order they were added in', () => {
    const e = new EditList();
    e.insert(5, bytes('A'));
    e.insert(2, bytes('z'));
    e.insert(5, bytes('B'));
    e.insert(5, bytes('C'));
    assert.equal(applied(e), '01z234ABC56789abcdefghij');
  });

  test('remove drops a range and replace swaps it', () => {
    const e = new EditList();
    e.remove(2, 4);
    e.replace(10, 13, bytes('ABC-'));
    assert.equal(applied(e), '01456789ABC-defghij');
  });

  test('edits added in any order are applied by offset', () => {
    const e = new EditList();
    e.replace(15, 16, bytes('F'));
    e.insert(0, bytes('^'));
    e.remove(8, 10);
    e.insert(12, bytes('|'));
    assert.equal(applied(e), '^01234567ab|cdeFghij');
    assert.equal(e.size, 4);
  });

  test('an insert at the end of a removal lands right after the gap', () => {
    const e = new EditList();
    e.remove(2, 5);
    e.insert(5, bytes('+'));
    assert.equal(applied(e), '01+56789abcdefghij');
  });

  test('an insert added before a replace at the same offset comes first', () => {
    const e = new EditList();
    e.insert(4, bytes('I'));
    e.replace(4, 6, bytes('R'));
    assert.equal(applied(e), '0123IR6789abcdefghij');
  });

  test('unedited bytes are the original bytes: chunks between edits are views into the buffer', () => {
    const e = new EditList();
    e.insert(5, bytes('X'));
    e.remove(10, 12);
    const chunks = e.apply(ORIGINAL, 0, ORIGINAL.length);
    assert.equal(chunks.length, 4);
    assert.equal(chunks[0].buffer, ORIGINAL.buffer);
    assert.equal(chunks[2].buffer, ORIGINAL.buffer);
    assert.equal(chunks[3].buffer, ORIGINAL.buffer);
    assert.equal(chunksLength(chunks), ORIGINAL.length + 1 - 2);
  });

  test('apply works on a message range inside a larger buffer (dblreq: trailing octets are not sent)', () => {
    const buf = bytes('JUNKmessage-bodyTRAIL');
    const e = new EditList();
    e.insert(11, bytes('!'));
    assert.equal(applied(e, buf, 4, 16), 'message!-body');
  });

  test('clear() empties the list for the next message', () => {
    const e = new EditList();
    e.insert(1, bytes('x'));
    e.clear();
    assert.equal(e.size, 0);
    assert.equal(applied(e), ORIGINAL.toString('latin1'));
  });

  test('a list reused after clear() applies only the new edits', () => {
    const e = new EditList();
    for (let round = 0; round < 3; round++) {
      e.clear();
      e.insert(round, bytes(`<${round}>`));
      e.replace(10, 11, bytes('#'));
      assert.equal(e.size, 2);
      const want = `${ORIGINAL.toString('latin1', 0, round)}<${round}>${ORIGINAL.toString('latin1', round, 10)}#bcdefghij`;
      assert.equal(applied(e), want);
    }
  });

  test('a removal inside another removal is clipped, not doubled', () => {
    const e = new EditList();
    e.remove(2, 8);
    e.remove(4, 6);
    assert.equal(applied(e), '0189abcdefghij');
  });

  test('apply can be called twice with the same result', () => {
    const e = new EditList();
    e.insert(3, bytes('x'));
    e.replace(5, 6, bytes('y'));
    assert.equal(applied(e), applied(e));
  });
});
