//! Document handlers (PROTOCOL.md §7, §8.3): commit, list, fetch a version, add wraps, accesses.
//!
//! Authorisation: a version's metadata and blob are readable by a device holding a wrap for it and
//! by every device of the author identity. Each wrap or blob handed out is recorded as an access
//! row before the response is sent.

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serment_core::document::Header;
use serment_core::log::entry::{Payload, Subject};
use serment_core::wrap::WrappedKey;
use serment_core::{DocId, KeyId};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{
    ApiJson, ApiPath, ApiQuery, AuthDevice, b64_decode, b64_encode, parse_blob_id, parse_doc_id,
    parse_version,
};
use super::types::{
    AccessesResponse, AddWrapsRequest, AddWrapsResponse, CommitProof, CommitRequest,
    DocumentsResponse, VersionResponse, VersionSummary,
};
use crate::store::{
    AccessKind, BlobId, CommitJob, MAX_INLINE_BLOB, MAX_WRAPS, NewWrap, ReaderWrap, VersionRead,
    VersionRow, now,
};

/// Reads and decodes the sealed header at the start of a stored blob.
pub(crate) async fn load_header(state: &AppState, blob_id: &BlobId) -> Result<Header, ApiError> {
    let bytes = state.store.blob_prefix::<{ Header::LEN }>(blob_id).await?;
    Header::decode(&bytes).map_err(|e| ApiError::InvalidRecord(format!("blob header: {e}")))
}

/// What every wrap in a request must bind to.
pub(crate) struct WrapContext {
    pub(crate) doc_id: DocId,
    pub(crate) doc_version: u32,
    pub(crate) header_hash: [u8; 32],
    pub(crate) sharer: KeyId,
    pub(crate) sharer_signing_key: [u8; 32],
}

/// Decodes and checks wraps (§7): 1..=[`MAX_WRAPS`], each for this document, version and header,
/// made and signed by the calling device, recipients distinct. Each signature is verified on its
/// own with `verify_strict`, the rule every client and auditor applies to the log: no batch
/// verification, whose equation accepts signatures `verify_strict` refuses (a signer could then
/// log an entry every audit rejects; THREAT_MODEL.md, "Batch verification", REVIEW4 T13). Runs on
/// the blocking pool past [`INLINE_VERIFY_MAX`] wraps (up to 1024 Ed25519 verifications).
pub(crate) async fn check_wraps(
    raw: Vec<String>,
    ctx: WrapContext,
) -> Result<Vec<NewWrap>, ApiError> {
    if raw.is_empty() || raw.len() > MAX_WRAPS {
        return Err(ApiError::BadRequest(format!(
            "wraps: expected 1 to {MAX_WRAPS} wraps"
        )));
    }
    let n = raw.len();
    let check = move || decode_wraps(&raw, &ctx);
    // A few verifications (~50 µs each) cost less than a hand-off to the blocking pool.
    if n <= INLINE_VERIFY_MAX {
        return check();
    }
    tokio::task::spawn_blocking(check)
        .await
        .map_err(|e| ApiError::internal("wrap verification task failed", &e))?
}

/// Decodes `raw` and checks each wrap in order (decoding, document, version, header, sharer,
/// signature, distinct recipients): the first failure is the error, naming its wrap.
fn decode_wraps(raw: &[String], ctx: &WrapContext) -> Result<Vec<NewWrap>, ApiError> {
    let mut seen = HashSet::with_capacity(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let bytes = b64_decode(&format!("wraps[{i}]"), s)?;
        let bad = |why: &str| ApiError::InvalidRecord(format!("wraps[{i}]: {why}"));
        let wrap = WrappedKey::decode(&bytes).map_err(|e| bad(&e.to_string()))?;
        if wrap.doc_id != ctx.doc_id || wrap.doc_version != ctx.doc_version {
            return Err(bad("names another document or version"));
        }
        if wrap.header_hash != ctx.header_hash {
            return Err(bad("is bound to another sealed header"));
        }
        if wrap.sharer != ctx.sharer {
            return Err(bad("sharer is not the calling device"));
        }
        wrap.verify_signature(&ctx.sharer_signing_key)
            .map_err(|e| bad(&e.to_string()))?;
        if !seen.insert(wrap.recipient) {
            return Err(ApiError::BadRequest(format!(
                "wraps[{i}]: duplicate recipient device"
            )));
        }
        out.push(NewWrap {
            recipient: wrap.recipient,
            sharer: wrap.sharer,
            bytes,
        });
    }
    Ok(out)
}

/// The most wraps verified on the request's own task; more go to the blocking pool.
const INLINE_VERIFY_MAX: usize = 8;

/// Commits a new document version (§8.3).
#[utoipa::path(
    post, path = "/v1/documents", tag = "documents",
    request_body = CommitRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Committed", body = VersionSummary),
        (status = 200, description = "Already committed exactly as sent (a retry): nothing written; the original wrap entries, proven", body = VersionSummary),
        (status = 400, description = "Malformed request, header or wrap; unknown blob or recipient", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The document id belongs to another identity", body = ErrorBody),
        (status = 409, description = "The version exists, with other content", body = ErrorBody),
    )
)]
pub(crate) async fn commit(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<CommitRequest>,
) -> Result<(StatusCode, Json<VersionSummary>), ApiError> {
    let doc_id = parse_doc_id(&req.doc_id)?;
    if req.doc_version == 0 {
        return Err(ApiError::BadRequest(
            "doc_version: versions start at 1".into(),
        ));
    }
    if req.wraps.is_empty() || req.wraps.len() > MAX_WRAPS {
        return Err(ApiError::BadRequest(format!(
            "wraps: expected 1 to {MAX_WRAPS} wraps"
        )));
    }
    let meta = state.store.meta();
    let (blob_id, inline, header, size) = match (&req.blob_id, &req.blob) {
        (Some(id), None) => {
            let blob_id = parse_blob_id(id)?;
            let Some(size) = meta.blob_size(&blob_id).await? else {
                return Err(ApiError::BadRequest(
                    "blob_id: no such blob was uploaded".into(),
                ));
            };
            let header = load_header(&state, &blob_id).await?;
            (blob_id, None, header, size)
        }
        (None, Some(b64)) => {
            let bytes = b64_decode("blob", b64)?;
            if bytes.len() > MAX_INLINE_BLOB || bytes.len() as u64 > state.config.max_blob_bytes {
                return Err(ApiError::PayloadTooLarge(format!(
                    "blob: an inline blob holds at most {MAX_INLINE_BLOB} bytes (and \
                     max_blob_bytes); upload larger ones to /v1/blobs"
                )));
            }
            let header = bytes
                .first_chunk::<{ Header::LEN }>()
                .ok_or_else(|| ApiError::InvalidRecord("blob header: truncated".into()))
                .and_then(|h| {
                    Header::decode(h)
                        .map_err(|e| ApiError::InvalidRecord(format!("blob header: {e}")))
                })?;
            let size = bytes.len() as u64;
            (BlobId::of(&bytes), Some(bytes), header, size)
        }
        _ => {
            return Err(ApiError::BadRequest(
                "expected exactly one of blob_id and blob".into(),
            ));
        }
    };
    if header.doc_id != doc_id || header.doc_version != req.doc_version {
        return Err(ApiError::InvalidRecord(
            "blob header names another document or version".into(),
        ));
    }
    if header.author_device != caller.device_id {
        return Err(ApiError::InvalidRecord(
            "blob header names another author device than the caller".into(),
        ));
    }
    let wraps = check_wraps(
        req.wraps,
        WrapContext {
            doc_id,
            doc_version: req.doc_version,
            header_hash: header.hash(),
            sharer: caller.device_id,
            sharer_signing_key: caller.signing_key,
        },
    )
    .await?;
    let created_at = now();
    let recipients = wraps.len();
    let done = meta
        .commit_version(CommitJob {
            doc_id,
            doc_version: req.doc_version,
            author_device: caller.device_id,
            author_identity: caller.identity_id,
            blob_id: blob_id.clone(),
            inline,
            created_at,
            wraps,
            log_from: req.log_from,
        })
        .await?;
    // No document id in the log (issue 17 §1): ids are linkable across requests.
    tracing::info!(version = req.doc_version, recipients, "version committed");
    let log = match req.log_from {
        None => None,
        Some(from) if from > done.size => {
            // Committed all the same: the client learns of its entries from `log_indices`.
            return Err(ApiError::BadRequest(
                "log_from: larger than the log (the version was committed)".into(),
            ));
        }
        Some(from) => {
            // Proven by the commit's own transaction, from the nodes it read anyway (empty for
            // 0 and for the new size itself).
            let consistency = &done.consistency;
            Some(CommitProof {
                checkpoint: done.note.to_string(),
                entries: done
                    .proven
                    .iter()
                    .map(|(e, proof)| super::log::proven_entry(e, proof))
                    .collect(),
                from,
                consistency: consistency.iter().map(|h| b64_encode(h)).collect(),
            })
        }
    };
    // An identical retry (the first answer was lost) is answered with the original entries.
    let status = if done.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(VersionSummary {
            doc_id: doc_id.to_string(),
            doc_version: req.doc_version,
            author_device: caller.device_id.to_string(),
            author_identity: caller.identity_id.to_string(),
            blob_id: blob_id.to_string(),
            size,
            created_at,
            log_indices: Some(done.proven.iter().map(|(e, _)| e.index).collect()),
            log,
        }),
    ))
}

/// Lists the versions the caller authored or may read (§8.3).
#[utoipa::path(
    get, path = "/v1/documents", tag = "documents",
    security(("bearer" = [])),
    responses((status = 200, body = DocumentsResponse), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: AuthDevice,
) -> Result<Json<DocumentsResponse>, ApiError> {
    let rows = state
        .store
        .meta()
        .readable_versions(&caller.device_id, &caller.identity_id)
        .await?;
    Ok(Json(DocumentsResponse {
        documents: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Parses `{doc_id}/versions/{v}` path parameters.
pub(crate) fn version_path((doc_id, v): &(String, String)) -> Result<(DocId, u32), ApiError> {
    Ok((parse_doc_id(doc_id)?, parse_version(v)?))
}

/// Loads a version and the caller's wrap (own, else a team's) with its log entry, in one query
/// (issue 14 §2); 404 if the version does not exist; if the caller neither holds a wrap nor
/// belongs to the author identity, [`not_shared_or_missing`].
pub(crate) async fn authorize_read(
    state: &AppState,
    caller: &AuthDevice,
    doc_id: &DocId,
    version: u32,
) -> Result<(VersionRow, Option<ReaderWrap>), ApiError> {
    let meta = state.store.meta();
    let Some(VersionRead { row, wrap }) = meta
        .version_for_reader(doc_id, version, &caller.device_id)
        .await?
    else {
        let missing = ApiError::NotFound("no such document version");
        return Err(super::erasure::gone_or(state, doc_id, missing).await);
    };
    if wrap.is_none() && row.author_identity != caller.identity_id {
        return Err(not_shared_or_missing(state, caller, doc_id, Some(version)).await);
    }
    Ok((row, wrap))
}

/// The answer to a caller who holds no wrap row for `doc_id` (`version`, or any version): if the
/// log holds a wrap entry for the caller's device that no later removal undid, the wrap row was
/// lost, and that is [`ApiError::data_missing`] (503, logged at ERROR); otherwise the document
/// is simply not shared with the caller: [`ApiError::NotShared`] (403 `not_shared`).
pub(crate) async fn not_shared_or_missing(
    state: &AppState,
    caller: &AuthDevice,
    doc_id: &DocId,
    version: Option<u32>,
) -> ApiError {
    let not_shared = || {
        ApiError::NotShared(format!(
            "document {doc_id} is not shared with this device (it holds no key for it)"
        ))
    };
    let meta = state.store.meta();
    let rows = match meta.log_size().await {
        Ok(size) => meta.log_subject(&Subject::Document(*doc_id), size).await,
        Err(e) => Err(e),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    // Per version: the log index of the caller's wrap, unless a later removal undid it.
    let mut held: std::collections::BTreeMap<u32, Option<u64>> = Default::default();
    for r in rows {
        let Ok(e) = serment_core::log::entry::LogEntry::decode(&r.entry) else {
            continue;
        };
        match e.payload {
            Payload::Wrap(w) if w.recipient == caller.device_id => {
                held.insert(w.doc_version, Some(r.index));
            }
            Payload::Removal(x) if x.recipient == caller.device_id => {
                held.insert(x.doc_version, None);
            }
            _ => {}
        }
    }
    let proven = held
        .iter()
        .filter(|(v, _)| version.is_none_or(|want| want == **v))
        .find_map(|(v, idx)| idx.map(|i| (*v, i)));
    match proven {
        Some((v, idx)) => ApiError::data_missing(
            format!(
                "the key wrap of document {doc_id} version {v} for device {}",
                caller.device_id.short()
            ),
            &format_args!("log entry {idx} holds it; the wraps table has no row"),
        ),
        None => not_shared(),
    }
}

/// Fetches a version's metadata and the caller's own wrap (recorded as an access, with the
/// caller's `Serment-Receipt` if sent) (§8.3, §11.5), with the wrap's log entry and proof.
#[utoipa::path(
    get, path = "/v1/documents/{doc_id}/versions/{v}", tag = "documents",
    security(("bearer" = [])),
    params(
        ("doc_id" = String, Path, description = "Document id, 32 hex"),
        ("v" = u32, Path, description = "Version, from 1"),
        ("size" = Option<u64>, Query, description = "Tree size to prove the wrap against"),
    ),
    responses(
        (status = 200, body = VersionResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn get_version(
    State(state): State<AppState>,
    caller: AuthDevice,
    headers: HeaderMap,
    ApiPath(path): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<super::log::SizeQuery>,
) -> Result<Json<VersionResponse>, ApiError> {
    let (doc_id, version) = version_path(&path)?;
    let receipt = super::log::receipt_header(&headers)?;
    // Validated before the access is recorded: a bad request leaves no log entry.
    super::log::check_size(&state, q.size).await?;
    // The caller's own wrap, else the wrap to a team it belongs to (PROTOCOL.md §12.5), and its
    // log entry, loaded once, by the authorization itself.
    let (row, found) = authorize_read(&state, &caller, &doc_id, version).await?;
    let mut access_index = None;
    let mut wrap_entry = None;
    let mut log_size = 0;
    let wrap = match found {
        Some(ReaderWrap { bytes, entry }) => {
            let index = super::log::record_access(
                &state,
                &caller,
                &doc_id,
                version,
                AccessKind::Wrap,
                receipt,
            )
            .await?;
            access_index = Some(index);
            // The access's own transaction signed the checkpoint of `index + 1` entries: a
            // published size, read without another query.
            let size = q.size.unwrap_or(index + 1);
            log_size = size;
            if let Some(entry) = entry.filter(|e| e.index < size) {
                wrap_entry = Some(super::log::prove(&state, entry, size).await?);
            }
            Some(bytes)
        }
        None => None,
    };
    Ok(Json(VersionResponse {
        doc_id: row.doc_id.to_string(),
        doc_version: row.doc_version,
        author_device: row.author_device.to_string(),
        author_identity: row.author_identity.to_string(),
        blob_id: row.blob_id.as_str().to_owned(),
        size: row.size,
        created_at: row.created_at,
        wrap: wrap.as_deref().map(b64_encode),
        wrap_entry,
        log_size,
        access_index,
    }))
}

/// Adds recipients to a version (§8.3): the author device, for anyone; or, to catch up a linked
/// device (§4.1), a device holding a wrap of the version, for the other current devices of its
/// own identity only. Each wrap made and signed by the calling device.
#[utoipa::path(
    post, path = "/v1/documents/{doc_id}/versions/{v}/wraps", tag = "documents",
    security(("bearer" = [])),
    params(
        ("doc_id" = String, Path, description = "Document id, 32 hex"),
        ("v" = u32, Path, description = "Version, from 1"),
    ),
    request_body = AddWrapsRequest,
    responses(
        (status = 201, body = AddWrapsResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Neither the author device nor a catch-up for the caller's own devices", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A recipient already holds a wrap", body = ErrorBody),
    )
)]
pub(crate) async fn add_wraps(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<AddWrapsRequest>,
) -> Result<(StatusCode, Json<AddWrapsResponse>), ApiError> {
    let (doc_id, version) = version_path(&path)?;
    let meta = state.store.meta();
    let Some(row) = meta.version(&doc_id, version).await? else {
        let missing = ApiError::NotFound("no such document version");
        return Err(super::erasure::gone_or(&state, &doc_id, missing).await);
    };
    // §7: the author device shares; §4.1: besides, a device that holds a wrap of the version
    // may wrap it for its own identity's other devices (the catch-up of a linked device), and
    // for nobody else.
    let catch_up = row.author_device != caller.device_id;
    // §15: a device of the identity that claimed a provisional recipient holding a wrap of the
    // version re-wraps it for its own identity's devices, itself included.
    let holds_wrap = !catch_up
        || meta
            .wrap_for(&doc_id, version, &caller.device_id)
            .await?
            .is_some();
    let claimed = !holds_wrap
        && meta
            .claimed_wrap_of(&caller.identity_id, &doc_id, version)
            .await?;
    if !holds_wrap && !claimed {
        return Err(if row.author_identity != caller.identity_id {
            ApiError::Forbidden("only the author may add recipients")
        } else {
            ApiError::Forbidden(
                "only the author device, or a device holding a wrap of this version for its \
                 own identity's devices, may share a version (PROTOCOL.md §7, §4.1)",
            )
        });
    }
    let blob_id = row.blob_id.clone();
    let header = load_header(&state, &blob_id).await?;
    let wraps = check_wraps(
        req.wraps,
        WrapContext {
            doc_id,
            doc_version: version,
            header_hash: header.hash(),
            sharer: caller.device_id,
            sharer_signing_key: caller.signing_key,
        },
    )
    .await?;
    if catch_up {
        for w in &wraps {
            // A device that holds its own wrap already and sends another for itself: a resumed
            // claim re-wrapping a version it had done (§15; the newcomer's H1). A duplicate,
            // answered 409 as for any recipient that holds a wrap, not refused as a catch-up.
            if w.recipient == caller.device_id && holds_wrap {
                return Err(ApiError::Conflict(
                    "this device already holds a wrap of this version".into(),
                ));
            }
            let same_identity = meta
                .device(&w.recipient)
                .await?
                .is_some_and(|d| d.identity_id == caller.identity_id);
            if !same_identity || (w.recipient == caller.device_id && !claimed) {
                return Err(ApiError::Forbidden(
                    "a device that is not the author may wrap a version only for the other \
                     current devices of its own identity (PROTOCOL.md §4.1)",
                ));
            }
        }
    }
    let log_indices = meta.add_wraps(&doc_id, version, &wraps, now()).await?;
    tracing::info!(version, added = wraps.len(), "recipients added");
    Ok((
        StatusCode::CREATED,
        Json(AddWrapsResponse {
            doc_id: doc_id.to_string(),
            doc_version: version,
            added: wraps.len(),
            log_indices,
        }),
    ))
}

/// Lists the recorded reads of every version of a document (§8.3), for the author identity's
/// devices and for any recipient.
#[utoipa::path(
    get, path = "/v1/documents/{doc_id}/accesses", tag = "documents",
    security(("bearer" = [])),
    params(("doc_id" = String, Path, description = "Document id, 32 hex")),
    responses(
        (status = 200, body = AccessesResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn accesses(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(doc_id): ApiPath<String>,
) -> Result<Json<AccessesResponse>, ApiError> {
    let doc_id = parse_doc_id(&doc_id)?;
    let meta = state.store.meta();
    match meta
        .is_participant(&doc_id, &caller.device_id, &caller.identity_id)
        .await?
    {
        None => return Err(ApiError::NotFound("no such document")),
        Some(false) => return Err(not_shared_or_missing(&state, &caller, &doc_id, None).await),
        Some(true) => {}
    }
    let rows = meta.accesses(&doc_id).await?;
    Ok(Json(AccessesResponse {
        doc_id: doc_id.to_string(),
        accesses: rows.into_iter().map(Into::into).collect(),
    }))
}
