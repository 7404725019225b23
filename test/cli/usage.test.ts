/**
 * The command line's own conventions, the same for every command: --help on
 * stdout and exit 0; a usage mistake (unknown option, stray argument, missing
 * value or command) on stderr, naming the command, and exit 2.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSipspan } from '../support/cli.ts';

test('--help on every command prints its usage on stdout and exits 0', async () => {
  for (const args of [
    ['--help'],
    ['run', '--help'],
    ['validate', '--help'],
    ['demo', '--help'],
    ['bench', '--help'],
    ['standin', '--help'],
    ['standin', 'uas', '--help'],
  ]) {
    const r = await runSipspan(args, 20_000);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /usage|--/, args.join(' '));
    assert.equal(r.stderr, '', args.join(' '));
  }
});

test('usage mistakes exit 2 with the command named on stderr', async () => {
  const cases: [string[], RegExp][] = [
    [['run', '--bogus'], /^sipspan run: Unknown option '--bogus'/],
    [['run', 'extra'], /^sipspan run: Unexpected argument 'extra'/],
    [['validate', '--config'], /^sipspan validate: Option '-c, --config <value>' argument missing/],
    [['validate'], /^sipspan validate: give --config FILE/],
    [['bench', '--bogus'], /^sipspan bench: Unknown option '--bogus'/],
    [['demo', '--bogus'], /^sipspan demo: Unknown option '--bogus'/],
    [['standin'], /^sipspan standin: give uas, forward or b2bua/],
    [['standin', 'proxy'], /^sipspan standin: give uas, forward or b2bua/],
    [['frobnicate'], /^sipspan: unknown command "frobnicate"/],
  ];
  for (const [args, stderr] of cases) {
    const r = await runSipspan(args, 20_000);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, stderr, args.join(' '));
  }
});
