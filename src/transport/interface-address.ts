import { networkInterfaces } from 'node:os';

/** A wildcard bind address: listens on every interface, names none. */
export function isUnspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** This machine's first non-internal address of a family (loopback when it has none). */
export function firstInterfaceAddress(family: 4 | 6): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (
        !a.internal &&
        (family === 4 ? a.family === 'IPv4' : a.family === 'IPv6' && !a.address.startsWith('fe80'))
      ) {
        return a.address;
      }
    }
  }
  return family === 4 ? '127.0.0.1' : '::1';
}

/**
 * The address to write in SIP text (Via sent-by, Contact, Record-Route, SDP) for a socket bound on
 * `host`: the host itself, or for a wildcard an address peers can reach, since a peer that sends to
 * 0.0.0.0 sends to itself.
 */
export function advertisedAddress(host: string): string {
  return isUnspecified(host) ? firstInterfaceAddress(host.includes(':') ? 6 : 4) : host;
}
