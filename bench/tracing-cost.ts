/**
 * What tracing costs: the highest call rate with 0 failed calls through one
 * route, tracing off (no tracing sink) against tracing on (every call sampled,
 * spans exported over OTLP/HTTP protobuf to a local receiver), in the same
 * run. SIPp steps up the rate, ~3 s per step, alternating the two sipspan
 * processes at each rate until both have failed a step; per step it also
 * reads the sipspan process's CPU time per call from /proc.
 *
 *   node bench/tracing-cost.ts [--seconds 3] [--rates 500,1000,...] [--json]
 *
 * Pinning (when taskset exists and there are 2+ cores): this process, the
 * receiver and SIPp (UAC and UAS) on core 0, the sipspan processes on core 1.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { freePort, runSippUac, startSippUas } from '../test/support/sipp.ts';
import { cpuTicks } from './lib/procs.ts';

const { values } = parseArgs({
  options: {
    child: { type: 'boolean' },
    tracing: { type: 'string' },
    listen: { type: 'string' },
    upstream: { type: 'string' },
    otlp: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    rates: { type: 'string', default: '500,1000,1500,2000,2500,3000,3500,4000,5000,6000,7000,8000' },
    json: { type: 'boolean' },
  },
});

/** One sipspan process: one route, tracing on or off; prints `ready`, and processStats on SIGTERM. */
async function child(): Promise<void> {
  const { Sipspan } = await import('../src/app.ts');
  const { buildConfig } = await import('../src/config/load-config.ts');
  const { samplerFromEnv } = await import('../src/observe/sampler.ts');
  const { processStats } = await import('../src/sinks/process-stats.ts');
  const { startTracingSink } = await import('../src/sinks/tracing/tracing-sink.ts');
  const on = values.tracing === 'on';
  const env: NodeJS.ProcessEnv = {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_ENDPOINT: values.otlp,
    OTEL_TRACES_SAMPLER: 'always_on',
  };
  const app = await Sipspan.start(
    buildConfig({
      admin: '127.0.0.1:0',
      routes: [
        {
          name: 'sip-signaling',
          listen: [`udp://127.0.0.1:${values.listen}`],
          upstream: `udp://127.0.0.1:${values.upstream}`,
        },
      ],
    }),
    { sampler: samplerFromEnv(env), sinks: (a) => (on ? [startTracingSink(a, { env })] : []) },
  );
  // SIGUSR2: print the span counters (the parent reads them after each step).
  process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify(processStats)}\n`));
  process.on('SIGTERM', () => {
    void app.stop(2000).then(() => {
      process.stdout.write(`${JSON.stringify(processStats)}\n`);
      process.exit(0);
    });
  });
  process.stdout.write('ready\n');
}

interface Step {
  rate: number;
  calls: number;
  ok: number;
  failed: number;
  cpuUsPerCall: number;
  /** Spans dropped during the step (queue full or failed export); tracing on only. */
  spansDropped: number;
  /** True when this is the second try of a rate whose first try lost calls. */
  retry: boolean;
}

interface Mode {
  name: 'off' | 'on';
  proc: ChildProcess;
  /** Lines the child printed, in order (stats on SIGUSR2 and SIGTERM). */
  lines: string[];
  waiters: ((line: string) => void)[];
  port: number;
  steps: Step[];
  /** The highest step rate with 0 failed calls (0: none). */
  maxRate: number;
  done: boolean;
  stats: Record<string, number> | null;
}

function nextLine(m: Mode, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const waiter = (line: string) => {
      clearTimeout(timer);
      resolve(line);
    };
    // A waiter that timed out must not take the next line meant for another.
    const timer = setTimeout(() => {
      const i = m.waiters.indexOf(waiter);
      if (i !== -1) m.waiters.splice(i, 1);
      resolve('');
    }, timeoutMs);
    m.waiters.push(waiter);
  });
}

function parseStats(line: string): Record<string, number> | null {
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}

async function spanStats(m: Mode): Promise<Record<string, number> | null> {
  const line = nextLine(m, 10_000);
  m.proc.kill('SIGUSR2');
  return parseStats(await line);
}

async function runStep(m: Mode, rate: number, seconds: number, retry: boolean): Promise<Step> {
  const calls = Math.round(rate * seconds);
  const statsBefore = await spanStats(m);
  const before = cpuTicks(m.proc.pid!);
  const r = await runSippUac({
    target: `127.0.0.1:${m.port}`,
    port: await freePort(),
    calls,
    rate,
    timeoutS: seconds + 10,
  });
  const cpuUs = ((cpuTicks(m.proc.pid!) - before) / CLK_TCK) * 1e6;
  const statsAfter = await spanStats(m);
  return {
    rate,
    calls,
    ok: r.successful,
    failed: r.failed,
    cpuUsPerCall: r.successful > 0 ? Math.round(cpuUs / r.successful) : Number.NaN,
    spansDropped: (statsAfter?.spansDropped ?? 0) - (statsBefore?.spansDropped ?? 0),
    retry,
  };
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const log = (s: string) => process.stderr.write(`${s}\n`);

async function parent(): Promise<void> {
  const seconds = Number(values.seconds);
  const rates = values.rates!.split(',').map(Number);
  const pin = availableParallelism() >= 2 && spawnSync('sh', ['-c', 'command -v taskset']).status === 0;
  if (pin) spawnSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });

  // A minimal OTLP/HTTP receiver: counts requests and bytes, answers an empty ExportTraceServiceResponse.
  const received = { requests: 0, bytes: 0 };
  const receiver = createServer((req, res) => {
    req.on('data', (c: Buffer) => {
      received.bytes += c.length;
    });
    req.on('end', () => {
      received.requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const address = receiver.address();
  const otlp = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;

  const uasPort = await freePort();
  const uas = await startSippUas({ port: uasPort });
  const modes: Mode[] = [];
  for (const name of ['off', 'on'] as const) {
    const port = await freePort();
    const args = [
      import.meta.filename,
      '--child',
      '--tracing',
      name,
      '--listen',
      String(port),
      '--upstream',
      String(uasPort),
      '--otlp',
      otlp,
    ];
    const proc = pin
      ? spawn('taskset', ['-c', '1', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const mode: Mode = {
      name,
      proc,
      lines: [],
      waiters: [],
      port,
      steps: [],
      maxRate: 0,
      done: false,
      stats: null,
    };
    let partial = '';
    proc.stdout!.on('data', (d: Buffer) => {
      partial += d.toString();
      let i = partial.indexOf('\n');
      while (i !== -1) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        mode.lines.push(line);
        mode.waiters.shift()?.(line);
        i = partial.indexOf('\n');
      }
    });
    const ready = await nextLine(mode, 30_000);
    if (ready !== 'ready') throw new Error(`sipspan (${name}) did not start: ${ready}`);
    modes.push(mode);
  }

  try {
    for (const rate of rates) {
      for (const m of modes) {
        if (m.done) continue;
        // A step that loses calls is tried once more: one lost datagram on a shared machine is not a limit.
        for (const retry of [false, true]) {
          const step = await runStep(m, rate, seconds, retry);
          m.steps.push(step);
          log(
            `tracing ${m.name.padEnd(3)} ${String(rate).padStart(5)} calls/s${retry ? ' (again)' : ''}: ${step.ok}/${step.calls} ok, ${step.failed} failed, ${step.cpuUsPerCall} µs CPU per call, ${step.spansDropped} spans dropped`,
          );
          // Let the transaction tables drain their lingering entries a little before the next run.
          await new Promise((res) => setTimeout(res, 500));
          if (step.failed === 0 && step.ok === step.calls) {
            m.maxRate = rate;
            break;
          }
          if (retry) m.done = true;
        }
      }
      if (modes.every((m) => m.done)) break;
    }
  } finally {
    for (const m of modes) {
      m.proc.kill('SIGTERM');
      m.stats = parseStats(await nextLine(m, 5000));
      if (m.proc.exitCode === null) m.proc.kill('SIGKILL');
    }
    await uas.stop();
    receiver.close();
  }

  const report = {
    seconds_per_step: seconds,
    pinned: pin,
    modes: modes.map((m) => ({ tracing: m.name, max_rate: m.maxRate, steps: m.steps, stats: m.stats })),
    receiver: received,
  };
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const byRate = new Map<number, Partial<Record<'off' | 'on', Step[]>>>();
  for (const m of modes)
    for (const s of m.steps) {
      const row = byRate.get(s.rate) ?? {};
      row[m.name] = [...(row[m.name] ?? []), s];
      byRate.set(s.rate, row);
    }
  const one = (s: Step) =>
    `${s.failed === 0 && s.ok === s.calls ? 'ok' : `${s.calls - s.ok} of ${s.calls} lost`}, ${s.cpuUsPerCall} µs`;
  const cell = (list: Step[] | undefined, spans: boolean) =>
    list === undefined
      ? '—'
      : list
          .map((s) => `${one(s)}${spans && s.spansDropped > 0 ? `, ${s.spansDropped} spans dropped` : ''}`)
          .join('; again: ');
  const lines = [
    '| calls/s | tracing off: result, CPU per call | tracing on (100%, OTLP): result, CPU per call |',
    '|---|---|---|',
    ...[...byRate].map(([rate, s]) => `| ${rate} | ${cell(s.off, false)} | ${cell(s.on, true)} |`),
    '',
    `Highest rate with 0 failed calls: tracing off ${modes[0].maxRate}, tracing on ${modes[1].maxRate} calls/s (steps of ${seconds} s).`,
    `Spans: exported ${modes[1].stats?.spansExported ?? '?'}, dropped ${modes[1].stats?.spansDropped ?? '?'}, export failures ${modes[1].stats?.spanExportFailures ?? '?'}; receiver got ${received.requests} requests, ${(received.bytes / 1e6).toFixed(1)} MB.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (values.child === true) await child();
else await parent();
