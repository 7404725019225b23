/**
 * Telemetry faults must never reach SIP. With the tracing sink exporting OTLP
 * to a collector that is absent, blackholed (accepts, never answers), slow
 * (answers after 2 s) or flapping (gone every other 300 ms), and with the log
 * sink writing to a stalled stdout or a full disk (/dev/full):
 *
 *   - every request is answered and reaches the upstream byte-identical from
 *     the From line on (0 lost, 0 altered),
 *   - the round trip p95 stays within 1 ms, and p99 within 5 ms, of the same
 *     traffic while the telemetry is healthy,
 *   - memory stays bounded and every dropped span or log line is counted,
 *   - export resumes once the collector (or the stdout reader) is back.
 *
 *   UDP client ─200 OPTIONS/s─▶ sipspan ─▶ upstream (answers 200, checks bytes)
 *                                  └─ spans ─▶ faulty OTLP collector     logs ─▶ stalled pipe, /dev/full
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntil } from '../support/raw-peers.ts';
import { freePort } from '../support/sipp.ts';
import {
  ChildSipspan,
  CountingPeer,
  HOST,
  quantile,
  responseTo,
  sipRequest,
  writeConfig,
} from './support/harness.ts';
import { checkLogLine } from './support/network-fuzz.ts';
import { OtlpCounter } from './support/otlp-receiver.ts';

const RATE = 200;
/**
 * Seconds per measured run. One major GC of the child stalls its loop 20–30 ms
 * (a --cpu-prof of a failing 3 s blackholed run showed it as the only stall of
 * the fault window) and so delays ~5 requests at 200/s: a 3 s run's p99 (the 6th
 * slowest of 600) could not absorb it, a 5 s run's (the 10th of 1,000) does.
 */
const SECONDS = 5;
/** Allowed p95 round-trip increase over the healthy run, ms. */
const ADDED_P95_MS = 1;
/**
 * Allowed p99 increase, ms. With 1,000–1,600 samples the p99 is the 10th–16th
 * slowest request: a GC or scheduler hiccup on a busy 2-core box moves it by
 * several ms either way (healthy runs alone range 2.5–7.6 ms here). A blocked
 * exporter or log writer adds tens to hundreds of ms, which this bound still
 * catches.
 */
const ADDED_P99_MS = 5;

interface TrafficResult {
  sent: number;
  answered: number;
  altered: string[];
  rtts: number[];
}

/**
 * The upstream: answers every request 200 at once and checks that the bytes
 * from `From:` to the end are exactly what the client sent (everything sipspan
 * may change — its Via, received/rport, Max-Forwards, trace headers — comes before).
 */
class CheckingUpstream {
  readonly peer: CountingPeer;
  readonly expected = new Map<string, Buffer>();
  readonly altered: string[] = [];
  arrivals = 0;

  private constructor(peer: CountingPeer) {
    this.peer = peer;
    peer.onDatagram = (b, r) => {
      this.arrivals++;
      const cid =
        /\r\nCall-ID: ([^\r\n]+)/.exec(b.toString('latin1', 0, Math.min(b.length, 2048)))?.[1] ?? '';
      const want = this.expected.get(cid);
      const from = b.indexOf('\r\nFrom: ');
      if (want === undefined || from === -1 || !b.subarray(from).equals(want)) {
        if (this.altered.length < 10) this.altered.push(b.toString('latin1'));
      }
      peer.send(responseTo(b, 200, 'OK'), r.port);
    };
  }

  static async start(): Promise<CheckingUpstream> {
    return new CheckingUpstream(await CountingPeer.start({ tcp: false }));
  }
}

/** RATE OPTIONS per second for `seconds` from one UDP socket; round trip of each. */
async function drive(
  port: number,
  upstream: CheckingUpstream,
  label: string,
  seconds = SECONDS,
): Promise<TrafficResult> {
  const tag = label.replace(/[^a-zA-Z0-9-]/g, '-');
  const client = await CountingPeer.start({ tcp: false });
  const sentAt = new Map<string, number>();
  const rtts: number[] = [];
  let notOk = 0;
  client.onDatagram = (b) => {
    if (!b.toString('latin1', 0, 12).startsWith('SIP/2.0 200')) notOk++;
    const cid = /\r\nCall-ID: ([^\r\n]+)/.exec(b.toString('latin1'))?.[1] ?? '';
    const t = sentAt.get(cid);
    if (t !== undefined) {
      rtts.push(performance.now() - t);
      sentAt.delete(cid);
    }
  };
  const altered0 = upstream.altered.length;
  const arrivals0 = upstream.arrivals;
  const total = RATE * seconds;
  const started = performance.now();
  let i = 0;
  try {
    while (i < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE) + 1);
      for (; i < due; i++) {
        const callId = `${tag}-${i}@x`;
        const msg = sipRequest({
          method: 'OPTIONS',
          viaPort: client.port,
          branch: `z9hG4bK-${tag}${i}`,
          callId,
          extra: ['Accept: application/sdp', `X-Payload: ${'p'.repeat(200)}`],
        });
        upstream.expected.set(callId, msg.subarray(msg.indexOf('\r\nFrom: ')));
        sentAt.set(callId, performance.now());
        client.send(msg, port);
      }
      await sleep(2);
    }
    await waitUntil(() => sentAt.size === 0, 2000);
  } finally {
    await client.close();
  }
  return {
    sent: total,
    // Answered means: reached the upstream and its 200 came back.
    answered: Math.min(rtts.length - notOk, upstream.arrivals - arrivals0),
    altered: upstream.altered.slice(altered0),
    rtts,
  };
}

function p99(r: TrafficResult): number {
  return quantile(r.rtts, 0.99);
}

function comparison(r: TrafficResult, healthy: TrafficResult): { ok: boolean; shown: string } {
  const p95 = (x: TrafficResult) => quantile(x.rtts, 0.95);
  const shown = `p95 ${p95(r).toFixed(2)} / p99 ${p99(r).toFixed(2)} ms under the fault, p95 ${p95(healthy).toFixed(2)} / p99 ${p99(healthy).toFixed(2)} ms healthy`;
  const ok = p95(r) - p95(healthy) <= ADDED_P95_MS && p99(r) - p99(healthy) <= ADDED_P99_MS;
  return { ok, shown };
}

/**
 * The fault did not slow forwarding: p95 and p99 round trips against the healthy run's. On a
 * 2-core machine shared with the rest of the suite, one run in a few meets a noisy stretch and
 * reads ~2 ms slower at p95 whatever the fault (seen with a collector blackholed and with logs to
 * /dev/full, runs that pass alone). A fault that slows forwarding slows every run, so a failed
 * comparison is measured once more, under the same fault, and that run decides.
 */
async function assertNotSlowed(
  r: TrafficResult,
  healthy: TrafficResult,
  again: () => Promise<TrafficResult>,
): Promise<void> {
  const first = comparison(r, healthy);
  if (first.ok) return;
  const second = await again();
  const retry = comparison(second, healthy);
  process.stdout.write(`# telemetry faults: measured again after ${first.shown}: ${retry.shown}\n`);
  assert.equal(second.answered, second.sent, 'every request answered');
  assert.deepEqual(second.altered, [], 'requests altered on the way');
  assert.ok(retry.ok, `${retry.shown} (the first run: ${first.shown})`);
}

/** A TCP listener that accepts and never reads or answers: a blackholed collector. */
async function blackhole(port: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.pause();
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(port, HOST, () => r()));
  return {
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A child sipspan with every production sink (startAllSinks), exporting OTLP to `collectorPort`. */
async function startChild(
  dir: string,
  upstreamPort: number,
  opts: { collectorPort: number; logs?: Record<string, unknown> },
): Promise<{ child: ChildSipspan; port: number; adminPort: number }> {
  const port = await freePort();
  const adminPort = await freePort();
  const file = await writeConfig(dir, {
    node: 'telemetry-faults',
    admin: `${HOST}:${adminPort}`,
    routes: [
      { name: 'faults', listen: [`udp://${HOST}:${port}`], upstream: `udp://${HOST}:${upstreamPort}` },
    ],
    logs: opts.logs ?? {},
  });
  const child = await ChildSipspan.spawn(file, {
    keepLines: 0,
    env: {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://${HOST}:${opts.collectorPort}`,
      OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_BSP_EXPORT_TIMEOUT: '500',
      OTEL_BSP_MAX_QUEUE_SIZE: '256',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '128',
    },
  });
  const deadline = performance.now() + 10_000;
  let ready = false;
  while (!ready && child.exit === null && performance.now() < deadline) {
    try {
      ready =
        (await fetch(`http://${HOST}:${adminPort}/readyz`, { signal: AbortSignal.timeout(300) })).status ===
        200;
    } catch {
      await sleep(50);
    }
  }
  if (!ready) {
    await child.stop(1000);
    assert.fail(`sipspan did not start: ${child.stderr}`);
  }
  return { child, port, adminPort };
}

/** One process-wide counter from the admin /metrics, or NaN. */
async function adminCounter(adminPort: number, name: string): Promise<number> {
  const text = await (
    await fetch(`http://${HOST}:${adminPort}/metrics`, { signal: AbortSignal.timeout(2000) })
  ).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
  return m === null ? Number.NaN : Number(m[1]);
}

describe('telemetry faults never reach SIP', { concurrency: false }, () => {
  let upstream: CheckingUpstream;
  let dir: string;
  /** Collectors to close even when a test fails before its own cleanup. */
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    upstream = await CheckingUpstream.start();
    dir = mkdtempSync(join(tmpdir(), 'sipspan-telemetry-'));
  });

  after(async () => {
    for (const c of cleanups) await c();
    await upstream.peer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  type Fault = 'absent' | 'blackholed' | 'slow' | 'flapping';
  for (const fault of ['absent', 'blackholed', 'slow', 'flapping'] as Fault[]) {
    test(`OTLP collector ${fault}: 0 lost, 0 altered, p95 within ${ADDED_P95_MS} ms and p99 within ${ADDED_P99_MS} ms of the healthy run, memory bounded, drops counted, export resumes after recovery`, async () => {
      const collectorPort = await freePort();
      const collector = new OtlpCounter();
      await collector.start(HOST, collectorPort);
      cleanups.push(() => collector.close());
      const { child, port, adminPort } = await startChild(dir, upstream.peer.port, { collectorPort });
      let hole: { close(): Promise<void> } | null = null;
      let flapper: NodeJS.Timeout | null = null;
      try {
        // Healthy first: the same process, the same traffic, a collector that answers at once.
        await drive(port, upstream, `${fault}-warm`, 1);
        const healthy = await drive(port, upstream, `${fault}-healthy`);
        assert.ok(await waitUntil(() => collector.spans > 0, 3000), 'spans exported while healthy');
        const rss0 = child.rssKb();
        const dropped0 = await adminCounter(adminPort, 'sipspan_spans_dropped_total');
        const failed0 = await adminCounter(adminPort, 'sipspan_span_export_failures_total');

        if (fault === 'absent') await collector.close();
        if (fault === 'blackholed') {
          await collector.close();
          hole = await blackhole(collectorPort);
        }
        if (fault === 'slow') collector.delayMs = 2000;
        if (fault === 'flapping') {
          let busy = false;
          flapper = setInterval(() => {
            if (busy) return;
            busy = true;
            const flip = collector.listening
              ? collector.close()
              : collector.start(HOST, collectorPort).catch(() => {});
            void flip.finally(() => {
              busy = false;
            });
          }, 300);
        }
        const r = await drive(port, upstream, `${fault}-fault`);
        const rss1 = child.rssKb();
        const dropped = (await adminCounter(adminPort, 'sipspan_spans_dropped_total')) - dropped0;
        const failed = (await adminCounter(adminPort, 'sipspan_span_export_failures_total')) - failed0;
        assert.equal(child.exit, null, 'sipspan kept running');
        assert.equal(r.answered, r.sent, 'every request answered');
        assert.deepEqual(r.altered, [], 'requests altered on the way');
        await assertNotSlowed(r, healthy, () => drive(port, upstream, `${fault}-fault-again`));
        assert.ok((rss1 - rss0) / 1024 < 32, `RSS grew ${((rss1 - rss0) / 1024).toFixed(1)} MiB`);
        if (fault !== 'flapping')
          assert.ok(dropped > 0 || failed > 0, 'dropped spans or failed exports are counted');

        // Recovery: the collector answers again on the same port; spans of new traffic arrive.
        if (flapper !== null) clearInterval(flapper);
        flapper = null;
        if (hole !== null) await hole.close();
        hole = null;
        await collector.close();
        collector.delayMs = 0;
        await collector.start(HOST, collectorPort);
        const before = collector.spans;
        const recoveredAt = performance.now();
        await drive(port, upstream, `${fault}-after`, 1);
        assert.ok(
          await waitUntil(() => collector.spans - before >= 200, 5000),
          `export resumed: ${collector.spans - before} spans`,
        );
        process.stdout.write(
          `# telemetry faults: collector ${fault}: p99 ${p99(r).toFixed(2)} ms (healthy ${p99(healthy).toFixed(2)}), ${dropped} spans dropped, ${failed} failed exports, RSS ${(rss0 / 1024).toFixed(0)} → ${(rss1 / 1024).toFixed(0)} MiB, export resumed ${(performance.now() - recoveredAt).toFixed(0)} ms after recovery\n`,
        );
      } finally {
        if (flapper !== null) clearInterval(flapper);
        await child.stop(3000);
        await hole?.close();
        await collector.close();
      }
    });
  }

  for (const fault of ['stdout stalled', 'log disk full'] as const) {
    test(`${fault}: 0 lost, 0 altered, p95 within ${ADDED_P95_MS} ms and p99 within ${ADDED_P99_MS} ms, memory bounded, dropped lines counted${fault === 'stdout stalled' ? ', lines flow again (all valid JSON) once stdout is read' : ''}`, async () => {
      const collectorPort = await freePort();
      const collector = new OtlpCounter();
      await collector.start(HOST, collectorPort);
      cleanups.push(() => collector.close());
      // The healthy reference: the same traffic with logs going to a file nobody stalls.
      const ref = await startChild(dir, upstream.peer.port, {
        collectorPort,
        logs: { destination: join(dir, 'ref.log') },
      });
      let healthy: TrafficResult;
      try {
        await drive(ref.port, upstream, `${fault}-ref-warm`, 1);
        healthy = await drive(ref.port, upstream, `${fault}-ref`);
      } finally {
        await ref.child.stop(3000);
      }
      const { child, port, adminPort } = await startChild(dir, upstream.peer.port, {
        collectorPort,
        logs: fault === 'log disk full' ? { destination: '/dev/full' } : { max_buffer_bytes: 64 * 1024 },
      });
      const bad: string[] = [];
      let lines = 0;
      child.onLine = (l) => {
        lines++;
        const p = checkLogLine(l, 8192);
        if (p !== null && bad.length < 5) bad.push(`${p}: ${l.slice(0, 200)}`);
      };
      try {
        await drive(port, upstream, `${fault}-warm`, 1);
        const rss0 = child.rssKb();
        if (fault === 'stdout stalled') child.proc.stdout?.pause();
        // Long enough to fill the kernel's socket buffers (~400 KB here) and the writer's 64 KB bound.
        const r = await drive(port, upstream, `${fault}-fault`, fault === 'stdout stalled' ? 8 : SECONDS);
        const rss1 = child.rssKb();
        assert.equal(child.exit, null, 'sipspan kept running');
        assert.equal(r.answered, r.sent, 'every request answered');
        assert.deepEqual(r.altered, [], 'requests altered on the way');
        await assertNotSlowed(r, healthy, () => drive(port, upstream, `${fault}-fault-again`));
        assert.ok((rss1 - rss0) / 1024 < 32, `RSS grew ${((rss1 - rss0) / 1024).toFixed(1)} MiB`);
        const dropped = await adminCounter(adminPort, 'sipspan_log_lines_dropped_total');
        assert.ok(dropped > 0, `dropped log lines are counted (${dropped})`);
        if (fault === 'stdout stalled') {
          const before = lines;
          child.proc.stdout?.resume();
          await drive(port, upstream, `${fault}-after`, 1);
          assert.ok(
            await waitUntil(() => lines - before >= 150, 5000),
            `lines after the reader came back: ${lines - before}`,
          );
        }
        assert.deepEqual(bad, [], 'stdout lines that are not one JSON object each');
        process.stdout.write(
          `# telemetry faults: ${fault}: p99 ${p99(r).toFixed(2)} ms (healthy ${p99(healthy).toFixed(2)}), ${dropped} log lines dropped, RSS ${(rss0 / 1024).toFixed(0)} → ${(rss1 / 1024).toFixed(0)} MiB\n`,
        );
      } finally {
        child.proc.stdout?.resume();
        await child.stop(3000);
      }
    });
  }
});
