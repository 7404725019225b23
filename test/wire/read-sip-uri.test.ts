import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { frameDatagram } from '../../src/wire/frame-datagram.ts';
import { checkSipUri, readSipUri, type SipUri } from '../../src/wire/read-sip-uri.ts';
import { corpusFile } from '../support/corpus.ts';
import { bytes } from './bytes.ts';

/** readSipUri, and checkSipUri (no strings made) agreeing with it on every URI these tests read. */
function read(buf: Buffer, start: number, end: number): SipUri | null {
  const u = readSipUri(buf, start, end);
  assert.equal(checkSipUri(buf, start, end), u === null ? -1 : u.hasHeaders ? 1 : 0);
  return u;
}

function uri(s: string): SipUri | null {
  const b = bytes(s);
  return read(b, 0, b.length);
}

/** The Request-URI of an RFC 5118 message in its wire form. */
function requestUriOf(name: string): SipUri | null {
  const f = corpusFile('rfc5118', name);
  const m = frameDatagram(f.wire).message!;
  return read(f.wire, m.uriStart, m.uriEnd);
}

describe('readSipUri', () => {
  test('reads host, port and the routing parameters', () => {
    const u = uri('sip:bob@biloxi.example.com:5070;transport=TCP;lr;maddr=239.255.255.1;other=x')!;
    assert.equal(u.secure, false);
    assert.equal(u.host, 'biloxi.example.com');
    assert.equal(u.port, 5070);
    assert.equal(u.transport, 'tcp');
    assert.equal(u.lr, true);
    assert.equal(u.maddr, '239.255.255.1');
    assert.equal(u.hasHeaders, false);
    assert.equal(u.isIPv6, false);
  });

  test('sips: is secure; the scheme is case-insensitive', () => {
    assert.equal(uri('sips:a@example.com')!.secure, true);
    assert.equal(uri('SIP:a@example.com')!.host, 'example.com');
  });

  test('a URI without user part and without port', () => {
    const u = uri('sip:example.com')!;
    assert.equal(u.host, 'example.com');
    assert.equal(u.port, 0);
    assert.equal(u.lr, false);
    assert.equal(u.transport, null);
  });

  test('other schemes are null (RFC 4475 unkscm, novelsc: routing does not use them)', () => {
    assert.equal(uri('nobodyKnowsThisScheme:totallyopaquecontent'), null);
    assert.equal(uri('soap.beep://192.0.2.103:3002'), null);
    assert.equal(uri('tel:+1-212-555-1212'), null);
    assert.equal(uri('<sip:user@example.com>'), null, 'RFC 4475 ltgtruri: <> around the Request-URI');
  });

  test('";" in the user part does not end the userinfo (RFC 4475 semiuri)', () => {
    const u = uri('sip:user;par=u%40example.net@example.com')!;
    assert.equal(u.host, 'example.com');
  });

  test('escaped characters are never decoded (RFC 4475 esc01)', () => {
    assert.equal(uri('sip:sips%3Auser%40example.com@example.net')!.host, 'example.net');
  });

  test('a read after one with parameters keeps none of them', () => {
    assert.equal(checkSipUri(bytes('sip:a@b;transport=tcp;lr;maddr=m?h=1'), 0, 36), 1);
    assert.deepEqual(uri('sips:c@[::1]:7'), {
      secure: true,
      host: '::1',
      isIPv6: true,
      port: 7,
      transport: null,
      lr: false,
      maddr: null,
      hasHeaders: false,
    });
  });

  test('a ?headers part is flagged (not allowed in a Request-URI, RFC 4475 §3.1.2.11 escruri)', () => {
    const u = uri('sip:user@example.com?Route=%3Csip:example.com%3E')!;
    assert.equal(u.hasHeaders, true);
    assert.equal(u.host, 'example.com');
  });

  test('a bracketed IPv6 host, with and without port (RFC 5118 §4.1, §4.4)', () => {
    const good = requestUriOf('ipv6-good')!;
    assert.equal(good.host, '2001:db8::10');
    assert.equal(good.isIPv6, true);
    assert.equal(good.port, 0);
    const port = requestUriOf('port-unambiguous')!;
    assert.equal(port.host, '2001:db8::10');
    assert.equal(port.port, 5070);
  });

  test('an unbracketed IPv6 Request-URI is invalid (RFC 5118 §4.2 ipv6-bad)', () => {
    assert.equal(requestUriOf('ipv6-bad'), null);
    assert.equal(uri('sip:2001:db8::10'), null);
  });

  test('"[2001:db8::10:5070]" is a host with no port, not rewritten (RFC 5118 §4.3)', () => {
    const u = requestUriOf('port-ambiguous')!;
    assert.equal(u.host, '2001:db8::10:5070');
    assert.equal(u.port, 0);
  });

  test('three colons in an IPv4-in-IPv6 reference are tolerated, two are valid (RFC 5118 §4.10)', () => {
    assert.equal(requestUriOf('ipv6-bug-abnf-3-colons')!.host, '2001:db8:::192.0.2.1');
    assert.equal(requestUriOf('ipv6-correct-abnf-2-colons')!.host, '2001:db8::192.0.2.1');
  });

  test('the Request-URIs of every other RFC 5118 message are read', () => {
    for (const name of [
      'ipv6-in-sdp',
      'mult-ip-in-sdp',
      'via-received-param-no-delim',
      'via-received-param-with-delim',
    ]) {
      const u = requestUriOf(name);
      assert.ok(u !== null, name);
      assert.equal(u.host, '2001:db8::10', name);
    }
    assert.equal(requestUriOf('mult-ip-in-header')!.host, 'host.example.net');
    assert.equal(requestUriOf('ipv4-mapped-ipv6')!.host, 'example.com');
  });

  for (const bad of [
    'sip:',
    'sip:user@',
    'sip:host:',
    'sip:host:99999',
    'sip:host:80x',
    'sip:[::1',
    'sip:@',
  ]) {
    test(`malformed ${JSON.stringify(bad)} is null`, () => {
      assert.equal(uri(bad), null);
    });
  }
});
