/**
 * One sipspan process against several sharing a port (`--reuse-port`): what the
 * CPU per call and the highest rate become when the kernel spreads the calls.
 *
 *   node bench/processes.ts [--processes 1,2] [--rates 1000,2000,4000] [--seconds 5]
 *                           [--cores 1] [--max 12000]
 *
 * SIPp places each call from a socket of its own (`-t un`): the kernel hashes
 * a datagram's source address and port to pick one of the sockets sharing the
 * port, so a single-socket UAC would land every call on one process. sipspan
 * runs with telemetry off (as the `sipspan-off` path of bench/run.ts), each
 * process with its own admin port and its own Via port. The load side (SIPp
 * UAC and UAS, this script) is pinned to core 0; process i of sipspan to
 * core `cores[i % cores.length]`. Figures:
 *   - CPU per call: utime + stime of every sipspan process, summed, over a run
 *     at a fixed rate, divided by the calls completed; with each process's share;
 *   - highest rate with 0 failed calls and SIPp's achieved rate ≥ 95% of the
 *     target, in steps of `--step` from the first rate.
 * On a 2-core machine every sipspan process shares core 1 (the load needs
 * core 0): the figures then say what splitting costs, not what a second core
 * gains; give `--cores 1,2` where there are cores to give.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { adminReady, ready } from './lib/boxes.ts';
import { SippDriver } from './lib/load-driver.ts';
import { cpuTicks, freePort, killAll, pinSelf, type Started, sleep, start, stop } from './lib/procs.ts';

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '1,2' },
    rates: { type: 'string', default: '1000,2000,4000' },
    seconds: { type: 'string', default: '5' },
    cores: { type: 'string', default: availableParallelism() > 2 ? '1,2' : '1' },
    step: { type: 'string', default: '500' },
    max: { type: 'string', default: '12000' },
  },
});
const counts = values.processes.split(',').map(Number);
const rates = values.rates.split(',').map(Number);
const seconds = Number(values.seconds);
const cores = values.cores.split(',');
const step = Number(values.step);
const maxRate = Number(values.max);
const LOAD_CORE = '0';
const TICKS_PER_S = 100;
const root = join(import.meta.dirname, '..');
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Point {
  rate: number;
  ok: number;
  failed: number;
  achievedRate: number;
  cpuUsPerCall: number;
  /** Each process's share of the CPU the processes used, %. */
  sharePct: number[];
}

async function startProcesses(n: number, port: number, uasPort: number, dir: string): Promise<Started[]> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OTEL_TRACES_EXPORTER: 'none',
    OTEL_TRACES_SAMPLER: 'always_off',
  };
  const procs: Started[] = [];
  for (let i = 0; i < n; i++) {
    const admin = await freePort();
    const config = join(dir, `sipspan-${n}-${i}.yaml`);
    writeFileSync(
      config,
      [
        `node: bench-${i}`,
        `admin: 127.0.0.1:${admin}`,
        'logs: { level: warn, transactions: false, destination: /dev/null }',
        'routes:',
        '  - name: sip-signaling',
        `    listen: [udp://127.0.0.1:${port}]`,
        `    upstream: udp://127.0.0.1:${uasPort}`,
        '',
      ].join('\n'),
    );
    const p = start(join(root, 'bin', 'sipspan'), ['run', '--reuse-port', '--config', config], {
      core: cores[i % cores.length],
      env,
    });
    await ready(p, () => adminReady(admin), `sipspan ${i}`);
    procs.push(p);
  }
  return procs;
}

async function runAt(
  sipp: SippDriver,
  procs: Started[],
  port: number,
  rate: number,
  secs: number,
): Promise<Point> {
  const before = procs.map((p) => cpuTicks(p.pid));
  const r = await sipp.runUac(port, rate, Math.round(rate * secs), 'udp', LOAD_CORE, true);
  const used = procs.map((p, i) => cpuTicks(p.pid) - before[i]);
  const total = used.reduce((a, b) => a + b, 0);
  return {
    rate,
    ok: r.ok,
    failed: r.failed,
    achievedRate: Math.round(r.achievedRate),
    cpuUsPerCall: r.ok > 0 ? Math.round((total / TICKS_PER_S / r.ok) * 1e6) : 0,
    sharePct: used.map((u) => (total > 0 ? Math.round((u / total) * 100) : 0)),
  };
}

const passed = (p: Point) => p.failed === 0 && p.achievedRate >= 0.95 * p.rate;

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const sipp = new SippDriver();
  const dir = await mkdtemp(join(tmpdir(), 'sipspan-processes-'));
  const report: Record<string, unknown>[] = [];
  log(`load on core ${LOAD_CORE}; sipspan process i on core ${cores.join(' / ')}[i]; ${sipp.version}`);
  for (const n of counts) {
    const uasPort = await freePort();
    const port = await freePort();
    const uas = await sipp.startUas(uasPort, 'udp', LOAD_CORE);
    const procs = await startProcesses(n, port, uasPort, dir);
    const fixed: Point[] = [];
    for (const rate of rates) {
      const p = await runAt(sipp, procs, port, rate, seconds);
      log(
        `  ${n} process(es) at ${rate}/s: ${p.ok} ok, ${p.failed} failed, achieved ${p.achievedRate}/s, ` +
          `${p.cpuUsPerCall} µs per call, CPU split ${p.sharePct.join('/')} %`,
      );
      fixed.push(p);
    }
    let best = 0;
    for (let rate = rates[0]; rate <= maxRate; rate += step) {
      const p = await runAt(sipp, procs, port, rate, 3);
      log(`  ${n} process(es) step ${rate}/s: ${p.failed} failed, achieved ${p.achievedRate}/s`);
      if (!passed(p)) break;
      best = rate;
      await sleep(500);
    }
    for (const p of procs) await stop(p);
    await stop(uas);
    report.push({ processes: n, fixed, highestRate: best });
  }
  const out = { date: new Date().toISOString(), cores: { load: LOAD_CORE, sipspan: cores }, seconds, report };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
main().catch((err) => {
  killAll();
  log(String(err instanceof Error ? err.stack : err));
  process.exit(1);
});
