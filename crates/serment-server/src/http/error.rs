//! The one error type of the HTTP API (PROTOCOL.md §8).
//!
//! Every failure a handler or an extractor can produce is an [`ApiError`], rendered as
//! `{"error": {"code": "<stable_code>", "message": "<human text>"}}`. A client's mistake is always a
//! 4xx; only [`ApiError::Internal`] (details in the server log, never to the client) and
//! [`ApiError::DataMissing`] (data the log proves but the store lost) are 5xx.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::{BlobError, StoreError, UploadError};

/// An API failure. The `code` of each variant is stable; the message is for humans.
///
/// Data the log proves exists but that the server cannot produce is [`ApiError::DataMissing`]
/// (503), never [`ApiError::Internal`] nor a misleading 403: see [`ApiError::data_missing`].
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400 `bad_request`: malformed JSON, a missing or mistyped field, an id that is not canonical hex.
    BadRequest(String),
    /// 400 `invalid_base64`: a binary field is not canonical unpadded base64url (RFC 4648 §5).
    InvalidBase64(String),
    /// 400 `invalid_record`: a device record, sealed header or key wrap does not decode or verify.
    InvalidRecord(String),
    /// 401 `unauthorized`: missing, malformed, unknown or expired bearer token; failed login.
    Unauthorized(&'static str),
    /// 403 `forbidden`: authenticated, but not allowed to do this.
    Forbidden(&'static str),
    /// 403 `device_revoked`: the device was revoked (a signed log entry) and can no longer log in.
    DeviceRevoked,
    /// 403 `not_shared`: the document exists, but the caller holds no wrap for it and is not
    /// its author (and the log proves no wrap for it either).
    NotShared(String),
    /// 503 `data_missing`: the transparency log proves the data exists (a sealed blob, the
    /// caller's key wrap) but the server cannot produce it (a lost file, a NULL inline blob, a
    /// deleted row). Logged at ERROR; the message names what is missing, never a path.
    DataMissing(String),
    /// 404 `not_found`: no such route, handle, device, document or version.
    NotFound(&'static str),
    /// 410 `erased`: the document was erased (PROTOCOL.md §11.3.2); the message names the
    /// tombstone's log index and reason code.
    Erased(String),
    /// 409 `conflict`: the request contradicts existing state (duplicate version, taken handle).
    Conflict(String),
    /// 405 `method_not_allowed`: the route exists, not with this method.
    MethodNotAllowed,
    /// 413 `payload_too_large`: the body is over the configured limit.
    PayloadTooLarge(String),
    /// 415 `unsupported_media_type`: wrong `Content-Type`.
    UnsupportedMediaType(&'static str),
    /// 400 `digest_mismatch`: the body does not match its `Content-Digest` (RFC 9530).
    DigestMismatch(&'static str),
    /// 429 `pending_quota`: the device's uploads not yet referenced by a commit are over the
    /// quota (`max_pending_uploads` / `max_pending_upload_bytes`); commit or wait for the
    /// garbage collector.
    PendingQuota(String),
    /// 429 `too_many_requests`: a per-device budget (pairing slots) is spent; retry later.
    TooManyRequests(String),
    /// 429 `too_many_requests` with `Retry-After` (seconds): a one-time code budget (per
    /// provisional recipient, or per code) is spent (PROTOCOL.md §15).
    RetryAfter(String, u64),
    /// 503 `smtp_not_configured`: the provisional routes need `smtp_url` (issue 17 §1).
    SmtpNotConfigured,
    /// 502 `smtp_failed`: the SMTP relay did not take the mail (details logged, no address).
    SmtpFailed,
    /// 500 `internal`: a server fault, logged; the client gets a generic message.
    Internal,
}

// The JSON error body, shared with every client (crates/serment-api).
pub(crate) use serment_api::{ErrorBody, ErrorDetail};

impl ApiError {
    /// Logs a server-side failure with its details and returns the generic [`ApiError::Internal`].
    pub(crate) fn internal(context: &'static str, err: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %err, "{context}");
        ApiError::Internal
    }

    /// Logs at ERROR that the server lost (or withholds) data its log proves, and returns
    /// [`ApiError::DataMissing`] naming `what` (e.g. "the sealed blob of document … version 1")
    /// to the client. The log line carries `detail` only (a blob id, a log index: enough to
    /// restore it), never `what`'s document id (the server's logs name no document).
    pub(crate) fn data_missing(what: String, detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(
            detail = %detail,
            "DATA MISSING: the transparency log proves it exists, but the store cannot produce it \
             (restore it from a backup)"
        );
        ApiError::DataMissing(what)
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidBase64(_) | ApiError::InvalidRecord(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::DeviceRevoked | ApiError::NotShared(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::DataMissing(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Erased(_) => StatusCode::GONE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::DigestMismatch(_) => StatusCode::BAD_REQUEST,
            ApiError::PendingQuota(_) | ApiError::TooManyRequests(_) | ApiError::RetryAfter(..) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::SmtpNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::SmtpFailed => StatusCode::BAD_GATEWAY,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable snake_case code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidBase64(_) => "invalid_base64",
            ApiError::InvalidRecord(_) => "invalid_record",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::DeviceRevoked => "device_revoked",
            ApiError::NotShared(_) => "not_shared",
            ApiError::DataMissing(_) => "data_missing",
            ApiError::NotFound(_) => "not_found",
            ApiError::Erased(_) => "erased",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::DigestMismatch(_) => "digest_mismatch",
            ApiError::PendingQuota(_) => "pending_quota",
            ApiError::TooManyRequests(_) | ApiError::RetryAfter(..) => "too_many_requests",
            ApiError::SmtpNotConfigured => "smtp_not_configured",
            ApiError::SmtpFailed => "smtp_failed",
            ApiError::Internal => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::InvalidBase64(m)
            | ApiError::InvalidRecord(m)
            | ApiError::Conflict(m)
            | ApiError::NotShared(m)
            | ApiError::Erased(m)
            | ApiError::DataMissing(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::PendingQuota(m)
            | ApiError::TooManyRequests(m)
            | ApiError::RetryAfter(m, _) => m.clone(),
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::DigestMismatch(m) => (*m).to_owned(),
            ApiError::MethodNotAllowed => "method not allowed on this route".to_owned(),
            ApiError::DeviceRevoked => {
                "this device was revoked (a signed entry in the transparency \
                log): it can no longer log in"
                    .to_owned()
            }
            ApiError::SmtpNotConfigured => {
                "this server sends no email (no smtp_url): provisional recipients are off"
                    .to_owned()
            }
            ApiError::SmtpFailed => "the mail relay did not take the one-time code".to_owned(),
            ApiError::Internal => "internal server error".to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ApiError::RetryAfter(_, secs) => Some(*secs),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m.to_owned()),
            StoreError::Forbidden(m) => ApiError::Forbidden(m),
            StoreError::UnknownDevice(d) => {
                ApiError::BadRequest(format!("recipient device {d} is not registered"))
            }
            StoreError::Erased => {
                ApiError::Erased("the document was erased (PROTOCOL.md §11.3.2)".into())
            }
            StoreError::NotFound => ApiError::NotFound("no such document"),
            StoreError::TooManyWraps => ApiError::BadRequest(format!(
                "a version holds at most {} wraps",
                crate::store::MAX_WRAPS
            )),
            StoreError::OverCap(m) => ApiError::TooManyRequests(m.to_owned()),
            StoreError::Backend(e) => ApiError::internal("storage failure", &e),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> ApiError {
        match e {
            UploadError::Blob(e) => e.into(),
            UploadError::Store(e) => e.into(),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> ApiError {
        match e {
            BlobError::TooLarge { limit } => {
                ApiError::PayloadTooLarge(format!("blob exceeds the limit of {limit} bytes"))
            }
            BlobError::Body(_) => ApiError::BadRequest("the request body ended abnormally".into()),
            BlobError::NotFound => ApiError::internal("blob recorded but missing on disk", &e),
            BlobError::TooShort => ApiError::InvalidRecord("blob is shorter than a header".into()),
            BlobError::DigestMismatch => {
                ApiError::DigestMismatch("the body does not match its Content-Digest")
            }
            BlobError::Io(_) | BlobError::Rng => ApiError::internal("blob store failure", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn internal_errors_do_not_leak() {
        let e: ApiError =
            StoreError::Backend(Box::new(std::io::Error::other("/secret/path SELECT"))).into();
        assert_eq!(e.code(), "internal");
        assert_eq!(e.message(), "internal server error");
        let e: ApiError = BlobError::Io(std::io::Error::other("/data/blobs/aa")).into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("/data"));
    }

    #[test]
    fn unauthorized_has_challenge_header() {
        let r = ApiError::Unauthorized("no token").into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    }
}
