// bench/web.mjs — the browser half of bench/web.sh (issue 13 §5). Prints one JSON object:
//   cold_load_ms   median over RUNS fresh browsers: navigation start to the page usable (#login
//                  shown) and the wasm module received (the worker fetches it at start);
//   dcl_ms/load_ms the navigation timing of those loads (medians);
//   login_open_ms  median over RUNS fresh workers: log in (keystore unlock, Argon2id at the
//                  keystore's cost, login, log sync) then open the document (fetch, every check,
//                  decrypt) — what `serment get` does;
//   open_ms        median of the open alone, in those same workers.
// The worker is the page's own (/assets/worker.js, the Rust client core in wasm), started from
// the page's origin, so the CSP and SRI apply as for the patient.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(new URL('../tests/browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env('SERMENT_URL');
const keystore = [...readFileSync(env('SERMENT_KEYSTORE'))];
const passphrase = env('SERMENT_PASSPHRASE');
const doc = env('SERMENT_DOC');
const size = Number(env('SERMENT_SIZE'));
const runs = Number(process.env.RUNS || 5);
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const cold = [], dcl = [], load = [], loginOpen = [], open = [];
for (let i = 0; i < runs; i++) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
  try {
    const page = await (await browser.newContext()).newPage();
    const wasm = page.waitForResponse((r) => r.url().endsWith('/assets/serment_wasm_bg.wasm'));
    const t0 = Date.now();
    await page.goto(base + '/');
    await page.waitForSelector('#login:not([hidden])');
    await (await wasm).finished();
    cold.push(Date.now() - t0);
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd };
    });
    dcl.push(nav.dcl);
    load.push(nav.load);

    const t = await page.evaluate(async ({ keystore, passphrase, doc, size }) => {
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
      const t0 = performance.now();
      await call('login', { keystore: new Uint8Array(keystore), passphrase });
      const t1 = performance.now();
      const r = await call('open', { docId: doc, version: 1 });
      const t2 = performance.now();
      if (!r.info.ok) throw new Error(`open failed: ${r.info.error}`);
      if (r.content.length !== size) throw new Error(`got ${r.content.length} bytes, not ${size}`);
      w.terminate();
      return { loginOpen: t2 - t0, open: t2 - t1 };
    }, { keystore, passphrase, doc, size });
    loginOpen.push(t.loginOpen);
    open.push(t.open);
  } finally {
    await browser.close();
  }
}
console.log(JSON.stringify({
  cold_load_ms: median(cold), dcl_ms: median(dcl), load_ms: median(load),
  login_open_ms: median(loginOpen), open_ms: median(open),
  runs: { cold, loginOpen, open },
}));
