/**
 * The call view in a real browser (headless Chromium driven by playwright-core)
 * against the two-route chain in this process: the calls list fills from the
 * API and live from server-sent events, filters narrow it, one call shows a
 * ladder with one arrow per stored message and the waterfall of its spans,
 * and the raw view of a forwarded INVITE highlights the trace headers sipspan
 * added. Screenshots go to test/artifacts/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type { CallDetail } from '../../src/sinks/capture/call-detail.ts';
import { type Chain, startChain } from '../sinks/capture/capture-rig.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');
const CALLS = 10;

/**
 * Until the table shows exactly n rows, whose text all include `text` when given
 * (polled from here: the page's CSP rightly refuses evaluated strings).
 */
async function waitRows(page: Page, n: number, text = '', timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  let rows: string[] = [];
  while (performance.now() < until) {
    rows = await page.locator('table.calls tbody tr').allTextContents();
    if (rows.length === n && rows.every((r) => r.includes(text))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(
    `expected ${n} rows with ${JSON.stringify(text)} in the calls table, saw ${JSON.stringify(rows)}`,
  );
}

describe('call view in the browser', () => {
  let chain: Chain;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const pageErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install -y chromium)`);
    const { chromium } = await import('playwright-core');
    mkdirSync(ARTIFACTS, { recursive: true });
    chain = await startChain();
    const placed = await chain.place(CALLS, 40, 100);
    assert.equal(placed.filter((c) => c.result === 'answered').length, CALLS);
    profile = mkdtempSync(join(tmpdir(), 'sipspan-chromium-'));
    // A fresh profile each run; launchPersistentContext is how playwright passes --user-data-dir.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1600, height: 1000 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await context?.close();
    await chain?.stop();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  });

  test('the calls list shows every captured call, and new calls arrive live', async () => {
    await page.goto(`${chain.adminUrl}/`);
    await page.waitForSelector('table.calls tbody tr');
    assert.equal(await page.locator('table.calls tbody tr').count(), CALLS);
    await page.waitForSelector('.hcard .hname');
    assert.deepEqual(await page.locator('.hcard .hname').allTextContents(), [
      'sip-gateway',
      'sip-signaling',
      'capture store',
    ]);
    assert.match((await page.locator('#live').textContent()) ?? '', /live/);
    // Live: calls placed while the page is open appear without a reload.
    const more = await chain.place(2, 40, 50);
    await waitRows(page, CALLS + 2);
    const newest = await page.locator('table.calls tbody tr').first().locator('td.callid').textContent();
    assert.ok(more.some((c) => c.callId === newest));
    // Let the last updates arrive and the highlight of new rows fade before the picture.
    await new Promise((r) => setTimeout(r, 1800));
    await page.screenshot({ path: join(ARTIFACTS, 'calls-list.png'), fullPage: true });
  });

  test('filters narrow the list: search by Call-ID and by user, service, outcome, minimum setup', async () => {
    const call = [...chain.capture.store.calls()][3];
    await page.fill('input[name=q]', call.callIds[0].slice(0, 12));
    await waitRows(page, 1, call.callIds[0]);
    assert.equal(await page.locator('table.calls tbody tr td.callid').textContent(), call.callIds[0]);
    assert.match(page.url(), /\?q=/);
    await page.fill('input[name=q]', 'caller3');
    await waitRows(page, 1, 'caller3');
    assert.equal(await page.locator('table.calls tbody tr td.user').first().textContent(), 'caller3');
    await page.fill('input[name=q]', '');
    await page.selectOption('select[name=outcome]', 'failed');
    await page.waitForSelector('table.calls tbody tr', { state: 'detached' });
    assert.equal(await page.locator('.list .empty').isVisible(), true);
    await page.selectOption('select[name=outcome]', 'answered');
    await page.selectOption('select[name=service]', 'sip-signaling');
    await waitRows(page, CALLS + 2);
    await page.fill('input[name=min_setup_ms]', '100000');
    await waitRows(page, 0);
    await page.click('text=Clear');
    await waitRows(page, CALLS + 2);
  });

  test('one call: a ladder with one arrow per stored message, and the waterfall of its spans', async () => {
    const row = page.locator('table.calls tbody tr').nth(4);
    const traceId = (await row.getAttribute('data-trace'))!;
    await row.locator('a').click();
    await page.waitForURL(`**/calls/${traceId}*`);
    await page.waitForSelector('svg.ladder g.arrow');
    const stored = chain.capture.store.get(traceId)!.messages.length;
    assert.equal(stored, 28);
    assert.equal(await page.locator('svg.ladder g.arrow').count(), stored);
    assert.deepEqual(await page.locator('svg.ladder .colhead .ckind').allTextContents(), [
      'caller',
      'sipspan',
      'service',
      'sipspan',
      'service · callee',
    ]);
    const caller = chain.capture.store
      .get(traceId)!
      .messages[0].bytes.toString('latin1')
      .match(/From: "[^"]*" <sip:([^@]+)@/)![1];
    assert.deepEqual(await page.locator('svg.ladder .colhead .cname').allTextContents(), [
      caller,
      'sip-gateway',
      'sip-gateway',
      'sip-signaling',
      'sip-signaling',
    ]);
    // The waterfall: every span the span store has for the trace, on the call's time axis.
    const res = await fetch(`${chain.adminUrl}/api/traces/${traceId}`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { spans?: unknown[] } | unknown[];
    const spans = Array.isArray(body) ? body : (body.spans ?? []);
    assert.ok(spans.length >= 8, `spans: ${spans.length}`);
    assert.equal(await page.locator('.wf .wfrow.span').count(), spans.length);
    assert.match((await page.locator('.waterfall .ptitle').textContent()) ?? '', /from the span store/);
    assert.match((await page.locator('.breakdown .ptitle').textContent()) ?? '', /from spans/);
    assert.equal(
      await page.locator('.wf .mtick').count(),
      stored,
      'one message tick per arrow on the time axis',
    );
    // The per-hop breakdown names both services and sipspan's own time at each hop.
    const legend = await page.locator('.breakdown .legend .name').allTextContents();
    assert.deepEqual(legend, [
      'sipspan sip-gateway',
      'sip-gateway',
      'sipspan sip-signaling',
      'sip-signaling',
    ]);
    await page.screenshot({ path: join(ARTIFACTS, 'call-ladder.png'), fullPage: true });
  });

  test('the raw view of a forwarded INVITE highlights the trace headers sipspan added', async () => {
    const traceId = page.url().split('/calls/')[1].split('#')[0];
    const detail = (await (
      await fetch(`${chain.adminUrl}/api/capture/calls/${traceId}`)
    ).json()) as CallDetail;
    const fwd = detail.messages.find(
      (m) => m.direction === 'out' && m.is_request && m.method === 'INVITE' && m.hop === 1,
    )!;
    await page.click(`svg.ladder g.arrow[data-seq="${fwd.seq}"]`);
    await page.waitForSelector('svg.ladder g.arrow.sel');
    assert.equal(await page.locator('svg.ladder g.arrow.sel').getAttribute('data-seq'), String(fwd.seq));
    const marked = await page.locator('.side pre.raw mark.add').allTextContents();
    assert.ok(
      marked.some((t) => t.startsWith('traceparent: 00-') && t.includes(traceId)),
      `traceparent highlighted: ${JSON.stringify(marked)}`,
    );
    assert.ok(marked.includes(`X-Trace-Id: ${traceId}`));
    // The unmarked text is the rest of the message, unchanged.
    assert.equal(await page.locator('.side pre.raw').textContent(), fwd.raw);
    // What the signaling hop received had the gateway hop's trace headers: struck through there.
    await page.click('text=show as received');
    const struck = await page.locator('.side pre.raw del.rm').allTextContents();
    assert.ok(struck.some((t) => t.startsWith('traceparent: 00-')));
    await page.click('text=show as forwarded');
    await page.screenshot({ path: join(ARTIFACTS, 'call-raw-invite.png'), fullPage: false });
  });

  test('without spans for the trace, the waterfall is derived from the captured messages', async () => {
    await page.route('**/api/traces/**', (route) => route.fulfill({ status: 404, body: '{}' }));
    await page.reload();
    await page.waitForSelector('.wf .wfrow.span');
    assert.match(
      (await page.locator('.waterfall .ptitle').textContent()) ?? '',
      /derived from captured messages/,
    );
    // INVITE and BYE: a SERVER and a CLIENT span at each of the two hops.
    assert.equal(await page.locator('.wf .wfrow.span').count(), 8);
    assert.match((await page.locator('.breakdown .ptitle').textContent()) ?? '', /from captured messages/);
    await page.unroute('**/api/traces/**');
  });

  test('no script errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
