//! Blob upload and download (PROTOCOL.md §8.3). Both stream: the server never holds a whole blob
//! in memory.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::documents::{authorize_read, version_path};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, AuthDevice};
use super::types::BlobResponse;
use crate::store::{AccessKind, BlobError, UploadError, now};

/// The content type of sealed blobs.
const OCTET_STREAM: &str = "application/octet-stream";

/// True if the `Content-Type` is `application/octet-stream` (parameters allowed).
fn is_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(OCTET_STREAM))
}

/// Uploads a sealed blob (§8.3): streamed to `tmp/`, hashed, size-limited, fsynced, renamed to
/// `blobs/<aa>/<sha256 hex>`. Uploading bytes already stored is accepted and stores nothing new.
#[utoipa::path(
    post, path = "/v1/blobs", tag = "documents",
    security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = BlobResponse),
        (status = 400, description = "The body ended abnormally, or does not match its Content-Digest", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, description = "Over max_blob_bytes", body = ErrorBody),
        (status = 415, description = "Not application/octet-stream", body = ErrorBody),
        (status = 429, description = "pending_quota: too many uploads no commit references yet", body = ErrorBody),
    )
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: AuthDevice,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<BlobResponse>), ApiError> {
    if !is_octet_stream(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/octet-stream",
        ));
    }
    let limit = state.config.max_blob_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(format!(
            "blob exceeds the limit of {limit} bytes"
        )));
    }
    // A declared Content-Digest (RFC 9530) is checked after streaming, before storing.
    let expected = match headers.get("content-digest") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| serment_core::httpsig::parse_content_digest(v).ok())
                .ok_or(ApiError::DigestMismatch(
                    "Content-Digest must be one sha-256=:<base64>: member",
                ))?,
        ),
    };
    // The per-device quota on uploads no commit references yet (issue 10 §2). The byte quota is
    // checked against the declared length; a chunked upload can pass it by one blob at most.
    let (pending, pending_bytes) = state
        .store
        .meta()
        .pending_uploads(&caller.device_id)
        .await?;
    let cfg = &state.config;
    if pending >= cfg.max_pending_uploads
        || pending_bytes.saturating_add(declared.unwrap_or(0)) > cfg.max_pending_upload_bytes
    {
        return Err(ApiError::PendingQuota(format!(
            "this device has {pending} uploads ({pending_bytes} bytes) that no commit references \
             yet; the limits are {} uploads and {} bytes: commit them, or wait {} s for the \
             unreferenced ones to be deleted",
            cfg.max_pending_uploads, cfg.max_pending_upload_bytes, cfg.pending_upload_grace_secs
        )));
    }
    let (blob_id, size) = state
        .store
        .upload(
            body.into_data_stream(),
            limit,
            expected,
            &caller.device_id,
            now(),
        )
        .await?;
    tracing::info!(device = %caller.device_id.short(), blob = %blob_id, size, "blob stored");
    Ok((
        StatusCode::CREATED,
        Json(BlobResponse {
            blob_id: blob_id.to_string(),
            size,
        }),
    ))
}

/// Streams the sealed blob of a version (recorded as an access before the response) (§8.3).
#[utoipa::path(
    get, path = "/v1/documents/{doc_id}/versions/{v}/blob", tag = "documents",
    security(("bearer" = [])),
    params(
        ("doc_id" = String, Path, description = "Document id, 32 hex"),
        ("v" = u32, Path, description = "Version, from 1"),
    ),
    responses(
        (status = 200, description = "The sealed document", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn download(
    State(state): State<AppState>,
    caller: AuthDevice,
    req_headers: HeaderMap,
    ApiPath(path): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (doc_id, version) = version_path(&path)?;
    let (row, _wrap) = authorize_read(&state, &caller, &doc_id, version).await?;
    let blob_id = row.blob_id;
    let receipt = super::log::receipt_header(&req_headers)?;
    // Inline blobs (committed with their version) or the blob store: the store decides.
    // A committed version's blob is proven by the log (its wraps are bound to its header): one
    // that is in neither place was lost, or is withheld (503 `data_missing`, logged at ERROR).
    let (body, len) = match state.store.blob(&blob_id).await {
        Ok(b) => (Body::from_stream(b.stream), b.len),
        Err(UploadError::Blob(BlobError::NotFound)) => {
            return Err(ApiError::data_missing(
                format!("the sealed blob of document {doc_id} version {version}"),
                &format_args!("blob {blob_id}: no inline data in the database and no stored blob"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let idx =
        super::log::record_access(&state, &caller, &doc_id, version, AccessKind::Blob, receipt)
            .await?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert("serment-log-index", HeaderValue::from(idx));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octet_stream_detection() {
        let mut h = HeaderMap::new();
        assert!(!is_octet_stream(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_octet_stream(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/Octet-Stream; foo=bar"),
        );
        assert!(is_octet_stream(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-streamx"),
        );
        assert!(!is_octet_stream(&h));
    }
}
