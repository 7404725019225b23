/**
 * npm run bench [-- --short] [-- --json]
 *
 * Drives SIPp (UAC and UAS pinned to core 0) through paths whose middle box is
 * pinned to core 1: SIPp direct; sipspan with telemetry off; with all telemetry
 * on (spans 100% sampled to a local OTLP receiver, metrics scraped every
 * second, transaction logs to a file); two routes in series; TCP; and a
 * stateless Kamailio forward when `kamailio` is installed. Per path:
 *   - highest call rate with 0 failed calls (step up, then bisect),
 *   - CPU time per call of the middle box at fixed rates (utime+stime from /proc),
 *   - added latency (SIPp's INVITE→200 response times through the path minus
 *     direct, p50/p99), and sipspan's own sipspan_proxy_seconds p50 for comparison,
 *   - peak RSS (VmHWM).
 * Writes bench/results/<date>.json and .md and an SVG of added latency against
 * load. Progress on stderr, the table on stdout (--json: the JSON).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { short: { type: 'boolean' }, json: { type: 'boolean' } } });
const SHORT = values.short === true;
const root = join(import.meta.dirname, '..');
const node = join(root, 'node_modules', 'node', 'bin', 'node');
const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CORE_LOAD = '0';
const CORE_BOX = '1';

interface PathSpec {
  name: string;
  transport: 'u1' | 't1';
  /** Starts the middle box toward the UAS port; returns [process, port the UAC targets, metrics port or 0]. */
  start?: (uasPort: number) => Promise<{ proc: ChildProcess; port: number; metricsPort: number }>;
}

interface PathResult {
  name: string;
  maxRate: number;
  cpuPerCallUs: Record<string, number>;
  addedLatencyMs: Record<string, { p50: number; p99: number }>;
  proxyP50Ms: number | null;
  peakRssMb: number | null;
  note?: string;
}

let nextPort = 31000;
let currentMetricsPort = 0;
const port = () => nextPort++;

function ensureSipp(): boolean {
  if (spawnSync('sh', ['-c', 'command -v sipp']).status === 0) return true;
  log('installing sip-tester (SIPp)...');
  spawnSync(
    'sh',
    ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester'],
    { stdio: 'inherit' },
  );
  return spawnSync('sh', ['-c', 'command -v sipp']).status === 0;
}

function pinned(core: string, cmd: string, args: string[], opts: { cwd?: string } = {}): ChildProcess {
  return spawn('taskset', ['-c', core, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], cwd: opts.cwd });
}

async function stop(p: ChildProcess | null): Promise<void> {
  if (p === null || p.exitCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await Promise.race([done, sleep(2000)]);
}

function cpuTicks(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(parts[11]) + Number(parts[12]);
  } catch {
    return Number.NaN;
  }
}

/** The pid of the real middle-box process (taskset execs it, so the child pid is it). */
function peakRssMb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

interface SippRun {
  ok: number;
  failed: number;
  rttMs: number[];
}

async function runUac(
  target: number,
  rate: number,
  seconds: number,
  transport: 'u1' | 't1',
  rtt: boolean,
): Promise<SippRun> {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-bench-'));
  const args = [
    '-sn',
    'uac',
    `127.0.0.1:${target}`,
    '-i',
    '127.0.0.1',
    '-p',
    String(port()),
    '-t',
    transport,
    '-r',
    String(rate),
  ];
  args.push(
    '-m',
    String(Math.max(1, Math.round(rate * seconds))),
    '-l',
    '40000',
    '-nostdin',
    '-buff_size',
    '4194304',
  );
  args.push('-trace_stat', '-stf', join(dir, 'stat.csv'), '-timeout', `${seconds + 20}s`);
  if (rtt) args.push('-trace_rtt', '-rtt_freq', '1');
  const p = pinned(CORE_LOAD, 'sipp', args, { cwd: dir });
  // SIPp's own -timeout does not always fire when it is saturated: a wall-clock bound as well.
  const killer = setTimeout(() => p.kill('SIGKILL'), (seconds + 30) * 1000);
  await new Promise((r) => p.once('exit', r));
  clearTimeout(killer);
  let stat: string[];
  try {
    stat = readFileSync(join(dir, 'stat.csv'), 'latin1').trim().split('\n');
  } catch {
    return { ok: 0, failed: Math.round(rate * seconds), rttMs: [] };
  }
  const head = stat[0].split(';');
  const last = stat[stat.length - 1].split(';');
  const get = (k: string) => Number(last[head.indexOf(k)] ?? 0);
  const rttMs: number[] = [];
  if (rtt) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('_rtt.csv'))) {
      for (const line of readFileSync(join(dir, f), 'latin1').split('\n').slice(1)) {
        const v = Number(line.split(';')[1]);
        if (Number.isFinite(v) && line !== '') rttMs.push(v);
      }
    }
  }
  return { ok: get('SuccessfulCall(C)'), failed: get('FailedCall(C)'), rttMs };
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** p50 of a Prometheus histogram from its cumulative buckets. */
async function histogramP50(metricsPort: number, name: string): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const buckets = new Map<number, number>();
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}_bucket{`)) continue;
      const le = /le="([^"]+)"/.exec(line)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
    }
    const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
    const total = sorted[sorted.length - 1]?.[1] ?? 0;
    if (total === 0) return null;
    let prevBound = 0;
    let prevCount = 0;
    for (const [bound, count] of sorted) {
      if (count >= total / 2) {
        // Linear interpolation inside the bucket that holds the median.
        if (!Number.isFinite(bound)) return prevBound * 1000;
        const frac = (total / 2 - prevCount) / Math.max(1, count - prevCount);
        return (prevBound + (bound - prevBound) * frac) * 1000;
      }
      prevBound = bound;
      prevCount = count;
    }
    return null;
  } catch {
    return null;
  }
}

function startSipspan(sinks: 'none' | 'all', extra: string[] = []) {
  return async (upstream: number) => {
    const listen = port();
    const metricsPort = port();
    const args = [
      join(root, 'bench', 'sink-cost.ts'),
      '--sinks',
      sinks,
      '--listen',
      String(listen),
      '--upstream',
      String(upstream),
      '--metrics',
      String(metricsPort),
      ...extra,
    ];
    const proc = pinned(CORE_BOX, node, args);
    await sleep(1500);
    return { proc, port: listen, metricsPort };
  };
}

/** Two routes in series in one process: route A → route B → UAS. */
function startSeries() {
  return async (upstream: number) => {
    const a = port();
    const b = port();
    const metricsPort = port();
    const cfg = join(mkdtempSync(join(tmpdir(), 'sipspan-bench-cfg-')), 'series.yaml');
    writeFileSync(
      cfg,
      [
        'admin: 127.0.0.1:0',
        'logs: { destination: /tmp/sipspan-bench-series.log }',
        'routes:',
        `  - { name: sip-gateway, listen: [udp://127.0.0.1:${a}], upstream: udp://127.0.0.1:${b}, metrics: 127.0.0.1:${metricsPort} }`,
        `  - { name: sip-signaling, listen: [udp://127.0.0.1:${b}], upstream: udp://127.0.0.1:${upstream} }`,
        '',
      ].join('\n'),
    );
    const proc = pinned(CORE_BOX, join(root, 'bin', 'sipspan'), ['run', '--config', cfg]);
    await sleep(1500);
    return { proc, port: a, metricsPort };
  };
}

function startKamailio() {
  return async (upstream: number) => {
    const listen = port();
    const cfg = join(mkdtempSync(join(tmpdir(), 'kamailio-')), 'kamailio.cfg');
    writeFileSync(
      cfg,
      readFileSync(join(root, 'bench', 'kamailio', 'stateless.cfg'), 'utf8')
        .replaceAll('LISTEN_PORT', String(listen))
        .replaceAll('UPSTREAM_PORT', String(upstream)),
    );
    const proc = pinned(CORE_BOX, 'kamailio', [
      '-f',
      cfg,
      '-DD',
      '-E',
      '-m',
      '64',
      '-M',
      '8',
      '-n',
      '1',
      '-Y',
      '/tmp',
    ]);
    await sleep(1500);
    return { proc, port: listen, metricsPort: 0 };
  };
}

async function measure(spec: PathSpec, directRtt: Map<number, number[]>): Promise<PathResult> {
  const uasPort = port();
  const uas = pinned(CORE_LOAD, 'sipp', [
    '-sn',
    'uas',
    '-i',
    '127.0.0.1',
    '-p',
    String(uasPort),
    '-t',
    spec.transport,
    '-nostdin',
    '-buff_size',
    '4194304',
  ]);
  await sleep(500);
  let box: { proc: ChildProcess; port: number; metricsPort: number } | null = null;
  try {
    if (spec.start) box = await spec.start(uasPort);
    currentMetricsPort = box?.metricsPort ?? 0;
    const target = box?.port ?? uasPort;
    const pid = box?.proc.pid ?? -1;
    const result: PathResult = {
      name: spec.name,
      maxRate: 0,
      cpuPerCallUs: {},
      addedLatencyMs: {},
      proxyP50Ms: null,
      peakRssMb: null,
    };
    // Warm-up (JIT, buffers), not measured.
    if (box !== null) await runUac(target, SHORT ? 200 : 1000, 2, spec.transport, false);
    // Added latency and CPU per call at fixed rates.
    for (const rate of SHORT ? [200] : [500, 1000, 2000, 4000]) {
      const t0 = pid > 0 ? cpuTicks(pid) : Number.NaN;
      const r = await runUac(target, rate, SHORT ? 2 : 4, spec.transport, true);
      const t1 = pid > 0 ? cpuTicks(pid) : Number.NaN;
      if (pid > 0 && r.ok > 0) result.cpuPerCallUs[String(rate)] = Math.round(((t1 - t0) * 10_000) / r.ok);
      if (box === null) directRtt.set(rate, r.rttMs);
      else {
        const base = directRtt.get(rate) ?? [];
        result.addedLatencyMs[String(rate)] = {
          p50: quantile(r.rttMs, 0.5) - quantile(base, 0.5),
          p99: quantile(r.rttMs, 0.99) - quantile(base, 0.99),
        };
      }
      log(
        `  ${spec.name} @${rate}/s: ok ${r.ok} failed ${r.failed}${result.cpuPerCallUs[String(rate)] ? ` cpu ${result.cpuPerCallUs[String(rate)]} µs/call` : ''}`,
      );
    }
    if (box !== null && box.metricsPort !== 0)
      result.proxyP50Ms = await histogramP50(box.metricsPort, 'sipspan_proxy_seconds');
    // Highest rate with 0 failures: step up, then bisect.
    const steps = SHORT ? [300] : [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000];
    let good = 0;
    let bad = 0;
    for (const rate of steps) {
      const r = await runUac(target, rate, SHORT ? 1 : 3, spec.transport, false);
      log(`  ${spec.name} step ${rate}/s: ok ${r.ok} failed ${r.failed}`);
      if (r.failed === 0 && r.ok > 0) good = rate;
      else {
        bad = rate;
        break;
      }
      await sleep(500);
    }
    for (let i = 0; i < 2 && bad > 0 && bad - good > 250; i++) {
      const mid = Math.round((good + bad) / 2 / 100) * 100;
      const r = await runUac(target, mid, 3, spec.transport, false);
      log(`  ${spec.name} bisect ${mid}/s: ok ${r.ok} failed ${r.failed}`);
      if (r.failed === 0) good = mid;
      else bad = mid;
      await sleep(500);
    }
    result.maxRate = good;
    if (bad === 0) result.note = `no failure up to ${good}/s (the load generator's ceiling here)`;
    if (pid > 0) result.peakRssMb = peakRssMb(pid);
    return result;
  } finally {
    currentMetricsPort = 0;
    await stop(box?.proc ?? null);
    await stop(uas);
  }
}

function svg(results: PathResult[]): string {
  const rates = [500, 1000, 2000, 4000];
  const W = 640;
  const H = 360;
  const pad = 50;
  const series = results.filter((r) => Object.keys(r.addedLatencyMs).length > 0);
  const maxY = Math.max(
    0.5,
    ...series.flatMap((r) =>
      Object.values(r.addedLatencyMs).map((v) => (Number.isFinite(v.p99) ? v.p99 : 0)),
    ),
  );
  const x = (rate: number) => pad + ((W - 2 * pad) * rates.indexOf(rate)) / (rates.length - 1);
  const y = (v: number) => H - pad - ((H - 2 * pad) * Math.max(0, v)) / maxY;
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`;
  out += `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">added latency per path (ms) vs load (calls/s): p50 solid, p99 dashed</text>`;
  out += `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#333"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#333"/>`;
  for (const r of rates) out += `<text x="${x(r)}" y="${H - pad + 16}" text-anchor="middle">${r}</text>`;
  for (let i = 0; i <= 4; i++)
    out += `<text x="${pad - 6}" y="${y((maxY * i) / 4) + 4}" text-anchor="end">${((maxY * i) / 4).toFixed(2)}</text>`;
  series.forEach((s, i) => {
    const pts = (q: 'p50' | 'p99') =>
      rates
        .filter((r) => s.addedLatencyMs[String(r)] !== undefined)
        .map((r) => `${x(r)},${y(s.addedLatencyMs[String(r)][q])}`)
        .join(' ');
    out += `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${pts('p50')}"/>`;
    out += `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="1.5" stroke-dasharray="4 3" points="${pts('p99')}"/>`;
    out += `<text x="${W - pad - 150}" y="${pad + 14 * i}" fill="${colors[i % colors.length]}">${s.name}</text>`;
  });
  return `${out}</svg>\n`;
}

async function main(): Promise<void> {
  if (!ensureSipp()) {
    log('SIPp is not available and could not be installed; nothing measured');
    process.exitCode = 1;
    return;
  }
  // A local OTLP receiver that accepts and discards, so "telemetry on" exports for real.
  const otlp = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => otlp.listen(0, '127.0.0.1', () => r()));
  const otlpPort = (otlp.address() as { port: number }).port;
  process.env.OTEL_TRACES_EXPORTER = 'otlp';
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/protobuf';
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${otlpPort}`;
  // Metrics scraped every second, as Prometheus would, while a path runs.
  const scraper = setInterval(() => {
    if (currentMetricsPort !== 0)
      fetch(`http://127.0.0.1:${currentMetricsPort}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
  }, 1000);

  const paths: PathSpec[] = [
    { name: 'direct (SIPp → SIPp)', transport: 'u1' },
    { name: 'sipspan, telemetry off', transport: 'u1', start: startSipspan('none') },
    { name: 'sipspan, all telemetry on', transport: 'u1', start: startSipspan('all') },
  ];
  if (!SHORT) {
    paths.push({
      name: 'sipspan, two routes in series, telemetry on',
      transport: 'u1',
      start: startSeries(),
    });
    paths.push({ name: 'sipspan over TCP, telemetry off', transport: 't1', start: startSipspan('none') });
    if (spawnSync('sh', ['-c', 'command -v kamailio']).status === 0) {
      paths.push({ name: 'Kamailio stateless forward', transport: 'u1', start: startKamailio() });
    } else log('kamailio is not installed: the reference path is skipped (apt-get install kamailio)');
  }
  const directRtt = new Map<number, number[]>();
  const results: PathResult[] = [];
  log(
    `sipspan bench${SHORT ? ' (short)' : ''}: SIPp pinned to core ${CORE_LOAD}, the middle box to core ${CORE_BOX}`,
  );
  for (const p of paths) {
    log(`path: ${p.name}`);
    results.push(await measure(p, directRtt));
  }
  clearInterval(scraper);
  otlp.close();

  const machine = {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    sipp: (spawnSync('sipp', ['-v'])
      .stdout?.toString()
      .match(/SIPp v[^\s-]+/) ?? ['unknown'])[0],
    pinning: `SIPp on core ${CORE_LOAD}, middle box on core ${CORE_BOX}`,
  };
  const date = new Date().toISOString().slice(0, 10);
  const report = { date, short: SHORT, machine, results };
  const fmt = (v: number | null | undefined, d = 2) =>
    v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d);
  const rows = results.map((r) => {
    const lat = r.addedLatencyMs[SHORT ? '200' : '500'];
    const cpu = r.cpuPerCallUs[SHORT ? '200' : '2000'];
    return `| ${r.name} | ${r.maxRate}${r.note ? ' (ceiling)' : ''} | ${cpu ?? '-'} | ${fmt(lat?.p50, 3)} | ${fmt(lat?.p99, 3)} | ${fmt(r.proxyP50Ms, 3)} | ${fmt(r.peakRssMb, 0)} |`;
  });
  const table = [
    `| path | highest rate, 0 failed (calls/s) | CPU per call at ${SHORT ? 200 : 2000}/s (µs) | added p50 at ${SHORT ? 200 : 500}/s (ms) | added p99 (ms) | sipspan's own proxy p50 (ms) | peak RSS (MiB) |`,
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  if (!SHORT) {
    const dir = join(root, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${date}.json`), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(
      join(dir, `${date}.md`),
      `# sipspan bench ${date}\n\n${machine.cpu_model}, ${machine.cpus} cores, ${machine.kernel}, Node ${machine.node}, ${machine.sipp}; ${machine.pinning}\n\n${table}\n`,
    );
    writeFileSync(join(dir, `${date}.svg`), svg(results));
  }
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${table}\n`);
}

await main();
