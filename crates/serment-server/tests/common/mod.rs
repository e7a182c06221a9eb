//! Shared helpers for the router-level and socket tests.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use serment_core::document::{Metadata, SealInput, Sealed, seal};
use serment_core::identity::{DeviceRecord, DeviceSecret, IdentitySecret};
use serment_core::wrap::Recipient;
use serment_core::{DocId, KeyId};
use serment_server::{Config, Server};
use tower::ServiceExt as _;

/// The device key behind each token handed out by [`TestServer::login`], so that every helper
/// signs the requests it sends with that token (PROTOCOL.md §8.2). A token not in here (made up
/// by a test) is sent without a signature.
static SIGNERS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, serment_core::httpsig::Signer>>,
> = std::sync::LazyLock::new(Default::default);

/// Remembers the device key behind `token`.
pub fn remember_signer(token: &str, device: &DeviceSecret) {
    SIGNERS
        .lock()
        .unwrap()
        .insert(token.to_owned(), serment_core::httpsig::Signer::new(device));
}

/// The signature headers for a request with `token` (none for a token this module did not hand
/// out): `(name, value)` pairs, `content-digest` included when `body` is given.
pub fn signature_headers(
    method: &str,
    uri: &str,
    token: &str,
    body: Option<&[u8]>,
) -> Vec<(&'static str, String)> {
    signature_headers_for(method, uri, token, &format!("Bearer {token}"), body)
}

/// [`signature_headers`] covering the `Authorization` value `authorization` (which names `token`).
pub fn signature_headers_for(
    method: &str,
    uri: &str,
    token: &str,
    authorization: &str,
    body: Option<&[u8]>,
) -> Vec<(&'static str, String)> {
    let Some(signer) = SIGNERS.lock().unwrap().get(token).cloned() else {
        return Vec::new();
    };
    let uri: axum::http::Uri = uri.parse().unwrap();
    let digest = body.map(serment_core::httpsig::content_digest);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let h = signer
        .sign(
            &serment_core::httpsig::Request {
                method,
                path: uri.path(),
                query: uri.query(),
                authorization,
                content_digest: digest.as_deref(),
            },
            now,
            &serment_core::httpsig::new_nonce().unwrap(),
        )
        .unwrap();
    let mut out = vec![
        ("signature-input", h.signature_input),
        ("signature", h.signature),
    ];
    if let Some(d) = digest {
        out.push(("content-digest", d));
    }
    out
}

/// Adds `Authorization: Bearer <token>` and its signature headers to `b`.
pub fn authorize(
    mut b: axum::http::request::Builder,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<&[u8]>,
) -> axum::http::request::Builder {
    b = b.header(header::AUTHORIZATION, format!("Bearer {token}"));
    for (k, v) in signature_headers(method, uri, token, body) {
        b = b.header(k, v);
    }
    b
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// A fresh directory under the system temp dir (removed by [`TempDir`]'s drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).unwrap();
        let p = std::env::temp_dir().join(format!("serment-test-{tag}-{}", hex::encode(r)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The number of entries in a directory (recursively counting files only).
pub fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += count_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

pub const TEST_MAX_BLOB: u64 = 256 * 1024;

/// A server on a temporary data directory (`<tmp>/data`), with a 256 KiB blob limit.
pub struct TestServer {
    pub dir: TempDir,
    pub data: PathBuf,
    pub router: Router,
}

/// The configuration of a test server in `data`: on PostgreSQL (a fresh schema of
/// `SERMENT_TEST_DATABASE_URL`) when that variable is set, unless `SERMENT_TEST_SERVER_BACKEND`
/// is `sqlite`; on SQLite in `data` otherwise.
pub fn test_config(data: &Path) -> Config {
    let database_url = match std::env::var("SERMENT_TEST_SERVER_BACKEND").as_deref() {
        Ok("sqlite") => None,
        _ => postgres_schema_url(),
    };
    Config {
        database_url,
        ..sqlite_test_config(data)
    }
}

/// [`test_config`] always on SQLite: for the tests that open `serment.db` themselves.
pub fn sqlite_test_config(data: &Path) -> Config {
    Config {
        data_dir: data.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        max_blob_bytes: TEST_MAX_BLOB,
        ..Config::default()
    }
}

/// A URL of `SERMENT_TEST_DATABASE_URL` whose connections use a fresh schema (created here), or
/// `None` when the variable is not set.
pub fn postgres_schema_url() -> Option<String> {
    let url = std::env::var("SERMENT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    let schema = format!("serment_t_{}", hex::encode(r));
    let create = format!("CREATE SCHEMA {schema}");
    let admin = url.clone();
    // Its own runtime: callers may be sync or inside a runtime.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                use sqlx::Connection as _;
                let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(create))
                    .execute(&mut c)
                    .await
                    .unwrap();
            });
    })
    .join()
    .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

impl TestServer {
    pub async fn new() -> TestServer {
        let dir = TempDir::new("srv");
        let data = dir.path().join("data");
        let server = Server::open(test_config(&data)).await.unwrap();
        let router = server.router();
        TestServer { dir, data, router }
    }

    /// A test server on SQLite whatever the environment: for tests that open `serment.db`.
    pub async fn sqlite() -> TestServer {
        let dir = TempDir::new("srv");
        let data = dir.path().join("data");
        let server = Server::open(sqlite_test_config(&data)).await.unwrap();
        let router = server.router();
        TestServer { dir, data, router }
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    /// Sends a JSON request (raw body text) and parses the JSON answer.
    pub async fn json_raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder().method(method.clone()).uri(uri);
        if let Some(t) = token {
            b = authorize(
                b,
                method.as_str(),
                uri,
                t,
                body.as_deref().map(str::as_bytes),
            );
        }
        let req = match body {
            Some(text) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(text))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let (status, bytes) = self.send(req).await;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, v)
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.json_raw(Method::GET, uri, token, None).await
    }

    pub async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.json_raw(Method::POST, uri, token, Some(body.to_string()))
            .await
    }

    pub async fn upload(&self, token: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let req = authorize(Request::post("/v1/blobs"), "POST", "/v1/blobs", token, None)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Body::from(bytes))
            .unwrap();
        let (status, body) = self.send(req).await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// Registers `user` and logs it in; returns the token.
    pub async fn enroll(&self, user: &User) -> String {
        let (s, v) = self
            .post("/v1/devices", None, json!({ "record": b64(&user.record) }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        self.login(user).await
    }

    pub async fn login(&self, user: &User) -> String {
        let (s, v) = self
            .post(
                "/v1/auth/challenge",
                None,
                json!({ "device_id": user.device_id() }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["expires_in"], 60);
        let challenge: [u8; 32] = unb64(v["challenge"].as_str().unwrap()).try_into().unwrap();
        let sig = serment_core::auth::sign_challenge(&user.device, &challenge);
        let (s, v) = self
            .post(
                "/v1/auth/token",
                None,
                json!({ "device_id": user.device_id(), "challenge": b64(&challenge), "signature": b64(&sig) }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["expires_in"], 900);
        let token = v["token"].as_str().unwrap().to_owned();
        remember_signer(&token, &user.device);
        token
    }
}

/// A user with one device.
pub struct User {
    pub identity: IdentitySecret,
    pub device: DeviceSecret,
    pub handle: String,
    pub record: Vec<u8>,
}

impl User {
    pub fn new(handle: &str) -> User {
        User::with_identity(handle, IdentitySecret::generate())
    }

    pub fn with_identity(handle: &str, identity: IdentitySecret) -> User {
        let device = DeviceSecret::generate();
        let record = identity
            .sign_device_record(handle, &device, 1_700_000_000)
            .unwrap();
        User {
            identity,
            device,
            handle: handle.to_owned(),
            record,
        }
    }

    pub fn device_id(&self) -> String {
        self.device.id().to_string()
    }

    pub fn key_id(&self) -> KeyId {
        self.device.id()
    }

    pub fn recipient(&self) -> Recipient {
        Recipient::from(&DeviceRecord::decode_verified(&self.record).unwrap())
    }
}

/// Seals `content` by `author` for `recipients` (the author is added by `seal`).
pub fn seal_for(
    author: &User,
    doc_id: DocId,
    version: u32,
    recipients: &[&User],
    content: &[u8],
) -> (Vec<u8>, Sealed) {
    let recipients: Vec<Recipient> = recipients.iter().map(|u| u.recipient()).collect();
    let mut out = Vec::new();
    let sealed = seal(
        SealInput {
            doc_id,
            doc_version: version,
            author: &author.device,
            recipients: &recipients,
            metadata: Metadata {
                content_length: content.len() as u64,
                mime_type: Some("text/plain".into()),
                ..Metadata::default()
            },
        },
        content,
        &mut out,
    )
    .unwrap();
    (out, sealed)
}

/// The wrap for `who` among a sealing's wraps, base64url.
pub fn wrap_of(sealed: &Sealed, who: &User) -> String {
    let id = who.key_id();
    b64(&sealed.wraps.iter().find(|(r, _)| *r == id).unwrap().1)
}

pub fn all_wraps(sealed: &Sealed) -> Vec<String> {
    sealed.wraps.iter().map(|(_, w)| b64(w)).collect()
}

/// Uploads and commits a version; returns the commit answer.
pub async fn commit(
    srv: &TestServer,
    token: &str,
    doc_id: DocId,
    version: u32,
    blob: Vec<u8>,
    wraps: Vec<String>,
) -> (StatusCode, Value) {
    let (s, v) = srv.upload(token, blob).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    srv.post(
        "/v1/documents",
        Some(token),
        json!({ "doc_id": doc_id.to_string(), "doc_version": version, "blob_id": v["blob_id"], "wraps": wraps }),
    )
    .await
}
