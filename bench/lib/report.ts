/** The shape of a bench report, its markdown table, its target checks and its SVG plot. */
import { boxMedian, type PairedCpu, type PairedRatio, type PairSpec } from './paired-rounds.ts';

export interface RateRun {
  rate: number;
  asked: number;
  ok: number;
  failed: number;
  achievedRate: number;
  retransmissions: number;
  passed: boolean;
}

export interface CpuPoint {
  rate: number;
  calls: number;
  cpuSeconds: number;
  cpuPerCallUs: number | null;
  /** Busy time of the box's core not charged to the box (other processes, kernel), % of the run. */
  foreignLoadOnBoxCorePct: number | null;
  failed: number;
}

export interface Spread {
  p50Us: number | null;
  p99Us: number | null;
  samples: number;
}

export interface LatencyPoint {
  rate: number;
  ok: number;
  failed: number;
  /** From the loopback capture: every request and response, every hop, pooled. */
  outside:
    | (Spread & {
        requests: Spread;
        responses: Spread;
        perHop: Spread[];
        /** Over every hop, by message: "INVITE", "180 INVITE", "ACK", ... */
        byMessage: Record<string, Spread>;
        /** Over every hop: messages that woke the box (≥ 1 ms idle before them), and those inside a burst. */
        afterIdle: Spread;
        inBurst: Spread;
      })
    | null;
  /** sipspan's own sipspan_proxy_seconds over the same run (bucket-interpolated). */
  inside: Spread | null;
  capture: { packets: number; dropped: number; matched: number; unmatched: number } | null;
  /**
   * sipspan's runtime over the run: share of wall time in GC; event-loop delay as prom-client
   * reports it (the interval between its 10 ms timer ticks: an idle loop reads ~10,000 µs).
   */
  runtime: {
    gcPct: number | null;
    eventLoopDelayP50Us: number | null;
    eventLoopDelayP99Us: number | null;
  } | null;
}

export interface PathResult {
  id: string;
  name: string;
  transport: 'udp' | 'tcp';
  hops: number;
  status: 'measured' | 'skipped' | 'failed';
  note: string | null;
  maxRate: {
    rate: number;
    limitedBy: 'path' | 'load generator' | 'step cap' | null;
    steps: RateRun[];
  } | null;
  cpu: CpuPoint[];
  latency: LatencyPoint[];
  peakRssMb: number | null;
  telemetry: { otlpRequests: number; otlpBytes: number; logBytes: number | null; scrapes: number } | null;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
  load: string;
  pinning: string;
  loadavgStart: string;
  loadavgEnd: string;
}

export interface TargetCheck {
  target: string;
  actual: string;
  met: boolean | null;
}

export interface Report {
  date: string;
  startedAt: string;
  durationSeconds: number;
  short: boolean;
  machine: Machine;
  rates: { cpu: number[]; latency: number[]; stepSeconds: number };
  results: PathResult[];
  /** CPU per call in paired rounds (paired-rounds.ts): what the CPU ratio targets are judged on. */
  paired: PairedCpu | null;
  targets: TargetCheck[];
}

/** The CPU ratios of the targets, and what telemetry adds (shown, not judged). */
export const CPU_PAIRS: PairSpec[] = [
  {
    a: 'sipspan-on',
    b: 'kamailio',
    limit: 2,
    label: 'CPU per call, all telemetry on ≤ 2× stateless Kamailio',
  },
  {
    a: 'sipspan-off',
    b: 'relay',
    limit: 1.2,
    label: 'CPU per call, telemetry off ≤ 1.2× the node:dgram relay',
  },
  { a: 'sipspan-on', b: 'sipspan-off', limit: null, label: 'CPU per call, all telemetry on against off' },
  {
    a: 'sipspan-off-dgram',
    b: 'sipspan-off',
    limit: null,
    label: 'CPU per call, telemetry off, UDP through node:dgram against batched reads',
  },
];

const fmt = (v: number | null | undefined, digits = 0): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);

function byId(results: PathResult[], id: string): PathResult | undefined {
  return results.find((r) => r.id === id && r.status === 'measured');
}

function cpuAt(r: PathResult | undefined, rate: number): number | null {
  return r?.cpu.find((c) => c.rate === rate)?.cpuPerCallUs ?? null;
}

function latAt(r: PathResult | undefined, rate: number): LatencyPoint | undefined {
  return r?.latency.find((l) => l.rate === rate);
}

/** A CPU ratio judged on the median of its paired rounds at each rate. */
function pairedCheck(r: PairedRatio, limit: number, rounds: number): TargetCheck {
  const parts: string[] = [];
  let met: boolean | null = null;
  for (const p of r.perRate) {
    if (p.median === null) continue;
    parts.push(`${p.rate}/s: ${p.median.toFixed(2)}× (rounds ${p.rounds.map((q) => fmt(q, 2)).join(', ')})`);
    met = (met ?? true) && p.median <= limit;
  }
  return {
    target: r.label,
    actual: parts.length === 0 ? 'not measured' : `median of ${rounds} paired rounds: ${parts.join('; ')}`,
    met,
  };
}

/** The issue's targets, each with the measured figure it is judged on. */
export function checkTargets(
  results: PathResult[],
  cpuRates: number[],
  latencyRate: number,
  paired: PairedCpu | null = null,
): TargetCheck[] {
  const out: TargetCheck[] = [];
  const on = byId(results, 'sipspan-on');
  const off = byId(results, 'sipspan-off');
  const relay = byId(results, 'relay');
  const direct = byId(results, 'direct');
  for (const pair of CPU_PAIRS) {
    if (pair.limit === null) continue;
    const limit = pair.limit;
    const measured = paired?.ratios.find((r) => r.a === pair.a && r.b === pair.b);
    if (measured !== undefined) {
      out.push(pairedCheck(measured, limit, paired!.rounds));
      continue;
    }
    // Without paired rounds: the ratio of the path table's own runs.
    const parts: string[] = [];
    let met: boolean | null = null;
    for (const rate of cpuRates) {
      const x = cpuAt(byId(results, pair.a), rate);
      const y = cpuAt(byId(results, pair.b), rate);
      if (x === null || y === null || y === 0) continue;
      const q = x / y;
      parts.push(`${rate}/s: ${fmt(x)} / ${fmt(y)} µs = ${q.toFixed(2)}×`);
      met = (met ?? true) && q <= limit;
    }
    out.push({ target: pair.label, actual: parts.length === 0 ? 'not measured' : parts.join('; '), met });
  }
  const ceiling = direct?.maxRate?.rate ?? null;
  const onMax = on?.maxRate?.rate ?? null;
  out.push({
    target:
      "highest rate with 0 failed calls, all telemetry on = the load generator's ceiling (≥ 6000/s, UDP)",
    actual: `${fmt(onMax)} calls/s; direct (the load generator's ceiling) ${fmt(ceiling)} calls/s`,
    met: onMax === null || ceiling === null ? null : onMax >= Math.min(ceiling, 6000) && onMax >= 6000,
  });
  for (const [id, r] of [
    ['sipspan-on', on],
    ['sipspan-off', off],
  ] as const) {
    const l = latAt(r, latencyRate)?.outside ?? null;
    out.push({
      target: `added latency per hop at ${latencyRate}/s (${id}): p50 ≤ 150 µs, p99 ≤ 1 ms`,
      actual:
        l === null
          ? 'not measured'
          : `p50 ${fmt(l.p50Us)} µs, p99 ${fmt(l.p99Us)} µs (${l.samples} messages)`,
      met: l === null || l.p50Us === null || l.p99Us === null ? null : l.p50Us <= 150 && l.p99Us <= 1000,
    });
  }
  const p = latAt(on, latencyRate);
  const o = p?.outside?.p50Us ?? null;
  const i = p?.inside?.p50Us ?? null;
  // What the machine adds around any box (waking it, the kernel): the relay does a few µs of work.
  const floor = latAt(relay, latencyRate)?.outside?.p50Us ?? null;
  out.push({
    target: `sipspan_proxy_seconds p50 within 50 µs of the outside p50 at ${latencyRate}/s`,
    actual:
      o === null || i === null
        ? 'not measured'
        : `inside ${fmt(i)} µs, outside ${fmt(o)} µs: ${fmt(o - i)} µs apart` +
          (floor === null ? '' : ` (the node:dgram relay, outside: ${fmt(floor)} µs)`),
    met: o === null || i === null ? null : Math.abs(o - i) <= 50,
  });
  return out;
}

export function markdownTable(report: Report): string {
  const cpuRates = report.rates.cpu;
  const lr = report.rates.latency[0];
  const head = [
    `| path | highest rate, 0 failed (calls/s) | CPU per call at ${cpuRates.join(' / ')} calls/s (µs) | added per hop at ${lr}/s, p50 / p99 (µs) | sipspan's own histogram at ${lr}/s, p50 / p99 (µs) | peak RSS (MiB) |`,
    '|---|---|---|---|---|---|',
  ];
  const rows = report.results.map((r) => {
    if (r.status !== 'measured') return `| ${r.name} | ${r.status}: ${r.note ?? ''} | | | | |`;
    const max = r.maxRate === null ? '–' : `${r.maxRate.limitedBy === 'path' ? '' : '≥ '}${r.maxRate.rate}`;
    const limited =
      r.maxRate?.limitedBy === 'load generator'
        ? ' (load generator’s ceiling)'
        : r.maxRate?.limitedBy === 'step cap'
          ? ' (highest step)'
          : '';
    const cpu = cpuRates.map((rate) => fmt(cpuAt(r, rate))).join(' / ');
    const l = latAt(r, lr);
    const outside = r.hops === 0 ? 'n/a (no hop)' : `${fmt(l?.outside?.p50Us)} / ${fmt(l?.outside?.p99Us)}`;
    const inside = l?.inside ? `${fmt(l.inside.p50Us)} / ${fmt(l.inside.p99Us)}` : '–';
    return `| ${r.name} | ${max}${limited} | ${r.hops === 0 ? '(no box)' : cpu} | ${outside} | ${inside} | ${r.hops === 0 ? '–' : fmt(r.peakRssMb)} |`;
  });
  return [...head, ...rows].join('\n');
}

/** What became of runs with failed calls, as the table's caption says it. */
function failedRuns(p: PairedCpu): string {
  const retries = p.retries ?? 0;
  if (retries === 0) return 'Calls failed in a run leave it out.';
  const again = Object.values(p.runs)
    .flat()
    .filter((r) => (r.earlierFailed ?? 0) > 0).length;
  const times = retries === 1 ? 'once' : `up to ${retries} times`;
  return `A run with failed calls ran again ${times}, after those calls had ended (${again} run${again === 1 ? '' : 's'} here); one that failed every time leaves its round out.`;
}

/** The paired rounds: each box's CPU per call (median, then each round) and each ratio, by rate. */
export function pairedTable(report: Report): string {
  const p = report.paired;
  if (p === null) return '';
  const name = (id: string) => report.results.find((r) => r.id === id)?.name ?? id;
  const cell = (median: number | null, rounds: (number | null)[], digits: number, unit: string) =>
    median === null ? '–' : `${fmt(median, digits)}${unit} (${rounds.map((v) => fmt(v, digits)).join(', ')})`;
  const rows = Object.entries(p.runs).map(([id, runs]) => {
    const cells = p.rates.map((rate) =>
      cell(
        boxMedian(runs, rate),
        runs.filter((r) => r.rate === rate).map((r) => r.cpuPerCallUs),
        0,
        '',
      ),
    );
    return `| ${name(id)} | ${cells.join(' | ')} |`;
  });
  const ratios = p.ratios.map(
    (r) =>
      `| ${name(r.a)} ÷ ${name(r.b)}${r.limit === null ? '' : ` (target ≤ ${r.limit}×)`} | ${r.perRate.map((x) => cell(x.median, x.rounds, 2, '×')).join(' | ')} |`,
  );
  return [
    `CPU per call in paired rounds: ${p.rounds} round${p.rounds === 1 ? '' : 's'} of ${p.seconds} s at each rate, the boxes one after the other in a rotated order; median (each round). ${failedRuns(p)}`,
    '',
    `| box (µs per call), or ratio | ${p.rates.map((r) => `${r}/s`).join(' | ')} |`,
    `|---|${p.rates.map(() => '---').join('|')}|`,
    ...rows,
    ...ratios,
  ].join('\n');
}

export function targetsTable(checks: TargetCheck[], short = false): string {
  return [
    '| target | measured | met |',
    '|---|---|---|',
    ...checks.map(
      (c) =>
        `| ${c.target} | ${c.actual} | ${c.met === null ? (short ? 'not judged (short run)' : 'not measured') : c.met ? 'yes' : 'no'} |`,
    ),
  ].join('\n');
}

export function markdown(report: Report): string {
  const m = report.machine;
  return [
    `# sipspan bench ${report.date}${report.short ? ' (short)' : ''}`,
    '',
    `${m.cpus} × ${m.cpuModel}, Linux ${m.kernel}, Node ${m.node}, ${m.load}; ${m.pinning}.`,
    `Load average at start ${m.loadavgStart}, at end ${m.loadavgEnd}. ${report.durationSeconds} s.`,
    '',
    markdownTable(report),
    '',
    ...(report.paired === null ? [] : [pairedTable(report), '']),
    targetsTable(report.targets, report.short),
    '',
  ].join('\n');
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

/** Added latency per hop (outside, p50 solid and p99 dashed) against load, log scale in µs. */
export function svg(report: Report): string {
  const series = report.results.filter((r) =>
    r.latency.some((l) => l.outside !== null && l.outside.p50Us !== null),
  );
  const rates = report.rates.latency;
  const W = 760;
  const H = 420;
  const left = 60;
  const right = 280;
  const top = 40;
  const bottom = 50;
  const values = series.flatMap((s) =>
    s.latency.flatMap((l) => [l.outside?.p50Us ?? null, l.outside?.p99Us ?? null]).filter((v) => v !== null),
  ) as number[];
  const lo = 10;
  const hi = Math.max(1000, ...values.map((v) => v * 1.2));
  const decades = [10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000].filter((d) => d <= hi * 1.01);
  const maxRate = Math.max(...rates);
  const x = (rate: number) => left + ((W - left - right) * rate) / maxRate;
  const y = (us: number) =>
    H -
    bottom -
    ((H - top - bottom) * (Math.log10(Math.max(lo, us)) - Math.log10(lo))) /
      (Math.log10(hi) - Math.log10(lo));
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">\n`;
  out += `<title>sipspan bench ${report.date}: added latency per hop against load</title>\n`;
  out += `<rect width="${W}" height="${H}" fill="white"/>\n`;
  out += `<text x="${(W - right + left) / 2}" y="20" text-anchor="middle" font-size="13">Added latency per hop (loopback capture) against load — p50 solid, p99 dashed</text>\n`;
  out += `<line x1="${left}" y1="${H - bottom}" x2="${W - right}" y2="${H - bottom}" stroke="#333"/>\n`;
  out += `<line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="#333"/>\n`;
  for (const d of decades) {
    out += `<line x1="${left}" y1="${y(d)}" x2="${W - right}" y2="${y(d)}" stroke="#ddd"/>`;
    out += `<text x="${left - 6}" y="${y(d) + 4}" text-anchor="end">${d >= 1_000_000 ? `${d / 1_000_000} s` : d >= 1000 ? `${d / 1000} ms` : `${d} µs`}</text>\n`;
  }
  for (const r of rates) {
    out += `<line x1="${x(r)}" y1="${H - bottom}" x2="${x(r)}" y2="${H - bottom + 4}" stroke="#333"/>`;
    out += `<text x="${x(r)}" y="${H - bottom + 16}" text-anchor="middle">${r}</text>\n`;
  }
  out += `<text x="${(W - right + left) / 2}" y="${H - 12}" text-anchor="middle">calls/s</text>\n`;
  out += `<text x="${W - right + 15}" y="${H - bottom}" fill="#555">hollow point: the run had failed calls</text>\n`;
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    for (const q of ['p50Us', 'p99Us'] as const) {
      const points = s.latency.filter((l) => l.outside !== null && l.outside[q] !== null);
      if (points.length === 0) continue;
      const xy = points.map((l) => [x(l.rate).toFixed(1), y(l.outside![q]!).toFixed(1), l.failed] as const);
      const dash = q === 'p99Us' ? ' stroke-dasharray="5 4"' : '';
      out += `<polyline fill="none" stroke="${color}" stroke-width="${q === 'p50Us' ? 2 : 1.5}"${dash} points="${xy.map((p) => `${p[0]},${p[1]}`).join(' ')}"/>\n`;
      // A hollow point: the run had failed calls (the path was past its capacity).
      for (const [px, py, failed] of xy)
        out += `<circle cx="${px}" cy="${py}" r="3" ${failed > 0 ? `fill="white" stroke="${color}"` : `fill="${color}"`}/>`;
      out += '\n';
    }
    out += `<line x1="${W - right + 15}" y1="${top + 8 + 18 * i}" x2="${W - right + 35}" y2="${top + 8 + 18 * i}" stroke="${color}" stroke-width="2"/>`;
    out += `<text x="${W - right + 40}" y="${top + 12 + 18 * i}">${esc(s.name)}</text>\n`;
  });
  return `${out}</svg>\n`;
}
