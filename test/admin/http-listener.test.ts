/**
 * The admin and metrics listener: read-only paths (GET, HEAD; 405 with Allow
 * otherwise), 404 for unknown paths, a failing handler answered 500.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HttpListener, sendText } from '../../src/admin/http-listener.ts';

const listener = new HttpListener('127.0.0.1', 0);
let base = '';

before(async () => {
  listener.handle('/healthz', (_req, res) => sendText(res, 200, 'ok\n'));
  listener.handle('/api/', (_req, res, url) => sendText(res, 200, `prefix ${url.pathname}\n`));
  listener.handle('/broken', () => {
    throw new Error('handler failed');
  });
  listener.handle('/broken-async', async () => {
    throw new Error('handler failed later');
  });
  await listener.listen();
  base = `http://127.0.0.1:${listener.port}`;
});

after(() => listener.close());

test('GET answers from the exact path or a registered prefix', async () => {
  const exact = await fetch(`${base}/healthz`);
  assert.equal(exact.status, 200);
  assert.equal(await exact.text(), 'ok\n');
  const prefixed = await fetch(`${base}/api/status`);
  assert.equal(await prefixed.text(), 'prefix /api/status\n');
});

test('HEAD answers like GET, without a body', async () => {
  const r = await fetch(`${base}/healthz`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(await r.text(), '');
});

test('any other method on a known path is 405 with Allow: GET, HEAD, and the handler never runs', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const r = await fetch(`${base}/healthz`, { method });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.get('allow'), 'GET, HEAD', method);
    assert.equal(await r.text(), 'method not allowed\n');
  }
});

test('an unknown path is 404 whatever the method', async () => {
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  assert.equal((await fetch(`${base}/nope`, { method: 'POST' })).status, 404);
});

test('a handler that throws, at once or later, is answered 500 and the listener goes on', async () => {
  const now = await fetch(`${base}/broken`);
  assert.equal(now.status, 500);
  assert.equal(await now.text(), 'error: handler failed\n');
  assert.equal((await fetch(`${base}/broken-async`)).status, 500);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
});
