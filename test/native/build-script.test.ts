/**
 * native/build.sh, the package's install script: it builds the native pieces so that they load
 * in this Node, and it never fails the install, so a machine without a C compiler still installs
 * sipspan (which then reads UDP through node:dgram and times it from the event loop).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A package root of its own with native/ in it: the script works relative to itself. */
function scratchPackage(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-native-'));
  mkdirSync(join(dir, 'native'));
  cpSync(join(root, 'native'), join(dir, 'native'), { recursive: true });
  return dir;
}

describe('native/build.sh', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** One plain build, shared by the tests that only load what it built. */
  let plain: { dir: string; status: number | null; stderr: string } | null = null;
  const plainBuild = () => {
    if (plain === null) {
      const dir = scratchPackage();
      dirs.push(dir);
      const r = spawnSync('sh', ['native/build.sh'], { cwd: dir, encoding: 'utf8' });
      plain = { dir, status: r.status, stderr: r.stderr };
    }
    return plain;
  };

  test('builds build/kernel-stamp.node, which loads here and answers -1 for a descriptor that is no socket', () => {
    const r = plainBuild();
    assert.equal(r.status, 0, r.stderr);
    const helper = join(r.dir, 'build', 'kernel-stamp.node');
    assert.ok(existsSync(helper), r.stderr);
    const { stampMs } = createRequire(import.meta.url)(helper) as { stampMs(fd: number): number };
    assert.equal(stampMs(-1), -1);
    assert.equal(stampMs(0), -1, 'standard input is not a socket');
  });

  test('builds build/udp-io.node, which loads here with its batch size', () => {
    const r = plainBuild();
    assert.equal(r.status, 0, r.stderr);
    const module = join(r.dir, 'build', 'udp-io.node');
    assert.ok(existsSync(module), r.stderr);
    const io = createRequire(import.meta.url)(module) as {
      batch: number;
      open: unknown;
      send: unknown;
      close: unknown;
    };
    assert.equal(io.batch, 64);
    for (const fn of [io.open, io.send, io.close]) assert.equal(typeof fn, 'function');
  });

  test('without a C compiler it exits 0 and says why, and writes no native piece', () => {
    const dir = scratchPackage();
    dirs.push(dir);
    const r = spawnSync('sh', ['native/build.sh'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CC: 'no-such-compiler' },
    });
    assert.equal(r.status, 0);
    assert.match(
      r.stderr,
      /no C compiler \(no-such-compiler\): UDP through node:dgram, receive times from the event loop/,
    );
    assert.ok(!existsSync(join(dir, 'build', 'kernel-stamp.node')));
    assert.ok(!existsSync(join(dir, 'build', 'udp-io.node')));
  });

  test('a source that does not compile exits 0, says so, leaves no partial file, and builds the others', () => {
    const dir = scratchPackage();
    dirs.push(dir);
    const r = spawnSync('sh', ['-c', 'echo "#error broken" >> native/kernel-stamp.c && sh native/build.sh'], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0);
    assert.match(r.stderr, /native\/kernel-stamp\.c did not build/);
    assert.ok(!existsSync(join(dir, 'build', 'kernel-stamp.node')));
    assert.ok(!existsSync(join(dir, 'build', 'kernel-stamp.node.tmp')));
    assert.ok(existsSync(join(dir, 'build', 'udp-io.node')), 'one broken source costs only itself');
  });
});
