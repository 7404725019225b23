/**
 * The load side of a bench run: a UAS that answers, and a UAC that places a
 * bounded number of calls at a fixed rate through a path. SIPp when installed
 * (installing Debian's sip-tester if it is missing and apt-get works), the
 * built-in load generator and UAS stand-in otherwise.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastSippStats } from '../../test/support/sipp.ts';
import {
  freePort,
  hasCommand,
  isTcpListening,
  isUdpBound,
  type Started,
  start,
  stop,
  waitFor,
} from './procs.ts';

export type Transport = 'udp' | 'tcp';

export interface UacResult {
  /** Calls the run was asked to place. */
  asked: number;
  ok: number;
  /** Failed calls, counting calls that never completed (a run cut by its wall-clock bound). */
  failed: number;
  /** Calls per second actually placed (SIPp's CallRate(C), or placed / placement time). */
  achievedRate: number;
  /** UAC retransmissions (SIPp's Retransmissions(C); 0 for the load generator). */
  retransmissions: number;
  wallSeconds: number;
}

export interface LoadDriver {
  readonly name: string;
  readonly version: string;
  startUas(port: number, transport: Transport, core: string): Promise<Started>;
  /**
   * `socketPerCall`: each call from a socket of its own (SIPp `-t un`), so a port
   * shared by several processes (reusePort) spreads the calls; the kernel hashes
   * the source address and port. Only SIPp does this.
   */
  runUac(
    target: number,
    rate: number,
    calls: number,
    transport: Transport,
    core: string,
    socketPerCall?: boolean,
  ): Promise<UacResult>;
}

/** SIPp's 64 KB default socket buffers drop the bursts a proxy's event loop hands back (measured). */
const SIPP_BUFFERS = ['-buff_size', String(4 * 1024 * 1024)];

function ensureSipp(log: (s: string) => void): boolean {
  if (hasCommand('sipp')) return true;
  if (!hasCommand('apt-get')) return false;
  log('SIPp missing: installing Debian sip-tester ...');
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  spawnSync(
    'sh',
    [
      '-c',
      `${sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo}apt-get install -y -qq --no-install-recommends sip-tester`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 },
  );
  return hasCommand('sipp');
}

export function sippVersion(): string {
  const r = spawnSync('sipp', ['-v'], { encoding: 'latin1' });
  return /SIPp v[^\s-]+/.exec(`${r.stdout}${r.stderr}`)?.[0] ?? 'SIPp (unknown version)';
}

export class SippDriver implements LoadDriver {
  readonly name = 'sipp';
  readonly version = sippVersion();

  async startUas(port: number, transport: Transport, core: string): Promise<Started> {
    // No trace flags: the UAS writes no file, so it needs no directory of its own.
    const uas = start(
      'sipp',
      [
        '-sn',
        'uas',
        '-i',
        '127.0.0.1',
        '-p',
        String(port),
        '-t',
        transport === 'udp' ? 'u1' : 't1',
        '-nostdin',
        ...SIPP_BUFFERS,
      ],
      { core, cwd: tmpdir() },
    );
    const up = await waitFor(
      () => uas.exited() || (transport === 'udp' ? isUdpBound(port) : isTcpListening(port)),
      5000,
    );
    if (!up || uas.exited()) throw new Error(`SIPp UAS did not start: ${uas.output().slice(-500)}`);
    return uas;
  }

  async runUac(
    target: number,
    rate: number,
    calls: number,
    transport: Transport,
    core: string,
    socketPerCall = false,
  ): Promise<UacResult> {
    const dir = mkdtempSync(join(tmpdir(), 'sipspan-bench-uac-'));
    const seconds = calls / rate;
    const mode = transport === 'udp' ? (socketPerCall ? 'un' : 'u1') : socketPerCall ? 'tn' : 't1';
    const args = [
      '-sn',
      'uac',
      `127.0.0.1:${target}`,
      '-i',
      '127.0.0.1',
      '-p',
      String(await freePort()),
      '-t',
      mode,
      // One socket per call needs more open at once than SIPp's default budget allows here.
      ...(socketPerCall ? ['-max_socket', '5000'] : []),
      '-r',
      String(rate),
      '-m',
      String(calls),
      '-l',
      String(Math.max(1000, rate * 10)),
      '-nostdin',
      ...SIPP_BUFFERS,
      '-trace_stat',
      '-stf',
      join(dir, 'stat.csv'),
      '-fd',
      '1',
      '-timeout',
      `${Math.ceil(seconds + 15)}s`,
      // A call still waiting for a message 4 s on is failed: an overloaded step ends in
      // seconds instead of waiting out every call's retransmissions (RFC 3261 Timer B, 32 s).
      '-recv_timeout',
      '4000',
    ];
    const began = performance.now();
    const uac = start('sipp', args, { core, cwd: dir });
    // SIPp's own -timeout does not always fire when it is saturated: a wall-clock bound as well.
    const killer = setTimeout(() => void stop(uac, 'SIGKILL', 100), (seconds + 25) * 1000);
    await uac.done;
    clearTimeout(killer);
    const wallSeconds = (performance.now() - began) / 1000;
    const stats = readLastStats(join(dir, 'stat.csv'));
    rmSync(dir, { recursive: true, force: true });
    const ok = Number(stats['SuccessfulCall(C)'] ?? 0);
    const failed = Number(stats['FailedCall(C)'] ?? 0);
    return {
      asked: calls,
      ok,
      failed: Math.max(failed, calls - ok),
      achievedRate: Number(stats['CallRate(C)'] ?? 0),
      retransmissions: Number(stats['Retransmissions(C)'] ?? 0),
      wallSeconds,
    };
  }
}

function readLastStats(file: string): Record<string, string> {
  try {
    return lastSippStats(readFileSync(file, 'latin1'));
  } catch {
    return {};
  }
}

const root = join(import.meta.dirname, '..', '..');
const nodeBin = process.execPath;

/** The built-in load generator (src/standins/load-generator.ts) and UAS stand-in, in child processes. */
export class LoadGeneratorDriver implements LoadDriver {
  readonly name = 'loadgen';
  readonly version = 'sipspan built-in load generator';

  async startUas(port: number, transport: Transport, core: string): Promise<Started> {
    const uas = start(
      nodeBin,
      [
        join(root, 'src', 'cli', 'main.ts'),
        'standin',
        'uas',
        '--listen',
        `udp://127.0.0.1:${port}`,
        '--ring-ms',
        '0',
        '--answer-ms',
        '0',
      ],
      { core },
    );
    const up = await waitFor(
      () => uas.exited() || (transport === 'udp' ? isUdpBound(port) : isTcpListening(port)),
      10_000,
    );
    if (!up || uas.exited()) throw new Error(`UAS stand-in did not start: ${uas.output().slice(-500)}`);
    return uas;
  }

  async runUac(
    target: number,
    rate: number,
    calls: number,
    transport: Transport,
    core: string,
  ): Promise<UacResult> {
    const seconds = calls / rate;
    const began = performance.now();
    const uac = start(
      nodeBin,
      [
        join(import.meta.dirname, 'loadgen-child.ts'),
        '--target',
        `${transport}://127.0.0.1:${target}`,
        '--rate',
        String(rate),
        '--calls',
        String(calls),
      ],
      { core, keepStdout: true },
    );
    const killer = setTimeout(() => void stop(uac, 'SIGKILL', 100), (seconds + 45) * 1000);
    await uac.done;
    clearTimeout(killer);
    const wallSeconds = (performance.now() - began) / 1000;
    let r = { ok: 0, failed: 0, placeSeconds: 0 };
    try {
      r = JSON.parse(uac.stdout()) as typeof r;
    } catch {
      // killed or crashed: every call counts as failed below
    }
    return {
      asked: calls,
      ok: r.ok,
      failed: Math.max(r.failed, calls - r.ok),
      achievedRate: r.placeSeconds > 0 ? calls / r.placeSeconds : 0,
      retransmissions: 0,
      wallSeconds,
    };
  }
}

/** SIPp when it is (or can be made) available; the built-in load generator otherwise. */
export function chooseDriver(log: (s: string) => void, forceLoadgen: boolean): LoadDriver {
  if (!forceLoadgen && ensureSipp(log)) return new SippDriver();
  log(
    forceLoadgen
      ? 'load: the built-in load generator (--loadgen)'
      : 'SIPp is not available: using the built-in load generator (its ceiling is lower than SIPp’s)',
  );
  return new LoadGeneratorDriver();
}
