/**
 * A stand-in for the span store's `GET /api/traces/<trace_id>`, used by the
 * browser test only when the tree has no tracing sink: per transaction a
 * SERVER span (request received → final response sent back) and its CLIENT
 * child (forwarded → final response from upstream), with OpenTelemetry-style
 * field names, so the page's span path (not its fallback) is what is tested.
 */
import type { HttpListener } from '../../src/admin/http-listener.ts';
import { sendJson } from '../../src/admin/http-listener.ts';
import { channels } from '../../src/observe/channels.ts';
import type { TransactionRecord } from '../../src/observe/records.ts';

interface StandinSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: 'SERVER' | 'CLIENT';
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, string | number>;
  events: { name: string; timeUnixNano: string }[];
  status: { code: 'UNSET' | 'ERROR' };
}

const nanos = (at: number) => String(BigInt(Math.round((performance.timeOrigin + at) * 1000)) * 1000n);

export class SpanStoreStandin {
  private readonly traces = new Map<string, StandinSpan[]>();
  private readonly onEnd = (m: unknown) => this.ended(m as TransactionRecord);

  constructor(admin: HttpListener) {
    channels.transactionEnd.subscribe(this.onEnd);
    admin.handle('/api/traces/', (_req, res, url) => {
      const id = url.pathname.slice('/api/traces/'.length);
      const spans = this.traces.get(id);
      if (spans === undefined) sendJson(res, 404, { error: 'unknown trace' });
      else sendJson(res, 200, { traceId: id, spans });
    });
  }

  private ended(tx: TransactionRecord): void {
    if (tx.method === 'ACK' || tx.traceId === '') return;
    const end = tx.finalResponseOut !== -1 ? tx.finalResponseOut : tx.endedAt;
    const attributes = {
      'sip.method': tx.method,
      'sipspan.route': tx.route.name,
      'sip.status_code': tx.status,
    };
    const list = this.traces.get(tx.traceId) ?? [];
    list.push({
      traceId: tx.traceId,
      spanId: tx.serverSpanId,
      parentSpanId: tx.parentSpanId,
      name: `${tx.method} ${tx.route.name}`,
      kind: 'SERVER',
      startTimeUnixNano: nanos(tx.requestIn),
      endTimeUnixNano: nanos(end),
      attributes,
      events: [],
      status: { code: tx.status >= 500 ? 'ERROR' : 'UNSET' },
    });
    if (tx.requestOut !== -1) {
      list.push({
        traceId: tx.traceId,
        spanId: tx.clientSpanId,
        parentSpanId: tx.serverSpanId,
        name: `${tx.method} ${tx.upstream}`,
        kind: 'CLIENT',
        startTimeUnixNano: nanos(tx.requestOut),
        endTimeUnixNano: nanos(tx.finalResponseIn !== -1 ? tx.finalResponseIn : end),
        attributes,
        events: tx.marks.map((m) => ({
          name: m.status === -1 ? 'CANCEL' : String(m.status),
          timeUnixNano: nanos(m.at),
        })),
        status: { code: tx.status >= 500 ? 'ERROR' : 'UNSET' },
      });
    }
    this.traces.set(tx.traceId, list);
  }

  close(): void {
    channels.transactionEnd.unsubscribe(this.onEnd);
  }
}
