import assert from 'node:assert/strict';
import { isIP, isIPv4 } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ipFamily, isDottedQuad } from '../../src/transport/ip-family.ts';

describe('ipFamily', () => {
  test('answers as net.isIP for literals, near-literals and names', () => {
    const cases = [
      '127.0.0.1',
      '0.0.0.0',
      '255.255.255.255',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '1.2.3.04',
      '1..2.3',
      '.1.2.3',
      '1.2.3.',
      '1000.1.1.1',
      '',
      '::1',
      'fe80::1%eth0',
      '::ffff:192.0.2.1',
      '2001:db8::',
      'gateway',
      'sip-signaling.internal',
      '1.2.3.4a',
    ];
    for (const c of cases) {
      assert.equal(ipFamily(c), isIP(c), c);
      assert.equal(isDottedQuad(c), isIPv4(c), c);
    }
  });

  test('agrees with net.isIP on random texts of digits, dots and colons', () => {
    const text = fc.string({ unit: fc.constantFrom(...'0123456789.:af'.split('')), maxLength: 20 });
    const quad = fc
      .tuple(fc.nat(300), fc.nat(300), fc.nat(300), fc.nat(300), fc.boolean())
      .map(([a, b, c, d, lead]) => `${lead ? '0' : ''}${a}.${b}.${c}.${d}`);
    fc.assert(
      fc.property(fc.oneof(text, quad), (t) => {
        assert.equal(ipFamily(t), isIP(t), t);
        // Every IPv4 literal is recognised by the scan, not handed to net.isIP.
        assert.equal(isDottedQuad(t), isIPv4(t), t);
      }),
      { numRuns: 20_000 },
    );
  });
});
