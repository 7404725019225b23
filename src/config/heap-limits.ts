import process from 'node:process';
import { getHeapStatistics } from 'node:v8';

/**
 * Where the heap guard acts, in MiB of live heap.
 *
 * `auto` is a share of V8's heap limit: `--max-old-space-size`, which `bin/sipspan` sets to half a
 * container's memory limit, or else what Node chose from the host's memory. Fixed sizes fit one
 * host and not the next: 1 GiB is a guard that never acts in a 512 MiB container, where V8 allows
 * ~260 MiB and aborts the process first.
 */
const AUTO_SOFT_SHARE = 0.6;
const AUTO_HARD_SHARE = 0.8;

export type HeapLimitSetting = number | 'auto';

export interface HeapGuardLimits {
  softMb: number;
  hardMb: number;
  /** V8's heap limit of this process. */
  v8HeapLimitMb: number;
}

/**
 * The heap V8 lets this process use before it aborts, in MiB: `--max-old-space-size` when it is
 * given (V8's `heap_size_limit` then adds the young generation's reserve, up to 192 MiB more than
 * the old space that runs out), else `heap_size_limit` as Node set it from the memory it may use.
 */
export function v8HeapLimitMb(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): number {
  // A flag on the command line wins over NODE_OPTIONS, and the last of either wins within it.
  const flag = oldSpaceFlagMb(execArgv) ?? oldSpaceFlagMb(nodeOptions.split(/\s+/));
  return flag ?? getHeapStatistics().heap_size_limit / (1024 * 1024);
}

const OLD_SPACE_FLAG = /^--max[-_]old[-_]space[-_]size(?:=(.*))?$/;

function oldSpaceFlagMb(args: readonly string[]): number | null {
  let mb: number | null = null;
  for (let i = 0; i < args.length; i++) {
    const m = OLD_SPACE_FLAG.exec(args[i]);
    if (m === null) continue;
    const value = Number(m[1] ?? args[++i]);
    if (Number.isFinite(value) && value > 0) mb = value;
  }
  return mb;
}

export function resolveHeapGuardLimits(
  limits: { heap_soft_limit_mb: HeapLimitSetting; heap_hard_limit_mb: HeapLimitSetting },
  heapLimitMb: number,
): HeapGuardLimits {
  const share = (setting: HeapLimitSetting, auto: number) =>
    setting === 'auto' ? Math.floor(heapLimitMb * auto) : setting;
  return {
    softMb: share(limits.heap_soft_limit_mb, AUTO_SOFT_SHARE),
    hardMb: share(limits.heap_hard_limit_mb, AUTO_HARD_SHARE),
    v8HeapLimitMb: Math.floor(heapLimitMb),
  };
}

/** How a setting reads in a message: the number, or what `auto` came to. */
export function describeHeapLimit(setting: HeapLimitSetting, resolvedMb: number): string {
  return setting === 'auto' ? `auto (${resolvedMb} MiB here)` : `${setting}`;
}
