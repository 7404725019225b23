import type { ServerResponse } from 'node:http';
import type { Registry, RegistryContentType } from 'prom-client';
import { sendText } from '../../admin/http-listener.ts';
import type { Sipspan } from '../../app.ts';
import { channels } from '../../observe/channels.ts';
import type {
  CallRecord,
  ForwardedEvent,
  LimitEvent,
  ObservedTransaction,
  RejectedEvent,
  TransactionRecord,
} from '../../observe/records.ts';
import type { RouteRuntime } from '../../proxy/route-runtime.ts';
import type { Sink } from '../sink.ts';
import { createProcessRegistry } from './process-registry.ts';
import { renderInSteps } from './render-in-steps.ts';
import { RouteMetrics } from './route-metrics.ts';
import { readUdpSocketDrops, socketInode } from './udp-socket-drops.ts';

/**
 * OpenMetrics when the scraper lists it with a non-zero quality (Prometheus
 * asks for it first when it stores exemplars), else the Prometheus text format.
 */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';');
    if (type.trim().toLowerCase() !== 'application/openmetrics-text') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

/** Kernel receive drops at a route's UDP sockets: those it listens on and those it sends from. */
async function udpDropsOf(route: RouteRuntime): Promise<number> {
  const inodes = new Set<string>();
  for (const listener of [route.udp4, route.udp6, route.ownUdp4, route.ownUdp6]) {
    if (listener === null) continue;
    const inode = await socketInode(listener);
    if (inode !== null) inodes.add(inode);
  }
  return readUdpSocketDrops(inodes);
}

/**
 * Prometheus metrics with prom-client. Each route's series live in that route's
 * registries and are served only on its own metrics listener (none when the
 * route has no listener: nothing is collected for it); process-wide series are
 * served only on the admin listener. Every series is exposed exactly once.
 */
export function startMetricsSink(app: Sipspan): Sink {
  const node = app.config.node;
  const routes: (RouteMetrics | null)[] = app.routes.map((r) => {
    const i = r.info.index;
    const listener = app.routeHttp[i] ?? null;
    if (listener === null) return null;
    const metrics = new RouteMetrics(r.info.name, node, {
      activeCalls: () => app.observer.activeCalls(i),
      pendingTransactions: () => app.observer.pendingTransactions(i),
      tcpConnections: () => app.tcp.countForRoute(i),
      udpReceiveDrops: () => udpDropsOf(r),
    });
    listener.handle('/metrics', (req, res) =>
      serve(res, wantsOpenMetrics(req.headers.accept) ? metrics.openMetrics : metrics.text),
    );
    return metrics;
  });
  const processRegistry = createProcessRegistry(app);
  app.admin.handle('/metrics', (_req, res) => serve(res, processRegistry));

  // One handler per channel, bound once; the route index selects the route's series.
  const onForwarded = (m: unknown) => {
    const e = m as ForwardedEvent;
    const r = routes[e.route.index];
    if (r != null) r.forwarded(e);
  };
  const onTransactionEnd = (m: unknown) => {
    const tx = m as TransactionRecord;
    const r = routes[tx.route.index];
    if (r != null) r.transactionEnded(tx);
  };
  const onRetransmission = (m: unknown) => {
    const tx = m as ObservedTransaction;
    const r = routes[tx.route.index];
    if (r != null) r.retransmission(tx);
  };
  const onCallOutcome = (m: unknown) => {
    const call = m as CallRecord;
    const r = routes[call.route.index];
    if (r != null) r.callOutcome(call);
  };
  const onCallEnd = (m: unknown) => {
    const call = m as CallRecord;
    const r = routes[call.route.index];
    if (r != null) r.callEnded(call);
  };
  const onRejected = (m: unknown) => {
    const e = m as RejectedEvent;
    const r = routes[e.route.index];
    if (r != null) r.rejected(e);
  };
  const onLimit = (m: unknown) => {
    const e = m as LimitEvent;
    // Limits without a route (none today) have no route series to land in.
    const r = e.route === null ? null : routes[e.route.index];
    if (r != null) r.limit(e);
  };
  const subscriptions = [
    [channels.messageForwarded, onForwarded],
    [channels.transactionEnd, onTransactionEnd],
    [channels.transactionRetransmission, onRetransmission],
    [channels.callOutcome, onCallOutcome],
    [channels.callEnd, onCallEnd],
    [channels.messageRejected, onRejected],
    [channels.limitHit, onLimit],
  ] as const;
  // With no route listener there is nothing to count: stay off the channels (publishers stay free).
  const counting = routes.some((r) => r !== null);
  if (counting) for (const [channel, handler] of subscriptions) channel.subscribe(handler);

  return {
    name: 'metrics',
    async flush() {
      // Pull model: the scraper reads the current values; nothing is buffered.
    },
    async shutdown() {
      if (counting) for (const [channel, handler] of subscriptions) channel.unsubscribe(handler);
      processRegistry.clear();
      for (const r of routes) {
        if (r === null) continue;
        r.text.clear();
        r.openMetrics.clear();
      }
    },
  };
}

async function serve(res: ServerResponse, registry: Registry<RegistryContentType>): Promise<void> {
  const body = await renderInSteps(registry);
  sendText(res, 200, body, registry.contentType);
}
