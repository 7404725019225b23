import type { TcpConnection } from './tcp-connection.ts';

export type TransportName = 'udp' | 'tcp';

/**
 * Where a message came from or goes to: the transport, both addresses and, for
 * TCP, the connection. Responses to a TCP request go back on the same
 * connection (RFC 3261 §18.2.2).
 */
export interface Flow {
  transport: TransportName;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  connection: TcpConnection | null;
}
