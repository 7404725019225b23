import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';

const root = join(import.meta.dirname, '..', '..');

test('npm run bench:observer times one call with the tables in their steady state', () => {
  const r = spawnSync(process.execPath, [join(root, 'bench', 'observer-call.ts')], {
    encoding: 'utf8',
    timeout: 60_000,
    killSignal: 'SIGTERM',
  });
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr.slice(-3000)}`);
  // 5 s of ended transactions at 2000 calls/s (three a call) linger; every call and transaction ended.
  assert.match(r.stderr, /^steady state: 0 open, 30000 ended lingering, 0 calls$/m);
  assert.match(
    stripVTControlCharacters(r.stdout),
    /one call: 3 requests, 3 responses.*\d+(\.\d+)? [µn]s\/iter/,
  );
});
