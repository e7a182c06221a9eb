//! Erasure (PROTOCOL.md §11.3.2, issue 12 §5): `POST /v1/documents/{doc_id}/erase` takes the
//! author device's signed tombstone, deletes every version's wraps, rows and blobs, and appends
//! the tombstone to the log; afterwards the document's routes answer 410 `erased`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serment_core::DocId;
use serment_core::log::entry::{LogEntry, Payload};
use serment_core::log::erasure::Erasure;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, AuthDevice, b64_decode, parse_doc_id};
use crate::store::{NewErasure, now};
use serment_api::{AppendedResponse, ErasureRequest};

/// Erases a document (§11.3.2): the calling device's signed tombstone.
#[utoipa::path(post, path = "/v1/documents/{doc_id}/erase", tag = "documents",
    security(("bearer" = [])),
    params(("doc_id" = String, Path, description = "Document id, 32 hex")),
    request_body = ErasureRequest,
    responses(
        (status = 201, description = "Erased: the tombstone's log index", body = AppendedResponse),
        (status = 400, description = "Malformed, or a tombstone not signed by the caller for this document", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The caller is not a device of the document's author", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 410, description = "Already erased", body = ErrorBody),
    ))]
pub(crate) async fn erase(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(doc_id): ApiPath<String>,
    ApiJson(req): ApiJson<ErasureRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let doc_id = parse_doc_id(&doc_id)?;
    let bytes = b64_decode("erasure", &req.erasure)?;
    let t =
        Erasure::decode(&bytes).map_err(|e| ApiError::InvalidRecord(format!("erasure: {e}")))?;
    t.verify(&caller.signing_key)
        .map_err(|e| ApiError::InvalidRecord(format!("erasure: {e}")))?;
    if t.doc_id != doc_id {
        return Err(ApiError::InvalidRecord(
            "erasure: names another document".into(),
        ));
    }
    let index = state
        .store
        .erase(&NewErasure {
            doc_id,
            requester: caller.device_id,
            requester_identity: caller.identity_id,
            tombstone: &bytes,
            now: now(),
        })
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Erased(_) => {
                ApiError::Erased(format!("document {doc_id} was already erased"))
            }
            other => other,
        })?;
    tracing::info!(reason = t.reason.code(), index, "document erased");
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![index],
        }),
    ))
}

/// The answer for a document version that is not stored: 410 `erased` (naming the tombstone's
/// log index and reason code) if the document was erased, `missing` otherwise.
pub(crate) async fn gone_or(state: &AppState, doc_id: &DocId, missing: ApiError) -> ApiError {
    match state.store.meta().erasure(doc_id).await {
        Ok(Some(r)) => {
            let reason = match LogEntry::decode(&r.entry).map(|e| e.payload) {
                Ok(Payload::Erasure(t)) => {
                    format!("reason {} ({})", t.reason.code(), t.reason.name())
                }
                _ => "reason unreadable".to_owned(),
            };
            ApiError::Erased(format!(
                "document {doc_id} was erased (log entry {}, {reason})",
                r.index
            ))
        }
        Ok(None) => missing,
        Err(e) => e.into(),
    }
}
