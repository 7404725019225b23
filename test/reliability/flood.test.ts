/**
 * Floods, short version (the long one is scripts/flood.ts): the observing
 * tables stay at their cap, memory stays bounded, and forwarding goes on for
 * everyone — including a steady call flow on another route of the same process.
 *
 *   flood sender ──INVITE×50,000 @5,000/s──▶ route "flood" ──▶ silent upstream (never answers)
 *   LoadGenerator ──50 calls/s──▶ route "calls" ──▶ UAS stand-in
 *
 * Plus a retransmission storm (one transaction, many copies) and responses
 * for transactions sipspan never saw.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { channels } from '../../src/observe/channels.ts';
import type { ObservedTransaction, RejectedEvent, TransactionRecord } from '../../src/observe/records.ts';
import { LoadGenerator } from '../../src/standins/load-generator.ts';
import { UasStandin } from '../../src/standins/uas-standin.ts';
import { waitUntil } from '../support/raw-peers.ts';
import { freePort } from '../support/sipp.ts';
import {
  CountingPeer,
  collect,
  countLimits,
  gc,
  HOST,
  heapUsedMb,
  mulberry32,
  paced,
  responseTo,
  type StartedProxy,
  sipRequest,
  startProxy,
  viaLines,
} from './support/harness.ts';

const FLOOD_COUNT = 50_000;
const FLOOD_RATE = 5_000;
const CAP = 5_000;
/** Heap growth allowed over the flood, measured at about 30 MiB for 5,000 table entries (see RELIABILITY.md). */
const HEAP_BOUND_MB = 96;

describe('flood of never-answered INVITEs', { concurrency: false }, () => {
  let proxy: StartedProxy;
  let silent: CountingPeer;
  let uas: UasStandin;

  before(async () => {
    silent = await CountingPeer.start();
    uas = await new UasStandin({ host: HOST, port: await freePort(), ringMs: 20, answerMs: 40 }).start();
    proxy = await startProxy({
      routes: [
        { name: 'flood', upstream: `udp://${HOST}:${silent.port}` },
        { name: 'calls', upstream: `udp://${HOST}:${uas.port}` },
      ],
      limits: { max_transactions: CAP, max_calls: CAP },
    });
  });

  after(async () => {
    await proxy.stop();
    await uas.stop();
    await silent.close();
  });

  test(`${FLOOD_COUNT} INVITEs at ${FLOOD_RATE}/s: tables stay at ${CAP}, heap bounded, forwarding loses nothing, 50 calls/s on another route see 0 failures`, async () => {
    const { app, ports } = proxy;
    const limits = countLimits();
    gc();
    const heapBefore = heapUsedMb();
    const sender = createSocket({ type: 'udp4', sendBufferSize: 4 * 1024 * 1024 });
    await new Promise<void>((r) => sender.bind(0, HOST, () => r()));
    const senderPort = sender.address().port;
    const load = new LoadGenerator({
      target: { transport: 'udp', host: HOST, port: ports[1] },
      host: HOST,
      rate: 50,
      calls: 50 * (FLOOD_COUNT / FLOOD_RATE),
      holdMs: 100,
    });
    const loadDone = load.run();

    let maxTx = 0;
    let maxCalls = 0;
    let maxHeap = heapBefore;
    const sampler = setInterval(() => {
      maxTx = Math.max(maxTx, app.observer.openTransactionCount);
      maxCalls = Math.max(maxCalls, app.observer.callCount);
      maxHeap = Math.max(maxHeap, heapUsedMb());
    }, 100);
    const started = performance.now();
    let sent = 0;
    try {
      // Paced in 10 ms ticks; bounded by FLOOD_COUNT.
      while (sent < FLOOD_COUNT) {
        const due = Math.min(FLOOD_COUNT, Math.floor(((performance.now() - started) / 1000) * FLOOD_RATE));
        while (sent < due) {
          sender.send(
            sipRequest({ viaPort: senderPort, branch: `z9hG4bK-fl${sent}`, callId: `flood-${sent}@x` }),
            ports[0],
            HOST,
          );
          sent++;
        }
        await sleep(10);
      }
      const floodSeconds = (performance.now() - started) / 1000;
      const calls = await loadDone;
      await waitUntil(() => silent.udpCount >= FLOOD_COUNT, 3000);
      clearInterval(sampler);
      maxHeap = Math.max(maxHeap, heapUsedMb());

      const failed = calls.filter((c) => c.result !== 'answered');
      assert.equal(calls.length, 500, 'every call of the steady flow was placed');
      assert.deepEqual(
        failed.map((c) => `${c.callId} ${c.result} ${c.status}`),
        [],
        'calls on the other route failed during the flood',
      );
      assert.ok(maxTx <= CAP, `transaction table reached ${maxTx} (cap ${CAP})`);
      assert.equal(maxTx, CAP, 'the table filled up to its cap');
      assert.ok(maxCalls <= CAP, `call table reached ${maxCalls} (cap ${CAP})`);
      assert.ok(limits.get('max_transactions') >= FLOOD_COUNT - CAP, 'each refused transaction is counted');
      assert.equal(silent.udpCount, FLOOD_COUNT, 'every flood INVITE was forwarded (stateless forwarding)');
      const growth = maxHeap - heapBefore;
      assert.ok(growth < HEAP_BOUND_MB, `heap grew ${growth.toFixed(1)} MiB (bound ${HEAP_BOUND_MB})`);
      process.stdout.write(
        `# flood: ${sent} INVITEs in ${floodSeconds.toFixed(1)} s, max tx ${maxTx}, max calls ${maxCalls}, heap +${growth.toFixed(1)} MiB (peak ${maxHeap.toFixed(1)} MiB), refused ${limits.get('max_transactions')}, steady calls ${calls.length - failed.length}/${calls.length}\n`,
      );
    } finally {
      clearInterval(sampler);
      load.stop();
      limits.stop();
      await new Promise<void>((r) => sender.close(() => r()));
    }
  });
});

describe('retransmission storms and stray responses', { concurrency: false }, () => {
  let proxy: StartedProxy;
  let upstream: CountingPeer;
  let client: CountingPeer;

  before(async () => {
    upstream = await CountingPeer.start();
    client = await CountingPeer.start({ tcp: false });
    proxy = await startProxy({
      routes: [{ name: 'storm', upstream: `udp://${HOST}:${upstream.port}` }],
      timers: { t1_ms: 20 },
    });
  });

  after(async () => {
    await proxy.stop();
    await upstream.close();
    await client.close();
  });

  test('5,000 copies of one INVITE and one OPTIONS: one transaction each, every copy forwarded, table does not grow', async () => {
    const { app, ports } = proxy;
    const starts = collect<TransactionRecord>(channels.transactionStart);
    const before = upstream.udpCount;
    try {
      const invite = sipRequest({ viaPort: client.port, branch: 'z9hG4bK-storm1', callId: 'storm-1@x' });
      const options = sipRequest({
        method: 'OPTIONS',
        viaPort: client.port,
        branch: 'z9hG4bK-storm2',
        callId: 'storm-2@x',
      });
      await paced(10_000, 10_000, (i) => client.send(i % 2 === 0 ? invite : options, ports[0]));
      assert.ok(await waitUntil(() => upstream.udpCount - before >= 10_000, 3000), 'copies forwarded');
      assert.equal(upstream.udpCount - before, 10_000);
      assert.equal(starts.count(), 2, 'one transaction per request, however many copies');
      assert.equal(app.observer.transactionCount, 2);
      const inv = starts.items.find((t) => t.method === 'INVITE')!;
      assert.equal(inv.retransmissions, 4999, 'retransmissions are counted on the transaction');
    } finally {
      starts.stop();
    }
  });

  test('a storm of 2,000 retransmitted 200 OKs to one INVITE: one transaction, one final, the rest counted as retransmissions', async () => {
    const { app, ports } = proxy;
    const ends = collect<TransactionRecord>(channels.transactionEnd);
    const repeats = collect<ObservedTransaction>(channels.transactionRetransmission);
    const invite = sipRequest({ viaPort: client.port, branch: 'z9hG4bK-storm3', callId: 'storm-3@x' });
    client.keep = 1;
    let forwarded: Buffer | null = null;
    upstream.onDatagram = (b) => {
      if (forwarded === null && b.toString('latin1').includes('storm-3@x')) forwarded = b;
    };
    try {
      const clientBefore = client.udpCount;
      client.send(invite, ports[0]);
      assert.ok(await waitUntil(() => forwarded !== null, 2000));
      const ok = responseTo(forwarded!, 200, 'OK');
      const size = app.observer.transactionCount;
      await paced(2000, 10_000, () => upstream.send(ok, ports[0]));
      assert.ok(await waitUntil(() => client.udpCount - clientBefore >= 2000, 3000));
      assert.equal(
        client.udpCount - clientBefore,
        2000,
        'every 2xx retransmission is forwarded (RFC 3261 §16.7)',
      );
      assert.equal(app.observer.transactionCount, size);
      const mine = ends.items.filter((t) => t.callId === 'storm-3@x');
      assert.equal(mine.length, 1, 'the transaction ended once');
      // The first 200 ended it; the rest are counted on what the table keeps of it for its linger.
      const counted = repeats.items.filter((t) => t.traceId === mine[0].traceId);
      assert.equal(counted.length, 1999);
      assert.equal(counted[1998].responseRetransmissions, 1999);
    } finally {
      upstream.onDatagram = null;
      ends.stop();
      repeats.stop();
    }
  });

  test('20,000 responses for transactions never seen: foreign Vias dropped and counted, own-looking Vias relayed statelessly, no table or heap growth', async () => {
    const { app, ports } = proxy;
    const rejected = collect<RejectedEvent>(channels.messageRejected);
    const rnd = mulberry32(7);
    gc();
    const heapBefore = heapUsedMb();
    const txBefore = app.observer.transactionCount;
    const callsBefore = app.observer.callCount;
    const clientBefore = client.udpCount;
    try {
      await paced(10_000, 5_000, (i) => {
        const hex = Math.floor(rnd() * 2 ** 32)
          .toString(16)
          .padStart(8, '0');
        // Top Via is someone else's: not for this proxy (RFC 3261 §18.1.2).
        const foreign = [
          `SIP/2.0 ${100 + Math.floor(rnd() * 600)} Whatever`,
          `Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-${hex}`,
          `Via: SIP/2.0/UDP ${HOST}:${client.port};branch=z9hG4bK-c${hex}`,
          'From: <sip:a@x>;tag=1',
          'To: <sip:b@y>;tag=2',
          `Call-ID: stray-${i}@x`,
          'CSeq: 1 INVITE',
          'Content-Length: 0',
        ];
        upstream.send(Buffer.from(`${foreign.join('\r\n')}\r\n\r\n`, 'latin1'), ports[0]);
        // Top Via looks like ours (host, port, branch prefix) but no such transaction exists.
        const ownish = [
          `SIP/2.0 ${[180, 200, 486, 503][i % 4]} Whatever`,
          `Via: SIP/2.0/UDP ${HOST}:${ports[0]};branch=z9hG4bK-sS${hex}${hex.slice(0, 4)}${hex}`,
          `Via: SIP/2.0/UDP ${HOST}:${client.port};branch=z9hG4bK-c${hex}`,
          'From: <sip:a@x>;tag=1',
          'To: <sip:b@y>;tag=2',
          `Call-ID: stray-own-${i}@x`,
          'CSeq: 1 INVITE',
          'Content-Length: 0',
        ];
        upstream.send(Buffer.from(`${ownish.join('\r\n')}\r\n\r\n`, 'latin1'), ports[0]);
      });
      await waitUntil(() => client.udpCount - clientBefore >= 10_000 && rejected.count() >= 10_000, 3000);
      await sleep(100);
      gc();
      const growth = heapUsedMb() - heapBefore;
      assert.ok(app.observer.transactionCount <= txBefore, 'no transaction created by a response');
      assert.ok(app.observer.callCount <= callsBefore, 'no call created by a response');
      const notOurs = rejected.items.filter((e) => e.reason === 'not-our-via').length;
      assert.equal(notOurs, 10_000, 'every response with a foreign top Via dropped and counted');
      assert.equal(client.udpCount - clientBefore, 10_000, 'responses with our Via relayed by Via (§16.11)');
      assert.ok(growth < 16, `heap grew ${growth.toFixed(1)} MiB`);
    } finally {
      rejected.stop();
    }
  });

  test('the forwarded copy of a retransmitted request carries the same branch (stateless §16.11)', async () => {
    const { ports } = proxy;
    const seen: string[] = [];
    upstream.onDatagram = (b) => {
      if (b.toString('latin1').includes('storm-4@x')) seen.push(viaLines(b)[0]);
    };
    try {
      const req = sipRequest({ viaPort: client.port, branch: 'z9hG4bK-storm4', callId: 'storm-4@x' });
      for (let i = 0; i < 10; i++) client.send(req, ports[0]);
      assert.ok(await waitUntil(() => seen.length === 10, 2000));
      assert.equal(new Set(seen).size, 1, seen.join('\n'));
    } finally {
      upstream.onDatagram = null;
    }
  });
});
