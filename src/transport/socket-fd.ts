import type { Socket } from 'node:dgram';

/**
 * The file descriptor under a bound dgram socket, or -1. Node keeps it on the socket's
 * handle, behind a symbol (the public `_handle` getter is deprecated and warns).
 */
export function socketFd(socket: Socket): number {
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    const state = (socket as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[symbol];
    const fd = state?.handle?.fd;
    if (typeof fd === 'number' && fd >= 0) return fd;
  }
  return -1;
}
