import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { Sipspan } from '../app.ts';
import { buildConfig } from '../config/load-config.ts';
import { startCaptureSink } from '../sinks/capture/capture-sink.ts';
import { startLogSink } from '../sinks/logs/log-sink.ts';
import { startMetricsSink } from '../sinks/metrics/metrics-sink.ts';
import { HopReport, renderReport } from '../sinks/report/hop-report.ts';
import type { Sink } from '../sinks/sink.ts';
import { startTracingSink } from '../sinks/tracing/tracing-sink.ts';
import { B2buaStandin } from '../standins/b2bua-standin.ts';
import { ForwardStandin } from '../standins/forward-standin.ts';
import { LoadGenerator } from '../standins/load-generator.ts';
import { UasStandin } from '../standins/uas-standin.ts';
import { installSignalHandlers } from './commands.ts';
import { above0, NumberOptions, ratio } from './number-option.ts';

const USAGE = `usage: sipspan demo [options]

Runs, in one process: a stand-in sip-gateway (a forwarding SIP element, or a
B2BUA with --b2bua), a stand-in sip-signaling (a UAS), sipspan in front of
each (metrics on 13012 and 13022, admin and traces on 13000), and a load
generator placing calls through both hops. Prints a per-hop summary, then
keeps serving metrics and traces until interrupted, or exits with --calls N.

  --calls N          place N calls, print the summary and exit (0 = one batch of 200, then keep serving)
  --rate R           calls per second (default 20)
  --hold-ms MS       call duration before the caller hangs up (default 1000)
  --ring-ms MS       signaling: delay before 180 Ringing (default 80)
  --answer-ms MS     signaling: delay before the final answer (default 250)
  --jitter-ms MS     signaling: random extra answer delay, 0..MS (default 100)
  --fail-ratio F     signaling: fraction of calls answered 486 (default 0)
  --gateway-delay-ms MS  gateway: processing delay per request (default 5)
  --b2bua            the gateway is a back-to-back user agent (new Call-ID on the second leg)
  --host ADDR        address to bind everything on (default 127.0.0.1)
  --admin-port P     admin listener (default 13000); --gateway-metrics-port (13012), --signaling-metrics-port (13022)
  --log-file PATH    transaction log lines (default: a file in the temp directory)

The SIP elements listen on fixed ports of --host: sipspan 15060 (gateway side) and 15062
(signaling side), the stand-ins 15070 (sip-gateway) and 15080 (sip-signaling).
`;

export async function demoCommand(argv: string[]): Promise<number | null> {
  const { values } = parseArgs({
    args: argv,
    options: {
      calls: { type: 'string' },
      rate: { type: 'string' },
      'hold-ms': { type: 'string' },
      'ring-ms': { type: 'string' },
      'answer-ms': { type: 'string' },
      'jitter-ms': { type: 'string' },
      'fail-ratio': { type: 'string' },
      'gateway-delay-ms': { type: 'string' },
      b2bua: { type: 'boolean' },
      host: { type: 'string' },
      'admin-port': { type: 'string' },
      'gateway-metrics-port': { type: 'string' },
      'signaling-metrics-port': { type: 'string' },
      'log-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const num = new NumberOptions();
  const given = num.read(
    '--calls',
    values.calls,
    0,
    (c) => Number.isInteger(c) && c >= 0,
    'a whole number, 0 or more',
  );
  const exitAfter = given > 0;
  const calls = exitAfter ? given : 200;
  const rate = num.read('--rate', values.rate, 20, above0, 'a number above 0');
  const host = values.host ?? '127.0.0.1';
  const failRatio = num.read('--fail-ratio', values['fail-ratio'], 0, ratio, 'a ratio from 0 to 1');
  const port = (flag: string, d: number) =>
    num.read(
      `--${flag}`,
      values[flag as 'admin-port'],
      d,
      (p) => Number.isInteger(p) && p >= 0 && p <= 65535,
      'a port from 0 to 65535',
    );
  const adminPort = port('admin-port', 13000);
  const gatewayMetricsPort = port('gateway-metrics-port', 13012);
  const signalingMetricsPort = port('signaling-metrics-port', 13022);
  const ringMs = num.milliseconds('--ring-ms', values['ring-ms'], 80);
  const answerMs = num.milliseconds('--answer-ms', values['answer-ms'], 250);
  const jitterMs = num.milliseconds('--jitter-ms', values['jitter-ms'], 100);
  const gatewayDelayMs = num.milliseconds('--gateway-delay-ms', values['gateway-delay-ms'], 5);
  const holdMs = num.milliseconds('--hold-ms', values['hold-ms'], 1000);
  if (num.report()) return 2;
  const logFile = values['log-file'] ?? join(tmpdir(), 'sipspan-demo.log');
  const out = process.stdout;
  const tty = out.isTTY === true;

  // Ports of the demo's own SIP elements (loopback only).
  const ports = { gatewayRoute: 15060, signalingRoute: 15062, gateway: 15070, signaling: 15080, caller: 0 };
  const hp = (p: number) => (host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`);

  const signaling = await new UasStandin({
    host,
    port: ports.signaling,
    ringMs,
    answerMs,
    jitterMs,
    failRatio,
    failStatus: 486,
  }).start();
  const next = { transport: 'udp' as const, host, port: ports.signalingRoute };
  const gateway = values.b2bua
    ? await new B2buaStandin({ host, port: ports.gateway, next }).start()
    : await new ForwardStandin({
        host,
        port: ports.gateway,
        next,
        delayMs: gatewayDelayMs,
      }).start();

  const config = buildConfig({
    node: 'demo',
    admin: hp(adminPort),
    routes: [
      {
        name: 'sip-gateway',
        listen: [`udp://${hp(ports.gatewayRoute)}`, `tcp://${hp(ports.gatewayRoute)}`],
        upstream: `udp://${hp(ports.gateway)}`,
        metrics: hp(gatewayMetricsPort),
      },
      {
        name: 'sip-signaling',
        listen: [`udp://${hp(ports.signalingRoute)}`, `tcp://${hp(ports.signalingRoute)}`],
        upstream: `udp://${hp(ports.signaling)}`,
        metrics: hp(signalingMetricsPort),
      },
    ],
    logs: { destination: logFile },
  });

  const report = new HopReport(config.routes.map((r) => r.name));
  const app = await Sipspan.start(config, {
    sinks: (a): Sink[] => [
      startLogSink(a),
      startMetricsSink(a),
      startTracingSink(a, { store: true }),
      startCaptureSink(a),
      report,
    ],
  });
  const admin = `http://${hp(app.admin.port)}`;
  out.write(
    [
      'sipspan demo',
      `  caller → sip-gateway route (udp ${hp(ports.gatewayRoute)}) → ${values.b2bua ? 'B2BUA' : 'gateway'} stand-in (${hp(ports.gateway)})`,
      `         → sip-signaling route (udp ${hp(ports.signalingRoute)}) → signaling stand-in (${hp(ports.signaling)})`,
      `  metrics: http://${hp(gatewayMetricsPort)}/metrics  http://${hp(signalingMetricsPort)}/metrics  ${admin}/metrics`,
      `  traces:  ${admin}/api/traces   call view: ${admin}/`,
      `  logs:    ${logFile}`,
      `  placing ${calls} calls at ${rate}/s${failRatio > 0 ? `, ${Math.round(failRatio * 100)}% answered 486` : ''}`,
      '',
    ].join('\n'),
  );

  const load = new LoadGenerator({
    target: { transport: 'udp', host, port: ports.gatewayRoute },
    host,
    rate,
    calls,
    holdMs,
  });
  const started = performance.now();
  const progress = setInterval(() => {
    const done = load.done.length;
    const answered = load.done.filter((c) => c.result === 'answered').length;
    const line = `  ${((performance.now() - started) / 1000).toFixed(0)}s  placed ${load.placedCount}/${calls}  in progress ${load.inProgress}  ended ${done} (answered ${answered}, other ${done - answered})`;
    if (tty) out.write(`\r${line.padEnd(100)}`);
  }, 500);
  progress.unref();
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
    load.stop();
  };
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onInterrupt);
  const results = await load.run();
  clearInterval(progress);
  process.off('SIGINT', onInterrupt);
  process.off('SIGTERM', onInterrupt);
  // Let the last BYE transactions finish at every hop before reporting.
  await new Promise((r) => setTimeout(r, 300));
  if (tty) out.write('\n');

  const byResult: Record<string, number> = {};
  for (const c of results) byResult[c.result ?? 'unknown'] = (byResult[c.result ?? 'unknown'] ?? 0) + 1;
  const unexpected =
    results.filter((c) => c.result === 'timeout').length + (failRatio === 0 ? (byResult.failed ?? 0) : 0);
  out.write(
    `\ncalls placed ${results.length}: ${Object.entries(byResult)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n\n`,
  );
  out.write(
    `${renderReport(report.summary(5), (id) => `${admin}/api/traces/${id}   ${admin}/calls/${id}`)}\n`,
  );

  if (exitAfter || interrupted) {
    await app.stop(2000);
    await gateway.stop();
    await signaling.stop();
    return unexpected === 0 ? 0 : 1;
  }
  out.write(`\nstill serving metrics and traces (${admin}); Ctrl-C to stop\n`);
  installSignalHandlers(app, () => {
    void gateway.stop();
    void signaling.stop();
  });
  return null;
}
