import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readCSeq, readMaxForwards } from '../../src/wire/read-cseq.ts';
import { bytes } from './bytes.ts';

function cseq(value: string) {
  const b = bytes(value);
  return readCSeq(b, 0, b.length);
}

function maxForwards(value: string): number {
  const b = bytes(value);
  return readMaxForwards(b, 0, b.length);
}

describe('readCSeq', () => {
  test('reads the sequence number and the method', () => {
    assert.deepEqual(cseq('314159 INVITE'), { seq: 314159, method: 'INVITE' });
  });

  test('leading zeros and folded LWS are fine (RFC 4475 wsinv "0009\\r\\n  INVITE")', () => {
    assert.deepEqual(cseq('0009\r\n  INVITE'), { seq: 9, method: 'INVITE' });
    assert.deepEqual(cseq('  1 \t OPTIONS  '), { seq: 1, method: 'OPTIONS' });
  });

  test('2^31-1 is the largest sequence number, 2^31 is refused (RFC 3261 §8.1.1.5)', () => {
    assert.deepEqual(cseq('2147483647 REGISTER'), { seq: 2147483647, method: 'REGISTER' });
    assert.equal(cseq('2147483648 REGISTER'), null);
    assert.equal(cseq('4294967296 REGISTER'), null);
  });

  test('the overlarge CSeq of RFC 4475 scalar02 is refused', () => {
    assert.equal(cseq('36893488147419103232 REGISTER'), null);
  });

  test('an unknown method token is kept as it is', () => {
    assert.deepEqual(cseq('8 NEWMETHOD'), { seq: 8, method: 'NEWMETHOD' });
    assert.deepEqual(cseq('8 RE%47IST%45R'), { seq: 8, method: 'RE%47IST%45R' });
  });

  for (const bad of ['', 'INVITE', '1', '1INVITE', '1 INVITE extra', '-1 INVITE', '1 INV@TE', 'x 1']) {
    test(`CSeq ${JSON.stringify(bad)} is null`, () => {
      assert.equal(cseq(bad), null);
    });
  }
});

describe('readMaxForwards', () => {
  test('reads 0 to 255', () => {
    assert.equal(maxForwards('0'), 0);
    assert.equal(maxForwards('70'), 70);
    assert.equal(maxForwards('255'), 255);
  });

  test('leading zeros are fine (RFC 4475 wsinv "0068")', () => {
    assert.equal(maxForwards('0068'), 68);
    assert.equal(maxForwards('  0068 '), 68);
  });

  test('above 255 is invalid (RFC 4475 scalar02: 300)', () => {
    assert.equal(maxForwards('256'), -1);
    assert.equal(maxForwards('300'), -1);
    assert.equal(maxForwards('99999999999999999999'), -1);
  });

  for (const bad of ['', ' ', '-1', '7a', '7 0', '0x10']) {
    test(`Max-Forwards ${JSON.stringify(bad)} is -1`, () => {
      assert.equal(maxForwards(bad), -1);
    });
  }
});
