import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');

test('npm run bench -- --short runs every path and reports a complete JSON result', () => {
  const r = spawnSync(
    join(root, 'node_modules', 'node', 'bin', 'node'),
    [join(root, 'bench', 'run.ts'), '--short', '--json'],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    machine: { pinning: string };
    results: {
      name: string;
      maxRate: number;
      cpuPerCallUs: Record<string, number>;
      addedLatencyMs: Record<string, unknown>;
    }[];
  };
  assert.match(report.machine.pinning, /core 0.*core 1/);
  const names = report.results.map((x) => x.name);
  assert.deepEqual(names, ['direct (SIPp → SIPp)', 'sipspan, telemetry off', 'sipspan, all telemetry on']);
  for (const x of report.results) assert.ok(x.maxRate > 0, `${x.name}: calls failed at the short rate`);
  for (const x of report.results.slice(1)) {
    assert.ok(x.cpuPerCallUs['200'] > 0, `${x.name}: no CPU figure`);
    assert.ok(x.addedLatencyMs['200'] !== undefined, `${x.name}: no latency figure`);
  }
});
