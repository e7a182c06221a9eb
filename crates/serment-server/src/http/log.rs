//! Transparency-log handlers (PROTOCOL.md §11.9): the log key, checkpoints, proofs, entries, the
//! proof-carrying histories of a handle and of a document, witness cosignatures, and the writes
//! that exist only for the log (revocations, rotations, removals).

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serment_core::identity::{DeviceRecord, validate_handle};
use serment_core::log::entry::{
    RECEIPT_WINDOW_SECS, Receipt, Removal, Revocation, Rotation, Subject,
};
use serment_core::log::note::{
    KEY_TYPE_COSIGNATURE_V1, MAX_SIGNATURES, NoteSignature, SignedCheckpoint, VerifierKey,
};
use serment_core::log::tree::Hash;
use serment_core::{DocId, KeyId};

use super::AppState;
use super::documents::version_path;
use super::error::{ApiError, ErrorBody};
use super::extract::{
    ApiJson, ApiPath, ApiQuery, AuthDevice, b64_decode, b64_encode, parse_doc_id,
};
use crate::store::{AccessKind, LogRead, NewAccess, RotatedDevice, now};

/// The most entries one `GET /v1/log/entries` returns.
pub(crate) const MAX_ENTRIES_PAGE: u64 = 1000;
/// The most cosignature lines stored per checkpoint (the note served carries at most
/// `MAX_SIGNATURES - 1` of them, beside the log's own line, preferring the earliest witnesses).
pub(crate) const MAX_STORED_COSIGNATURES: u64 = 4 * MAX_SIGNATURES as u64;
// The bodies of the log routes, shared with every client (crates/serment-api).
pub(crate) use serment_api::log::{
    AppendedResponse, CheckpointResponse, ConsistencyQuery, ConsistencyResponse,
    CosignatureRequest, EntriesQuery, EntriesResponse, HistoryResponse, LogKeyResponse,
    LossStatementsResponse, ProofQuery, ProvenEntry, RECEIPT_HEADER, RemovalRequest,
    RevocationRequest, RotationRequest, SizeQuery,
};

fn b64_hashes(p: &[Hash]) -> Vec<String> {
    p.iter().map(|h| b64_encode(h)).collect()
}

/// Refuses a requested tree size larger than the log (400), before anything is read or written.
pub(crate) async fn check_size(state: &AppState, requested: Option<u64>) -> Result<(), ApiError> {
    if let Some(s) = requested
        && s > state.store.meta().log_size().await?
    {
        return Err(ApiError::BadRequest("size: larger than the log".into()));
    }
    Ok(())
}

/// The size to prove against: `requested` if published, else the latest; and its note.
async fn proof_size(state: &AppState, requested: Option<u64>) -> Result<(u64, String), ApiError> {
    check_size(state, requested).await?;
    let meta = state.store.meta();
    let note = meta
        .log_note(requested)
        .await?
        .ok_or(ApiError::NotFound("no checkpoint of that size"))?;
    let size = SignedCheckpoint::parse(&note)
        .map_err(|e| ApiError::internal("stored checkpoint does not parse", &e))?
        .checkpoint
        .size;
    Ok((size, note))
}

pub(crate) async fn prove(
    state: &AppState,
    r: LogRead,
    size: u64,
) -> Result<ProvenEntry, ApiError> {
    let proof = state.store.meta().log_inclusion(r.index, size).await?;
    Ok(proven_entry(&r, &proof))
}

/// The wire form of an entry and its inclusion proof.
pub(crate) fn proven_entry(r: &LogRead, proof: &[Hash]) -> ProvenEntry {
    ProvenEntry {
        index: r.index,
        entry: b64_encode(&r.entry),
        proof: b64_hashes(proof),
    }
}

/// The log's verifier key (§11.4).
#[utoipa::path(get, path = "/v1/log/key", tag = "log", responses((status = 200, body = LogKeyResponse)))]
pub(crate) async fn key(State(state): State<AppState>) -> Json<LogKeyResponse> {
    let s = state.store.log_signer();
    Json(LogKeyResponse {
        origin: s.name().to_owned(),
        vkey: s.verifier().encode(),
    })
}

/// The latest checkpoint, or the one of `?size=` (§11.4), with its cosignatures.
#[utoipa::path(get, path = "/v1/log/checkpoint", tag = "log",
    params(("size" = Option<u64>, Query, description = "A published tree size")),
    responses((status = 200, body = CheckpointResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SizeQuery>,
) -> Result<Json<CheckpointResponse>, ApiError> {
    let (_, note) = proof_size(&state, q.size).await?;
    Ok(Json(CheckpointResponse { checkpoint: note }))
}

/// The loss statements restores wrote (§11.11), oldest first: a client that verified past a
/// restored size shows them and moves its pin back only on its user's explicit command.
#[utoipa::path(get, path = "/v1/log/loss-statements", tag = "log",
    responses((status = 200, body = LossStatementsResponse)))]
pub(crate) async fn loss_statements(
    State(state): State<AppState>,
) -> Result<Json<LossStatementsResponse>, ApiError> {
    Ok(Json(LossStatementsResponse {
        statements: state.store.meta().log_loss_statements().await?,
    }))
}

/// A consistency proof (RFC 9162 §2.1.4).
#[utoipa::path(get, path = "/v1/log/consistency", tag = "log",
    params(("from" = u64, Query, description = "Old size"), ("to" = u64, Query, description = "New size")),
    responses((status = 200, body = ConsistencyResponse), (status = 400, body = ErrorBody)))]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyResponse>, ApiError> {
    let size = state.store.meta().log_size().await?;
    if q.from > q.to || q.to > size {
        return Err(ApiError::BadRequest(
            "expected from <= to <= log size".into(),
        ));
    }
    let proof = state.store.meta().log_consistency(q.from, q.to).await?;
    Ok(Json(ConsistencyResponse {
        from: q.from,
        to: q.to,
        proof: b64_hashes(&proof),
    }))
}

/// One entry with its inclusion proof (RFC 9162 §2.1.3).
#[utoipa::path(get, path = "/v1/log/proof", tag = "log",
    params(("index" = u64, Query, description = "Leaf index"), ("size" = u64, Query, description = "Tree size")),
    responses((status = 200, body = ProvenEntry), (status = 400, body = ErrorBody)))]
pub(crate) async fn proof(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ProofQuery>,
) -> Result<Json<ProvenEntry>, ApiError> {
    let size = state.store.meta().log_size().await?;
    if q.index >= q.size || q.size > size {
        return Err(ApiError::BadRequest(
            "expected index < size <= log size".into(),
        ));
    }
    let entry = state
        .store
        .meta()
        .log_entry(q.index)
        .await?
        .ok_or(ApiError::NotFound("no such entry"))?;
    Ok(Json(
        prove(
            &state,
            LogRead {
                index: q.index,
                entry,
            },
            q.size,
        )
        .await?,
    ))
}

/// Entries `[start, end)`, at most 1000 (for auditors: `serment verify-log`).
#[utoipa::path(get, path = "/v1/log/entries", tag = "log",
    params(("start" = u64, Query, description = "First index"), ("end" = u64, Query, description = "End, exclusive")),
    responses((status = 200, body = EntriesResponse), (status = 400, body = ErrorBody)))]
pub(crate) async fn entries(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EntriesQuery>,
) -> Result<Json<EntriesResponse>, ApiError> {
    if q.end < q.start || q.end - q.start > MAX_ENTRIES_PAGE {
        return Err(ApiError::BadRequest(format!(
            "expected start <= end <= start + {MAX_ENTRIES_PAGE}"
        )));
    }
    if q.end > state.store.meta().log_size().await? {
        return Err(ApiError::BadRequest("expected end <= log size".into()));
    }
    let e = state.store.meta().log_entries(q.start, q.end).await?;
    Ok(Json(EntriesResponse {
        start: q.start,
        entries: e.iter().map(|b| b64_encode(b)).collect(),
    }))
}

/// A handle's whole key history (device records, rotations, revocations) with proofs (§11.6).
#[utoipa::path(get, path = "/v1/log/identity/{handle}", tag = "log",
    params(("handle" = String, Path, description = "Handle"), ("size" = Option<u64>, Query, description = "A published tree size")),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn identity(
    State(state): State<AppState>,
    ApiPath(handle): ApiPath<String>,
    ApiQuery(q): ApiQuery<SizeQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    validate_handle(&handle).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    subject_history(&state, &Subject::Handle(handle), q.size, "unknown handle")
        .await
        .map(Json)
}

/// Every web bundle entry (kind 8: the page's bundle hashes, oldest first) with proofs (§11.3),
/// for `serment web verify`; 404 before the first is logged.
#[utoipa::path(get, path = "/v1/log/bundles", tag = "log",
    params(("size" = Option<u64>, Query, description = "A published tree size")),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn bundles(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SizeQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    subject_history(&state, &Subject::WebBundle, q.size, "no web bundle logged")
        .await
        .map(Json)
}

/// A subject's whole chain with proofs against the checkpoint of `size` (default: the latest);
/// 404 `not_found` naming `unknown` if the subject has no entry.
pub(crate) async fn subject_history(
    state: &AppState,
    subject: &Subject,
    size: Option<u64>,
    unknown: &'static str,
) -> Result<HistoryResponse, ApiError> {
    subject_history_after(state, subject, size, None, unknown).await
}

/// [`subject_history`] of the entries with an index larger than `after` only (all if `None`);
/// 404 only when the subject has no entry at all below `size`.
pub(crate) async fn subject_history_after(
    state: &AppState,
    subject: &Subject,
    size: Option<u64>,
    after: Option<u64>,
    unknown: &'static str,
) -> Result<HistoryResponse, ApiError> {
    let (size, note) = proof_size(state, size).await?;
    let rows = state.store.meta().log_subject(subject, size).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(unknown));
    }
    let mut entries = Vec::with_capacity(rows.len());
    for r in rows {
        if after.is_some_and(|a| r.index <= a) {
            continue;
        }
        entries.push(prove(state, r, size).await?);
    }
    Ok(HistoryResponse {
        size,
        checkpoint: note,
        entries,
        devices: Vec::new(),
    })
}

/// A document's chain (wraps, removals, accesses) with proofs, and the device-record entry of
/// every device it names (§11.6): the access history a patient audits. Author and recipients only.
#[utoipa::path(get, path = "/v1/documents/{doc_id}/log", tag = "log",
    security(("bearer" = [])),
    params(("doc_id" = String, Path, description = "Document id, 32 hex"), ("size" = Option<u64>, Query, description = "A published tree size")),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn document(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(doc_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SizeQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let doc_id = parse_doc_id(&doc_id)?;
    let meta = state.store.meta();
    match meta
        .is_participant(&doc_id, &caller.device_id, &caller.identity_id)
        .await?
    {
        None => return Err(ApiError::NotFound("no such document")),
        // Only the author and recipients may read a document's log.
        Some(false) => {
            return Err(
                super::documents::not_shared_or_missing(&state, &caller, &doc_id, None).await,
            );
        }
        Some(true) => {}
    }
    let (size, note) = proof_size(&state, q.size).await?;
    let rows = meta.log_subject(&Subject::Document(doc_id), size).await?;
    let mut names: BTreeSet<KeyId> = BTreeSet::new();
    let mut entries = Vec::with_capacity(rows.len());
    for r in rows {
        if let Ok(e) = serment_core::log::entry::LogEntry::decode(&r.entry) {
            use serment_core::log::entry::Payload;
            match &e.payload {
                Payload::Wrap(w) => {
                    names.insert(w.recipient);
                    names.insert(w.sharer);
                }
                Payload::Removal(x) => {
                    names.insert(x.author_device);
                }
                Payload::Erasure(x) => {
                    names.insert(x.requester_device);
                }
                Payload::Access(a) => {
                    names.insert(a.device_id);
                }
                _ => {}
            }
        }
        entries.push(prove(&state, r, size).await?);
    }
    let mut devices = Vec::new();
    for d in names {
        if let Some(r) = meta.log_device_record(&d, size).await? {
            devices.push(prove(&state, r, size).await?);
        }
    }
    Ok(Json(HistoryResponse {
        size,
        checkpoint: note,
        entries,
        devices,
    }))
}

/// Stores a witness's cosignature of a published checkpoint (§11.8), after verifying it.
#[utoipa::path(post, path = "/v1/log/cosignatures", tag = "log", request_body = CosignatureRequest,
    responses((status = 201, description = "Stored"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn cosign(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CosignatureRequest>,
) -> Result<StatusCode, ApiError> {
    let wk =
        VerifierKey::parse(&req.vkey).map_err(|e| ApiError::BadRequest(format!("vkey: {e}")))?;
    if wk.key_type != KEY_TYPE_COSIGNATURE_V1 {
        return Err(ApiError::BadRequest(
            "vkey: expected a cosignature/v1 (0x04) key".into(),
        ));
    }
    if wk.name == state.store.log_signer().name() {
        return Err(ApiError::BadRequest(
            "vkey: a witness may not be named after the log's origin".into(),
        ));
    }
    let accepted = &state.config.witnesses;
    if !accepted.is_empty()
        && !accepted
            .iter()
            .any(|a| VerifierKey::parse(a).ok() == Some(wk.clone()))
    {
        return Err(ApiError::Forbidden("vkey: not a witness this log accepts"));
    }
    let sig = NoteSignature::parse_line(&req.cosignature)
        .map_err(|e| ApiError::BadRequest(format!("cosignature: {e}")))?;
    let (_, note) = proof_size(&state, Some(req.size)).await?;
    let signed = SignedCheckpoint::parse(&note)
        .map_err(|e| ApiError::internal("stored checkpoint does not parse", &e))?;
    signed
        .verify_cosignature(&sig, &wk)
        .map_err(|e| ApiError::InvalidRecord(format!("cosignature: {e}")))?;
    let meta = state.store.meta();
    if meta.log_cosignature_count(req.size).await? >= MAX_STORED_COSIGNATURES {
        return Err(ApiError::Conflict("too many witnesses".into()));
    }
    meta.log_add_cosignature(req.size, &wk.name, wk.id(), &sig.line())
        .await?;
    Ok(StatusCode::CREATED)
}

/// Revokes a device of the caller's identity (§11.3): the identity key's signed revocation is
/// appended, the device leaves the directory and can no longer log in.
#[utoipa::path(post, path = "/v1/log/revocations", tag = "log", security(("bearer" = [])),
    request_body = RevocationRequest,
    responses((status = 201, body = AppendedResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<RevocationRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let bytes = b64_decode("revocation", &req.revocation)?;
    let rev = Revocation::decode_verified(&bytes)
        .map_err(|e| ApiError::InvalidRecord(format!("revocation: {e}")))?;
    if rev.identity_id() != caller.identity_id {
        return Err(ApiError::Forbidden(
            "a device may only revoke devices of its own identity",
        ));
    }
    let idx = state
        .store
        .meta()
        .revoke_device(
            &rev.handle,
            &caller.identity_id,
            &rev.device_id,
            &bytes,
            now(),
        )
        .await?;
    tracing::info!(device = %rev.device_id.short(), "device revoked");
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![idx],
        }),
    ))
}

/// Rotates the caller's identity key (§11.3): the rotation signed by the old and new keys, and
/// the records (signed by the new key) of the devices to keep.
#[utoipa::path(post, path = "/v1/log/rotations", tag = "log", security(("bearer" = [])),
    request_body = RotationRequest,
    responses((status = 201, body = AppendedResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<RotationRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let bytes = b64_decode("rotation", &req.rotation)?;
    let rot = Rotation::decode_verified(&bytes)
        .map_err(|e| ApiError::InvalidRecord(format!("rotation: {e}")))?;
    let old = KeyId::of(serment_core::ids::KeyKind::Identity, &rot.old_identity_key);
    let new = KeyId::of(serment_core::ids::KeyKind::Identity, &rot.new_identity_key);
    if old != caller.identity_id {
        return Err(ApiError::Forbidden(
            "a device may only rotate its own identity",
        ));
    }
    if req.records.is_empty() || req.records.len() > 64 {
        return Err(ApiError::BadRequest(
            "records: expected 1 to 64 device records".into(),
        ));
    }
    let mut keep = Vec::with_capacity(req.records.len());
    for (i, r) in req.records.iter().enumerate() {
        let b = b64_decode(&format!("records[{i}]"), r)?;
        let rec = DeviceRecord::decode_verified(&b)
            .map_err(|e| ApiError::InvalidRecord(format!("records[{i}]: {e}")))?;
        if rec.identity_key != rot.new_identity_key || rec.handle != rot.handle {
            return Err(ApiError::InvalidRecord(format!(
                "records[{i}]: not certified by the new identity key for this handle"
            )));
        }
        keep.push(RotatedDevice {
            device_id: rec.device_id(),
            record: b,
        });
    }
    let indices = state
        .store
        .meta()
        .rotate_identity(&rot.handle, &old, &new, &bytes, &keep, now())
        .await?;
    tracing::info!(handle = %rot.handle, "identity rotated");
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: indices,
        }),
    ))
}

/// Removes a recipient from a version (§11.3): the author device's signed removal.
#[utoipa::path(post, path = "/v1/documents/{doc_id}/versions/{v}/removals", tag = "log",
    security(("bearer" = [])),
    params(("doc_id" = String, Path, description = "Document id, 32 hex"), ("v" = u32, Path, description = "Version")),
    request_body = RemovalRequest,
    responses((status = 201, body = AppendedResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<RemovalRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let (doc_id, version) = version_path(&path)?;
    let bytes = b64_decode("removal", &req.removal)?;
    let rm =
        Removal::decode(&bytes).map_err(|e| ApiError::InvalidRecord(format!("removal: {e}")))?;
    rm.verify(&caller.signing_key)
        .map_err(|e| ApiError::InvalidRecord(format!("removal: {e}")))?;
    if rm.doc_id != doc_id || rm.doc_version != version {
        return Err(ApiError::InvalidRecord(
            "removal: names another document or version".into(),
        ));
    }
    let row = state
        .store
        .meta()
        .version(&doc_id, version)
        .await?
        .ok_or(ApiError::NotFound("no such document version"))?;
    if row.author_device != caller.device_id {
        return Err(ApiError::Forbidden(
            "only the author device may remove a recipient",
        ));
    }
    let idx = state
        .store
        .meta()
        .remove_recipient(&doc_id, version, &rm.recipient, &bytes, now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![idx],
        }),
    ))
}

/// Reads the optional `Serment-Receipt` header: `base64url(at u64 || nonce [16] || sig [64])`.
pub(crate) fn receipt_header(headers: &HeaderMap) -> Result<Option<Receipt>, ApiError> {
    let Some(v) = headers.get(RECEIPT_HEADER) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::BadRequest("serment-receipt: not ASCII".into()))?;
    let b = b64_decode("serment-receipt", s)?;
    Receipt::decode(&b)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("serment-receipt: {e}")))
}

/// Verifies the caller's receipt (if any) and records the access with its log entry (§11.5).
/// Returns the entry's index.
pub(crate) async fn record_access(
    state: &AppState,
    caller: &AuthDevice,
    doc_id: &DocId,
    version: u32,
    what: AccessKind,
    receipt: Option<Receipt>,
) -> Result<u64, ApiError> {
    let t = now();
    if let Some(r) = &receipt {
        r.verify(
            &caller.signing_key,
            state.store.log_signer().name(),
            doc_id,
            version,
            what.log_kind(),
            &caller.device_id,
        )
        .map_err(|_| {
            ApiError::InvalidRecord("serment-receipt: signature does not verify".into())
        })?;
        if r.at.abs_diff(t) > RECEIPT_WINDOW_SECS {
            return Err(ApiError::InvalidRecord(
                "serment-receipt: time is more than 300 s from the server's clock".into(),
            ));
        }
    }
    Ok(state
        .store
        .meta()
        .record_access(&NewAccess {
            doc_id: *doc_id,
            doc_version: version,
            device_id: caller.device_id,
            what,
            now: t,
            receipt,
        })
        .await?)
}
