import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import type { BoundedWriter } from '../../../src/sinks/logs/bounded-writer.ts';
import { startLogSink } from '../../../src/sinks/logs/log-sink.ts';
import { safeValue } from '../../../src/sinks/logs/safe-value.ts';
import { processStats } from '../../../src/sinks/process-stats.ts';
import { UasStandin } from '../../../src/standins/uas-standin.ts';
import { freePort, runSippUac, startSippUas } from '../../support/sipp.ts';

const FIELDS = [
  'time',
  'level',
  'msg',
  'service',
  'node',
  'trace_id',
  'span_id',
  'call_id',
  'method',
  'cseq',
  'status',
  'status_class',
  'outcome',
  'transport',
  'downstream',
  'upstream',
  'upstream_rtt_ms',
  'duration_ms',
  'proxy_ms',
  'retransmissions',
];

/** A destination that accepts nothing: write() says "full" and 'drain' never comes (a pipe nobody reads). */
class StalledPipe extends Writable {
  accepted = 0;
  override _write(_chunk: unknown, _enc: BufferEncoding, _cb: (err?: Error | null) => void): void {
    this.accepted++;
    // never call back: the stream stays full
  }
}

describe('log sink', { concurrency: false }, () => {
  test('after N SIPp calls, the log holds exactly N INVITE and N BYE transaction lines of the service, each complete', async () => {
    const N = 100;
    const dir = mkdtempSync(join(tmpdir(), 'sipspan-logs-'));
    const file = join(dir, 'sipspan.log');
    const sipPort = await freePort();
    const uasPort = await freePort();
    const uas = await startSippUas({ port: uasPort });
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
        logs: { destination: file },
      }),
      { sinks: (a) => [startLogSink(a)] },
    );
    try {
      const r = await runSippUac({
        target: `127.0.0.1:${sipPort}`,
        port: await freePort(),
        calls: N,
        rate: 100,
        timeoutS: 30,
      });
      assert.equal(r.successful, N, r.stderr);
    } finally {
      await app.stop(1000);
      await uas.stop();
    }
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const tx = parsed.filter((l) => l.msg === 'transaction' && l.service === 'sip-signaling');
    assert.equal(tx.filter((l) => l.method === 'INVITE').length, N);
    assert.equal(tx.filter((l) => l.method === 'BYE').length, N);
    assert.equal(
      tx.filter((l) => l.method === 'ACK').length,
      N,
      'the ACK of each 2xx is logged when forwarded',
    );
    for (const l of tx) {
      for (const f of FIELDS) assert.ok(f in l, `field ${f} missing in ${JSON.stringify(l)}`);
      assert.match(String(l.trace_id), /^[0-9a-f]{32}$/);
      assert.match(String(l.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(l.level, 'info');
      assert.equal(l.node, 'node-a');
      if (l.method !== 'ACK') {
        assert.equal(l.status, 200);
        assert.equal(l.outcome, 'completed');
        assert.ok(typeof l.upstream_rtt_ms === 'number' && typeof l.duration_ms === 'number');
      }
    }
    assert.ok(parsed.some((l) => l.msg === 'sipspan starting'));
    assert.ok(parsed.some((l) => l.state === 'draining'));
  });

  test('with stdout a pipe nobody reads, calls keep flowing with 0 failures, memory stays bounded and drops are counted', async () => {
    const uas = await new UasStandin({
      host: '127.0.0.1',
      port: await freePort(),
      ringMs: 1,
      answerMs: 2,
    }).start();
    const sipPort = await freePort();
    const pipe = new StalledPipe({ highWaterMark: 1024 });
    const maxBuffer = 64 * 1024;
    const app = await Sipspan.start(
      buildConfig({
        admin: '127.0.0.1:0',
        routes: [
          {
            name: 'sip-signaling',
            listen: [`udp://127.0.0.1:${sipPort}`],
            upstream: `udp://127.0.0.1:${uas.port}`,
          },
        ],
        logs: { max_buffer_bytes: maxBuffer },
      }),
      { sinks: (a) => [startLogSink(a, { destination: pipe })] },
    );
    const droppedBefore = processStats.logLinesDropped;
    let sink: { writer: BoundedWriter } | null = null;
    try {
      sink = app.sinks[0] as unknown as { writer: BoundedWriter };
      const r = await runSippUac({
        target: `127.0.0.1:${sipPort}`,
        port: await freePort(),
        calls: 300,
        rate: 150,
        timeoutS: 30,
      });
      assert.equal(r.failed, 0, r.stderr);
      assert.equal(r.successful, 300);
      assert.ok(processStats.logLinesDropped > droppedBefore, 'no dropped line was counted');
      assert.ok(
        sink.writer.pendingBytes <= maxBuffer,
        `queue ${sink.writer.pendingBytes} bytes over its bound`,
      );
    } finally {
      await app.stop(300);
      await uas.stop();
    }
  });

  test('wire values with CR, LF, NUL and 10 KB give one valid JSON line of bounded size', async () => {
    const nasty = `evil\r\nX-Injected: 1\u0000\u0007${'A'.repeat(10 * 1024)}`;
    const v = safeValue(nasty, 256);
    assert.ok(!/[\r\n\u0000\u0007]/.test(v));
    assert.ok(v.startsWith('evil\\r\\nX-Injected: 1\\x00\\x07'));
    assert.ok(v.length <= 256 + 24);

    // Through the real writer and pino: the drop line of a request whose Call-ID is hostile.
    const chunks: string[] = [];
    const sinkStream = new Writable({
      write(chunk, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    });
    const app = await Sipspan.start(
      buildConfig({
        admin: '127.0.0.1:0',
        routes: [
          { name: 'r', listen: [`udp://127.0.0.1:${await freePort()}`], upstream: 'udp://127.0.0.1:9' },
        ],
      }),
      { sinks: (a) => [startLogSink(a, { destination: sinkStream })] },
    );
    try {
      const { channels } = await import('../../../src/observe/channels.ts');
      channels.messageRejected.publish({
        route: app.routes[0].info,
        isRequest: true,
        status: 400,
        reason: 'bad-via',
        transport: 'udp',
        remote: '127.0.0.1:5060',
        method: `INV\u0000ITE${'M'.repeat(5000)}`,
        callId: nasty,
        cseq: -1,
        at: 0,
      });
      await app.sinks[0].flush(500);
    } finally {
      await app.stop(300);
    }
    const text = chunks.join('');
    const lines = text.trim().split('\n');
    const drop = lines.map((l) => JSON.parse(l)).find((l) => l.reason === 'bad-via');
    assert.ok(drop, 'no drop line');
    for (const l of lines) assert.ok(l.length < 8192, `a line of ${l.length} bytes`);
    assert.ok(!String(drop.call_id).includes('\n') && !String(drop.call_id).includes('\u0000'));
  });
});
