import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LoadGenerator } from '../../src/standins/load-generator.ts';
import { UasStandin } from '../../src/standins/uas-standin.ts';
import { freePort } from '../support/sipp.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'sipspan');

async function waitFor(url: string, status: number, timeoutMs: number): Promise<Response> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.status === status) return r;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`${url} did not answer ${status} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A config file in `dir`: one UDP route, the admin listener on `adminPort`, and one more top-level line. */
async function oneRouteConfig(dir: string, adminPort: number, line: string): Promise<string> {
  const file = join(dir, `sipspan-${adminPort}.yaml`);
  writeFileSync(
    file,
    [
      'node: test-node',
      `admin: 127.0.0.1:${adminPort}`,
      line,
      'routes:',
      '  - name: sip-signaling',
      `    listen: [udp://127.0.0.1:${await freePort()}]`,
      `    upstream: udp://127.0.0.1:${await freePort()}`,
      '',
    ].join('\n'),
  );
  return file;
}

/**
 * `sipspan run --config` with one UDP route and the given `limits:`: its /api/status once ready,
 * and every log line, after a SIGTERM that must exit 0.
 */
async function runUntilReady(
  dir: string,
  limits: string,
  env: NodeJS.ProcessEnv = {},
  cpus: string | null = null,
): Promise<{ status: Record<string, unknown>; lines: Record<string, unknown>[] }> {
  const adminPort = await freePort();
  const file = await oneRouteConfig(dir, adminPort, `limits: ${limits}`);
  const args = ['run', '--config', file];
  // taskset execs bin/sipspan in its own place: the child is sipspan, signals and all.
  const child = spawn(cpus === null ? bin : 'taskset', cpus === null ? args : ['-c', cpus, bin, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor(`http://127.0.0.1:${adminPort}/readyz`, 200, 15_000);
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/api/status`)).json()) as Record<
      string,
      unknown
    >;
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const lines = stdout
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { status, lines };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

test('sipspan run: ready when bound and resolved, forwards calls, shrugs off SIGHUP, and drains on SIGTERM with exit 0', async () => {
  const uas = await new UasStandin({
    host: '127.0.0.1',
    port: await freePort(),
    ringMs: 5,
    answerMs: 20,
  }).start();
  const sipPort = await freePort();
  const adminPort = await freePort();
  const child = spawn(
    bin,
    [
      'run',
      '--name',
      'sip-signaling',
      '--listen',
      `udp://127.0.0.1:${sipPort}`,
      '--listen',
      `tcp://127.0.0.1:${sipPort}`,
      '--upstream',
      `udp://127.0.0.1:${uas.port}`,
      '--admin',
      `127.0.0.1:${adminPort}`,
      '--node',
      'test-node',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    assert.equal((await waitFor(`http://127.0.0.1:${adminPort}/healthz`, 200, 15_000)).status, 200);
    const ready = await waitFor(`http://127.0.0.1:${adminPort}/readyz`, 200, 5_000);
    assert.deepEqual(((await ready.json()) as { routes: unknown }).routes, [
      { name: 'sip-signaling', upstream_resolved: true },
    ]);

    const load = new LoadGenerator({
      target: { transport: 'udp', host: '127.0.0.1', port: sipPort },
      host: '127.0.0.1',
      rate: 50,
      calls: 25,
      holdMs: 10,
    });
    const results = await load.run();
    assert.equal(results.filter((c) => c.result === 'answered').length, 25);

    // Started from flags there is no file to read again: a hangup is logged and changes nothing.
    child.kill('SIGHUP');
    const deadline = performance.now() + 5000;
    while (!stdout.includes('"msg":"sipspan reload-ignored"') && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const ignored = stdout.split('\n').find((l) => l.includes('"msg":"sipspan reload-ignored"'));
    assert.ok(ignored !== undefined, `no reload-ignored line; stderr: ${stderr}`);
    assert.equal(JSON.parse(ignored).level, 'warn');
    assert.equal(child.exitCode, null, 'SIGHUP stopped the process');
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status, 200);

    const t0 = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    assert.equal(code, 0, stderr);
    assert.ok(performance.now() - t0 < 6000, 'drain took longer than the drain deadline');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await uas.stop();
  }
});

test('sipspan run --config: SIGHUP applies a new log level at once (logged both ways), names what needs a restart, and keeps running on an invalid file', async () => {
  const uas = await new UasStandin({
    host: '127.0.0.1',
    port: await freePort(),
    ringMs: 5,
    answerMs: 10,
  }).start();
  const sipPort = await freePort();
  const adminPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-reload-'));
  const file = join(dir, 'sipspan.yaml');
  const configText = (level: string, upstreamPort: number) =>
    [
      'node: test-node',
      `admin: 127.0.0.1:${adminPort}`,
      `logs: { level: ${level} }`,
      'routes:',
      '  - name: sip-signaling',
      `    listen: [udp://127.0.0.1:${sipPort}]`,
      `    upstream: udp://127.0.0.1:${upstreamPort}`,
      '',
    ].join('\n');
  writeFileSync(file, configText('info', uas.port));
  const child = spawn(bin, ['run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) lines.push(JSON.parse(p));
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const call = async () => {
    const load = new LoadGenerator({
      target: { transport: 'udp', host: '127.0.0.1', port: sipPort },
      host: '127.0.0.1',
      rate: 20,
      calls: 2,
      holdMs: 10,
    });
    assert.equal((await load.run()).filter((c) => c.result === 'answered').length, 2);
    await new Promise((r) => setTimeout(r, 200));
  };
  const waitLine = async (msg: string, from = 0) => {
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline) {
      const found = lines.slice(from).find((l) => l.msg === msg);
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`no "${msg}" line; stderr: ${stderr}`);
  };
  try {
    await waitFor(`http://127.0.0.1:${adminPort}/readyz`, 200, 15_000);
    await call();
    assert.ok(
      lines.some((l) => l.msg === 'transaction'),
      'transaction lines at info',
    );

    // A new level and a new upstream: the level applies now, the upstream needs a restart.
    writeFileSync(file, configText('warn', uas.port + 1));
    child.kill('SIGHUP');
    const reloaded = await waitLine('sipspan reloaded');
    assert.deepEqual(reloaded.applied, ['logs.level']);
    assert.deepEqual(reloaded.needs_restart, ['routes[0].upstream.port']);
    const after = lines.length;
    await call();
    assert.deepEqual(
      lines.slice(after).filter((l) => l.msg === 'transaction'),
      [],
      'no transaction lines at warn; calls still go to the upstream the process started with',
    );

    // An invalid file: the problem is logged with its path, nothing changes, the process goes on.
    writeFileSync(file, configText('warn', uas.port).replace('upstream: udp://', 'upstream: smtp://'));
    child.kill('SIGHUP');
    const failed = await waitLine('sipspan reload-failed');
    assert.equal(failed.level, 'warn');
    assert.match(JSON.stringify(failed.problems), /routes\[0\]\.upstream/);
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).status, 200);

    // Back to info from warn: the reload is logged although the level it leaves hid info lines.
    const beforeBack = lines.length;
    writeFileSync(file, configText('info', uas.port + 1));
    child.kill('SIGHUP');
    const back = await waitLine('sipspan reloaded', beforeBack);
    assert.equal(back.log_level, 'info');
    assert.deepEqual(back.applied, ['logs.level']);
    await call();
    assert.ok(
      lines.slice(beforeBack).some((l) => l.msg === 'transaction'),
      'transaction lines again at info',
    );

    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await uas.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sipspan run: a start that fails after some listeners are bound exits 1 at once, its ports released', async () => {
  const { createSocket } = await import('node:dgram');
  const { createServer } = await import('node:net');
  const sipPort = await freePort();
  const takenPort = await freePort();
  const taken = createSocket('udp4');
  await new Promise<void>((resolve) => taken.bind(takenPort, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-failstart-'));
  const runToExit = async (args: string[], env: NodeJS.ProcessEnv = process.env) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(killer);
    return { code, stderr };
  };
  // The port the failed process had bound for TCP is free again.
  const tcpPortFree = () =>
    new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(sipPort, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
  try {
    // The second route's UDP port is taken: the first route's TCP listener is bound by then.
    const file = join(dir, 'two-routes.yaml');
    writeFileSync(
      file,
      [
        `admin: 127.0.0.1:${await freePort()}`,
        'routes:',
        '  - name: a',
        `    listen: [udp://127.0.0.1:${sipPort}, tcp://127.0.0.1:${sipPort}]`,
        '    upstream: udp://127.0.0.1:5070',
        '  - name: b',
        `    listen: [udp://127.0.0.1:${takenPort}]`,
        '    upstream: udp://127.0.0.1:5072',
        '',
      ].join('\n'),
    );
    const bindFailed = await runToExit(['run', '--config', file]);
    assert.equal(bindFailed.code, 1, bindFailed.stderr);
    assert.match(bindFailed.stderr, /EADDRINUSE/);
    assert.ok(await tcpPortFree(), 'the TCP listener was left open');

    // A sink that cannot start (an unknown exporter) after every listener is bound: the same.
    const flags = ['run', '--listen', `udp://127.0.0.1:${sipPort}`, '--listen', `tcp://127.0.0.1:${sipPort}`];
    const badExporter = await runToExit(
      [...flags, '--upstream', 'udp://127.0.0.1:5070', '--admin', `127.0.0.1:${await freePort()}`],
      { ...process.env, OTEL_TRACES_EXPORTER: 'jaeger' },
    );
    assert.equal(badExporter.code, 1, badExporter.stderr);
    assert.match(badExporter.stderr, /OTEL_TRACES_EXPORTER: unknown trace exporter "jaeger"/);
    assert.ok(await tcpPortFree(), 'the TCP listener was left open');
  } finally {
    taken.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sipspan run: UDP socket buffers smaller than asked (net.core.rmem_max) are a warning at start and show in /api/status', async () => {
  // Linux grants SO_RCVBUF/SO_SNDBUF up to rmem_max/wmem_max (and reports twice what it granted).
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-buffers-'));
  const start = async (askedBytes: number) => {
    const { status, lines } = await runUntilReady(dir, `{ udp_socket_buffer_bytes: ${askedBytes} }`);
    return {
      status: status.udp_buffers as {
        asked_bytes: number;
        receive_bytes: number;
        send_bytes: number;
        capped: boolean;
      },
      capped: lines.filter((l) => l.msg === 'sipspan udp-buffers-capped'),
    };
  };
  try {
    const tooLarge = Math.max(rmemMax, wmemMax) * 2;
    const capped = await start(tooLarge);
    assert.deepEqual(capped.status, {
      asked_bytes: tooLarge,
      receive_bytes: rmemMax,
      send_bytes: wmemMax,
      capped: true,
    });
    assert.equal(capped.capped.length, 1, 'one warning at start');
    assert.equal(capped.capped[0].level, 'warn');
    assert.equal(capped.capped[0].receive_bytes, rmemMax);
    assert.match(String(capped.capped[0].hint), /net\.core\.rmem_max/);

    const granted = await start(Math.min(rmemMax, wmemMax));
    assert.equal(granted.status.capped, false);
    assert.equal(granted.status.receive_bytes, granted.status.asked_bytes);
    assert.equal(granted.status.send_bytes, granted.status.asked_bytes);
    assert.equal(granted.capped.length, 0, 'no warning when the kernel granted the ask');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('on one CPU the collector runs on the event loop thread, unless SIPSPAN_SINGLE_THREADED_GC says otherwise', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-gc-'));
  const gcOf = async (env: NodeJS.ProcessEnv, cpus: string | null) =>
    (await runUntilReady(dir, '{}', env, cpus)).status.gc;
  try {
    assert.equal(await gcOf({}, '0'), 'single_threaded');
    assert.equal(await gcOf({ SIPSPAN_SINGLE_THREADED_GC: '0' }, '0'), 'parallel');
    assert.equal(await gcOf({ SIPSPAN_SINGLE_THREADED_GC: '1' }, null), 'single_threaded');
    // This machine has more than one CPU (2 here); elsewhere the default is checked on one only.
    if (availableParallelism() > 1) assert.equal(await gcOf({}, null), 'parallel');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('in a container: the heap is half its memory limit unless NODE_OPTIONS sizes it, the heap guard takes shares of it, and a guard set past it is a warning at start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-heap-'));
  // The container's cgroup files, as /sys/fs/cgroup shows them inside one (cgroup v2).
  const cgroup = join(dir, 'cgroup');
  mkdirSync(cgroup);
  writeFileSync(join(cgroup, 'memory.max'), `${256 * 1024 * 1024}\n`);
  const start = async (limits: string, nodeOptions: string) => {
    const { status, lines } = await runUntilReady(dir, limits, {
      SIPSPAN_CGROUP_FS: cgroup,
      NODE_OPTIONS: nodeOptions,
    });
    return {
      status: status as {
        heap_limits: { soft_mb: number; hard_mb: number; v8_heap_limit_mb: number };
        heap_guard: string;
      },
      warnings: lines.filter((l) => l.msg === 'sipspan heap-guard-unreachable'),
    };
  };
  try {
    const auto = await start('{}', '');
    assert.deepEqual(auto.status.heap_limits, { v8_heap_limit_mb: 128, soft_mb: 76, hard_mb: 102 });
    assert.equal(auto.status.heap_guard, 'ok');
    assert.equal(auto.warnings.length, 0);

    const sized = await start('{ heap_soft_limit_mb: 150 }', '--max-old-space-size=200');
    assert.deepEqual(sized.status.heap_limits, { v8_heap_limit_mb: 200, soft_mb: 150, hard_mb: 160 });

    const pastIt = await start('{ heap_soft_limit_mb: 100, heap_hard_limit_mb: 300 }', '');
    assert.equal(pastIt.warnings.length, 1, 'one warning at start');
    assert.equal(pastIt.warnings[0].level, 'warn');
    assert.equal(pastIt.warnings[0].v8_heap_limit_mb, 128);
    assert.match(String(pastIt.warnings[0].hint), /limits\.heap_hard_limit_mb/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sipspan run: SIGHUP opens a log file moved away by logrotate again at its path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-logrotate-'));
  const log = join(dir, 'sipspan.log');
  const adminPort = await freePort();
  const file = await oneRouteConfig(dir, adminPort, `logs: { destination: ${JSON.stringify(log)} }`);
  const child = spawn(bin, ['run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const messages = (path: string) =>
    existsSync(path)
      ? readFileSync(path, 'utf8')
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => (JSON.parse(l) as { msg: string }).msg)
      : [];
  const until = async (what: () => boolean) => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 25));
    return what();
  };
  try {
    await waitFor(`http://127.0.0.1:${adminPort}/readyz`, 200, 15_000);
    assert.ok(await until(() => messages(log).includes('sipspan ready')), 'ready is logged');
    renameSync(log, `${log}.1`);
    child.kill('SIGHUP');
    assert.ok(
      await until(() => messages(log).includes('sipspan reloaded')),
      'the reload is logged in a new file',
    );
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(messages(`${log}.1`).includes('sipspan ready'));
    assert.ok(
      !messages(`${log}.1`).includes('sipspan reloaded'),
      'nothing after the reopen in the moved file',
    );
    assert.ok(messages(log).includes('sipspan stopped'));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
