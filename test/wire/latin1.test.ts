import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { internLatin1, writeLatin1 } from '../../src/wire/latin1.ts';

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

test('internLatin1 reads what toString("latin1") reads, whatever was read before into the same slot', () => {
  // Few distinct texts, many of one length and first and last byte, so that slots are shared and replaced.
  const text = fc
    .array(fc.constantFrom(0x31, 0x32, 0x2e, 0x61, 0xe9, 0x3a), { minLength: 0, maxLength: 70 })
    .map((a) => Buffer.from(a));
  fc.assert(
    fc.property(fc.array(fc.tuple(text, fc.nat(8)), { minLength: 1, maxLength: 60 }), (reads) => {
      for (const [bytes, pad] of reads) {
        // Each text inside a larger buffer, as a Via's host lies in its message.
        const buf = Buffer.concat([Buffer.alloc(pad, 0x20), bytes, Buffer.from(';branch')]);
        assert.equal(internLatin1(buf, pad, pad + bytes.length), bytes.toString('latin1'));
      }
    }),
    { numRuns: 2000 },
  );
});
