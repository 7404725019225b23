import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { WakeCostRow } from '../../bench/wake-cost.ts';

const root = join(import.meta.dirname, '..', '..');

test('npm run bench:wake measures the relay at each hold and sipspan beside it, in paired rounds', () => {
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'bench', 'wake-cost.ts'),
      '--holds',
      '0,20',
      '--rate',
      '500',
      '--rounds',
      '1',
      '--seconds',
      '4',
      '--warmup-seconds',
      '1',
      '--json',
    ],
    { encoding: 'utf8', timeout: 90_000, killSignal: 'SIGTERM' },
  );
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr.slice(-3000)}`);
  const out = JSON.parse(r.stdout) as { rate: number; messagesPerCall: number; rows: WakeCostRow[] };
  assert.equal(out.rate, 500);
  assert.deepEqual(
    out.rows.map((x) => [x.box, x.holdUs]),
    [
      ['relay, hold 0 µs', 0],
      ['relay, hold 20 µs', 20],
      ['sipspan, telemetry off', null],
    ],
  );
  for (const row of out.rows) {
    assert.ok(row.cpuPerCallUs !== null && row.cpuPerCallUs > 0, `${row.box}: no CPU figure`);
    assert.ok(row.systemPerCallUs !== null && row.systemPerCallUs <= row.cpuPerCallUs, row.box);
  }
  // What the hold costs is the tool's measurement, not this test's: on a loaded machine one short round
  // can read anything. The test checks that each box ran and that the columns follow from each other.
  const [base, held, sipspan] = out.rows;
  assert.equal(base.beyondHoldUs, 0);
  assert.equal(sipspan.beyondHoldUs, null);
  assert.equal(held.beyondHoldUs, Math.round((held.cpuPerCallUs! - base.cpuPerCallUs! - 120) * 10) / 10);
});

test('npm run bench:wake refuses a negative hold with its usage', () => {
  const r = spawnSync(process.execPath, [join(root, 'bench', 'wake-cost.ts'), '--holds', '0,-5'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: npm run bench:wake/);
});
