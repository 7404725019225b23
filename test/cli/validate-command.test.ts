import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'sipspan');

test('sipspan validate prints every error with its path and exits 1; a valid file exits 0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-validate-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'routes:\n  - name: gw\n    listen: [udp://0.0.0.0]\n    upstream: sip-gateway\n');
  const r = spawnSync(bin, ['validate', '--config', bad], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^routes\[0\]\.listen\[0\]: /m);
  assert.match(r.stderr, /^routes\[0\]\.upstream: /m);

  const good = join(dir, 'good.yaml');
  writeFileSync(
    good,
    'routes:\n  - name: gw\n    listen: [udp://0.0.0.0:5060]\n    upstream: udp://sip-gateway:5060\n',
  );
  const ok = spawnSync(bin, ['validate', '--config', good], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /valid \(1 route: gw\)/);
});

test('sipspan with an unknown command prints the usage and exits 2', () => {
  const r = spawnSync(bin, ['frobnicate'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: sipspan/);
});
