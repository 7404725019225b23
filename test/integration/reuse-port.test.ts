/**
 * Two sipspan processes sharing one UDP port (reusePort), as one per core
 * would. The kernel spreads datagrams on a shared port by source address and
 * port: SIPp with one socket per call spreads the calls, but every response
 * from the UAS comes from one address. Each process therefore names a port of
 * its own in its Via, so the responses to what it forwarded come back to it:
 * every transaction ends where it started, none as a false timeout.
 *
 *   SIPp UAC (-t un) ──▶ shared :P ──┬─▶ sipspan A (own port a) ─┐
 *                                    └─▶ sipspan B (own port b) ─┴─▶ SIPp UAS
 *                     ◀── responses to a / b, by Via ──────────────┘
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Sipspan } from '../../src/app.ts';
import { buildConfig } from '../../src/config/load-config.ts';
import { channels } from '../../src/observe/channels.ts';
import type { TransactionRecord } from '../../src/observe/records.ts';
import { freePort, runSippUac, type SippServer, startSippUas } from '../support/sipp.ts';

const CALLS = 200;
const T1_MS = 50;
/** Timer B (64·T1) and one sweep: a transaction whose responses went elsewhere has timed out by then. */
const SETTLE_MS = 64 * T1_MS + 500;

describe('processes sharing a port (reusePort)', () => {
  const apps: Sipspan[] = [];
  let uas: SippServer;
  let sharedPort: number;
  const ended: TransactionRecord[] = [];
  const onEnd = (m: unknown) => ended.push(m as TransactionRecord);

  before(async () => {
    const uasPort = await freePort();
    sharedPort = await freePort();
    uas = await startSippUas({ port: uasPort });
    const config = buildConfig({
      node: 'test',
      admin: '127.0.0.1:0',
      timers: { t1_ms: T1_MS },
      routes: [
        {
          name: 'sip-signaling',
          listen: [`udp://127.0.0.1:${sharedPort}`],
          upstream: `udp://127.0.0.1:${uasPort}`,
        },
      ],
    });
    for (let i = 0; i < 2; i++) apps.push(await Sipspan.start(config, { reusePort: true }));
    channels.transactionEnd.subscribe(onEnd);
  });

  after(async () => {
    channels.transactionEnd.unsubscribe(onEnd);
    for (const app of apps) await app.stop(200);
    await uas.stop();
  });

  test('calls spread over both processes, and each transaction ends once, completed, in the process that forwarded it', async () => {
    const r = await runSippUac({
      target: `127.0.0.1:${sharedPort}`,
      port: await freePort(),
      transport: 'un',
      calls: CALLS,
      rate: 100,
      timeoutS: 60,
      // One socket per call: SIPp's default socket budget is above this box's open-file limit.
      extraArgs: ['-max_socket', '1000'],
    });
    assert.equal(r.failed, 0, r.stderr);
    assert.equal(r.successful, CALLS);
    await sleep(SETTLE_MS);

    const byProcess = apps.map((app) => ended.filter((t) => t.route === app.routes[0].info));
    const invites = byProcess.map((list) => list.filter((t) => t.method === 'INVITE'));
    assert.equal(invites[0].length + invites[1].length, CALLS, 'one INVITE transaction per call');
    for (const [i, list] of invites.entries())
      assert.ok(list.length > 0, `process ${i} forwarded no call: the shared port did not spread them`);
    const notCompleted = ended.filter((t) => t.outcome !== 'completed' && t.outcome !== 'forwarded');
    assert.deepEqual(
      notCompleted.map((t) => `${t.method} ${t.outcome}`),
      [],
      'transactions that did not complete where they started (their responses reached the other process)',
    );
    for (const list of byProcess) {
      const calls = list.filter((t) => t.method === 'INVITE').length;
      assert.equal(list.filter((t) => t.method === 'BYE').length, calls, 'each call hangs up in its process');
    }
    for (const app of apps) assert.equal(app.observer.pendingTransactions(0), 0);
    process.stdout.write(`# reusePort: ${invites[0].length} / ${invites[1].length} calls per process\n`);
  });
});
