import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Report } from '../../bench/lib/report.ts';

const root = join(import.meta.dirname, '..', '..');

test('npm run bench -- --short runs the short paths and writes a complete report', () => {
  const out = mkdtempSync(join(tmpdir(), 'sipspan-bench-smoke-'));
  try {
    const began = performance.now();
    const r = spawnSync(
      process.execPath,
      [join(root, 'bench', 'run.ts'), '--short', '--json', '--out', out],
      {
        encoding: 'utf8',
        timeout: 85_000,
        killSignal: 'SIGTERM',
      },
    );
    const seconds = (performance.now() - began) / 1000;
    assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr.slice(-3000)}`);
    assert.ok(seconds < 60, `the short mode took ${seconds.toFixed(0)} s (budget 60 s)`);
    const report = JSON.parse(r.stdout) as Report;

    assert.equal(report.short, true);
    assert.match(report.machine.pinning, /core 0.*core 1/);
    assert.ok(report.machine.cpus > 0 && report.machine.node.startsWith('v'));
    assert.deepEqual(
      report.results.map((x) => x.id),
      ['direct', 'sipspan-off', 'sipspan-on'],
    );
    for (const x of report.results) {
      assert.equal(x.status, 'measured', `${x.id}: ${x.note}`);
      assert.ok(x.maxRate !== null && x.maxRate.rate > 0, `${x.id}: no rate passed with 0 failed calls`);
      const first = x.maxRate.steps[0];
      assert.ok(first.ok > 0 && first.failed === 0, `${x.id}: ${JSON.stringify(first)}`);
    }
    for (const x of report.results.slice(1)) {
      assert.equal(x.hops, 1);
      const cpu = x.cpu[0];
      assert.ok(cpu.calls > 0 && cpu.failed === 0, `${x.id}: ${JSON.stringify(cpu)}`);
      assert.ok(cpu.cpuPerCallUs !== null && cpu.cpuPerCallUs > 0, `${x.id}: no CPU figure`);
      assert.ok(x.peakRssMb !== null && x.peakRssMb > 10, `${x.id}: no peak RSS`);
      const lat = x.latency[0];
      assert.ok(lat.ok > 0 && lat.failed === 0, `${x.id}: ${JSON.stringify(lat)}`);
      // The capture needs dumpcap (Debian tshark, installed by ./run test); where it ran, it saw every hop.
      if (lat.outside !== null) {
        assert.ok(lat.outside.samples > 0 && lat.outside.p50Us !== null, `${x.id}: empty capture`);
        assert.equal(lat.outside.perHop.length, 1);
        // SIPp's call: INVITE, 180, 200, ACK, BYE, 200.
        assert.deepEqual(Object.keys(lat.outside.byMessage).sort(), [
          '180 INVITE',
          '200 BYE',
          '200 INVITE',
          'ACK',
          'BYE',
          'INVITE',
        ]);
      }
    }
    const on = report.results[2];
    assert.ok(on.latency[0].inside !== null, 'sipspan-on: no sipspan_proxy_seconds observations');
    assert.ok(on.telemetry !== null && on.telemetry.scrapes > 0, 'sipspan-on: /metrics was not scraped');
    assert.ok((on.telemetry.logBytes ?? 0) > 0, 'sipspan-on: no transaction log lines');
    assert.ok(on.telemetry.otlpRequests > 0, 'sipspan-on: no span export reached the OTLP receiver');
    assert.ok(report.targets.length >= 5);
    // Paired rounds: the two sipspan boxes alternated; their ratio is shown, no target judges it.
    assert.ok(report.paired !== null, 'no paired rounds');
    assert.deepEqual(Object.keys(report.paired.runs).sort(), ['sipspan-off', 'sipspan-on']);
    for (const [id, runs] of Object.entries(report.paired.runs)) {
      assert.equal(runs.length, 1, id);
      assert.ok(runs[0].calls > 0 && runs[0].failed === 0 && (runs[0].cpuPerCallUs ?? 0) > 0, id);
    }
    const onOff = report.paired.ratios.find((r) => r.a === 'sipspan-on' && r.b === 'sipspan-off');
    assert.ok(onOff !== undefined && onOff.limit === null && (onOff.perRate[0].median ?? 0) > 0);

    const base = join(out, report.date);
    for (const ext of ['json', 'md', 'svg'])
      assert.ok(existsSync(`${base}.${ext}`), `${base}.${ext} missing`);
    const md = readFileSync(`${base}.md`, 'utf8');
    assert.match(md, /\| sipspan, all telemetry on \|/);
    assert.match(md, /\| sipspan, all telemetry on ÷ sipspan, telemetry off \| [\d.]+× \(/);
    assert.match(readFileSync(`${base}.svg`, 'utf8'), /^<svg [^>]*>[\s\S]*<polyline/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('bench/processes.ts measures one process against two sharing a port, calls spread over both', () => {
  const r = spawnSync(
    process.execPath,
    [join(root, 'bench', 'processes.ts'), '--rates', '200', '--seconds', '2', '--max', '200'],
    { encoding: 'utf8', timeout: 85_000, killSignal: 'SIGTERM' },
  );
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr.slice(-3000)}`);
  const out = JSON.parse(r.stdout) as {
    report: {
      processes: number;
      highestRate: number;
      fixed: { ok: number; failed: number; cpuUsPerCall: number; sharePct: number[] }[];
    }[];
  };
  assert.deepEqual(
    out.report.map((x) => x.processes),
    [1, 2],
  );
  for (const x of out.report) {
    const p = x.fixed[0];
    assert.equal(p.failed, 0, `${x.processes} process(es): ${JSON.stringify(p)}`);
    assert.equal(p.ok, 400);
    assert.ok(p.cpuUsPerCall > 0, `${x.processes} process(es): no CPU figure`);
    assert.equal(p.sharePct.length, x.processes);
    assert.equal(x.highestRate, 200);
  }
  // SIPp places each call from its own socket: the kernel spreads them, so both processes work.
  for (const share of out.report[1].fixed[0].sharePct)
    assert.ok(share > 10, `CPU split ${out.report[1].fixed[0].sharePct}`);
});
