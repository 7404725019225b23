/**
 * The baseline of the bench: the least a SIP relay on node:dgram can do.
 *   node bench/relay/dgram-relay.ts --listen PORT --upstream PORT [--hold-us N]
 *
 * One UDP socket on 127.0.0.1. A request gets a Via line of its own (RFC 3261
 * §16.6 step 8, with a per-request branch from a counter) and goes to the
 * upstream; a response loses its top Via (§16.7 step 3) and goes to the
 * sent-by of the next one (§18.2.2, no received/rport handling). No Record-Route,
 * no Max-Forwards, no loop detection, no parsing beyond a few indexOf calls,
 * no tables, no telemetry: the floor a proxy on node:dgram cannot go below, so
 * "sipspan costs N× a bare relay" isolates what sipspan adds over the runtime.
 */
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, upstream: { type: 'string' }, 'hold-us': { type: 'string' } },
});
const listenPort = Number(values.listen);
const upstreamPort = Number(values.upstream);
/**
 * --hold-us: keep each message this long (a busy wait, user time only) before sending it on, to
 * measure what the time a message spends in a box costs the box (bench/wake-cost.ts).
 */
const holdMs = Number(values['hold-us'] ?? 0) / 1000;
const HOST = '127.0.0.1';

const socket = createSocket('udp4');
const viaPrefix = Buffer.from(`Via: SIP/2.0/UDP ${HOST}:${listenPort};branch=z9hG4bK-relay`, 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const SPACE = Buffer.from(' ', 'latin1');
let branch = 0;

/** Start of the first Via header line (its CRLF excluded), or -1. */
function firstVia(buf: Buffer, from: number): number {
  let i = buf.indexOf('\r\nVia:', from, 'latin1');
  const compact = buf.indexOf('\r\nv:', from, 'latin1');
  if (i === -1 || (compact !== -1 && compact < i)) i = compact;
  return i === -1 ? -1 : i + 2;
}

function relay(buf: Buffer): void {
  const lineEnd = buf.indexOf(CRLF);
  if (lineEnd === -1) return;
  if (buf[0] !== 0x53 || buf.toString('latin1', 0, 8) !== 'SIP/2.0 ') {
    // A request: our Via on top, then upstream.
    branch = (branch + 1) | 0;
    socket.send(
      [
        buf.subarray(0, lineEnd + 2),
        viaPrefix,
        Buffer.from(`${branch >>> 0}\r\n`, 'latin1'),
        buf.subarray(lineEnd + 2),
      ],
      upstreamPort,
      HOST,
    );
    return;
  }
  // A response: drop our Via value, route by the next one's sent-by. The next value may
  // share our Via line (SIPp folds them: "Via: ours, theirs") or be on the next line.
  const top = firstVia(buf, lineEnd);
  if (top === -1) return;
  const topEnd = buf.indexOf(CRLF, top);
  const valueStart = buf.indexOf(':', top) + 1;
  const comma = buf.indexOf(',', valueStart);
  let nextValue: string;
  let chunks: Buffer[];
  if (comma !== -1 && comma < topEnd) {
    nextValue = buf.toString('latin1', comma + 1, topEnd);
    let rest = comma + 1;
    while (buf[rest] === 0x20 || buf[rest] === 0x09) rest++;
    chunks = [buf.subarray(0, valueStart), SPACE, buf.subarray(rest)];
  } else {
    const next = firstVia(buf, topEnd);
    if (next === -1) return;
    nextValue = buf.toString('latin1', buf.indexOf(':', next) + 1, buf.indexOf(CRLF, next));
    chunks = [buf.subarray(0, top), buf.subarray(topEnd + 2)];
  }
  // "SIP/2.0/UDP host:port;params[, more]": sent-by runs from after the space to ; or , or the end.
  let i = nextValue.indexOf('/UDP') + 4;
  while (nextValue.charCodeAt(i) === 0x20) i++;
  let end = i;
  while (end < nextValue.length) {
    const c = nextValue.charCodeAt(end);
    if (c === 0x3b || c === 0x2c || c === 0x20) break;
    end++;
  }
  const colon = nextValue.lastIndexOf(':', end);
  const hasPort = colon > i;
  const port = hasPort ? Number(nextValue.slice(colon + 1, end)) : 5060;
  const host = nextValue.slice(i, hasPort ? colon : end);
  socket.send(chunks, port, host);
}

/** The hold wraps the relay only when asked for: the baseline's own path stays the bare one. */
function holdThenRelay(buf: Buffer): void {
  const until = performance.now() + holdMs;
  while (performance.now() < until);
  relay(buf);
}

socket.on('message', holdMs > 0 ? holdThenRelay : relay);

socket.bind(listenPort, HOST, () => {
  process.stderr.write(`dgram-relay: ${HOST}:${listenPort} → ${HOST}:${upstreamPort}\n`);
});
const close = () => socket.close(() => process.exit(0));
process.on('SIGTERM', close);
process.on('SIGINT', close);
