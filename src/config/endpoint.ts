import { isIP } from 'node:net';

export type TransportName = 'udp' | 'tcp';

/** A transport URI of the config and the CLI: `udp://host:port`, `tcp://[::1]:5060`. */
export interface Endpoint {
  transport: TransportName;
  host: string;
  port: number;
  /** 4 or 6 for IP literals, 0 for names (resolved at start and on failure). */
  family: 0 | 4 | 6;
}

/**
 * Parse `udp://host:port`; a message naming what is wrong, or the endpoint. A listener may ask for
 * port 0, any free port (the bench command, tests): the route then names the port it was given.
 */
export function parseEndpoint(text: string, role: 'listener' | 'peer' = 'peer'): Endpoint | string {
  const m = /^(udp|tcp):\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]\s]+):(\d{1,5})$/.exec(text);
  if (m === null) return `expected udp://host:port or tcp://host:port (IPv6 as [addr]), got "${text}"`;
  const port = Number(m[3]);
  const lowest = role === 'listener' ? 0 : 1;
  if (port < lowest || port > 65535) return `port ${port} is out of range ${lowest}-65535`;
  let host = m[2];
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) return `"${host}" is not an IPv6 address`;
  }
  const family = isIP(host);
  return { transport: m[1] as TransportName, host, port, family: family === 0 ? 0 : (family as 4 | 6) };
}

/** A listener address for HTTP: `host:port` or `[v6]:port`. */
export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(text: string): HostPort | string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]\s]+):(\d{1,5})$/.exec(text);
  if (m === null) return `expected host:port (IPv6 as [addr]:port), got "${text}"`;
  const port = Number(m[2]);
  if (port > 65535) return `port ${port} is out of range 0-65535`;
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host, port };
}

/**
 * `advertise`: what sipspan writes in Via and Record-Route (RFC 3261 §25.1 hostport): a host name,
 * an IPv4 address or a bracketed IPv6 one, and an optional port. A bare IPv6 address would be read
 * as host and port; a wrong value makes every response and in-dialog request miss sipspan.
 */
export function checkAdvertise(text: string): string | null {
  const m = /^(\[[^\]]*\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  if (m === null) return `expected host or host:port (IPv6 as [addr] or [addr]:port), got "${text}"`;
  if (m[1].startsWith('[') && isIP(m[1].slice(1, -1)) !== 6)
    return `"${m[1].slice(1, -1)}" is not an IPv6 address`;
  if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))
    return `port ${m[2]} is out of range 1-65535`;
  return null;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function formatEndpoint(e: Endpoint): string {
  return `${e.transport}://${formatHostPort(e.host, e.port)}`;
}
