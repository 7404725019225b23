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

test('a number option that cannot be right is a usage error naming it, before anything is bound or sent', async () => {
  const cases: [string[], string][] = [
    [
      ['standin', 'uas', '--listen', 'udp://127.0.0.1:1', '--fail-status', 'abc'],
      '--fail-status: expected a final failure status from 300 to 699, got "abc"',
    ],
    [
      ['standin', 'uas', '--listen', 'udp://127.0.0.1:1', '--fail-status', '700'],
      '--fail-status: expected a final failure status from 300 to 699, got "700"',
    ],
    [
      ['standin', 'uas', '--listen', 'udp://127.0.0.1:1', '--fail-ratio', '2'],
      '--fail-ratio: expected a ratio from 0 to 1, got "2"',
    ],
    [
      ['standin', 'uas', '--listen', 'udp://127.0.0.1:1', '--answer-ms', 'soon'],
      '--answer-ms: expected a number of ms, 0 or more, got "soon"',
    ],
    [['demo', '--rate', '0'], '--rate: expected a number above 0, got "0"'],
    [['demo', '--calls=-5'], '--calls: expected a whole number, 0 or more, got "-5"'],
    [['demo', '--hold-ms', 'abc'], '--hold-ms: expected a number of ms, 0 or more, got "abc"'],
  ];
  for (const [args, message] of cases) {
    const r = await runSipspan(args, 20_000);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, `${message}\n`, args.join(' '));
  }
});
