import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { IdleCostRow } from '../../bench/idle-cost.ts';

const script = join(import.meta.dirname, '..', '..', 'bench', 'idle-cost.ts');

test('npm run bench:idle watches each box with no traffic and gives its CPU and wake-ups per second', () => {
  const r = spawnSync(process.execPath, [script, '--boxes', 'relay,sipspan-on', '--seconds', '1', '--json'], {
    encoding: 'utf8',
    timeout: 90_000,
    killSignal: 'SIGTERM',
  });
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr.slice(-3000)}`);
  const out = JSON.parse(r.stdout) as { seconds: number; rows: IdleCostRow[] };
  assert.equal(out.seconds, 1);
  assert.deepEqual(
    out.rows.map((row) => row.box),
    ['relay', 'sipspan-on'],
  );
  // The figures are the tool's measurement: on a loaded machine one second can read anything.
  for (const row of out.rows) {
    assert.ok(Number.isFinite(row.cpuMsPerS) && row.cpuMsPerS >= 0, `${row.box}: ${row.cpuMsPerS}`);
    assert.ok(Number.isFinite(row.wakeupsPerS) && row.wakeupsPerS >= 0, `${row.box}: ${row.wakeupsPerS}`);
  }
});

test('npm run bench:idle refuses a box it does not know with its usage', () => {
  const r = spawnSync(process.execPath, [script, '--boxes', 'relay,asterisk'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: npm run bench:idle/);
});
