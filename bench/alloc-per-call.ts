/**
 * What sipspan allocates on V8's heap per call, and where.
 *   npm run bench:alloc [-- --sinks off,all] [-- --calls 6000] [-- --rate 1000] [-- --top 15] [-- --json]
 *
 * For each sink set a child process runs sipspan in-process (one UDP route,
 * SIPp's UAS behind it) and V8's sampling heap profiler over the measured calls,
 * counting objects that were collected too (`includeObjectsCollectedBy*GC`): all
 * that was allocated, not what survived. SIPp's default call flow, after a
 * warm-up. `all` exports spans to an OTLP receiver in this (the parent)
 * process, so the receiver's allocations are not counted, and writes the
 * transaction log to a file; `off` is telemetry off as `npm run bench` runs it.
 *
 * Why: the CPU figures of `npm run bench` move ±20% between runs on a shared
 * machine, and allocation is a cost they cannot isolate. Every allocated byte is
 * a fresh cache line to write and, for what lives past a scavenge, to copy. The
 * bytes per call are steady from run to run (sampled every 4 KiB: within ~2%),
 * so a change to the per-message path shows here even when the CPU cannot show it.
 */
import { rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chooseDriver } from './lib/load-driver.ts';
import { freePort, pinSelf, start, stop, waitFor } from './lib/procs.ts';
import { startOtlpReceiver } from './lib/telemetry.ts';

const { values } = parseArgs({
  options: {
    sinks: { type: 'string', default: 'off,all' },
    calls: { type: 'string', default: '6000' },
    rate: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '3000' },
    top: { type: 'string', default: '15' },
    json: { type: 'boolean', default: false },
    child: { type: 'string' },
    port: { type: 'string' },
    uas: { type: 'string' },
    otlp: { type: 'string' },
  },
});
const LOAD_CORE = '0';
const BOX_CORE = '1';
const SAMPLING_BYTES = 4096;
const log = (s: string) => process.stderr.write(`${s}\n`);

export interface Site {
  site: string;
  bytesPerCall: number;
}
export interface SinkSetResult {
  sinks: string;
  calls: number;
  failed: number;
  bytesPerCall: number;
  sites: Site[];
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const frameName = (f: ProfileNode['callFrame']): string =>
  `${f.functionName || '(anonymous)'}${f.url === '' ? '' : ` ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}`}`;

/**
 * Sampled bytes by allocating function, largest first. An allocation inside Node or V8 (a Buffer,
 * a string, a timer) is named with the nearest sipspan function that asked for it.
 */
function bySite(head: ProfileNode): Map<string, number> {
  const sites = new Map<string, number>();
  const walk = (n: ProfileNode, caller: string) => {
    const name = frameName(n.callFrame);
    const own = name.includes(' src/') ? name : caller;
    if (n.selfSize > 0) {
      const key = own === name || own === '' ? name : `${name} < ${own}`;
      sites.set(key, (sites.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, own);
  };
  walk(head, '');
  return sites;
}

/**
 * The child: sipspan in this process, nothing else. SIGUSR1 starts the sampler and SIGUSR2 stops
 * it and prints the sampled bytes by site; the parent drives SIPp, whose pipes and processes would
 * otherwise be counted here.
 */
async function child(sinks: string, port: number, uasPort: number, otlpPort: number): Promise<void> {
  const all = sinks === 'all';
  for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) delete process.env[k];
  if (all) {
    process.env.OTEL_TRACES_EXPORTER = 'otlp';
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/protobuf';
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${otlpPort}`;
    process.env.OTEL_TRACES_SAMPLER = 'always_on';
  } else {
    process.env.OTEL_TRACES_EXPORTER = 'none';
    process.env.OTEL_TRACES_SAMPLER = 'always_off';
  }
  // Imported after OTEL_* are set: the tracing sink reads them as it loads.
  const { Sipspan } = await import('../src/app.ts');
  const { buildConfig } = await import('../src/config/load-config.ts');
  const { startAllSinks } = await import('../src/sinks/start-sinks.ts');
  const logFile = join(tmpdir(), `sipspan-alloc-${process.pid}.log`);
  // As `npm run bench` runs each (bench/lib/boxes.ts); nothing scrapes all on's /metrics here.
  const config = buildConfig({
    node: 'bench',
    admin: '127.0.0.1:0',
    routes: [
      {
        name: 'sip-signaling',
        listen: [`udp://127.0.0.1:${port}`],
        upstream: `udp://127.0.0.1:${uasPort}`,
        ...(all ? { metrics: `127.0.0.1:${await freePort()}` } : {}),
      },
    ],
    logs: all ? { destination: logFile } : { level: 'warn', transactions: false, destination: logFile },
  });
  const app = await Sipspan.start(config, { sinks: startAllSinks });
  const session = new Session();
  session.connect();
  process.on('SIGUSR1', () => {
    void session
      .post('HeapProfiler.startSampling', {
        samplingInterval: SAMPLING_BYTES,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      })
      .then(() => process.stderr.write('sampling\n'));
  });
  process.on('SIGUSR2', async () => {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as {
      profile: { head: ProfileNode };
    };
    session.disconnect();
    await app.stop();
    rmSync(logFile, { force: true });
    process.stdout.write(JSON.stringify([...bySite(profile.head)]));
    process.exit(0);
  });
  process.stderr.write('ready\n');
}

async function measure(
  driver: ReturnType<typeof chooseDriver>,
  sinks: string,
  otlpPort: number,
): Promise<SinkSetResult> {
  const uasPort = await freePort();
  const port = await freePort();
  const uas = await driver.startUas(uasPort, 'udp', LOAD_CORE);
  const p = start(
    process.execPath,
    [
      import.meta.filename,
      '--child',
      sinks,
      '--port',
      String(port),
      '--uas',
      String(uasPort),
      '--otlp',
      String(otlpPort),
    ],
    { core: BOX_CORE, keepStdout: true },
  );
  try {
    const said = (word: string) => waitFor(() => p.output().includes(word) || p.exited(), 30_000);
    await said('ready');
    if (p.exited()) throw new Error(`alloc child (${sinks}) exited: ${p.output()}`);
    const rate = Number(values.rate);
    await driver.runUac(port, rate, Number(values.warmup), 'udp', LOAD_CORE);
    process.kill(p.pid, 'SIGUSR1');
    await said('sampling');
    const r = await driver.runUac(port, rate, Number(values.calls), 'udp', LOAD_CORE);
    process.kill(p.pid, 'SIGUSR2');
    const code = await p.done;
    if (code !== 0) throw new Error(`alloc child (${sinks}) exited ${code}: ${p.output()}`);
    const sites = JSON.parse(p.stdout()) as [string, number][];
    const perCall = (b: number) => Math.round(b / Math.max(1, r.ok));
    let total = 0;
    for (const [, v] of sites) total += v;
    return {
      sinks,
      calls: r.ok,
      failed: r.failed,
      bytesPerCall: perCall(total),
      sites: sites
        .sort((x, y) => y[1] - x[1])
        .slice(0, Number(values.top))
        .map(([site, bytes]) => ({ site, bytesPerCall: perCall(bytes) })),
    };
  } finally {
    await stop(p);
    await stop(uas);
  }
}

async function main(): Promise<void> {
  if (values.child !== undefined) {
    await child(values.child, Number(values.port), Number(values.uas), Number(values.otlp));
    return;
  }
  const sets = values.sinks!.split(',');
  const numbers = [values.calls, values.rate, values.warmup, values.top].map(Number);
  if (sets.some((s) => s !== 'off' && s !== 'all') || numbers.some((n) => !(Number.isInteger(n) && n > 0))) {
    log(
      'usage: npm run bench:alloc [-- --sinks off,all] [--calls 6000] [--rate 1000] [--warmup 3000] [--top 15] [--json]',
    );
    process.exitCode = 2;
    return;
  }
  pinSelf(LOAD_CORE);
  const driver = chooseDriver(log, false);
  const otlp = await startOtlpReceiver();
  const results: SinkSetResult[] = [];
  try {
    for (const sinks of sets) {
      log(`${sinks}: ${values.calls} calls at ${values.rate}/s after ${values.warmup} ...`);
      results.push(await measure(driver, sinks, otlp.port));
    }
  } finally {
    await otlp.close();
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ node: process.version, results }, null, 2)}\n`);
    return;
  }
  for (const r of results) {
    console.log(
      `\n${r.sinks}: ${r.bytesPerCall.toLocaleString('en-US')} B per call (${r.calls} calls, ${r.failed} failed)`,
    );
    for (const x of r.sites) console.log(`${String(x.bytesPerCall).padStart(8)}  ${x.site}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
