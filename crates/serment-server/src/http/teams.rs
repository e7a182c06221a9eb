//! Care-team handlers (PROTOCOL.md §12.5): membership changes with the epoch keys they
//! distribute, the team's chain with proofs, a device's team keys, the teams of the caller, and
//! a document's wrap to a team epoch.
//!
//! The server replays a team's chain with each change before it appends it (the rules of
//! §12.4, `serment_core::team::replay_team`), so an honest server's log only holds changes that
//! replay; clients do not rely on that and replay the chain themselves.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serment_core::DocId;
use serment_core::log::entry::{EntryKind, LogEntry, Subject, encode_entry};
use serment_core::log::history::ChainEntry;
use serment_core::team::{
    TeamChange, TeamKeyWrap, TeamOp, epoch_id, named_handles, replay_team, validate_team_name,
};
use serment_core::wrap::WrappedKey;

use super::AppState;
use super::documents::version_path;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, AuthDevice, b64_decode, b64_encode};
use super::log::{AppendedResponse, HistoryResponse};
use crate::store::log_service::NewTeamChange;
use crate::store::now;
// The bodies of the team routes, shared with every client (crates/serment-api).
pub(crate) use serment_api::teams::{
    TeamChangeRequest, TeamKeyHandoverRequest, TeamKeyHandoverResponse, TeamKeysResponse,
    TeamLogQuery, TeamWrapRequest, TeamsResponse,
};

/// The most team key wraps one change may carry (members' devices).
pub(crate) const MAX_KEY_WRAPS: usize = 8192;

fn team_name(name: &str) -> Result<(), ApiError> {
    validate_team_name(name).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The chain of `subject` below `size`, decoded.
async fn chain_of(
    state: &AppState,
    subject: &Subject,
    size: u64,
) -> Result<Vec<ChainEntry>, ApiError> {
    let rows = state.store.meta().log_subject(subject, size).await?;
    rows.into_iter()
        .map(|r| {
            let entry = LogEntry::decode(&r.entry)
                .map_err(|e| ApiError::internal("a stored log entry does not decode", &e))?;
            Ok(ChainEntry {
                index: r.index,
                bytes: r.entry,
                entry,
            })
        })
        .collect()
}

/// Appends a membership change signed by the caller's device (§12.2), with the team key wraps
/// it distributes (§12.3), after replaying the team's chain with it (§12.4).
#[utoipa::path(post, path = "/v1/teams/{name}/changes", tag = "teams", security(("bearer" = [])),
    params(("name" = String, Path, description = "Team name")),
    request_body = TeamChangeRequest,
    responses((status = 201, body = AppendedResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn post_change(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<TeamChangeRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    team_name(&name)?;
    let bytes = b64_decode("change", &req.change)?;
    let change = TeamChange::decode_verified(&bytes)
        .map_err(|e| ApiError::InvalidRecord(format!("change: {e}")))?;
    if change.body.team != name {
        return Err(ApiError::BadRequest(
            "change: names another team than the path".into(),
        ));
    }
    if change.signer_device() != caller.device_id {
        return Err(ApiError::Forbidden(
            "a team change must be posted by the device that signed it",
        ));
    }
    if req.key_wraps.len() > MAX_KEY_WRAPS {
        return Err(ApiError::BadRequest(format!(
            "key_wraps: at most {MAX_KEY_WRAPS}"
        )));
    }
    // The key wraps are checked first (the costly part): the window between reading `size`
    // and appending is kept short, and the append re-checks it anyway (F7).
    let b = &change.body;
    let eid = epoch_id(&name, b.epoch, &b.epoch_key);
    let mut key_wraps = Vec::with_capacity(req.key_wraps.len());
    for (i, w) in req.key_wraps.iter().enumerate() {
        let raw = b64_decode("key_wraps", w)?;
        let kw = TeamKeyWrap::decode(&raw)
            .map_err(|e| ApiError::InvalidRecord(format!("key_wraps[{i}]: {e}")))?;
        kw.verify_signature(&caller.signing_key)
            .map_err(|e| ApiError::InvalidRecord(format!("key_wraps[{i}]: {e}")))?;
        if kw.team != name || kw.epoch != b.epoch || kw.epoch_id != eid {
            return Err(ApiError::InvalidRecord(format!(
                "key_wraps[{i}]: not a wrap of this change's epoch key"
            )));
        }
        key_wraps.push((kw.epoch, kw.recipient.to_string(), raw));
    }
    let meta = state.store.meta();
    let size = meta.log_size().await?;
    let subject = Subject::Team(name.clone());
    let mut chain = chain_of(&state, &subject, size).await?;
    let expected_head = chain.last().map(|e| e.index);
    let entry = encode_entry(
        EntryKind::Team,
        now(),
        chain.last().map(ChainEntry::link),
        &bytes,
    )
    .map_err(|e| ApiError::InvalidRecord(format!("change: {e}")))?;
    chain.push(ChainEntry {
        index: size,
        entry: LogEntry::decode(&entry)
            .map_err(|e| ApiError::InvalidRecord(format!("change: {e}")))?,
        bytes: entry,
    });
    let handles = named_handles(&chain);
    let mut histories = BTreeMap::new();
    for h in &handles {
        let c = chain_of(&state, &Subject::Handle(h.clone()), size).await?;
        histories.insert(h.clone(), c);
    }
    let team = replay_team(&name, &chain, &histories).map_err(|e| {
        ApiError::Conflict(format!(
            "the team's chain does not replay with this change: {e}"
        ))
    })?;
    let idx = meta
        .append_team_change(&NewTeamChange {
            team: &name,
            change: &bytes,
            signer_device: caller.device_id,
            expected_head,
            replayed_at: size,
            handles,
            epoch: b.epoch,
            epoch_id: eid.to_string(),
            members: team
                .members
                .iter()
                .map(|m| (m.handle.clone(), m.admin))
                .collect(),
            key_wraps,
            now: now(),
        })
        .await?;
    tracing::info!(team = %name, op = b.op.name(), epoch = b.epoch, "team changed");
    if b.op == TeamOp::Create {
        tracing::info!(team = %name, "team created");
    }
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![idx],
        }),
    ))
}

/// A team's chain of changes with proofs (§12.4): the whole chain, or with `after` only the
/// changes past a head the client already verified (an empty list if there are none).
#[utoipa::path(get, path = "/v1/log/team/{name}", tag = "teams",
    params(("name" = String, Path, description = "Team name"), ("size" = Option<u64>, Query, description = "A published tree size"),
           ("after" = Option<u64>, Query, description = "Only the changes with a larger log index")),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn team_log(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<TeamLogQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    team_name(&name)?;
    super::log::subject_history_after(
        &state,
        &Subject::Team(name),
        q.size,
        q.after,
        "unknown team",
    )
    .await
    .map(Json)
}

/// The caller device's team key wraps (§12.3), oldest epoch first.
#[utoipa::path(get, path = "/v1/teams/{name}/keys", tag = "teams", security(("bearer" = [])),
    params(("name" = String, Path, description = "Team name")),
    responses((status = 200, body = TeamKeysResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn keys(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<TeamKeysResponse>, ApiError> {
    team_name(&name)?;
    let keys = state
        .store
        .meta()
        .team_key_wraps(&name, &caller.device_id)
        .await?;
    Ok(Json(TeamKeysResponse {
        keys: keys.iter().map(|k| b64_encode(k)).collect(),
    }))
}

/// The handle of the caller's device, from its stored record.
async fn caller_handle(state: &AppState, caller: &AuthDevice) -> Result<String, ApiError> {
    let row = state
        .store
        .meta()
        .device(&caller.device_id)
        .await?
        .ok_or(ApiError::Unauthorized("unknown device"))?;
    let rec = serment_core::identity::DeviceRecord::decode_verified(&row.record)
        .map_err(|e| ApiError::internal("a stored device record does not verify", &e))?;
    Ok(rec.handle)
}

/// A member device hands the epoch keys it holds on to other current devices of its own
/// identity (§12.3, "Hand-over"): each wrap is signed by the caller (its `sharer`), of an epoch
/// the team's chain holds (number and `epoch_id`), to a device other than the caller; the
/// caller's handle must be a current member and every recipient a current device of that
/// handle (checked in the store's transaction). Nothing is logged: team key wraps never are.
#[utoipa::path(post, path = "/v1/teams/{name}/keys", tag = "teams", security(("bearer" = [])),
    params(("name" = String, Path, description = "Team name")),
    request_body = TeamKeyHandoverRequest,
    responses((status = 201, body = TeamKeyHandoverResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn hand_over_keys(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<TeamKeyHandoverRequest>,
) -> Result<(StatusCode, Json<TeamKeyHandoverResponse>), ApiError> {
    team_name(&name)?;
    if req.key_wraps.len() > MAX_KEY_WRAPS {
        return Err(ApiError::BadRequest(format!(
            "key_wraps: at most {MAX_KEY_WRAPS}"
        )));
    }
    let meta = state.store.meta();
    let size = meta.log_size().await?;
    let chain = chain_of(&state, &Subject::Team(name.clone()), size).await?;
    if chain.is_empty() {
        return Err(ApiError::NotFound("unknown team"));
    }
    // The epochs the chain opened, by number: a wrap must carry one of them.
    let mut epochs: BTreeMap<u32, serment_core::KeyId> = BTreeMap::new();
    for e in &chain {
        if let serment_core::log::entry::Payload::Team(c) = &e.entry.payload
            && c.body.op.opens_epoch()
        {
            epochs.insert(
                c.body.epoch,
                epoch_id(&name, c.body.epoch, &c.body.epoch_key),
            );
        }
    }
    let mut wraps = Vec::with_capacity(req.key_wraps.len());
    for (i, w) in req.key_wraps.iter().enumerate() {
        let raw = b64_decode("key_wraps", w)?;
        let kw = TeamKeyWrap::decode(&raw)
            .map_err(|e| ApiError::InvalidRecord(format!("key_wraps[{i}]: {e}")))?;
        kw.verify_signature(&caller.signing_key)
            .map_err(|e| ApiError::InvalidRecord(format!("key_wraps[{i}]: {e}")))?;
        if kw.team != name || epochs.get(&kw.epoch) != Some(&kw.epoch_id) {
            return Err(ApiError::InvalidRecord(format!(
                "key_wraps[{i}]: not a wrap of an epoch key this team's chain holds"
            )));
        }
        if kw.recipient == caller.device_id {
            return Err(ApiError::InvalidRecord(format!(
                "key_wraps[{i}]: addressed to the caller itself"
            )));
        }
        wraps.push((kw.epoch, kw.recipient.to_string(), raw));
    }
    let handle = caller_handle(&state, &caller).await?;
    let stored = meta.hand_over_team_keys(&name, &handle, &wraps).await?;
    tracing::info!(team = %name, stored, "team keys handed over");
    Ok((
        StatusCode::CREATED,
        Json(TeamKeyHandoverResponse {
            stored: u32::try_from(stored).unwrap_or(u32::MAX),
        }),
    ))
}

/// The teams whose current members include the caller's handle.
#[utoipa::path(get, path = "/v1/teams", tag = "teams", security(("bearer" = [])),
    responses((status = 200, body = TeamsResponse), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: AuthDevice,
) -> Result<Json<TeamsResponse>, ApiError> {
    let handle = caller_handle(&state, &caller).await?;
    Ok(Json(TeamsResponse {
        teams: state.store.meta().teams_of(&handle).await?,
    }))
}

/// Shares a version with a team (§12.3): one suite-3 wrap, by the author device, to the team's
/// current epoch; logged as a wrap entry. The team's wraps of older epochs are replaced.
#[utoipa::path(post, path = "/v1/documents/{doc_id}/versions/{v}/team-wraps", tag = "teams",
    security(("bearer" = [])),
    params(("doc_id" = String, Path, description = "Document id, 32 hex"), ("v" = u32, Path, description = "Version, from 1")),
    request_body = TeamWrapRequest,
    responses((status = 201, body = AppendedResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn add_team_wrap(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<TeamWrapRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let (doc_id, version): (DocId, u32) = version_path(&path)?;
    team_name(&req.team)?;
    let meta = state.store.meta();
    let row = meta
        .version(&doc_id, version)
        .await?
        .ok_or(ApiError::NotFound("no such document version"))?;
    if row.author_device != caller.device_id {
        return Err(ApiError::Forbidden(
            "only the author device may share a version (PROTOCOL.md §7)",
        ));
    }
    let blob_id = row.blob_id.clone();
    let header = super::documents::load_header(&state, &blob_id).await?;
    let (_, current) = meta
        .team_epoch(&req.team)
        .await?
        .ok_or(ApiError::NotFound("unknown team"))?;
    let raw = b64_decode("wrap", &req.wrap)?;
    let w = WrappedKey::decode(&raw).map_err(|e| ApiError::InvalidRecord(format!("wrap: {e}")))?;
    w.verify_signature(&caller.signing_key)
        .map_err(|e| ApiError::InvalidRecord(format!("wrap: {e}")))?;
    if w.doc_id != doc_id
        || w.doc_version != version
        || w.header_hash != header.hash()
        || !w.kem.is_hybrid()
    {
        return Err(ApiError::InvalidRecord(
            "wrap: not a suite-3 wrap of this version".into(),
        ));
    }
    if w.recipient.to_string() != current {
        return Err(ApiError::Conflict(
            "wrap: not to the team's current epoch (the team changed: fetch its chain)".into(),
        ));
    }
    let idx = meta
        .add_team_wrap(
            &doc_id,
            version,
            &req.team,
            &current,
            &caller.device_id,
            &raw,
            now(),
        )
        .await?;
    tracing::info!(version, team = %req.team, "shared with a team");
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![idx],
        }),
    ))
}
