import type { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { Sipspan } from '../../app.ts';
import type { Config } from '../../config/schema.ts';
import { channels } from '../../observe/channels.ts';
import type {
  CallRecord,
  LimitEvent,
  ProcessStateEvent,
  RejectedEvent,
  TransactionRecord,
} from '../../observe/records.ts';
import type { Sink } from '../sink.ts';
import { BoundedWriter } from './bounded-writer.ts';
import { redactUser, safeValue } from './safe-value.ts';

export interface LogOptions {
  /** Overrides config.logs.destination (tests pass a stream). */
  destination?: Writable | string;
}

const SECRET_KEY = /password|secret|token|key/i;
const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** The effective configuration for the start-up line, with anything secret-looking redacted. */
function redactConfig(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactConfig);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactConfig(v);
    return out;
  }
  return value;
}

/** The process logger: pino JSON with an ISO time, the level as a string, `node` on every line. */
export function createLogger(config: Config, destination: { write(s: string): boolean | undefined }): Logger {
  return pino(
    {
      level: config.logs.level,
      base: { node: config.node },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination as pino.DestinationStream,
  );
}

/**
 * Per-reason rate limit for drop/reject lines: at most `perSecond` lines per
 * reason each second; what is held back is reported as `suppressed` on the next
 * line of that reason. Bounded by the closed set of reasons (and a hard cap).
 */
class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();
  private readonly perSecond: number;

  constructor(perSecond: number) {
    this.perSecond = perSecond;
  }

  /** -1 when the line must be suppressed, else how many were suppressed before it. */
  admit(reason: string, now: number): number {
    let w = this.windows.get(reason);
    if (w === undefined) {
      if (this.windows.size >= 256) this.windows.clear();
      w = { start: now, count: 0, suppressed: 0 };
      this.windows.set(reason, w);
    }
    if (now - w.start >= 1000) {
      w.start = now;
      w.count = 0;
    }
    if (w.count >= this.perSecond) {
      w.suppressed++;
      return -1;
    }
    w.count++;
    const s = w.suppressed;
    w.suppressed = 0;
    return s;
  }
}

/**
 * One JSON line per completed transaction at each hop, plus drops, limits and
 * lifecycle; written through a bounded writer that drops (and counts) rather
 * than ever block forwarding.
 */
export function startLogSink(
  app: Sipspan,
  opts: LogOptions = {},
): Sink & { logger: Logger; writer: BoundedWriter } {
  const cfg = app.config.logs;
  const target = opts.destination ?? cfg.destination;
  const writer = new BoundedWriter(target as Writable | string, cfg.max_buffer_bytes);
  const logger = createLogger(app.config, writer);
  const byRoute = app.routes.map((r) => logger.child({ service: r.info.name }));
  const max = cfg.max_value_bytes;
  const drops = new RateLimiter(cfg.drops_per_second);
  const limits = new RateLimiter(cfg.drops_per_second);
  const transactionsOn = cfg.transactions && logger.isLevelEnabled('info');

  const onEnd = (m: unknown) => {
    const tx = m as TransactionRecord;
    const call: CallRecord | null = tx.call;
    if (call !== null && !call.logSampled) return;
    const log = byRoute[tx.route.index];
    if (log === undefined) return;
    const end = tx.finalResponseOut !== -1 ? tx.finalResponseOut : tx.endedAt;
    const line: Record<string, unknown> = {
      trace_id: tx.traceId || null,
      span_id: tx.serverSpanId || null,
      call_id: safeValue(tx.callId, max),
      method: safeValue(tx.method, 32),
      cseq: tx.cseq,
      status: tx.status === 0 ? null : tx.status,
      status_class: tx.statusClass,
      outcome: tx.outcome,
      transport: tx.transport,
      downstream: tx.downstream,
      upstream: tx.upstream || null,
      upstream_rtt_ms: tx.upstreamRttMs >= 0 ? round(tx.upstreamRttMs) : null,
      duration_ms: end >= tx.requestIn ? round(end - tx.requestIn) : null,
      proxy_ms: round(tx.requestProxyMs + tx.responseProxyMs),
      retransmissions: tx.retransmissions,
    };
    if (tx.generatedStatus !== 0) line.generated = true;
    if (tx.stitchedBy !== null) line.stitched_by = tx.stitchedBy;
    if (tx.isInitialInvite && call !== null) {
      line.from_user =
        call.fromUser === null ? null : cfg.redact_users ? '***' : safeValue(call.fromUser, max);
      line.to_user = call.toUser === null ? null : cfg.redact_users ? '***' : safeValue(call.toUser, max);
    }
    if (tx.outcome === 'timeout' || tx.outcome === 'send-failed') log.warn(line, 'transaction');
    else log.info(line, 'transaction');
  };

  const onRejected = (m: unknown) => {
    const e = m as RejectedEvent;
    const suppressed = drops.admit(e.reason, performance.now());
    if (suppressed < 0) return;
    const log = byRoute[e.route.index] ?? logger;
    log.warn(
      {
        reason: e.reason,
        status: e.status,
        remote: e.remote,
        transport: e.transport,
        method: e.method === null ? null : safeValue(e.method, 64),
        call_id:
          e.callId === null ? null : safeValue(cfg.redact_users ? redactUser(e.callId) : e.callId, max),
        ...(suppressed > 0 ? { suppressed } : {}),
      },
      e.status === 0 ? 'message dropped' : 'request rejected',
    );
  };

  const onLimit = (m: unknown) => {
    const e = m as LimitEvent;
    const suppressed = limits.admit(e.limit, performance.now());
    if (suppressed < 0) return;
    const log = e.route === null ? logger : (byRoute[e.route.index] ?? logger);
    log.warn({ limit: e.limit, ...(suppressed > 0 ? { suppressed } : {}) }, 'limit reached');
  };

  const onState = (m: unknown) => {
    const e = m as ProcessStateEvent;
    const level = e.state.startsWith('heap-') && e.state !== 'heap-ok' ? 'warn' : 'info';
    logger[level]({ state: e.state, ...e.detail }, `sipspan ${e.state}`);
  };

  if (transactionsOn) channels.transactionEnd.subscribe(onEnd);
  channels.messageRejected.subscribe(onRejected);
  channels.limitHit.subscribe(onLimit);
  channels.processState.subscribe(onState);
  logger.info({ config: redactConfig(app.config) }, 'sipspan starting');

  return {
    name: 'logs',
    logger,
    writer,
    async flush(deadlineMs: number) {
      logger.info({ state: 'stopped' }, 'sipspan stopping');
      await writer.flush(deadlineMs);
    },
    async shutdown() {
      if (transactionsOn) channels.transactionEnd.unsubscribe(onEnd);
      channels.messageRejected.unsubscribe(onRejected);
      channels.limitHit.unsubscribe(onLimit);
      channels.processState.unsubscribe(onState);
      writer.close();
    },
  };
}
