//! Extractors and decoders that turn every malformed input into an [`ApiError`].
//!
//! - [`ApiJson`]: axum's `Json` with its rejections mapped (syntax or type error → 400
//!   `bad_request`, wrong content type → 415, too large → 413).
//! - [`ApiPath`]: axum's `Path` with its rejection mapped to 400.
//! - [`ApiQuery`]: axum's `Query` with its rejection mapped to 400.
//! - [`AuthDevice`]: the bearer-token session of PROTOCOL.md §8.2.
//! - [`b64_decode`] and the id parsers: canonical forms only (PROTOCOL.md §1).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serment_core::identity::DeviceRecord;
use serment_core::{DocId, KeyId};
use sha2::{Digest as _, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::store::{BlobId, now};

/// The longest rejection text echoed back to a client.
const MAX_REJECTION_TEXT: usize = 300;

fn truncated(mut s: String) -> String {
    if s.len() > MAX_REJECTION_TEXT {
        let mut end = MAX_REJECTION_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A JSON request body whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json")
        }
        JsonRejection::JsonDataError(e) => ApiError::BadRequest(truncated(e.body_text())),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(truncated(e.body_text())),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("the JSON body is over the limit".into())
        }
        other => ApiError::BadRequest(truncated(other.body_text())),
    }
}

/// Path parameters whose rejection is an [`ApiError`].
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::BadRequest(truncated(e.body_text())))
            }
            Err(e) => Err(ApiError::internal("path extraction", &e)),
        }
    }
}

/// Query parameters whose rejection is a JSON 400 [`ApiError`].
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::BadRequest(truncated(e.body_text()))),
        }
    }
}

/// Decodes canonical unpadded base64url (RFC 4648 §5): padding, whitespace, characters outside the
/// URL-safe alphabet and non-zero trailing bits are refused with 400 `invalid_base64`.
pub(crate) fn b64_decode(field: &str, s: &str) -> Result<Vec<u8>, ApiError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| ApiError::InvalidBase64(format!("{field}: expected unpadded base64url")))
}

/// Encodes bytes as unpadded base64url.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a base64url field that must hold exactly `N` bytes.
pub(crate) fn b64_array<const N: usize>(field: &str, s: &str) -> Result<[u8; N], ApiError> {
    let v = b64_decode(field, s)?;
    <[u8; N]>::try_from(v.as_slice())
        .map_err(|_| ApiError::BadRequest(format!("{field}: expected {N} bytes")))
}

/// Parses a device id (64 lowercase hex).
pub(crate) fn parse_key_id(field: &str, s: &str) -> Result<KeyId, ApiError> {
    KeyId::from_hex(s)
        .map_err(|_| ApiError::BadRequest(format!("{field}: expected 64 lowercase hex characters")))
}

/// Parses a document id (32 lowercase hex).
pub(crate) fn parse_doc_id(s: &str) -> Result<DocId, ApiError> {
    DocId::from_hex(s)
        .map_err(|_| ApiError::BadRequest("doc_id: expected 32 lowercase hex characters".into()))
}

/// Parses a blob id (64 lowercase hex).
pub(crate) fn parse_blob_id(s: &str) -> Result<BlobId, ApiError> {
    BlobId::parse(s)
        .ok_or_else(|| ApiError::BadRequest("blob_id: expected 64 lowercase hex characters".into()))
}

/// Parses a version number from a path: decimal, no sign, no leading zero, at least 1.
pub(crate) fn parse_version(s: &str) -> Result<u32, ApiError> {
    let canonical = !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit());
    canonical
        .then(|| s.parse::<u32>().ok())
        .flatten()
        .ok_or_else(|| ApiError::BadRequest("doc_version: expected an integer from 1".into()))
}

/// SHA-256 of a secret, hex: how tokens and challenges are stored (never the secret itself).
pub(crate) fn secret_hash(secret: &[u8]) -> String {
    hex::encode(Sha256::digest(secret))
}

/// The authenticated device of a request (`Authorization: Bearer <token>`, PROTOCOL.md §8.2).
#[derive(Debug, Clone)]
pub(crate) struct AuthDevice {
    /// The device id (of its verified record).
    pub(crate) device_id: KeyId,
    /// The identity id.
    pub(crate) identity_id: KeyId,
    /// The device's Ed25519 public key, from its verified record.
    pub(crate) signing_key: [u8; 32],
}

/// The most device records [`RecordCache`] keeps before it starts over.
const RECORD_CACHE_MAX: usize = 4096;

/// Device records already verified (PROTOCOL.md §4), keyed by their exact stored bytes: the
/// bearer lookup of every request would otherwise check the same identity signature again
/// (an Ed25519 verification, about 50 µs). The same bytes always verify the same way, so a hit
/// returns the record parsed before; any other bytes are verified afresh.
#[derive(Debug, Default)]
pub(crate) struct RecordCache(std::sync::Mutex<std::collections::HashMap<Vec<u8>, DeviceRecord>>);

impl RecordCache {
    /// The verified record of `bytes`.
    ///
    /// # Errors
    /// [`serment_core::Error`] from [`DeviceRecord::decode_verified`].
    pub(crate) fn verified(&self, bytes: &[u8]) -> serment_core::Result<DeviceRecord> {
        if let Ok(map) = self.0.lock()
            && let Some(r) = map.get(bytes)
        {
            return Ok(r.clone());
        }
        let record = DeviceRecord::decode_verified(bytes)?;
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= RECORD_CACHE_MAX {
                map.clear();
            }
            map.insert(bytes.to_vec(), record.clone());
        }
        Ok(record)
    }
}

impl FromRequestParts<AppState> for AuthDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        const MISSING: &str = "a valid bearer token is required";
        let value = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized(MISSING))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or(ApiError::Unauthorized(MISSING))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized(MISSING));
        }
        let token: [u8; 32] = URL_SAFE_NO_PAD
            .decode(token.trim())
            .ok()
            .and_then(|t| <[u8; 32]>::try_from(t.as_slice()).ok())
            .ok_or(ApiError::Unauthorized(MISSING))?;
        let row = state
            .store
            .meta()
            .session_device(&secret_hash(&token), now())
            .await?
            .ok_or(ApiError::Unauthorized(
                "the bearer token is unknown or expired",
            ))?;
        let record = state
            .records
            .verified(&row.record)
            .map_err(|e| ApiError::internal("stored device record does not verify", &e))?;
        let device_id = record.device_id();
        if device_id != row.device_id {
            return Err(ApiError::internal(
                "a stored device record names another device",
                &row.device_id,
            ));
        }
        check_request_signature(parts, state, value, &device_id, &record.signing_key).await?;
        Ok(AuthDevice {
            device_id,
            identity_id: row.identity_id,
            signing_key: record.signing_key,
        })
    }
}

/// The one value of header `name`, if present; several values are refused.
fn single_header<'a>(parts: &'a Parts, name: &'static str) -> Result<Option<&'a str>, ApiError> {
    let mut values = parts.headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::Unauthorized(
            "a signature header appears more than once",
        ));
    }
    first
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::Unauthorized("a signature header is not visible ASCII"))
        })
        .transpose()
}

/// Checks the RFC 9421 signature that binds a bearer request to its device key (PROTOCOL.md
/// §8.2): present, well formed, naming the token's device, covering `content-digest` on a
/// request with a body (except the streamed `POST /v1/blobs`, whose body is bound by its
/// content address), verifying under the device's key, `created` within the skew window, and
/// the nonce never seen before by any instance on the database ([`super::replay`]). Every
/// refusal is 401; the nonce is remembered only once the signature verified, so nobody without
/// the device key can fill the table.
async fn check_request_signature(
    parts: &Parts,
    state: &AppState,
    authorization: &str,
    device_id: &KeyId,
    signing_key: &[u8; 32],
) -> Result<(), ApiError> {
    use serment_core::httpsig;
    const MISSING: &str = "a request signature is required with the bearer token \
                           (RFC 9421 Signature-Input and Signature, PROTOCOL.md §8.2)";
    let input = single_header(parts, "signature-input")?.ok_or(ApiError::Unauthorized(MISSING))?;
    let signature = single_header(parts, "signature")?.ok_or(ApiError::Unauthorized(MISSING))?;
    let parsed = httpsig::parse(input, signature).map_err(|e| ApiError::Unauthorized(e.0))?;
    if parsed.keyid() != device_id.to_string() {
        return Err(ApiError::Unauthorized(
            "the signature's keyid is not the token's device",
        ));
    }
    let has_body = parts.method == axum::http::Method::POST && parts.uri.path() != "/v1/blobs";
    if has_body && !parsed.covers_digest {
        return Err(ApiError::Unauthorized(
            "the signature must cover content-digest on a request with a body",
        ));
    }
    let content_digest = single_header(parts, "content-digest")?;
    httpsig::verify(
        signing_key,
        &httpsig::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            authorization,
            content_digest,
        },
        &parsed,
    )
    .map_err(|e| ApiError::Unauthorized(e.0))?;
    super::replay::check(
        &state.store,
        device_id,
        parsed.nonce(),
        parsed.created(),
        now(),
    )
    .await?
    .map_err(|r| match r {
        super::replay::Refusal::Stale => ApiError::Unauthorized(
            "the signature's created time is too far from the server's clock (over 300 s \
                 behind it or 60 s ahead of it) or too old: sign the request again",
        ),
        super::replay::Refusal::Replayed => {
            ApiError::Unauthorized("the signature's nonce was already used (a replay)")
        }
    })
}

/// Checks a JSON request's `Content-Digest` (RFC 9530, `sha-256` only) against its body, which
/// is buffered (JSON bodies are capped by `max_json_bytes` outside this layer). A request without
/// the header passes unchanged; the signature check decides whether one was required.
pub(crate) async fn content_digest(
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let Some(value) = req.headers().get("content-digest") else {
        return next.run(req).await;
    };
    let expected = match value
        .to_str()
        .ok()
        .map(serment_core::httpsig::parse_content_digest)
    {
        Some(Ok(d)) => d,
        _ => {
            return ApiError::DigestMismatch(
                "Content-Digest must be one sha-256=:<base64>: member",
            )
            .into_response();
        }
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::PayloadTooLarge(
                "the JSON body is over the limit or ended abnormally".into(),
            )
            .into_response();
        }
    };
    let actual: [u8; 32] = Sha256::digest(&bytes).into();
    if actual != expected {
        return ApiError::DigestMismatch("the body does not match its Content-Digest")
            .into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn record_cache_returns_verified_records_only() {
        use serment_core::identity::{DeviceSecret, IdentitySecret};
        let identity = IdentitySecret::generate();
        let device = DeviceSecret::generate();
        let good = identity.sign_device_record("alice", &device, 1).unwrap();
        let cache = RecordCache::default();
        let first = cache.verified(&good).unwrap();
        assert_eq!(
            cache.verified(&good).unwrap(),
            first,
            "served from the cache"
        );
        // Any other bytes are verified afresh: a flipped byte of a cached record fails.
        for i in [0, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert!(cache.verified(&bad).is_err(), "byte {i}");
        }
        // The cache starts over when full, and still verifies.
        {
            let mut map = cache.0.lock().unwrap();
            map.clear();
            for n in 0..RECORD_CACHE_MAX as u64 {
                map.insert(n.to_le_bytes().to_vec(), first.clone());
            }
        }
        assert_eq!(cache.verified(&good).unwrap(), first);
        assert_eq!(cache.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn base64_is_canonical_only() {
        assert_eq!(b64_decode("f", "AQID").unwrap(), vec![1, 2, 3]);
        assert_eq!(b64_decode("f", "-_8").unwrap(), vec![0xfb, 0xff]);
        // Non-zero trailing bits: "AR" would decode to 0x01 with 4 stray bits set.
        assert!(b64_decode("f", "AR").is_err());
        assert_eq!(b64_decode("f", "AQ").unwrap(), vec![1]);
        for bad in [
            "AQ==", "AQ=", " AQID", "AQID ", "AQ\nID", "AQ+/", "A", "AQI*",
        ] {
            let e = b64_decode("f", bad).unwrap_err();
            assert_eq!(e.code(), "invalid_base64", "{bad:?}");
        }
    }

    #[test]
    fn versions_are_canonical() {
        assert_eq!(parse_version("1").unwrap(), 1);
        assert_eq!(parse_version("4294967295").unwrap(), u32::MAX);
        for bad in ["0", "01", "+1", "-1", "", "4294967296", "1a", "../x"] {
            assert!(parse_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_strict() {
        assert!(parse_doc_id(&"ab".repeat(16)).is_ok());
        assert!(parse_doc_id(&"AB".repeat(16)).is_err());
        assert!(parse_doc_id("../x").is_err());
        assert!(parse_blob_id("../x").is_err());
        assert!(parse_key_id("device_id", &"0".repeat(63)).is_err());
    }

    #[test]
    fn long_rejections_are_cut() {
        let s = truncated("é".repeat(400));
        assert!(s.len() <= MAX_REJECTION_TEXT + '…'.len_utf8());
    }
}
