/**
 * The samples of `perf script -F comm,pid,tid,time,event,ip,sym,dso` (a `perf record -g` of one
 * process whose Node.js ran with --perf-basic-prof), sorted into the kinds of work a box does: its
 * JavaScript, the Node.js and V8 runtime under it, the kernel's send and receive paths, threads other
 * than the event loop's.
 *
 * One sample is a header line (`comm pid/tid time: event:`) and its stack, innermost frame first
 * (`\t<ip> <symbol>+<offset> (<dso>)`), then an empty line.
 */
import { basename } from 'node:path';

export type SampleKind =
  | 'javascript'
  | 'node and V8 runtime'
  | 'V8 garbage collection'
  | 'libc'
  | 'native module'
  | 'program (not Node.js)'
  | 'kernel: send'
  | 'kernel: TCP send'
  | 'kernel: receive'
  | 'kernel: epoll'
  | 'kernel: other'
  | 'other threads';

export const SAMPLE_KINDS: readonly SampleKind[] = [
  'javascript',
  'node and V8 runtime',
  'V8 garbage collection',
  'libc',
  'native module',
  'program (not Node.js)',
  'kernel: send',
  'kernel: TCP send',
  'kernel: receive',
  'kernel: epoll',
  'kernel: other',
  'other threads',
];

export interface Frame {
  symbol: string;
  dso: string;
}

export interface Sample {
  thread: string;
  pid: number;
  tid: number;
  /** Seconds, perf's clock. */
  time: number;
  /** Innermost first. */
  frames: Frame[];
}

export interface Breakdown {
  samples: number;
  /** Samples per kind. */
  kinds: Record<SampleKind, number>;
  /**
   * The event loop's samples in user space (JavaScript, the runtime, libc, native modules) by the
   * innermost frame of the box's own JavaScript: the sipspan layer (the folder under src/: wire,
   * observe, proxy, transport, sinks, ...), `other` for another script (the relay); `node:` when
   * only Node's own JavaScript is on the stack; `(no JavaScript)` when none is (the event loop
   * itself, GC).
   */
  layers: Record<string, number>;
  /** Main-thread samples by that frame's function (`layer:function`). */
  functions: Record<string, number>;
  /**
   * The `(no JavaScript)` samples by their innermost symbol (`symbol (library)`): the event loop's
   * own work, the native module, V8's work on the main thread outside any script.
   */
  outsideJavaScript: Record<string, number>;
}

const HEADER = /^(\S.*?)\s+(\d+)\/(\d+)\s+(\d+\.\d+):/;
const FRAME = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^)]*)\)\s*$/;
/** --perf-basic-prof names: `JS:*'name file:///…/src/layer/file.ts:line:col`, `JS:^name node:buffer:…`. */
const JS_FRAME = /^JS:\S?'?(\S*)\s+(\S+)/;

export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  let current: Sample | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      current = null;
      continue;
    }
    if (current === null) {
      const m = HEADER.exec(line);
      if (m === null) continue;
      current = { thread: m[1], pid: Number(m[2]), tid: Number(m[3]), time: Number(m[4]), frames: [] };
      out.push(current);
      continue;
    }
    const f = FRAME.exec(line);
    if (f !== null) current.frames.push({ symbol: f[1].replace(/\+0x[0-9a-f]+$/, ''), dso: f[2] });
  }
  return out;
}

function isJavaScript(f: Frame): boolean {
  return f.symbol.startsWith('JS:') || /\/perf-\d+\.map$/.test(f.dso);
}

/** A frame of the Node.js binary or of JavaScript it runs: the sample is a Node.js process's. */
function isNodeJs(f: Frame): boolean {
  return isJavaScript(f) || basename(f.dso) === 'node';
}

function isKernel(f: Frame): boolean {
  return f.dso === '[kernel.kallsyms]' || f.dso.startsWith('[kernel');
}

/** A frame of one of V8's collectors at work. */
const GC_FRAME =
  /v8::internal::(Heap::(CollectGarbage|PerformGarbageCollection)|ScavengerCollector::|Scavenger::|MarkCompactCollector::|MinorMarkSweepCollector::)/;

/** A sample with no frame of Node.js or JavaScript on its stack is taken as another program's. */
export function kindOf(s: Sample): SampleKind {
  return kindAmong(s, null);
}

/** `nodePids`: the processes that are Node.js, from all their samples (a stack perf could not unwind says nothing). */
function kindAmong(s: Sample, nodePids: ReadonlySet<number> | null): SampleKind {
  if (s.tid !== s.pid) return 'other threads';
  const top = s.frames[0];
  if (top === undefined) return 'node and V8 runtime';
  if (isKernel(top)) {
    const calls = (re: RegExp) => s.frames.some((f) => re.test(f.symbol));
    // A stream's sends apart: with all telemetry on they are the OTLP exports' and the scrapes'.
    if (calls(/tcp_sendmsg|tcp_write_xmit/)) return 'kernel: TCP send';
    if (calls(/sendmsg|sendmmsg|sendto/)) return 'kernel: send';
    if (calls(/recvmmsg|recvmsg|recvfrom/)) return 'kernel: receive';
    if (calls(/epoll/)) return 'kernel: epoll';
    return 'kernel: other';
  }
  // The main thread's share of V8's collections (scavenges, mark-compact's pauses), wherever the
  // allocation that set it off was: what allocation costs beyond the bytes written.
  if (s.frames.some((f) => GC_FRAME.test(f.symbol))) return 'V8 garbage collection';
  if (isJavaScript(top)) return 'javascript';
  if (top.dso.endsWith('.node')) return 'native module';
  if (/\/libc[.-]/.test(top.dso)) return 'libc';
  // A box that is not Node.js (Kamailio, the reference): its binary and its modules.
  if (!(nodePids === null ? s.frames.some(isNodeJs) : nodePids.has(s.pid))) return 'program (not Node.js)';
  return 'node and V8 runtime';
}

/** `wire:scanMessage` for a frame of src/wire/scan.ts, `node:toString` for Node's own. */
export function placeOf(f: Frame): { layer: string; fn: string } | null {
  const m = JS_FRAME.exec(f.symbol);
  if (m === null) return null;
  const fn = m[1] === '' ? '(anonymous)' : m[1];
  const where = m[2];
  const src = /\/src\/([\w-]+)\//.exec(where);
  if (src !== null) return { layer: src[1], fn };
  if (where.startsWith('node:')) return { layer: 'node:', fn };
  return { layer: 'other', fn };
}

export function breakdown(samples: readonly Sample[]): Breakdown {
  const kinds = Object.fromEntries(SAMPLE_KINDS.map((k) => [k, 0])) as Record<SampleKind, number>;
  const layers: Record<string, number> = {};
  const functions: Record<string, number> = {};
  const outsideJavaScript: Record<string, number> = {};
  const nodePids = new Set<number>();
  for (const s of samples) if (s.frames.some(isNodeJs)) nodePids.add(s.pid);
  for (const s of samples) {
    const kind = kindAmong(s, nodePids);
    kinds[kind]++;
    // User space only: the kernel's share of a send is its own kind, whether or not perf could
    // unwind the stack to the code that asked for it (through libc and a native module it cannot).
    if (kind === 'other threads' || kind.startsWith('kernel')) continue;
    // The innermost frame of the box's own code; Node's JavaScript (Buffer#toString, timers) counts
    // for the code that called it, and only a stack of Node's alone is placed as Node's.
    let place: { layer: string; fn: string } | null = null;
    let node: { layer: string; fn: string } | null = null;
    for (const f of s.frames) {
      const p = placeOf(f);
      if (p === null) continue;
      if (p.layer !== 'node:') {
        place = p;
        break;
      }
      node ??= p;
    }
    place ??= node;
    const layer = place === null ? '(no JavaScript)' : place.layer;
    layers[layer] = (layers[layer] ?? 0) + 1;
    if (place !== null) {
      const key = `${place.layer}:${place.fn}`;
      functions[key] = (functions[key] ?? 0) + 1;
    } else {
      const top = s.frames[0];
      const key = top === undefined ? '(no stack)' : `${top.symbol} (${basename(top.dso)})`;
      outsideJavaScript[key] = (outsideJavaScript[key] ?? 0) + 1;
    }
  }
  return { samples: samples.length, kinds, layers, functions, outsideJavaScript };
}
