/**
 * Upstream faults: the service behind a route refuses, stays silent, resets,
 * answers late or restarts mid-call. sipspan must not crash, must end every
 * transaction with the right outcome at the configured RFC 3261 timer values,
 * keep no table entry past its timer, and carry calls again within 5 s of the
 * upstream returning.
 *
 * Timers are scaled down through config: T1 = 20 ms, so Timer B and Timer F
 * (64·T1, §17.1.1.2, §17.1.2.2) are 1,280 ms, and an INVITE with a provisional
 * response may stay 3,000 ms (`invite_provisional_ms`, §16.6 step 11 Timer C).
 *
 *   MiniUac ─udp─▶ sipspan ─┬─ udp-closed   ▶ nothing bound (ICMP port unreachable)
 *                           ├─ tcp-closed   ▶ nothing bound (connection refused)
 *                           ├─ silent       ▶ bound, never answers
 *                           ├─ tcp-reset    ▶ accepts and resets
 *                           ├─ slow         ▶ answers late, per Call-ID
 *                           ├─ restart-tcp  ▶ UAS stand-in, stopped and restarted mid-call
 *                           └─ restart-udp  ▶ same over UDP
 *
 * Every scenario starts in before() and runs at the same time; each test
 * asserts one scenario's results.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { channels } from '../../src/observe/channels.ts';
import { MAX_WAIT_MS } from '../../src/observe/deferred-events.ts';
import type { LimitEvent, TransactionRecord } from '../../src/observe/records.ts';
import { UasStandin } from '../../src/standins/uas-standin.ts';
import { waitUntil } from '../support/raw-peers.ts';
import { freePort } from '../support/sipp.ts';
import {
  CountingPeer,
  HOST,
  MiniUac,
  responseTo,
  type StartedProxy,
  sipRequest,
  startProxy,
  startResettingServer,
} from './support/harness.ts';

const T1_MS = 20;
/** RFC 3261 §17.1.1.2 Timer B / §17.1.2.2 Timer F: 64·T1. */
const TIMER_B_MS = 64 * T1_MS;
const INVITE_PROVISIONAL_MS = 3000;
/** A confirmed call with no BYE (slow-800, prov-2000 are never hung up) expires after this much silence. */
const CALL_IDLE_MS = 3000;
/** The proxy's coarse sweeper period (src/app.ts SWEEP_INTERVAL_MS): timeouts are noticed within one period. */
const SWEEP_MS = 250;
/** How long an ended transaction stays to absorb retransmissions (src/observe/observer.ts, RFC 3261 T4). */
const LINGER_MS = 5000;
/** Event-loop slack on a loaded 2-core box. */
const SLACK_MS = 150;

interface Ended {
  route: string;
  method: string;
  callId: string;
  key: string;
  outcome: string | null;
  status: number;
  requestIn: number;
  endedAt: number;
  firstResponseIn: number;
  /** performance.now() when the end was published. */
  seenAt: number;
}

const ROUTES = ['udp-closed', 'tcp-closed', 'silent', 'tcp-reset', 'slow', 'restart-tcp', 'restart-udp'];

describe('upstream faults', { concurrency: true }, () => {
  let proxy: StartedProxy;
  const ended: Ended[] = [];
  const limits: LimitEvent[] = [];
  /** Lowest pending-transaction count seen per route (a gauge must never go below 0). */
  const minPending = ROUTES.map(() => 0);
  let pendingSampler: NodeJS.Timeout | null = null;
  const onEnd = (m: unknown) => {
    const t = m as TransactionRecord;
    ended.push({
      route: t.route.name,
      method: t.method,
      callId: t.callId,
      key: t.key,
      outcome: t.outcome,
      status: t.status,
      requestIn: t.requestIn,
      endedAt: t.endedAt,
      firstResponseIn: t.firstResponseIn,
      seenAt: performance.now(),
    });
  };
  const onLimit = (m: unknown) => limits.push(m as LimitEvent);
  const cleanups: (() => Promise<void>)[] = [];
  const scenarios = new Map<string, Promise<Record<string, unknown>>>();
  let silent: CountingPeer;
  let slow: CountingPeer;
  let reset: Awaited<ReturnType<typeof startResettingServer>>;
  let lastRequestAt = 0;

  const endsOf = (route: string, callId: string) =>
    ended.filter((e) => e.route === route && e.callId === callId);

  before(async () => {
    channels.transactionEnd.subscribe(onEnd);
    channels.limitHit.subscribe(onLimit);
    const udpClosed = await freePort();
    const tcpClosed = await freePort();
    silent = await CountingPeer.start();
    slow = await CountingPeer.start({ tcp: false });
    const resetPort = await freePort();
    reset = await startResettingServer(resetPort);
    const uasTcpPort = await freePort();
    const uasUdpPort = await freePort();
    proxy = await startProxy({
      routes: [
        { name: 'udp-closed', upstream: `udp://${HOST}:${udpClosed}` },
        { name: 'tcp-closed', upstream: `tcp://${HOST}:${tcpClosed}` },
        { name: 'silent', upstream: `udp://${HOST}:${silent.port}` },
        { name: 'tcp-reset', upstream: `tcp://${HOST}:${resetPort}` },
        { name: 'slow', upstream: `udp://${HOST}:${slow.port}` },
        { name: 'restart-tcp', upstream: `tcp://${HOST}:${uasTcpPort}`, record_route: false },
        { name: 'restart-udp', upstream: `udp://${HOST}:${uasUdpPort}`, record_route: false },
      ].map((r) => ({ ...r, record_route: false })),
      timers: { t1_ms: T1_MS, invite_provisional_ms: INVITE_PROVISIONAL_MS, call_idle_ms: CALL_IDLE_MS },
    });
    pendingSampler = setInterval(() => {
      for (let i = 0; i < ROUTES.length; i++)
        minPending[i] = Math.min(minPending[i], proxy.app.observer.pendingTransactions(i));
    }, 20);
    const port = (name: string) => proxy.ports[ROUTES.indexOf(name)];

    // The slow upstream answers by Call-ID, once per Call-ID.
    const answered = new Set<string>();
    const timers: NodeJS.Timeout[] = [];
    slow.onDatagram = (b, r) => {
      const text = b.toString('latin1');
      const callId = /\r\nCall-ID: ([^\r\n]+)/.exec(text)?.[1] ?? '';
      if (text.startsWith('SIP/') || answered.has(callId)) return;
      answered.add(callId);
      const later = (ms: number, status: number, reason: string) =>
        timers.push(setTimeout(() => slow.send(responseTo(b, status, reason), r.port), ms));
      if (callId === 'slow-800') later(800, 200, 'OK');
      else if (callId === 'late-2000' || callId === 'opt-late')
        later(2000, callId === 'opt-late' ? 200 : 486, 'X');
      else if (callId === 'prov-2000') {
        later(0, 180, 'Ringing');
        later(2000, 200, 'OK');
      } else if (callId === 'prov-never') later(0, 180, 'Ringing');
    };
    cleanups.push(async () => {
      for (const t of timers) clearTimeout(t);
    });

    const uac = await MiniUac.open();
    cleanups.push(() => uac.close());
    const once = { retransmitMs: 60_000, deadlineMs: 3500 };
    const send = (route: string, method: string, callId: string, opts = once) => {
      lastRequestAt = performance.now();
      return uac.transact(
        sipRequest({ method, viaPort: uac.port, branch: `z9hG4bK-${callId}`, callId }),
        port(route),
        { callId, method, ...opts },
      );
    };

    for (const route of ['udp-closed', 'tcp-closed', 'silent']) {
      scenarios.set(
        route,
        (async () => {
          const sentAt = performance.now();
          const [inv, opt] = await Promise.all([
            send(route, 'INVITE', `${route}-inv`, { retransmitMs: 60_000, deadlineMs: 2000 }),
            send(route, 'OPTIONS', `${route}-opt`, { retransmitMs: 60_000, deadlineMs: 2000 }),
          ]);
          return { sentAt, invite: inv?.status ?? 0, options: opt?.status ?? 0 };
        })(),
      );
    }

    scenarios.set(
      'tcp-reset',
      (async () => {
        const sentAt = performance.now();
        // 50 distinct transactions at 50/s toward an upstream that resets every connection.
        const all: Promise<unknown>[] = [];
        for (let i = 0; i < 50; i++) {
          all.push(send('tcp-reset', 'OPTIONS', `reset-${i}`, { retransmitMs: 60_000, deadlineMs: 1600 }));
          await sleep(20);
        }
        await Promise.all(all);
        return { sentAt, attempts: reset.accepted() };
      })(),
    );

    scenarios.set(
      'slow',
      (async () => {
        const results = await Promise.all(
          ['slow-800', 'late-2000', 'prov-2000', 'prov-never'].map((c) => send('slow', 'INVITE', c)),
        );
        const opt = await send('slow', 'OPTIONS', 'opt-late');
        return {
          'slow-800': results[0]?.status ?? 0,
          'late-2000': results[1]?.status ?? 0,
          'prov-2000': results[2]?.status ?? 0,
          'prov-never': results[3]?.status ?? 0,
          'opt-late': opt?.status ?? 0,
        };
      })(),
    );

    for (const transport of ['tcp', 'udp'] as const) {
      const route = `restart-${transport}`;
      const uasPort = transport === 'tcp' ? uasTcpPort : uasUdpPort;
      scenarios.set(
        route,
        (async () => {
          const opts = { host: HOST, port: uasPort, transports: [transport], ringMs: 5, answerMs: 10 };
          let uas = await new UasStandin(opts).start();
          const u = await MiniUac.open();
          try {
            const timers = { retransmitMs: 100, deadlineMs: 8000 };
            lastRequestAt = performance.now();
            const first = await u.call(port(route), { callId: `${route}-before`, ...timers });
            const mid = await u.establish(port(route), { callId: `${route}-mid`, ...timers });
            await uas.stop();
            // Down: a BYE of the established call and a new call, both retransmitted by their UAC
            // (over TCP the new call is answered 503 at once; the BYE, inside a dialog, is not).
            const bye = u.hangUp(mid, timers);
            const during = u.call(port(route), { callId: `${route}-during`, ...timers });
            await sleep(1000);
            uas = await new UasStandin(opts).start();
            const upAt = performance.now();
            const byeStatus = await bye;
            const d = await during;
            const afterCall = await u.call(port(route), { callId: `${route}-after`, ...timers });
            lastRequestAt = performance.now();
            return {
              first: `${first.invite}/${first.bye}`,
              mid: `${mid.status}/${byeStatus}`,
              during: `${d.invite}/${d.bye}`,
              after: `${afterCall.invite}/${afterCall.bye}`,
              // The first call answered after the return: the one placed while down (UDP), else the next.
              recoveryMs: (transport === 'tcp' ? afterCall.answeredAt : d.answeredAt) - upAt,
            };
          } finally {
            await u.close();
            await uas.stop();
          }
        })(),
      );
    }
  });

  after(async () => {
    if (pendingSampler !== null) clearInterval(pendingSampler);
    channels.transactionEnd.unsubscribe(onEnd);
    channels.limitHit.unsubscribe(onLimit);
    await Promise.allSettled([...scenarios.values()]);
    for (const c of cleanups) await c();
    // Whatever before() got to start is stopped, also when it failed half-way: an open socket left
    // behind would keep the test process, and the whole run, alive.
    await proxy?.stop();
    await silent?.close();
    await slow?.close();
    await reset?.close();
  });

  /** The one end event of a transaction, checked to be the only one. */
  function onlyEnd(route: string, callId: string): Ended {
    const e = endsOf(route, callId);
    assert.equal(
      e.length,
      1,
      `${route} ${callId}: ${e.length} transaction ends (${e.map((x) => x.outcome)})`,
    );
    return e[0];
  }

  function assertTimedOutAtTimerB(e: Ended): void {
    assert.equal(e.outcome, 'timeout', `${e.callId}: outcome ${e.outcome}`);
    assert.equal(Math.round(e.endedAt - e.requestIn), TIMER_B_MS, `${e.callId}: ended at 64·T1`);
    const late = e.seenAt - e.requestIn - TIMER_B_MS;
    assert.ok(
      late >= -1 && late <= SWEEP_MS + MAX_WAIT_MS + SLACK_MS,
      `${e.callId}: noticed ${late.toFixed(0)} ms after Timer B`,
    );
  }

  test('port closed over UDP (ICMP port unreachable): INVITE and OPTIONS time out at 64·T1, the call ends as timeout', async () => {
    const r = await scenarios.get('udp-closed')!;
    assert.equal(r.invite, 0, 'no response is made up');
    assertTimedOutAtTimerB(onlyEnd('udp-closed', 'udp-closed-inv'));
    assertTimedOutAtTimerB(onlyEnd('udp-closed', 'udp-closed-opt'));
  });

  test('host silent: INVITE (Timer B) and OPTIONS (Timer F) time out at exactly 64·T1', async () => {
    await scenarios.get('silent')!;
    assert.ok(silent.udpCount >= 2, 'both requests reached the silent host');
    assertTimedOutAtTimerB(onlyEnd('silent', 'silent-inv'));
    assertTimedOutAtTimerB(onlyEnd('silent', 'silent-opt'));
  });

  test('port closed over TCP (connection refused): each transaction ends once as send-failed before Timer B, and the failure is counted', async () => {
    await scenarios.get('tcp-closed')!;
    for (const callId of ['tcp-closed-inv', 'tcp-closed-opt']) {
      // Answered at once; its end is reported with others, at most MAX_WAIT_MS later.
      await waitUntil(() => endsOf('tcp-closed', callId).length > 0, 1000);
      const e = onlyEnd('tcp-closed', callId);
      // The request never left: a known transport failure (RFC 3261 §18.4), not a timeout.
      assert.equal(e.outcome, 'send-failed', `${callId}: outcome ${e.outcome}`);
      assert.ok(
        e.endedAt - e.requestIn < TIMER_B_MS,
        `${callId}: ended ${(e.endedAt - e.requestIn).toFixed(0)} ms`,
      );
    }
    const counted = limits.filter((l) => l.route?.name === 'tcp-closed' && l.limit.startsWith('upstream_'));
    assert.ok(counted.length > 0, 'a refused upstream connection is counted (limit event upstream_*)');
  });

  test('TCP reset on connect: every transaction ends by Timer B, reconnects back off (far fewer connects than requests), failures counted', async () => {
    const r = await scenarios.get('tcp-reset')!;
    await sleep(Math.max(0, TIMER_B_MS + SWEEP_MS + SLACK_MS - (performance.now() - (r.sentAt as number))));
    for (let i = 0; i < 50; i++) {
      const e = endsOf('tcp-reset', `reset-${i}`);
      assert.equal(e.length, 1, `reset-${i}: ${e.length} ends`);
      assert.ok(e[0].outcome === 'send-failed' || e[0].outcome === 'timeout', `reset-${i}: ${e[0].outcome}`);
      assert.ok(e[0].endedAt - e[0].requestIn <= TIMER_B_MS + 1);
    }
    const counted = limits.filter((l) => l.route?.name === 'tcp-reset' && l.limit.startsWith('upstream_'));
    assert.ok(counted.length > 0, 'reset upstream connections are counted (limit event upstream_*)');
    assert.ok(
      (r.attempts as number) <= 15,
      `${r.attempts} connection attempts for 50 requests in 1 s: reconnects must back off`,
    );
  });

  test('slow answers: a final at 800 ms (< Timer B) completes; a provisional keeps an INVITE until invite_provisional_ms', async () => {
    const r = await scenarios.get('slow')!;
    assert.equal(r['slow-800'], 200);
    const s = onlyEnd('slow', 'slow-800');
    assert.equal(s.outcome, 'completed');
    assert.equal(s.status, 200);
    assert.ok(
      Math.abs(s.endedAt - s.requestIn - 800) < 100,
      `ended at ${(s.endedAt - s.requestIn).toFixed(0)} ms`,
    );

    assert.equal(r['prov-2000'], 200, 'a final after Timer B but within the provisional window is relayed');
    const p = onlyEnd('slow', 'prov-2000');
    assert.equal(p.outcome, 'completed');
    assert.equal(p.status, 200);

    const n = onlyEnd('slow', 'prov-never');
    assert.equal(n.outcome, 'timeout');
    assert.equal(
      Math.round(n.endedAt - n.firstResponseIn),
      INVITE_PROVISIONAL_MS,
      'an INVITE with only a provisional ends invite_provisional_ms after it',
    );
  });

  test('a final response after Timer B (the upstream "answers after 20 s", scaled): relayed to the caller, the transaction ends once, the pending gauge never goes below 0', async () => {
    const r = await scenarios.get('slow')!;
    assert.equal(r['late-2000'], 486, 'the late final is relayed statelessly (RFC 3261 §16.11)');
    assert.equal(r['opt-late'], 200);
    const inv = onlyEnd('slow', 'late-2000');
    assertTimedOutAtTimerB(inv);
    const opt = onlyEnd('slow', 'opt-late');
    assertTimedOutAtTimerB(opt);
    const slowIndex = ROUTES.indexOf('slow');
    assert.ok(
      minPending[slowIndex] >= 0,
      `pending transactions of route slow reached ${minPending[slowIndex]}`,
    );
    assert.equal(proxy.app.observer.pendingTransactions(slowIndex), 0);
  });

  for (const transport of ['tcp', 'udp']) {
    test(`upstream restarted mid-call over ${transport.toUpperCase()}: the established call hangs up through the restart, a call placed while it is down ${transport === 'tcp' ? 'is answered 503 at once' : 'completes'}, calls work within 5 s of its return`, async () => {
      const r = await scenarios.get(`restart-${transport}`)!;
      assert.equal(r.first, '200/200', 'call before the restart');
      assert.equal(r.mid, '200/200', 'BYE sent while the upstream was down, answered once it was back');
      // A refused TCP connection is known at once: the new call is answered 503 (RFC 3261 §16.9) and
      // may go elsewhere. Over UDP nothing says the service is down: the UAC's retransmissions ride it out.
      assert.equal(
        r.during,
        transport === 'tcp' ? '503/0' : '200/200',
        'call placed while the upstream was down',
      );
      assert.equal(r.after, '200/200', 'call after the restart');
      assert.ok(
        (r.recoveryMs as number) <= 5000,
        `recovered ${(r.recoveryMs as number).toFixed(0)} ms after the upstream returned`,
      );
      process.stdout.write(
        `# restart-${transport}: recovery ${(r.recoveryMs as number).toFixed(0)} ms after the upstream returned\n`,
      );
    });
  }

  test('no table entry outlives its timer: transactions gone by Timer B (or the provisional window) plus the linger, idle calls by call_idle_ms, every pending gauge at 0', async () => {
    await Promise.allSettled([...scenarios.values()]);
    const deadline =
      lastRequestAt +
      Math.max(TIMER_B_MS + LINGER_MS, INVITE_PROVISIONAL_MS + LINGER_MS, CALL_IDLE_MS) +
      SWEEP_MS +
      SLACK_MS;
    const obsv = proxy.app.observer;
    while (performance.now() < deadline && (obsv.transactionCount > 0 || obsv.callCount > 0)) await sleep(50);
    const obs = proxy.app.observer;
    assert.equal(obs.transactionCount, 0, 'transactions left after their timers');
    assert.equal(obs.callCount, 0, 'calls left after their timers');
    for (let i = 0; i < ROUTES.length; i++) {
      assert.equal(obs.pendingTransactions(i), 0, `pending on ${ROUTES[i]}`);
      assert.ok(minPending[i] >= 0, `pending on ${ROUTES[i]} went to ${minPending[i]}`);
    }
  });
});
