import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { SinkSetResult } from '../../bench/alloc-per-call.ts';

const root = join(import.meta.dirname, '..', '..');
const script = join(root, 'bench', 'alloc-per-call.ts');

test('npm run bench:alloc counts the bytes a call allocates, by site, with telemetry off and all on', () => {
  const r = spawnSync(
    process.execPath,
    [script, '--calls', '400', '--warmup', '200', '--rate', '400', '--top', '40', '--json'],
    { encoding: 'utf8', timeout: 90_000, killSignal: 'SIGTERM' },
  );
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr.slice(-3000)}`);
  const { results } = JSON.parse(r.stdout) as { results: SinkSetResult[] };
  assert.deepEqual(
    results.map((x) => x.sinks),
    ['off', 'all'],
  );
  for (const x of results) {
    assert.equal(x.failed, 0, x.sinks);
    assert.equal(x.calls, 400, x.sinks);
    assert.ok(x.bytesPerCall > 0, x.sinks);
    // Sites are sipspan's own code, or Node's named with the sipspan function that asked.
    assert.ok(
      x.sites.some((s) => / src\/wire\//.test(s.site)),
      `${x.sinks}: no wire-layer site in ${x.sites.map((s) => s.site).join(', ')}`,
    );
  }
  const [off, all] = results;
  // Spans and log lines are built only with telemetry on.
  assert.ok(all.sites.some((s) => /src\/sinks\/tracing\//.test(s.site)));
  assert.ok(!off.sites.some((s) => /src\/sinks\/tracing\//.test(s.site)));
  assert.ok(all.bytesPerCall > off.bytesPerCall);
});

test('npm run bench:alloc refuses an unknown sink set with its usage', () => {
  const r = spawnSync(process.execPath, [script, '--sinks', 'off,some'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: npm run bench:alloc/);
});
