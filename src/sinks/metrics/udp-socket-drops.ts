import { readdir, readFile, readlink } from 'node:fs/promises';

const SOCKET_LINK = /^socket:\[(\d+)\]$/;

/**
 * Datagrams the kernel dropped at this process's own UDP sockets (receive
 * buffer full while the event loop was busy), by local port. These never
 * reach sipspan, so no other counter can see them; Linux keeps them per
 * socket in the last column of /proc/net/udp{,6}. Sockets are matched by
 * inode against /proc/self/fd, so processes sharing a port (reusePort) each
 * count only their own. Elsewhere than Linux: an empty map.
 */
export async function readUdpSocketDrops(): Promise<Map<number, number>> {
  const drops = new Map<number, number>();
  let fds: string[];
  try {
    fds = await readdir('/proc/self/fd');
  } catch {
    return drops;
  }
  const inodes = new Set<string>();
  await Promise.all(
    fds.map(async (fd) => {
      try {
        const m = SOCKET_LINK.exec(await readlink(`/proc/self/fd/${fd}`));
        if (m !== null) inodes.add(m[1]);
      } catch {
        // Closed between readdir and readlink.
      }
    }),
  );
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = await readFile(table, 'latin1');
    } catch {
      continue;
    }
    addDrops(text, inodes, drops);
  }
  return drops;
}

/** One /proc/net/udp table: `sl local_address rem_address st ... uid timeout inode ref pointer drops`. */
export function addDrops(table: string, inodes: ReadonlySet<string>, into: Map<number, number>): void {
  const lines = table.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/);
    if (f.length < 13 || !inodes.has(f[9])) continue;
    const port = Number.parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16);
    const n = Number(f[f.length - 1]);
    if (Number.isFinite(port) && Number.isFinite(n)) into.set(port, (into.get(port) ?? 0) + n);
  }
}
