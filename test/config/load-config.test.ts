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
    assert.deepEqual(paths, [
      'limits.tcp_idle_ms',
      'routes[0].bogus',
      'routes[0].listen[0]',
      'routes[0].upstream',
    ]);
    assert.equal(problems.find((p) => p.path === 'routes[0].bogus')!.message, 'unknown key');
  });

  test('unknown top-level keys are errors, named by their own path', () => {
    const problems = problemsOf(() =>
      buildConfig({
        routes: [{ name: 'r', listen: ['udp://127.0.0.1:1'], upstream: 'udp://127.0.0.1:2' }],
        rotues: [],
      }),
    );
    assert.deepEqual(problems, [{ path: 'rotues', message: 'unknown key (did you mean "routes"?)' }]);
  });

  test('each unknown key is its own problem at its own path, with the closest known key when one is near', () => {
    const problems = problemsOf(() =>
      buildConfig({
        bogus: 1,
        routes: [{ name: 'r', listen: ['udp://127.0.0.1:1'], upstream: 'udp://127.0.0.1:2', metrcs: 'x' }],
        limits: { tcp_idel_ms: 1, zzz: 2 },
        logs: { levle: 'info' },
      }),
    );
    assert.deepEqual(
      problems.sort((a, b) => a.path.localeCompare(b.path)),
      [
        { path: 'bogus', message: 'unknown key' },
        { path: 'limits.tcp_idel_ms', message: 'unknown key (did you mean "tcp_idle_ms"?)' },
        { path: 'limits.zzz', message: 'unknown key' },
        { path: 'logs.levle', message: 'unknown key (did you mean "level"?)' },
        { path: 'routes[0].metrcs', message: 'unknown key (did you mean "metrics"?)' },
      ],
    );
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

  test('a wildcard listener collides with a specific address of its family on the same port, in either order', () => {
    const routes = (first: string, second: string) => [
      { name: 'a', listen: [first], upstream: 'udp://127.0.0.1:5070' },
      { name: 'b', listen: [second], upstream: 'udp://127.0.0.1:5072' },
    ];
    assert.deepEqual(
      problemsOf(() =>
        buildConfig({ routes: routes('udp://127.0.0.1:31060', 'udp://0.0.0.0:31060') }, {}, {}),
      ),
      [
        {
          path: 'routes[1].listen[0]',
          message:
            'udp://0.0.0.0:31060 collides with udp://127.0.0.1:31060, already used by routes[0].listen[0]',
        },
      ],
    );
    assert.deepEqual(
      problemsOf(() =>
        buildConfig({ routes: routes('udp://0.0.0.0:31060', 'udp://127.0.0.1:31060') }, {}, {}),
      ).map((p) => p.path),
      ['routes[1].listen[0]'],
    );
    const v6 = problemsOf(() =>
      buildConfig(
        {
          routes: [
            { name: 'a', listen: ['tcp://[::1]:31060'], upstream: 'tcp://[::1]:5070' },
            { name: 'b', listen: ['tcp://[0:0::0]:31060'], upstream: 'tcp://[::1]:5072' },
          ],
        },
        {},
        {},
      ),
    );
    assert.deepEqual(
      v6.map((p) => p.path),
      ['routes[1].listen[0]'],
      'any spelling of :: is the IPv6 wildcard',
    );
  });

  test('the IPv6 wildcard of a SIP listener is IPv6-only; that of an HTTP listener takes IPv4 too', () => {
    // SIP sockets bind IPv6 addresses with IPV6_V6ONLY: a route may listen on 0.0.0.0 and [::] at once.
    buildConfig(
      {
        admin: '127.0.0.1:0',
        routes: [
          {
            name: 'a',
            listen: ['udp://0.0.0.0:31060', 'udp://[::]:31060', 'tcp://0.0.0.0:31060', 'tcp://[::]:31060'],
            upstream: 'udp://127.0.0.1:5070',
          },
        ],
      },
      {},
      {},
    );
    // node:http listens on :: dual-stack: it takes the IPv4 port as well (any IPv4 address, SIP TCP or HTTP).
    const problems = problemsOf(() =>
      buildConfig(
        {
          admin: '[::]:31000',
          routes: [
            {
              name: 'a',
              listen: ['udp://127.0.0.1:31000', 'tcp://127.0.0.1:31000'],
              upstream: 'udp://127.0.0.1:5070',
              metrics: '127.0.0.2:31000',
            },
          ],
        },
        {},
        {},
      ),
    );
    assert.deepEqual(problems, [
      {
        path: 'routes[0].listen[1]',
        message: 'tcp://127.0.0.1:31000 collides with [::]:31000, already used by admin',
      },
      {
        path: 'routes[0].metrics',
        message: '127.0.0.2:31000 collides with [::]:31000, already used by admin',
      },
    ]);
  });

  test('the admin listener and a route metrics listener collide across wildcard and specific addresses', () => {
    const problems = problemsOf(() =>
      buildConfig(
        {
          admin: '127.0.0.1:31000',
          routes: [
            {
              name: 'a',
              listen: ['udp://127.0.0.1:5060'],
              upstream: 'udp://127.0.0.1:5070',
              metrics: '0.0.0.0:31000',
            },
          ],
        },
        {},
        {},
      ),
    );
    assert.deepEqual(problems, [
      {
        path: 'routes[0].metrics',
        message: '0.0.0.0:31000 collides with 127.0.0.1:31000, already used by admin',
      },
    ]);
  });

  test('SIP TCP listeners share the port space of the HTTP listeners; UDP ones do not', () => {
    const config = (admin: string, metrics: string) => ({
      admin,
      routes: [
        {
          name: 'a',
          listen: ['udp://127.0.0.1:31001', 'tcp://127.0.0.1:31001'],
          upstream: 'udp://127.0.0.1:5070',
          metrics,
        },
      ],
    });
    assert.deepEqual(
      problemsOf(() => buildConfig(config('127.0.0.1:13000', '127.0.0.1:31001'), {}, {})),
      [
        {
          path: 'routes[0].metrics',
          message: '127.0.0.1:31001 collides with tcp://127.0.0.1:31001, already used by routes[0].listen[1]',
        },
      ],
    );
    assert.deepEqual(
      problemsOf(() => buildConfig(config('localhost:31001', '127.0.0.1:13012'), {}, {})),
      [
        {
          path: 'routes[0].listen[1]',
          message: 'tcp://127.0.0.1:31001 collides with localhost:31001, already used by admin',
        },
      ],
    );
    // UDP and TCP on one port do not collide.
    buildConfig(
      {
        admin: '127.0.0.1:31002',
        routes: [{ name: 'a', listen: ['udp://127.0.0.1:31002'], upstream: 'udp://127.0.0.1:5070' }],
      },
      {},
      {},
    );
  });

  test('localhost is 127.0.0.1 (and ::1 over TCP) for collisions, without being resolved', () => {
    const paths = (listen: string[][]) =>
      problemsOf(() =>
        buildConfig(
          {
            admin: '127.0.0.1:0',
            routes: listen.map((l, i) => ({ name: `r${i}`, listen: l, upstream: 'tcp://127.0.0.1:5070' })),
          },
          {},
          {},
        ),
      ).map((p) => p.path);
    assert.deepEqual(paths([['udp://127.0.0.1:31003'], ['udp://localhost:31003']]), ['routes[1].listen[0]']);
    assert.deepEqual(paths([['tcp://LOCALHOST:31003'], ['tcp://[::1]:31003']]), ['routes[1].listen[0]']);
    assert.deepEqual(paths([['udp://0.0.0.0:31003'], ['udp://localhost:31003']]), ['routes[1].listen[0]']);
    // A UDP listener on a name is an IPv4 socket: localhost there is never ::1.
    buildConfig(
      {
        routes: [
          { name: 'a', listen: ['udp://localhost:31003'], upstream: 'tcp://127.0.0.1:5070' },
          { name: 'b', listen: ['udp://[::1]:31003'], upstream: 'tcp://127.0.0.1:5070' },
        ],
      },
      {},
      {},
    );
  });

  test('different addresses of a family, UDP beside TCP, and port 0 never collide', () => {
    buildConfig(
      {
        admin: '0.0.0.0:0',
        routes: [
          {
            name: 'a',
            listen: ['udp://127.0.0.1:31004', 'tcp://127.0.0.1:31004'],
            upstream: 'udp://127.0.0.1:5070',
            metrics: '127.0.0.2:31004',
          },
          {
            name: 'b',
            listen: ['udp://0.0.0.0:0', 'tcp://0.0.0.0:0'],
            upstream: 'udp://127.0.0.1:5072',
            metrics: '0.0.0.0:0',
          },
        ],
      },
      {},
      {},
    );
  });

  test('a listener colliding with several is reported once, naming the first', () => {
    const problems = problemsOf(() =>
      buildConfig(
        {
          routes: [
            { name: 'a', listen: ['udp://127.0.0.1:31005'], upstream: 'udp://127.0.0.1:5070' },
            { name: 'b', listen: ['udp://127.0.0.2:31005'], upstream: 'udp://127.0.0.1:5072' },
            { name: 'c', listen: ['udp://0.0.0.0:31005'], upstream: 'udp://127.0.0.1:5074' },
          ],
        },
        {},
        {},
      ),
    );
    assert.deepEqual(problems, [
      {
        path: 'routes[2].listen[0]',
        message:
          'udp://0.0.0.0:31005 collides with udp://127.0.0.1:31005, already used by routes[0].listen[0]',
      },
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

  test('a heap guard limit left auto is ordered with the share of the heap it comes to', () => {
    const problems = problemsOf(() =>
      buildConfig({
        routes: [{ name: 'a', listen: ['udp://127.0.0.1:5060'], upstream: 'udp://127.0.0.1:1' }],
        limits: { heap_soft_limit_mb: 1_000_000 },
      }),
    );
    assert.equal(problems[0].path, 'limits.heap_soft_limit_mb');
    assert.match(problems[0].message, /1000000 against auto \(\d+ MiB here\)/);
    const ok = buildConfig({
      routes: [{ name: 'a', listen: ['udp://127.0.0.1:5060'], upstream: 'udp://127.0.0.1:1' }],
    });
    assert.equal(ok.limits.heap_soft_limit_mb, 'auto');
    assert.equal(ok.limits.heap_hard_limit_mb, 'auto');
  });

  test('environment overrides the file and flags override the environment', () => {
    const raw = parseConfigText(ISSUE_EXAMPLE);
    const env = { SIPSPAN_NODE: 'from-env', SIPSPAN_LOG_LEVEL: 'warn' };
    assert.equal(buildConfig(raw, {}, env).node, 'from-env');
    assert.equal(buildConfig(raw, {}, env).logs.level, 'warn');
    assert.equal(buildConfig(raw, { node: 'from-flag' }, env).node, 'from-flag');
  });

  test('a bad value from an environment variable names the variable beside the key', () => {
    const raw = parseConfigText(ISSUE_EXAMPLE);
    assert.deepEqual(
      problemsOf(() => buildConfig(raw, {}, { SIPSPAN_ADMIN: 'nonsense', SIPSPAN_LOG_LEVEL: 'loud' })).map(
        (p) => p.path,
      ),
      ['admin (from SIPSPAN_ADMIN)', 'logs.level (from SIPSPAN_LOG_LEVEL)'],
    );
    const [admin] = problemsOf(() => buildConfig(raw, {}, { SIPSPAN_ADMIN: 'nonsense' }));
    assert.equal(
      new ConfigError([admin]).message,
      'admin (from SIPSPAN_ADMIN): expected host:port (IPv6 as [addr]:port), got "nonsense"',
    );
    // The same key from the file keeps its plain path.
    assert.deepEqual(
      problemsOf(() => buildConfig({ ...raw, admin: 'nonsense' }, {}, {})).map((p) => p.path),
      ['admin'],
    );
  });

  test('a bad value from a flag names the flag, which wins over the environment', () => {
    const raw = parseConfigText(ISSUE_EXAMPLE);
    const problems = problemsOf(() =>
      buildConfig(
        raw,
        { admin: 'nonsense', node: '', logLevel: 'loud' },
        { SIPSPAN_ADMIN: 'also-nonsense', SIPSPAN_NODE: 'from-env' },
      ),
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['--node', '--admin', '--log-level'],
    );
    assert.match(problems[1].message, /^expected host:port .*got "nonsense"$/);
  });

  test('a route from flags names the flag of each bad value', () => {
    const problems = problemsOf(() =>
      buildConfig(
        { routes: [{ name: 'file', listen: ['udp://127.0.0.1:5060'], upstream: 'udp://127.0.0.1:5070' }] },
        { name: '9bad', listen: ['udp://1.2.3.4'], upstream: 'sip-gateway', metrics: 'nope' },
        {},
      ),
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['--name', '--listen', '--upstream', '--metrics'],
    );
    // With several --listen, the one at fault is named by its value.
    const second = problemsOf(() =>
      buildConfig(
        {},
        { listen: ['udp://127.0.0.1:5060', 'udp://127.0.0.2:5060'], upstream: 'udp://127.0.0.1:5070' },
        {},
      ),
    );
    assert.deepEqual(
      second.map((p) => p.path),
      ['--listen udp://127.0.0.2:5060'],
    );
  });

  test('--upstream without --listen, or --listen without --upstream, names the missing flag', () => {
    assert.deepEqual(
      problemsOf(() => buildConfig({}, { upstream: 'udp://127.0.0.1:5070' }, {})),
      [{ path: '--listen', message: 'required with --upstream (give at least one listener URI)' }],
    );
    assert.deepEqual(
      problemsOf(() => buildConfig({}, { listen: ['udp://127.0.0.1:5060'] }, {})),
      [{ path: '--upstream', message: 'required with --listen (give the upstream URI)' }],
    );
    // Other problems are still reported with it.
    assert.deepEqual(
      problemsOf(() => buildConfig({}, { listen: ['udp://127.0.0.1'], admin: 'x' }, {})).map((p) => p.path),
      ['--upstream', '--admin', '--listen'],
    );
  });

  test('a collision names the flag or variable that set the other listener', () => {
    const problems = problemsOf(() =>
      buildConfig(
        {},
        { listen: ['udp://127.0.0.1:31006', 'tcp://0.0.0.0:31006'], upstream: 'udp://127.0.0.1:5070' },
        { SIPSPAN_ADMIN: '127.0.0.1:31006' },
      ),
    );
    assert.deepEqual(problems, [
      {
        path: '--listen tcp://0.0.0.0:31006',
        message:
          'tcp://0.0.0.0:31006 collides with 127.0.0.1:31006, already used by admin (from SIPSPAN_ADMIN)',
      },
    ]);
  });

  test('advertise is host[:port], IPv6 in brackets: a bare IPv6 address or a bad port is refused', () => {
    const route = (advertise: string) => ({
      routes: [{ name: 'r', listen: ['udp://[::1]:5060'], upstream: 'udp://[::1]:5070', advertise }],
    });
    for (const good of [
      'sipspan',
      'sipspan:5060',
      '10.0.0.1',
      '10.0.0.1:5070',
      '[::1]',
      '[2001:db8::1]:5060',
    ])
      assert.equal(buildConfig(route(good)).routes[0].advertise, good);
    assert.deepEqual(
      problemsOf(() => buildConfig(route('::1:30060'))),
      [
        {
          path: 'routes[0].advertise',
          message: 'expected host or host:port (IPv6 as [addr] or [addr]:port), got "::1:30060"',
        },
      ],
    );
    assert.deepEqual(
      problemsOf(() => buildConfig(route('[::1:30060]'))).map((p) => p.message),
      ['"::1:30060" is not an IPv6 address'],
    );
    assert.deepEqual(
      problemsOf(() => buildConfig(route('sipspan:0'))).map((p) => p.message),
      ['port 0 is out of range 1-65535'],
    );
  });

  test("an upstream that is the route's own listener is refused: every request would loop", () => {
    for (const listen of ['udp://127.0.0.1:30500', 'udp://0.0.0.0:30500']) {
      assert.deepEqual(
        problemsOf(() =>
          buildConfig({ routes: [{ name: 'r', listen: [listen], upstream: 'udp://127.0.0.1:30500' }] }),
        ),
        [
          {
            path: 'routes[0].upstream',
            message:
              "udp://127.0.0.1:30500 is this route's own listener routes[0].listen[0]: every request would come back to sipspan",
          },
        ],
      );
    }
    // Other spellings of the same address loop as well.
    for (const [listen, upstream] of [
      ['udp://127.0.0.1:30500', 'udp://localhost:30500'],
      ['udp://[::1]:30500', 'udp://[0:0:0:0:0:0:0:1]:30500'],
      ['tcp://localhost:30500', 'tcp://127.0.0.1:30500'],
    ]) {
      assert.deepEqual(
        problemsOf(() => buildConfig({ routes: [{ name: 'r', listen: [listen], upstream }] })).map(
          (p) => p.path,
        ),
        ['routes[0].upstream'],
        `${listen} ← ${upstream}`,
      );
    }
    // The same port over the other transport, or another address, is another socket.
    buildConfig({
      routes: [
        {
          name: 'r',
          listen: ['udp://127.0.0.1:30500', 'tcp://127.0.0.2:30501'],
          upstream: 'tcp://127.0.0.1:30500',
        },
      ],
    });
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
