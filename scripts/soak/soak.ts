/**
 * Soak: a SIPp mix through a child `bin/sipspan run` for N minutes, then
 * (unless --no-kill) kill -9 under load and restart.
 *
 *   SIPp UAC ─▶ route soak-udp    (UDP)                    ─▶ SIPp UAS  INVITE/ACK/re-INVITE/ACK/BYE
 *   SIPp UAC ─▶ route soak-tcp    (TCP, 1.5 KB pad)        ─▶ SIPp UAS  same, over TCP, messages > 1300 bytes
 *   SIPp UAC ─▶ route soak-large  (UDP, 1.5 KB pad)        ─▶ SIPp UAS  same, datagrams > 1300 bytes
 *   SIPp UAC ─▶ route soak-reg    (UDP)                    ─▶ SIPp UAS  REGISTER, OPTIONS
 *   SIPp UAC ─▶ route soak-cancel (UDP)                    ─▶ SIPp UAS  INVITE, 180, CANCEL, 487, ACK
 *
 * 0 lost: every SIPp call successful, none failed. 0 altered: every request
 * carries X-Soak-Pad (and an SDP origin) that the callee checks byte for byte
 * (check_it fails the call), and the callee's X-Soak-Echo is checked by the
 * caller. Telemetry: stdout lines must all be JSON; lines naming a method and
 * spans at an OTLP stand-in (--otlp) are counted against the transactions the
 * mix makes. Resources: RSS and open descriptors sampled every 5 s; the RSS
 * slope (least squares over the last 80% of the run) is reported, and judged
 * less the young generation: V8 resizes its young generation (4 to 64 MiB of
 * committed memory here) with the allocation rate, which moves RSS in steps
 * of 15-30 MiB that are not growth. A leak shows in what remains.
 *
 *   scripts/soak.sh                   # 30 minutes
 *   scripts/soak.sh --minutes 3       # short
 *
 * Writes report.json and prints a summary; exit 1 when a check fails.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  ChildSipspan,
  getJson,
  HOST,
  tcpConnect,
  writeConfig,
} from '../../test/reliability/support/harness.ts';
import { OtlpCounter } from '../../test/reliability/support/otlp-receiver.ts';
import {
  freePort,
  runSippUac,
  type SippResult,
  type SippTransport,
  startSippUas,
} from '../../test/support/sipp.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    scale: { type: 'string', default: '1' },
    'no-kill': { type: 'boolean', default: false },
    otlp: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

const minutes = Number(values.minutes);
const seconds = Math.round(minutes * 60);
const scale = Number(values.scale);
const out = values.out ?? join(tmpdir(), `sipspan-soak-${Date.now()}`);
mkdirSync(out, { recursive: true });
const scenarioDir = join(import.meta.dirname, 'scenarios');

/** An alphanumeric pad of `n` bytes: what a proxy must pass untouched. */
function pad(n: number): string {
  const unit = 'soak0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
}

/** A scenario file with its placeholders filled in, written to the output directory. */
function scenario(name: string, tag: string, padBytes: number, holdMs: number): string {
  const p = pad(padBytes);
  const text = readFileSync(join(scenarioDir, `${name}.xml`), 'latin1')
    .replaceAll('@PADRE@', p)
    .replaceAll('@PADLEN@', String(padBytes))
    .replaceAll('@PAD@', p)
    .replaceAll('@HOLDMS@', String(holdMs));
  const file = join(out, `${tag}-${name}.xml`);
  writeFileSync(file, text, 'latin1');
  return file;
}

interface Flow {
  route: string;
  uac: string;
  uas: string;
  transport: SippTransport;
  upstream: 'udp' | 'tcp';
  rate: number;
  padBytes: number;
  /** Transactions each call makes at the hop (retransmissions and the non-2xx ACK excluded). */
  txPerCall: number;
  routeExtra?: Record<string, unknown>;
}

const FLOWS: Flow[] = [
  {
    route: 'soak-udp',
    uac: 'uac-call',
    uas: 'uas-call',
    transport: 'u1',
    upstream: 'udp',
    rate: 20,
    padBytes: 64,
    txPerCall: 5,
  },
  {
    route: 'soak-tcp',
    uac: 'uac-call',
    uas: 'uas-call',
    transport: 't1',
    upstream: 'tcp',
    rate: 10,
    padBytes: 1500,
    txPerCall: 5,
  },
  {
    route: 'soak-large',
    uac: 'uac-call',
    uas: 'uas-call',
    transport: 'u1',
    upstream: 'udp',
    rate: 5,
    padBytes: 1500,
    txPerCall: 5,
    routeExtra: { udp_mtu_fallback_to_tcp: false },
  },
  {
    route: 'soak-reg',
    uac: 'uac-register',
    uas: 'uas-register',
    transport: 'u1',
    upstream: 'udp',
    rate: 20,
    padBytes: 32,
    txPerCall: 2,
  },
  {
    route: 'soak-cancel',
    uac: 'uac-cancel',
    uas: 'uas-cancel',
    transport: 'u1',
    upstream: 'udp',
    rate: 5,
    padBytes: 0,
    txPerCall: 2,
  },
];

interface Sample {
  t: number;
  rssKb: number;
  /** V8's young generation, committed (from /metrics on the admin port); -1 when not read. */
  youngKb: number;
  fds: number;
  transactions: number;
  calls: number;
  tcp: number;
}

/** Least-squares slope of `kb` over the last 80% of the samples, in KiB per minute. */
function slopeKbPerMinute(samples: Sample[], kb: (s: Sample) => number): number {
  const s = samples.slice(Math.floor(samples.length * 0.2));
  if (s.length < 3) return Number.NaN;
  const n = s.length;
  const mx = s.reduce((a, x) => a + x.t, 0) / n;
  const my = s.reduce((a, x) => a + kb(x), 0) / n;
  let num = 0;
  let den = 0;
  for (const x of s) {
    num += (x.t - mx) * (kb(x) - my);
    den += (x.t - mx) ** 2;
  }
  return (num / den) * 60;
}

const YOUNG_GENERATION = /^nodejs_heap_space_size_total_bytes\{[^}]*space="new"[^}]*\} (\d+)/m;

/** The committed size of V8's young generation, from the admin port's /metrics; -1 when not read. */
async function youngGenerationKb(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    const m = YOUNG_GENERATION.exec(await res.text());
    return m === null ? -1 : Number(m[1]) / 1024;
  } catch {
    return -1;
  }
}

async function waitListening(
  adminPort: number,
  sipPort: number,
  since: number,
  timeoutMs: number,
): Promise<number> {
  while (performance.now() - since < timeoutMs) {
    try {
      const r = await fetch(`http://${HOST}:${adminPort}/readyz`, { signal: AbortSignal.timeout(200) });
      if (r.status === 200) {
        (await tcpConnect(sipPort, HOST, 200)).destroy();
        return performance.now() - since;
      }
    } catch {
      // not yet
    }
    await sleep(10);
  }
  return -1;
}

interface SippSummary {
  exit: number | null;
  successful: number;
  failed: number;
  unexpected: number;
  retransmissions: number;
  timeouts: number;
}

function sippSummary(r: SippResult): SippSummary {
  return {
    exit: r.exitCode,
    successful: r.successful,
    failed: r.failed,
    unexpected: Number(r.stats['UnexpectedMessage(C)'] ?? 0),
    retransmissions: Number(r.stats['Retransmissions(C)'] ?? 0),
    timeouts: Number(r.stats['FailedMaxUDPRetrans(C)'] ?? 0) + Number(r.stats['FailedCallTimeout(C)'] ?? 0),
  };
}

async function main(): Promise<number> {
  const adminPort = await freePort();
  const ports: number[] = [];
  const uasPorts: number[] = [];
  for (let i = 0; i < FLOWS.length; i++) {
    ports.push(await freePort());
    uasPorts.push(await freePort());
  }
  const otlp = values.otlp ? new OtlpCounter() : null;
  if (otlp !== null) await otlp.start(HOST, await freePort());
  const configFile = await writeConfig(out, {
    node: 'soak',
    admin: `${HOST}:${adminPort}`,
    routes: FLOWS.map((f, i) => ({
      name: f.route,
      listen: [`udp://${HOST}:${ports[i]}`, `tcp://${HOST}:${ports[i]}`],
      upstream: `${f.upstream}://${HOST}:${uasPorts[i]}`,
      ...(f.routeExtra ?? {}),
    })),
  });
  const env: NodeJS.ProcessEnv =
    otlp === null
      ? {}
      : {
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://${HOST}:${otlp.port}`,
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://${HOST}:${otlp.port}/v1/traces`,
          OTEL_TRACES_EXPORTER: 'otlp',
        };
  const spawnChild = () => ChildSipspan.spawn(configFile, { keepLines: 0, env });
  let logLines = 0;
  const badLines: string[] = [];
  const byMethod = new Map<string, number>();
  const watchLines = (c: ChildSipspan) => {
    c.onLine = (line) => {
      if (line === '') return;
      logLines++;
      try {
        const v = JSON.parse(line) as Record<string, unknown>;
        for (const [k, val] of Object.entries(v)) {
          if (k.toLowerCase().includes('method') && typeof val === 'string')
            byMethod.set(val, (byMethod.get(val) ?? 0) + 1);
        }
      } catch {
        if (badLines.length < 20) badLines.push(line.slice(0, 300));
      }
    };
  };

  const t0 = performance.now();
  let child = await spawnChild();
  watchLines(child);
  const cold = await waitListening(adminPort, ports[0], t0, 15_000);
  if (cold < 0) throw new Error(`sipspan did not start: ${child.stderr}`);
  process.stderr.write(`soak: sipspan up in ${cold.toFixed(0)} ms; ${minutes} min; output in ${out}\n`);

  const uases = [];
  for (let i = 0; i < FLOWS.length; i++) {
    const f = FLOWS[i];
    uases.push(
      await startSippUas({
        port: uasPorts[i],
        transport: f.upstream === 'tcp' ? 't1' : 'u1',
        scenario: scenario(f.uas, f.route, f.padBytes, 1000),
      }),
    );
  }

  const samples: Sample[] = [];
  const sampleOnce = async () => {
    const st = await getJson(`http://${HOST}:${adminPort}/api/status`, 1000);
    const youngKb = await youngGenerationKb(`http://${HOST}:${adminPort}/metrics`);
    samples.push({
      t: (performance.now() - t0) / 1000,
      rssKb: child.rssKb(),
      youngKb,
      fds: child.fdCount(),
      transactions: Number(st?.transactions ?? -1),
      calls: Number(st?.calls ?? -1),
      tcp: Number(st?.tcp_connections ?? -1),
    });
  };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sampleOnce();
      const last = samples[samples.length - 1];
      if (samples.length % 12 === 0)
        process.stderr.write(
          `soak: ${last.t.toFixed(0)} s RSS ${(last.rssKb / 1024).toFixed(1)} MiB${last.youngKb >= 0 ? ` (young generation ${(last.youngKb / 1024).toFixed(0)})` : ''} fds ${last.fds} tx ${last.transactions} calls ${last.calls}\n`,
        );
      await sleep(5000);
    }
  })();

  const results = await Promise.all(
    FLOWS.map(async (f, i) => {
      const rate = f.rate * scale;
      return runSippUac({
        target: `${HOST}:${ports[i]}`,
        port: await freePort(),
        transport: f.transport,
        calls: Math.round(rate * seconds),
        rate,
        scenario: scenario(f.uac, f.route, f.padBytes, 1000),
        timeoutS: seconds + 120,
      });
    }),
  );
  // Let every transaction end and linger out (T4), then take the tables' view.
  await sleep(8000);
  await sampleOnce();
  const end = samples[samples.length - 1];

  const flows = FLOWS.map((f, i) => ({
    route: f.route,
    placed: Math.round(f.rate * scale * seconds),
    ...sippSummary(results[i]),
  }));
  const expectedTransactions = FLOWS.reduce((a, f, i) => a + results[i].successful * f.txPerCall, 0);
  const methodLines = [...byMethod.values()].reduce((a, b) => a + b, 0);
  const rss = samples.map((s) => s.rssKb);
  const young = samples.map((s) => s.youngKb).filter((kb) => kb >= 0);
  // Judged less the young generation when every sample has it; else on RSS alone, and said so.
  const youngRead = young.length === samples.length;
  const fds = samples.map((s) => s.fds).filter((n) => n >= 0);
  const report: Record<string, unknown> = {
    minutes,
    scale,
    coldStartMs: Math.round(cold),
    flows,
    lost: flows.reduce((a, f) => a + (f.placed - f.successful), 0),
    failed: flows.reduce((a, f) => a + f.failed, 0),
    unexpected: flows.reduce((a, f) => a + f.unexpected, 0),
    expectedTransactions,
    logLines,
    badLogLines: badLines,
    logLinesByMethod: Object.fromEntries(byMethod),
    methodLogLines: methodLines,
    spans: otlp === null ? null : otlp.spans,
    spansByName: otlp === null ? null : Object.fromEntries(otlp.byName),
    rssStartMiB: +(rss[0] / 1024).toFixed(1),
    rssEndMiB: +(rss[rss.length - 1] / 1024).toFixed(1),
    rssMaxMiB: +(Math.max(...rss) / 1024).toFixed(1),
    rssSlopeKiBPerMin: +slopeKbPerMinute(samples, (s) => s.rssKb).toFixed(1),
    youngGenerationMiB: youngRead
      ? { min: +(Math.min(...young) / 1024).toFixed(1), max: +(Math.max(...young) / 1024).toFixed(1) }
      : null,
    rssLessYoungSlopeKiBPerMin: youngRead
      ? +slopeKbPerMinute(samples, (s) => s.rssKb - s.youngKb).toFixed(1)
      : null,
    fdMin: Math.min(...fds),
    fdMax: Math.max(...fds),
    tablesAfterDrain: { transactions: end.transactions, calls: end.calls, tcp: end.tcp },
    childExited: child.exit,
    childStderr: child.stderr.slice(0, 2000),
  };

  if (!values['no-kill']) {
    // kill -9 under load: 20 calls/s on soak-udp for 60 s, SIGKILL at 20 s, restart at once.
    const f = FLOWS[0];
    const run = runSippUac({
      target: `${HOST}:${ports[0]}`,
      port: await freePort(),
      transport: f.transport,
      calls: 1200,
      rate: 20,
      scenario: scenario(f.uac, `${f.route}-kill`, f.padBytes, 1000),
      timeoutS: 180,
    });
    await sleep(20_000);
    child.proc.kill('SIGKILL');
    const killedAt = performance.now();
    await child.waitExit(3000);
    child = await spawnChild();
    watchLines(child);
    const listening = await waitListening(adminPort, ports[0], killedAt, 10_000);
    const r = await run;
    report.kill = { listeningMs: Math.round(listening), ...sippSummary(r), placed: 1200 };
  }

  sampling = false;
  await sampler;
  await child.stop(5000);
  for (const u of uases) await u.stop();
  await otlp?.close();
  report.samples = samples;
  writeFileSync(join(out, 'report.json'), JSON.stringify(report, null, 2));

  const problems: string[] = [];
  if (report.lost !== 0) problems.push(`${report.lost} calls lost`);
  if (report.failed !== 0) problems.push(`${report.failed} calls failed`);
  if (report.unexpected !== 0) problems.push(`${report.unexpected} unexpected messages`);
  if (badLines.length > 0) problems.push(`${badLines.length} stdout lines are not JSON`);
  if (report.childExited !== null) problems.push('sipspan exited during the soak');
  if ((report.tablesAfterDrain as { calls: number }).calls !== 0)
    problems.push('calls left in the table after the drain');
  const lessYoung = report.rssLessYoungSlopeKiBPerMin as number | null;
  const slope = lessYoung ?? (report.rssSlopeKiBPerMin as number);
  if (minutes >= 10 && slope > 256)
    problems.push(
      lessYoung === null
        ? `RSS grows ${slope} KiB/min (the young generation not read)`
        : `RSS less the young generation grows ${slope} KiB/min`,
    );
  if ((report.fdMax as number) - (report.fdMin as number) > 16) problems.push('open descriptors not flat');
  const kill = report.kill as { listeningMs: number; successful: number; failed: number } | undefined;
  if (kill !== undefined && (kill.listeningMs < 0 || kill.listeningMs > 2000))
    problems.push(`listening ${kill.listeningMs} ms after kill -9`);
  if (kill !== undefined && (kill.successful !== 1200 || kill.failed !== 0))
    problems.push(`kill phase: ${kill.successful}/1200 calls, ${kill.failed} failed`);

  const { samples: _s, ...summary } = report;
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(problems.length === 0 ? 'soak: PASS\n' : `soak: FAIL\n  ${problems.join('\n  ')}\n`);
  return problems.length === 0 ? 0 : 1;
}

process.exitCode = await main();
