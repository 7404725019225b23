/**
 * SIPp → sipspan → SIPp, the proxy engine's acceptance tests: the default call
 * flow at load over UDP, TCP and IPv6; the callee hanging up (its BYE follows
 * the Record-Route set back); CANCEL; 10% loss recovered by retransmissions;
 * two routes of one process in series with a forwarding element between them.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Sipspan } from '../../src/app.ts';
import { buildConfig } from '../../src/config/load-config.ts';
import { channels } from '../../src/observe/channels.ts';
import type { RejectedEvent } from '../../src/observe/records.ts';
import { ForwardStandin } from '../../src/standins/forward-standin.ts';
import { freePort, runSippUac, type SippResult, startSippUas } from '../support/sipp.ts';

const scenarios = join(import.meta.dirname, '..', 'fixtures', 'sipp');

interface Rig {
  app: Sipspan;
  proxyPort: number;
  uasPort: number;
  stop(): Promise<void>;
}

async function startRig(opts: {
  host?: string;
  transport?: 'udp' | 'tcp';
  uasScenario?: string;
  uasArgs?: string[];
}): Promise<Rig> {
  const host = opts.host ?? '127.0.0.1';
  const t = opts.transport ?? 'udp';
  const bracket = host.includes(':') ? `[${host}]` : host;
  const proxyPort = await freePort(host);
  const uasPort = await freePort(host);
  const uas = await startSippUas({
    host,
    port: uasPort,
    transport: t === 'tcp' ? 't1' : 'u1',
    scenario: opts.uasScenario,
    extraArgs: opts.uasArgs,
  });
  const app = await Sipspan.start(
    buildConfig({
      node: 'test',
      admin: '127.0.0.1:0',
      routes: [
        {
          name: 'sip-signaling',
          listen: [`udp://${bracket}:${proxyPort}`, `tcp://${bracket}:${proxyPort}`],
          upstream: `${t}://${bracket}:${uasPort}`,
        },
      ],
    }),
  );
  return {
    app,
    proxyPort,
    uasPort,
    async stop() {
      await app.stop(500);
      await uas.stop();
    },
  };
}

function describeFailure(r: SippResult): string {
  return `exit ${r.exitCode}, successful ${r.successful}, failed ${r.failed}\n${r.stderr.slice(-2000)}\n${r.stdout.slice(-2000)}`;
}

function collectRejections(): { events: RejectedEvent[]; stop(): void } {
  const events: RejectedEvent[] = [];
  const fn = (m: unknown) => events.push(m as RejectedEvent);
  channels.messageRejected.subscribe(fn);
  return { events, stop: () => channels.messageRejected.unsubscribe(fn) };
}

describe('SIPp default call flow through sipspan', { concurrency: false }, () => {
  for (const variant of [
    { name: 'UDP over IPv4 loopback', host: '127.0.0.1', transport: 'udp' as const },
    { name: 'TCP over IPv4 loopback', host: '127.0.0.1', transport: 'tcp' as const },
    { name: 'UDP over IPv6 loopback', host: '::1', transport: 'udp' as const },
  ]) {
    test(`2000 calls at 200 calls/s complete with 0 failed and 0 unexpected messages: ${variant.name}`, async () => {
      const rig = await startRig({ host: variant.host, transport: variant.transport });
      const rejected = collectRejections();
      try {
        const target = variant.host.includes(':')
          ? `[${variant.host}]:${rig.proxyPort}`
          : `${variant.host}:${rig.proxyPort}`;
        const r = await runSippUac({
          target,
          host: variant.host,
          port: await freePort(variant.host),
          transport: variant.transport === 'tcp' ? 't1' : 'u1',
          calls: 2000,
          rate: 200,
          timeoutS: 60,
        });
        assert.equal(r.exitCode, 0, describeFailure(r));
        assert.equal(r.successful, 2000, describeFailure(r));
        assert.equal(r.failed, 0, describeFailure(r));
        assert.equal(Number(r.stats['UnexpectedMessage(C)'] ?? 0), 0, 'SIPp saw unexpected messages');
        assert.deepEqual(rejected.events, [], 'sipspan rejected or dropped messages');
        // Every call ended: nothing is left in the call table.
        assert.equal(rig.app.observer.callCount, 0);
      } finally {
        rejected.stop();
        await rig.stop();
      }
    });
  }
});

describe('dialogs through sipspan', { concurrency: false }, () => {
  test('a call hung up by the callee completes: its BYE follows the Record-Route set back through sipspan', async () => {
    const rig = await startRig({ uasScenario: join(scenarios, 'uas-hangs-up.xml') });
    try {
      const r = await runSippUac({
        target: `127.0.0.1:${rig.proxyPort}`,
        port: await freePort(),
        scenario: join(scenarios, 'uac-callee-hangs-up.xml'),
        calls: 100,
        rate: 50,
        timeoutS: 30,
      });
      assert.equal(r.successful, 100, describeFailure(r));
      assert.equal(r.failed, 0, describeFailure(r));
    } finally {
      await rig.stop();
    }
  });

  test('a cancelled call completes: CANCEL, 200, 487 and ACK pass with the INVITE branch', async () => {
    const rig = await startRig({ uasScenario: join(scenarios, 'uas-cancel.xml') });
    const outcomes: string[] = [];
    const onOutcome = (m: unknown) => outcomes.push((m as { outcome: string }).outcome);
    channels.callOutcome.subscribe(onOutcome);
    try {
      const r = await runSippUac({
        target: `127.0.0.1:${rig.proxyPort}`,
        port: await freePort(),
        scenario: join(scenarios, 'uac-cancel.xml'),
        calls: 100,
        rate: 50,
        timeoutS: 30,
      });
      assert.equal(r.successful, 100, describeFailure(r));
      assert.equal(r.failed, 0, describeFailure(r));
      assert.equal(outcomes.length, 100);
      assert.ok(
        outcomes.every((o) => o === 'cancelled'),
        `outcomes: ${[...new Set(outcomes)].join(',')}`,
      );
    } finally {
      channels.callOutcome.unsubscribe(onOutcome);
      await rig.stop();
    }
  });

  test('calls complete with 10% simulated loss through retransmissions, as well as SIPp direct in the same run', async () => {
    // SIPp's own state machines lose a few calls under -lost even with nothing in between
    // (measured here: 0-2 of 200 direct), so sipspan is held to the direct result of the same run.
    const loss = [
      '-lost',
      '10',
      '-recv_timeout',
      '60000',
      '-max_invite_retrans',
      '12',
      '-max_non_invite_retrans',
      '12',
    ];
    const uasScenario = join(scenarios, 'uas-loss-tolerant.xml');
    const directUasPort = await freePort();
    const directUas = await startSippUas({ port: directUasPort, scenario: uasScenario });
    let direct: SippResult;
    try {
      direct = await runSippUac({
        target: `127.0.0.1:${directUasPort}`,
        port: await freePort(),
        calls: 100,
        rate: 50,
        timeoutS: 90,
        extraArgs: loss,
      });
    } finally {
      await directUas.stop();
    }
    const rig = await startRig({ uasScenario });
    try {
      const r = await runSippUac({
        target: `127.0.0.1:${rig.proxyPort}`,
        port: await freePort(),
        calls: 100,
        rate: 50,
        timeoutS: 90,
        extraArgs: loss,
      });
      assert.ok(Number(r.stats['Retransmissions(C)'] ?? 0) > 0, 'the loss caused no retransmission');
      assert.ok(r.successful >= 96, describeFailure(r));
      assert.ok(
        r.failed <= direct.failed + 3,
        `through sipspan ${r.failed} failed, direct ${direct.failed}\n${describeFailure(r)}`,
      );
    } finally {
      await rig.stop();
    }
  });
});

describe('two routes of one process in series', { concurrency: false }, () => {
  let app: Sipspan;
  let forward: ForwardStandin;
  let gatewayPort: number;
  let signalingPort: number;
  let uasPort: number;

  before(async () => {
    gatewayPort = await freePort();
    signalingPort = await freePort();
    uasPort = await freePort();
    forward = await new ForwardStandin({
      host: '127.0.0.1',
      port: await freePort(),
      next: { transport: 'udp', host: '127.0.0.1', port: signalingPort },
    }).start();
    app = await Sipspan.start(
      buildConfig({
        node: 'test',
        admin: '127.0.0.1:0',
        routes: [
          {
            name: 'sip-gateway',
            listen: [`udp://127.0.0.1:${gatewayPort}`],
            upstream: `udp://127.0.0.1:${forward.port}`,
          },
          {
            name: 'sip-signaling',
            listen: [`udp://127.0.0.1:${signalingPort}`],
            upstream: `udp://127.0.0.1:${uasPort}`,
          },
        ],
      }),
    );
  });

  after(async () => {
    await app.stop(500);
    await forward.stop();
  });

  test('caller → gateway route → forwarding element → signaling route → callee: calls complete end to end', async () => {
    const uas = await startSippUas({ port: uasPort });
    try {
      const r = await runSippUac({
        target: `127.0.0.1:${gatewayPort}`,
        port: await freePort(),
        calls: 300,
        rate: 100,
        timeoutS: 30,
      });
      assert.equal(r.successful, 300, describeFailure(r));
      assert.equal(r.failed, 0, describeFailure(r));
      assert.equal(forward.stats.dropped, 0);
    } finally {
      await uas.stop();
    }
  });

  test('the callee hangs up: its BYE crosses signaling route, forwarding element and gateway route back to the caller', async () => {
    const uas = await startSippUas({ port: uasPort, scenario: join(scenarios, 'uas-hangs-up.xml') });
    try {
      const r = await runSippUac({
        target: `127.0.0.1:${gatewayPort}`,
        port: await freePort(),
        scenario: join(scenarios, 'uac-callee-hangs-up.xml'),
        calls: 100,
        rate: 50,
        timeoutS: 30,
      });
      assert.equal(r.successful, 100, describeFailure(r));
      assert.equal(r.failed, 0, describeFailure(r));
    } finally {
      await uas.stop();
    }
  });
});
