import { Buffer, isUtf8 } from 'node:buffer';
import { type CallSummary, round3, summarizeCall, wallMs } from './call-summary.ts';
import { diffMessages, type TextRange } from './message-diff.ts';
import type { StoredCall, StoredMessage } from './message-store.ts';

/**
 * One call as the call view draws it: the columns of its ladder, every stored
 * message with its raw text and the ranges sipspan edited, and its summary.
 *
 * Columns come from addresses and the routes:
 *
 *   caller │ sipspan·A │ service A │ sipspan·B │ service B (callee)
 *
 * the first 'in' source of the first hop is the caller; each hop the call
 * passed is a sipspan column (every 'in' goes into it, every 'out' leaves it);
 * each hop's upstream address is a service column; the last one is the callee.
 * An address no route names is the downstream peer of the hop that saw it
 * (the caller for the first hop, the previous hop's service otherwise), unless
 * the other version of its message went downstream, in which case it came
 * from upstream (a service answering from another port).
 */
export interface RouteTopology {
  index: number;
  name: string;
  /** `address:port` of the upstream as resolved (or as configured while unresolved). */
  upstream: string;
  /** `address:port` of each listener. */
  listen: string[];
}

export interface LadderColumn {
  id: string;
  kind: 'caller' | 'sipspan' | 'service';
  label: string;
  hop: number;
  /** The last service column: where the call ends. */
  callee: boolean;
  addresses: string[];
}

export interface EditRange {
  kind: 'added' | 'removed';
  /** UTF-16 indices into `raw`. */
  start: number;
  end: number;
  /** Byte offsets into the message. */
  byte_start: number;
  byte_end: number;
}

export interface DetailMessage {
  seq: number;
  hop: number;
  route: string;
  direction: 'in' | 'out';
  transport: string;
  source: string;
  destination: string;
  from: string;
  to: string;
  t_ms: number;
  offset_ms: number;
  label: string;
  method: string;
  status: number;
  cseq: number;
  cseq_method: string;
  call_id: string;
  is_request: boolean;
  retransmission: boolean;
  /** seq of the other version of this message at the same hop. */
  pair: number | null;
  size: number;
  encoding: 'utf8' | 'latin1';
  raw: string;
  /** For 'out': what sipspan added; for 'in': what sipspan removed before forwarding. */
  edits: EditRange[];
}

export interface CallDetail {
  summary: CallSummary;
  t0_ms: number;
  columns: LadderColumn[];
  messages: DetailMessage[];
}

/** `::ffff:127.0.0.1:5060` and `[::1]:5060` as `127.0.0.1:5060` and `::1:5060`: one spelling to compare addresses by. */
export function normalizeAddress(a: string): string {
  let s = a.startsWith('[') ? a.replace(/^\[([^\]]*)\]/, '$1') : a;
  if (s.toLowerCase().startsWith('::ffff:') && s.indexOf('.') !== -1) s = s.slice(7);
  return s;
}

function decode(bytes: Buffer): { raw: string; encoding: 'utf8' | 'latin1' } {
  return isUtf8(bytes)
    ? { raw: bytes.toString('utf8'), encoding: 'utf8' }
    : { raw: bytes.toString('latin1'), encoding: 'latin1' };
}

function toEdits(kind: 'added' | 'removed', ranges: TextRange[], raw: string, utf8: boolean): EditRange[] {
  return ranges.map((r) => ({
    kind,
    start: r.start,
    end: r.end,
    byte_start: utf8 ? Buffer.byteLength(raw.slice(0, r.start)) : r.start,
    byte_end: utf8 ? Buffer.byteLength(raw.slice(0, r.end)) : r.end,
  }));
}

export function buildColumns(
  call: StoredCall,
  topology: readonly RouteTopology[],
): { columns: LadderColumn[]; ends: Map<StoredMessage, [string, string]> } {
  const order: number[] = [];
  for (const m of call.messages) if (!order.includes(m.hop)) order.push(m.hop);
  const routeOf = (hop: number) => topology.find((r) => r.index === hop);
  const known = new Map<string, string>();
  const columns: LadderColumn[] = [];
  const firstIn = call.messages.find((m) => m.direction === 'in' && m.hop === order[0]);
  const caller: LadderColumn = {
    id: 'caller',
    kind: 'caller',
    label: 'caller',
    hop: -1,
    callee: false,
    addresses: [],
  };
  columns.push(caller);
  for (const hop of order) {
    const r = routeOf(hop);
    const name = r?.name ?? call.messages.find((m) => m.hop === hop)!.route;
    columns.push({
      id: `sipspan:${hop}`,
      kind: 'sipspan',
      label: `sipspan ${name}`,
      hop,
      callee: false,
      addresses: [...new Set((r?.listen ?? []).map(normalizeAddress))],
    });
    const upstream = r === undefined ? '' : normalizeAddress(r.upstream);
    columns.push({
      id: `service:${hop}`,
      kind: 'service',
      label: name,
      hop,
      callee: false,
      addresses: upstream === '' ? [] : [upstream],
    });
    if (upstream !== '' && !known.has(upstream)) known.set(upstream, `service:${hop}`);
  }
  for (const c of columns) if (c.kind === 'sipspan') for (const a of c.addresses) known.set(a, c.id);
  columns[columns.length - 1].callee = true;
  if (firstIn !== undefined) {
    const a = normalizeAddress(firstIn.source);
    if (!known.has(a)) known.set(a, 'caller');
  }
  const downstreamOf = (hop: number) => {
    const p = order.indexOf(hop);
    return p <= 0 ? 'caller' : `service:${order[p - 1]}`;
  };
  const isDownstreamOf = (col: string, hop: number) => {
    if (col === 'caller') return true;
    const k = col.indexOf(':');
    return order.indexOf(Number(col.slice(k + 1))) < order.indexOf(hop);
  };
  const ends = new Map<StoredMessage, [string, string]>();
  const resolve = (m: StoredMessage, address: string, other: string | null): string => {
    const a = normalizeAddress(address);
    const hit = known.get(a);
    if (hit !== undefined) return hit;
    let col = downstreamOf(m.hop);
    if (other !== null) {
      const o = known.get(normalizeAddress(other));
      if (o !== undefined && isDownstreamOf(o, m.hop)) col = `service:${m.hop}`;
    }
    known.set(a, col);
    return col;
  };
  for (const m of call.messages) {
    const self = `sipspan:${m.hop}`;
    if (m.direction === 'in') {
      ends.set(m, [resolve(m, m.source, m.pair === null ? null : m.pair.destination), self]);
    } else {
      ends.set(m, [self, resolve(m, m.destination, m.pair === null ? null : m.pair.source)]);
    }
  }
  for (const [a, id] of known) {
    const c = columns.find((x) => x.id === id);
    if (c !== undefined && !c.addresses.includes(a)) c.addresses.push(a);
  }
  return { columns, ends };
}

export function buildCallDetail(call: StoredCall, topology: readonly RouteTopology[]): CallDetail {
  const summary = summarizeCall(call);
  const { columns, ends } = buildColumns(call, topology);
  const t0 = call.messages.length === 0 ? call.firstAt : call.messages[0].at;
  const decoded = new Map<StoredMessage, { raw: string; encoding: 'utf8' | 'latin1' }>();
  const text = (m: StoredMessage) => {
    let d = decoded.get(m);
    if (d === undefined) {
      d = decode(m.bytes);
      decoded.set(m, d);
    }
    return d;
  };
  const edits = new Map<StoredMessage, EditRange[]>();
  for (const m of call.messages) {
    if (m.direction !== 'out' || m.pair === null) continue;
    const a = text(m.pair);
    const b = text(m);
    const diff = diffMessages(a.raw, b.raw);
    edits.set(m, toEdits('added', diff.added, b.raw, b.encoding === 'utf8'));
    edits.set(m.pair, toEdits('removed', diff.removed, a.raw, a.encoding === 'utf8'));
  }
  const messages = call.messages.map((m): DetailMessage => {
    const info = m.info!;
    const d = text(m);
    const [from, to] = ends.get(m)!;
    return {
      seq: m.seq,
      hop: m.hop,
      route: m.route,
      direction: m.direction,
      transport: m.transport,
      source: m.source,
      destination: m.destination,
      from,
      to,
      t_ms: wallMs(m.at),
      offset_ms: round3(m.at - t0),
      label: info.label,
      method: info.method,
      status: info.status,
      cseq: info.cseq,
      cseq_method: info.cseqMethod,
      call_id: m.callId,
      is_request: info.isRequest,
      retransmission: m.retransmission,
      pair: m.pair === null ? null : m.pair.seq,
      size: m.bytes.length,
      encoding: d.encoding,
      raw: d.raw,
      edits: edits.get(m) ?? [],
    };
  });
  return { summary, t0_ms: wallMs(t0), columns, messages };
}
