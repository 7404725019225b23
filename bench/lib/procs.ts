/**
 * The processes a bench run starts: each in its own process group (so a
 * middle box that forks, like Kamailio, is stopped whole), pinned to a core
 * with taskset, tracked in one registry and killed by id when the run ends,
 * fails or is interrupted.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const running = new Set<ChildProcess>();

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

const HAS_TASKSET = hasCommand('taskset');

/** Pin this process (all of its threads) and so every child it starts later. */
export function pinSelf(core: string): boolean {
  if (!HAS_TASKSET) return false;
  return (
    spawnSync('taskset', ['-a', '-p', '-c', core, String(process.pid)], { stdio: 'ignore' }).status === 0
  );
}

/** Move every thread of every process of a tree to a core; false where taskset is missing or refused. */
export function pinTree(pid: number, core: string): boolean {
  if (!HAS_TASKSET) return false;
  let ok = true;
  for (const p of processTree(pid)) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', core, String(p)], { stdio: 'ignore' });
    ok &&= r.status === 0;
  }
  return ok;
}

export interface Started {
  proc: ChildProcess;
  pid: number;
  /** The last 16 KiB the process wrote on stderr (and stdout unless kept). */
  output(): string;
  exited(): boolean;
  /** Resolves with the exit code (null when killed by a signal). */
  done: Promise<number | null>;
}

export interface StartOptions {
  /** Core list for taskset -c; null leaves the inherited affinity. */
  core: string | null;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep stdout for the caller instead of folding it into output(). */
  keepStdout?: boolean;
}

/** Start a process pinned to a core; taskset execs it, so the child's pid is the process itself. */
export function start(cmd: string, args: string[], opts: StartOptions): Started & { stdout(): string } {
  const argv = opts.core !== null && HAS_TASKSET ? ['-c', opts.core, cmd, ...args] : args;
  const proc = spawn(opts.core !== null && HAS_TASKSET ? 'taskset' : cmd, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(proc);
  let out = '';
  let stdout = '';
  const keep = (d: Buffer) => {
    out += d.toString('latin1');
    if (out.length > 32_768) out = out.slice(-16_384);
  };
  proc.stderr?.on('data', keep);
  if (opts.keepStdout === true) {
    proc.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
    });
  } else proc.stdout?.on('data', keep);
  const done = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => {
      running.delete(proc);
      resolve(code);
    });
    proc.once('error', (err) => {
      running.delete(proc);
      out += String(err);
      resolve(-1);
    });
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    output: () => out,
    stdout: () => stdout,
    exited: () => proc.exitCode !== null || proc.signalCode !== null,
    done,
  };
}

function signalGroup(p: ChildProcess, signal: NodeJS.Signals): void {
  if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  try {
    process.kill(-p.pid, signal);
  } catch {
    try {
      p.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Ask a process group to stop (signal), then SIGKILL it after graceMs. */
export async function stop(
  s: Started | null,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 2000,
): Promise<void> {
  if (s === null || s.exited()) return;
  signalGroup(s.proc, signal);
  const timer = setTimeout(() => signalGroup(s.proc, 'SIGKILL'), graceMs);
  await Promise.race([s.done, sleep(graceMs + 1000)]);
  clearTimeout(timer);
}

/** Kill every process this run started and that is still running (synchronous: usable on exit). */
export function killAll(): void {
  for (const p of running) signalGroup(p, 'SIGKILL');
  running.clear();
}

/**
 * Run a bench script's main: its exit code is the process's, and every process it started dies with
 * it, at its end, on an error (reported as `name: stack`) or on SIGINT/SIGTERM.
 */
export function runMain(name: string, main: () => Promise<number>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  main().then(
    (code) => {
      killAll();
      process.exit(code);
    },
    (err) => {
      process.stderr.write(`${name}: ${(err as Error).stack ?? err}\n`);
      killAll();
      process.exit(1);
    },
  );
}

/** Every process of a tree rooted at pid (the box forks workers: Kamailio). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // exited while listing
    }
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    for (const c of children.get(p) ?? []) todo.push(c);
  }
  return out;
}

const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || '100');

/** utime + stime of one process in clock ticks, every thread included (/proc/<pid>/stat fields 14, 15). */
export function cpuTicks(pid: number): number {
  const t = userSystemTicks(pid);
  return t[0] + t[1];
}

function userSystemTicks(pid: number): [number, number] {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return [Number(parts[11]), Number(parts[12])];
}

/** CPU time of a process tree in seconds: in all, and the part spent in the kernel (stime). */
export function cpuTimes(pid: number): { total: number; system: number } {
  let user = 0;
  let system = 0;
  for (const p of processTree(pid)) {
    try {
      const t = userSystemTicks(p);
      user += t[0];
      system += t[1];
    } catch {
      // exited
    }
  }
  return { total: (user + system) / CLOCK_TICKS_PER_S, system: system / CLOCK_TICKS_PER_S };
}

/** utime + stime of a process tree in seconds. */
export function cpuSeconds(pid: number): number {
  return cpuTimes(pid).total;
}

/** Busy ticks of one core from /proc/stat (user nice system irq softirq steal), in seconds. */
export function coreBusySeconds(core: string): number {
  const line = readFileSync('/proc/stat', 'latin1')
    .split('\n')
    .find((l) => l.startsWith(`cpu${core} `));
  if (line === undefined) return Number.NaN;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

/**
 * Wait (up to waitMs) until a core is idle but for the box: another process busy
 * on it would be counted in the box's latency and crowd its CPU. Returns false
 * when it never got quiet (the run goes on; the report shows the load).
 */
export async function waitForQuietCore(
  core: string,
  boxPid: number | null,
  waitMs: number,
  log: (s: string) => void,
): Promise<boolean> {
  if (waitMs === 0) return true;
  const until = performance.now() + waitMs;
  let said = false;
  // /proc/stat's per-core ticks can land a moment after a busy run ends (tickless
  // accounting), while a process's own times are exact: settle first, then look.
  await sleep(500);
  for (;;) {
    const b0 = coreBusySeconds(core);
    const c0 = boxPid === null ? 0 : cpuSeconds(boxPid);
    await sleep(1000);
    const foreign = coreBusySeconds(core) - b0 - (boxPid === null ? 0 : cpuSeconds(boxPid) - c0);
    if (foreign < 0.1) return true;
    if (performance.now() > until) {
      log(`  core ${core} is still ${Math.round(foreign * 100)}% busy with other work: measuring anyway`);
      return false;
    }
    if (!said)
      log(`  core ${core} is ${Math.round(foreign * 100)}% busy with other work: waiting for it to be quiet`);
    said = true;
  }
}

/**
 * Peak resident set (VmHWM) in MiB of the largest process of a tree. Not the
 * sum: Kamailio's processes map one shared-memory pool, and each one's VmHWM
 * counts the pages of it that it touched.
 */
export function peakRssMb(pid: number): number | null {
  let kb = -1;
  for (const p of processTree(pid)) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'latin1'));
      if (m !== null) kb = Math.max(kb, Number(m[1]));
    } catch {
      // exited
    }
  }
  return kb < 0 ? null : kb / 1024;
}

/** Never hands a port out twice: two picks in one run must not collide (admin and a route's /metrics). */
export { freePort } from '../../test/support/sipp.ts';

/** Wait until something answers on a UDP or TCP port, or the process exits; false on timeout. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

/** Is a UDP port bound on 127.0.0.1 (listed in /proc/net/udp)? */
export function isUdpBound(port: number): boolean {
  return isListed('/proc/net/udp', port, null);
}

/** Is a TCP port listening on 127.0.0.1 (/proc/net/tcp state 0A)? */
export function isTcpListening(port: number): boolean {
  return isListed('/proc/net/tcp', port, '0A');
}

function isListed(file: string, port: number, state: string | null): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  try {
    for (const line of readFileSync(file, 'latin1').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4) continue;
      if (cols[1].endsWith(hex) && (state === null || cols[3] === state)) return true;
    }
  } catch {
    return false;
  }
  return false;
}
