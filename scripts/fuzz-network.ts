/**
 * Network fuzzing, long version: N seeded mutations (default 100,000) over UDP
 * and TCP against a child `bin/sipspan run`, as test/reliability/network-fuzz.test.ts
 * does with 5,000. A crash input is found among the last messages sent,
 * minimised and written to test/reliability/fixtures/network-crashes/, where
 * the reliability suite replays it from then on.
 *
 *   node_modules/.bin/node scripts/fuzz-network.ts [--count 100000] [--seed 1] [--rate 3000]
 *
 * Prints one JSON summary line; exits 1 when the proxy crashed, printed an
 * error, wrote a bad log line or stopped forwarding.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runNetworkFuzz } from '../test/reliability/support/network-fuzz.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '1' },
    rate: { type: 'string', default: '3000' },
  },
});

const crashDir = join(import.meta.dirname, '..', 'test', 'reliability', 'fixtures', 'network-crashes');
const count = Number(values.count);
let printed = -1;
const r = await runNetworkFuzz({
  count,
  seed: Number(values.seed),
  ratePerSecond: Number(values.rate),
  crashDir,
  progress: (sent, rssKb) => {
    const bucket = Math.floor(sent / 10_000);
    if (bucket === printed) return;
    printed = bucket;
    process.stderr.write(`fuzz: ${sent}/${count} sent, RSS ${(rssKb / 1024).toFixed(0)} MiB\n`);
  },
});
const summary = {
  count,
  seed: Number(values.seed),
  sentUdp: r.sentUdp,
  sentTcp: r.sentTcp,
  tcpConnections: r.tcpConnections,
  upstreamReceived: r.upstreamReceived,
  upstreamAnswersMutated: r.upstreamAnswersMutated,
  seconds: Number(r.durationSeconds.toFixed(1)),
  exited: r.exited,
  stderr: r.stderr.slice(0, 4000),
  logLines: r.logLines,
  badLogLines: r.badLogLines,
  longestLogLine: r.longestLogLine,
  rssStartMiB: Math.round(r.rssStartKb / 1024),
  rssMaxMiB: Math.round(r.rssMaxKb / 1024),
  rssEndMiB: Math.round(r.rssEndKb / 1024),
  fdStart: r.fdStart,
  fdEnd: r.fdEnd,
  transactionsAtEnd: r.transactionsAtEnd,
  healthyAfter: r.healthyAfter,
  crashFiles: r.crashFiles,
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
const ok = r.exited === null && r.stderr === '' && r.badLogLines.length === 0 && r.healthyAfter;
process.exitCode = ok ? 0 : 1;
