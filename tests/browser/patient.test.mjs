// Issue 13 §4: the patient's flows in real Chromium, against a `serment serve` over TLS with a
// lab and a patient set up by crates/serment-cli/tests/cli/browser.rs (the_patient_reads_results_in_
// chromium), which passes the patient's keystore file and passphrase, the FHIR bundle the lab
// imported, and the id of a document whose blob it tampered with on the server's disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} is not set`);
  return v;
};
const artifacts = process.env.SERMENT_ARTIFACTS ?? 'artifacts';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update'];
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

// The expected table, read from the bundle itself (not from the page's code): the report's
// result Observations, in order, with their values and units.
function expectedReport(bundlePath, title) {
  const b = JSON.parse(readFileSync(bundlePath, 'utf8'));
  const byUrl = new Map(b.entry.map((e) => [e.fullUrl, e.resource]));
  const dr = b.entry.map((e) => e.resource)
    .find((r) => r.resourceType === 'DiagnosticReport' && r.code.text === title);
  assert.ok(dr, `no DiagnosticReport ${title} in the bundle`);
  return dr.result.map((ref) => {
    const o = byUrl.get(ref.reference);
    return { test: o.code.text, value: String(o.valueQuantity.value), unit: o.valueQuantity.unit };
  });
}

test('log in, list, open a FHIR report, its access timeline, a tampered document', async () => {
  const base = env('SERMENT_URL');
  const origin = new URL(base).origin;
  const tampered = env('SERMENT_TAMPERED_DOC');
  const expected = expectedReport(env('SERMENT_FHIR_BUNDLE'), 'Lipid Panel');
  const documents = Number(env('SERMENT_DOCUMENTS'));
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const requests = [];
    context.on('request', (r) => requests.push(r.url()));
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));

    const resp = await page.goto(base + '/', { waitUntil: 'networkidle' });
    assert.equal(resp.headers()['content-security-policy'], CSP);
    await page.waitForSelector('#login:not([hidden])');
    await page.setInputFiles('#keystore', env('SERMENT_KEYSTORE'));
    await page.fill('#passphrase', env('SERMENT_PASSPHRASE'));
    await page.click('#login-button');

    // The list: every document, each verified in the browser, the tampered one failed.
    await page.waitForSelector('table.docs tbody tr', { timeout: 120000 });
    const rows = await page.$$eval('table.docs tbody tr', (trs) => trs.map((tr) => ({
      doc: tr.dataset.doc, title: tr.cells[0].textContent, author: tr.cells[1].textContent,
      date: tr.cells[2].textContent, badge: tr.cells[3].textContent,
    })));
    assert.equal(rows.length, documents, JSON.stringify(rows));
    for (const r of rows) {
      assert.match(r.date, /\d{4}/);
      assert.equal(r.badge, r.doc === tampered ? 'échec' : 'vérifié', JSON.stringify(r));
      // The author's handle comes from the verified signature: none for the failed one.
      if (r.doc !== tampered) assert.equal(r.author, 'labo-web', JSON.stringify(r));
    }
    assert.equal(await page.textContent('#who'), 'patient-web');
    await page.screenshot({ path: join(artifacts, 'page-list.png'), fullPage: true });

    // REVIEW5 U13: a pending request to recover this account, shown above the list with the new
    // device's fingerprint, and vetoed from the page (a signed log entry by this device).
    const rec = env('SERMENT_RECOVERY_REQUEST');
    await page.waitForSelector(`#recoveries .recovery[data-request="${rec}"]`);
    assert.match(await page.textContent('#recoveries'), /récupération de votre compte est en cours/);
    await page.screenshot({ path: join(artifacts, 'page-recovery.png'), fullPage: true });
    await page.click(`#recoveries button.veto[data-request="${rec}"]`);
    await page.waitForSelector('#recoveries', { state: 'hidden', timeout: 60000 });

    // A FHIR lab report, decrypted in the browser, shown as a table matching the bundle.
    await page.click('table.docs button.open >> text="Lipid Panel"');
    await page.waitForSelector('table.lab tbody tr');
    assert.equal(await page.textContent('#viewer-title'), 'Lipid Panel');
    const cells = await page.$$eval('table.lab tbody tr', (trs) => trs.map((tr) => ({
      test: tr.cells[0].textContent, value: tr.cells[1].textContent, unit: tr.cells[2].textContent,
    })));
    assert.deepEqual(cells, expected);
    // Its access history: this browser's own read, proven, with its receipt.
    await page.waitForSelector('ol.timeline li');
    const accesses = await page.$$eval('ol.timeline li', (lis) => lis.map((li) => ({
      text: li.textContent, receipted: li.classList.contains('receipted'),
    })));
    assert.ok(accesses.some((a) => a.text.includes('patient-web') && a.receipted), JSON.stringify(accesses));
    await page.screenshot({ path: join(artifacts, 'page-report.png'), fullPage: true });

    // The tampered document: an integrity error, and no content at all.
    await page.click(`tr[data-doc="${tampered}"] button.open`);
    await page.waitForSelector('.integrity-error');
    assert.match(await page.textContent('.integrity-error'), /intégrité/i);
    assert.equal(await page.$$eval('#viewer-body table, #viewer-body a.download', (x) => x.length), 0);
    await page.screenshot({ path: join(artifacts, 'page-integrity.png'), fullPage: true });

    // In a fresh worker: every good document's chunks were decrypted by WebCrypto's AES-GCM after
    // the Rust checks (PROTOCOL.md §2.1), the content is there; the tampered one is refused
    // before any decryption (its signature over the chunk hashes fails in Rust).
    const docs = await page.$$eval('tr[data-doc]', (rows) => rows.map((r) => r.dataset.doc));
    const verdicts = await page.evaluate(async ({ keystore, passphrase, docs }) => {
      const w = new Worker('/assets/worker.js', { type: 'module' });
      let id = 0;
      const call = (op, args) => new Promise((resolve, reject) => {
        const my = ++id;
        const on = (e) => {
          if (e.data.id !== my) return;
          w.removeEventListener('message', on);
          e.data.ok ? resolve(e.data.result) : reject(new Error(e.data.error));
        };
        w.addEventListener('message', on);
        w.postMessage({ id: my, op, args });
      });
      await call('login', { keystore: new Uint8Array(keystore), passphrase });
      const out = {};
      for (const d of docs) {
        const r = await call('open', { docId: d, version: 1 });
        out[d] = { ok: r.info.ok, engine: r.engine, bytes: r.content ? r.content.length : 0 };
      }
      w.terminate();
      return out;
    }, { keystore: [...readFileSync(env('SERMENT_KEYSTORE'))], passphrase: env('SERMENT_PASSPHRASE'), docs });
    assert.equal(Object.keys(verdicts).length, documents, JSON.stringify(verdicts));
    for (const [d, v] of Object.entries(verdicts)) {
      if (d === tampered) {
        assert.deepEqual(v, { ok: false, engine: '', bytes: 0 }, `tampered ${d}`);
      } else {
        assert.equal(v.ok, true, `${d}: ${JSON.stringify(v)}`);
        assert.equal(v.engine, 'webcrypto', `${d}: ${JSON.stringify(v)}`);
        assert.ok(v.bytes > 0, `${d}: no content`);
      }
    }

    // Keys at rest: a non-extractable WebCrypto key in IndexedDB, and only ciphertext beside it.
    const atRest = await page.evaluate(() => new Promise((resolve, reject) => {
      const r = indexedDB.open('serment', 1);
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const s = r.result.transaction('kv').objectStore('kv');
        const k = s.get('wrapping-key');
        const ks = s.get('keystore');
        k.transaction.oncomplete = () => resolve({
          extractable: k.result.extractable, algorithm: k.result.algorithm.name,
          stored: Object.keys(ks.result).sort(),
        });
      };
    }));
    assert.deepEqual(atRest, { extractable: false, algorithm: 'AES-GCM', stored: ['ct', 'iv'] });
    // A reload resumes from it without the passphrase.
    await page.reload({ waitUntil: 'networkidle' });
    await page.waitForSelector('table.docs tbody tr', { timeout: 120000 });

    // The keystore file, exported in this session (one that did not create the identity),
    // under a new passphrase, logs in from a fresh browser context.
    const other = 'une autre phrase de passe';
    await page.click('#export summary');
    await page.fill('#export-passphrase', other);
    await page.fill('#export-passphrase2', other);
    await page.click('#export-button');
    await page.waitForSelector('#export-link', { timeout: 120000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-link')]);
    const exported = join(artifacts, 'exported.srmk');
    await download.saveAs(exported);
    assert.equal(readFileSync(exported).subarray(0, 4).toString(), 'SRMK');
    const second = await browser.newContext({ ignoreHTTPSErrors: true });
    const p2 = await second.newPage();
    await p2.goto(base + '/', { waitUntil: 'networkidle' });
    await p2.waitForSelector('#login:not([hidden])');
    await p2.setInputFiles('#keystore', exported);
    await p2.fill('#passphrase', other);
    await p2.click('#login-button');
    await p2.waitForSelector('table.docs tbody tr', { timeout: 120000 });
    assert.equal(await p2.$$eval('table.docs tbody tr', (r) => r.length), documents);
    await second.close();

    for (const u of requests) assert.equal(new URL(u).origin, origin, `request to ${u}`);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await browser.close();
  }
});

test('create an identity in the page: register, an empty list, the keystore file, a reload resumes', async () => {
  const base = env('SERMENT_URL');
  const origin = new URL(base).origin;
  const handle = env('SERMENT_NEW_HANDLE');
  const passphrase = env('SERMENT_PASSPHRASE');
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
    const page = await context.newPage();
    const requests = [];
    context.on('request', (r) => requests.push(r.url()));
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));

    await page.goto(base + '/', { waitUntil: 'networkidle' });
    await page.waitForSelector('#register:not([hidden])');
    // Refused before anything is created: passphrases that differ.
    await page.fill('#new-handle', handle);
    await page.fill('#new-passphrase', passphrase);
    await page.fill('#new-passphrase2', passphrase + 'x');
    await page.click('#register-button');
    await page.waitForSelector('#register-message .error');
    await page.screenshot({ path: join(artifacts, 'page-register.png'), fullPage: true });
    await page.fill('#new-passphrase2', passphrase);
    await page.click('#register-button');
    // Registered and logged in: its own handle, no document yet, the keystore file offered.
    await page.waitForSelector('#documents:not([hidden]) .empty >> text="Aucun document."', { timeout: 120000 });
    assert.equal(await page.textContent('#who'), handle);
    assert.equal(await page.isHidden('#register'), true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#keystore-link')]);
    assert.equal(download.suggestedFilename(), 'keystore.srmk');
    // The CLI opens it (browser.rs: `serment id show` with the same passphrase).
    await download.saveAs(join(artifacts, 'registered-keystore.srmk'));
    await page.screenshot({ path: join(artifacts, 'page-registered.png'), fullPage: true });

    // A reload resumes from IndexedDB without the passphrase.
    await page.reload({ waitUntil: 'networkidle' });
    await page.waitForSelector('#documents:not([hidden]) .empty >> text="Aucun document."', { timeout: 120000 });
    assert.equal(await page.textContent('#who'), handle);

    for (const u of requests) assert.equal(new URL(u).origin, origin, `request to ${u}`);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await browser.close();
  }
});
