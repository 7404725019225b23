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

test('sipspan validate refuses listeners that would share a port, which run would fail to bind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-validate-'));
  const file = join(dir, 'clash.yaml');
  writeFileSync(
    file,
    [
      'admin: 127.0.0.1:31000',
      'routes:',
      '  - name: a',
      '    listen: [udp://127.0.0.1:31060, tcp://127.0.0.1:31001]',
      '    upstream: udp://127.0.0.1:5070',
      '    metrics: 0.0.0.0:31000',
      '  - name: b',
      '    listen: [udp://0.0.0.0:31060]',
      '    upstream: udp://127.0.0.1:5072',
      '    metrics: localhost:31001',
      '',
    ].join('\n'),
  );
  const r = spawnSync(bin, ['validate', '--config', file], { encoding: 'utf8', env: envWithout('SIPSPAN_') });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(
    r.stderr,
    [
      'routes[0].metrics: 0.0.0.0:31000 collides with 127.0.0.1:31000, already used by admin',
      'routes[1].listen[0]: udp://0.0.0.0:31060 collides with udp://127.0.0.1:31060, already used by routes[0].listen[0]',
      'routes[1].metrics: localhost:31001 collides with tcp://127.0.0.1:31001, already used by routes[0].listen[1]',
      '',
    ].join('\n'),
  );
});

test('sipspan validate names an unknown key by its own path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-validate-'));
  const file = join(dir, 'typo.yaml');
  writeFileSync(
    file,
    'bogus: 1\nroutes:\n  - name: gw\n    listen: [udp://0.0.0.0:5060]\n    upstream: udp://sip-gateway:5060\n    metrcs: 0.0.0.0:13012\n',
  );
  const r = spawnSync(bin, ['validate', '--config', file], { encoding: 'utf8', env: envWithout('SIPSPAN_') });
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(r.stderr.trim().split('\n').sort(), [
    'bogus: unknown key',
    'routes[0].metrcs: unknown key (did you mean "metrics"?)',
  ]);
});

test('sipspan validate names the environment variable a bad value came from', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-validate-'));
  const good = join(dir, 'good.yaml');
  writeFileSync(
    good,
    'routes:\n  - name: gw\n    listen: [udp://0.0.0.0:5060]\n    upstream: udp://sip-gateway:5060\n',
  );
  const r = spawnSync(bin, ['validate', '--config', good], {
    encoding: 'utf8',
    env: { ...envWithout('SIPSPAN_'), SIPSPAN_ADMIN: 'nonsense', SIPSPAN_LOG_LEVEL: 'loud' },
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^admin \(from SIPSPAN_ADMIN\): expected host:port .*"nonsense"$/m);
  assert.match(r.stderr, /^logs\.level \(from SIPSPAN_LOG_LEVEL\): /m);
});

test('sipspan run with --upstream but no --listen names the missing flag and binds nothing', () => {
  const r = spawnSync(bin, ['run', '--upstream', 'udp://127.0.0.1:5070'], {
    encoding: 'utf8',
    env: envWithout('SIPSPAN_'),
    timeout: 15_000,
  });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, '--listen: required with --upstream (give at least one listener URI)\n');
});

/** The environment of this process without the variables that would override the config under test. */
function envWithout(prefix: string): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith(prefix)));
}

test('sipspan with an unknown command prints the usage and exits 2', () => {
  const r = spawnSync(bin, ['frobnicate'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: sipspan/);
});

test('sipspan validate refuses the OTEL_* environment a start would refuse, naming each variable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-validate-'));
  const good = join(dir, 'good.yaml');
  writeFileSync(
    good,
    'routes:\n  - name: gw\n    listen: [udp://0.0.0.0:5060]\n    upstream: udp://sip-gateway:5060\n',
  );
  const env = { ...envWithout('OTEL_'), OTEL_TRACES_EXPORTER: 'jaeger', OTEL_TRACES_SAMPLER: 'sometimes' };
  const r = spawnSync(bin, ['validate', '--config', good], { encoding: 'utf8', env });
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(
    r.stderr
      .trim()
      .split('\n')
      .map((l) => l.slice(0, l.indexOf(':'))),
    ['OTEL_TRACES_SAMPLER', 'OTEL_TRACES_EXPORTER'],
  );
  const fine = spawnSync(bin, ['validate', '--config', good], {
    encoding: 'utf8',
    env: {
      ...envWithout('OTEL_'),
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_TRACES_SAMPLER: 'traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.1',
    },
  });
  assert.equal(fine.status, 0, fine.stderr);
});
