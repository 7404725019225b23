/**
 * Requests whose next hop is a host name, through sipspan over real sockets on loopback (requests
 * from the upstream's side, which go where their Request-URI says): they wait
 * for the name's lookup, at most `limits.max_pending_lookups` of them at once (past it a request is
 * answered 503 at once and the limit counted); a name that did not resolve answers 503 at once for
 * a while, with no second lookup. The lookups are held by the test, which decides when each ends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CountingPeer,
  countLimits,
  HOST,
  type StartedProxy,
  sipRequest,
  startProxy,
} from '../reliability/support/harness.ts';
import { HeldLookup } from '../support/held-lookup.ts';
import { waitUntil } from '../support/raw-peers.ts';

describe('requests routed to a host name', () => {
  const dns = new HeldLookup();
  /** The route's upstream, which sends the requests here (toward a caller behind sipspan) and gets the 503s. */
  let upstream: CountingPeer;
  /** Where a request goes once its name resolves. */
  let callee: CountingPeer;
  let proxy: StartedProxy;
  const answers = new Map<string, number>();

  before(async () => {
    upstream = await CountingPeer.start({ tcp: false });
    upstream.onDatagram = (buf) => {
      const text = buf.toString('latin1');
      const callId = /\r\nCall-ID: (\S+)/.exec(text)?.[1] ?? '';
      answers.set(callId, Number(text.slice(8, 11)));
    };
    callee = await CountingPeer.start({ tcp: false });
    callee.keep = 10;
    proxy = await startProxy({
      routes: [{ name: 'named', upstream: `udp://${HOST}:${upstream.port}`, tcp: false }],
      limits: { max_pending_lookups: 1 },
      lookup: dns.fn,
    });
  });

  after(async () => {
    await proxy.stop();
    await callee.close();
    await upstream.close();
  });

  /** An INVITE from the upstream whose Request-URI names `host`, at the callee's port. */
  function invite(callId: string, host: string): Buffer {
    return sipRequest({
      uri: `sip:bob@${host}:${callee.port}`,
      viaPort: upstream.port,
      branch: `z9hG4bK-${callId}`,
      callId,
    });
  }

  test('past max_pending_lookups a request is answered 503 at once; the one waiting is sent when its name resolves', async () => {
    const limits = countLimits();
    try {
      upstream.send(invite('waits', 'held.example'), proxy.ports[0]);
      assert.ok(await waitUntil(() => dns.asked.includes('held.example'), 2000));
      upstream.send(invite('refused', 'other.example'), proxy.ports[0]);
      assert.ok(await waitUntil(() => answers.has('refused'), 2000), 'the second request is answered');
      assert.equal(answers.get('refused'), 503);
      assert.equal(limits.get('max_pending_lookups'), 1);
      assert.ok(!dns.asked.includes('other.example'), 'no lookup started past the bound');
      assert.equal(callee.udpCount, 0);

      dns.answer('held.example', HOST);
      assert.ok(await waitUntil(() => callee.udpCount === 1, 2000), 'sent once its name resolved');
      assert.match(callee.kept[0].toString('latin1'), /Call-ID: waits\r\n/);
      assert.ok(!answers.has('waits'));
    } finally {
      limits.stop();
    }
  });

  test('a name that did not resolve answers 503, and again at once without a second lookup', async () => {
    upstream.send(invite('first', 'gone.example'), proxy.ports[0]);
    assert.ok(await waitUntil(() => dns.asked.includes('gone.example'), 2000));
    dns.answer('gone.example', null);
    assert.ok(await waitUntil(() => answers.has('first'), 2000));
    assert.equal(answers.get('first'), 503);
    const asked = dns.asked.length;
    upstream.send(invite('second', 'gone.example'), proxy.ports[0]);
    assert.ok(await waitUntil(() => answers.has('second'), 2000));
    assert.equal(answers.get('second'), 503);
    assert.equal(dns.asked.length, asked, 'answered from the remembered failure');
  });
});
