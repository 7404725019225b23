/**
 * Defects found by the long reliability runs, each pinned by the smallest
 * input that shows it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { channels } from '../../src/observe/channels.ts';
import type { TransactionRecord } from '../../src/observe/records.ts';
import { waitUntil } from '../support/raw-peers.ts';
import {
  CountingPeer,
  collect,
  HOST,
  MiniUac,
  responseTo,
  sipRequest,
  startProxy,
  toTagOf,
  viaLines,
} from './support/harness.ts';

describe('regressions', { concurrency: false }, () => {
  test('a name lookup that completes after stop() must not throw out of the deferred send (found by scripts/fuzz-network.ts)', async () => {
    // Found at the end of a 300,000-message fuzz run: a request whose next hop
    // is a host name (Route popped, Request-URI sip:…@name) waits for DNS; when
    // the answer came after stop() had closed the UDP socket, dgram's send threw
    // ERR_SOCKET_DGRAM_NOT_RUNNING inside the promise callback: an unhandled
    // rejection, which ends a Node process. The resolver is slowed here to make
    // the window certain.
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    const up = await CountingPeer.start();
    const proxy = await startProxy({ routes: [{ name: 'dns', upstream: `udp://${HOST}:${up.port}` }] });
    const { app, ports } = proxy;
    let lookups = 0;
    app.resolver.resolve = async () => {
      lookups++;
      await sleep(300);
      return { address: HOST, family: 4, expiresAt: performance.now() + 30_000 };
    };
    const uac = await MiniUac.open();
    try {
      // Loose routing (RFC 3261 §16.4, §16.12): our Route entry is popped, the
      // Request-URI names the next hop by host name.
      uac.send(
        sipRequest({
          method: 'OPTIONS',
          uri: `sip:svc@next-hop.example:${up.port}`,
          viaPort: uac.port,
          branch: 'z9hG4bK-dns1',
          callId: 'dns-1@x',
          extra: [`Route: <sip:${HOST}:${ports[0]};lr>`],
        }),
        ports[0],
      );
      // A response whose next Via is a host name takes the same deferred path.
      uac.send(
        Buffer.from(
          [
            'SIP/2.0 200 OK',
            `Via: SIP/2.0/UDP ${HOST}:${ports[0]};branch=z9hG4bK-sS0123456789ab01234567`,
            'Via: SIP/2.0/UDP caller.example:5060;branch=z9hG4bK-c1',
            'From: <sip:a@x>;tag=1',
            'To: <sip:b@y>;tag=2',
            'Call-ID: dns-2@x',
            'CSeq: 1 OPTIONS',
            'Content-Length: 0',
            '',
            '',
          ].join('\r\n'),
          'latin1',
        ),
        ports[0],
      );
      assert.ok(await waitUntil(() => lookups === 2, 1000), 'both messages wait for a name lookup');
      await app.stop(50);
      await sleep(500);
      assert.deepEqual(
        rejections.map((r) => (r as { code?: string }).code ?? String(r)),
        [],
        'a deferred send after stop() escaped as an unhandled rejection',
      );
    } finally {
      process.off('unhandledRejection', onRejection);
      await uac.close();
      await up.close();
    }
  });

  test('the ACK of a non-2xx final leaves with the branch of its INVITE (found by the soak: SIPp CANCEL flow)', async () => {
    // RFC 3261 §17.1.1.3: the ACK for a non-2xx final response has the branch of
    // the INVITE, and §17.2.3 matches it to the INVITE's server transaction by
    // that branch. A stateless proxy must therefore give both the same branch
    // (§16.11). The loop part of sipspan's branch hashed the To tag, which the
    // ACK has (from the 487) and the INVITE did not: the forwarded ACK got a new
    // branch, a stateful UAS could not match it (487 retransmitted until Timer H),
    // and sipspan counted a separate ACK transaction (one log line and two spans
    // too many per cancelled or failed call).
    const up = await CountingPeer.start({ tcp: false });
    const forwarded: Buffer[] = [];
    up.onDatagram = (b, r) => {
      forwarded.push(b);
      const text = b.toString('latin1');
      if (text.startsWith('INVITE ')) up.send(responseTo(b, 486, 'Busy Here'), r.port);
    };
    const proxy = await startProxy({ routes: [{ name: 'ack', upstream: `udp://${HOST}:${up.port}` }] });
    const starts = collect<TransactionRecord>(channels.transactionStart);
    const uac = await MiniUac.open();
    try {
      const invite = sipRequest({ viaPort: uac.port, branch: 'z9hG4bK-ack1', callId: 'ack-1@x' });
      const r = await uac.transact(invite, proxy.ports[0], {
        callId: 'ack-1@x',
        method: 'INVITE',
        retransmitMs: 500,
        deadlineMs: 2000,
      });
      assert.equal(r?.status, 486);
      const toTag = toTagOf(r!.bytes);
      assert.ok(toTag !== undefined);
      // Same branch as the INVITE, To with the tag of the response (§17.1.1.3).
      uac.send(
        sipRequest({ method: 'ACK', viaPort: uac.port, branch: 'z9hG4bK-ack1', callId: 'ack-1@x', toTag }),
        proxy.ports[0],
      );
      assert.ok(await waitUntil(() => forwarded.some((b) => b.toString('latin1').startsWith('ACK ')), 2000));
      const inv = forwarded.find((b) => b.toString('latin1').startsWith('INVITE '))!;
      const ack = forwarded.find((b) => b.toString('latin1').startsWith('ACK '))!;
      const branchOf = (b: Buffer) => /;branch=([^;\s]+)/.exec(viaLines(b)[0])?.[1];
      assert.equal(branchOf(ack), branchOf(inv), 'the forwarded ACK carries the INVITE branch');
      assert.deepEqual(
        starts.items.map((t) => t.method),
        ['INVITE'],
        'the non-2xx ACK belongs to the INVITE transaction, not a transaction of its own',
      );
    } finally {
      starts.stop();
      await uac.close();
      await proxy.stop();
      await up.close();
    }
  });
});
