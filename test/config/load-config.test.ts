import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.ts';
import { buildConfig, loadConfig, parseConfigText } from '../../src/config/load-config.ts';

const ISSUE_EXAMPLE = `
node: node-a
admin: 127.0.0.1:13000
routes:
  - name: sip-gateway
    listen: [udp://0.0.0.0:5060, tcp://0.0.0.0:5060]
    upstream: udp://sip-gateway:5060
    metrics: 0.0.0.0:13012
    record_route: true
    trust_trace_headers: true
  - name: sip-signaling
    listen: [udp://0.0.0.0:5062]
    upstream: udp://sip-signaling:5060
    metrics: 0.0.0.0:13022
`;

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    assert.equal(err.code, 'SIPSPAN_ERR_CONFIG_INVALID');
    return [...err.problems];
  }
  assert.fail('the configuration was accepted');
}

describe('configuration', () => {
  test('the documented example loads with defaults filled in and the result frozen', () => {
    const c = buildConfig(parseConfigText(ISSUE_EXAMPLE));
    assert.equal(c.node, 'node-a');
    assert.equal(c.routes.length, 2);
    assert.deepEqual(c.routes[0].listen[1], { transport: 'tcp', host: '0.0.0.0', port: 5060, family: 4 });
    assert.deepEqual(c.routes[0].upstream, { transport: 'udp', host: 'sip-gateway', port: 5060, family: 0 });
    assert.equal(c.routes[1].record_route, true);
    assert.equal(c.limits.max_transactions, 100_000);
    assert.equal(c.timers.t1_ms, 500);
    assert.equal(c.logs.destination, 'stdout');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.routes[0]) && Object.isFrozen(c.limits));
  });

  test('IPv6 endpoints are bracketed and parsed to family 6', () => {
    const c = buildConfig({
      routes: [{ name: 'r', listen: ['udp://[::1]:5062'], upstream: 'tcp://[2001:db8::1]:5060' }],
    });
    assert.deepEqual(c.routes[0].listen[0], { transport: 'udp', host: '::1', port: 5062, family: 6 });
    assert.equal(c.routes[0].upstream.family, 6);
  });

  test('every problem is reported with its path, not just the first', () => {
    const problems = problemsOf(() =>
      buildConfig(
        parseConfigText(
          'routes:\n  - name: x\n    listen: [udp://1.2.3.4]\n    upstream: foo\n    bogus: 1\nlimits: {tcp_idle_ms: -1}\n',
        ),
      ),
    );
    const paths = problems.map((p) => p.path).sort();
    assert.deepEqual(paths, ['limits.tcp_idle_ms', 'routes[0]', 'routes[0].listen[0]', 'routes[0].upstream']);
    assert.match(problems.find((p) => p.path === 'routes[0]')!.message, /bogus/);
  });

  test('unknown top-level keys are errors', () => {
    const problems = problemsOf(() =>
      buildConfig({
        routes: [{ name: 'r', listen: ['udp://127.0.0.1:1'], upstream: 'udp://127.0.0.1:2' }],
        rotues: [],
      }),
    );
    assert.equal(problems[0].path, '');
    assert.match(problems[0].message, /rotues/);
  });

  test('duplicate route names, listeners and metrics ports are refused', () => {
    const problems = problemsOf(() =>
      buildConfig({
        routes: [
          {
            name: 'a',
            listen: ['udp://127.0.0.1:5060'],
            upstream: 'udp://127.0.0.1:1',
            metrics: '127.0.0.1:13012',
          },
          {
            name: 'a',
            listen: ['udp://127.0.0.1:5060'],
            upstream: 'udp://127.0.0.1:2',
            metrics: '127.0.0.1:13012',
          },
        ],
      }),
    );
    assert.deepEqual(problems.map((p) => p.path).sort(), [
      'routes[1].listen[0]',
      'routes[1].metrics',
      'routes[1].name',
    ]);
  });

  test('a listener may take any free port (0); an upstream may not', () => {
    const c = buildConfig({
      routes: [
        { name: 'a', listen: ['udp://127.0.0.1:0', 'tcp://127.0.0.1:0'], upstream: 'udp://127.0.0.1:5060' },
        { name: 'b', listen: ['udp://127.0.0.1:0'], upstream: 'udp://127.0.0.1:5062' },
      ],
    });
    assert.deepEqual(
      c.routes.flatMap((r) => r.listen.map((l) => l.port)),
      [0, 0, 0],
      'port 0 twice is no conflict: each listener is given its own',
    );
    const problems = problemsOf(() =>
      buildConfig({ routes: [{ name: 'a', listen: ['udp://127.0.0.1:0'], upstream: 'udp://127.0.0.1:0' }] }),
    );
    assert.deepEqual(problems, [{ path: 'routes[0].upstream', message: 'port 0 is out of range 1-65535' }]);
  });

  test('a UDP upstream needs a UDP listener of its family on the route, which sends from it', () => {
    const problems = problemsOf(() =>
      buildConfig({
        routes: [
          { name: 'a', listen: ['tcp://127.0.0.1:5060'], upstream: 'udp://127.0.0.1:5070' },
          { name: 'b', listen: ['udp://127.0.0.1:5062'], upstream: 'udp://[::1]:5072' },
          { name: 'c', listen: ['tcp://127.0.0.1:5064'], upstream: 'udp://sip-signaling:5060' },
        ],
      }),
    );
    assert.deepEqual(problems, [
      {
        path: 'routes[0].upstream',
        message:
          'a UDP upstream needs a UDP listener of IPv4 on the route: sipspan sends from the address it listens on',
      },
      {
        path: 'routes[1].upstream',
        message:
          'a UDP upstream needs a UDP listener of IPv6 on the route: sipspan sends from the address it listens on',
      },
      {
        path: 'routes[2].upstream',
        message:
          'a UDP upstream needs a UDP listener on the route: sipspan sends from the address it listens on',
      },
    ]);
    // TCP out needs no listener of its kind (connections leave from ephemeral ports); a name matches either family.
    buildConfig({
      routes: [
        { name: 'a', listen: ['udp://127.0.0.1:5060'], upstream: 'tcp://127.0.0.1:5070' },
        { name: 'b', listen: ['udp://[::1]:5062'], upstream: 'udp://sip-signaling:5060' },
      ],
    });
  });

  test('a second UDP listener of one IP family on a route is refused, not silently left unbound', () => {
    const problems = problemsOf(() =>
      buildConfig({
        routes: [
          {
            name: 'a',
            listen: [
              'udp://127.0.0.1:5060',
              'udp://[::1]:5060',
              'tcp://127.0.0.1:5060',
              'udp://127.0.0.2:5060',
            ],
            upstream: 'udp://127.0.0.1:1',
          },
        ],
      }),
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['routes[0].listen[3]'],
    );
    assert.match(problems[0].message, /one UDP address per IP family/);
  });

  test('the heap guard limits must be ordered', () => {
    const problems = problemsOf(() =>
      buildConfig({
        routes: [{ name: 'a', listen: ['udp://127.0.0.1:5060'], upstream: 'udp://127.0.0.1:1' }],
        limits: { heap_soft_limit_mb: 2000, heap_hard_limit_mb: 1000 },
      }),
    );
    assert.equal(problems[0].path, 'limits.heap_soft_limit_mb');
  });

  test('environment overrides the file and flags override the environment', () => {
    const raw = parseConfigText(ISSUE_EXAMPLE);
    const env = { SIPSPAN_NODE: 'from-env', SIPSPAN_LOG_LEVEL: 'warn' };
    assert.equal(buildConfig(raw, {}, env).node, 'from-env');
    assert.equal(buildConfig(raw, {}, env).logs.level, 'warn');
    assert.equal(buildConfig(raw, { node: 'from-flag' }, env).node, 'from-flag');
  });

  test('flags alone describe one route', () => {
    const c = buildConfig(
      {},
      {
        name: 'svc',
        listen: ['udp://127.0.0.1:5060', 'tcp://127.0.0.1:5060'],
        upstream: 'udp://127.0.0.1:5070',
      },
      {},
    );
    assert.equal(c.routes.length, 1);
    assert.equal(c.routes[0].name, 'svc');
    assert.equal(c.routes[0].listen.length, 2);
  });

  test('a file that is not YAML, or not a mapping, is a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipspan-config-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'routes: [unclosed\n');
    await assert.rejects(loadConfig(bad, {}, {}), (err: ConfigError) => /not valid YAML/.test(err.message));
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- a\n- b\n');
    await assert.rejects(loadConfig(list, {}, {}), (err: ConfigError) => /mapping/.test(err.message));
    await assert.rejects(loadConfig(join(dir, 'missing.yaml'), {}, {}), (err: ConfigError) =>
      /cannot read/.test(err.message),
    );
  });
});
