//! The HTTP client for the server API (PROTOCOL.md §8), over any [`HttpTransport`] (the native
//! one is [`crate::transport::UreqTransport`]).
//!
//! Every response is size-capped and parsed strictly; every id and base64 value the server sends is
//! validated before use. Nothing the server says is trusted for security: the callers in
//! [`crate::vault`] verify signatures and AEAD tags themselves.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};
use serment_core::{DocId, KeyId};

use crate::error::{ClientError, Result};
use crate::http::{Body, HttpTransport, Method, Request, Response, read_limited};
#[cfg(feature = "native")]
use crate::transport::{Transport, UreqTransport};

/// The longest a JSON call may take end to end, so a server that dribbles bytes cannot stall a
/// client forever.
pub const JSON_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The largest JSON response accepted, in bytes.
pub const MAX_JSON_RESPONSE: u64 = 8 * 1024 * 1024;

/// Decodes strict base64url without padding (RFC 4648 §5); non-canonical input is refused.
///
/// # Errors
/// [`ClientError::BadResponse`].
pub fn b64d(s: &str, field: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| ClientError::BadResponse(format!("{field}: invalid base64url")))
}

/// Encodes base64url without padding.
pub fn b64e(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

// The wire types, defined once for the server and every client (crates/serment-api).
pub use serment_api::{AccessEntry, CommitProof, ErrorBody, VersionResponse, VersionSummary};
use serment_api::{
    AccessesResponse, AddWrapsRequest, AddWrapsResponse, BlobResponse, ChallengeRequest,
    ChallengeResponse, CommitRequest, DeviceRecordResponse, DirectoryResponse, DocumentsResponse,
    HealthResponse, RECEIPT_HEADER, RegisterDeviceRequest, RegisterDeviceResponse, TokenRequest,
    TokenResponse,
};

/// A connection to one server, with the session token once logged in.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: Arc<dyn HttpTransport>,
    token: Option<String>,
    /// The device key that signs every authenticated request (PROTOCOL.md §8.2), set at login.
    signer: Option<Arc<serment_core::httpsig::Signer>>,
    #[cfg(feature = "native")]
    transport: Transport,
}

impl Api {
    /// A client for `base` over any transport (the browser's, a test's). `base` is used as
    /// given (without a trailing `/`): the transport applies its own URL policy.
    pub fn with_http(base: &str, http: Arc<dyn HttpTransport>) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            http,
            token: None,
            signer: None,
            #[cfg(feature = "native")]
            transport: Transport::default(),
        }
    }

    /// The transport this client sends through.
    pub fn http(&self) -> &Arc<dyn HttpTransport> {
        &self.http
    }

    /// Replaces the transport, keeping the login (token and request signer); returns the old
    /// one. `serment sync` records a read through a recording transport this way
    /// ([`crate::replica`]).
    pub fn set_http(&mut self, http: Arc<dyn HttpTransport>) -> Arc<dyn HttpTransport> {
        std::mem::replace(&mut self.http, http)
    }

    /// A client that never reaches a server: requests are signed with `device` as after a login
    /// (with a placeholder token), for a transport that answers from local data and ignores
    /// headers: the offline replica's ([`crate::replica`], PROTOCOL.md §14).
    pub fn offline(
        base: &str,
        http: Arc<dyn HttpTransport>,
        device: &serment_core::identity::DeviceSecret,
    ) -> Api {
        Api {
            token: Some("offline".to_owned()),
            signer: Some(Arc::new(serment_core::httpsig::Signer::new(device))),
            ..Api::with_http(base, http)
        }
    }
    /// A client for `base` (e.g. `https://vault.example.org` or `http://127.0.0.1:7878`) with
    /// the default [`Transport`]: webpki roots, plain HTTP on loopback only.
    ///
    /// # Errors
    /// As [`Api::with_transport`].
    #[cfg(feature = "native")]
    pub fn new(base: &str) -> Result<Api> {
        Api::with_transport(base, &Transport::default())
    }

    /// A client for `base` with the given TLS roots and plain-HTTP policy.
    ///
    /// # Errors
    /// [`ClientError::Input`] if the URL is not `http://` or `https://`, or is `http://` to a
    /// host outside loopback without [`Transport::insecure_http`] ([`Transport::check_url`]).
    #[cfg(feature = "native")]
    pub fn with_transport(base: &str, transport: &Transport) -> Result<Api> {
        let base = base.trim_end_matches('/').to_owned();
        transport.check_url(&base)?;
        // A hostile or stalled server must not hang the client: every read and write has a
        // deadline, and the headers must arrive within two minutes. Blob bodies may take longer
        // in total (gigabytes), but never stall for a minute.
        let http = Arc::new(UreqTransport::new(transport)?);
        Ok(Api {
            transport: transport.clone(),
            ..Api::with_http(&base, http)
        })
    }

    /// The transport settings this client was built with.
    #[cfg(feature = "native")]
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(crate) fn auth_header(&self) -> Result<String> {
        self.token
            .as_ref()
            .map(|t| format!("Bearer {t}"))
            .ok_or(ClientError::NotRegistered)
    }

    /// The `Authorization` header, and the RFC 9421 signature over the method, path, query,
    /// token and (with a body) `Content-Digest`, for a request to `url` (PROTOCOL.md §8.2).
    /// `digest` is the body's `Content-Digest` value, sent as a header too.
    ///
    /// # Errors
    /// [`ClientError::NotRegistered`] before login; [`ClientError::Input`] if the URL does not
    /// parse or the random generator fails.
    pub(crate) fn auth_headers(
        &self,
        method: Method,
        url: &str,
        digest: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>> {
        let authorization = self.auth_header()?;
        let signer = self.signer.as_ref().ok_or(ClientError::NotRegistered)?;
        let (path, query) = split_url(url)
            .ok_or_else(|| ClientError::Input(format!("invalid request URL {url:?}")))?;
        let nonce =
            serment_core::httpsig::new_nonce().map_err(|e| ClientError::Input(e.to_string()))?;
        let headers = signer
            .sign(
                &serment_core::httpsig::Request {
                    method: method.as_str(),
                    path,
                    query,
                    authorization: &authorization,
                    content_digest: digest,
                },
                crate::now_secs(),
                &nonce,
            )
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let mut out = vec![
            ("authorization", authorization),
            ("signature-input", headers.signature_input),
            ("signature", headers.signature),
        ];
        if let Some(d) = digest {
            out.push(("content-digest", d.to_owned()));
        }
        Ok(out)
    }

    /// Sends one request through the transport; a transport failure names the server.
    pub(crate) fn send(&self, req: Request<'_>) -> Result<Response> {
        self.http.send(req).map_err(|e| match e {
            ClientError::Transport(m) => ClientError::Transport(format!("{}: {m}", self.base)),
            other => other,
        })
    }

    /// A 2xx answer as is; any other status as [`ClientError::Server`] with the server's error
    /// code and message (PROTOCOL.md §8 error body), or [`ClientError::DeviceRevoked`].
    pub(crate) fn check(resp: Response) -> Result<Response> {
        let status = resp.status;
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let mut resp = resp;
        let body = read_limited(&mut resp.body, 64 * 1024).unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => (e.error.code, e.error.message),
            Err(_) => (
                "unknown".into(),
                String::from_utf8_lossy(&body).chars().take(200).collect(),
            ),
        };
        if code == "device_revoked" {
            return Err(ClientError::DeviceRevoked);
        }
        Err(ClientError::Server {
            status,
            code,
            message,
        })
    }

    pub(crate) fn read_json<T: DeserializeOwned>(resp: Response) -> Result<T> {
        let mut resp = Self::check(resp)?;
        let bytes = read_limited(&mut resp.body, MAX_JSON_RESPONSE)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    /// `GET path` with a JSON answer, signed when `auth`, with `extra` headers.
    pub(crate) fn get_json_with<T: DeserializeOwned>(
        &self,
        path: &str,
        auth: bool,
        extra: Vec<(&'static str, String)>,
    ) -> Result<T> {
        let url = self.url(path);
        let mut headers = if auth {
            self.auth_headers(Method::Get, &url, None)?
        } else {
            Vec::new()
        };
        headers.extend(extra);
        Self::read_json(self.send(Request {
            method: Method::Get,
            url: &url,
            headers,
            body: Body::Empty,
            timeout: Some(JSON_CALL_TIMEOUT),
        })?)
    }

    pub(crate) fn get_json<T: DeserializeOwned>(&self, path: &str, auth: bool) -> Result<T> {
        self.get_json_with(path, auth, Vec::new())
    }

    pub(crate) fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        auth: bool,
    ) -> Result<T> {
        Self::read_json(self.post_json_raw(path, body, auth)?)
    }

    /// `POST path` with a JSON body; the answer unread and unchecked.
    pub(crate) fn post_json_raw(
        &self,
        path: &str,
        body: &impl Serialize,
        auth: bool,
    ) -> Result<Response> {
        let url = self.url(path);
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Input(e.to_string()))?;
        let mut headers = vec![("content-type", "application/json".to_owned())];
        if auth {
            let digest = serment_core::httpsig::content_digest(&bytes);
            headers.extend(self.auth_headers(Method::Post, &url, Some(&digest))?);
        }
        self.send(Request {
            method: Method::Post,
            url: &url,
            headers,
            body: Body::Bytes(&bytes),
            timeout: Some(JSON_CALL_TIMEOUT),
        })
    }

    /// `GET /healthz`: returns the server's largest accepted blob, in bytes (`None` if the server
    /// does not say).
    ///
    /// # Errors
    /// [`ClientError::Transport`] or [`ClientError::Server`].
    pub fn health(&self) -> Result<Option<u64>> {
        let h: HealthResponse = self.get_json("/healthz", false)?;
        Ok(Some(h.max_blob_bytes))
    }

    /// `POST /v1/devices`: registers a signed device record.
    ///
    /// # Errors
    /// [`ClientError::Server`] (e.g. 409 when the handle belongs to another identity).
    pub fn register_device(&self, record: &[u8]) -> Result<()> {
        let _: RegisterDeviceResponse = self.post_json(
            "/v1/devices",
            &RegisterDeviceRequest {
                record: b64e(record),
            },
            false,
        )?;
        Ok(())
    }

    /// `GET /v1/directory/{handle}`: the raw device records, unverified.
    ///
    /// # Errors
    /// [`ClientError::Input`] for an invalid handle, [`ClientError::Server`], [`ClientError::BadResponse`].
    pub fn directory(&self, handle: &str) -> Result<Vec<Vec<u8>>> {
        serment_core::identity::validate_handle(handle)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let d: DirectoryResponse = self.get_json(&format!("/v1/directory/{handle}"), false)?;
        if d.records.len() > 1024 {
            return Err(ClientError::BadResponse("too many device records".into()));
        }
        d.records.iter().map(|r| b64d(r, "record")).collect()
    }

    /// `GET /v1/devices/{device_id}`: the raw record of a registered, unrevoked device,
    /// unverified (the caller decodes it and proves the handle it names in the log).
    ///
    /// # Errors
    /// [`ClientError::Server`] (404 for an unknown or revoked device), [`ClientError::BadResponse`].
    pub fn device_record(&self, device: &KeyId) -> Result<Vec<u8>> {
        let d: DeviceRecordResponse = self.get_json(&format!("/v1/devices/{device}"), false)?;
        b64d(&d.record, "record")
    }

    /// Logs in with the device key: challenge, signature, token (PROTOCOL.md §8.2).
    ///
    /// The server allows so many login requests a minute per address and device
    /// (`auth_requests_per_minute`, 429 past it): a lab running one `serment put` per result
    /// meets it. Natively, a 429 is retried after 1, 2 then 4 seconds (the budget refills every
    /// second); then the 429 is the answer. In the browser, the first 429 is.
    ///
    /// # Errors
    /// [`ClientError::Server`] (401 when the device is unknown, 429 when the login budget stays
    /// spent), [`ClientError::BadResponse`].
    pub fn login(&mut self, device: &serment_core::identity::DeviceSecret) -> Result<()> {
        #[cfg(feature = "native")]
        for wait in [1, 2, 4] {
            match self.login_once(device) {
                Err(ClientError::Server { status: 429, .. }) => {
                    std::thread::sleep(std::time::Duration::from_secs(wait));
                }
                other => return other,
            }
        }
        self.login_once(device)
    }

    fn login_once(&mut self, device: &serment_core::identity::DeviceSecret) -> Result<()> {
        let id = device.id().to_string();
        let c: ChallengeResponse = self.post_json(
            "/v1/auth/challenge",
            &ChallengeRequest {
                device_id: id.clone(),
            },
            false,
        )?;
        let challenge: [u8; 32] = b64d(&c.challenge, "challenge")?
            .try_into()
            .map_err(|_| ClientError::BadResponse("challenge must be 32 bytes".into()))?;
        let sig = serment_core::auth::sign_challenge(device, &challenge);
        let t: TokenResponse = self.post_json(
            "/v1/auth/token",
            &TokenRequest {
                device_id: id,
                challenge: c.challenge,
                signature: b64e(&sig),
            },
            false,
        )?;
        if t.token.is_empty() || t.token.len() > 256 {
            return Err(ClientError::BadResponse("invalid token".into()));
        }
        self.token = Some(t.token);
        self.signer = Some(Arc::new(serment_core::httpsig::Signer::new(device)));
        Ok(())
    }

    /// `POST /v1/blobs`: streams a sealed blob (chunked transfer encoding). Returns the blob id.
    ///
    /// # Errors
    /// [`ClientError::Server`] (413 over the limit), [`ClientError::Transport`].
    pub fn upload_blob(&self, body: &mut dyn Read) -> Result<String> {
        let url = self.url("/v1/blobs");
        let mut headers = vec![("content-type", "application/octet-stream".to_owned())];
        // A streamed body's digest is not known before it is sent: the signature covers the
        // request without it, and the blob is bound by its content address instead
        // (PROTOCOL.md §8.2).
        headers.extend(self.auth_headers(Method::Post, &url, None)?);
        let resp = self.send(Request {
            method: Method::Post,
            url: &url,
            headers,
            body: Body::Reader(body),
            timeout: None,
        })?;
        let up: BlobResponse = Self::read_json(resp)?;
        check_hex(&up.blob_id, 64, "blob_id")?;
        Ok(up.blob_id)
    }

    /// `POST /v1/blobs` for a blob held in memory: sent with its `Content-Digest`, covered by
    /// the request signature; the server checks it before storing, and this client checks the
    /// blob id the server answers is the same SHA-256.
    ///
    /// # Errors
    /// As [`Api::upload_blob`]; [`ClientError::BadResponse`] for another blob id.
    pub fn upload_blob_bytes(&self, bytes: &[u8]) -> Result<String> {
        let url = self.url("/v1/blobs");
        let digest = serment_core::httpsig::content_digest(bytes);
        let mut headers = vec![("content-type", "application/octet-stream".to_owned())];
        headers.extend(self.auth_headers(Method::Post, &url, Some(&digest))?);
        let resp = self.send(Request {
            method: Method::Post,
            url: &url,
            headers,
            body: Body::Bytes(bytes),
            timeout: None,
        })?;
        let up: BlobResponse = Self::read_json(resp)?;
        let expected = serment_core::httpsig::parse_content_digest(&digest)
            .map(hex::encode)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        if up.blob_id != expected {
            return Err(ClientError::BadResponse(
                "the server named another blob id than the SHA-256 of the bytes sent".into(),
            ));
        }
        Ok(up.blob_id)
    }

    /// `POST /v1/documents`: commits a version with its wraps (PROTOCOL.md §8.3). `blob` names an
    /// uploaded blob or carries the sealed bytes inline (at most [`MAX_INLINE_BLOB`] bytes, one
    /// request instead of two). With `log_from` (the pinned tree size), the answer carries the
    /// proofs of the wrap entries (§11.7), still unverified.
    ///
    /// # Errors
    /// [`ClientError::Server`], [`ClientError::BadResponse`].
    pub fn commit_document(
        &self,
        doc_id: &DocId,
        version: u32,
        blob: BlobRef<'_>,
        wraps: &[Vec<u8>],
        log_from: Option<u64>,
    ) -> Result<VersionSummary> {
        let (blob_id, blob) = match blob {
            BlobRef::Id(id) => (Some(id.to_owned()), None),
            BlobRef::Inline(bytes) => (None, Some(b64e(bytes))),
        };
        let body = CommitRequest {
            doc_id: doc_id.to_string(),
            doc_version: version,
            blob_id,
            blob,
            wraps: wraps.iter().map(|w| b64e(w)).collect(),
            log_from,
        };
        let c: VersionSummary = self.post_json("/v1/documents", &body, true)?;
        if let Some(p) = &c.log
            && (p.entries.len() > crate::log_api::MAX_HISTORY
                || p.consistency.len() > serment_core::log::tree::MAX_PROOF_HASHES)
        {
            return Err(ClientError::BadResponse("commit proof too long".into()));
        }
        Ok(c)
    }

    /// `GET /v1/documents`.
    ///
    /// # Errors
    /// [`ClientError::Server`], [`ClientError::BadResponse`].
    pub fn list_documents(&self) -> Result<Vec<VersionSummary>> {
        let l: DocumentsResponse = self.get_json("/v1/documents", true)?;
        for d in &l.documents {
            check_hex(&d.doc_id, 32, "doc_id")?;
            check_hex(&d.author_device, 64, "author_device")?;
        }
        Ok(l.documents)
    }

    /// `GET /v1/documents/{id}/versions/{v}`: metadata and the caller's own wrap.
    ///
    /// # Errors
    /// [`ClientError::Server`] (403, 404), [`ClientError::BadResponse`].
    pub fn version(&self, doc_id: &DocId, version: u32) -> Result<(VersionResponse, Vec<u8>)> {
        self.version_with(doc_id, version, None, None)
    }

    /// [`Api::version`] with an access receipt header (PROTOCOL.md §11.5) and the tree size to
    /// prove the wrap against.
    ///
    /// # Errors
    /// As [`Api::version`].
    pub fn version_with(
        &self,
        doc_id: &DocId,
        version: u32,
        receipt: Option<&serment_core::log::entry::Receipt>,
        size: Option<u64>,
    ) -> Result<(VersionResponse, Vec<u8>)> {
        let mut path = format!("/v1/documents/{doc_id}/versions/{version}");
        if let Some(n) = size {
            path.push_str(&format!("?size={n}"));
        }
        let extra = receipt
            .map(|r| (RECEIPT_HEADER, b64e(&r.encode())))
            .into_iter()
            .collect();
        let v: VersionResponse = self.get_json_with(&path, true, extra)?;
        check_hex(&v.author_device, 64, "author_device")?;
        check_hex(&v.blob_id, 64, "blob_id")?;
        let wrap = b64d(
            v.wrap.as_deref().ok_or_else(|| {
                ClientError::BadResponse("this device holds no key wrap for the document".into())
            })?,
            "wrap",
        )?;
        Ok((v, wrap))
    }

    /// `GET /v1/documents/{id}/versions/{v}/blob`: a reader over the sealed blob.
    ///
    /// # Errors
    /// [`ClientError::Server`], [`ClientError::Transport`].
    pub fn download_blob(&self, doc_id: &DocId, version: u32) -> Result<impl Read + use<>> {
        self.download_blob_with(doc_id, version, None)
    }

    /// [`Api::download_blob`] with an access receipt header (PROTOCOL.md §11.5).
    ///
    /// # Errors
    /// As [`Api::download_blob`].
    pub fn download_blob_with(
        &self,
        doc_id: &DocId,
        version: u32,
        receipt: Option<&serment_core::log::entry::Receipt>,
    ) -> Result<impl Read + use<>> {
        let url = self.url(&format!("/v1/documents/{doc_id}/versions/{version}/blob"));
        let mut headers = self.auth_headers(Method::Get, &url, None)?;
        if let Some(r) = receipt {
            headers.push((RECEIPT_HEADER, b64e(&r.encode())));
        }
        let resp = Self::check(self.send(Request {
            method: Method::Get,
            url: &url,
            headers,
            body: Body::Empty,
            timeout: None,
        })?)?;
        Ok(resp
            .body
            .take(serment_core::document::MAX_PADDED_LEN.saturating_mul(2)))
    }

    /// `POST /v1/documents/{id}/versions/{v}/wraps`: adds recipients (author only).
    ///
    /// # Errors
    /// [`ClientError::Server`].
    pub fn add_wraps(&self, doc_id: &DocId, version: u32, wraps: &[Vec<u8>]) -> Result<Vec<u64>> {
        let wraps: Vec<String> = wraps.iter().map(|w| b64e(w)).collect();
        let v: AddWrapsResponse = self.post_json(
            &format!("/v1/documents/{doc_id}/versions/{version}/wraps"),
            &AddWrapsRequest { wraps },
            true,
        )?;
        Ok(v.log_indices)
    }

    /// `GET /v1/documents/{id}/accesses`.
    ///
    /// # Errors
    /// [`ClientError::Server`], [`ClientError::BadResponse`].
    pub fn accesses(&self, doc_id: &DocId) -> Result<Vec<AccessEntry>> {
        let l: AccessesResponse =
            self.get_json(&format!("/v1/documents/{doc_id}/accesses"), true)?;
        for a in &l.accesses {
            check_hex(&a.device_id, 64, "device_id")?;
        }
        Ok(l.accesses)
    }
}

/// The largest sealed document sent inline in a commit (PROTOCOL.md §8.3): 262 144 bytes.
pub const MAX_INLINE_BLOB: u64 = 256 * 1024;

/// The blob of a commit.
#[derive(Debug, Clone, Copy)]
pub enum BlobRef<'a> {
    /// A blob uploaded with [`Api::upload_blob`], by its id (64 hex).
    Id(&'a str),
    /// The sealed document itself, at most [`MAX_INLINE_BLOB`] bytes.
    Inline(&'a [u8]),
}

/// The path and query of an absolute `http(s)://` URL (what the request signature covers).
fn split_url(url: &str) -> Option<(&str, Option<&str>)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let path_and_query = rest.find('/').and_then(|i| rest.get(i..))?;
    Some(match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    })
}

pub(crate) fn check_hex(s: &str, len: usize, field: &str) -> Result<()> {
    if s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ClientError::BadResponse(format!(
            "{field}: expected {len} lowercase hex digits"
        )))
    }
}

/// Parses a key id the server sent.
///
/// # Errors
/// [`ClientError::BadResponse`].
pub fn key_id(s: &str, field: &str) -> Result<KeyId> {
    KeyId::from_hex(s).map_err(|_| ClientError::BadResponse(format!("{field}: invalid key id")))
}
