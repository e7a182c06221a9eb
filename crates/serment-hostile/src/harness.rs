//! A scriptable malicious server: a real in-process [`serment_server::Server`] behind an
//! intercepting proxy on loopback.
//!
//! ```text
//!  Session (ureq) ──HTTP──▶ proxy 127.0.0.1:p ──oneshot──▶ serment_server router ──▶ data dir
//!                            │ before-hooks: rewrite or answer a request
//!                            │ after-hooks: rewrite any response (status, body)
//!                            │ log: every exchange, for replay
//!                            └ views: the bearer token of each exchange mapped to its device
//! ```
//!
//! The proxy forwards every request to the real server's router in process (no second socket),
//! buffers the response, runs the hooks whose pattern matches, records the exchange and answers.
//! It learns which device each bearer token belongs to by watching `POST /v1/auth/token`, so a hook
//! can serve one device a different view than another. [`Hostile::sql`] and
//! [`Hostile::sql_exec`] read and write the server's database, and [`Hostile::blob_bytes`] /
//! [`Hostile::tamper_blob`] its stored blobs, for direct tampering. The storage is SQLite and a
//! directory, or PostgreSQL and an S3 bucket, picked from the environment as serment-server's
//! own tests pick it ([`crate::storage`]): the tampering helpers work on either.
//!
//! This is a test-only crate: a fixture that cannot be set up fails the test at once, so the
//! harness panics (with a message) on setup errors instead of threading `Result`s through tests.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use serment_client::keystore::Keystore;
use serment_client::vault::Session;
use serment_core::KeyId;
use serment_core::keystore::KdfParams;
use serment_server::{Config, Server};
use tower::ServiceExt as _;
use zeroize::Zeroizing;

use crate::storage::Storage;
pub use crate::storage::{DbKind, DbSnapshot, SqlRow};

/// The largest body the proxy buffers (requests and responses).
const MAX_PROXY_BODY: usize = 512 * 1024 * 1024;

/// One request and its answer, as the proxy saw (and possibly rewrote) them.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// HTTP method.
    pub method: Method,
    /// Path and query, e.g. `/v1/documents/<id>/versions/1/blob`.
    pub path: String,
    /// The calling device, from its bearer token (`None` before login or without a token).
    pub device: Option<KeyId>,
    /// Request body.
    pub request: Vec<u8>,
    /// Request headers as the client sent them (bearer token and signature included), for a
    /// test that replays a captured request.
    pub request_headers: axum::http::HeaderMap,
    /// Response status (0 in a before-hook, unless it answers itself).
    pub status: u16,
    /// Response body.
    pub response: Vec<u8>,
    /// Response `Content-Type`.
    pub content_type: Option<String>,
    /// Set by a before-hook to answer without forwarding (the real server never sees it).
    pub answered: bool,
}

impl Exchange {
    /// Whether this exchange matches `pattern`: `"METHOD /path"` where a `*` segment matches any
    /// one segment (`"GET /v1/documents/*/versions/*/blob"`).
    pub fn matches(&self, pattern: &str) -> bool {
        let Some((m, p)) = pattern.split_once(' ') else {
            return false;
        };
        if m != self.method.as_str() {
            return false;
        }
        let path = self.path.split('?').next().unwrap_or_default();
        let want: Vec<&str> = p.split('/').collect();
        let got: Vec<&str> = path.split('/').collect();
        want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| *w == "*" || w == g)
    }

    /// The path segments (`["", "v1", "documents", ...]`).
    pub fn segments(&self) -> Vec<String> {
        let path = self.path.split('?').next().unwrap_or_default();
        path.split('/').map(str::to_owned).collect()
    }

    /// The response parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.response).expect("the response is JSON")
    }

    /// Replaces the response with `v` (and a JSON content type).
    pub fn set_json(&mut self, v: &Value) {
        self.response = serde_json::to_vec(v).expect("JSON encodes");
        self.content_type = Some("application/json".into());
    }

    /// Replaces the response body with raw bytes, keeping status and content type.
    pub fn set_body(&mut self, b: Vec<u8>) {
        self.response = b;
    }
}

type HookFn = dyn Fn(&mut Exchange) + Send + Sync;

struct Hook {
    pattern: String,
    before: bool,
    f: Box<HookFn>,
}

#[derive(Default)]
struct ProxyState {
    hooks: Mutex<Vec<Hook>>,
    log: Mutex<Vec<Exchange>>,
    tokens: Mutex<HashMap<String, KeyId>>,
}

#[derive(Clone)]
struct Proxy {
    state: Arc<ProxyState>,
    upstream: Router,
}

/// A running hostile server: the real server, the proxy in front of it, its storage (see
/// [`crate::storage`]), and a temporary root holding the data directory (`data/`), the parties'
/// keystores (`homes/`) and output files (`out/`). Everything local is removed on drop.
pub struct Hostile {
    rt: tokio::runtime::Runtime,
    root: tempfile::TempDir,
    storage: Storage,
    url: String,
    proxy: Proxy,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for Hostile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hostile").field("url", &self.url).finish()
    }
}

impl Default for Hostile {
    fn default() -> Self {
        Self::new()
    }
}

impl Hostile {
    /// Starts a server on fresh storage (picked from the environment: [`crate::storage`]) and
    /// the proxy in front of it.
    ///
    /// # Panics
    /// If the server or the proxy cannot start.
    pub fn new() -> Hostile {
        Hostile::start(false)
    }

    /// [`Hostile::new`] on SQLite and a blob directory whatever the environment.
    ///
    /// # Panics
    /// If the server or the proxy cannot start.
    pub fn sqlite() -> Hostile {
        Hostile::start(true)
    }

    fn start(sqlite: bool) -> Hostile {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let root = tempfile::Builder::new()
            .prefix("serment-hostile-")
            .tempdir()
            .expect("temporary root");
        for d in ["homes", "out"] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        let data_dir = root.path().join("data");
        let (storage, database_url, blob_url) = if sqlite {
            (Storage::sqlite(&data_dir), None, None)
        } else {
            rt.block_on(Storage::from_env(&data_dir))
        };
        let config = Config {
            data_dir,
            database_url,
            blob_url,
            listen: "127.0.0.1:0".parse().expect("address"),
            max_blob_bytes: 1 << 30,
            // Provisional recipients (issue 17) need a relay configured; nothing listens there:
            // the hostile tests set one-time codes in the database, as the operator can.
            smtp_url: Some("smtp://127.0.0.1:9".to_owned()),
            ..Config::default()
        };
        let upstream = rt.block_on(async {
            Server::open(config)
                .await
                .expect("the server opens")
                .router()
        });
        let proxy = Proxy {
            state: Arc::new(ProxyState::default()),
            upstream,
        };
        let app = Router::new().fallback(forward).with_state(proxy.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        rt.spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Hostile {
            rt,
            root,
            storage,
            url: format!("http://{addr}"),
            proxy,
            stop: Some(tx),
        }
    }

    /// The proxy's URL: what the clients believe is the server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's data directory (`log.key`, `tmp/`; `serment.db` and `blobs/` on SQLite and
    /// a blob directory).
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The temporary root (data directory, homes, output directory).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A directory for output files (`get_to_file`).
    pub fn out_dir(&self) -> PathBuf {
        self.root.path().join("out")
    }

    /// Which database the server runs on (for the rare statement with no common spelling).
    pub fn db_kind(&self) -> DbKind {
        self.storage.db_kind()
    }

    /// Whether the server keeps its blobs in an S3 bucket (else in `data_dir()/blobs`).
    pub fn blobs_in_bucket(&self) -> bool {
        self.storage.blobs_in_bucket()
    }

    /// The stored bytes of a blob: its object (in the directory or the bucket), or its row in
    /// the database when it was committed inline (PROTOCOL.md §8.3).
    ///
    /// # Panics
    /// If the blob is stored in neither place.
    pub fn blob_bytes(&self, blob_id: &str) -> Vec<u8> {
        self.rt.block_on(self.storage.blob_bytes(blob_id))
    }

    /// Replaces the stored bytes of a blob, where [`Hostile::blob_bytes`] found them (the server
    /// tampering with its own storage).
    ///
    /// # Panics
    /// If the blob is stored in neither place or the write fails.
    pub fn set_blob_bytes(&self, blob_id: &str, bytes: &[u8]) {
        self.rt
            .block_on(self.storage.set_blob_bytes(blob_id, bytes));
    }

    /// Rewrites a stored blob in place: `f` edits its bytes, which are written back where they
    /// were found (directory, bucket or inline row).
    ///
    /// # Panics
    /// As [`Hostile::set_blob_bytes`].
    pub fn tamper_blob(&self, blob_id: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut b = self.blob_bytes(blob_id);
        f(&mut b);
        self.set_blob_bytes(blob_id, &b);
    }

    /// Every stored blob, as (blob id, bytes): objects (directory or bucket) and inline rows.
    pub fn all_blobs(&self) -> Vec<(String, Vec<u8>)> {
        self.rt.block_on(self.storage.all_blobs())
    }

    /// Creates a keystore for `handle` (OWASP-floor KDF parameters, to stay quick) and registers
    /// it through the proxy.
    ///
    /// # Panics
    /// If the keystore cannot be created or the registration fails.
    pub fn party(&self, handle: &str) -> Session {
        let ks = Keystore::create(
            &self.keystore_path(handle),
            Zeroizing::new(format!("passphrase of {handle}")),
            handle,
            &format!("Display name of {handle}"),
            KdfParams::FLOOR,
        )
        .expect("keystore");
        Session::register(ks, &self.url).expect("register through the proxy")
    }

    /// Where `party(handle)` keeps its keystore.
    pub fn keystore_path(&self, handle: &str) -> PathBuf {
        self.root
            .path()
            .join("homes")
            .join(handle)
            .join("keystore.srmk")
    }

    /// Adds a hook run on every response whose exchange matches `pattern` (see
    /// [`Exchange::matches`]); it may rewrite the status and body.
    pub fn on_response(&self, pattern: &str, f: impl Fn(&mut Exchange) + Send + Sync + 'static) {
        self.add_hook(pattern, false, Box::new(f));
    }

    /// Adds a hook run on every request matching `pattern` before it is forwarded; it may rewrite
    /// the request body, or answer itself by setting [`Exchange::answered`], `status` and
    /// `response`.
    pub fn on_request(&self, pattern: &str, f: impl Fn(&mut Exchange) + Send + Sync + 'static) {
        self.add_hook(pattern, true, Box::new(f));
    }

    fn add_hook(&self, pattern: &str, before: bool, f: Box<HookFn>) {
        self.proxy.state.hooks.lock().expect("hooks").push(Hook {
            pattern: pattern.to_owned(),
            before,
            f,
        });
    }

    /// Removes every hook: the proxy becomes transparent again.
    pub fn clear_hooks(&self) {
        self.proxy.state.hooks.lock().expect("hooks").clear();
    }

    /// Every exchange so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.proxy.state.log.lock().expect("log").clone()
    }

    /// The last exchange matching `pattern`.
    ///
    /// # Panics
    /// If there is none.
    pub fn last(&self, pattern: &str) -> Exchange {
        self.exchanges()
            .into_iter()
            .rev()
            .find(|e| e.matches(pattern))
            .unwrap_or_else(|| panic!("no exchange matches {pattern}"))
    }

    /// Replays `earlier` for every later request matching `pattern` (status, body, content type).
    pub fn replay(&self, pattern: &str, earlier: &Exchange) {
        let e = earlier.clone();
        self.on_response(pattern, move |ex| {
            ex.status = e.status;
            ex.response = e.response.clone();
            ex.content_type = e.content_type.clone();
        });
    }

    /// Sends a request straight to the real server (bypassing hooks and log), as a network
    /// attacker or a second client would. Returns the status and body.
    ///
    /// # Panics
    /// If the request cannot be built.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = b.body(Body::from(body)).expect("request");
        let router = self.proxy.upstream.clone();
        self.rt.block_on(async move {
            let Ok(resp) = router.oneshot(req).await;
            let s = resp.status().as_u16();
            let b = axum::body::to_bytes(resp.into_body(), MAX_PROXY_BODY)
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            (s, b)
        })
    }

    /// Sends a request with exactly `headers` (say, those of a captured [`Exchange`]) straight to
    /// the real server, as a network attacker replaying it would. Returns the status and body.
    ///
    /// # Panics
    /// If the request cannot be built.
    pub fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &axum::http::HeaderMap,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING {
                b = b.header(k, v);
            }
        }
        let req = b
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .expect("request");
        let router = self.proxy.upstream.clone();
        self.rt.block_on(async move {
            let Ok(resp) = router.oneshot(req).await;
            let s = resp.status().as_u16();
            let b = axum::body::to_bytes(resp.into_body(), MAX_PROXY_BODY)
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            (s, b)
        })
    }

    /// The bearer token the proxy saw `device` obtain last.
    pub fn token_of(&self, device: &KeyId) -> Option<String> {
        let map = self.proxy.state.tokens.lock().ok()?;
        map.iter()
            .find(|(_, d)| *d == device)
            .map(|(t, _)| t.clone())
    }

    /// Runs `query` on the server's database and returns every row as column name → raw bytes
    /// (text and blobs as stored, integers as their decimal text, NULL as `None`), on SQLite or
    /// PostgreSQL alike. Mind the spellings that differ: byte strings through
    /// [`Hostile::bytes_literal`].
    ///
    /// # Panics
    /// On an SQL error.
    pub fn sql(&self, query: &str) -> Vec<SqlRow> {
        self.rt.block_on(self.storage.sql(query))
    }

    /// Executes one or more `;`-separated statements on the server's database (the server
    /// keeps running). Returns the number of rows changed.
    ///
    /// # Panics
    /// On an SQL error.
    pub fn sql_exec(&self, statement: &str) -> u64 {
        self.rt.block_on(self.storage.sql_exec(statement))
    }

    /// A byte-string literal for [`Hostile::sql`] / [`Hostile::sql_exec`] on this database
    /// (`X'..'` on SQLite, a `bytea` on PostgreSQL).
    pub fn bytes_literal(&self, b: &[u8]) -> String {
        self.storage.bytes_literal(b)
    }

    /// Every row of every table, each as `table: col=bytes ...` (bytes as stored): the database
    /// dump that the leakage test scans.
    pub fn dump_db(&self) -> Vec<(String, Vec<u8>)> {
        self.rt.block_on(self.storage.dump())
    }

    /// Copies every table of the server's database (the operator's backup).
    pub fn snapshot_db(&self) -> DbSnapshot {
        self.rt.block_on(self.storage.snapshot(self.root.path()))
    }

    /// Restores every table from `snap`, in one transaction (the server keeps running).
    pub fn restore_db(&self, snap: &DbSnapshot) {
        self.rt.block_on(self.storage.restore(snap));
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The proxy's only handler: run before-hooks, forward, learn tokens, run after-hooks, record.
async fn forward(State(proxy): State<Proxy>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_PROXY_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "proxy: body too large").into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let device = token
        .as_ref()
        .and_then(|t| proxy.state.tokens.lock().ok()?.get(t).copied());
    let mut ex = Exchange {
        method: parts.method.clone(),
        path,
        device,
        request: body.to_vec(),
        request_headers: parts.headers.clone(),
        status: 0,
        response: Vec::new(),
        content_type: None,
        answered: false,
    };
    run_hooks(&proxy.state, &mut ex, true);
    if !ex.answered {
        let mut b = Request::builder()
            .method(parts.method.clone())
            .uri(ex.path.parse::<Uri>().unwrap_or_else(|_| parts.uri.clone()));
        for (k, v) in &parts.headers {
            if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING {
                b = b.header(k, v);
            }
        }
        b = b.header(header::CONTENT_LENGTH, ex.request.len());
        let Ok(req) = b.body(Body::from(ex.request.clone())) else {
            return (StatusCode::BAD_GATEWAY, "proxy: cannot rebuild the request").into_response();
        };
        let Ok(resp) = proxy.upstream.clone().oneshot(req).await;
        ex.status = resp.status().as_u16();
        ex.content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        ex.response = match axum::body::to_bytes(resp.into_body(), MAX_PROXY_BODY).await {
            Ok(b) => b.to_vec(),
            Err(_) => {
                return (StatusCode::BAD_GATEWAY, "proxy: upstream body failed").into_response();
            }
        };
        learn_token(&proxy.state, &ex);
    }
    run_hooks(&proxy.state, &mut ex, false);
    if let Ok(mut log) = proxy.state.log.lock() {
        log.push(ex.clone());
    }
    let mut resp = Response::new(Body::from(Bytes::from(ex.response)));
    *resp.status_mut() = StatusCode::from_u16(ex.status).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(ct) = ex.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

fn run_hooks(state: &ProxyState, ex: &mut Exchange, before: bool) {
    let Ok(hooks) = state.hooks.lock() else {
        return;
    };
    for h in hooks.iter().filter(|h| h.before == before) {
        if ex.matches(&h.pattern) {
            (h.f)(ex);
        }
    }
}

/// Maps the token of a successful `POST /v1/auth/token` to the device that asked for it.
fn learn_token(state: &ProxyState, ex: &Exchange) {
    if !(ex.matches("POST /v1/auth/token") && ex.status == 200) {
        return;
    }
    let device = serde_json::from_slice::<Value>(&ex.request)
        .ok()
        .and_then(|v| v.get("device_id")?.as_str().map(str::to_owned))
        .and_then(|d| KeyId::from_hex(&d).ok());
    let token = serde_json::from_slice::<Value>(&ex.response)
        .ok()
        .and_then(|v| v.get("token")?.as_str().map(str::to_owned));
    if let (Some(d), Some(t), Ok(mut map)) = (device, token, state.tokens.lock()) {
        map.insert(t, d);
    }
}

/// A real server's router with two registered devices (the fuzz fixture's author, logged in, and
/// reader) and the fixture document committed: the `api_request` fuzz target sends it arbitrary
/// request bodies and path parameters.
pub struct RouterFixture {
    rt: tokio::runtime::Runtime,
    router: Router,
    token: String,
    /// The author device's request signer (PROTOCOL.md §8.2), set at login.
    signer: Option<serment_core::httpsig::Signer>,
    doc_id: String,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for RouterFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterFixture").finish_non_exhaustive()
    }
}

/// The routes [`RouterFixture::fuzz_request`] picks from (by `selector % len`).
pub const FUZZ_ROUTES: &[&str] = &[
    "POST /v1/devices",
    "POST /v1/auth/challenge",
    "POST /v1/auth/token",
    "POST /v1/documents",
    "POST /v1/documents/{doc}/versions/1/wraps",
    "GET /v1/directory/{param}",
    "GET /v1/documents/{param}/versions/1",
    "GET /v1/documents/{doc}/versions/{param}/blob",
    "GET /v1/documents/{param}/accesses",
];

impl RouterFixture {
    /// The process-wide fixture.
    ///
    /// # Panics
    /// If the server cannot be set up.
    pub fn shared() -> &'static RouterFixture {
        static F: OnceLock<RouterFixture> = OnceLock::new();
        F.get_or_init(RouterFixture::new)
    }

    fn new() -> RouterFixture {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::Builder::new()
            .prefix("serment-fuzz-api-")
            .tempdir()
            .expect("tempdir");
        let config = Config {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().expect("address"),
            token_ttl_secs: serment_server::config::MAX_TOKEN_TTL_SECS,
            ..Config::default()
        };
        let router = rt.block_on(async {
            Server::open(config)
                .await
                .expect("the server opens")
                .router()
        });
        let mut fx = RouterFixture {
            rt,
            router,
            token: String::new(),
            signer: None,
            doc_id: String::new(),
            _dir: dir,
        };
        let f = crate::fuzz::fixture();
        let ident = serment_core::identity::IdentitySecret::from_seed(&[5; 32]);
        for (h, d) in [("fuzz-author", &f.author), ("fuzz-reader", &f.reader)] {
            let rec = ident
                .sign_device_record(h, d, 1_700_000_000)
                .expect("record");
            let (s, _) = fx.call(
                Method::POST,
                "/v1/devices",
                None,
                serde_json::json!({ "record": b64(&rec) })
                    .to_string()
                    .into_bytes(),
            );
            assert!(s < 300, "register: {s}");
        }
        let id = f.author.id().to_string();
        let (_, c) = fx.call(
            Method::POST,
            "/v1/auth/challenge",
            None,
            serde_json::json!({ "device_id": id })
                .to_string()
                .into_bytes(),
        );
        let c: Value = serde_json::from_slice(&c).expect("challenge JSON");
        let chal = c
            .get("challenge")
            .and_then(Value::as_str)
            .expect("challenge")
            .to_owned();
        let raw: [u8; 32] = serment_client::api::b64d(&chal, "challenge")
            .expect("b64")
            .try_into()
            .expect("32 bytes");
        let sig = serment_core::auth::sign_challenge(&f.author, &raw);
        let (_, t) = fx.call(
            Method::POST,
            "/v1/auth/token",
            None,
            serde_json::json!({ "device_id": id, "challenge": chal, "signature": b64(&sig) })
                .to_string()
                .into_bytes(),
        );
        let t: Value = serde_json::from_slice(&t).expect("token JSON");
        fx.token = t
            .get("token")
            .and_then(Value::as_str)
            .expect("token")
            .to_owned();
        fx.signer = Some(serment_core::httpsig::Signer::new(&f.author));
        let (s, up) = fx.raw_call(
            Method::POST,
            "/v1/blobs",
            f.blob.clone(),
            "application/octet-stream",
        );
        assert!(s < 300, "upload: {s}");
        let up: Value = serde_json::from_slice(&up).expect("upload JSON");
        let blob_id = up
            .get("blob_id")
            .and_then(Value::as_str)
            .expect("blob id")
            .to_owned();
        let doc_id = serment_core::DocId::from_bytes([7; 16]).to_string();
        // The fixture only holds the reader's wrap; the author's is not needed by the server.
        let (s, body) = fx.call(
            Method::POST,
            "/v1/documents",
            Some(()),
            serde_json::json!({ "doc_id": doc_id, "doc_version": 1, "blob_id": blob_id,
                                "wraps": [b64(&f.wrap)] })
            .to_string()
            .into_bytes(),
        );
        assert!(s < 300, "commit: {s} {}", String::from_utf8_lossy(&body));
        fx.doc_id = doc_id;
        fx
    }

    fn call(&self, m: Method, uri: &str, auth: Option<()>, body: Vec<u8>) -> (u16, Vec<u8>) {
        let mut b = Request::builder()
            .method(m.clone())
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if auth.is_some() {
            b = self.authorize(b, &m, uri, Some(&body));
        }
        self.send(b, body)
    }

    fn raw_call(&self, m: Method, uri: &str, body: Vec<u8>, ct: &str) -> (u16, Vec<u8>) {
        let b = Request::builder()
            .method(m.clone())
            .uri(uri)
            .header(header::CONTENT_TYPE, ct);
        let b = self.authorize(b, &m, uri, None);
        self.send(b, body)
    }

    /// Adds the bearer token and its RFC 9421 signature (PROTOCOL.md §8.2), with
    /// `Content-Digest` when `body` is given. An unparsable URI gets the token alone.
    fn authorize(
        &self,
        mut b: axum::http::request::Builder,
        m: &Method,
        uri: &str,
        body: Option<&[u8]>,
    ) -> axum::http::request::Builder {
        let authorization = format!("Bearer {}", self.token);
        b = b.header(header::AUTHORIZATION, authorization.as_str());
        let (Some(signer), Ok(u)) = (&self.signer, uri.parse::<Uri>()) else {
            return b;
        };
        let digest = body.map(serment_core::httpsig::content_digest);
        let Ok(nonce) = serment_core::httpsig::new_nonce() else {
            return b;
        };
        let signed = signer.sign(
            &serment_core::httpsig::Request {
                method: m.as_str(),
                path: u.path(),
                query: u.query(),
                authorization: &authorization,
                content_digest: digest.as_deref(),
            },
            serment_client::now_secs(),
            &nonce,
        );
        if let Ok(h) = signed {
            b = b
                .header("signature-input", h.signature_input)
                .header("signature", h.signature);
            if let Some(d) = digest {
                b = b.header("content-digest", d);
            }
        }
        b
    }

    fn send(&self, b: axum::http::request::Builder, body: Vec<u8>) -> (u16, Vec<u8>) {
        let Ok(req) = b.body(Body::from(body)) else {
            return (0, Vec::new());
        };
        self.rt.block_on(async {
            let resp = self
                .router
                .clone()
                .oneshot(req)
                .await
                .expect("the router is infallible");
            let s = resp.status().as_u16();
            let b = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            (s, b)
        })
    }

    /// Sends `body` to route `FUZZ_ROUTES[selector % len]` (as the JSON body, or percent-encoded
    /// as the `{param}` path segment). Returns the status.
    pub fn fuzz_request(&self, selector: u8, body: &[u8]) -> u16 {
        let idx = usize::from(selector) % FUZZ_ROUTES.len();
        let route = FUZZ_ROUTES.get(idx).copied().unwrap_or("POST /v1/devices");
        let (m, p) = route.split_once(' ').unwrap_or(("POST", "/v1/devices"));
        let has_param = p.contains("{param}");
        let uri = p
            .replace("{doc}", &self.doc_id)
            .replace("{param}", &percent_encode(body));
        let method = if m == "GET" {
            Method::GET
        } else {
            Method::POST
        };
        let auth = !p.starts_with("/v1/devices") && !p.starts_with("/v1/auth");
        let payload = if has_param { Vec::new() } else { body.to_vec() };
        let mut b = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::CONTENT_TYPE, "application/json");
        if auth {
            let body = (method == Method::POST).then_some(payload.as_slice());
            b = self.authorize(b, &method, &uri, body);
        }
        let (s, _) = self.send(b, payload);
        // An unbuildable URI never reaches the server: count it as refused.
        if s == 0 { 400 } else { s }
    }
}

fn percent_encode(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for c in b {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            s.push(char::from(*c));
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

/// Unpadded base64url.
pub fn b64(b: &[u8]) -> String {
    serment_client::api::b64e(b)
}
