/**
 * Network fuzzing, short version: 5,000 seeded mutations of the torture corpus
 * and of well-formed call messages, over UDP and TCP, against a running
 * `bin/sipspan run`; the upstream answers with valid and mutated responses.
 * The process must not exit, must print no stack trace (SIPSPAN_DEBUG=1 makes
 * it print errors the engine caught), every stdout line must be one valid JSON
 * object, memory and descriptors must stay bounded, and a plain request must
 * still go through afterwards. The long version is scripts/fuzz-network.ts
 * (100,000 mutations).
 *
 * Every crash input found by the long runs is kept, minimised, in
 * fixtures/network-crashes/ and replayed here.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { replayCrashes, runNetworkFuzz } from './support/network-fuzz.ts';

const CRASH_DIR = join(import.meta.dirname, 'fixtures', 'network-crashes');
/** RSS growth allowed over the run (measured: see RELIABILITY.md). */
const RSS_BOUND_MB = 64;

describe('network fuzzing', { concurrency: false }, () => {
  test('5,000 mutated messages over UDP and TCP (seed 1): no exit, no caught error, log lines valid JSON, memory bounded, still forwarding', async () => {
    const r = await runNetworkFuzz({ count: 5000, seed: 1, ratePerSecond: 2500, crashDir: null });
    const summary = JSON.stringify({ ...r, stderr: r.stderr.slice(0, 2000) }, null, 1);
    assert.equal(r.exited, null, `the proxy exited: ${summary}`);
    assert.equal(r.stderr, '', `the proxy reported errors: ${r.stderr.slice(0, 4000)}`);
    assert.deepEqual(r.badLogLines, [], 'log lines that are not single-line JSON objects');
    assert.ok(r.healthyAfter, `a plain OPTIONS no longer goes through: ${summary}`);
    const growthMb = (r.rssMaxKb - r.rssStartKb) / 1024;
    assert.ok(growthMb < RSS_BOUND_MB, `RSS grew ${growthMb.toFixed(1)} MiB`);
    assert.ok(r.fdEnd <= r.fdStart + 8, `file descriptors ${r.fdStart} → ${r.fdEnd}`);
    assert.ok(r.sentUdp > 1000 && r.sentTcp > 1000, `sent ${r.sentUdp} over UDP, ${r.sentTcp} over TCP`);
    assert.ok(r.upstreamAnswersMutated > 0, 'the response path was fuzzed too');
    process.stdout.write(
      `# network fuzz: ${r.sentUdp} udp + ${r.sentTcp} tcp (${r.tcpConnections} connections) in ${r.durationSeconds.toFixed(1)} s, upstream got ${r.upstreamReceived} (answered ${r.upstreamAnswersMutated} mutated), RSS ${(r.rssStartKb / 1024).toFixed(0)} → max ${(r.rssMaxKb / 1024).toFixed(0)} MiB, fds ${r.fdStart} → ${r.fdEnd}, ${r.logLines} log lines (longest ${r.longestLogLine} B)\n`,
    );
  });

  const crashFiles = (existsSync(CRASH_DIR) ? readdirSync(CRASH_DIR) : [])
    .filter((f) => f.endsWith('.bin'))
    .sort();
  // Registered only when the fuzzer has kept an input (none so far): nothing to replay is nothing to test.
  if (crashFiles.length > 0)
    test(`every kept crash input (${crashFiles.length}) no longer crashes the proxy`, async () => {
      const ok = await replayCrashes(crashFiles.map((f) => readFileSync(join(CRASH_DIR, f))));
      assert.deepEqual(
        crashFiles.filter((_, i) => !ok[i]),
        [],
        'crash inputs that still crash the proxy',
      );
    });
});
