import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { channels } from '../../../src/observe/channels.ts';
import { CallRecord, type RouteInfo } from '../../../src/observe/records.ts';
import { MAX_LINE_BYTES } from '../../../src/sinks/logs/line-fit.ts';
import {
  createLogger,
  type LogSink,
  redactSecrets,
  startLogSink,
  TRANSACTION_FIELDS,
} from '../../../src/sinks/logs/log-sink.ts';
import { completed, transactionRecord } from '../../support/records.ts';
import { freePort } from '../../support/sipp.ts';

type Line = Record<string, unknown>;

const dir = mkdtempSync(join(tmpdir(), 'sipspan-log-sink-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A stream that keeps every line written to it. */
function collector(): { stream: PassThrough; lines(): string[]; parsed(): Line[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => {
    text += c.toString('utf8');
  });
  const lines = () => text.split('\n').filter((l) => l !== '');
  return { stream, lines, parsed: () => lines().map((l) => JSON.parse(l) as Line) };
}

/** sipspan with one route toward a port nobody answers on, the log sink writing to `destination`. */
async function startApp(
  logs: Record<string, unknown>,
  destination: NodeJS.WritableStream | string,
): Promise<{ app: Sipspan; sink: LogSink; route: RouteInfo }> {
  let sink: LogSink | null = null;
  const app = await Sipspan.start(
    buildConfig({
      node: 'node-t',
      admin: '127.0.0.1:0',
      routes: [
        {
          name: 'sip-signaling',
          listen: [`udp://127.0.0.1:${await freePort()}`],
          upstream: 'udp://127.0.0.1:9',
        },
      ],
      logs,
    }),
    {
      sinks: (a) => {
        sink = startLogSink(a, { destination });
        return [sink];
      },
    },
  );
  return { app, sink: sink as unknown as LogSink, route: app.routes[0].info };
}

/** A finished transaction as the observer publishes it. */
function transaction(
  route: RouteInfo,
  over: { method?: string; callId?: string; call?: CallRecord | null } = {},
) {
  const method = over.method ?? 'INVITE';
  const tx = transactionRecord({
    route,
    method,
    callId: over.callId ?? 'abc@host',
    downstream: '127.0.0.1:5070',
  });
  tx.traceId = '0af7651916cd43dd8448eb211c80319c';
  tx.serverSpanId = 'b7ad6b7169203331';
  tx.upstream = '127.0.0.1:9';
  tx.requestProxyMs = 0.05;
  tx.responseProxyMs = 0.03;
  completed(tx, { requestOut: 100.05, firstResponseIn: 101, finalResponseIn: 102, finalResponseOut: 102.03 });
  tx.call = over.call ?? null;
  return tx;
}

function call(route: RouteInfo, logSampled: boolean): CallRecord {
  return new CallRecord(
    'c',
    route,
    'abc@host',
    'ft',
    'alice',
    'bob',
    'a'.repeat(32),
    'b'.repeat(16),
    true,
    logSampled,
    100,
  );
}

describe('log sink lines', { concurrency: false }, () => {
  test('a transaction line: every field, the level as a string, ISO time of its end, node and service', async () => {
    const out = collector();
    const { app, route } = await startApp({}, out.stream);
    let okEnd = 0;
    try {
      const answered = transaction(route, { call: call(route, true) });
      okEnd = answered.finalResponseOut;
      channels.transactionEnd.publish(answered);
      const timeout = transaction(route, { method: 'OPTIONS' });
      timeout.outcome = 'timeout';
      timeout.statusClass = 'timeout';
      timeout.status = 0;
      timeout.finalResponseIn = -1;
      timeout.finalResponseOut = -1;
      timeout.firstResponseIn = -1;
      timeout.endedAt = 3300;
      channels.transactionEnd.publish(timeout);
    } finally {
      await app.stop(500);
    }
    const tx = out.parsed().filter((l) => l.msg === 'transaction');
    assert.equal(tx.length, 2);
    const [ok, late] = tx;
    for (const f of ['time', 'level', 'msg', 'service', 'node', ...TRANSACTION_FIELDS])
      assert.ok(f in ok, `${f} missing`);
    assert.match(String(ok.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // When the transaction ended (its final response sent back; else its end), on the spans' clock:
    // lines are written in groups, later than that.
    assert.equal(ok.time, new Date(Math.floor(performance.timeOrigin + okEnd)).toISOString());
    assert.equal(late.time, new Date(Math.floor(performance.timeOrigin + 3300)).toISOString());
    assert.equal(ok.level, 'info');
    assert.equal(ok.node, 'node-t');
    assert.equal(ok.service, 'sip-signaling');
    assert.equal(ok.trace_id, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(ok.span_id, 'b7ad6b7169203331');
    assert.equal(ok.upstream_rtt_ms, 0.95);
    assert.equal(ok.duration_ms, 2.03);
    assert.equal(ok.proxy_ms, 0.08);
    assert.equal(ok.from_user, 'alice');
    assert.equal(ok.to_user, 'bob');
    assert.equal(late.level, 'warn', 'a timeout is a warning');
    assert.equal(late.status_class, 'timeout');
    assert.equal(late.upstream_rtt_ms, null);
    assert.equal(late.duration_ms, 3200);
    assert.ok(!('from_user' in late), 'users only on initial INVITE lines');
  });

  test('a transaction of a route the sink does not know still gets its line, with node and no service', async () => {
    const out = collector();
    const { app } = await startApp({}, out.stream);
    try {
      channels.transactionEnd.publish(transaction({ index: 9, name: 'unknown' }));
    } finally {
      await app.stop(500);
    }
    const tx = out.parsed().filter((l) => l.msg === 'transaction');
    assert.equal(tx.length, 1);
    assert.equal(tx[0].node, 'node-t');
    assert.ok(!('service' in tx[0]));
  });

  test('redact_users shows user parts as ***; an unsampled call and transactions off give no line', async () => {
    const out = collector();
    const { app, route } = await startApp({ redact_users: true }, out.stream);
    try {
      channels.transactionEnd.publish(transaction(route, { call: call(route, true) }));
      channels.transactionEnd.publish(transaction(route, { callId: 'unsampled', call: call(route, false) }));
    } finally {
      await app.stop(500);
    }
    const tx = out.parsed().filter((l) => l.msg === 'transaction');
    assert.equal(tx.length, 1, 'the call with logSampled=false wrote nothing');
    assert.equal(tx[0].from_user, '***');
    assert.equal(tx[0].to_user, '***');
    assert.ok(!out.lines().some((l) => l.includes('alice')));

    const off = collector();
    const second = await startApp({ transactions: false }, off.stream);
    try {
      assert.equal(
        channels.transactionEnd.hasSubscribers,
        false,
        'transactions off: no subscription, no cost',
      );
      channels.transactionEnd.publish(transaction(second.route));
    } finally {
      await second.app.stop(500);
    }
    assert.equal(off.parsed().filter((l) => l.msg === 'transaction').length, 0);
  });

  test('CR, LF, NUL and 10 KB wire values give one valid JSON line of bounded size', async () => {
    const nasty = `evil\r\nX-Injected: 1\u0000\u0007${'A'.repeat(10 * 1024)}`;
    const out = collector();
    // max_value_bytes raised far past the line bound: the line bound still holds.
    const { app, route } = await startApp({}, out.stream);
    const wide = collector();
    const second = await startApp({ max_value_bytes: 100_000 }, wide.stream);
    try {
      channels.transactionEnd.publish(
        transaction(route, { callId: nasty, method: `INV\u0000ITE${'M'.repeat(5000)}` }),
      );
      channels.messageRejected.publish({
        route,
        isRequest: true,
        status: 0,
        reason: 'bad-via',
        transport: 'udp',
        remote: '127.0.0.1:5060',
        method: 'INVITE\r\n',
        callId: nasty,
        cseq: -1,
        at: 0,
      });
    } finally {
      await app.stop(500);
      await second.app.stop(500);
    }
    for (const o of [out, wide]) {
      const lines = o.lines();
      for (const l of lines) {
        assert.ok(Buffer.byteLength(l) < MAX_LINE_BYTES, `a line of ${Buffer.byteLength(l)} bytes`);
        assert.ok(!l.includes('\r') && !l.includes('\u0000'));
        JSON.parse(l);
      }
      const tx = o.parsed().find((l) => l.msg === 'transaction');
      const drop = o.parsed().find((l) => l.reason === 'bad-via');
      assert.ok(tx !== undefined && drop !== undefined);
      assert.ok(String(tx.call_id).startsWith('evil\\r\\nX-Injected: 1\\u0000\\u0007AAA'));
      assert.ok(String(tx.call_id).endsWith('…'));
      assert.equal(drop.method, 'INVITE\\r\\n');
      assert.equal(drop.status, 0);
      assert.equal(drop.level, 'warn');
      assert.equal(drop.remote, '127.0.0.1:5060');
    }
    const wideTx = wide.parsed().find((l) => l.msg === 'transaction');
    assert.equal(wideTx?.truncated, true, 'the oversized line was cut and says so');
    assert.equal(wideTx?.trace_id, '0af7651916cd43dd8448eb211c80319c');
    assert.ok(Buffer.byteLength(String(out.parsed().find((l) => l.msg === 'transaction')?.call_id)) <= 256);
  });

  test('drop lines are rate-limited per reason; the held-back count rides on the next line and is reported at stop; keepalives write none', async () => {
    const out = collector();
    const { app, route } = await startApp({ drops_per_second: 5 }, out.stream);
    const reject = (reason: string, i: number) =>
      channels.messageRejected.publish({
        route,
        isRequest: true,
        status: reason === 'max-forwards' ? 483 : 0,
        reason,
        transport: 'udp',
        remote: '127.0.0.1:5060',
        method: 'OPTIONS',
        callId: `c${i}`,
        cseq: i,
        at: 0,
      });
    try {
      for (let i = 0; i < 50; i++) reject('bad-via', i);
      for (let i = 0; i < 2; i++) reject('max-forwards', i);
      // NAT keepalives are routine: counted by the metrics sink, never a line (nor a suppressed count).
      for (let i = 0; i < 20; i++) reject('keepalive', i);
      for (let i = 0; i < 20; i++) channels.limitHit.publish({ route, limit: 'max_calls' });
      await new Promise((r) => setTimeout(r, 1100));
      reject('bad-via', 100);
      for (let i = 0; i < 10; i++) reject('bad-via', 200 + i);
    } finally {
      await app.stop(500);
    }
    const lines = out.parsed();
    const badVia = lines.filter((l) => l.reason === 'bad-via' && l.msg === 'message dropped');
    assert.equal(badVia.length, 10, '5 in each second');
    assert.equal(badVia[5].suppressed, 45, 'the first line of the next second carries the 45 held back');
    assert.equal(badVia.filter((l) => 'suppressed' in l).length, 1);
    assert.equal(
      lines.filter((l) => l.reason === 'max-forwards').length,
      2,
      'each reason has its own budget',
    );
    assert.equal(lines.find((l) => l.reason === 'max-forwards')?.msg, 'request rejected');
    assert.deepEqual(
      lines.filter((l) => l.reason === 'keepalive'),
      [],
    );
    assert.equal(lines.filter((l) => l.msg === 'limit reached').length, 5);
    const held = lines.filter((l) => l.msg === 'drop lines suppressed');
    assert.deepEqual(
      held.map((l) => [l.reason, l.suppressed]),
      [['bad-via', 6]],
      'what no later line carried is reported at stop',
    );
    assert.deepEqual(
      lines.filter((l) => l.msg === 'limit lines suppressed').map((l) => l.suppressed),
      [15],
    );
  });

  test('start-up, state changes and stop are logged; secrets in the configuration are redacted', async () => {
    const out = collector();
    const { app } = await startApp({ level: 'info' }, out.stream);
    await app.stop(500);
    const lines = out.parsed();
    const start = lines.find((l) => l.msg === 'sipspan starting');
    assert.ok(start !== undefined);
    assert.deepEqual(start.routes, ['sip-signaling']);
    assert.equal((start.config as { logs: { level: string } }).logs.level, 'info');
    assert.ok(lines.some((l) => l.msg === 'route configured' && l.service === 'sip-signaling'));
    assert.ok(lines.some((l) => l.state === 'ready' && l.msg === 'sipspan ready'));
    assert.ok(lines.some((l) => l.state === 'draining'));
    const last = lines[lines.length - 1];
    assert.equal(last.msg, 'sipspan stopped');
    assert.equal(last.log_lines_dropped, 0);
    for (const l of lines) assert.equal(l.node, 'node-t');
    assert.deepEqual(
      redactSecrets({ otlp: { api_key: 'k', password: 'p', headers: [{ token: 't', name: 'n' }] }, port: 1 }),
      {
        otlp: {
          api_key: '[redacted]',
          password: '[redacted]',
          headers: [{ token: '[redacted]', name: 'n' }],
        },
        port: 1,
      },
    );
  });

  test('createLogger(config) alone: the same line shape to the configured file, flushed on demand', async () => {
    const file = join(dir, 'process.log');
    const config = buildConfig({
      node: 'n1',
      routes: [{ name: 'r', listen: ['udp://127.0.0.1:5060'], upstream: 'udp://127.0.0.1:5070' }],
      logs: { destination: file, level: 'warn' },
    });
    const logger = createLogger(config);
    logger.info('not at this level');
    logger.error({ err_code: 'X' }, 'config reload failed');
    await new Promise<void>((r) => logger.flush(() => r()));
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].level, 'error');
    assert.equal(lines[0].node, 'n1');
    assert.equal(lines[0].msg, 'config reload failed');
  });

  test('stdout redirected to a file: written off the event loop, every line whole', () => {
    const file = join(dir, 'stdout.log');
    const fd = openSync(file, 'w');
    const sinkUrl = new URL('../../../src/sinks/logs/log-sink.ts', import.meta.url).href;
    const configUrl = new URL('../../../src/config/load-config.ts', import.meta.url).href;
    const script = `
      const { createLogger } = await import(${JSON.stringify(sinkUrl)});
      const { buildConfig } = await import(${JSON.stringify(configUrl)});
      const logger = createLogger(buildConfig({ node: 'child', routes: [{ name: 'r', listen: ['udp://127.0.0.1:5060'], upstream: 'udp://127.0.0.1:5070' }] }));
      for (let i = 0; i < 5000; i++) logger.info({ i }, 'line');
      await new Promise((r) => logger.flush(r));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', fd, 'pipe'],
      timeout: 20_000,
    });
    closeSync(fd);
    assert.equal(r.status, 0, r.stderr?.toString());
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 5000);
    lines.forEach((l, i) => {
      assert.equal((JSON.parse(l) as Line).i, i);
    });
  });
});
