import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runSipspan } from '../support/cli.ts';
import { freePort } from '../support/sipp.ts';

interface TransactionLine {
  node: string;
  service: string;
  msg: string;
  method: string;
  call_id: string;
  trace_id: string;
  status: number;
}

/** The demo's flags for a short run on free admin and metrics ports, its log lines in `logFile`. */
async function shortRun(calls: number, logFile: string, extra: string[] = []): Promise<string[]> {
  return [
    '--calls',
    String(calls),
    '--rate',
    '50',
    '--hold-ms',
    '50',
    '--ring-ms',
    '5',
    '--answer-ms',
    '20',
    '--jitter-ms',
    '0',
    '--admin-port',
    String(await freePort()),
    '--gateway-metrics-port',
    String(await freePort()),
    '--signaling-metrics-port',
    String(await freePort()),
    '--log-file',
    logFile,
    ...extra,
  ];
}

function transactions(logFile: string): TransactionLine[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as TransactionLine)
    .filter((l) => l.msg === 'transaction');
}

describe('sipspan demo --calls N (the README main job, run to completion)', { concurrency: false }, () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sipspan-demo-command-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every call is answered through both hops, reported per hop, logged per transaction with one trace per call', async () => {
    const logFile = join(dir, 'forward.log');
    const r = await runSipspan(['demo', ...(await shortRun(30, logFile))]);
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, /calls placed 30: answered 30/);
    for (const hop of ['sip-gateway', 'sip-signaling'])
      assert.match(r.stdout, new RegExp(`^\\s+${hop}\\s+30\\s+100\\.0%.*answered 30$`, 'm'), `${hop} row`);

    const lines = transactions(logFile);
    for (const service of ['sip-gateway', 'sip-signaling']) {
      const invites = lines.filter((l) => l.service === service && l.method === 'INVITE');
      assert.equal(invites.length, 30, `${service} INVITE lines`);
      assert.ok(
        invites.every((l) => l.node === 'demo' && l.status === 200),
        `${service}: node and status`,
      );
    }
    // The gateway stand-in forwards (same Call-ID): each call's transactions at both hops share one trace.
    const traces = new Map<string, Set<string>>();
    for (const l of lines) {
      const set = traces.get(l.call_id) ?? new Set<string>();
      set.add(l.trace_id);
      traces.set(l.call_id, set);
    }
    assert.equal(traces.size, 30);
    for (const [callId, ids] of traces) assert.equal(ids.size, 1, `call ${callId} spans ${ids.size} traces`);
  });

  test('with the gateway a B2BUA (a new Call-ID on the second leg) the two legs still land in one trace', async () => {
    const logFile = join(dir, 'b2bua.log');
    const r = await runSipspan(['demo', ...(await shortRun(20, logFile, ['--b2bua']))]);
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, /calls placed 20: answered 20/);
    const invites = transactions(logFile).filter((l) => l.method === 'INVITE');
    const gateway = invites.filter((l) => l.service === 'sip-gateway');
    const signaling = invites.filter((l) => l.service === 'sip-signaling');
    assert.equal(gateway.length, 20);
    assert.equal(signaling.length, 20);
    const gatewayCallIds = new Set(gateway.map((l) => l.call_id));
    assert.ok(
      signaling.every((l) => !gatewayCallIds.has(l.call_id)),
      'the B2BUA gave the second leg Call-IDs of its own',
    );
    assert.deepEqual(
      new Set(signaling.map((l) => l.trace_id)),
      new Set(gateway.map((l) => l.trace_id)),
      'each B leg stitched into the trace of its A leg',
    );
  });
});
