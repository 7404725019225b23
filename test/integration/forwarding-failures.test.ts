/**
 * What the caller sees when sipspan cannot forward, over real sockets:
 * - a request that cannot be sent on is answered 503 (RFC 3261 §16.9), at once
 *   or once its connection fails, and its call fails as with a 503;
 * - a request moved to TCP for its size goes over UDP when TCP is refused
 *   (§18.1.1);
 * - an ACK that loops is dropped, never sent round again (§16.3 step 4);
 * - NAT keepalives on UDP are counted apart, not logged as drops.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { channels } from '../../src/observe/channels.ts';
import type { CallRecord, CapturedEvent, LimitEvent, RejectedEvent } from '../../src/observe/records.ts';
import {
  CountingPeer,
  collect,
  HOST,
  MiniUac,
  responseTo,
  type StartedProxy,
  sipRequest,
  startProxy,
  toTagOf,
  viaLines,
} from '../reliability/support/harness.ts';
import { waitUntil } from '../support/raw-peers.ts';
import { freePort } from '../support/sipp.ts';

/** An SDP body that takes a request past the 1300 bytes of §18.1.1. */
const LARGE_BODY = `v=0\r\n${Array.from({ length: 40 }, (_, i) => `a=fmtp:${96 + i} mode-set=0,2,4,7;mode-change-period=2\r\n`).join('')}`;

describe('forwarding failures', () => {
  let proxy: StartedProxy;
  let udpOnly: CountingPeer;
  let closedTcpPort = 0;
  let uac: MiniUac;
  const outcomes = collect<CallRecord>(channels.callOutcome);
  const rejected = collect<RejectedEvent>(channels.messageRejected);
  const limits = collect<LimitEvent>(channels.limitHit);
  /** What the call view stores: each captured message of a Call-ID, as direction and first line. */
  const captured = collect<CapturedEvent>(channels.messageCaptured);
  const capturedOf = (callId: string) =>
    captured.items
      .filter((e) => e.callId === callId)
      .map((e) => [e.direction, e.bytes.toString('latin1', 0, e.bytes.indexOf('\r\n')), e.destination]);
  const forwarded = collect<unknown>(channels.messageForwarded);

  before(async () => {
    closedTcpPort = await freePort();
    udpOnly = await CountingPeer.start({ tcp: false });
    udpOnly.keep = 100;
    proxy = await startProxy({
      routes: [
        { name: 'tcp-refused', upstream: `tcp://${HOST}:${closedTcpPort}`, record_route: false },
        { name: 'udp-only', upstream: `udp://${HOST}:${udpOnly.port}`, record_route: false },
        { name: 'keepalive', upstream: `udp://${HOST}:${await freePort()}`, udp: true, tcp: false },
      ],
    });
    uac = await MiniUac.open();
  });

  after(async () => {
    outcomes.stop();
    rejected.stop();
    limits.stop();
    forwarded.stop();
    captured.stop();
    await uac.close();
    await proxy.stop();
    await udpOnly.close();
  });

  test('a request whose TCP connection is refused is answered 503 along its own Via, and its call fails once as failed_5xx', async () => {
    const request = sipRequest({ viaPort: uac.port, branch: 'z9hG4bK-refused1', callId: 'refused-1' });
    const answer = await uac.transact(request, proxy.ports[0], {
      callId: 'refused-1',
      method: 'INVITE',
      retransmitMs: 60_000,
      deadlineMs: 3000,
    });
    assert.ok(answer !== null, 'no answer: the caller would retransmit into Timer B');
    assert.equal(answer.status, 503);
    // Only the caller's Via (with rport and received filled in, RFC 3581): sipspan's own, on the
    // forwarded copy the answer is built from, is left out.
    assert.deepEqual(viaLines(answer.bytes), [
      `Via: SIP/2.0/UDP ${HOST}:${uac.port};branch=z9hG4bK-refused1;rport=${uac.port};received=${HOST}`,
    ]);
    assert.match(
      answer.bytes.toString('latin1'),
      /\r\nTo: <sip:service@example\.invalid>;tag=ss[0-9a-f]+\r\n/,
    );

    // The next one finds the upstream backing off: answered at once, without a connection.
    const again = await uac.transact(
      sipRequest({ viaPort: uac.port, branch: 'z9hG4bK-refused2', callId: 'refused-2' }),
      proxy.ports[0],
      { callId: 'refused-2', method: 'INVITE', retransmitMs: 60_000, deadlineMs: 3000 },
    );
    assert.equal(again?.status, 503);
    // Outcomes are reported in groups, at most MAX_WAIT_MS after the fact.
    await waitUntil(() => outcomes.items.filter((c) => c.callId.startsWith('refused-')).length >= 2, 1000);
    const calls = outcomes.items.filter((c) => c.callId.startsWith('refused-'));
    assert.deepEqual(
      calls.map((c) => [c.callId, c.outcome, c.finalStatus]),
      [
        ['refused-1', 'failed_5xx', 503],
        ['refused-2', 'failed_5xx', 503],
      ],
    );
    assert.equal(proxy.app.observer.activeCalls(0), 0, 'no call is left active');
    assert.ok(
      rejected.items.some(
        (e) =>
          e.route.name === 'tcp-refused' &&
          e.reason === 'send-failed' &&
          e.status === 503 &&
          e.callId === 'refused-1' &&
          e.cseq === 1,
      ),
    );

    // The caller's ACK of the 503 ends at sipspan, as the INVITE did: no connection is tried for it.
    const toTag = toTagOf(answer.bytes)!;
    const limitsBefore = limits.items.length;
    const forwardedBefore = forwarded.count();
    uac.send(
      sipRequest({
        method: 'ACK',
        viaPort: uac.port,
        branch: 'z9hG4bK-refused1',
        callId: 'refused-1',
        toTag,
      }),
      proxy.ports[0],
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(forwarded.count(), forwardedBefore, 'the ACK was sent on');
    assert.deepEqual(limits.items.slice(limitsBefore), []);

    // The call view holds what went on the wire: the 503 back to the caller, and no copy out of a
    // request that was never sent (the second one, refused before it left).
    const caller = `${HOST}:${uac.port}`;
    const service = `${HOST}:${closedTcpPort}`;
    const local = `${HOST}:${proxy.ports[0]}`;
    assert.deepEqual(capturedOf('refused-1'), [
      ['in', 'INVITE sip:service@example.invalid SIP/2.0', local],
      ['out', 'INVITE sip:service@example.invalid SIP/2.0', service],
      ['out', 'SIP/2.0 503 Service Unavailable', caller],
    ]);
    assert.deepEqual(capturedOf('refused-2'), [
      ['in', 'INVITE sip:service@example.invalid SIP/2.0', local],
      ['out', 'SIP/2.0 503 Service Unavailable', caller],
    ]);
  });

  test('the ACK of an answer sipspan gave (420 Bad Extension) never reaches the service', async () => {
    const invite = sipRequest({
      viaPort: uac.port,
      branch: 'z9hG4bK-ext1',
      callId: 'ext-1',
      extra: ['Proxy-Require: foo'],
    });
    const answer = await uac.transact(invite, proxy.ports[1], {
      callId: 'ext-1',
      method: 'INVITE',
      retransmitMs: 60_000,
      deadlineMs: 2000,
    });
    assert.equal(answer?.status, 420);
    assert.deepEqual(capturedOf('ext-1'), [
      ['in', 'INVITE sip:service@example.invalid SIP/2.0', `${HOST}:${proxy.ports[1]}`],
      ['out', 'SIP/2.0 420 Bad Extension', `${HOST}:${uac.port}`],
    ]);
    const toTag = toTagOf(answer!.bytes)!;
    const before = udpOnly.udpCount;
    uac.send(
      sipRequest({ method: 'ACK', viaPort: uac.port, branch: 'z9hG4bK-ext1', callId: 'ext-1', toTag }),
      proxy.ports[1],
    );
    // An ACK with another tag (the service's own answer) still goes on.
    uac.send(
      sipRequest({
        method: 'ACK',
        viaPort: uac.port,
        branch: 'z9hG4bK-ext2',
        callId: 'ext-2',
        toTag: 'service-tag',
      }),
      proxy.ports[1],
    );
    const deadline = performance.now() + 2000;
    while (udpOnly.udpCount === before && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(udpOnly.udpCount, before + 1, "only the ACK of the service's answer arrived");
    assert.match(udpOnly.kept[udpOnly.kept.length - 1].toString('latin1'), /\r\nCall-ID: ext-2\r\n/);
  });

  test('a request moved to TCP for its size goes over UDP when the service refuses TCP, its Via saying UDP', async () => {
    const request = sipRequest({
      viaPort: uac.port,
      branch: 'z9hG4bK-large1',
      callId: 'large-1',
      body: LARGE_BODY,
      extra: ['Content-Type: application/sdp'],
    });
    assert.ok(request.length > 1300);
    const before = udpOnly.udpCount;
    const deadline = performance.now() + 3000;
    uac.send(request, proxy.ports[1]);
    while (udpOnly.udpCount === before && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(udpOnly.udpCount, before + 1, 'the request reached the UDP-only service');
    const got = udpOnly.kept[udpOnly.kept.length - 1];
    const top = viaLines(got)[0];
    assert.match(
      top,
      new RegExp(`^Via: SIP/2\\.0/UDP ${HOST.replace(/\./g, '\\.')}:${proxy.ports[1]};branch=`),
    );
    assert.ok(got.toString('latin1').endsWith(LARGE_BODY), 'the body passed unchanged');

    // The answer comes back over UDP, through sipspan, to the caller.
    const answered = new Promise<number>((resolve) => {
      const deadlineAt = performance.now() + 3000;
      const poll = () => {
        const r = uac.responses.get('large-1|INVITE');
        if (r !== undefined) resolve(r[r.length - 1].status);
        else if (performance.now() > deadlineAt) resolve(0);
        else setTimeout(poll, 10);
      };
      poll();
    });
    udpOnly.send(responseTo(got, 486, 'Busy Here'), proxy.ports[1]);
    assert.equal(await answered, 486);

    // The next large request, past the first reconnect backoff (100 ms) but while the refusal is
    // remembered, goes straight over UDP: no TCP attempt.
    await new Promise((r) => setTimeout(r, 300));
    const limitsBefore = limits.items.length;
    const count = udpOnly.udpCount;
    uac.send(
      sipRequest({ viaPort: uac.port, branch: 'z9hG4bK-large2', callId: 'large-2', body: LARGE_BODY }),
      proxy.ports[1],
    );
    const until = performance.now() + 2000;
    while (udpOnly.udpCount === count && performance.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(udpOnly.udpCount, count + 1);
    assert.match(viaLines(udpOnly.kept[udpOnly.kept.length - 1])[0], /^Via: SIP\/2\.0\/UDP /);
    assert.deepEqual(
      limits.items.slice(limitsBefore).map((l) => l.limit),
      [],
    );
  });

  test('a UDP NAT keepalive (CRLF CRLF, zero bytes) is counted as a keepalive, not as a bad message', async () => {
    const from = rejected.items.length;
    for (const keepalive of [Buffer.from('\r\n\r\n'), Buffer.alloc(4), Buffer.from('\r\n')])
      uac.send(keepalive, proxy.ports[2]);
    uac.send(Buffer.from('hello there\r\n\r\n'), proxy.ports[2]);
    const deadline = performance.now() + 2000;
    while (rejected.items.length < from + 4 && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const reasons = rejected.items.slice(from).map((e) => e.reason);
    assert.deepEqual(reasons.slice(0, 3), ['keepalive', 'keepalive', 'keepalive']);
    assert.notEqual(reasons[3], 'keepalive', 'text that is not SIP is still a bad message');
  });
});

describe('loops', () => {
  test('two routes that forward to each other answer the INVITE 482, absorb its ACK, and drop a looping ACK instead of sending it round', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const { Sipspan } = await import('../../src/app.ts');
    const { buildConfig } = await import('../../src/config/load-config.ts');
    const route = (name: string, port: number, next: number) => ({
      name,
      listen: [`udp://${HOST}:${port}`],
      upstream: `udp://${HOST}:${next}`,
      record_route: false,
    });
    const app = await Sipspan.start(
      buildConfig({ admin: `${HOST}:0`, routes: [route('a', a, b), route('b', b, a)] }),
    );
    const forwarded = collect<unknown>(channels.messageForwarded);
    const drops = collect<RejectedEvent>(channels.messageRejected);
    const uac = await MiniUac.open();
    try {
      // b takes a request from its upstream (a) toward the Request-URI: a again.
      const uri = `sip:service@${HOST}:${a}`;
      const invite = sipRequest({ uri, viaPort: uac.port, branch: 'z9hG4bK-loop1', callId: 'loop-1' });
      const answer = await uac.transact(invite, a, {
        callId: 'loop-1',
        method: 'INVITE',
        retransmitMs: 60_000,
        deadlineMs: 2000,
      });
      assert.equal(answer?.status, 482);
      const toTag = toTagOf(answer!.bytes);
      // The ACK of that 482 ends where the 482 came from: nothing is sent on.
      const sentBefore = forwarded.count();
      const ack = (branch: string, tag: string | undefined) =>
        uac.send(
          sipRequest({ method: 'ACK', uri, viaPort: uac.port, branch, callId: 'loop-1', toTag: tag }),
          a,
        );
      ack('z9hG4bK-loop1', toTag);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(forwarded.count(), sentBefore);
      // An ACK of someone else's answer that loops: a → b → a, then recognised at a as its own and dropped.
      ack('z9hG4bK-loop2', 'far-end');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(forwarded.count() - sentBefore, 2);
      assert.ok(
        drops.items.some((e) => e.reason === 'loop-detected' && e.method === 'ACK' && e.status === 0),
      );
    } finally {
      forwarded.stop();
      drops.stop();
      await uac.close();
      await app.stop(300);
    }
  });
});
