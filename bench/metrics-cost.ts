/**
 * What the metrics sink costs.
 *
 *   node bench/metrics-cost.ts [--rates 500,1000,2000,3000,4000] [--seconds 3] [--repeat 1]
 *     Two sipspan processes pinned to core 1 (bench/sink-cost.ts: no sinks, and
 *     the metrics sink scraped every second), one SIPp UAS and the SIPp UAC on
 *     core 0. For each rate, a UAC run of `seconds` through each in turn (same
 *     run, interleaved, the first alternating, so drift hits both alike): failed
 *     calls, SIPp retransmissions, datagrams the kernel dropped at sipspan's and
 *     the UAS's socket (/proc/net/udp: who lost what), and sipspan CPU time per
 *     call (utime+stime from /proc; the median over repeats). Prints a Markdown
 *     table and the highest rate with 0 failed calls per side.
 *
 *     Run the driver itself on core 0 (`taskset -c 0 node bench/metrics-cost.ts`)
 *     so core 1 holds only the process under test.
 *
 *   node bench/metrics-cost.ts --micro
 *     Per-event cost of the sink's handlers in this process: one forwarded
 *     message (counter + proxy-time histogram) and one ended transaction,
 *     against prom-client's bound children doing the same counter + histogram.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Counter, Histogram, Registry } from 'prom-client';
import { TransactionRecord } from '../src/observe/records.ts';
import { PROXY_BUCKETS } from '../src/sinks/metrics/catalog.ts';
import { RouteMetrics } from '../src/sinks/metrics/route-metrics.ts';
import { forwardedEvent } from '../test/support/records.ts';
import { freePort, lastSippStats } from '../test/support/sipp.ts';
import { cpuTicks, type Started, start, stop } from './lib/procs.ts';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '500,1000,2000,3000,4000' },
    seconds: { type: 'string', default: '3' },
    repeat: { type: 'string', default: '1' },
    micro: { type: 'boolean', default: false },
  },
});
const root = join(import.meta.dirname, '..');
const node = join(root, 'node_modules', 'node', 'bin', 'node');
const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CORE_LOAD = '0';
const CORE_BOX = '1';

function micro(): void {
  const N = 5_000_000;
  const route = new RouteMetrics('bench', 'bench', {
    activeCalls: () => 0,
    pendingTransactions: () => 0,
    tcpConnections: () => 0,
    udpReceiveDrops: () => Promise.resolve(0),
  });
  const methods = ['INVITE', 'ACK', 'BYE', 'OPTIONS'] as const;
  const e = forwardedEvent({ route: { index: 0, name: 'bench' } });
  const registry = new Registry();
  const counter = new Counter({
    name: 'c_total',
    help: 'h',
    labelNames: ['method', 'direction'],
    registers: [registry],
  });
  const histogram = new Histogram({
    name: 'h_seconds',
    help: 'h',
    labelNames: ['kind'],
    buckets: [...PROXY_BUCKETS],
    registers: [registry],
  });
  const boundCounters = methods.map((m) => counter.labels(m, 'downstream'));
  const boundHistogram = histogram.labels('request');
  const tx = new TransactionRecord(
    'k|INVITE',
    { index: 0, name: 'bench' },
    'INVITE',
    'INVITE',
    'call',
    1,
    'z9hG4bK-b',
    'downstream',
    'udp',
    '127.0.0.1:5060',
    'f',
    null,
    0,
    32_000,
  );
  tx.traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  tx.requestOut = 0.05;
  tx.firstResponseIn = 0.4;
  tx.addMark(180, 0.4);
  tx.finalResponseIn = 2.5;
  tx.status = 200;
  tx.statusClass = '2xx';
  tx.outcome = 'completed';
  const time = (label: string, n: number, fn: (i: number) => void) => {
    for (let i = 0; i < n / 10; i++) fn(i); // warm up (JIT)
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    log(`${label.padEnd(58)} ${(Number(process.hrtime.bigint() - t0) / n).toFixed(1).padStart(7)} ns`);
  };
  for (let round = 0; round < 2; round++) {
    time('sink: one forwarded message (counter + histogram)', N, (i) => {
      e.methodLabel = methods[i & 3];
      e.proxySeconds = 0.00002 + (i & 7) * 0.00001;
      route.forwarded(e);
    });
    time('prom-client bound children: counter.inc + histogram.observe', N, (i) => {
      boundCounters[i & 3].inc();
      boundHistogram.observe(0.00002 + (i & 7) * 0.00001);
    });
    time('sink: one ended INVITE transaction (5 series, 2 exemplars)', N / 5, () =>
      route.transactionEnded(tx),
    );
  }
}

interface Step {
  ok: number;
  failed: number;
  retransmissions: number;
  cpuUsPerCall: number;
  /** Datagrams the kernel dropped on sipspan's listening socket (full receive buffer) during the run. */
  socketDrops: number;
  /** The same on the SIPp UAS socket (the load generator's side). */
  uasDrops: number;
}

/** The `drops` column of /proc/net/udp for the sockets bound to a local port. */
function udpDrops(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let drops = 0;
  for (const line of readFileSync('/proc/net/udp', 'latin1').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length > 12 && cols[1].endsWith(hex)) drops += Number(cols[12]);
  }
  return drops;
}

async function runUac(
  target: number,
  uas: number,
  rate: number,
  seconds: number,
  pid: number,
): Promise<Step> {
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'sipspan-metrics-cost-'));
    const args = ['-sn', 'uac', `127.0.0.1:${target}`, '-i', '127.0.0.1', '-p', String(await freePort())];
    args.push('-r', String(rate), '-m', String(Math.round(rate * seconds)), '-l', '40000', '-nostdin');
    // -fd 1: a statistics line every second, so a run SIPp ends by its -timeout still reports its counts.
    args.push('-buff_size', '4194304', '-trace_stat', '-stf', join(dir, 'stat.csv'), '-fd', '1');
    args.push('-timeout', `${seconds + 20}s`);
    const before = cpuTicks(pid);
    const dropsBefore = udpDrops(target);
    const uasDropsBefore = udpDrops(uas);
    const p = start('sipp', args, { core: CORE_LOAD, cwd: dir });
    // SIPp's own -timeout does not always fire when it is saturated: a wall-clock bound as well.
    const killer = setTimeout(() => void stop(p, 'SIGKILL', 100), (seconds + 30) * 1000);
    await p.done;
    clearTimeout(killer);
    const ticks = cpuTicks(pid) - before;
    const socketDrops = udpDrops(target) - dropsBefore;
    const uasDrops = udpDrops(uas) - uasDropsBefore;
    let stats: Record<string, string> = {};
    try {
      stats = lastSippStats(readFileSync(join(dir, 'stat.csv'), 'latin1'));
    } catch {}
    const get = (k: string) => Number(stats[k] ?? 0);
    if (get('OutgoingCall(C)') === 0) {
      // SIPp quit before its first call: no measurement, try again.
      log(`  sipp sent nothing (attempt ${attempt}): ${p.output().trim().split('\n').slice(-2).join(' | ')}`);
      if (attempt < 3) continue;
      return {
        ok: 0,
        failed: Math.round(rate * seconds),
        retransmissions: 0,
        cpuUsPerCall: Number.NaN,
        socketDrops,
        uasDrops,
      };
    }
    const ok = get('SuccessfulCall(C)');
    return {
      ok,
      // Calls still open when SIPp's -timeout ended the run never completed: they count as failed.
      failed: Math.max(get('FailedCall(C)'), Math.round(rate * seconds) - ok),
      retransmissions: get('Retransmissions(C)'),
      cpuUsPerCall: ok > 0 ? (ticks * 10_000) / ok : Number.NaN,
      socketDrops,
      uasDrops,
    };
  }
}

async function macro(): Promise<void> {
  const rates = values.rates!.split(',').map(Number);
  const seconds = Number(values.seconds);
  const uasPort = await freePort();
  const uas = start(
    'sipp',
    ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(uasPort), '-nostdin', '-buff_size', '4194304'],
    { core: CORE_LOAD },
  );
  const repeat = Number(values.repeat);
  const sides: { name: string; proc: Started; port: number; metricsPort: number; steps: Step[][] }[] = [];
  let scraper: NodeJS.Timeout | null = null;
  try {
    for (const name of ['none', 'metrics']) {
      const port = await freePort();
      const metricsPort = await freePort();
      const args = [join(root, 'bench', 'sink-cost.ts'), '--sinks', name, '--listen', String(port)];
      args.push('--upstream', String(uasPort), '--metrics', String(metricsPort));
      sides.push({
        name,
        proc: start(node, args, { core: CORE_BOX }),
        port,
        metricsPort,
        steps: rates.map(() => []),
      });
    }
    await sleep(1500);
    // Prometheus scrapes every 15 s by default; every second here, so scrape cost is in the numbers. Only
    // while the metrics side runs: both sides share core 1, and the idle one must not take from the other.
    let scraping = false;
    const withMetrics = sides[1];
    scraper = setInterval(() => {
      if (!scraping) return;
      fetch(`http://127.0.0.1:${withMetrics.metricsPort}/metrics`, {
        headers: { accept: 'application/openmetrics-text; version=1.0.0' },
      })
        .then((r) => r.text())
        .catch(() => {});
    }, 1000);
    for (const side of sides) await runUac(side.port, uasPort, 1000, 2, side.proc.pid); // warm-up (JIT, buffers)
    for (let rep = 0; rep < repeat; rep++) {
      for (const [i, rate] of rates.entries()) {
        const order = (rep + i) % 2 === 0 ? sides : [...sides].reverse();
        for (const side of order) {
          scraping = side === withMetrics;
          const step = await runUac(side.port, uasPort, rate, seconds, side.proc.pid);
          side.steps[i].push(step);
          log(
            `${side.name.padEnd(8)} ${String(rate).padStart(5)}/s: ok ${step.ok} failed ${step.failed} retrans ${step.retransmissions} drops ${step.socketDrops}/${step.uasDrops} cpu ${step.cpuUsPerCall.toFixed(0)} µs/call`,
          );
          await sleep(500);
        }
      }
    }
  } finally {
    if (scraper !== null) clearInterval(scraper);
    for (const s of sides) await stop(s.proc, 'SIGKILL', 2000);
    await stop(uas, 'SIGKILL', 2000);
  }
  const median = (xs: number[]) => {
    const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
    return v.length === 0 ? Number.NaN : v[Math.floor(v.length / 2)];
  };
  const failed = (steps: Step[]) => steps.reduce((n, s) => n + s.failed, 0);
  const cell = (steps: Step[]) => {
    const cpu = median(steps.map((s) => s.cpuUsPerCall));
    const sum = (k: 'retransmissions' | 'socketDrops' | 'uasDrops') => steps.reduce((n, s) => n + s[k], 0);
    return `${failed(steps)} / ${sum('retransmissions')} / ${sum('socketDrops')}, ${sum('uasDrops')} / ${Number.isFinite(cpu) ? cpu.toFixed(0) : '-'}`;
  };
  const lines = [
    `SIPp uac → sipspan (core ${CORE_BOX}) → SIPp uas, ${seconds} s per rate, ${repeat} run(s) each;`,
    'cells: failed calls / SIPp retransmissions / datagrams dropped by the kernel at the sipspan, UAS socket /',
    'sipspan CPU µs per call (median)',
    '',
    `| calls/s | ${sides.map((s) => (s.name === 'none' ? 'no sinks' : 'metrics sink (scraped 1/s)')).join(' | ')} |`,
    `|---|${sides.map(() => '---').join('|')}|`,
    ...rates.map((r, i) => `| ${r} | ${sides.map((s) => cell(s.steps[i])).join(' | ')} |`),
    '',
  ];
  for (const s of sides) {
    let best = 0;
    for (let i = 0; i < rates.length && failed(s.steps[i]) === 0 && s.steps[i].some((x) => x.ok > 0); i++)
      best = rates[i];
    lines.push(
      `highest rate with 0 failed calls, ${s.name === 'none' ? 'no sinks' : 'metrics sink'}: ${best}/s`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (values.micro) micro();
else await macro();
