import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');
const script = join(root, 'bench', 'alternate.ts');

interface Row {
  rate: number;
  a: number[];
  b: number[];
  medianA: number;
  medianB: number;
  ratio: number;
  roundRatios: (number | null)[];
  medianOfRoundRatios: number;
}

test('npm run bench:ab alternates two boxes round by round and gives each its CPU per call and each round its ratio', () => {
  const r = spawnSync(
    process.execPath,
    [
      script,
      '--boxes',
      'sipspan-off,relay',
      '--rates',
      '300',
      '--rounds',
      '2',
      '--seconds',
      '1',
      '--warmup-calls',
      '300',
      '--json',
    ],
    { cwd: root, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGTERM' },
  );
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr.slice(-3000)}`);
  const out = JSON.parse(r.stdout) as { sides: { name: string; box: string }[]; rows: Row[] };
  assert.deepEqual(
    out.sides.map((s) => `${s.name} ${s.box}`),
    ['A sipspan-off', 'B relay'],
  );
  assert.equal(out.rows.length, 1);
  const [row] = out.rows;
  assert.equal(row.rate, 300);
  for (const runs of [row.a, row.b]) {
    assert.equal(runs.length, 2);
    for (const us of runs) assert.ok(us > 0 && Number.isFinite(us), `${us} µs per call`);
  }
  assert.ok(row.medianA > 0 && row.medianB > 0);
  assert.equal(row.ratio, row.medianB / row.medianA);
  // Each round's B over the A run beside it, and their median (nearest rank: of two, the lower).
  assert.deepEqual(
    row.roundRatios,
    row.a.map((a, k) => Math.round((row.b[k] / a) * 100) / 100),
  );
  assert.equal(row.medianOfRoundRatios, Math.min(...(row.roundRatios as number[])));
  // Round by round, in turn: the log shows A and B alternating, B first in the second round.
  const order = [...r.stderr.matchAll(/round (\d): (.*) µs\/call/g)].flatMap((m) =>
    m[2].split(', ').map((part) => `${m[1]}${part.split(' ')[0]}`),
  );
  assert.deepEqual(order, ['1A', '1B', '2B', '2A']);
});

test('npm run bench:ab refuses a third box with its usage', () => {
  const r = spawnSync(process.execPath, [script, '--boxes', 'relay,relay,relay'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: npm run bench:ab/);
});
