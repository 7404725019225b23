/**
 * What transaction logging costs: the highest call rate with 0 failed calls
 * and the CPU time per call, with the log sink off and on (one line per
 * transaction to a file), measured in the same run.
 *
 *   node bench/logs-cost.ts [--seconds 3] [--start 1000] [--step 1000] [--max 10000] [--cpu-rate 1000]
 *
 *   SIPp UAC ─┐                      ┌─▶ sipspan, no sinks           ─┐
 *             ├─ core 0 ─────────────┤                                 ├─▶ SIPp UAS (core 0)
 *             │                      └─▶ sipspan, log sink to a file ─┘
 *                                        (both on core 1; one driven at a time)
 *
 * Each step runs SIPp's default call flow (INVITE, 180, 200, ACK, BYE, 200)
 * for `--seconds` at one rate through each box in turn, stepping the rate
 * up until a box has a failed call, then two bisection steps per box. The CPU
 * per call is utime + stime of the box from /proc over a fixed-rate run.
 * Progress on stderr, the table on stdout.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { lastSippStats } from '../test/support/sipp.ts';
import { cpuTicks, hasCommand, type Started, start, stop } from './lib/procs.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    start: { type: 'string', default: '1000' },
    step: { type: 'string', default: '1000' },
    max: { type: 'string', default: '10000' },
    'cpu-rate': { type: 'string', default: '1000' },
  },
});
const SECONDS = Number(values.seconds);
const root = join(import.meta.dirname, '..');
const nodeBin = process.execPath;
const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hasTaskset = hasCommand('taskset');
const CORE_LOAD = '0';
const CORE_BOX = '1';
const work = mkdtempSync(join(tmpdir(), 'sipspan-logs-cost-'));
const logFile = join(work, 'transactions.log');

let nextPort = 32000 + Math.floor(Math.random() * 1000) * 4;
const port = () => nextPort++;

/** One SIPp UAC run of `seconds` at `rate` calls/s; SIPp's own counters. */
async function runUac(
  target: number,
  rate: number,
  seconds: number,
): Promise<{ ok: number; failed: number }> {
  const r = await runUacOnce(target, rate, seconds);
  if (r !== null) return r;
  // No statistics at all: SIPp did not run (a port taken meanwhile); that is not the box failing.
  await sleep(500);
  return (await runUacOnce(target, rate, seconds)) ?? { ok: 0, failed: Math.round(rate * seconds) };
}

async function runUacOnce(
  target: number,
  rate: number,
  seconds: number,
): Promise<{ ok: number; failed: number } | null> {
  const dir = mkdtempSync(join(work, 'uac-'));
  const calls = Math.max(1, Math.round(rate * seconds));
  const args = [
    '-sn',
    'uac',
    `127.0.0.1:${target}`,
    '-i',
    '127.0.0.1',
    '-p',
    String(port()),
    '-t',
    'u1',
    '-r',
    String(rate),
    '-m',
    String(calls),
    '-l',
    '40000',
    '-nostdin',
    '-buff_size',
    '4194304',
    '-trace_stat',
    '-stf',
    join(dir, 'stat.csv'),
    '-timeout',
    `${seconds + 15}s`,
  ];
  const p = start('sipp', args, { core: CORE_LOAD, cwd: dir });
  const killer = setTimeout(() => void stop(p, 'SIGKILL', 100), (seconds + 25) * 1000);
  await p.done;
  clearTimeout(killer);
  try {
    const stats = lastSippStats(readFileSync(join(dir, 'stat.csv'), 'latin1'));
    if (stats['SuccessfulCall(C)'] === undefined) throw new Error('no statistics row');
    const ok = Number(stats['SuccessfulCall(C)']);
    // Calls SIPp never finished count as failed too.
    return { ok, failed: Math.max(Number(stats['FailedCall(C)'] ?? 0), calls - ok) };
  } catch {
    log(`  sipp left no statistics: ${p.output().trim().split('\n').pop() ?? ''}`);
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Box {
  name: string;
  proc: Started;
  port: number;
  good: number;
  bad: number;
  cpuUsPerCall: number;
}

async function startBox(name: string, sinks: 'none' | 'logs', uasPort: number): Promise<Box> {
  const listen = port();
  const proc = start(
    nodeBin,
    [
      join(root, 'bench', 'sink-cost.ts'),
      '--sinks',
      sinks,
      '--listen',
      String(listen),
      '--upstream',
      String(uasPort),
      '--log-file',
      logFile,
    ],
    { core: CORE_BOX },
  );
  await sleep(1500);
  if (proc.exited()) throw new Error(`${name} exited: ${proc.output().slice(-500)}`);
  return { name, proc, port: listen, good: 0, bad: 0, cpuUsPerCall: Number.NaN };
}

async function main(): Promise<void> {
  if (!hasCommand('sipp')) {
    log('logs-cost: sipp is not installed');
    process.exit(2);
  }
  if (!hasTaskset) log('logs-cost: taskset not found, running unpinned');
  const uasPort = port();
  const uas = start(
    'sipp',
    ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(uasPort), '-t', 'u1', '-nostdin', '-buff_size', '4194304'],
    { core: CORE_LOAD },
  );
  await sleep(500);
  const boxes = [
    await startBox('logs off', 'none', uasPort),
    await startBox('logs on (file)', 'logs', uasPort),
  ];
  try {
    for (const b of boxes) await runUac(b.port, 500, 2); // warm-up: JIT, socket buffers
    // CPU per call: three alternating rounds at a fixed rate, the median of each box.
    const cpuRate = Number(values['cpu-rate']);
    const samples: number[][] = boxes.map(() => []);
    for (let round = 0; round < 3; round++) {
      for (const [i, b] of boxes.entries()) {
        const pid = b.proc.pid;
        const t0 = cpuTicks(pid);
        const r = await runUac(b.port, cpuRate, 4);
        const us = ((cpuTicks(pid) - t0) * 10_000) / Math.max(1, r.ok);
        samples[i].push(us);
        log(`${b.name} @${cpuRate}/s: ok ${r.ok} failed ${r.failed}, cpu ${us.toFixed(0)} µs/call`);
      }
    }
    for (const [i, b] of boxes.entries()) b.cpuUsPerCall = samples[i].sort((x, y) => x - y)[1];
    // Step up, alternating the boxes at each rate so both see the same machine state.
    for (let rate = Number(values.start); rate <= Number(values.max); rate += Number(values.step)) {
      const live = boxes.filter((b) => b.bad === 0);
      if (live.length === 0) break;
      for (const b of live) {
        const r = await runUac(b.port, rate, SECONDS);
        log(`${b.name} step ${rate}/s: ok ${r.ok} failed ${r.failed}`);
        if (r.failed === 0 && r.ok > 0) b.good = rate;
        else b.bad = rate;
        await sleep(500);
      }
    }
    for (let i = 0; i < 2; i++) {
      for (const b of boxes) {
        if (b.bad === 0 || b.bad - b.good <= 250) continue;
        const mid = Math.round((b.good + b.bad) / 2 / 50) * 50;
        const r = await runUac(b.port, mid, SECONDS);
        log(`${b.name} bisect ${mid}/s: ok ${r.ok} failed ${r.failed}`);
        if (r.failed === 0 && r.ok > 0) b.good = mid;
        else b.bad = mid;
        await sleep(500);
      }
    }
  } finally {
    for (const b of boxes) await stop(b.proc, 'SIGTERM', 3000);
    await stop(uas, 'SIGTERM', 3000);
  }
  let lines = 0;
  let bytes = 0;
  try {
    const text = readFileSync(logFile, 'utf8');
    bytes = statSync(logFile).size;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
  } catch {
    // no log file: the logs box never ran
  }
  const [off, on] = boxes;
  const fmt = (b: Box) =>
    `| ${b.name.padEnd(15)} | ${`${b.good}${b.bad === 0 ? '+' : ''}`.padStart(20)} | ${b.cpuUsPerCall.toFixed(0).padStart(20)} |`;
  process.stdout.write(
    [
      `sipspan log sink cost (${SECONDS} s steps${hasTaskset ? ', SIPp on core 0, sipspan on core 1' : ', unpinned'})`,
      '',
      '| box             | max calls/s, 0 fail | CPU µs/call @cpu-rate |',
      '|-----------------|----------------------|----------------------|',
      fmt(off),
      fmt(on),
      '',
      `max rate with logs on: ${off.good > 0 ? ((on.good / off.good) * 100).toFixed(0) : '?'}% of logs off; CPU per call +${(on.cpuUsPerCall - off.cpuUsPerCall).toFixed(0)} µs`,
      `log file: ${lines} lines, ${(bytes / 1024 / 1024).toFixed(1)} MiB (${lines > 0 ? Math.round(bytes / lines) : 0} B/line)`,
      `${off.bad === 0 || on.bad === 0 ? '("+": no failure up to --max; the load generator may be the limit)\n' : ''}`,
    ].join('\n'),
  );
  rmSync(work, { recursive: true, force: true });
}

await main();
