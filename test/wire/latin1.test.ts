import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeLatin1 } from '../../src/wire/latin1.ts';

test('writeLatin1 writes what Buffer.from(s, "latin1") holds, where asked, and says where it ended', () => {
  for (const s of [
    '',
    'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n',
    'caf\u00e9 \u00ff',
    'a\u0100\u20acb',
  ]) {
    const out = Buffer.alloc(s.length + 4, 0xaa);
    assert.equal(writeLatin1(out, 2, s), 2 + s.length);
    assert.ok(out.subarray(2, 2 + s.length).equals(Buffer.from(s, 'latin1')), JSON.stringify(s));
    assert.deepEqual([...out.subarray(0, 2), ...out.subarray(2 + s.length)], [0xaa, 0xaa, 0xaa, 0xaa]);
  }
});
