import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { LoadGenerator } from '../../src/standins/load-generator.ts';
import { UasStandin } from '../../src/standins/uas-standin.ts';
import { freePort } from '../support/sipp.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'sipspan');

async function waitFor(url: string, status: number, timeoutMs: number): Promise<Response> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.status === status) return r;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`${url} did not answer ${status} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('sipspan run: ready when bound and resolved, forwards calls, and drains on SIGTERM with exit 0', async () => {
  const uas = await new UasStandin({
    host: '127.0.0.1',
    port: await freePort(),
    ringMs: 5,
    answerMs: 20,
  }).start();
  const sipPort = await freePort();
  const adminPort = await freePort();
  const child = spawn(
    bin,
    [
      'run',
      '--name',
      'sip-signaling',
      '--listen',
      `udp://127.0.0.1:${sipPort}`,
      '--listen',
      `tcp://127.0.0.1:${sipPort}`,
      '--upstream',
      `udp://127.0.0.1:${uas.port}`,
      '--admin',
      `127.0.0.1:${adminPort}`,
      '--node',
      'test-node',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    assert.equal((await waitFor(`http://127.0.0.1:${adminPort}/healthz`, 200, 15_000)).status, 200);
    const ready = await waitFor(`http://127.0.0.1:${adminPort}/readyz`, 200, 5_000);
    assert.deepEqual(((await ready.json()) as { routes: unknown }).routes, [
      { name: 'sip-signaling', upstream_resolved: true },
    ]);

    const load = new LoadGenerator({
      target: { transport: 'udp', host: '127.0.0.1', port: sipPort },
      host: '127.0.0.1',
      rate: 50,
      calls: 25,
      holdMs: 10,
    });
    const results = await load.run();
    assert.equal(results.filter((c) => c.result === 'answered').length, 25);

    const t0 = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    assert.equal(code, 0, stderr);
    assert.ok(performance.now() - t0 < 6000, 'drain took longer than the drain deadline');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await uas.stop();
  }
});
