/**
 * Datagrams the kernel drops at sipspan's UDP socket never reach sipspan, so
 * only the kernel's own count can show them: sipspan_udp_receive_drops_total
 * reads it from /proc/net/udp for the route's sockets when scraped.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdir, readlink } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { startMetricsSink } from '../../../src/sinks/metrics/metrics-sink.ts';
import { socketInode, sumDrops } from '../../../src/sinks/metrics/udp-socket-drops.ts';
import { freePort } from '../../support/sipp.ts';
import { promtoolCheck, scrape, sumOf } from './exposition.ts';

const TABLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  101: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17
  102: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9999 2 0000000000000000 500
  103: 0100007F:13C6 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4343 2 0000000000000000 3
`;

describe('kernel UDP receive drops', () => {
  test('a /proc/net/udp table counts only the given sockets, by inode', () => {
    // Inode 9999 is another process's socket on the same port (reusePort).
    assert.equal(sumDrops(TABLE, new Set(['4242', '4343'])), 20);
    assert.equal(sumDrops(TABLE, new Set(['4343'])), 3);
    assert.equal(sumDrops('header only\n', new Set(['4242'])), 0);
  });

  test('a bound socket’s inode is the one /proc/self/fd links to', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    try {
      const inode = await socketInode(socket);
      assert.ok(inode !== null && /^\d+$/.test(inode), `inode ${inode}`);
      const links = await Promise.all(
        (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
      );
      assert.ok(links.includes(`socket:[${inode}]`), 'one of this process’s descriptors is that socket');
      // Read once: the same answer from the cache.
      assert.equal(await socketInode(socket), inode);
    } finally {
      socket.close();
    }
  });

  describe('on a live route (Linux)', () => {
    let app: Sipspan;
    let metricsPort: number;
    let sipPort: number;

    before(async () => {
      metricsPort = await freePort();
      sipPort = await freePort();
      const nowhere = await freePort();
      app = await Sipspan.start(
        buildConfig({
          node: 'unit-node',
          admin: '127.0.0.1:0',
          routes: [
            {
              name: 'sip-gateway',
              listen: [`udp://127.0.0.1:${sipPort}`],
              upstream: `udp://127.0.0.1:${nowhere}`,
              metrics: `127.0.0.1:${metricsPort}`,
            },
          ],
        }),
        { sinks: (a) => [startMetricsSink(a)] },
      );
    });

    after(async () => {
      await app.stop(200);
    });

    test('a burst that arrives while the event loop is held up shows as drops on the route port', async () => {
      const before = sumOf((await scrape(metricsPort)).text, 'sipspan_udp_receive_drops_total');
      assert.equal(before, 0);
      // 40,000 datagrams of 1,200 bytes (48 MB) from another process, far beyond the
      // socket's receive buffer (at most net.core.rmem_max), while this loop is busy.
      const blaster = spawn(
        process.execPath,
        [
          '-e',
          `const s = require('node:dgram').createSocket('udp4'); const b = Buffer.alloc(1200, 65);
           let n = 0; const go = () => { for (let i = 0; i < 2000 && n < 40000; i++, n++) s.send(b, ${sipPort}, '127.0.0.1');
           if (n < 40000) setImmediate(go); else setTimeout(() => s.close(), 200); }; go();`,
        ],
        { stdio: 'ignore' },
      );
      const exited = new Promise((r) => blaster.once('exit', r));
      const until = performance.now() + 1500;
      while (performance.now() < until) {
        // Hold the event loop: nothing reads the socket.
      }
      await exited;
      const text = (await scrape(metricsPort)).text;
      const drops = sumOf(text, 'sipspan_udp_receive_drops_total', { service: 'sip-gateway' });
      assert.ok(drops > 0, `kernel drops counted: ${drops}`);
      const check = promtoolCheck(text);
      assert.equal(check.status, 0, check.output);
      process.stdout.write(`# kernel UDP receive drops counted: ${drops} of 40000 datagrams\n`);
    });
  });
});
