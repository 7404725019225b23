import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { frameDatagram } from '../../src/wire/frame-datagram.ts';
import { HeaderId } from '../../src/wire/header-names.ts';
import { emptyVia, lowerTransport, readVia, type ViaValue } from '../../src/wire/read-via.ts';
import { corpusFile } from '../support/corpus.ts';
import { bytes } from './bytes.ts';

function via(value: string): ViaValue | null {
  const b = bytes(value);
  return readVia(b, 0, b.length);
}

function viaOk(value: string): ViaValue {
  const v = via(value);
  assert.ok(v !== null, `expected ${JSON.stringify(value)} to be read`);
  return v;
}

/** Every via-parm of a field value, following `next`. */
function viaChain(value: string): (ViaValue | null)[] {
  const b = bytes(value);
  const out: (ViaValue | null)[] = [];
  let start = 0;
  for (let i = 0; i < 10; i++) {
    const v = readVia(b, start, b.length);
    out.push(v);
    if (v === null || v.next === -1) break;
    assert.ok(v.next > start, 'next moves forward');
    start = v.next;
  }
  return out;
}

describe('readVia', () => {
  test('reads transport, host, port and branch of a plain via-parm', () => {
    const v = viaOk('SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bK776asdhds');
    assert.equal(v.transport, 'UDP');
    assert.equal(v.host, 'pc33.example.com');
    assert.equal(v.isIPv6, false);
    assert.equal(v.port, 5066);
    assert.equal(v.branch, 'z9hG4bK776asdhds');
    assert.equal(v.received, null);
    assert.equal(v.rport, -1);
    assert.equal(v.rportNameEnd, -1);
    assert.equal(v.maddr, null);
    assert.equal(v.next, -1);
  });

  test('read into a given value, each read leaves nothing of the one before', () => {
    const into = emptyVia();
    const a = bytes(
      'SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK1;received=192.0.2.1;rport=5071;maddr=m, SIP/2.0/UDP x',
    );
    assert.equal(readVia(a, 0, a.length, into), into);
    assert.deepEqual(
      [into.transport, into.host, into.isIPv6, into.port, into.branch, into.received, into.rport, into.maddr],
      ['TCP', '2001:db8::9', true, 5070, 'z9hG4bK1', '192.0.2.1', 5071, 'm'],
    );
    assert.ok(into.next > 0);
    const b = bytes('SIP/2.0/UDP h;rport');
    assert.equal(readVia(b, 0, b.length, into), into);
    assert.deepEqual({ ...into }, { ...viaOk('SIP/2.0/UDP h;rport') }, 'the same as a new value');
    assert.equal(readVia(bytes('SIP/2.0/UDP'), 0, 11, into), null);
  });

  test('withBranch false reads everything but the branch, and still refuses a branch without a value', () => {
    const b = bytes(
      'SIP/2.0/UDP 192.0.2.7:5062;received=192.0.2.9;branch=z9hG4bK-abc;rport=7, SIP/2.0/TCP x',
    );
    const whole = readVia(b, 0, b.length);
    const without = readVia(b, 0, b.length, null, false);
    assert.ok(whole !== null && without !== null);
    assert.deepEqual({ ...without }, { ...whole, branch: null });
    assert.equal(b.toString('latin1', without.branchStart, without.branchEnd), 'z9hG4bK-abc');
    const bad = bytes('SIP/2.0/UDP h;branch');
    assert.equal(readVia(bad, 0, bad.length, null, false), null);
  });

  test('the transport is upper-cased and unknown transports are fine (RFC 4475 §3.1.1.10)', () => {
    assert.equal(viaOk('sip/2.0/tcp h').transport, 'TCP');
    assert.equal(viaOk('SIP/2.0/NOTATRANSPORT h').transport, 'NOTATRANSPORT');
    for (const t of ['udp', 'Udp', 'TCP', 'tls', 'Ws', 'wss', 'sctp', 'UDQ', 'xdp', 'w1']) {
      const v = viaOk(`SIP/2.0/${t} h`);
      assert.equal(v.transport, t.toUpperCase());
      assert.equal(lowerTransport(v.transport), t.toLowerCase());
    }
  });

  test('no port is 0 and no branch is null (RFC 2543 peers, inv2543)', () => {
    const v = viaOk('SIP/2.0/UDP iftgw.example.com');
    assert.equal(v.port, 0);
    assert.equal(v.branch, null);
    assert.deepEqual([v.branchStart, v.branchEnd], [-1, -1]);
    assert.equal(v.end, 'SIP/2.0/UDP iftgw.example.com'.length);
  });

  test('an IPv6 sent-by is read without its brackets, with and without port (RFC 5118 §4.1, §4.7)', () => {
    const a = viaOk('SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111');
    assert.equal(a.host, '2001:db8::9:1');
    assert.equal(a.isIPv6, true);
    assert.equal(a.port, 6050);
    assert.equal(a.branch, 'z9hG4bKas3-111');
    const b = viaOk('SIP/2.0/UDP [::ffff:192.0.2.2];branch=z9hG4bKas3-111');
    assert.equal(b.host, '::ffff:192.0.2.2');
    assert.equal(b.port, 0);
  });

  test('received with an IPv6 address is read with and without brackets (RFC 5118 §4.5)', () => {
    const withDelim = viaOk('SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111');
    assert.equal(withDelim.received, '2001:db8::9:255');
    assert.equal(withDelim.branch, 'z9hG4bKas3-111');
    const noDelim = viaOk('SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3');
    assert.equal(noDelim.received, '2001:db8::9:255');
    assert.equal(noDelim.branch, 'z9hG4bKas3');
    assert.equal(viaOk('SIP/2.0/UDP h;received=192.0.2.200').received, '192.0.2.200');
  });

  test('rport without a value is 0 and rportNameEnd points right after the name (RFC 3581)', () => {
    const value = 'SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKx';
    const v = viaOk(value);
    assert.equal(v.rport, 0);
    assert.equal(v.rportNameEnd, value.indexOf(';rport') + ';rport'.length);
    assert.equal(v.branch, 'z9hG4bKx');
  });

  test('rport with a value is that value and has no rportNameEnd', () => {
    const v = viaOk('SIP/2.0/UDP 192.0.2.1;received=198.51.100.7;rport=40123;branch=z9hG4bKx');
    assert.equal(v.rport, 40123);
    assert.equal(v.rportNameEnd, -1);
    assert.equal(v.received, '198.51.100.7');
  });

  test('rport above 65535 or not a number makes the via-parm malformed', () => {
    assert.equal(via('SIP/2.0/UDP h;rport=65536'), null);
    assert.equal(via('SIP/2.0/UDP h;rport=12a'), null);
    assert.equal(viaOk('SIP/2.0/UDP h;rport=65535').rport, 65535);
  });

  test('maddr is read, other parameters are skipped, parameter names are case-insensitive', () => {
    const v = viaOk('SIP/2.0/UDP h;TTL=16;MADDR=224.2.0.1;Branch=z9hG4bKcase;x-unknown="quoted;,value"');
    assert.equal(v.maddr, '224.2.0.1');
    assert.equal(v.branch, 'z9hG4bKcase');
  });

  test('LWS around "/", ";" and "=" and folding are allowed (RFC 4475 wsinv)', () => {
    const v = viaOk('SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw');
    assert.equal(v.transport, 'UDP');
    assert.equal(v.host, '192.0.2.2');
    assert.equal(v.branch, '390skdjuw');
    const w = viaOk('SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ');
    assert.equal(w.host, 'spindle.example.com');
    assert.equal(w.branch, 'z9hG4bK9ikj8');
  });

  test('several via-parms on one line are followed with `next` (RFC 3261 §7.3.1)', () => {
    const chain = viaChain(
      'SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n' +
        ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239',
    );
    assert.equal(chain.length, 2);
    assert.equal(chain[0]!.branch, 'z9hG4bK9ikj8');
    assert.equal(chain[1]!.host, '192.168.255.111');
    assert.equal(chain[1]!.branch, 'z9hG4bK30239');
    assert.equal(chain[1]!.next, -1);
  });

  test('`end` is the end of the via-parm, before the LWS and comma that follow it', () => {
    const value = 'SIP/2.0/UDP h1;branch=z9hG4bK1  , SIP/2.0/UDP h2';
    const v = viaOk(value);
    assert.equal(v.end, value.indexOf('  ,'));
    assert.equal(v.next, value.indexOf('SIP/2.0/UDP h2'));
  });

  test('extraneous separators make the Via malformed (RFC 4475 §3.1.2.1 badinv01)', () => {
    assert.equal(via('SIP/2.0/UDP 192.0.2.15;;,;,,'), null);
    const f = corpusFile('rfc4475', 'badinv01');
    const m = frameDatagram(f.raw).message!;
    const i = m.firstField[HeaderId.VIA];
    assert.equal(readVia(f.raw, m.fieldValueStart(i), m.fieldValueEnd(i)), null);
  });

  for (const bad of [
    '',
    'SIP/2.0/UDP',
    'SIP/2.0/UDP ',
    'SIP/2.0 UDP h',
    'SIPS/2.0/UDP h',
    'SIP//UDP h',
    'SIP/2.0/UDPh',
    'SIP/2.0/UDP h:',
    'SIP/2.0/UDP h:99999',
    'SIP/2.0/UDP [2001:db8::1',
    'SIP/2.0/UDP h;',
    'SIP/2.0/UDP h;branch',
    'SIP/2.0/UDP h;branch=',
    'SIP/2.0/UDP h;received',
    'SIP/2.0/UDP h;x="unterminated',
    'SIP/2.0/UDP h,',
    'SIP/2.0/UDP h, ,SIP/2.0/UDP h2',
    'SIP/2.0/UDP h junk',
  ]) {
    test(`malformed via-parm ${JSON.stringify(bad)} is null`, () => {
      assert.equal(via(bad), null);
    });
  }

  test('the top Via of every RFC 5118 IPv6 message is read (wire form)', () => {
    for (const name of ['ipv6-good', 'port-ambiguous', 'mult-ip-in-header', 'ipv4-mapped-ipv6']) {
      const f = corpusFile('rfc5118', name);
      const m = frameDatagram(f.wire).message!;
      const i = m.firstField[HeaderId.VIA];
      const v = readVia(f.wire, m.fieldValueStart(i), m.fieldValueEnd(i));
      assert.ok(v !== null, name);
      assert.equal(v.isIPv6, true, name);
    }
  });

  test('the lower Vias of mult-ip-in-header mix IPv4 and IPv6 and keep their received', () => {
    const f = corpusFile('rfc5118', 'mult-ip-in-header');
    const m = frameDatagram(f.wire).message!;
    const vias = [0, 1, 2].map((n) => {
      const i = m.fieldIndex(HeaderId.VIA, n);
      return readVia(f.wire, m.fieldValueStart(i), m.fieldValueEnd(i))!;
    });
    assert.deepEqual(
      vias.map((v) => [v.transport, v.host, v.port, v.branch, v.received]),
      [
        ['UDP', '2001:db8::9:1', 6050, 'z9hG4bKas3-111', null],
        ['UDP', '192.0.2.1', 0, 'z9hG4bKjhja8781hjuaij65144', null],
        ['TCP', '2001:db8::9:255', 0, 'z9hG4bK451jj', '192.0.2.200'],
      ],
    );
  });
});
