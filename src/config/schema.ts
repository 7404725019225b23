import { z } from 'zod';
import { checkAdvertise, type Endpoint, type HostPort, parseEndpoint, parseHostPort } from './endpoint.ts';

/**
 * The one configuration schema. YAML keys are snake_case; unknown keys are
 * errors (a typo must not silently fall back to a default). Every default
 * lives here, so `sipspan validate` and the README reference agree.
 */
const endpointOf = (role: 'listener' | 'peer') =>
  z.string().transform((s, ctx): Endpoint => {
    const e = parseEndpoint(s, role);
    if (typeof e === 'string') {
      ctx.addIssue({ code: 'custom', message: e });
      return z.NEVER;
    }
    return e;
  });
const endpoint = endpointOf('peer');
const listenEndpoint = endpointOf('listener');

const hostPort = z.string().transform((s, ctx): HostPort => {
  const e = parseHostPort(s);
  if (typeof e === 'string') {
    ctx.addIssue({ code: 'custom', message: e });
    return z.NEVER;
  }
  return e;
});

const positiveInt = z.number().int().positive();
const heapLimit = z.union([positiveInt, z.literal('auto')]).default('auto');

export const routeSchema = z.strictObject({
  /** The `service` label of every series, span and log line of this route. */
  name: z
    .string()
    .regex(/^[a-zA-Z][a-zA-Z0-9_.-]{0,62}$/, 'a name of letters, digits, ".", "_" or "-" (at most 63)'),
  listen: z
    .array(listenEndpoint)
    .min(1, 'at least one listener')
    .superRefine((list, ctx) => {
      // One UDP socket per IP family sends and receives for the route; a second would never be bound.
      const seen = new Set<string>();
      list.forEach((l, i) => {
        if (l.transport !== 'udp') return;
        const family = l.host.includes(':') ? 'IPv6' : 'IPv4';
        if (seen.has(family))
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `a route listens on one UDP address per IP family; this is a second ${family} one (use another route)`,
          });
        seen.add(family);
      });
    }),
  upstream: endpoint,
  /** This route's own /metrics listener (13012 for the gateway side, 13022 for signaling). */
  metrics: hostPort.optional(),
  /** Host (and optional port) written in Via and Record-Route: the address peers reach this route at (NAT, compose). */
  advertise: z
    .string()
    .superRefine((s, ctx) => {
      const problem = checkAdvertise(s);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  record_route: z.boolean().default(true),
  trust_trace_headers: z.boolean().default(true),
  /** Stitch B2BUA legs that leave toward this route's upstream into the trace of the call they came from. */
  b2bua_correlation: z.boolean().default(true),
  /** RFC 3261 §18.1.1: a request over 1300 bytes after our insertions goes on over TCP. */
  udp_mtu_fallback_to_tcp: z.boolean().default(true),
  /** RFC 3261 §16.3 step 5: answer 420 to Proxy-Require option tags sipspan does not support. */
  reject_proxy_require: z.boolean().default(true),
  /** Answer 400 also to faults in fields sipspan does not use (To/From display names, Date, Contact). */
  strict: z.boolean().default(false),
});

export const limitsSchema = z
  .strictObject({
    max_message_bytes: positiveInt.default(65535),
    max_header_fields: positiveInt.default(256),
    max_field_bytes: positiveInt.default(16384),
    /**
     * SO_RCVBUF and SO_SNDBUF asked for each UDP socket: a burst, or a collector pause, waits in the
     * receive buffer. Linux grants at most net.core.rmem_max / wmem_max; less is reported at start.
     */
    udp_socket_buffer_bytes: positiveInt.default(4 * 1024 * 1024),
    tcp_max_connections: positiveInt.default(2048),
    tcp_max_connections_per_ip: positiveInt.default(256),
    tcp_first_byte_ms: positiveInt.default(10_000),
    tcp_read_message_ms: positiveInt.default(20_000),
    tcp_idle_ms: positiveInt.default(120_000),
    tcp_write_queue_bytes: positiveInt.default(1 << 20),
    /** Every connection's write queue together: past it writes are refused until queues drain. */
    tcp_write_queue_total_bytes: positiveInt.default(64 << 20),
    /** A connection whose queued bytes the kernel has not taken for this long is closed (Kamailio: tcp_send_timeout). */
    tcp_write_stall_ms: positiveInt.default(10_000),
    max_transactions: positiveInt.default(100_000),
    max_calls: positiveInt.default(100_000),
    /**
     * Messages that may wait at once for a host name to resolve (a Route, Request-URI or Via naming
     * a host not in the cache); each holds its bytes while it waits. Past it: answered or dropped as
     * for a name that did not resolve.
     */
    max_pending_lookups: positiveInt.default(1024),
    /**
     * Past this live heap no new observation state is created; forwarding goes on. `auto`: 60% of
     * V8's heap limit, half a container's memory limit (src/config/heap-limits.ts, bin/sipspan).
     */
    heap_soft_limit_mb: heapLimit,
    /** Past this live heap new INVITEs are answered 503 and TCP accepts stop. `auto`: 80% of V8's heap limit. */
    heap_hard_limit_mb: heapLimit,
  })
  .prefault({});

export const timersSchema = z
  .strictObject({
    /** RFC 3261 §17.1.1.1 T1; Timer B and F are 64*T1. */
    t1_ms: positiveInt.default(500),
    /** RFC 3261 §16.6 step 11 / §17.1.1.2: how long an INVITE may stay in a provisional state. */
    invite_provisional_ms: positiveInt.default(180_000),
    /** How long a call lives without a message before it is expired. */
    call_idle_ms: positiveInt.default(3_600_000),
    /** On SIGTERM: how long pending transactions and sinks get to finish. */
    drain_ms: positiveInt.default(5_000),
  })
  .prefault({});

export const tracingSchema = z
  .strictObject({
    traceparent_header: z.string().min(1).default('traceparent'),
    tracestate_header: z.string().min(1).default('tracestate'),
    trace_id_header: z.string().min(1).default('X-Trace-Id'),
    /** Correlation headers a B2BUA copies from one leg to the other, checked in order. */
    correlation_headers: z.array(z.string().min(1)).default(['Session-ID', 'X-CID']),
    correlation_window_ms: positiveInt.default(10_000),
    /** The embedded span store served by the admin API when no exporter is configured (or always in the demo). */
    store_max_calls: positiveInt.default(1000),
    store_max_spans: positiveInt.default(50_000),
  })
  .prefault({});

export const logsSchema = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `stdout`, `stderr` or a file path. */
    destination: z.string().min(1).default('stdout'),
    /** One line per completed transaction. */
    transactions: z.boolean().default(true),
    /** Fraction of calls whose transaction lines are written (decided once per call). */
    sample_ratio: z.number().min(0).max(1).default(1),
    redact_users: z.boolean().default(false),
    redact_auth: z.boolean().default(true),
    max_buffer_bytes: positiveInt.default(4 * 1024 * 1024),
    max_value_bytes: positiveInt.default(256),
    /** Most drop/reject lines per reason per second. */
    drops_per_second: positiveInt.default(10),
  })
  .prefault({});

export const configSchema = z.strictObject({
  /** The `node` label on every metric and log line. */
  node: z.string().min(1).optional(),
  /** /healthz /readyz, process-wide /metrics and the JSON API. */
  admin: hostPort.default({ host: '127.0.0.1', port: 13000 }),
  routes: z.array(routeSchema).min(1, 'at least one route'),
  limits: limitsSchema,
  timers: timersSchema,
  tracing: tracingSchema,
  logs: logsSchema,
  /**
   * Where a UDP datagram's time starts: `kernel`, when the kernel received it (includes the
   * process's wake-up and the wait behind datagrams read before it, as a capture sees them;
   * needs build/kernel-stamp.node, built by npm ci, else falls back and says so), or
   * `event_loop`, when JavaScript got it. TCP is timed from the event loop either way.
   */
  receive_clock: z.enum(['kernel', 'event_loop']).default('kernel'),
  /**
   * How UDP sockets are read: `batched`, up to 64 datagrams per wake-up and one call into
   * JavaScript for them (needs build/udp-io.node, built by npm ci, else falls back and says so),
   * or `dgram`, node:dgram's one callback per datagram.
   */
  udp_io: z.enum(['batched', 'dgram']).default('batched'),
  /** Keep the messages of recent calls for the call view (memory bound in MiB; 0 = off). */
  capture_mb: z.number().min(0).default(0),
});

export type RouteConfig = z.output<typeof routeSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type TimersConfig = z.output<typeof timersSchema>;
export type TracingConfig = z.output<typeof tracingSchema>;
export type LogsConfig = z.output<typeof logsSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
/** The frozen result of loading: `node` is always set. */
export type Config = Readonly<ParsedConfig & { node: string }>;
