/**
 * kill -9 under load and restart: a `bin/sipspan run` child carries SIPp calls
 * (UDP, 30 calls/s) to a SIPp UAS; it is killed with SIGKILL mid-run and
 * started again at once. It must be listening again (SIP ports bound, /readyz
 * 200) within 2 s of the kill, and every call must complete: sipspan keeps no
 * state a call needs (the branch is a hash of the request, RFC 3261 §16.11),
 * so the endpoints' own retransmissions carry the calls over the gap.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, runSippUac, startSippUas } from '../support/sipp.ts';
import { ChildSipspan, HOST, tcpConnect, writeConfig } from './support/harness.ts';

/** Poll until /readyz answers 200 and the SIP TCP port accepts; ms from `since`, or -1 after timeoutMs. */
async function listeningAfter(
  adminPort: number,
  sipPort: number,
  since: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = since + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const r = await fetch(`http://${HOST}:${adminPort}/readyz`, { signal: AbortSignal.timeout(200) });
      if (r.status === 200) {
        const s = await tcpConnect(sipPort, HOST, 200);
        s.destroy();
        return performance.now() - since;
      }
    } catch {
      // not yet
    }
    await sleep(10);
  }
  return -1;
}

describe('kill -9 under load', { concurrency: false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-kill-'));
  const children: ChildSipspan[] = [];

  after(async () => {
    for (const c of children) await c.stop(1000);
    rmSync(dir, { recursive: true, force: true });
  });

  test('SIGKILL mid-run, restart at once: listening again within 2 s, all 300 SIPp calls complete by retransmission', async () => {
    const uasPort = await freePort();
    const proxyPort = await freePort();
    const adminPort = await freePort();
    const uas = await startSippUas({ port: uasPort });
    try {
      const file = await writeConfig(dir, {
        node: 'kill',
        admin: `${HOST}:${adminPort}`,
        routes: [
          {
            name: 'sip-signaling',
            listen: [`udp://${HOST}:${proxyPort}`, `tcp://${HOST}:${proxyPort}`],
            upstream: `udp://${HOST}:${uasPort}`,
          },
        ],
      });
      const t0 = performance.now();
      const first = await ChildSipspan.spawn(file);
      children.push(first);
      const coldStart = await listeningAfter(adminPort, proxyPort, t0, 10_000);
      assert.ok(coldStart >= 0, `first start: ${first.stderr}`);

      const sipp = runSippUac({
        target: `${HOST}:${proxyPort}`,
        port: await freePort(),
        calls: 300,
        rate: 30,
        timeoutS: 60,
      });
      await sleep(4000);
      first.proc.kill('SIGKILL');
      const killedAt = performance.now();
      assert.ok(await first.waitExit(2000), 'the killed process is gone');
      assert.equal(first.exit?.signal, 'SIGKILL');
      const second = await ChildSipspan.spawn(file);
      children.push(second);
      const restart = await listeningAfter(adminPort, proxyPort, killedAt, 5000);
      assert.ok(restart >= 0, `restart failed: ${second.stderr}`);

      const r = await sipp;
      const detail = `exit ${r.exitCode}, successful ${r.successful}, failed ${r.failed}, retransmissions ${r.stats['Retransmissions(C)']}\n${r.stderr.slice(-1500)}`;
      assert.ok(restart <= 2000, `listening ${restart.toFixed(0)} ms after the kill`);
      assert.equal(r.successful, 300, detail);
      assert.equal(r.failed, 0, detail);
      assert.equal(second.exit, null, 'the restarted process keeps running');
      process.stdout.write(
        `# kill -9: cold start ${coldStart.toFixed(0)} ms, listening ${restart.toFixed(0)} ms after SIGKILL, ${r.successful}/300 calls completed, ${r.stats['Retransmissions(C)']} retransmissions\n`,
      );
    } finally {
      await uas.stop();
    }
  });
});
