// Serment patient page (issue 13 §3): the worker that runs the Rust client core compiled to
// WebAssembly. Every check (log pinning and proofs, key histories, document open, audit) is the
// CLI's, unchanged; the transport is a synchronous same-origin XMLHttpRequest, which browsers
// allow in workers only. The one thing done outside Rust is the AES-256-GCM of the chunks, which
// the browser's WebCrypto decrypts (PROTOCOL.md §2.1), after Rust has checked the header, the key
// wrap, every chunk's hash and the author's signature, and before Rust cross-checks the first
// and last chunks and decodes the content (openVerified below). The decrypted keystore never leaves this worker except as the payload
// the page wraps with its non-extractable WebCrypto key.
import init, { Client } from '/assets/serment_wasm.js';

// The module is fetched with Subresource Integrity: the server fills in its SHA-384.
// The module uses WebAssembly SIMD (PROTOCOL.md §2.1): a browser without it cannot compile it,
// and is told so rather than shown the engine's message. The probe is the smallest module with a
// SIMD instruction (i8x16.splat, as wasm-feature-detect's).
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1,
  0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
const ready = init({ module_or_path: fetch('/assets/serment_wasm_bg.wasm', { integrity: '{{WASM_SRI}}' }) })
  .catch((err) => {
    if (!WebAssembly.validate(SIMD_PROBE)) {
      throw new Error('Ce navigateur est trop ancien pour ouvrir vos documents ici (il lui faut '
        + 'WebAssembly SIMD : Chrome 91, Firefox 89, Safari 16.4 ou plus récent).');
    }
    throw err;
  });
let client = null;

const subtle = self.crypto && self.crypto.subtle;

function unhex(h) {
  const b = new Uint8Array(h.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(h.substr(2 * i, 2), 16);
  return b;
}

// Opens a version: Rust checks everything but the chunks' AEAD (open_begin), WebCrypto decrypts
// the chunks (each tag checked), Rust finishes (open_end). Without WebCrypto (not a secure
// context), c.open() decrypts in Rust. The verdict is then read with c.open(). Returns who
// decrypted: 'webcrypto', 'wasm' (no WebCrypto here), or '' (opened before, or refused by a check).
async function openVerified(c, docId, version) {
  if (!subtle) return 'wasm';
  const job = c.open_begin(docId, version);
  if (!job) return '';
  const { aad, chunks } = JSON.parse(job);
  const sealed = c.pending_sealed(docId, version);
  const raw = c.pending_key(docId, version);
  let decrypted = false;
  try {
    const key = await subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt']);
    raw.fill(0);
    const additionalData = unhex(aad);
    const parts = await Promise.all(chunks.map(([nonce, offset, len]) =>
      subtle.decrypt({ name: 'AES-GCM', iv: unhex(nonce), additionalData, tagLength: 128 }, key,
        sealed.subarray(offset, offset + len))));
    // Each chunk's plaintext is copied once, straight into the wasm module's buffer, and
    // overwritten here.
    parts.forEach((p, i) => {
      const u = new Uint8Array(p);
      c.pending_plain(docId, version, i, u);
      u.fill(0);
    });
    decrypted = true;
  } catch (_) {
    decrypted = false; // a tag that does not verify: refused as a decryption failure
  } finally {
    raw.fill(0);
  }
  c.open_end(docId, version, decrypted);
  return 'webcrypto';
}

function need() {
  if (!client) throw new Error('non connecté');
  return client;
}

const ops = {
  login: ({ keystore, passphrase }) => {
    client = Client.login(self.location.origin, keystore, passphrase);
    return { handle: client.handle(), payload: client.payload() };
  },
  register: ({ handle, passphrase }) => {
    client = Client.register(self.location.origin, handle, passphrase);
    return { handle: client.handle(), payload: client.payload(), file: client.keystore_file() };
  },
  resume: ({ payload }) => {
    client = Client.resume(self.location.origin, payload);
    return { handle: client.handle(), payload: client.payload() };
  },
  list: async () => {
    const c = need();
    for (const { doc_id: docId, version } of JSON.parse(c.versions())) await openVerified(c, docId, version);
    return { documents: JSON.parse(c.documents()), payload: c.payload() };
  },
  open: async ({ docId, version }) => {
    const c = need();
    const engine = await openVerified(c, docId, version);
    const info = JSON.parse(c.open(docId, version));
    const content = info.ok ? c.content(docId, version) : null;
    return { info, content, payload: c.payload(), engine };
  },
  export: ({ passphrase }) => ({ file: need().export_keystore(passphrase) }),
  timeline: ({ docId }) => ({ entries: JSON.parse(need().timeline(docId)), payload: need().payload() }),
  // Pending recoveries of this account (REVIEW5 U13), and the veto, as `serment recovery veto`.
  recoveries: () => ({ requests: JSON.parse(need().recovery_requests()), payload: need().payload() }),
  veto: ({ requestId }) => {
    need().veto(requestId);
    return { requests: JSON.parse(need().recovery_requests()), payload: need().payload() };
  },
  logout: () => {
    if (client) client.free();
    client = null;
    return {};
  },
};

self.onmessage = async (e) => {
  const { id, op, args } = e.data;
  try {
    await ready;
    const f = ops[op];
    if (!f) throw new Error(`unknown operation ${op}`);
    const result = await f(args || {});
    const transfer = [result.content, result.file].filter(Boolean).map((b) => b.buffer);
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (err) {
    self.postMessage({ id, ok: false, error: String((err && err.message) || err) });
  }
};
