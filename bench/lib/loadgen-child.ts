/**
 * The UAC of a bench run where SIPp is absent: the built-in load generator,
 * in its own process so it can be pinned to the load core.
 *   node bench/lib/loadgen-child.ts --target udp://127.0.0.1:P --rate R --calls N
 * Prints {"ok":N,"failed":N,"placeSeconds":S} on stdout and exits.
 */
import { parseArgs } from 'node:util';
import { parseEndpoint } from '../../src/config/endpoint.ts';
import { LoadGenerator } from '../../src/standins/load-generator.ts';

const { values } = parseArgs({
  options: { target: { type: 'string' }, rate: { type: 'string' }, calls: { type: 'string' } },
});
const target = parseEndpoint(values.target ?? '');
if (typeof target === 'string') {
  process.stderr.write(`--target: ${target}\n`);
  process.exit(2);
}
const calls = Number(values.calls ?? 100);
const load = new LoadGenerator({
  target: { transport: target.transport, host: target.host, port: target.port },
  host: '127.0.0.1',
  rate: Number(values.rate ?? 100),
  calls,
  holdMs: 0,
  maxConcurrent: 50_000,
});
const began = performance.now();
let placeSeconds = 0;
const watch = setInterval(() => {
  if (placeSeconds === 0 && load.placedCount >= calls) placeSeconds = (performance.now() - began) / 1000;
}, 5);
const done = await load.run();
clearInterval(watch);
if (placeSeconds === 0) placeSeconds = (performance.now() - began) / 1000;
const ok = done.filter((c) => c.result === 'answered').length;
process.stdout.write(`${JSON.stringify({ ok, failed: done.length - ok, placeSeconds })}\n`);
process.exit(0);
