import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ForwardStandin } from '../../src/standins/forward-standin.ts';
import { UasStandin } from '../../src/standins/uas-standin.ts';
import { type CliRun, runSipspan } from '../support/cli.ts';
import { freePort, lastSippStats, type SippServer, startSippUas } from '../support/sipp.ts';

/** A UAS that echoes Record-Route, as a real service does: the whole dialog then passes sipspan. */
const UAS_SCENARIO = join(import.meta.dirname, '..', 'fixtures', 'sipp', 'uas-record-route.xml');

/** `sipspan bench`: `calls` calls at 50/s toward `target`, held 50 ms, then `extra` flags. */
function placeCalls(target: string, calls: number, extra: readonly string[] = []): Promise<CliRun> {
  return runSipspan([
    'bench',
    '--target',
    target,
    '--rate',
    '50',
    '--calls',
    String(calls),
    '--hold-ms',
    '50',
    ...extra,
  ]);
}

describe('sipspan bench against a SIPp UAS', { concurrency: false }, () => {
  let uas: SippServer;
  let dir: string;
  let statFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sipspan-bench-command-'));
    statFile = join(dir, 'uas-stats.csv');
    uas = await startSippUas({
      port: await freePort(),
      scenario: UAS_SCENARIO,
      extraArgs: ['-trace_stat', '-stf', statFile],
    });
  });

  after(async () => {
    await uas.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('with the default listener (any free port) every call is answered and ended, and a threshold that holds exits 0', async () => {
    const r = await placeCalls(`udp://127.0.0.1:${uas.port}`, 40, [
      '--threshold',
      'failed<1',
      '--threshold',
      'ser>0.99',
      '--json',
    ]);
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.equal(out.calls, 40);
    assert.equal(out.failed, 0);
    assert.deepEqual(out.receive_clock, { udp: 'kernel' });
    assert.equal(out.report.hops[0].calls, 40);
    assert.deepEqual(
      out.thresholds.map((t: { text: string; ok: boolean }) => [t.text, t.ok]),
      [
        ['failed<1', true],
        ['ser>0.99', true],
      ],
    );
    // The UAS counts a call only once its BYE came and was answered: the ACK and BYE carried the
    // route's Record-Route (the port the kernel gave it) as Route, and sipspan knew it as its own.
    await uas.stop();
    const stats = lastSippStats(readFileSync(statFile, 'utf8'));
    assert.equal(Number(stats['SuccessfulCall(C)']), 40, `UAS statistics: ${JSON.stringify(stats)}`);
    assert.equal(Number(stats['FailedCall(C)']), 0);
    uas = await startSippUas({ port: uas.port, scenario: UAS_SCENARIO });
  });

  test('over TCP, listener and target, every call is answered and ended', async () => {
    const tcpStats = join(dir, 'uas-tcp-stats.csv');
    const tcpUas = await startSippUas({
      port: await freePort(),
      transport: 't1',
      scenario: UAS_SCENARIO,
      extraArgs: ['-trace_stat', '-stf', tcpStats],
    });
    try {
      const r = await placeCalls(`tcp://127.0.0.1:${tcpUas.port}`, 20, [
        '--listen',
        'tcp://127.0.0.1:0',
        '--threshold',
        'failed<1',
      ]);
      assert.equal(r.code, 0, `exit ${r.code}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stdout, /calls 20, not answered 0 \(timeouts 0\)/);
    } finally {
      await tcpUas.stop();
    }
    const stats = lastSippStats(readFileSync(tcpStats, 'utf8'));
    assert.equal(Number(stats['SuccessfulCall(C)']), 20, `UAS statistics: ${JSON.stringify(stats)}`);
  });

  test("over TCP to the built-in UAS stand-in, whose Contact says transport=tcp: the caller's BYE stays on TCP", async () => {
    const standin = await new UasStandin({
      host: '127.0.0.1',
      port: await freePort(),
      ringMs: 5,
      answerMs: 10,
    }).start();
    try {
      const r = await placeCalls(`tcp://127.0.0.1:${standin.port}`, 10, ['--listen', 'tcp://127.0.0.1:0']);
      assert.equal(r.code, 0, `exit ${r.code}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stdout, /calls 10, not answered 0 \(timeouts 0\)/);
      // Without the parameter the BYE was for UDP, which a TCP-only route cannot send: retransmitted for 32 s, lost.
      assert.equal(standin.stats.byes, 10);
    } finally {
      await standin.stop();
    }
  });

  test('when the callee hangs up first, the command ends with the calls, not after the hold', async () => {
    const standin = await new UasStandin({
      host: '127.0.0.1',
      port: await freePort(),
      ringMs: 5,
      answerMs: 10,
      byeAfterMs: 30,
    }).start();
    try {
      // A 60 s hold: the command must not wait it out once every call has ended.
      const r = await runSipspan(
        [
          'bench',
          '--target',
          `udp://127.0.0.1:${standin.port}`,
          '--rate',
          '50',
          '--calls',
          '10',
          '--hold-ms',
          '60000',
        ],
        20_000,
      );
      assert.equal(r.code, 0, `exit ${r.code} (null: still running after 20 s): ${r.stderr}`);
      assert.match(r.stdout, /calls 10, not answered 0 \(timeouts 0\)/);
      assert.equal(standin.stats.byesSent, 10);
    } finally {
      await standin.stop();
    }
  });

  test('through the forward stand-in, on one transport or changing it (RFC 5658), in-dialog requests pass both ways', async () => {
    for (const [inbound, outbound] of [
      ['tcp', 'tcp'],
      ['tcp', 'udp'],
      ['udp', 'tcp'],
    ] as const) {
      for (const hangsUp of ['caller', 'callee'] as const) {
        const what = `${inbound} → forward → ${outbound}, the ${hangsUp} hangs up`;
        const callee = await new UasStandin({
          host: '127.0.0.1',
          port: await freePort(),
          ringMs: 5,
          answerMs: 10,
          byeAfterMs: hangsUp === 'callee' ? 30 : 0,
        }).start();
        const forward = await new ForwardStandin({
          host: '127.0.0.1',
          port: await freePort(),
          next: { transport: outbound, host: '127.0.0.1', port: callee.port },
        }).start();
        try {
          const r = await runSipspan(
            [
              'bench',
              '--target',
              `${inbound}://127.0.0.1:${forward.port}`,
              '--listen',
              `${inbound}://127.0.0.1:0`,
              '--rate',
              '50',
              '--calls',
              '10',
              '--hold-ms',
              hangsUp === 'caller' ? '20' : '60000',
            ],
            20_000,
          );
          assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stdout} ${r.stderr}`);
          assert.match(r.stdout, /calls 10, not answered 0 \(timeouts 0\)/, what);
          // The caller's BYE follows the Record-Route set one way, the callee's the other.
          if (hangsUp === 'caller') assert.equal(callee.stats.byes, 10, `${what}: BYEs the callee received`);
          else assert.equal(callee.stats.byesSent, 10, `${what}: BYEs the callee sent`);
        } finally {
          await forward.stop();
          await callee.stop();
        }
      }
    }
  });

  test('a threshold that does not hold exits 1 and says which', async () => {
    const r = await placeCalls(`udp://127.0.0.1:${uas.port}`, 10, ['--threshold', 'setup_p50<0.000001']);
    assert.equal(r.code, 1, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, /calls 10, not answered 0/);
    assert.match(r.stdout, /^UDP messages timed from the kernel's receive stamp, TCP from the event loop$/m);
    assert.match(r.stdout, /threshold setup_p50<0\.000001: FAILED/);
  });

  test('a threshold that cannot be read, a target port of 0, or a UDP target behind a TCP listener is a usage error (exit 2)', async () => {
    const bad = await runSipspan([
      'bench',
      '--target',
      `udp://127.0.0.1:${uas.port}`,
      '--threshold',
      'p42<1',
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--threshold: "p42<1"/);
    const zero = await runSipspan(['bench', '--target', 'udp://127.0.0.1:0']);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--target: port 0 is out of range 1-65535/);
    const noUdp = await placeCalls(`udp://127.0.0.1:${uas.port}`, 1, ['--listen', 'tcp://127.0.0.1:0']);
    assert.equal(noUdp.code, 2);
    assert.match(noUdp.stderr, /a UDP upstream needs a UDP listener of IPv4 on the route/);
    const unreadable = await runSipspan([
      'bench',
      '--target',
      `udp://127.0.0.1:${uas.port}`,
      '--threshold',
      'p99<1..2',
    ]);
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stderr, /--threshold: "p99<1\.\.2"/);
  });

  test('a rate, call count, duration or hold that is not a sensible number is a usage error before any call', async () => {
    const target = `udp://127.0.0.1:${uas.port}`;
    for (const [flag, value, expected] of [
      ['--rate', '0', 'a number above 0'],
      ['--rate', 'abc', 'a number above 0'],
      ['--rate', '-5', 'a number above 0'],
      ['--calls', '0', 'a whole number from 1'],
      ['--calls', '2.5', 'a whole number from 1'],
      ['--calls', 'abc', 'a whole number from 1'],
      ['--duration', '0', 'a number of seconds above 0'],
      ['--hold-ms', '-5', 'a number of ms, 0 or more'],
    ]) {
      const r = await runSipspan(['bench', '--target', target, `${flag}=${value}`], 10_000);
      assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
      assert.equal(r.stderr, `${flag}: expected ${expected}, got "${value}"\n`);
    }
  });
});

describe('sipspan bench against a service that cannot be reached', () => {
  test('a TCP service that is down: every call failed, no negative time behind it, exit 1 even without a threshold', async () => {
    const down = await freePort();
    const r = await runSipspan(
      [
        'bench',
        '--target',
        `tcp://127.0.0.1:${down}`,
        '--listen',
        'tcp://127.0.0.1:0',
        '--rate',
        '20',
        '--calls',
        '4',
        '--json',
      ],
      30_000,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no call was answered/);
    const out = JSON.parse(r.stdout);
    assert.equal(out.failed, 4);
    const hop = out.report.hops[0];
    assert.equal(hop.calls, 4, 'every call in the hop figures');
    assert.deepEqual(hop.outcomes, { failed_5xx: 4 });
    for (const c of out.report.slowest)
      for (const ms of c.perHopMs) assert.ok(!(ms < 0), `${ms} ms behind it`);
  });

  test("an IPv6 target works with the default listener, which takes the target's family", async () => {
    const uas = await new UasStandin({
      host: '::1',
      port: await freePort(),
      ringMs: 5,
      answerMs: 10,
    }).start();
    try {
      const r = await placeCalls(`udp://[::1]:${uas.port}`, 4, ['--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).failed, 0);
    } finally {
      await uas.stop();
    }
  });
});
