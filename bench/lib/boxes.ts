/**
 * The boxes a bench path puts between the UAC and the UAS, each started
 * pinned to the middle core and ready (its port bound) before load starts.
 */
import { statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Transport } from './load-driver.ts';
import { freePort, hasCommand, isUdpBound, type Started, start, stop, waitFor } from './procs.ts';

const root = join(import.meta.dirname, '..', '..');

export type BoxKind =
  | 'relay'
  | 'sipspan-off'
  | 'sipspan-off-dgram'
  | 'sipspan-on'
  | 'sipspan-series-on'
  | 'kamailio-stateless'
  | 'kamailio-stateful';

export interface Box {
  proc: Started;
  /** The port the UAC sends to. */
  port: number;
  /** Listen port of each hop in order, then the UAS port: the legs of the capture (capture.ts). */
  legPorts: number[];
  /** Routes' /metrics ports (sipspan with telemetry on). */
  metricsPorts: number[];
  /** sipspan's admin listener (process metrics: event-loop delay, GC), null for other boxes. */
  adminPort: number | null;
  /** The transaction log file (sipspan), for its size at the end. */
  logFile: string | null;
  hops: number;
}

export interface BoxContext {
  core: string;
  dir: string;
  otlpPort: number;
}

export function kamailioInstalled(): boolean {
  return hasCommand('kamailio');
}

export async function startBox(
  kind: BoxKind,
  uasPort: number,
  transport: Transport,
  ctx: BoxContext,
  relayHoldUs = 0,
): Promise<Box> {
  switch (kind) {
    case 'relay':
      return startRelay(uasPort, ctx, relayHoldUs);
    case 'sipspan-off':
      return startSipspan(uasPort, transport, ctx, false, 1);
    case 'sipspan-off-dgram':
      return startSipspan(uasPort, transport, ctx, false, 1, 'dgram');
    case 'sipspan-on':
      return startSipspan(uasPort, transport, ctx, true, 1);
    case 'sipspan-series-on':
      return startSipspan(uasPort, transport, ctx, true, 2);
    case 'kamailio-stateless':
      return startKamailio(uasPort, ctx, 'stateless.cfg');
    case 'kamailio-stateful':
      return startKamailio(uasPort, ctx, 'stateful.cfg');
  }
}

async function startRelay(uasPort: number, ctx: BoxContext, holdUs: number): Promise<Box> {
  const port = await freePort();
  const args = [
    join(root, 'bench', 'relay', 'dgram-relay.ts'),
    '--listen',
    String(port),
    '--upstream',
    String(uasPort),
  ];
  if (holdUs > 0) args.push('--hold-us', String(holdUs));
  const proc = start(process.execPath, args, { core: ctx.core });
  await ready(proc, () => isUdpBound(port), 'dgram relay');
  return { proc, port, legPorts: [port, uasPort], metricsPorts: [], adminPort: null, logFile: null, hops: 1 };
}

/**
 * sipspan as operators run it: `bin/sipspan run --config FILE`. Telemetry on:
 * spans 100% sampled (always_on) exported over OTLP/HTTP protobuf to the local
 * receiver, each route's /metrics listener (scraped every second by the
 * harness), one JSON line per transaction to a file. Telemetry off: no
 * exporter and the sampler always_off (no span is built), no /metrics
 * listener, transaction lines off (warn level, to the file). `udpIo`: how
 * UDP is read (the default, batched, unless the path says dgram).
 */
async function startSipspan(
  uasPort: number,
  transport: Transport,
  ctx: BoxContext,
  telemetry: boolean,
  routes: number,
  udpIo: 'batched' | 'dgram' = 'batched',
): Promise<Box> {
  const admin = await freePort();
  const ports: number[] = [];
  const metricsPorts: number[] = [];
  for (let i = 0; i < routes; i++) {
    ports.push(await freePort());
    if (telemetry) metricsPorts.push(await freePort());
  }
  const logFile = join(ctx.dir, `sipspan-${telemetry ? 'on' : 'off'}-${routes}-${Date.now()}.log`);
  const names = ['sip-gateway', 'sip-signaling'];
  const lines = [
    'node: bench',
    `admin: 127.0.0.1:${admin}`,
    `udp_io: ${udpIo}`,
    telemetry
      ? `logs: { destination: ${logFile} }`
      : `logs: { level: warn, transactions: false, destination: ${logFile} }`,
    'routes:',
  ];
  for (let i = 0; i < routes; i++) {
    // Every hop on the path's transport: a route sends UDP only from a UDP listener of its own.
    const upstream = `${transport}://127.0.0.1:${i === routes - 1 ? uasPort : ports[i + 1]}`;
    lines.push(
      `  - name: ${names[names.length - routes + i]}`,
      `    listen: [${transport}://127.0.0.1:${ports[i]}]`,
      `    upstream: ${upstream}`,
    );
    if (telemetry) lines.push(`    metrics: 127.0.0.1:${metricsPorts[i]}`);
  }
  const config = join(ctx.dir, `sipspan-${Date.now()}.yaml`);
  writeFileSync(config, `${lines.join('\n')}\n`);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_')) env[k] = v;
  if (telemetry) {
    env.OTEL_TRACES_EXPORTER = 'otlp';
    env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/protobuf';
    env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${ctx.otlpPort}`;
    env.OTEL_TRACES_SAMPLER = 'always_on';
  } else {
    env.OTEL_TRACES_EXPORTER = 'none';
    env.OTEL_TRACES_SAMPLER = 'always_off';
  }
  const proc = start(join(root, 'bin', 'sipspan'), ['run', '--config', config], { core: ctx.core, env });
  await ready(proc, () => adminReady(admin), 'sipspan');
  return {
    proc,
    port: ports[0],
    legPorts: [...ports, uasPort],
    metricsPorts,
    adminPort: admin,
    logFile,
    hops: routes,
  };
}

async function startKamailio(uasPort: number, ctx: BoxContext, file: string): Promise<Box> {
  const port = await freePort();
  const cfg = join(ctx.dir, `kamailio-${port}.cfg`);
  const text = await readFile(join(root, 'bench', 'kamailio', file), 'utf8');
  writeFileSync(
    cfg,
    text.replaceAll('LISTEN_PORT', String(port)).replaceAll('UPSTREAM_PORT', String(uasPort)),
  );
  // -DD: stay in the foreground (its own process group, stopped whole); -E: log to stderr;
  // -n 1: one UDP worker; -Y: a runtime dir of ours; -m/-M: shared/private memory in MiB
  // (tm keeps every transaction for its wait timer, 5 s: 4000 calls/s needs ~1 GiB);
  // -x/-X tlsf: Debian's build defaults to q_malloc with memory debugging, which tripled the
  // stateless forward's CPU per call here (240 against 72 µs at 2000 calls/s, measured).
  const shmMb = file === 'stateful.cfg' ? '1024' : '64';
  const proc = start(
    'kamailio',
    ['-f', cfg, '-DD', '-E', '-m', shmMb, '-M', '8', '-x', 'tlsf', '-X', 'tlsf', '-n', '1', '-Y', ctx.dir],
    { core: ctx.core },
  );
  await ready(proc, () => isUdpBound(port), 'kamailio');
  return { proc, port, legPorts: [port, uasPort], metricsPorts: [], adminPort: null, logFile: null, hops: 1 };
}

/** Wait until a started box answers `check` (20 s at most), then let it settle; throws with its output. */
export async function ready(
  proc: Started,
  check: () => boolean | Promise<boolean>,
  what: string,
): Promise<void> {
  const ok = await waitFor(async () => proc.exited() || (await check()), 20_000);
  if (!ok || proc.exited()) {
    await stop(proc, 'SIGKILL', 100);
    throw new Error(`${what} did not start: ${proc.output().slice(-800)}`);
  }
  // Let the process settle (JIT of start-up code, sinks' first timers) before measuring.
  await new Promise((r) => setTimeout(r, 300));
}

/** sipspan's admin listener says it is ready (routes bound, upstreams resolved). */
export async function adminReady(adminPort: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

export function fileBytes(path: string | null): number | null {
  if (path === null) return null;
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}
