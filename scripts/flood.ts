/**
 * Flood, long version: N never-answered INVITEs (default 1,000,000) at R/s
 * (default 5,000) into a child `bin/sipspan run` with its default limits,
 * while a LoadGenerator places 50 calls/s on a second route of the same
 * process. test/reliability/flood.test.ts is the short version (50,000,
 * in-process, max_transactions 5,000).
 *
 *   flood sender ──INVITE×N @R/s──▶ route flood ──▶ silent upstream (bound, never answers)
 *   LoadGenerator ──50 calls/s────▶ route calls ──▶ UAS stand-in
 *
 * Samples every 2 s: the child's RSS and V8 heap (admin /metrics), the table
 * sizes (/api/status), the longest the event loop was held. Prints one JSON
 * summary; exit 1 when a table passed its cap, a steady call failed, a flood
 * INVITE was not forwarded or was dropped by the kernel at sipspan's socket, or
 * the child died.
 *
 *   node_modules/.bin/node scripts/flood.ts [--count 1000000] [--rate 5000] [--max-transactions N]
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { LoadGenerator } from '../src/standins/load-generator.ts';
import { UasStandin } from '../src/standins/uas-standin.ts';
import {
  ChildSipspan,
  CountingPeer,
  getJson,
  HOST,
  sipRequest,
  writeConfig,
} from '../test/reliability/support/harness.ts';
import { freePort } from '../test/support/sipp.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000000' },
    rate: { type: 'string', default: '5000' },
    'max-transactions': { type: 'string' },
    'calls-rate': { type: 'string', default: '50' },
  },
});
const count = Number(values.count);
const rate = Number(values.rate);
const callsRate = Number(values['calls-rate']);

/** One scrape of a /metrics port ('' when it does not answer). */
async function scrape(port: number): Promise<string> {
  try {
    return await (await fetch(`http://${HOST}:${port}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  } catch {
    return '';
  }
}

/** The value of the first series `name` (whose labels include `labels`) in a scrape, or NaN. */
function valueIn(text: string, name: string, labels = ''): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const i = line.lastIndexOf(' ');
    const series = line.slice(0, i);
    if (series.startsWith(`${name}{`) || series === name) {
      if (labels === '' || series.includes(labels)) return Number(line.slice(i + 1));
    }
  }
  return Number.NaN;
}

/** Datagrams the kernel dropped at the UDP socket bound to 127.0.0.1:port (the `drops` column of /proc/net/udp), or -1. */
function socketDrops(port: number): number {
  try {
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    for (const line of readFileSync('/proc/net/udp', 'latin1').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[1] === `0100007F:${hex}`) return Number(f[f.length - 1]);
    }
  } catch {
    // not Linux
  }
  return -1;
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-flood-'));
  const silent = await CountingPeer.start();
  const uas = await new UasStandin({ host: HOST, port: await freePort(), ringMs: 20, answerMs: 40 }).start();
  const floodPort = await freePort();
  const callsPort = await freePort();
  const adminPort = await freePort();
  const floodMetrics = await freePort();
  const limits: Record<string, number> = {};
  if (values['max-transactions'] !== undefined) {
    limits.max_transactions = Number(values['max-transactions']);
    limits.max_calls = Number(values['max-transactions']);
  }
  const file = await writeConfig(dir, {
    node: 'flood',
    admin: `${HOST}:${adminPort}`,
    routes: [
      {
        name: 'flood',
        listen: [`udp://${HOST}:${floodPort}`],
        upstream: `udp://${HOST}:${silent.port}`,
        metrics: `${HOST}:${floodMetrics}`,
      },
      { name: 'calls', listen: [`udp://${HOST}:${callsPort}`], upstream: `udp://${HOST}:${uas.port}` },
    ],
    limits,
  });
  const child = await ChildSipspan.spawn(file, { keepLines: 0 });
  let logLines = 0;
  let badLines = 0;
  child.onLine = (l) => {
    logLines++;
    // Every 100th line parsed: the flood writes a line per timed-out INVITE.
    if (logLines % 100 === 0) {
      try {
        JSON.parse(l);
      } catch {
        badLines++;
      }
    }
  };
  for (let i = 0; i < 200 && (await getJson(`http://${HOST}:${adminPort}/api/status`, 200)) === null; i++)
    await sleep(50);
  const status0 = await getJson(`http://${HOST}:${adminPort}/api/status`);
  if (status0 === null) throw new Error(`sipspan did not start: ${child.stderr}`);
  const caps = {
    transactions: limits.max_transactions ?? 100_000,
    calls: limits.max_calls ?? 100_000,
  };

  const sender = createSocket({ type: 'udp4', sendBufferSize: 4 * 1024 * 1024 });
  await new Promise<void>((r) => sender.bind(0, HOST, () => r()));
  const senderPort = sender.address().port;
  const seconds = count / rate;
  const load = new LoadGenerator({
    target: { transport: 'udp', host: HOST, port: callsPort },
    host: HOST,
    rate: callsRate,
    calls: Math.round(callsRate * seconds),
    holdMs: 200,
  });
  const loadDone = load.run();

  const samples: {
    t: number;
    rssMiB: number;
    heapMiB: number;
    loopHeldMs: number;
    tx: number;
    calls: number;
  }[] = [];
  const t0 = performance.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const st = await getJson(`http://${HOST}:${adminPort}/api/status`, 1500);
      // One scrape per sample: prom-client resets its event-loop delay histogram at each, so the
      // lag's max is the longest the loop was held since the last sample (a second scrape would
      // read the few ms since the first), the window the kernel buffer must hold the flood through.
      const admin = await scrape(adminPort);
      const heap = valueIn(admin, 'nodejs_heap_size_used_bytes');
      const loopHeld = valueIn(admin, 'nodejs_eventloop_lag_max_seconds');
      samples.push({
        t: Math.round((performance.now() - t0) / 1000),
        rssMiB: +(child.rssKb() / 1024).toFixed(1),
        heapMiB: +(heap / 1048576).toFixed(1),
        loopHeldMs: +(loopHeld * 1000).toFixed(1),
        tx: Number(st?.transactions ?? -1),
        calls: Number(st?.calls ?? -1),
      });
      const s = samples[samples.length - 1];
      if (samples.length % 10 === 0)
        process.stderr.write(
          `flood: ${s.t} s RSS ${s.rssMiB} MiB heap ${s.heapMiB} MiB tx ${s.tx} calls ${s.calls} forwarded ${silent.udpCount}\n`,
        );
      await sleep(2000);
    }
  })();

  let sent = 0;
  while (sent < count && child.exit === null) {
    const due = Math.min(count, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (sent < due) {
      sender.send(
        sipRequest({ viaPort: senderPort, branch: `z9hG4bK-fl${sent}`, callId: `flood-${sent}@x` }),
        floodPort,
        HOST,
      );
      sent++;
    }
    await sleep(10);
  }
  const floodSeconds = (performance.now() - t0) / 1000;
  const calls = await loadDone;
  for (let i = 0; i < 100 && silent.udpCount < sent; i++) await sleep(50);
  const route = await scrape(floodMetrics);
  const refused = valueIn(route, 'sipspan_limit_hits_total', 'limit="max_transactions"');
  // Where a missing INVITE was lost: at sipspan's socket, inside sipspan, or at the silent peer's socket.
  const proxyForwarded = valueIn(route, 'sip_requests_total', 'method="INVITE",direction="downstream"');
  const proxySocketDrops = socketDrops(floodPort);
  const peerSocketDrops = socketDrops(silent.port);
  sampling = false;
  await sampler;
  await new Promise<void>((r) => sender.close(() => r()));

  const failed = calls.filter((c) => c.result !== 'answered').length;
  const maxTx = Math.max(...samples.map((s) => s.tx));
  const maxCalls = Math.max(...samples.map((s) => s.calls));
  const summary = {
    sent,
    rate,
    floodSeconds: +floodSeconds.toFixed(1),
    forwarded: silent.udpCount,
    proxyForwarded,
    proxySocketDrops,
    peerSocketDrops,
    caps,
    maxTransactions: maxTx,
    maxCalls,
    refusedTransactions: refused,
    steadyCalls: calls.length,
    steadyFailed: failed,
    steadySetupP99Ms: +[...calls.map((c) => c.setupMs)]
      .sort((a, b) => a - b)
      [Math.floor(calls.length * 0.99)]?.toFixed(1),
    rssStartMiB: samples[0]?.rssMiB,
    rssMaxMiB: Math.max(...samples.map((s) => s.rssMiB)),
    heapMaxMiB: Math.max(...samples.map((s) => s.heapMiB)),
    loopHeldMaxMs: Math.max(...samples.map((s) => s.loopHeldMs).filter((ms) => !Number.isNaN(ms))),
    logLines,
    badLogLinesOfSampled: badLines,
    childExited: child.exit,
    childStderr: child.stderr.slice(0, 2000),
  };
  await child.stop(15000);
  await uas.stop();
  await silent.close();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  const ok =
    child.exit?.signal !== 'SIGKILL' &&
    summary.childExited === null &&
    maxTx <= caps.transactions &&
    maxCalls <= caps.calls &&
    failed === 0 &&
    silent.udpCount === sent &&
    proxySocketDrops <= 0 &&
    badLines === 0;
  return ok ? 0 : 1;
}

process.exitCode = await main();
