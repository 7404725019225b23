/**
 * The log sink under real SIPp traffic:
 *
 *   SIPp UAC ──udp──▶ sipspan (route sip-signaling) ──udp──▶ SIPp UAS
 *                         └─ log sink ─▶ a file / a pipe nobody reads
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { MAX_LINE_BYTES } from '../../../src/sinks/logs/line-fit.ts';
import { type LogSink, startLogSink, TRANSACTION_FIELDS } from '../../../src/sinks/logs/log-sink.ts';
import { processStats } from '../../../src/sinks/process-stats.ts';
import { freePort, runSippUac, startSippUas } from '../../support/sipp.ts';
import { StalledPipe } from './stalled-pipe.ts';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

type Line = Record<string, unknown>;
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const dir = mkdtempSync(join(tmpdir(), 'sipspan-log-sipp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function startProxy(
  uasPort: number,
  logs: Record<string, unknown>,
  destination?: NodeJS.WritableStream,
) {
  const sipPort = await freePort();
  let sink: LogSink | null = null;
  const app = await Sipspan.start(
    buildConfig({
      node: 'node-a',
      admin: '127.0.0.1:0',
      routes: [
        {
          name: 'sip-signaling',
          listen: [`udp://127.0.0.1:${sipPort}`],
          upstream: `udp://127.0.0.1:${uasPort}`,
        },
      ],
      logs,
    }),
    {
      sinks: (a) => {
        sink = startLogSink(a, destination === undefined ? {} : { destination });
        return [sink];
      },
    },
  );
  return { app, sipPort, sink: sink as unknown as LogSink };
}

describe('log sink with SIPp', { concurrency: false }, () => {
  test('N SIPp calls give exactly N INVITE and N BYE lines of the service, each complete, one trace per call', async () => {
    const N = 200;
    const file = join(dir, 'sipspan.log');
    const uasPort = await freePort();
    const uas = await startSippUas({ port: uasPort });
    const { app, sipPort } = await startProxy(uasPort, { destination: file });
    try {
      const r = await runSippUac({
        target: `127.0.0.1:${sipPort}`,
        port: await freePort(),
        calls: N,
        rate: 200,
        timeoutS: 30,
      });
      assert.equal(r.successful, N, r.stderr);
      assert.equal(r.failed, 0);
    } finally {
      await app.stop(2000);
      await uas.stop();
    }
    const text = readFileSync(file, 'utf8');
    assert.ok(text.endsWith('\n'));
    const raw = text.slice(0, -1).split('\n');
    for (const l of raw) assert.ok(Buffer.byteLength(l) <= MAX_LINE_BYTES);
    const lines = raw.map((l) => JSON.parse(l) as Line);
    const tx = lines.filter((l) => l.msg === 'transaction' && l.service === 'sip-signaling');
    const invites = tx.filter((l) => l.method === 'INVITE');
    const byes = tx.filter((l) => l.method === 'BYE');
    assert.equal(invites.length, N);
    assert.equal(byes.length, N);
    assert.equal(tx.filter((l) => l.method === 'ACK').length, N, 'the ACK of each 2xx, when forwarded');
    for (const l of tx) {
      for (const f of ['time', 'level', 'msg', 'service', 'node', ...TRANSACTION_FIELDS])
        assert.ok(f in l, `${f} missing in ${JSON.stringify(l)}`);
      assert.match(String(l.trace_id), HEX32);
      assert.match(String(l.span_id), HEX16);
      assert.match(String(l.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(l.level, 'info');
      assert.equal(l.node, 'node-a');
      assert.equal(l.transport, 'udp');
      assert.equal(l.upstream, `127.0.0.1:${uasPort}`);
      assert.match(String(l.downstream), /^127\.0\.0\.1:\d+$/);
      assert.equal(l.retransmissions, 0);
      assert.ok(typeof l.proxy_ms === 'number' && l.proxy_ms >= 0);
      if (l.method === 'ACK') {
        assert.equal(l.outcome, 'forwarded');
        continue;
      }
      assert.equal(l.status, 200);
      assert.equal(l.status_class, '2xx');
      assert.equal(l.outcome, 'completed');
      const rtt = l.upstream_rtt_ms as number;
      const duration = l.duration_ms as number;
      assert.ok(rtt >= 0 && duration >= rtt, `rtt ${rtt} duration ${duration}`);
      assert.ok((l.proxy_ms as number) <= duration);
    }
    // One trace per call: the BYE of a call carries its INVITE's trace id.
    const traceOf = new Map(invites.map((l) => [l.call_id, l.trace_id]));
    assert.equal(new Set(traceOf.values()).size, N);
    for (const b of byes) assert.equal(b.trace_id, traceOf.get(b.call_id));
    assert.equal(invites[0].from_user, 'sipp', 'caller user on INVITE lines');
    assert.ok(!('from_user' in byes[0]));
    assert.equal(lines[lines.length - 1].msg, 'sipspan stopped');
    assert.equal(lines[lines.length - 1].log_lines_dropped, 0);
  });

  test('a log destination nobody reads: SIPp calls keep flowing with 0 failures, memory stays bounded, drops are counted', async () => {
    const uasPort = await freePort();
    const uas = await startSippUas({ port: uasPort });
    const pipe = new StalledPipe({ highWaterMark: 1024 });
    const bound = 64 * 1024;
    const { app, sipPort, sink } = await startProxy(uasPort, { max_buffer_bytes: bound }, pipe);
    const droppedBefore = processStats.logLinesDropped;
    let pendingMax = 0;
    const probe = setInterval(() => {
      pendingMax = Math.max(pendingMax, sink.writer.pendingBytes);
    }, 20);
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    try {
      const calls = 600;
      const r = await runSippUac({
        target: `127.0.0.1:${sipPort}`,
        port: await freePort(),
        calls,
        rate: 300,
        timeoutS: 30,
      });
      assert.equal(r.failed, 0, r.stderr);
      assert.equal(r.successful, calls);
      gc();
      const grownMb = (process.memoryUsage().heapUsed - heap0) / 1024 / 1024;
      // 1800 transaction lines (~600 KB) went nowhere: the heap keeps at most the bound of them.
      assert.ok(grownMb < 8, `heap grew ${grownMb.toFixed(1)} MiB`);
      assert.ok(pendingMax <= bound, `${pendingMax} bytes pending over the ${bound} bound`);
      const dropped = processStats.logLinesDropped - droppedBefore;
      assert.ok(dropped >= 3 * calls - bound / 300, `${dropped} dropped lines counted`);
      assert.equal(sink.writer.written, 0);
      assert.equal(
        pipe.chunks,
        1,
        'one batch reached the stream; then the writer waited for a drain that never came',
      );
    } finally {
      clearInterval(probe);
      const t0 = performance.now();
      await app.stop(500);
      assert.ok(performance.now() - t0 < 3000, 'stopping is not held up by the stalled destination');
      await uas.stop();
    }
  });
});
