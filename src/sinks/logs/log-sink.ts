import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import pino, { type Logger } from 'pino';
import type { Sipspan } from '../../app.ts';
import type { Config } from '../../config/schema.ts';
import { channels } from '../../observe/channels.ts';
import type {
  LimitEvent,
  ProcessStateEvent,
  RejectedEvent,
  TransactionRecord,
} from '../../observe/records.ts';
import type { Sink } from '../sink.ts';
import { BoundedWriter } from './bounded-writer.ts';
import { openLogTarget } from './destination.ts';
import { fitLine, MAX_LINE_BYTES } from './line-fit.ts';
import { RateLimiter } from './rate-limiter.ts';
import { safeValue } from './safe-value.ts';
import { endedAtWall, IsoClock, transactionLine, writeTransactionLine } from './transaction-line.ts';

export interface LogSinkOptions {
  /** Overrides config.logs.destination: `stdout`, `stderr`, a file path, or a stream (tests). */
  destination?: NodeJS.WritableStream | string;
}

export interface LogSink extends Sink {
  readonly logger: Logger;
  readonly writer: BoundedWriter;
}

/** Every field of a transaction line after pino's own (`time`, `level`, `node`, `service`, `msg`). */
export const TRANSACTION_FIELDS = [
  'trace_id',
  'span_id',
  'call_id',
  'method',
  'cseq',
  'status',
  'status_class',
  'outcome',
  'transport',
  'downstream',
  'upstream',
  'upstream_rtt_ms',
  'duration_ms',
  'proxy_ms',
  'retransmissions',
] as const;

/** Keys pino or the sink set on every line: a state detail must not repeat them. */
const RESERVED_KEYS = new Set(['time', 'level', 'msg', 'node', 'service', 'state']);

/** Process states an operator should look at: logged at warn, the rest at info. */
const WARN_STATES: ReadonlySet<ProcessStateEvent['state']> = new Set([
  'heap-soft',
  'heap-hard',
  'reload-failed',
  'reload-ignored',
  'udp-buffers-capped',
  'udp-io-dgram',
  'heap-guard-unreachable',
]);
const SECRET_KEY = /password|secret|token|key/i;
/** How long pino's logger.flush(cb) waits for a stalled destination. */
const LOGGER_FLUSH_MS = 2000;
/** Suppressed counts no later line carried are reported this long after the first suppression. */
const SUPPRESSED_REPORT_MS = 2000;
const REASON_BYTES = 64;

/**
 * A pino logger with the contract's shape: newline-delimited JSON, `time` in
 * ISO 8601, `level` as its label, `node` on every line. Lines go through a
 * BoundedWriter (queued, never blocking; dropped and counted past the bound)
 * after the line-size bound. Without a writer one is opened on
 * config.logs.destination: that is the logger for start-up and shutdown lines
 * outside the sink; `logger.flush(cb)` writes its queue out (bounded wait).
 */
export function createLogger(config: Config, writer?: BoundedWriter): Logger {
  const w = writer ?? new BoundedWriter(openLogTarget(config.logs.destination), config.logs.max_buffer_bytes);
  const destination = {
    write: (line: string) => w.write(fitLine(line)),
    flush: (cb?: (err?: Error) => void) => {
      void w.flush(LOGGER_FLUSH_MS).then(() => cb?.());
    },
  };
  return pino(
    {
      level: config.logs.level,
      base: { node: config.node },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A copy of a configuration value with every key that looks secret replaced. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactSecrets(v);
    return out;
  }
  return value;
}

/**
 * The log sink: one line per completed transaction at each hop
 * (`sipspan:transaction:end`: final response sent back, timeout, rejection, a
 * 2xx ACK forwarded), drop and reject lines rate-limited per reason, limit hits
 * rate-limited per limit, process state changes, the effective configuration at
 * start and a last line at stop. Every value that came off the wire is escaped
 * and bounded (safe-value.ts); each line is at most 8 KiB (line-fit.ts).
 *
 * Decided at start and on a reload that changes the level: transaction lines
 * off (or level above warn) → no subscription; per call, `logSampled`
 * (logs.sample_ratio) decides once.
 */
export function startLogSink(app: Sipspan, opts: LogSinkOptions = {}): LogSink {
  const config = app.config;
  const cfg = config.logs;
  const writer = new BoundedWriter(openLogTarget(opts.destination ?? cfg.destination), cfg.max_buffer_bytes);
  const logger = createLogger(config, writer);
  const byRoute = app.routes.map((r) => logger.child({ service: r.info.name }));
  const maxValue = cfg.max_value_bytes;
  const redactUsers = cfg.redact_users;
  // Decided at start and again when a reload changes the level (setLevel below).
  let infoOn = logger.isLevelEnabled('info');
  let warnOn = logger.isLevelEnabled('warn');
  const drops = new RateLimiter(cfg.drops_per_second);
  const limits = new RateLimiter(cfg.drops_per_second);
  let suppressedTimer: NodeJS.Timeout | null = null;
  let stopLogged = false;

  // The transaction line is written straight (transaction-line.ts) with each route logger's own bindings.
  const bindingsOf = (l: Logger) =>
    Buffer.from(String((l as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym]), 'utf8');
  const bindings = byRoute.map(bindingsOf);
  // A route the sink was not started with (never, short of a bug) still gets its line, without `service`.
  const processBindings = bindingsOf(logger);
  const clock = new IsoClock();
  const lineOptions = { maxValue, redactUsers };

  const onTransactionEnd = (message: unknown) => {
    const tx = message as TransactionRecord;
    const call = tx.call;
    if (call !== null && !call.logSampled) return;
    const isWarn = tx.outcome === 'timeout' || tx.outcome === 'send-failed';
    if (!isWarn && !infoOn) return;
    const level = isWarn ? 'warn' : 'info';
    const routeBindings = bindings[tx.route.index] ?? processBindings;
    const time = clock.at(endedAtWall(tx));
    const out = writer.room(MAX_LINE_BYTES);
    const at = writer.at;
    const end = writeTransactionLine(
      out,
      at,
      at + MAX_LINE_BYTES,
      tx,
      level,
      time,
      routeBindings,
      lineOptions,
    );
    // Longer than a line may be (max_value_bytes raised): as text, to be cut.
    if (end < 0) writer.write(fitLine(transactionLine(tx, level, time, routeBindings, lineOptions)));
    else writer.commit(end);
  };

  const armSuppressedReport = () => {
    if (suppressedTimer !== null) return;
    suppressedTimer = setTimeout(() => reportSuppressed(false), SUPPRESSED_REPORT_MS);
    suppressedTimer.unref();
  };

  /** Suppressed counts that no later line of their reason carried (all of them when final). */
  const reportSuppressed = (final: boolean) => {
    suppressedTimer = null;
    const now = performance.now();
    const grace = final ? 0 : SUPPRESSED_REPORT_MS - 1000;
    for (const [reason, n] of drops.takeStale(now, grace))
      logger.warn({ reason, suppressed: n }, 'drop lines suppressed');
    for (const [limit, n] of limits.takeStale(now, grace))
      logger.warn({ limit, suppressed: n }, 'limit lines suppressed');
    if (!final && (drops.hasSuppressed || limits.hasSuppressed)) armSuppressedReport();
  };

  const onRejected = (message: unknown) => {
    const e = message as RejectedEvent;
    // Keepalives come from every phone behind NAT every few seconds: counted, never a line.
    if (e.reason === 'keepalive') return;
    const reason = safeValue(e.reason, REASON_BYTES);
    const suppressed = drops.admit(reason, performance.now());
    if (suppressed < 0) {
      armSuppressedReport();
      return;
    }
    const line: Record<string, unknown> = {
      reason,
      status: e.status,
      remote: safeValue(e.remote, maxValue),
      transport: e.transport,
      method: e.method === null ? null : safeValue(e.method, maxValue),
      call_id: e.callId === null ? null : safeValue(e.callId, maxValue),
      cseq: e.cseq >= 0 ? e.cseq : null,
    };
    if (suppressed > 0) line.suppressed = suppressed;
    (byRoute[e.route.index] ?? logger).warn(line, e.status === 0 ? 'message dropped' : 'request rejected');
  };

  const onLimit = (message: unknown) => {
    const e = message as LimitEvent;
    const limit = safeValue(e.limit, REASON_BYTES);
    const suppressed = limits.admit(limit, performance.now());
    if (suppressed < 0) {
      armSuppressedReport();
      return;
    }
    const line: Record<string, unknown> = { limit };
    if (suppressed > 0) line.suppressed = suppressed;
    (e.route === null ? logger : (byRoute[e.route.index] ?? logger)).warn(line, 'limit reached');
  };

  let subscribed = { transactions: false, warnings: false };
  /** Subscribe to what the level lets through, and only that. */
  const subscribe = () => {
    const want = { transactions: cfg.transactions && warnOn, warnings: warnOn };
    if (want.transactions !== subscribed.transactions) {
      if (want.transactions) channels.transactionEnd.subscribe(onTransactionEnd);
      else channels.transactionEnd.unsubscribe(onTransactionEnd);
    }
    if (want.warnings !== subscribed.warnings) {
      if (want.warnings) {
        channels.messageRejected.subscribe(onRejected);
        channels.limitHit.subscribe(onLimit);
      } else {
        channels.messageRejected.unsubscribe(onRejected);
        channels.limitHit.unsubscribe(onLimit);
      }
    }
    subscribed = want;
  };
  const setLevel = (level: string) => {
    logger.level = level;
    for (const child of byRoute) child.level = level;
    infoOn = logger.isLevelEnabled('info');
    warnOn = logger.isLevelEnabled('warn');
    subscribe();
  };

  const onState = (message: unknown) => {
    const e = message as ProcessStateEvent;
    // SIGHUP, whatever came of the reload: a log file moved away by logrotate is opened again at its path.
    if (e.state === 'reloaded' || e.state === 'reload-failed' || e.state === 'reload-ignored')
      writer.reopenFile();
    const line: Record<string, unknown> = { state: e.state };
    for (const [k, v] of Object.entries(e.detail)) if (!RESERVED_KEYS.has(k)) line[k] = v;
    if (e.state === 'reloaded' && typeof e.detail.log_level === 'string') {
      // The change itself is logged when the old level or the new one lets info through: before a
      // reload to a quieter level, after one to a louder level.
      if (infoOn) {
        logger.info(line, 'sipspan reloaded');
        setLevel(e.detail.log_level);
      } else {
        setLevel(e.detail.log_level);
        logger.info(line, 'sipspan reloaded');
      }
      return;
    }
    if (WARN_STATES.has(e.state)) logger.warn(line, `sipspan ${e.state}`);
    else logger.info(line, `sipspan ${e.state}`);
  };

  subscribe();
  channels.processState.subscribe(onState);

  // The effective configuration: one line for the process, one per route (each stays within the line bound).
  const { routes, ...global } = redactSecrets(config) as Record<string, unknown> & { routes: unknown[] };
  logger.info(
    { state: 'starting', config: global, routes: app.routes.map((r) => r.info.name) },
    'sipspan starting',
  );
  routes.forEach((route, i) => {
    (byRoute[i] ?? logger).info({ route }, 'route configured');
  });

  return {
    name: 'logs',
    logger,
    writer,
    async flush(deadlineMs: number) {
      if (app.draining && !stopLogged) {
        // The proxy is stopping: forwarding is over, this is the last line.
        stopLogged = true;
        reportSuppressed(true);
        logger.info(
          { state: 'stopped', log_lines_written: writer.written, log_lines_dropped: writer.dropped },
          'sipspan stopped',
        );
      }
      await writer.flush(deadlineMs);
    },
    async shutdown() {
      warnOn = false;
      subscribe();
      channels.processState.unsubscribe(onState);
      if (suppressedTimer !== null) clearTimeout(suppressedTimer);
      suppressedTimer = null;
      writer.close();
    },
  };
}
