/**
 * The image cannot be built here (no container engine runs on this machine),
 * so the Dockerfile is checked in two ways instead:
 *
 *   1. its instructions: Node 24 slim stages, production dependencies only,
 *      compiled JavaScript, a non-root user, a HEALTHCHECK on the admin
 *      endpoint, SIGTERM; every COPY source exists and is in the build context;
 *   2. a rehearsal of what it does: `npm run build` and the native helper's
 *      build into a scratch build stage, then the runtime stage's layout
 *      (package files, dist/, build/, bin/, the
 *      compose config at /etc/sipspan) started with the image's own ENTRYPOINT
 *      and CMD arguments, probed with the image's own HEALTHCHECK command, and
 *      stopped with its STOPSIGNAL: healthy, then a clean exit 0.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { freePort } from '../support/sipp.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Instructions with continuation lines joined, each tagged with its stage (0-based FROM count). */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  const joined = text.replace(/\\\n/g, ' ');
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (m === null) continue;
    const op = m[1].toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2], stage });
  }
  return out;
}

const all = instructions(dockerfile);
const lastStage = Math.max(...all.map((i) => i.stage));
const runtime = all.filter((i) => i.stage === lastStage);
const jsonArgs = (i: Instruction | undefined): string[] => (i === undefined ? [] : JSON.parse(i.args));

describe('Dockerfile', () => {
  test('multi-stage on Node 24 slim; the runtime stage has production dependencies and compiled JavaScript only', () => {
    const froms = all.filter((i) => i.op === 'FROM');
    assert.ok(froms.length >= 2, 'a build stage and a runtime stage');
    for (const f of froms) assert.match(f.args, /^node:24-slim\b/, f.args);
    const runs = runtime.filter((i) => i.op === 'RUN').map((i) => i.args);
    assert.ok(
      runs.some((r) => /npm ci\b.*--omit=dev/.test(r)),
      'npm ci --omit=dev in the runtime stage',
    );
    const copies = runtime.filter((i) => i.op === 'COPY').map((i) => i.args);
    assert.ok(
      copies.some((c) => /--from=\S+ \S*dist \S*dist/.test(c)),
      'dist/ copied from the build stage',
    );
    assert.ok(
      !copies.some((c) => !c.startsWith('--from') && /(^|\s)\.?\/?src\/?(\s|$)/.test(c)),
      'no TypeScript sources in the runtime image',
    );
  });

  test('a non-root user, a HEALTHCHECK on the admin /healthz, SIGTERM, the CLI as entry point', () => {
    const user = runtime.find((i) => i.op === 'USER');
    assert.ok(user !== undefined, 'USER in the runtime stage');
    assert.ok(!/^(root|0)(:|$)/.test(user.args), `runs as ${user.args}`);
    const health = runtime.find((i) => i.op === 'HEALTHCHECK');
    assert.ok(health !== undefined);
    const admin = YAML.parse(readFileSync(join(root, 'deploy', 'compose', 'sipspan.yaml'), 'utf8'))
      .admin as string;
    const adminPort = admin.split(':').pop();
    assert.match(
      health.args,
      new RegExp(`127\\.0\\.0\\.1:${adminPort}/healthz`),
      'probes the configured admin port',
    );
    assert.equal(runtime.find((i) => i.op === 'STOPSIGNAL')?.args, 'SIGTERM');
    assert.deepEqual(jsonArgs(runtime.find((i) => i.op === 'ENTRYPOINT')), ['/app/bin/sipspan']);
  });

  test('every COPY source exists and is in the build context (.dockerignore does not exclude it)', () => {
    for (const c of all.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(join(root, src)), `COPY ${src}: missing in the repository`);
        const top = src.replace(/\/$/, '').split('/')[0];
        assert.ok(
          !dockerignore.includes(top) && !dockerignore.includes(src),
          `COPY ${src}: excluded by .dockerignore`,
        );
      }
    }
  });

  describe('rehearsal of the build and of a container start', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'sipspan-image-'));
    after(() => rmSync(scratch, { recursive: true, force: true }));

    test('the build stage compiles; the runtime layout starts from the image arguments, turns healthy, and exits 0 on SIGTERM', async () => {
      // Build stage: the files it copies, then its RUN npm run build (dependencies linked, not reinstalled).
      const build = join(scratch, 'build');
      mkdirSync(build);
      for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src'])
        cpSync(join(root, f), join(build, f), { recursive: true });
      symlinkSync(join(root, 'node_modules'), join(build, 'node_modules'));
      const npm = spawnSync('npm', ['run', 'build'], {
        cwd: build,
        encoding: 'utf8',
        env: { ...process.env, PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH}` },
      });
      assert.equal(npm.status, 0, `${npm.stdout}${npm.stderr}`);
      assert.ok(existsSync(join(build, 'dist', 'cli', 'main.js')));
      assert.ok(existsSync(join(build, 'dist', 'admin', 'ui')), 'the call view files ship with dist/');
      cpSync(join(root, 'native'), join(build, 'native'), { recursive: true });
      const native = spawnSync('sh', ['native/build.sh'], { cwd: build, encoding: 'utf8' });
      assert.ok(existsSync(join(build, 'build', 'kernel-stamp.node')), `native/build.sh: ${native.stderr}`);
      assert.ok(existsSync(join(build, 'build', 'udp-io.node')), `native/build.sh: ${native.stderr}`);

      // Runtime stage: /app with package files, dist/, bin/; the config at its image path (here: beside it).
      const app = join(scratch, 'app');
      mkdirSync(app);
      for (const f of ['package.json', 'package-lock.json', 'bin'])
        cpSync(join(root, f), join(app, f), { recursive: true });
      cpSync(join(build, 'dist'), join(app, 'dist'), { recursive: true });
      cpSync(join(build, 'build'), join(app, 'build'), { recursive: true });
      symlinkSync(join(root, 'node_modules'), join(app, 'node_modules'));
      assert.ok(!existsSync(join(app, 'src')), 'bin/sipspan must take dist/ (no sources in the image)');
      // The compose config names compose hosts; keep its shape, point it at loopback and free ports.
      const admin = await freePort();
      const compose = YAML.parse(readFileSync(join(root, 'deploy', 'compose', 'sipspan.yaml'), 'utf8'));
      compose.admin = `127.0.0.1:${admin}`;
      for (const r of compose.routes) {
        r.listen = [`udp://127.0.0.1:${await freePort()}`];
        r.upstream = `udp://127.0.0.1:${await freePort()}`;
        r.metrics = `127.0.0.1:${await freePort()}`;
        delete r.advertise;
      }
      const config = join(scratch, 'sipspan.yaml');
      writeFileSync(config, YAML.stringify(compose));

      const entry = jsonArgs(runtime.find((i) => i.op === 'ENTRYPOINT'))[0].replace('/app', app);
      const cmd = jsonArgs(runtime.find((i) => i.op === 'CMD')).map((a) =>
        a === '/etc/sipspan/sipspan.yaml' ? config : a,
      );
      const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production' };
      for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
      const child = spawn(entry, cmd, { cwd: app, env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        // The image's own HEALTHCHECK command, with the admin port of this run.
        const health = runtime.find((i) => i.op === 'HEALTHCHECK')!;
        const probe = jsonArgs({ ...health, args: health.args.slice(health.args.indexOf('[')) }).map((a) =>
          a.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${admin}`),
        );
        let healthy = false;
        const deadline = performance.now() + 15_000;
        while (!healthy && performance.now() < deadline && child.exitCode === null) {
          healthy = spawnSync(process.execPath, probe.slice(1), { encoding: 'utf8' }).status === 0;
          if (!healthy) await new Promise((r) => setTimeout(r, 200));
        }
        assert.ok(healthy, `the HEALTHCHECK never passed: ${stderr}`);
        // The compiled code finds the native pieces where the image puts them: UDP timed by the kernel, read in batches.
        const status = (await (await fetch(`http://127.0.0.1:${admin}/api/status`)).json()) as {
          receive_clock: { udp: string; reason?: string };
          udp_io: { mode: string; reason?: string };
        };
        assert.deepEqual(status.receive_clock, { udp: 'kernel' });
        assert.deepEqual(status.udp_io, { mode: 'batched' });
      } finally {
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      assert.equal(code, 0, `exit code after SIGTERM: ${code}\n${stderr}`);
    });
  });
});
