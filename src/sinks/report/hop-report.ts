import { channels } from '../../observe/channels.ts';
import type { CallRecord, TransactionRecord } from '../../observe/records.ts';
import type { Sink } from '../sink.ts';

/** Bounded samples per hop: enough for stable p99 in a demo or a bench run. */
const MAX_SAMPLES = 200_000;
const MAX_CALLS = 100_000;

interface HopStats {
  name: string;
  index: number;
  outcomes: Record<string, number>;
  attempts: number;
  answered: number;
  redirected: number;
  /** ms samples */
  rtt: number[];
  inviteSetup: number[];
  ownTime: number[];
  transactions: number;
  timeouts: number;
}

/** One call as the report sees it: its trace and, per hop, INVITE times. */
export interface ReportedCall {
  traceId: string;
  callId: string;
  /** Per route index: SERVER duration (received → final sent back) and CLIENT duration (forwarded → final) of the INVITE, ms. */
  server: number[];
  client: number[];
  status: number;
}

export interface HopSummary {
  name: string;
  calls: number;
  outcomes: Record<string, number>;
  sessionEstablishmentRatio: number | null;
  rttMs: { p50: number; p95: number; p99: number; count: number };
  setupMs: { p50: number; p95: number; p99: number };
  sipspanMs: { p50: number; p99: number };
  transactions: number;
  timeouts: number;
}

export interface Report {
  hops: HopSummary[];
  /** Time spent in each service behind a hop (its CLIENT time minus the next hop's SERVER time), ms p50/p95. */
  services: { name: string; p50: number; p95: number }[];
  slowest: { traceId: string; callId: string; setupMs: number; perHopMs: number[] }[];
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function push(a: number[], v: number): void {
  if (a.length < MAX_SAMPLES && Number.isFinite(v) && v >= 0) a.push(v);
}

/**
 * Collects per-hop figures from the observe channels for `sipspan demo` and
 * `sipspan bench`: outcomes, upstream RTT, setup and in-proxy times, and per
 * trace the INVITE timing at each hop, so the report can say where a call's
 * time went ("gateway or signaling?").
 */
export class HopReport implements Sink {
  readonly name = 'report';
  private readonly hops: HopStats[];
  private readonly calls = new Map<string, ReportedCall>();
  private readonly onEnd = (m: unknown) => this.transactionEnded(m as TransactionRecord);
  private readonly onOutcome = (m: unknown) => this.callOutcome(m as CallRecord);

  constructor(routeNames: readonly string[]) {
    this.hops = routeNames.map((name, index) => ({
      name,
      index,
      outcomes: {},
      attempts: 0,
      answered: 0,
      redirected: 0,
      rtt: [],
      inviteSetup: [],
      ownTime: [],
      transactions: 0,
      timeouts: 0,
    }));
    channels.transactionEnd.subscribe(this.onEnd);
    channels.callOutcome.subscribe(this.onOutcome);
  }

  private transactionEnded(tx: TransactionRecord): void {
    const hop = this.hops[tx.route.index];
    if (hop === undefined || tx.method === 'ACK') return;
    hop.transactions++;
    if (tx.outcome === 'timeout') hop.timeouts++;
    if (tx.upstreamRttMs >= 0) push(hop.rtt, tx.upstreamRttMs);
    if (tx.requestProxyMs > 0) push(hop.ownTime, tx.requestProxyMs + tx.responseProxyMs);
    // Setup from a final the service gave: one sipspan answered itself (503, nothing sent) has none.
    if (
      tx.method === 'INVITE' &&
      tx.isInitialInvite &&
      tx.finalResponseOut !== -1 &&
      tx.finalResponseIn !== -1 &&
      tx.requestOut !== -1
    ) {
      const server = tx.finalResponseOut - tx.requestIn;
      const client = tx.finalResponseIn - tx.requestOut;
      push(hop.inviteSetup, client);
      let call = this.calls.get(tx.traceId);
      if (call === undefined) {
        if (this.calls.size >= MAX_CALLS) return;
        call = { traceId: tx.traceId, callId: tx.callId, server: [], client: [], status: tx.status };
        this.calls.set(tx.traceId, call);
      }
      call.server[tx.route.index] = server;
      call.client[tx.route.index] = client;
      if (tx.route.index === 0) {
        call.callId = tx.callId;
        call.status = tx.status;
      }
    }
  }

  private callOutcome(call: CallRecord): void {
    const hop = this.hops[call.route.index];
    if (hop === undefined || call.outcome === null) return;
    hop.attempts++;
    hop.outcomes[call.outcome] = (hop.outcomes[call.outcome] ?? 0) + 1;
    if (call.outcome === 'answered') hop.answered++;
    if (call.outcome === 'redirected') hop.redirected++;
  }

  summary(slowest = 5): Report {
    const hops = this.hops.map((h): HopSummary => {
      const rtt = [...h.rtt].sort((a, b) => a - b);
      const setup = [...h.inviteSetup].sort((a, b) => a - b);
      const own = [...h.ownTime].sort((a, b) => a - b);
      const denominator = h.attempts - h.redirected;
      return {
        name: h.name,
        calls: h.attempts,
        outcomes: { ...h.outcomes },
        // RFC 6076 §4.4: SER = INVITEs answered 2xx / (INVITEs − those answered 3xx).
        sessionEstablishmentRatio: denominator > 0 ? h.answered / denominator : null,
        rttMs: {
          p50: quantile(rtt, 0.5),
          p95: quantile(rtt, 0.95),
          p99: quantile(rtt, 0.99),
          count: rtt.length,
        },
        setupMs: { p50: quantile(setup, 0.5), p95: quantile(setup, 0.95), p99: quantile(setup, 0.99) },
        sipspanMs: { p50: quantile(own, 0.5), p99: quantile(own, 0.99) },
        transactions: h.transactions,
        timeouts: h.timeouts,
      };
    });
    const services = this.hops.map((h, i) => {
      const samples: number[] = [];
      for (const c of this.calls.values()) {
        const mine = c.client[i];
        if (mine === undefined) continue;
        const nextServer = c.server[i + 1];
        push(samples, nextServer === undefined ? mine : mine - nextServer);
      }
      samples.sort((a, b) => a - b);
      return { name: h.name, p50: quantile(samples, 0.5), p95: quantile(samples, 0.95) };
    });
    const all = [...this.calls.values()].filter((c) => c.server[0] !== undefined);
    all.sort((a, b) => b.server[0] - a.server[0]);
    return {
      hops,
      services,
      slowest: all.slice(0, slowest).map((c) => ({
        traceId: c.traceId,
        callId: c.callId,
        setupMs: c.server[0],
        perHopMs: this.hops.map((_, i) => c.client[i] ?? Number.NaN),
      })),
    };
  }

  async flush(): Promise<void> {}

  async shutdown(): Promise<void> {
    channels.transactionEnd.unsubscribe(this.onEnd);
    channels.callOutcome.unsubscribe(this.onOutcome);
  }
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '-');
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');

/** The report as text for a terminal. */
/** `traceLink`: where a trace can be opened (the demo keeps serving), or null to print its id only. */
export function renderReport(r: Report, traceLink: ((traceId: string) => string) | null): string {
  const lines: string[] = [];
  lines.push('per hop');
  lines.push(
    `  ${'hop'.padEnd(16)}${'calls'.padStart(7)}${'SER'.padStart(8)}${'RTT p50'.padStart(10)}${'p95'.padStart(9)}${'p99'.padStart(9)}${'setup p50'.padStart(11)}${'sipspan p50'.padStart(13)}  outcomes`,
  );
  for (const h of r.hops) {
    const ser =
      h.sessionEstablishmentRatio === null ? '-' : `${(h.sessionEstablishmentRatio * 100).toFixed(1)}%`;
    const outcomes = Object.entries(h.outcomes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `  ${h.name.padEnd(16)}${String(h.calls).padStart(7)}${ser.padStart(8)}${`${f1(h.rttMs.p50)}ms`.padStart(10)}${`${f1(h.rttMs.p95)}ms`.padStart(9)}${`${f1(h.rttMs.p99)}ms`.padStart(9)}${`${f1(h.setupMs.p50)}ms`.padStart(11)}${`${f2(h.sipspanMs.p50)}ms`.padStart(13)}  ${outcomes || '-'}`,
    );
  }
  lines.push('');
  lines.push('time in each service (INVITE → final answer, excluding the hops after it)');
  for (const s of r.services)
    lines.push(`  ${`behind ${s.name}`.padEnd(24)} p50 ${f1(s.p50)} ms   p95 ${f1(s.p95)} ms`);
  if (r.slowest.length > 0) {
    lines.push('');
    lines.push('slowest calls (setup at the first hop; per hop: time behind it)');
    for (const c of r.slowest) {
      lines.push(
        `  ${f1(c.setupMs).padStart(7)} ms  [${c.perHopMs.map((v) => f1(v)).join(' | ')}] ms  trace ${c.traceId}`,
      );
      if (traceLink !== null) lines.push(`           ${traceLink(c.traceId)}`);
    }
  }
  return lines.join('\n');
}
