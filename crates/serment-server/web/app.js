// Serment patient page (issue 13 §3). Plain ES module, no framework, no third-party origin, no
// inline script. The Rust client core runs in a worker (worker.js); this module only renders.
// Keys at rest: the keystore payload the worker hands back is encrypted with a non-extractable
// AES-GCM key (WebCrypto) that lives in IndexedDB: script on this origin can use the key but
// never read it (docs/THREAT_MODEL.md, "The patient's page").
const $ = (id) => document.getElementById(id);
const statusEl = $('server-status');

// --- the worker ---------------------------------------------------------------------------
const worker = new Worker('/assets/worker.js', { type: 'module' });
let nextId = 1;
const pending = new Map();
worker.onmessage = (e) => {
  const { id, ok, result, error } = e.data;
  const p = pending.get(id);
  pending.delete(id);
  if (p) (ok ? p.resolve(result) : p.reject(new Error(error)));
};
function call(op, args, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, op, args }, transfer);
  });
}

// --- keys at rest: IndexedDB + a non-extractable WebCrypto key ----------------------------
function idb() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open('serment', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('kv');
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}
async function kv(mode, f) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction('kv', mode);
    const req = f(tx.objectStore('kv'));
    tx.oncomplete = () => resolve(req && req.result);
    tx.onerror = () => reject(tx.error);
  });
}
const kvGet = (k) => kv('readonly', (s) => s.get(k));
const kvPut = (k, v) => kv('readwrite', (s) => s.put(v, k));
const kvClear = () => kv('readwrite', (s) => s.clear());

async function wrappingKey() {
  let key = await kvGet('wrapping-key');
  if (!key) {
    key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    await kvPut('wrapping-key', key);
  }
  return key;
}
async function savePayload(payload) {
  if (!payload) return;
  const key = await wrappingKey();
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ad = new TextEncoder().encode('serment/v1/page-keystore');
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: ad }, key, payload);
  payload.fill(0);
  await kvPut('keystore', { iv, ct: new Uint8Array(ct) });
}
async function loadPayload() {
  const stored = await kvGet('keystore');
  const key = await kvGet('wrapping-key');
  if (!stored || !key) return null;
  const ad = new TextEncoder().encode('serment/v1/page-keystore');
  const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: stored.iv, additionalData: ad }, key, stored.ct);
  return new Uint8Array(pt);
}

// --- rendering ------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return e;
}
function date(secs) {
  return secs ? new Date(secs * 1000).toLocaleString('fr-FR', { timeZone: 'UTC' }) + ' UTC' : '';
}
function show(section) {
  for (const id of ['login', 'register', 'documents', 'viewer']) $(id).hidden = id !== section && !(section === 'viewer' && id === 'documents');
}
function failure(where, err) {
  where.replaceChildren(el('p', { class: 'error', role: 'alert' }, err.message || String(err)));
}

async function renderList() {
  const box = $('document-list');
  box.replaceChildren(el('p', { class: 'empty' }, 'Vérification des documents…'));
  const { documents, payload } = await call('list');
  await savePayload(payload);
  if (documents.length === 0) {
    box.replaceChildren(el('p', { class: 'empty' }, 'Aucun document.'));
    return;
  }
  const rows = documents.map((d) => {
    const badge = d.verified
      ? el('span', { class: 'badge ok' }, 'vérifié')
      : el('span', { class: 'badge failed', title: d.error || '' }, 'échec');
    const open = el('button', { type: 'button', class: 'open', 'data-doc': d.doc_id }, d.title || '(sans titre)');
    open.addEventListener('click', () => openDocument(d.doc_id, d.version));
    return el('tr', { 'data-doc': d.doc_id }, el('td', {}, open), el('td', {}, d.author || ''),
      el('td', {}, date(d.created_at)), el('td', {}, badge));
  });
  box.replaceChildren(el('table', { class: 'docs' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Document'), el('th', {}, 'Auteur'), el('th', {}, 'Date'), el('th', {}, 'Intégrité'))),
    el('tbody', {}, ...rows)));
}

function labTable(report) {
  const head = el('tr', {}, ...['Examen', 'Résultat', 'Unité', 'Valeurs de référence', 'Indicateurs'].map((h) => el('th', {}, h)));
  const rows = report.rows.map((r) => el('tr', { class: r.flags ? 'flagged' : '' },
    el('td', {}, r.test), el('td', { class: 'num' }, r.value), el('td', {}, r.unit),
    el('td', {}, r.reference_range), el('td', {}, r.flags)));
  return el('table', { class: 'lab' }, el('thead', {}, head), el('tbody', {}, ...rows));
}

async function openDocument(docId, version) {
  const v = $('viewer');
  v.hidden = false;
  const body = $('viewer-body');
  $('viewer-title').textContent = 'Ouverture…';
  body.replaceChildren();
  $('timeline').replaceChildren();
  try {
    const { info, content, payload } = await call('open', { docId, version });
    await savePayload(payload);
    if (!info.ok) {
      $('viewer-title').textContent = 'Document refusé';
      body.replaceChildren(el('div', { class: 'integrity-error', role: 'alert' },
        el('strong', {}, 'Échec de la vérification d’intégrité. '),
        'Ce document a été modifié ou ne peut pas être prouvé : aucun contenu n’est affiché.',
        el('p', { class: 'detail' }, info.error)));
      return;
    }
    $('viewer-title').textContent = info.title || '(sans titre)';
    const meta = el('p', { class: 'meta' }, `De ${info.author}${info.created ? ` · ${info.created}` : ""} · `,
      el('span', { class: 'badge ok' }, 'vérifié'));
    if (info.lab) {
      body.replaceChildren(meta, info.lab.date ? el('p', { class: 'meta' }, `Prélèvement : ${info.lab.date}`) : '', labTable(info.lab));
    } else {
      const blob = new Blob([content], { type: info.mime_type || 'application/octet-stream' });
      const a = el('a', { href: URL.createObjectURL(blob), download: info.filename || 'document', class: 'download' }, 'Télécharger le document');
      body.replaceChildren(meta, el('p', {}, `${info.mime_type}, ${content.length} octets. `, a));
    }
    const { entries, payload: p2 } = await call('timeline', { docId });
    await savePayload(p2);
    renderTimeline(entries);
  } catch (err) {
    $('viewer-title').textContent = 'Erreur';
    failure(body, err);
  }
}

function renderTimeline(entries) {
  const t = $('timeline');
  if (entries.length === 0) {
    t.replaceChildren(el('p', { class: 'empty' }, 'Aucun accès enregistré.'));
    return;
  }
  t.replaceChildren(el('h3', {}, 'Qui a ouvert ce document'), el('ol', { class: 'timeline' }, ...entries.map((a) =>
    el('li', { class: a.receipted ? 'receipted' : 'unreceipted' },
      el('time', {}, date(a.at)), ' ', el('strong', {}, a.handle), ` a lu ${a.what === 'blob' ? 'le contenu' : 'la clé'} (version ${a.doc_version}) — entrée ${a.index} du journal, prouvée`,
      a.receipted ? '' : el('span', { class: 'badge warn' }, 'sans reçu : attesté par le serveur seul')))));
}

// A request to recover this account (social recovery, PROTOCOL.md §4.3; REVIEW5 U13): shown
// above everything, with a veto, for as long as it is pending. Recovering an account that is
// not the patient's own request is a takeover; the veto is this device's signed log entry.
function renderRecoveries(requests) {
  const box = $('recoveries');
  if (requests.length === 0) {
    box.replaceChildren();
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.replaceChildren(...requests.map((r) => {
    const veto = el('button', { type: 'button', class: 'veto', 'data-request': r.request_id }, 'Bloquer cette récupération');
    const msg = el('div', { 'aria-live': 'polite' });
    veto.addEventListener('click', async () => {
      veto.disabled = true;
      try {
        const { requests: left, payload } = await call('veto', { requestId: r.request_id });
        await savePayload(payload);
        renderRecoveries(left);
      } catch (err) {
        veto.disabled = false;
        failure(msg, err);
      }
    });
    return el('div', { class: 'integrity-error recovery', role: 'alert', 'data-request': r.request_id },
      el('strong', {}, 'Une récupération de votre compte est en cours. '),
      `Un nouvel appareil (empreinte ${r.fingerprint}) a demandé le ${date(r.logged_at)} à récupérer votre compte avec vos contacts de confiance `
      + `(${r.approvals.length} accord(s) sur ${r.threshold} nécessaires). Il pourra lire tous vos documents à partir du ${date(r.ready_at)}. `
      + 'Si ce n’est pas vous, bloquez-la maintenant.', el('p', {}, veto), msg);
  }));
}

async function checkRecoveries() {
  try {
    const { requests, payload } = await call('recoveries');
    await savePayload(payload);
    renderRecoveries(requests);
  } catch (err) {
    $('recoveries').hidden = false;
    failure($('recoveries'), err);
  }
}

// --- flows ----------------------------------------------------------------------------------
async function loggedIn(handle, payload) {
  await savePayload(payload);
  $('who').textContent = handle;
  $('login').hidden = true;
  $('register').hidden = true;
  $('documents').hidden = false;
  $('logout').hidden = false;
  await checkRecoveries();
  await renderList();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const file = $('keystore').files[0];
  const msg = $('login-message');
  if (!file) return failure(msg, new Error('Choisissez votre fichier de clés.'));
  msg.replaceChildren(el('p', {}, 'Déverrouillage…'));
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const { handle, payload } = await call('login', { keystore: bytes, passphrase: $('passphrase').value });
    $('passphrase').value = '';
    msg.replaceChildren();
    await loggedIn(handle, payload);
  } catch (err) {
    failure(msg, err);
  }
});

// Creating an identity in the page: the same code as `serment id new` + `serment register`,
// in the worker; the keystore file is offered for download, since without it (or this
// browser's storage) the identity cannot be recovered.
$('register-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const msg = $('register-message');
  const handle = $('new-handle').value.trim();
  const passphrase = $('new-passphrase').value;
  if (!handle) return failure(msg, new Error('Choisissez un identifiant.'));
  if ([...passphrase].length < 8) return failure(msg, new Error('La phrase de passe doit compter 8 caractères au moins.'));
  if (passphrase !== $('new-passphrase2').value) return failure(msg, new Error('Les deux phrases de passe diffèrent.'));
  msg.replaceChildren(el('p', {}, 'Création des clés et enregistrement…'));
  try {
    const { handle: h, payload, file } = await call('register', { handle, passphrase });
    $('new-passphrase').value = '';
    $('new-passphrase2').value = '';
    msg.replaceChildren();
    const url = URL.createObjectURL(new Blob([file], { type: 'application/octet-stream' }));
    const box = $('keystore-download');
    box.replaceChildren(el('p', { class: 'notice' }, `Compte « ${h} » créé. `,
      el('a', { href: url, download: 'keystore.srmk', id: 'keystore-link', class: 'download' }, 'Télécharger mon fichier de clés (keystore.srmk)'),
      ' — gardez-le en lieu sûr avec votre phrase de passe : il permet de vous connecter depuis un autre navigateur ou avec la ligne de commande.'));
    box.hidden = false;
    await loggedIn(h, payload);
  } catch (err) {
    failure(msg, err);
  }
});

// The keystore file, in any session: sealed in the worker under a passphrase chosen here
// (Argon2id at the CLI's default cost), offered as keystore.srmk.
$('export-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const msg = $('export-message');
  const passphrase = $('export-passphrase').value;
  if ([...passphrase].length < 8) return failure(msg, new Error('La phrase de passe doit compter 8 caractères au moins.'));
  if (passphrase !== $('export-passphrase2').value) return failure(msg, new Error('Les deux phrases de passe diffèrent.'));
  msg.replaceChildren(el('p', {}, 'Chiffrement du fichier de clés…'));
  try {
    const { file } = await call('export', { passphrase });
    $('export-passphrase').value = '';
    $('export-passphrase2').value = '';
    const url = URL.createObjectURL(new Blob([file], { type: 'application/octet-stream' }));
    msg.replaceChildren(el('p', { class: 'notice' },
      el('a', { href: url, download: 'keystore.srmk', id: 'export-link', class: 'download' }, 'Télécharger keystore.srmk'),
      ' — gardez-le en lieu sûr avec sa phrase de passe.'));
  } catch (err) {
    failure(msg, err);
  }
});

$('logout').addEventListener('click', async () => {
  await call('logout');
  await kvClear();
  location.reload();
});

async function health() {
  try {
    const r = await fetch('/healthz', { credentials: 'omit', cache: 'no-store' });
    const j = await r.json();
    statusEl.textContent = r.ok && j.status === 'ok' ? 'disponible' : 'indisponible';
    statusEl.dataset.state = r.ok ? 'ok' : 'down';
  } catch {
    statusEl.textContent = 'injoignable';
    statusEl.dataset.state = 'down';
  }
}

async function start() {
  health();
  try {
    const payload = await loadPayload();
    if (payload) {
      const { handle, payload: p } = await call('resume', { payload }, [payload.buffer]);
      await loggedIn(handle, p);
      return;
    }
  } catch (err) {
    failure($('login-message'), err);
  }
  $('login').hidden = false;
  $('register').hidden = false;
}
start();
