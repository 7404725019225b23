import { isIP } from 'node:net';
import type { ConfigProblem } from './config-error.ts';
import { formatEndpoint, formatHostPort, type HostPort, type TransportName } from './endpoint.ts';
import type { ParsedConfig } from './schema.ts';

/**
 * Listeners that would take the same port (what `run` would fail to bind with EADDRINUSE), and
 * upstreams that are a route's own listener: found by `validate` without binding or resolving anything.
 */

/**
 * A socket the configuration binds. SIP TCP listeners and the HTTP listeners (admin, /metrics) share
 * the TCP port space; UDP is separate.
 */
interface BoundSocket {
  path: string;
  text: string;
  protocol: TransportName;
  port: number;
  addresses: BoundAddress[];
}

/** An address a socket takes: family 0 is a name (not resolved here: validate resolves nothing). */
interface BoundAddress {
  family: 0 | 4 | 6;
  ip: string;
  /** 0.0.0.0 or ::, which take the port on every address of the family. */
  wildcard: boolean;
  /** :: without IPV6_V6ONLY, which takes the IPv4 port as well. */
  dualStack: boolean;
}

export function socketsOf(cfg: ParsedConfig): BoundSocket[] {
  // The admin listener counts as the first: a route's listener is named as the one that collides.
  const sockets = [httpSocket('admin', cfg.admin)];
  cfg.routes.forEach((r, i) => {
    for (const [j, l] of r.listen.entries()) {
      sockets.push({
        path: `routes[${i}].listen[${j}]`,
        text: formatEndpoint(l),
        protocol: l.transport,
        port: l.port,
        // SIP sockets on an IPv6 address are IPv6-only (so a route can listen on 0.0.0.0 and [::] alike).
        addresses: addressesOf(l.host, l.transport, false),
      });
    }
    if (r.metrics !== undefined) sockets.push(httpSocket(`routes[${i}].metrics`, r.metrics));
  });
  return sockets;
}

function httpSocket(path: string, hp: HostPort): BoundSocket {
  // node:http listens without IPV6_V6ONLY: on :: it takes the IPv4 port too.
  const addresses = addressesOf(hp.host, 'tcp', true);
  return { path, text: formatHostPort(hp.host, hp.port), protocol: 'tcp', port: hp.port, addresses };
}

function addressesOf(host: string, protocol: TransportName, dualStack: boolean): BoundAddress[] {
  const name = host.toLowerCase();
  // A UDP listener with a name is an IPv4 socket (no ":" in the host); over TCP localhost may be either.
  if (name === 'localhost')
    return protocol === 'udp' ? [ipv4('127.0.0.1')] : [ipv4('127.0.0.1'), ipv6('::1', false)];
  const family = isIP(name);
  if (family === 4) return [ipv4(name)];
  if (family === 6) return [ipv6(name, dualStack)];
  return [{ family: protocol === 'udp' ? 4 : 0, ip: name, wildcard: false, dualStack: false }];
}

function ipv4(ip: string): BoundAddress {
  return { family: 4, ip, wildcard: ip === '0.0.0.0', dualStack: false };
}

function ipv6(ip: string, dualStack: boolean): BoundAddress {
  const canonical = canonicalHost(ip);
  const wildcard = canonical === '::';
  return { family: 6, ip: canonical, wildcard, dualStack: wildcard && dualStack };
}

function clash(a: BoundAddress, b: BoundAddress): boolean {
  if ((a.dualStack && b.family === 4) || (b.dualStack && a.family === 4)) return true;
  return a.family === b.family && (a.ip === b.ip || a.wildcard || b.wildcard);
}

/** Each socket that cannot bind beside an earlier one, on its own path, naming the first it collides with. */
export function portCollisions(
  sockets: readonly BoundSocket[],
  where: (path: string) => string,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  sockets.forEach((s, k) => {
    if (s.port === 0) return; // any free port: each socket is given its own
    const other = sockets
      .slice(0, k)
      .find(
        (o) =>
          o.protocol === s.protocol &&
          o.port === s.port &&
          s.addresses.some((a) => o.addresses.some((b) => clash(a, b))),
      );
    if (other === undefined) return;
    const message =
      other.text === s.text
        ? `${s.text} is already used by ${where(other.path)}`
        : `${s.text} collides with ${other.text}, already used by ${where(other.path)}`;
    problems.push({ path: s.path, message });
  });
  return problems;
}

/**
 * A route whose upstream is one of its own listeners forwards every request back to itself: the same
 * host in any spelling, or a wildcard listener and a local upstream. Any other name or address may be
 * this machine too; that is not known without a lookup.
 */
export function ownListenerUpstreams(cfg: ParsedConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  cfg.routes.forEach((r, i) => {
    const up = r.upstream;
    const self = r.listen.findIndex(
      (l) =>
        l.transport === up.transport &&
        l.port === up.port &&
        (sameHost(l.host, up.host) || ((l.host === '0.0.0.0' || l.host === '::') && isLocal(up.host))),
    );
    if (self !== -1)
      problems.push({
        path: `routes[${i}].upstream`,
        message: `${formatEndpoint(up)} is this route's own listener routes[${i}].listen[${self}]: every request would come back to sipspan`,
      });
  });
  return problems;
}

/** One spelling per host: IPv6 compressed (`0:0::1` is `::1`), names in lower case. */
function canonicalHost(host: string): string {
  const h = host.toLowerCase();
  return h.includes(':') ? new URL(`http://[${h}]/`).hostname.slice(1, -1) : h;
}

/** An address that is this machine whatever its interfaces. */
function isLocal(host: string): boolean {
  const h = canonicalHost(host);
  return h === 'localhost' || h === '0.0.0.0' || h === '::' || h === '::1' || h.startsWith('127.');
}

/** The same host, or localhost and a loopback address (either way round). */
function sameHost(listener: string, upstream: string): boolean {
  const a = canonicalHost(listener);
  const b = canonicalHost(upstream);
  if (a === b) return true;
  return (b === 'localhost' && (a === '127.0.0.1' || a === '::1')) || (a === 'localhost' && isLocal(b));
}
