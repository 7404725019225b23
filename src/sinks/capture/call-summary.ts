import { performance } from 'node:perf_hooks';
import { toEpochMs } from '../../observe/records.ts';
import { isCredentialChallenge } from '../../wire/status.ts';
import type { StoredCall, StoredMessage } from './message-store.ts';

/**
 * One line of the calls list, read from the stored messages: who called whom,
 * how it ended for the caller, and per hop the setup time (initial request
 * received → final response sent back: the hop's SERVER time), the time the
 * upstream took (forwarded → final response: the CLIENT time), the upstream's
 * first answer (RTT) and the time between the first and last message.
 */
export type CallOutcomeLabel =
  | 'answered'
  | 'redirected'
  | 'failed_4xx'
  | 'failed_5xx'
  | 'failed_6xx'
  | 'cancelled'
  | 'timeout'
  | 'in_progress';

export interface HopSummary {
  index: number;
  name: string;
  status: number;
  setup_ms: number | null;
  client_ms: number | null;
  rtt_ms: number | null;
  duration_ms: number;
}

export interface CallSummary {
  trace_id: string;
  call_ids: string[];
  /** The method of the call's first request (INVITE, or OPTIONS, REGISTER, ... for a lone transaction). */
  method: string;
  /** Epoch milliseconds of the first and last message. */
  start_ms: number;
  end_ms: number;
  from_user: string | null;
  to_user: string | null;
  /** Final status the caller got, 0 while none. */
  status: number;
  outcome: CallOutcomeLabel;
  setup_ms: number | null;
  duration_ms: number;
  hops: HopSummary[];
  messages: number;
  retransmissions: number;
  bytes: number;
  truncated: number;
}

/** RFC 3261 §17.1.1.2 Timer B (64*T1): past it a transaction without a final response has timed out. */
const TIMER_B_MS = 32_000;

export function outcomeOf(status: number, method: string): CallOutcomeLabel {
  if (status >= 200 && status < 300) return 'answered';
  if (status >= 300 && status < 400) return 'redirected';
  if (status === 487 && method === 'INVITE') return 'cancelled';
  if (status >= 400 && status < 500) return 'failed_4xx';
  if (status >= 500 && status < 600) return 'failed_5xx';
  if (status >= 600) return 'failed_6xx';
  return 'in_progress';
}

export interface HopMessages {
  index: number;
  name: string;
  messages: StoredMessage[];
  /** The hop's copy of the call's first request, as received and as forwarded, and the final answer to it. */
  requestIn: StoredMessage | null;
  requestOut: StoredMessage | null;
  firstResponseIn: StoredMessage | null;
  finalIn: StoredMessage | null;
  finalOut: StoredMessage | null;
}

/** The messages of each hop in the order the call reached the hops (caller side first). */
export function groupByHop(call: StoredCall): HopMessages[] {
  call.analyze();
  const hops = new Map<number, HopMessages>();
  let method = '';
  for (const m of call.messages) {
    let h = hops.get(m.hop);
    if (h === undefined) {
      h = {
        index: m.hop,
        name: m.route,
        messages: [],
        requestIn: null,
        requestOut: null,
        firstResponseIn: null,
        finalIn: null,
        finalOut: null,
      };
      hops.set(m.hop, h);
    }
    h.messages.push(m);
    const info = m.info!;
    if (info.isRequest) {
      if (method === '' && info.method !== 'ACK') method = info.method;
      if (info.method !== method || (method === 'INVITE' && info.toTag !== null)) continue;
      // RFC 3261 §22.2: a request answered 401/407 comes again with credentials (its own CSeq); the
      // call's setup and outcome are the retry's (RFC 6076 §4.2: a challenge is not a failure).
      const current = h.requestIn ?? h.requestOut;
      if (
        current !== null &&
        info.cseq !== current.info!.cseq &&
        isCredentialChallenge(statusOf(h.finalOut ?? h.finalIn))
      ) {
        h.requestIn = null;
        h.requestOut = null;
        h.firstResponseIn = null;
        h.finalIn = null;
        h.finalOut = null;
      }
      if (m.direction === 'in' && h.requestIn === null) h.requestIn = m;
      if (m.direction === 'out' && h.requestOut === null) h.requestOut = m;
      continue;
    }
    const req = h.requestIn ?? h.requestOut;
    if (req === null || info.cseqMethod !== method || info.cseq !== req.info!.cseq) continue;
    if (m.direction === 'in') {
      if (h.firstResponseIn === null) h.firstResponseIn = m;
      if (info.status >= 200 && h.finalIn === null) h.finalIn = m;
    } else if (info.status >= 200 && h.finalOut === null) h.finalOut = m;
  }
  return [...hops.values()];
}

const since = (a: StoredMessage | null, b: StoredMessage | null): number | null =>
  a === null || b === null ? null : round3(b.at - a.at);

function statusOf(m: StoredMessage | null): number {
  return m === null ? 0 : m.info!.status;
}

export function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

export function wallMs(at: number): number {
  return round3(toEpochMs(at));
}

const cache = new WeakMap<StoredCall, { version: number; summary: CallSummary }>();

export function summarizeCall(call: StoredCall, now = performance.now()): CallSummary {
  const cached = cache.get(call);
  const inProgress = cached !== undefined && cached.summary.outcome === 'in_progress';
  if (cached !== undefined && cached.version === call.version && !inProgress) return cached.summary;
  const hops = groupByHop(call);
  const first = hops[0];
  const initial = first?.requestIn ?? first?.requestOut ?? null;
  const info = initial?.info ?? call.messages[0]?.info ?? null;
  const method = info?.isRequest ? info.method : (info?.cseqMethod ?? '');
  const final = first?.finalOut ?? first?.finalIn ?? null;
  const status = statusOf(final);
  let outcome = outcomeOf(status, method);
  if (outcome === 'in_progress' && initial !== null && now - initial.at > TIMER_B_MS) outcome = 'timeout';
  let retransmissions = 0;
  for (const m of call.messages) if (m.retransmission) retransmissions++;
  const summary: CallSummary = {
    trace_id: call.traceId,
    call_ids: call.callIds.slice(),
    method,
    start_ms: wallMs(call.firstAt),
    end_ms: wallMs(call.lastAt),
    from_user: info?.fromUser ?? null,
    to_user: info?.toUser ?? null,
    status,
    outcome,
    setup_ms: since(first?.requestIn ?? null, first?.finalOut ?? null),
    duration_ms: round3(call.lastAt - call.firstAt),
    hops: hops.map((h) => ({
      index: h.index,
      name: h.name,
      status: statusOf(h.finalOut ?? h.finalIn),
      setup_ms: since(h.requestIn, h.finalOut),
      client_ms: since(h.requestOut, h.finalIn),
      rtt_ms: since(h.requestOut, h.firstResponseIn),
      duration_ms: round3(h.messages[h.messages.length - 1].at - h.messages[0].at),
    })),
    messages: call.messages.length,
    retransmissions,
    bytes: call.bytes,
    truncated: call.truncated,
  };
  cache.set(call, { version: call.version, summary });
  return summary;
}

export interface CallFilter {
  service: string | null;
  outcome: string | null;
  minSetupMs: number | null;
  /** Case-insensitive substring of a Call-ID, the trace id, or the caller or callee user. */
  q: string | null;
  limit: number;
}

export function matchesFilter(s: CallSummary, f: CallFilter): boolean {
  if (f.service !== null && !s.hops.some((h) => h.name === f.service)) return false;
  if (f.outcome !== null) {
    // `failed` matches every failed_Nxx.
    if (f.outcome === 'failed' ? !s.outcome.startsWith('failed_') : s.outcome !== f.outcome) return false;
  }
  if (f.minSetupMs !== null && (s.setup_ms === null || s.setup_ms < f.minSetupMs)) return false;
  if (f.q !== null) {
    const q = f.q.toLowerCase();
    const hit =
      s.trace_id.includes(q) ||
      s.call_ids.some((c) => c.toLowerCase().includes(q)) ||
      s.from_user?.toLowerCase().includes(q) === true ||
      s.to_user?.toLowerCase().includes(q) === true;
    if (!hit) return false;
  }
  return true;
}
