// Issue 13 §4: the patient's page in real Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), against a `serment serve` over TLS started by
// crates/serment-cli/tests/cli/browser.rs, which passes SERMENT_URL and SERMENT_ARTIFACTS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.SERMENT_URL;
const artifacts = process.env.SERMENT_ARTIFACTS ?? 'artifacts';
// The headless flags of this machine kind's notes.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update'];
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

test('the page loads with its headers, runs, and asks nothing of another origin', async () => {
  assert.ok(base, 'SERMENT_URL is not set');
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
  try {
    // The test server's certificate is self-signed for 127.0.0.1.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

    const resp = await page.goto(base + '/', { waitUntil: 'networkidle' });
    assert.equal(resp.status(), 200);
    const h = resp.headers();
    assert.equal(h['content-security-policy'], CSP);
    assert.equal(h['referrer-policy'], 'no-referrer');
    assert.match(h['permissions-policy'], /camera=\(\)/);
    assert.equal(h['x-content-type-options'], 'nosniff');

    // The module script ran (SRI and CSP let it): it asked the server's health, same origin.
    await page.waitForFunction(
      () => document.getElementById('server-status')?.dataset.state === 'ok');
    assert.equal(await page.textContent('#server-status'), 'disponible');
    assert.equal(await page.textContent('h1'), 'Serment');

    // No request left the origin (the network log of the whole load).
    const origin = new URL(base).origin;
    assert.ok(requests.length >= 4, `requests: ${requests}`);
    for (const u of requests) assert.equal(new URL(u).origin, origin, `request to ${u}`);
    assert.deepEqual(errors, []);
    await page.screenshot({ path: join(artifacts, 'page-login.png'), fullPage: true });
    await context.close();
  } finally {
    await browser.close();
  }
});

test('a tampered asset is refused by Subresource Integrity', async () => {
  assert.ok(base, 'SERMENT_URL is not set');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    // A server (or anything on the path) that changes app.js by one byte: the browser must not
    // run it, so the page never reports the server's health.
    await page.route('**/assets/app.js', async (route) => {
      const r = await route.fetch();
      const body = (await r.text()).replace('disponible', 'disponiblE');
      await route.fulfill({ response: r, body });
    });
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(base + '/', { waitUntil: 'networkidle' });
    assert.equal(await page.textContent('#server-status'), '…');
    assert.ok(errors.some((e) => /integrity/i.test(e)), `console: ${errors}`);
    await context.close();
  } finally {
    await browser.close();
  }
});
