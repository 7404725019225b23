/**
 * What each sink costs: sipspan with a chosen set of sinks, for a SIPp step run.
 *   node bench/sink-cost.ts --sinks none|metrics|tracing|logs|all --listen PORT --upstream PORT [--log-file F]
 *                           [--receive-clock kernel|event_loop]
 * Runs until SIGTERM. Pin it with taskset; drive it with SIPp (see bench/README.md).
 */
import { parseArgs } from 'node:util';
import { Sipspan } from '../src/app.ts';
import { installSignalHandlers } from '../src/cli/commands.ts';
import { buildConfig } from '../src/config/load-config.ts';
import { startLogSink } from '../src/sinks/logs/log-sink.ts';
import { startMetricsSink } from '../src/sinks/metrics/metrics-sink.ts';
import type { Sink } from '../src/sinks/sink.ts';
import { startTracingSink } from '../src/sinks/tracing/tracing-sink.ts';

const { values } = parseArgs({
  options: {
    sinks: { type: 'string', default: 'all' },
    listen: { type: 'string' },
    upstream: { type: 'string' },
    'log-file': { type: 'string', default: '/tmp/sipspan-sink-cost.log' },
    metrics: { type: 'string' },
    'receive-clock': { type: 'string', default: 'kernel' },
  },
});
const which = new Set(
  values.sinks === 'all'
    ? ['metrics', 'tracing', 'logs']
    : values.sinks!.split(',').filter((s) => s !== 'none'),
);
const config = buildConfig({
  admin: '127.0.0.1:0',
  routes: [
    {
      name: 'sip-signaling',
      listen: [`udp://127.0.0.1:${values.listen}`],
      upstream: `udp://127.0.0.1:${values.upstream}`,
      ...(values.metrics ? { metrics: `127.0.0.1:${values.metrics}` } : {}),
    },
  ],
  logs: { destination: values['log-file'] },
  receive_clock: values['receive-clock'],
});
const app = await Sipspan.start(config, {
  sinks: (a) => {
    const s: Sink[] = [];
    if (which.has('logs')) s.push(startLogSink(a));
    if (which.has('metrics')) s.push(startMetricsSink(a));
    if (which.has('tracing')) s.push(startTracingSink(a));
    return s;
  },
});
process.stderr.write(`sink-cost: sinks ${[...which].join(',') || 'none'} on ${values.listen}\n`);
installSignalHandlers(app);
