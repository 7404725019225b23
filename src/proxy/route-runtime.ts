import { Buffer } from 'node:buffer';
import { type Endpoint, formatHostPort } from '../config/endpoint.ts';
import type { RouteConfig } from '../config/schema.ts';
import type { RouteInfo } from '../observe/records.ts';
import { firstInterfaceAddress, isUnspecified } from '../transport/interface-address.ts';
import type { UdpListener } from '../transport/udp-listener.ts';

/**
 * A configured route at run time: its sockets, the addresses that name it
 * (its Via sent-by and Record-Route), and where its upstream is.
 */
export class RouteRuntime {
  readonly info: RouteInfo;
  readonly config: RouteConfig;
  readonly udp4: UdpListener | null;
  readonly udp6: UdpListener | null;
  /**
   * With reusePort, a socket of this process alone per family: requests leave from it and its port is
   * in our Via, so their responses come back to this process and not to another sharing the port.
   */
  ownUdp4: UdpListener | null = null;
  ownUdp6: UdpListener | null = null;
  /** The port of the route's TCP listener, or 0. */
  tcpPort = 0;
  /** The port of the route's first UDP listener, or 0. */
  udpPort = 0;
  /** Host written in our Via and Record-Route. */
  advertisedHost: string;
  /** Port written in Via/Record-Route when `advertise` names one (NAT), else 0 = the listener's port. */
  advertisedPort = 0;
  /**
   * Host (lowercase) → ports that mean this route: Route entries and Vias naming one are ours. Looked up
   * by host, then port, so a check builds no `host:port` string (it runs for every response's top Via).
   */
  private readonly ownPorts = new Map<string, Set<number>>();
  /** Upstream endpoint as configured, and its resolved address. */
  readonly upstream: Endpoint;
  upstreamAddress = '';
  /** `address:port` of the resolved upstream: every request forwarded to it names it (built once). */
  upstreamText = '';
  upstreamFamily: 4 | 6 = 4;
  /** Precomputed bytes of our Record-Route lines, per transport. */
  recordRouteUdp: Buffer = Buffer.alloc(0);
  recordRouteTcp: Buffer = Buffer.alloc(0);
  /** Precomputed `SIP/2.0/UDP host:port` / `SIP/2.0/TCP host:port` prefixes of our Via lines. */
  viaPrefixUdp = '';
  viaPrefixTcp = '';

  constructor(index: number, config: RouteConfig, udp4: UdpListener | null, udp6: UdpListener | null) {
    this.info = { index, name: config.name };
    this.config = config;
    this.udp4 = udp4;
    this.udp6 = udp6;
    this.upstream = config.upstream;
    this.advertisedHost = '';
  }

  /** Called once the listeners are bound (ports known). */
  finish(): void {
    const cfg = this.config;
    for (const l of cfg.listen) {
      if (l.transport === 'tcp' && this.tcpPort === 0) this.tcpPort = l.port;
    }
    if (this.udp4 !== null) this.udpPort = this.udp4.port;
    else if (this.udp6 !== null) this.udpPort = this.udp6.port;
    let host = '';
    if (cfg.advertise !== undefined) {
      const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(cfg.advertise);
      host = m !== null ? m[1].replace(/^\[|\]$/g, '') : cfg.advertise;
      if (m !== null && m[2] !== undefined) this.advertisedPort = Number(m[2]);
    } else {
      const first = cfg.listen[0];
      host = isUnspecified(first.host) ? firstInterfaceAddress(first.host.includes(':') ? 6 : 4) : first.host;
    }
    this.advertisedHost = host;
    const hostText = host.includes(':') ? `[${host}]` : host;
    const udpPort = this.advertisedPort || this.udpPort || this.tcpPort;
    const tcpPort = this.advertisedPort || this.tcpPort || this.udpPort;
    const ownPort = this.ownUdp4?.port ?? this.ownUdp6?.port ?? 0;
    this.viaPrefixUdp = `Via: SIP/2.0/UDP ${hostText}:${ownPort || udpPort};branch=`;
    this.viaPrefixTcp = `Via: SIP/2.0/TCP ${hostText}:${tcpPort};branch=`;
    this.recordRouteUdp = Buffer.from(`Record-Route: <sip:${hostText}:${udpPort};lr>\r\n`, 'latin1');
    this.recordRouteTcp = Buffer.from(
      `Record-Route: <sip:${hostText}:${tcpPort};transport=tcp;lr>\r\n`,
      'latin1',
    );
    const names = new Set<string>([host.toLowerCase()]);
    for (const l of cfg.listen) if (!isUnspecified(l.host)) names.add(l.host.toLowerCase());
    // The ports bound, not only those configured: a listener on port 0 was given one.
    const ports = new Set<number>();
    for (const l of cfg.listen) if (l.port !== 0) ports.add(l.port);
    if (this.udpPort !== 0) ports.add(this.udpPort);
    if (this.tcpPort !== 0) ports.add(this.tcpPort);
    if (this.advertisedPort !== 0) ports.add(this.advertisedPort);
    for (const own of [this.ownUdp4, this.ownUdp6]) if (own !== null) ports.add(own.port);
    for (const n of names) this.ownPorts.set(n, ports);
  }

  isOwn(host: string, port: number, transport: string | null): boolean {
    const p = port === 0 ? (transport === 'tls' ? 5061 : 5060) : port;
    const ports = this.ownPorts.get(host) ?? this.ownPorts.get(host.toLowerCase());
    return ports?.has(p) === true;
  }

  /** The upstream's name resolved (at start, and again on retries). */
  upstreamResolved(address: string, family: 4 | 6): void {
    this.upstreamAddress = address;
    this.upstreamFamily = family;
    this.upstreamText = formatHostPort(address, this.upstream.port);
  }

  /** Every UDP socket of the route: the listeners and, with reusePort, this process's own ones. */
  udpSockets(): UdpListener[] {
    const all: UdpListener[] = [];
    for (const l of [this.udp4, this.udp6, this.ownUdp4, this.ownUdp6]) if (l !== null) all.push(l);
    return all;
  }

  /** The UDP socket responses leave from toward an address family: the one requests came to. */
  udpFor(family: 4 | 6): UdpListener | null {
    return family === 6 ? (this.udp6 ?? null) : (this.udp4 ?? null);
  }

  /** The UDP socket requests leave from: this process's own one with reusePort, else the listener. */
  udpForRequests(family: 4 | 6): UdpListener | null {
    return (family === 6 ? this.ownUdp6 : this.ownUdp4) ?? this.udpFor(family);
  }
}
