//! The patient's page's client (issue 13 §2-§3): `serment-client`'s session, unchanged, driven
//! by the browser's transport. It runs in a Web Worker (`web/worker.js`): the transport is a
//! synchronous same-origin `XMLHttpRequest`, which browsers allow in workers, so every check of
//! the CLI (log key pin, consistency and inclusion proofs, key histories, signatures, AEAD,
//! audit with receipts) runs here as it does natively.
//!
//! What differs from the native transport: TLS and the origin are the browser's (the page is
//! served by the server it talks to, so the origin is the server); the browser follows
//! redirects by itself (a redirect can only reach this origin: the CSP's `connect-src 'self'`);
//! there is no streaming upload (the page only reads).

use std::collections::BTreeMap;
use std::sync::Arc;

use serment_client::ClientError;
use serment_client::api::Api;
use serment_client::documents::{GetResult, MAX_UNLOCKED_LEN, UnlockedGet};
use serment_client::http::{Body, HttpTransport, Request, Response};
use serment_client::keystore::Keystore;
use serment_client::vault::Session;
use serment_core::DocId;
use serment_core::stream::{CHUNK_SIZE, TAG_LEN};
use wasm_bindgen::prelude::*;
use web_sys::{XmlHttpRequest, XmlHttpRequestResponseType};
use zeroize::Zeroizing;

/// The browser's [`HttpTransport`]: one synchronous `XMLHttpRequest` per exchange (workers only).
#[derive(Debug)]
struct XhrTransport;

fn js_err(what: &str, v: &JsValue) -> ClientError {
    ClientError::Transport(format!(
        "{what}: {}",
        v.as_string()
            .or_else(|| js_sys::Error::from(v.clone()).message().as_string())
            .unwrap_or_else(|| "browser error".into())
    ))
}

impl HttpTransport for XhrTransport {
    fn send(&self, req: Request<'_>) -> Result<Response, ClientError> {
        let xhr = XmlHttpRequest::new().map_err(|e| js_err("XMLHttpRequest", &e))?;
        xhr.open_with_async(req.method.as_str(), req.url, false)
            .map_err(|e| js_err("open", &e))?;
        xhr.set_response_type(XmlHttpRequestResponseType::Arraybuffer);
        for (k, v) in &req.headers {
            xhr.set_request_header(k, v)
                .map_err(|e| js_err("header", &e))?;
        }
        let sent = match req.body {
            Body::Empty => xhr.send(),
            Body::Bytes(b) => xhr.send_with_opt_u8_array(Some(b)),
            Body::Reader(r) => {
                let mut v = Vec::new();
                r.read_to_end(&mut v)
                    .map_err(|e| ClientError::Transport(e.to_string()))?;
                xhr.send_with_opt_u8_array(Some(&v))
            }
        };
        sent.map_err(|e| js_err("send", &e))?;
        let status = xhr.status().map_err(|e| js_err("status", &e))?;
        if status == 0 {
            return Err(ClientError::Transport("network error".into()));
        }
        let buf = xhr.response().map_err(|e| js_err("response", &e))?;
        let bytes = if buf.is_null() || buf.is_undefined() {
            Vec::new()
        } else {
            let view = js_sys::Uint8Array::new(&buf);
            // A hostile server's endless answer must not fill the worker's memory (an abort,
            // not an error): nothing larger than a document the page opens is copied in.
            if u64::from(view.length()) > MAX_RESPONSE {
                return Err(ClientError::Transport(format!(
                    "the server's answer is larger than the page accepts ({MAX_RESPONSE} bytes)"
                )));
            }
            view.to_vec()
        };
        Ok(Response {
            status,
            body: Box::new(std::io::Cursor::new(bytes)),
        })
    }
}

/// The largest response the page copies into its memory: a sealed document of
/// [`MAX_UNLOCKED_LEN`] and a little more (its JSON answers are far smaller).
const MAX_RESPONSE: u64 = MAX_UNLOCKED_LEN + (1 << 20);

/// A version [`Client::open_begin`] checked, whose chunks the worker is decrypting into
/// `plain` (allocated once, at the padded length the checked header announces); `filled`
/// marks the chunks copied in, each exactly once.
struct Pending {
    got: UnlockedGet,
    plain: Zeroizing<Vec<u8>>,
    filled: Vec<bool>,
}

/// A document opened (or refused) in this session.
struct Opened {
    info: serde_json::Value,
    content: Option<Zeroizing<Vec<u8>>>,
}

/// The page's session: a keystore connected to the server that served the page.
#[wasm_bindgen]
pub struct Client {
    session: Session,
    opened: BTreeMap<(String, u32), Opened>,
    /// Versions checked by [`Client::open_begin`] whose chunks the worker is decrypting.
    pending: BTreeMap<(String, u32), Pending>,
    /// The keystore file of an identity created here ([`Client::register`]).
    file: Option<Vec<u8>>,
}

fn js(e: ClientError) -> JsError {
    JsError::new(&e.to_string())
}

fn parse_doc(doc_id: &str) -> Result<DocId, JsError> {
    DocId::from_hex(doc_id).map_err(|_| JsError::new("invalid document id"))
}

#[wasm_bindgen]
impl Client {
    /// Opens a keystore file (the `.srmk` the CLI writes, PROTOCOL.md §9) with its passphrase
    /// and connects to `origin`: the log key is checked against the keystore's pin, then the
    /// device logs in.
    ///
    /// # Errors
    /// A wrong passphrase or a damaged file (one uniform message), a changed log key, transport
    /// and server errors.
    pub fn login(origin: &str, keystore: &[u8], passphrase: String) -> Result<Client, JsError> {
        let ks = Keystore::open_bytes(keystore, Zeroizing::new(passphrase)).map_err(js)?;
        Client::connect(origin, ks)
    }

    /// Reconnects with a keystore payload saved by [`Client::payload`] (the page keeps it
    /// encrypted under its non-extractable WebCrypto key).
    ///
    /// # Errors
    /// As [`Client::login`].
    pub fn resume(origin: &str, payload: &[u8]) -> Result<Client, JsError> {
        let ks = Keystore::from_payload(payload).map_err(js)?;
        Client::connect(origin, ks)
    }

    /// Creates a new identity and device in this browser (as `serment id new`: an Ed25519
    /// identity key, a device with an X-Wing key), registers it with `origin` (as `serment
    /// register`: the device record posted, the log key pinned, the record checked in the log)
    /// and logs in. The keystore file of the new identity, sealed under `passphrase` with the
    /// CLI's default Argon2id cost, is kept for [`Client::keystore_file`]; the passphrase is not.
    ///
    /// # Errors
    /// A handle that is not valid, a passphrase the CLI's rule refuses
    /// (`serment_client::passphrase::weakness`: under 8 characters, or easy to guess, the
    /// handle counted as guessable), a handle taken by another identity (the server's 409),
    /// transport, server and log errors.
    pub fn register(origin: &str, handle: &str, passphrase: String) -> Result<Client, JsError> {
        let passphrase = Zeroizing::new(passphrase);
        if let Some(why) = serment_client::passphrase::weakness(&passphrase, &[handle]) {
            return Err(JsError::new(&why));
        }
        let ks = Keystore::create_in_memory(handle, handle).map_err(js)?;
        let api = Api::with_http(origin, Arc::new(XhrTransport));
        let session = Session::register_over(ks, api).map_err(js)?;
        let file = session
            .ks
            .sealed_file(
                passphrase.as_bytes(),
                serment_core::keystore::KdfParams::DEFAULT,
            )
            .map_err(js)?;
        Ok(Client {
            session,
            opened: BTreeMap::new(),
            pending: BTreeMap::new(),
            file: Some(file),
        })
    }

    /// The keystore file of an identity created by [`Client::register`] (PROTOCOL.md §9, the
    /// `.srmk` the CLI opens), for the patient to download and keep: without it (or this
    /// browser's storage) the identity is lost.
    ///
    /// # Errors
    /// When this session was not created by [`Client::register`].
    pub fn keystore_file(&self) -> Result<Vec<u8>, JsError> {
        self.file
            .clone()
            .ok_or_else(|| JsError::new("this session did not create an identity"))
    }

    /// A keystore file of this session's identity (PROTOCOL.md §9, the `.srmk` the CLI opens),
    /// sealed under `passphrase` with the CLI's default Argon2id cost: the patient can download
    /// their keys in any session, not only the one that created them (to use the CLI, another
    /// browser, or to keep a copy).
    ///
    /// # Errors
    /// A passphrase the CLI's rule refuses (`serment_client::passphrase::weakness`); the
    /// keystore state cannot be encoded.
    pub fn export_keystore(&self, passphrase: String) -> Result<Vec<u8>, JsError> {
        let passphrase = Zeroizing::new(passphrase);
        let handle = self.session.ks.handle();
        if let Some(why) = serment_client::passphrase::weakness(&passphrase, &[handle]) {
            return Err(JsError::new(&why));
        }
        self.session
            .ks
            .sealed_file(
                passphrase.as_bytes(),
                serment_core::keystore::KdfParams::DEFAULT,
            )
            .map_err(js)
    }

    fn connect(origin: &str, ks: Keystore) -> Result<Client, JsError> {
        let api = Api::with_http(origin, Arc::new(XhrTransport));
        let session = Session::connect_over(ks, api).map_err(js)?;
        Ok(Client {
            session,
            opened: BTreeMap::new(),
            pending: BTreeMap::new(),
            file: None,
        })
    }

    /// The user's handle.
    pub fn handle(&self) -> String {
        self.session.ks.handle().to_owned()
    }

    /// The keystore payload (secrets and pins, PROTOCOL.md §9), for the page to keep encrypted.
    /// Pins advance with every operation: the page saves it after each.
    ///
    /// # Errors
    /// When the keystore state cannot be encoded.
    pub fn payload(&self) -> Result<Vec<u8>, JsError> {
        self.session.ks.payload().map(|p| p.to_vec()).map_err(js)
    }

    /// The documents this device can read, newest version of each, each opened and verified:
    /// a JSON array of `{doc_id, version, title, author, created_at, mime_type, verified, error}`.
    ///
    /// # Errors
    /// When the listing itself fails (server, transport, a listing the log contradicts).
    pub fn documents(&mut self) -> Result<String, JsError> {
        let mut newest: BTreeMap<String, (u32, u64)> = BTreeMap::new();
        for d in self.session.list().map_err(js)? {
            let e = newest.entry(d.doc_id.clone()).or_insert((0, 0));
            if d.doc_version > e.0 {
                *e = (d.doc_version, d.created_at);
            }
        }
        let mut out = Vec::new();
        for (doc_id, (version, created_at)) in newest {
            self.open_cached(&doc_id, version)?;
            let info = self
                .opened
                .get(&(doc_id.clone(), version))
                .map(|o| o.info.clone())
                .unwrap_or_default();
            out.push(serde_json::json!({
                "doc_id": doc_id,
                "version": version,
                "title": info.get("title"),
                "author": info.get("author"),
                "created_at": created_at,
                "mime_type": info.get("mime_type"),
                "verified": info.get("ok").and_then(serde_json::Value::as_bool).unwrap_or(false),
                "error": info.get("error"),
            }));
        }
        Ok(serde_json::Value::Array(out).to_string())
    }

    /// Opens one version (verified, decrypted): JSON `{ok: true, title, author, created_at,
    /// mime_type, filename, lab}` (`lab`: the FHIR lab table, `serment_fhir::LabReport`, for a
    /// FHIR document), or `{ok: false, error}` when any check fails, with no content.
    ///
    /// # Errors
    /// An invalid document id.
    pub fn open(&mut self, doc_id: &str, version: u32) -> Result<String, JsError> {
        self.open_cached(doc_id, version)?;
        Ok(self
            .opened
            .get(&(doc_id.to_owned(), version))
            .map(|o| o.info.to_string())
            .unwrap_or_default())
    }

    /// The verified content of an opened version.
    ///
    /// # Errors
    /// When the version was not opened, or failed its checks.
    pub fn content(&self, doc_id: &str, version: u32) -> Result<js_sys::Uint8Array, JsError> {
        self.opened
            .get(&(doc_id.to_owned(), version))
            .and_then(|o| o.content.as_ref())
            .map(|c| js_sys::Uint8Array::from(&c[..]))
            .ok_or_else(|| JsError::new("no verified content for this document"))
    }

    /// The access history of a document, each entry proven in the log (PROTOCOL.md §11.6):
    /// a JSON array of `serment_client::log::AuditLine`, oldest first, accesses without a
    /// receipt included and flagged (`receipted: false`).
    ///
    /// # Errors
    /// Anything in the log that does not check out.
    pub fn timeline(&mut self, doc_id: &str) -> Result<String, JsError> {
        let doc = parse_doc(doc_id)?;
        let lines = self.session.audit(&doc).map_err(js)?;
        serde_json::to_string(&lines).map_err(|e| JsError::new(&e.to_string()))
    }

    /// Pending recoveries of this identity (PROTOCOL.md §4.3; REVIEW5 U13: the page is where
    /// most patients are, and a request to recover their account must reach them within its
    /// waiting period): a JSON array of `{request_id, fingerprint, logged_at, ready_at,
    /// approvals, threshold}`, each request proven in the handle's social chain, not vetoed and
    /// not from a current device of this identity (`Session::pending_recovery_requests`).
    ///
    /// # Errors
    /// Anything in the log that does not check out.
    pub fn recovery_requests(&mut self) -> Result<String, JsError> {
        let handle = self.session.ks.handle().to_owned();
        let pending = self
            .session
            .pending_recovery_requests(&handle)
            .map_err(js)?;
        let list: Vec<_> = pending
            .iter()
            .map(|r| {
                serde_json::json!({
                    "request_id": r.request_id,
                    "fingerprint": r.fingerprint,
                    "logged_at": r.logged_at,
                    "ready_at": r.ready_at,
                    "approvals": r.approvals,
                    "threshold": r.threshold,
                })
            })
            .collect();
        Ok(serde_json::Value::Array(list).to_string())
    }

    /// Vetoes a recovery of this identity (PROTOCOL.md §4.3, kind 16, signed by this device and
    /// checked as an own write in the log), as `serment recovery veto` does.
    ///
    /// # Errors
    /// A request not in the proven log, a refused or unlogged veto, transport errors.
    pub fn veto(&mut self, request_id: &str) -> Result<(), JsError> {
        self.session
            .veto_recovery(request_id)
            .map(|_| ())
            .map_err(js)
    }

    /// The newest version of each document this device can read, not opened: a JSON array of
    /// `{doc_id, version}`, for the worker to open each with [`Client::open_begin`] before
    /// [`Client::documents`] lists them.
    ///
    /// # Errors
    /// When the listing itself fails (server, transport, a listing the log contradicts).
    pub fn versions(&mut self) -> Result<String, JsError> {
        let mut newest: BTreeMap<String, u32> = BTreeMap::new();
        for d in self.session.list().map_err(js)? {
            let e = newest.entry(d.doc_id.clone()).or_insert(0);
            *e = (*e).max(d.doc_version);
        }
        let list: Vec<_> = newest
            .into_iter()
            .map(|(doc_id, version)| serde_json::json!({ "doc_id": doc_id, "version": version }))
            .collect();
        Ok(serde_json::Value::Array(list).to_string())
    }

    /// Fetches a version and runs every check but the decryption of its chunks
    /// (`Session::get_unlocked`: log proofs, keys, header, unwrap, chunk hashes, the author's
    /// signature), for the worker to decrypt the chunks with WebCrypto's AES-GCM (PROTOCOL.md
    /// §2.1) and hand the plaintext to [`Client::open_end`]. Returns JSON `{aad, padded_len,
    /// chunks: [[nonce, offset, length], ...]}` (hex, bytes), or an empty string when there is
    /// nothing to decrypt: the version was opened already, or a check failed (then
    /// [`Client::open`] reports the failure).
    ///
    /// # Errors
    /// An invalid document id.
    pub fn open_begin(&mut self, doc_id: &str, version: u32) -> Result<String, JsError> {
        let key = (doc_id.to_owned(), version);
        if self.opened.contains_key(&key) {
            return Ok(String::new());
        }
        let doc = parse_doc(doc_id)?;
        // The newest version, as the CLI's `get` asks for it: the log is checked for a newer
        // version than the server lists (PROTOCOL.md §11.6), which an explicit version skips.
        let got = match self
            .session
            .get_unlocked(&doc, None)
            .and_then(|g| same_version(g.unlocked.header().doc_version, version).map(|()| g))
        {
            Ok(g) => g,
            Err(e) => {
                self.opened.insert(key, failed(&e));
                return Ok(String::new());
            }
        };
        let u = &got.unlocked;
        let mut chunks = Vec::new();
        for i in 0..u.chunks() {
            let (nonce, offset, len) = u.chunk(i).map_err(|e| JsError::new(&e.to_string()))?;
            chunks.push(serde_json::json!([hex::encode(nonce), offset, len]));
        }
        let padded_len = u.header().padded_len;
        let count = chunks.len();
        let job = serde_json::json!({
            "aad": hex::encode(u.aad()),
            "padded_len": padded_len,
            "chunks": chunks,
        });
        // The header was checked against the sealed bytes, themselves at most
        // MAX_UNLOCKED_LEN: the padded length is below it too.
        let len = usize::try_from(padded_len).map_err(|_| JsError::new("document too large"))?;
        let plain = Zeroizing::new(vec![0; len]);
        let filled = vec![false; count];
        self.pending.insert(key, Pending { got, plain, filled });
        Ok(job.to_string())
    }

    /// The sealed bytes of a version [`Client::open_begin`] checked (every check but the
    /// decryption already passed on exactly these bytes), copied once into a JavaScript array.
    ///
    /// # Errors
    /// When no such version is pending.
    pub fn pending_sealed(
        &self,
        doc_id: &str,
        version: u32,
    ) -> Result<js_sys::Uint8Array, JsError> {
        self.pending
            .get(&(doc_id.to_owned(), version))
            .map(|p| js_sys::Uint8Array::from(&p.got.sealed[..]))
            .ok_or_else(|| JsError::new("no document is being opened"))
    }

    /// Copies decrypted chunk `index` (tag removed) of a pending version into its plaintext,
    /// at `index` times the chunk size (PROTOCOL.md §5): one copy, from WebCrypto's result
    /// straight into this module's memory; the worker then overwrites its own copy.
    /// [`Client::open_end`] requires every chunk, each copied once at its exact length.
    ///
    /// # Errors
    /// When no such version is pending, the index is past the last chunk or already copied,
    /// or the length is not that chunk's.
    pub fn pending_plain(
        &mut self,
        doc_id: &str,
        version: u32,
        index: u32,
        chunk: &js_sys::Uint8Array,
    ) -> Result<(), JsError> {
        let p = self
            .pending
            .get_mut(&(doc_id.to_owned(), version))
            .ok_or_else(|| JsError::new("no document is being opened"))?;
        let i = index as usize;
        let (_, _, sealed_len) = p
            .got
            .unlocked
            .chunk(u64::from(index))
            .map_err(|e| JsError::new(&e.to_string()))?;
        let start = i.checked_mul(CHUNK_SIZE);
        let slot = start
            .and_then(|s| Some(s..s.checked_add(sealed_len.checked_sub(TAG_LEN)?)?))
            .filter(|r| r.len() == chunk.length() as usize)
            .and_then(|r| p.plain.get_mut(r));
        match (slot, p.filled.get_mut(i)) {
            (Some(slot), Some(done @ false)) => {
                chunk.copy_to(slot);
                *done = true;
                Ok(())
            }
            _ => Err(JsError::new(
                "a decrypted chunk that is not one of the document's",
            )),
        }
    }

    /// The 32-byte AES-256-GCM key (the DEK) of a pending version, for the worker to import into
    /// WebCrypto as a non-extractable key and then overwrite.
    ///
    /// # Errors
    /// When no such version is pending.
    pub fn pending_key(&self, doc_id: &str, version: u32) -> Result<js_sys::Uint8Array, JsError> {
        // Copied straight from the zeroizing DEK into a JavaScript array (which the worker
        // overwrites once imported): no other copy is left in this module's memory.
        self.pending
            .get(&(doc_id.to_owned(), version))
            .map(|p| js_sys::Uint8Array::from(&p.got.unlocked.dek()[..]))
            .ok_or_else(|| JsError::new("no document is being opened"))
    }

    /// Completes the open of a pending version once the worker copied every chunk's
    /// plaintext in ([`Client::pending_plain`]; `UnlockedGet::finish`: the first and last chunks
    /// decrypted again in Rust and compared, the framing decoded). With `decrypted` false
    /// (WebCrypto refused a chunk's tag), or a chunk missing, the version is refused as a
    /// decryption failure. [`Client::open`] then reports the verdict.
    ///
    /// # Errors
    /// When no such version is pending.
    pub fn open_end(&mut self, doc_id: &str, version: u32, decrypted: bool) -> Result<(), JsError> {
        let key = (doc_id.to_owned(), version);
        let p = self
            .pending
            .remove(&key)
            .ok_or_else(|| JsError::new("no document is being opened"))?;
        // The content is at most the padded length: reserved once, so that no reallocation
        // leaves a copy of it behind unzeroed.
        let mut out = Zeroizing::new(Vec::with_capacity(p.plain.len()));
        let opened = if decrypted && p.filled.iter().all(|&f| f) {
            match p.got.finish(&p.plain, &mut *out) {
                Ok(g) => opened_ok(&g, out),
                Err(e) => failed(&e),
            }
        } else {
            failed(&ClientError::Integrity(serment_core::Error::Decrypt))
        };
        self.opened.insert(key, opened);
        Ok(())
    }

    fn open_cached(&mut self, doc_id: &str, version: u32) -> Result<(), JsError> {
        let key = (doc_id.to_owned(), version);
        if self.opened.contains_key(&key) {
            return Ok(());
        }
        let doc = parse_doc(doc_id)?;
        let mut out = Zeroizing::new(Vec::new());
        let opened = match self
            .session
            .get(&doc, None, &mut *out)
            .and_then(|g| same_version(g.opened.header.doc_version, version).map(|()| g))
        {
            Ok(got) => opened_ok(&got, out),
            // Bytes written before a failed check are discarded with `out`.
            Err(e) => failed(&e),
        };
        self.opened.insert(key, opened);
        Ok(())
    }
}

/// A version that passed every check, with its content.
fn opened_ok(got: &GetResult, content: Zeroizing<Vec<u8>>) -> Opened {
    let m = &got.opened.metadata;
    let fhir = m.mime_type.as_deref() == Some("application/fhir+json");
    let lab = fhir
        .then(|| serment_fhir::lab_report(&content).ok())
        .flatten();
    Opened {
        info: serde_json::json!({
            "ok": true,
            "title": m.title,
            "author": got.author,
            "created": m.created,
            "mime_type": m.mime_type,
            "filename": m.file_name,
            "lab": lab,
        }),
        content: Some(content),
    }
}

/// A version refused: the reason, no content.
fn failed(e: &ClientError) -> Opened {
    Opened {
        info: serde_json::json!({ "ok": false, "error": e.to_string() }),
        content: None,
    }
}

/// The page opens the newest version of a document (checked against the log); the listing it
/// showed must name that same version.
fn same_version(opened: u32, listed: u32) -> Result<(), ClientError> {
    if opened == listed {
        Ok(())
    } else {
        Err(ClientError::Log(serment_core::Error::History {
            reason: "the server's listing changed while the document was opened",
        }))
    }
}
