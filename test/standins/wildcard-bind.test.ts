import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, test } from 'node:test';
import { ForwardStandin } from '../../src/standins/forward-standin.ts';
import { UasStandin } from '../../src/standins/uas-standin.ts';
import { advertisedAddress } from '../../src/transport/interface-address.ts';
import { headerValues, RawReceiver, RawUdpClient, statusOf, waitUntil } from '../support/raw-peers.ts';
import { freePort } from '../support/sipp.ts';

/**
 * The compose stack runs the stand-ins on 0.0.0.0. A peer that sends to 0.0.0.0 sends to itself, so
 * what they write in Via, Contact and Record-Route must name an address of theirs. Traffic here stays
 * on 127.0.0.1: the stand-ins listen on every interface, the test reaches them on loopback.
 */
function invite(clientPort: number): Buffer {
  return Buffer.from(
    [
      'INVITE sip:service@127.0.0.1 SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${clientPort};branch=z9hG4bK-wild1;rport`,
      'Max-Forwards: 70',
      `From: <sip:caller@127.0.0.1:${clientPort}>;tag=wild`,
      'To: <sip:service@127.0.0.1>',
      'Call-ID: wildcard-bind@test',
      'CSeq: 1 INVITE',
      `Contact: <sip:caller@127.0.0.1:${clientPort}>`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

const named = advertisedAddress('0.0.0.0');

describe('stand-ins bound on every interface', () => {
  test('the address they name is one of this machine, never the wildcard', () => {
    assert.equal(isIP(named), 4);
    assert.notEqual(named, '0.0.0.0');
    assert.equal(advertisedAddress('127.0.0.1'), '127.0.0.1', 'a concrete address is named as it is');
    assert.equal(isIP(advertisedAddress('::')), 6);
  });

  test("the UAS's Contact names a reachable address", async () => {
    const uas = await new UasStandin({
      host: '0.0.0.0',
      port: await freePort(),
      ringMs: 5,
      answerMs: 5,
    }).start();
    const caller = await RawUdpClient.open();
    try {
      await caller.send(invite(caller.port), uas.port, '127.0.0.1');
      assert.ok(await waitUntil(() => caller.received.some((b) => statusOf(b) === 200), 2000), 'a 200 OK');
      const ok = caller.received.find((b) => statusOf(b) === 200)!;
      assert.deepEqual(headerValues(ok, 'contact'), [`<sip:uas@${named}:${uas.port}>`]);
    } finally {
      await caller.close();
      await uas.stop();
    }
  });

  test("the forward stand-in's Via and Record-Route name a reachable address", async () => {
    const next = await RawReceiver.start();
    const forward = await new ForwardStandin({
      host: '0.0.0.0',
      port: await freePort(),
      next: { transport: 'udp', host: '127.0.0.1', port: next.port },
    }).start();
    const caller = await RawUdpClient.open();
    try {
      await caller.send(invite(caller.port), forward.port, '127.0.0.1');
      assert.ok(await waitUntil(() => next.arrivals.length > 0, 2000), 'the INVITE forwarded');
      const forwarded = next.arrivals[0].bytes;
      assert.match(headerValues(forwarded, 'via')[0], new RegExp(`^SIP/2\\.0/UDP ${named}:${forward.port};`));
      assert.deepEqual(headerValues(forwarded, 'record-route'), [`<sip:${named}:${forward.port};lr>`]);
    } finally {
      await caller.close();
      await forward.stop();
      await next.close();
    }
  });
});
