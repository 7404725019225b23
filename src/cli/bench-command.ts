import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { Sipspan } from '../app.ts';
import { ConfigError } from '../config/config-error.ts';
import { parseEndpoint } from '../config/endpoint.ts';
import { buildConfig } from '../config/load-config.ts';
import type { Config } from '../config/schema.ts';
import { HopReport, type Report, renderReport } from '../sinks/report/hop-report.ts';
import { startTracingSink } from '../sinks/tracing/tracing-sink.ts';
import { LoadGenerator } from '../standins/load-generator.ts';
import { above0, NumberOptions, wholeFrom1 } from './number-option.ts';

const USAGE = `usage: sipspan bench --target URI --rate R (--calls N | --duration S) [options]

Places calls with the built-in load generator through sipspan toward a real
SIP service and reports, from sipspan's own observations, the hop's outcomes,
upstream RTT and setup percentiles and the slowest calls with their trace ids.

  --target URI        the service: udp://host:port or tcp://host:port
  --rate R            calls per second, above 0 (default 50)
  --calls N           number of calls, a whole number from 1; or --duration S (calls = rate × S)
  --hold-ms MS        call duration before BYE, 0 or more (default 500)
  --listen URI        sipspan's listener (default udp://127.0.0.1:0, udp://[::1]:0 for an IPv6
                      target: any free port)
  --name NAME         the route name in the report (default target)
  --threshold EXPR    fail (exit 1) unless EXPR holds; repeatable. EXPR is
                      <figure><op><value>, op < or >, figures: p50 p95 p99 (upstream RTT: request
                      forwarded to the service's first response, seconds), setup_p50 setup_p95
                      setup_p99 (to the final response, seconds), ser (0..1), failed (calls),
                      timeouts (calls)
  --json              print the report as JSON

Exit: 0 when every threshold holds (and at least one call was answered), 1 when one fails or no
call was answered at all, 2 for a usage error (a bad option value, an unreadable threshold).
`;

export async function benchCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      target: { type: 'string' },
      rate: { type: 'string' },
      calls: { type: 'string' },
      duration: { type: 'string' },
      'hold-ms': { type: 'string' },
      listen: { type: 'string' },
      name: { type: 'string' },
      threshold: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || values.target === undefined) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const target = parseEndpoint(values.target);
  if (typeof target === 'string') {
    process.stderr.write(`--target: ${target}\n`);
    return 2;
  }
  // The default listener is of the target's family: a UDP route sends from the socket it listens on.
  const listen = parseEndpoint(
    values.listen ?? (target.family === 6 ? 'udp://[::1]:0' : 'udp://127.0.0.1:0'),
    'listener',
  );
  if (typeof listen === 'string') {
    process.stderr.write(`--listen: ${listen}\n`);
    return 2;
  }
  const num = new NumberOptions();
  const rate = num.read('--rate', values.rate, 50, above0, 'a number above 0');
  const holdMs = num.milliseconds('--hold-ms', values['hold-ms'], 500);
  const duration = num.read('--duration', values.duration, 10, above0, 'a number of seconds above 0');
  const callsGiven = num.read('--calls', values.calls, 0, wholeFrom1, 'a whole number from 1');
  if (num.report()) return 2;
  const calls = values.calls !== undefined ? callsGiven : Math.max(1, Math.round(rate * duration));
  const thresholds = (values.threshold ?? []).map(parseThreshold);
  const bad = thresholds.find((t) => typeof t === 'string');
  if (bad !== undefined) {
    process.stderr.write(`--threshold: ${bad}\n`);
    return 2;
  }
  const name = values.name ?? 'target';
  const hostText = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  let config: Config;
  try {
    config = buildConfig({
      node: 'bench',
      admin: '127.0.0.1:0',
      routes: [
        { name, listen: [`${listen.transport}://${hostText}:${listen.port}`], upstream: values.target },
      ],
      logs: { level: 'warn' },
    });
  } catch (err) {
    // --listen and --target that cannot make a route (a UDP target behind a TCP listener): a usage error.
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`--listen/--target: ${p.message}\n`);
    return 2;
  }
  const report = new HopReport([name]);
  const app = await Sipspan.start(config, {
    sinks: (a) => [startTracingSink(a, { store: true, env: {} }), report],
  });
  const port = listen.transport === 'udp' ? app.routes[0].udpPort : app.routes[0].tcpPort;
  process.stderr.write(
    `sipspan bench: ${calls} calls at ${rate}/s through ${listen.transport}://${hostText}:${port} → ${values.target}\n`,
  );
  const load = new LoadGenerator({
    target: { transport: listen.transport, host: listen.host, port },
    host: listen.host,
    rate,
    calls,
    holdMs,
  });
  const results = await load.run();
  // What sipspan has not ended yet (a timeout noticed at its next sweep) is waited for, a few seconds
  // at most, so the hop's figures hold every call placed.
  const settleBy = performance.now() + SETTLE_MS;
  while (app.observer.pendingTransactions(0) > 0 && performance.now() < settleBy)
    await new Promise((r) => setTimeout(r, 50));
  app.observer.flushEvents();
  const summary = report.summary(5);
  const failed = results.filter((c) => c.result !== 'answered').length;
  const timeouts = results.filter((c) => c.result === 'timeout').length;
  const figures = figuresOf(summary, failed, timeouts);
  const verdicts = (thresholds as Threshold[]).map((t) => ({
    ...t,
    actual: figures[t.figure],
    ok: check(t, figures[t.figure]),
  }));
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ calls: results.length, failed, timeouts, receive_clock: app.receiveClock, report: summary, thresholds: verdicts }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`calls ${results.length}, not answered ${failed} (timeouts ${timeouts})\n`);
    // Which clock the hop times below start on: the kernel's stamp includes the wait before sipspan ran.
    const clock = app.receiveClock;
    process.stdout.write(
      clock.udp === 'kernel'
        ? "UDP messages timed from the kernel's receive stamp, TCP from the event loop\n\n"
        : `messages timed from the event loop${clock.reason ? ` (${clock.reason})` : ''}\n\n`,
    );
    // The process stops after the report: its trace API with it, so the ids alone are printed.
    process.stdout.write(`${renderReport(summary, null)}\n`);
    for (const v of verdicts)
      process.stdout.write(`threshold ${v.text}: ${v.ok ? 'ok' : 'FAILED'} (${v.actual})\n`);
  }
  await app.stop(1000);
  const answered = results.length - failed;
  if (answered === 0) process.stderr.write('sipspan bench: no call was answered\n');
  return answered > 0 && verdicts.every((v) => v.ok) ? 0 : 1;
}

/** Pending transactions are waited for after the last call, at most this long (two sweeps and more). */
const SETTLE_MS = 3000;

interface Threshold {
  text: string;
  figure: string;
  op: '<' | '>';
  value: number;
}

const FIGURES = ['p50', 'p95', 'p99', 'setup_p50', 'setup_p95', 'setup_p99', 'ser', 'failed', 'timeouts'];

function parseThreshold(text: string): Threshold | string {
  const m = /^([a-z_0-9]+)\s*([<>])\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)$/.exec(text.trim());
  if (m === null || !FIGURES.includes(m[1]))
    return `"${text}": expected e.g. p99<0.2 (figures: ${FIGURES.join(', ')})`;
  return { text, figure: m[1], op: m[2] as '<' | '>', value: Number(m[3]) };
}

function check(t: Threshold, actual: number): boolean {
  if (!Number.isFinite(actual)) return false;
  return t.op === '<' ? actual < t.value : actual > t.value;
}

function figuresOf(r: Report, failed: number, timeouts: number): Record<string, number> {
  const h = r.hops[0];
  return {
    p50: h.rttMs.p50 / 1000,
    p95: h.rttMs.p95 / 1000,
    p99: h.rttMs.p99 / 1000,
    setup_p50: h.setupMs.p50 / 1000,
    setup_p95: h.setupMs.p95 / 1000,
    setup_p99: h.setupMs.p99 / 1000,
    ser: h.sessionEstablishmentRatio ?? Number.NaN,
    failed,
    timeouts,
  };
}
