// Serment patient page (issue 13 §3): the worker that runs the Rust client core compiled to
// WebAssembly. Every check (log pinning and proofs, key histories, document open, audit) is the
// CLI's, unchanged; the transport is a synchronous same-origin XMLHttpRequest, which browsers
// allow in workers only. The decrypted keystore never leaves this worker except as the payload
// the page wraps with its non-extractable WebCrypto key.
import init, { Client } from '/assets/serment_wasm.js';

// The module is fetched with Subresource Integrity: the server fills in its SHA-384.
const ready = init({ module_or_path: fetch('/assets/serment_wasm_bg.wasm', { integrity: '{{WASM_SRI}}' }) });
let client = null;

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
  list: () => ({ documents: JSON.parse(need().documents()), payload: need().payload() }),
  open: ({ docId, version }) => {
    const c = need();
    const info = JSON.parse(c.open(docId, version));
    const content = info.ok ? c.content(docId, version) : null;
    return { info, content, payload: c.payload() };
  },
  timeline: ({ docId }) => ({ entries: JSON.parse(need().timeline(docId)), payload: need().payload() }),
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
    const result = f(args || {});
    const transfer = [result.content, result.file].filter(Boolean).map((b) => b.buffer);
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (err) {
    self.postMessage({ id, ok: false, error: String((err && err.message) || err) });
  }
};
