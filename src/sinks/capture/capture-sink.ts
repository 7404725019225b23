import { join } from 'node:path';
import type { Sipspan } from '../../app.ts';
import { formatHostPort } from '../../config/endpoint.ts';
import { channels } from '../../observe/channels.ts';
import type { CallRecord, CapturedEvent, TransactionRecord } from '../../observe/records.ts';
import type { Sink } from '../sink.ts';
import type { RouteTopology } from './call-detail.ts';
import { CallViewHttp } from './call-view-http.ts';
import { HealthCounters } from './health-counters.ts';
import { DEFAULT_STORE_OPTIONS, MessageStore } from './message-store.ts';

export interface CaptureSinkOptions {
  /** Memory bound of the store in MiB; default `capture_mb` of the config, or 64 when that is 0. */
  maxMb?: number;
  /** Most calls kept (default 10 000). */
  maxCalls?: number;
  maxMessagesPerCall?: number;
  /** Replace URI user parts, tel: numbers and display names before storing (default false). */
  redactUsers?: boolean;
  /** Replace Authorization / Proxy-Authorization credentials before storing (default false). */
  redactAuth?: boolean;
  /** Serve the call view (page and API) on the admin listener (default true). */
  http?: boolean;
  /** Where the page's static files are (default src/admin/ui, or dist/admin/ui when built). */
  uiDir?: string;
}

const DEFAULT_CAPTURE_MB = 64;

/** The page's files sit at admin/ui beside this module's sinks/capture (in src/ and in dist/ alike). */
export const DEFAULT_UI_DIR = join(import.meta.dirname, '..', '..', 'admin', 'ui');

/**
 * The call view's sink: keeps the raw messages of recent calls from
 * `sipspan:message:captured` (published only while this sink is subscribed, so
 * a process without it copies no bytes), per-minute health counters from the
 * transaction and call channels, and serves the page and its API on the admin
 * listener.
 */
export class CaptureSink implements Sink {
  readonly name = 'capture';
  readonly store: MessageStore;
  readonly health: HealthCounters;
  readonly http: CallViewHttp | null;
  private readonly onCaptured = (m: unknown) => {
    this.store.add(m as CapturedEvent);
  };
  private readonly onTransactionEnd = (m: unknown) => this.health.onTransactionEnd(m as TransactionRecord);
  private readonly onCallOutcome = (m: unknown) => this.health.onCallOutcome(m as CallRecord);
  private stopped = false;

  constructor(app: Sipspan, opts: CaptureSinkOptions = {}) {
    const mb = opts.maxMb ?? (app.config.capture_mb > 0 ? app.config.capture_mb : DEFAULT_CAPTURE_MB);
    this.store = new MessageStore({
      maxBytes: Math.floor(mb * 1024 * 1024),
      maxCalls: opts.maxCalls ?? DEFAULT_STORE_OPTIONS.maxCalls,
      maxMessagesPerCall: opts.maxMessagesPerCall ?? DEFAULT_STORE_OPTIONS.maxMessagesPerCall,
      redact: { users: opts.redactUsers ?? false, auth: opts.redactAuth ?? false },
    });
    this.health = new HealthCounters(app.config.routes.map((r) => r.name));
    this.http =
      opts.http === false
        ? null
        : new CallViewHttp({
            store: this.store,
            health: this.health,
            node: app.config.node,
            topology: () => topologyOf(app),
            adminBase: () => adminBase(app),
            uiDir: opts.uiDir ?? DEFAULT_UI_DIR,
          });
    if (this.http !== null) this.http.register(app.admin);
    channels.messageCaptured.subscribe(this.onCaptured);
    channels.transactionEnd.subscribe(this.onTransactionEnd);
    channels.callOutcome.subscribe(this.onCallOutcome);
  }

  flush(_deadlineMs: number): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.stopped = true;
    channels.messageCaptured.unsubscribe(this.onCaptured);
    channels.transactionEnd.unsubscribe(this.onTransactionEnd);
    channels.callOutcome.unsubscribe(this.onCallOutcome);
    this.http?.close();
    return Promise.resolve();
  }
}

export function startCaptureSink(app: Sipspan, opts: CaptureSinkOptions = {}): CaptureSink {
  return new CaptureSink(app, opts);
}

/** Each route's listeners and resolved upstream, as `address:port` the way captured events write them. */
export function topologyOf(app: Sipspan): RouteTopology[] {
  return app.routes.map((r) => ({
    index: r.info.index,
    name: r.info.name,
    upstream: formatHostPort(r.upstreamAddress !== '' ? r.upstreamAddress : r.upstream.host, r.upstream.port),
    // A UDP and a TCP listener on one address and port are one address to the ladder.
    listen: [
      ...new Set(
        r.config.listen.map((l) =>
          formatHostPort(l.host, l.transport === 'udp' ? r.udpPort || l.port : r.tcpPort || l.port),
        ),
      ),
    ],
  }));
}

function adminBase(app: Sipspan): string {
  let host = app.admin.host;
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${app.admin.port}`;
}
