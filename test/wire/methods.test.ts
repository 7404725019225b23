import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KNOWN_METHODS, methodLabel, readMethod } from '../../src/wire/methods.ts';
import { bytes } from './bytes.ts';

function read(text: string, pad = 'x '): string {
  // The token sits inside a larger buffer, as it does in a message.
  const b = bytes(`${pad}${text} y`);
  return readMethod(b, pad.length, pad.length + text.length);
}

describe('readMethod', () => {
  test('every known method reads as itself', () => {
    for (const m of KNOWN_METHODS) assert.equal(read(m), m);
  });

  test('methods are case-sensitive: a lowercase token is an unknown method, kept as sent', () => {
    assert.equal(read('invite'), 'invite');
    assert.equal(methodLabel(read('invite')), 'other');
  });

  test('a prefix or an extension of a known method is not that method', () => {
    assert.equal(read('INV'), 'INV');
    assert.equal(read('INVITES'), 'INVITES');
    assert.equal(read('ACKS'), 'ACKS');
  });

  test('RFC 4475 §3.1.1.5: RE%47IST%45R is not decoded to REGISTER', () => {
    assert.equal(read('RE%47IST%45R'), 'RE%47IST%45R');
    assert.equal(methodLabel(read('RE%47IST%45R')), 'other');
  });

  test('bytes above 0x7f read as latin1, one character per byte', () => {
    const b = Buffer.from([0x4e, 0xe9, 0x57]);
    assert.equal(readMethod(b, 0, 3), 'N\u00e9W');
  });
});
