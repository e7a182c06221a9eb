//! Social recovery, k-of-n (PROTOCOL.md §4.3, issue 17 §2). The server logs the contacts entry
//! (kind 13), requests (14), approvals (15) and vetoes (16) in the handle's social chain, and
//! serves ciphertexts it cannot open: the escrow and share wraps. It hands a request's escrow and
//! re-wrapped shares out only once it sees K approvals, the waiting period over and no veto;
//! clients check all of it again in the proven log, so a server that lies can refuse service
//! but cannot make fewer approvals suffice.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serment_api::{
    AppendedResponse, FetchRecoveryRequest, HistoryResponse, PostApprovalRequest,
    PostRecoveryRequest, PostVetoRequest, PutContactsRequest, RecoveryRequestCreated,
    SharesResponse, SizeQuery, SocialRecoveryResponse,
};
use serment_core::identity::{DeviceRecord, validate_handle};
use serment_core::ids::{KeyId, KeyKind};
use serment_core::log::entry::Subject;
use serment_core::log::social::{
    RecoveryApproval, RecoveryContacts, RecoveryVeto, SocialRecoveryRequest,
};
use serment_core::social::{
    SOCIAL_ESCROW_LEN, ShareWrap, check_waiting_period, contacts_hash, escrow_hash, verify_fetch,
};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, AuthDevice, b64_array, b64_decode, b64_encode};
use crate::store::{NewSocial, now};

/// The handle of the caller's own verified record.
async fn caller_handle(state: &AppState, caller: &AuthDevice) -> Result<String, ApiError> {
    let row = state
        .store
        .meta()
        .device(&caller.device_id)
        .await?
        .ok_or(ApiError::Unauthorized("unknown device"))?;
    let rec = DeviceRecord::decode_verified(&row.record)
        .map_err(|e| ApiError::internal("stored device record does not verify", &e))?;
    Ok(rec.handle)
}

fn invalid(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidRecord(format!("{what}: {e}"))
}

fn request_id_param(id: &str) -> Result<[u8; 16], ApiError> {
    let bad = || ApiError::BadRequest("request id: expected 32 lowercase hex digits".into());
    if id.len() != 32 || id.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    hex::decode(id)
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())
}

/// Logs the caller's recovery contacts (kind 13) and stores the escrow and the share wraps.
#[utoipa::path(
    post, path = "/v1/recovery/contacts", tag = "recovery",
    security(("bearer" = [])),
    request_body = PutContactsRequest,
    responses(
        (status = 201, body = AppendedResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The social recovery device is not a current device of the caller's identity", body = ErrorBody),
    )
)]
pub(crate) async fn put_contacts(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<PutContactsRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let entry = b64_decode("contacts", &req.contacts)?;
    let c = RecoveryContacts::decode_verified(&entry).map_err(|e| invalid("contacts", e))?;
    // REVIEW4 T8: the protocol's floor on the waiting period (clients refuse such an entry too).
    check_waiting_period(c.waiting_period).map_err(|e| invalid("contacts", e))?;
    let handle = caller_handle(&state, &caller).await?;
    if c.identity_id() != caller.identity_id || c.handle != handle {
        return Err(ApiError::Forbidden(
            "recovery contacts are signed by the caller's own identity, for its own handle",
        ));
    }
    let escrow = b64_decode("escrow", &req.escrow)?;
    if escrow.len() != SOCIAL_ESCROW_LEN || escrow_hash(&escrow) != c.escrow_hash {
        return Err(ApiError::BadRequest(
            "escrow: not the escrow the contacts entry binds".into(),
        ));
    }
    let ch = contacts_hash(&entry);
    let named: usize = c.contacts.iter().map(|k| k.devices.len()).sum();
    if req.shares.len() != named {
        return Err(ApiError::BadRequest(
            "shares: one share wrap for each device the entry names".into(),
        ));
    }
    let mut shares = Vec::with_capacity(named);
    for s in &req.shares {
        let bytes = b64_decode("shares", s)?;
        let w = ShareWrap::decode(&bytes).map_err(|e| invalid("share", e))?;
        w.verify_signature(&caller.signing_key)
            .map_err(|e| invalid("share", e))?;
        let Some((pos, contact)) = c
            .contacts
            .iter()
            .enumerate()
            .find(|(_, k)| k.devices.contains(&w.recipient))
        else {
            return Err(ApiError::BadRequest(
                "share: wrapped to a device the entry does not name".into(),
            ));
        };
        if w.handle != handle
            || w.contacts_hash != ch
            || w.request_id != [0; 16]
            || usize::from(w.share_x) != pos + 1
        {
            return Err(ApiError::BadRequest(
                "share: bound to another handle, contacts entry, request or position".into(),
            ));
        }
        shares.push((
            w.recipient.to_string(),
            w.sharer.to_string(),
            contact.handle.clone(),
            bytes,
        ));
    }
    let idx = state
        .store
        .meta()
        .put_social(&NewSocial {
            handle: &handle,
            identity_id: &caller.identity_id,
            recovery_device: &c.recovery_device,
            contacts_hash: &hex::encode(ch),
            threshold: c.threshold,
            waiting_period: c.waiting_period,
            escrow: &escrow,
            entry: &entry,
            shares,
            now: now(),
        })
        .await?;
    tracing::info!(device = %caller.device_id.short(), "recovery contacts logged");
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![idx],
        }),
    ))
}

/// The share wraps of a handle's current contacts addressed to the caller's device.
#[utoipa::path(
    get, path = "/v1/recovery/shares/{handle}", tag = "recovery",
    security(("bearer" = [])),
    params(("handle" = String, Path, description = "The handle whose shares the caller holds")),
    responses(
        (status = 200, body = SharesResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    )
)]
pub(crate) async fn shares(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(handle): ApiPath<String>,
) -> Result<Json<SharesResponse>, ApiError> {
    validate_handle(&handle).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let shares = state
        .store
        .meta()
        .social_shares(&handle, "", &caller.device_id.to_string())
        .await?;
    Ok(Json(SharesResponse {
        handle,
        shares: shares.iter().map(|s| b64_encode(s)).collect(),
    }))
}

/// Logs a recovery request (kind 14), self-signed by the new device (no authentication: the
/// new machine has no account; throttled per address like the login routes).
#[utoipa::path(
    post, path = "/v1/recovery/requests", tag = "recovery",
    request_body = PostRecoveryRequest,
    responses(
        (status = 201, body = RecoveryRequestCreated),
        (status = 400, body = ErrorBody),
        (status = 409, description = "No recovery contacts for this handle, or not the current ones", body = ErrorBody),
        (status = 429, description = "Throttled, or the handle has as many open requests as the server keeps (3)", body = ErrorBody),
    )
)]
pub(crate) async fn post_request(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PostRecoveryRequest>,
) -> Result<(StatusCode, Json<RecoveryRequestCreated>), ApiError> {
    let entry = b64_decode("request", &req.request)?;
    let r = SocialRecoveryRequest::decode_verified(&entry).map_err(|e| invalid("request", e))?;
    // REVIEW4 T21: the request's signed time must be near the server's clock (10 min either
    // way): a request dated next year would show the patient a veto deadline next year while
    // the escrow is served at `logged_at + waiting period`.
    if now().abs_diff(r.at) > 600 {
        return Err(ApiError::BadRequest(
            "request: its time is more than 10 minutes from the server's clock".into(),
        ));
    }
    let id = hex::encode(r.id);
    let idx = state
        .store
        .meta()
        .append_social_request(
            &r.handle,
            &id,
            &hex::encode(r.contacts_hash),
            &r.device_id().to_string(),
            &entry,
            now(),
        )
        .await?;
    tracing::info!("recovery request logged");
    Ok((
        StatusCode::CREATED,
        Json(RecoveryRequestCreated {
            request_id: id,
            log_indices: vec![idx],
        }),
    ))
}

/// Logs a contact's approval (kind 15) and stores its share re-wrapped to the new device.
#[utoipa::path(
    post, path = "/v1/recovery/approvals", tag = "recovery",
    security(("bearer" = [])),
    request_body = PostApprovalRequest,
    responses(
        (status = 201, body = AppendedResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Vetoed, or already approved by this device", body = ErrorBody),
    )
)]
pub(crate) async fn post_approval(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<PostApprovalRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let entry = b64_decode("approval", &req.approval)?;
    let a = RecoveryApproval::decode_verified(&entry).map_err(|e| invalid("approval", e))?;
    let handle = caller_handle(&state, &caller).await?;
    if a.device_id() != caller.device_id || a.contact != handle {
        return Err(ApiError::Forbidden(
            "an approval is signed by the caller's device, under its own handle",
        ));
    }
    let id = hex::encode(a.request_id);
    let row = state
        .store
        .meta()
        .social_request(&id)
        .await?
        .filter(|r| r.handle == a.handle)
        .ok_or(ApiError::NotFound("no such recovery request"))?;
    if row.vetoed {
        return Err(ApiError::Conflict("the request was vetoed".into()));
    }
    if row.new_device != a.new_device.to_string() {
        return Err(ApiError::BadRequest(
            "approval: names another device than the request".into(),
        ));
    }
    let share = b64_decode("share", &req.share)?;
    let w = ShareWrap::decode(&share).map_err(|e| invalid("share", e))?;
    w.verify_signature(&caller.signing_key)
        .map_err(|e| invalid("share", e))?;
    if w.handle != a.handle
        || w.request_id != a.request_id
        || w.recipient != a.new_device
        || hex::encode(w.contacts_hash) != row.contacts_hash
    {
        return Err(ApiError::BadRequest(
            "share: not wrapped for this request's device and contacts".into(),
        ));
    }
    // REVIEW4 T5: only a device the current contacts entry names may approve, at its contact's
    // position: it holds a distribution share wrap of that entry (checked against the entry at
    // `put_social`), whose `x` the re-wrap must carry. Sybils get 403 and nothing is logged.
    let named = state
        .store
        .meta()
        .social_shares(&a.handle, "", &caller.device_id.to_string())
        .await?
        .iter()
        .filter_map(|b| ShareWrap::decode(b).ok())
        .any(|d| d.contacts_hash == w.contacts_hash && d.share_x == w.share_x);
    if !named {
        return Err(ApiError::Forbidden(
            "only a device the current recovery contacts entry names may approve, at its position",
        ));
    }
    let idx = state
        .store
        .meta()
        .append_social_approval(
            &a.handle,
            &id,
            &handle,
            &caller.device_id.to_string(),
            &row.new_device,
            &share,
            &entry,
            now(),
        )
        .await?;
    tracing::info!(device = %caller.device_id.short(), "recovery approval logged");
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![idx],
        }),
    ))
}

/// Logs a veto (kind 16) by a device of the identity.
#[utoipa::path(
    post, path = "/v1/recovery/vetoes", tag = "recovery",
    security(("bearer" = [])),
    request_body = PostVetoRequest,
    responses(
        (status = 201, body = AppendedResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn post_veto(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<PostVetoRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let entry = b64_decode("veto", &req.veto)?;
    let v = RecoveryVeto::decode_verified(&entry).map_err(|e| invalid("veto", e))?;
    let handle = caller_handle(&state, &caller).await?;
    if v.device_id() != caller.device_id || v.handle != handle {
        return Err(ApiError::Forbidden(
            "a veto is signed by a device of the identity being recovered",
        ));
    }
    let id = hex::encode(v.request_id);
    state
        .store
        .meta()
        .social_request(&id)
        .await?
        .filter(|r| r.handle == v.handle)
        .ok_or(ApiError::NotFound("no such recovery request"))?;
    let idx = state
        .store
        .meta()
        .append_social_veto(&v.handle, &id, &caller.device_id.to_string(), &entry, now())
        .await?;
    tracing::info!(device = %caller.device_id.short(), "recovery veto logged");
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![idx],
        }),
    ))
}

/// A request's escrow and the shares re-wrapped to its device, once K contacts approved, the
/// waiting period is over and no device vetoed; only to the request's own device, which signs a
/// fresh fetch proof with the request's key (REVIEW4 T1; throttled per address).
#[utoipa::path(
    post, path = "/v1/recovery/requests/{id}", tag = "recovery",
    params(("id" = String, Path, description = "The request id (32 hex)")),
    request_body = FetchRecoveryRequest,
    responses(
        (status = 200, body = SocialRecoveryResponse),
        (status = 400, body = ErrorBody),
        (status = 403, description = "The proof is not by the request's device, or not fresh", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Vetoed, too few approvals, the waiting period not over, its completion window over, or the contacts changed", body = ErrorBody),
        (status = 429, body = ErrorBody),
    )
)]
pub(crate) async fn fetch_request(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<FetchRecoveryRequest>,
) -> Result<Json<SocialRecoveryResponse>, ApiError> {
    let rid = request_id_param(&id)?;
    let meta = state.store.meta();
    let row = meta
        .social_request(&id)
        .await?
        .ok_or(ApiError::NotFound("no such recovery request"))?;
    // REVIEW4 T1: the escrow of a qualifying request goes to the device that made the request,
    // never to whoever asks (K contacts holding distribution shares, say): a fresh proof signed
    // by the request's key.
    let key: [u8; 32] = b64_array("signing_key", &req.signing_key)?;
    let signature = b64_decode("signature", &req.signature)?;
    let fresh = now().abs_diff(req.at) <= 300;
    if !fresh
        || KeyId::of(KeyKind::Device, &key).to_string() != row.new_device
        || verify_fetch(&key, &rid, req.at, &signature).is_err()
    {
        return Err(ApiError::Forbidden(
            "only the request's own device, with a fresh proof signed by its key, fetches the escrow",
        ));
    }
    let social = meta
        .social(&row.handle)
        .await?
        .filter(|s| s.contacts_hash == row.contacts_hash)
        .ok_or(ApiError::Conflict(
            "the handle's recovery contacts changed since this request, or a completed recovery burnt them".into(),
        ))?;
    if row.vetoed {
        return Err(ApiError::Conflict("the request was vetoed".into()));
    }
    if row.approvals < social.threshold {
        return Err(ApiError::Conflict(format!(
            "{} of {} approvals",
            row.approvals, social.threshold
        )));
    }
    let ready_at = row.logged_at.saturating_add(social.waiting_period);
    if now() < ready_at {
        return Err(ApiError::Conflict(format!(
            "the waiting period ends in {} s",
            ready_at - now()
        )));
    }
    // REVIEW5 U15: a request is completable for REQUEST_COMPLETION_WINDOW after its waiting
    // period, no longer: an abandoned recovery does not stay open for ever.
    if !serment_core::social::request_within_window(row.logged_at, social.waiting_period, now()) {
        return Err(ApiError::Conflict(
            "the request's completion window (7 days after its waiting period) is over: make a new request".into(),
        ));
    }
    let shares = meta
        .social_shares(&row.handle, &id, &row.new_device)
        .await?;
    Ok(Json(SocialRecoveryResponse {
        handle: row.handle,
        escrow: b64_encode(&social.escrow),
        shares: shares.iter().map(|s| b64_encode(s)).collect(),
    }))
}

/// A handle's social recovery chain (kinds 13-16) with inclusion proofs against checkpoint
/// `size` (no authentication: contacts and the new machine read it). Not throttled: the login
/// budget counts a 404 (no contacts, the common case, read on every `ls`) as a failure; the
/// chain's growth is bounded by the cap of open requests instead (REVIEW5 U1).
#[utoipa::path(
    get, path = "/v1/log/social/{handle}", tag = "log",
    params(("handle" = String, Path, description = "The handle"),
           ("size" = Option<u64>, Query, description = "Prove against this checkpoint size")),
    responses(
        (status = 200, body = HistoryResponse),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    ApiPath(handle): ApiPath<String>,
    ApiQuery(q): ApiQuery<SizeQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    validate_handle(&handle).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    super::log::subject_history(
        &state,
        &Subject::Social(handle),
        q.size,
        "no social recovery entries for this handle",
    )
    .await
    .map(Json)
}
