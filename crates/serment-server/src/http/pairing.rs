//! The device-pairing relay (PROTOCOL.md §4.1, issue 16). The server only stores and serves three
//! opaque messages per slot (SPAKE2 messages and AES-GCM ciphertexts it cannot open or forge);
//! what it can do — change, replay or drop them — the two devices detect. A slot is opened by a
//! logged-in device, takes one join (single use), lives [`PAIRING_TTL_SECS`], and joins are
//! throttled per address like the login routes (each refusal counts as a failure). Against
//! storage exhaustion and slot sweeping (hostile review F2, F3): a hello is at most
//! [`MAX_HELLO`] bytes, a device holds at most 3 live slots (409 beyond) and opens at most
//! [`OPENS_PER_MINUTE`] a minute, and every unknown slot asked for (`GET`, 404) counts as a
//! failure of the asking address, as a refused join does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serment_api::{
    FinishPairingRequest, OpenPairingRequest, PairingMessageRequest, PairingResponse,
};
use serment_core::pairing::{PAIRING_TTL_SECS, PairingCode};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, AuthDevice, b64_decode, b64_encode};
use crate::store::{PairingRow, now};

/// The largest pairing message accepted, in bytes (a join carries an X-Wing key; a finish a CA
/// bundle at most).
const MAX_MESSAGE: usize = 300 * 1024;

/// The largest hello accepted, in bytes: it carries one SPAKE2 message (33 bytes) and a short
/// header (PROTOCOL.md §4.1); the room is for future suites, not for an attacker's 300 KiB
/// (hostile review F2).
const MAX_HELLO: usize = 1024;

/// The most slots one device may open a minute (F2).
pub(crate) const OPENS_PER_MINUTE: u32 = 10;

fn slot_of(s: &str) -> Result<String, ApiError> {
    if PairingCode::is_slot(s) {
        Ok(s.to_owned())
    } else {
        Err(ApiError::BadRequest("slot: expected 6 digits".into()))
    }
}

fn message(field: &str, s: &str) -> Result<Vec<u8>, ApiError> {
    sized(field, s, MAX_MESSAGE)
}

fn sized(field: &str, s: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    let b = b64_decode(field, s)?;
    if b.is_empty() || b.len() > max {
        return Err(ApiError::BadRequest(format!(
            "{field}: expected 1 to {max} bytes"
        )));
    }
    Ok(b)
}

fn answer(slot: String, row: PairingRow, t: u64) -> PairingResponse {
    PairingResponse {
        slot,
        hello: b64_encode(&row.hello),
        join: row.join.as_deref().map(b64_encode),
        finish: row.finish.as_deref().map(b64_encode),
        aborted: row.aborted,
        expires_in: row.expires_at.saturating_sub(t),
    }
}

async fn live(state: &AppState, slot: &str, t: u64) -> Result<PairingRow, ApiError> {
    state
        .store
        .meta()
        .pairing(slot, t)
        .await?
        .ok_or(ApiError::NotFound("no such pairing slot, or it expired"))
}

/// Opens a pairing slot with the linking device's hello (step 1).
#[utoipa::path(
    post, path = "/v1/pairing", tag = "directory",
    security(("bearer" = [])),
    request_body = OpenPairingRequest,
    responses(
        (status = 201, body = PairingResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "The slot is in use (draw another code), or the device holds 3 live slots", body = ErrorBody),
        (status = 429, description = "Too many slots opened by this device", body = ErrorBody),
    )
)]
pub(crate) async fn open(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<OpenPairingRequest>,
) -> Result<(StatusCode, Json<PairingResponse>), ApiError> {
    let slot = slot_of(&req.slot)?;
    let hello = sized("hello", &req.hello, MAX_HELLO)?;
    let t = now();
    let meta = state.store.meta();
    let t_ms = t.saturating_mul(1000);
    if !meta
        .take_token(
            "pairing",
            &format!("device:{}", caller.device_id),
            OPENS_PER_MINUTE,
            t_ms,
            true,
        )
        .await?
    {
        return Err(ApiError::TooManyRequests(format!(
            "too many pairing slots opened by this device (at most {OPENS_PER_MINUTE} a minute)"
        )));
    }
    // Over the device's live slots: a conflict (409) from the store.
    if !meta
        .open_pairing(
            &slot,
            &caller.device_id,
            &hello,
            t.saturating_add(PAIRING_TTL_SECS),
            t,
        )
        .await?
    {
        return Err(ApiError::Conflict(
            "this pairing slot is in use: draw another code".into(),
        ));
    }
    tracing::info!(device = %caller.device_id.short(), "pairing slot opened");
    let row = live(&state, &slot, t).await?;
    Ok((StatusCode::CREATED, Json(answer(slot, row, t))))
}

/// The messages of a live slot (polled by both devices).
#[utoipa::path(
    get, path = "/v1/pairing/{slot}", tag = "directory",
    params(("slot" = String, Path, description = "6 digits")),
    responses(
        (status = 200, body = PairingResponse),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such slot, or it expired", body = ErrorBody),
        (status = 429, description = "Too many unknown slots asked from this address", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    ApiPath(slot): ApiPath<String>,
) -> Result<Json<PairingResponse>, ApiError> {
    let slot = slot_of(&slot)?;
    let t = now();
    let row = live(&state, &slot, t).await?;
    Ok(Json(answer(slot, row, t)))
}

/// Posts the new device's join (step 2). Single use: a slot takes one join.
#[utoipa::path(
    post, path = "/v1/pairing/{slot}/join", tag = "directory",
    params(("slot" = String, Path, description = "6 digits")),
    request_body = PairingMessageRequest,
    responses(
        (status = 201, body = PairingResponse),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such slot, or it expired", body = ErrorBody),
        (status = 409, description = "The slot already took a join (single use)", body = ErrorBody),
        (status = 429, description = "Too many pairing attempts from this address", body = ErrorBody),
    )
)]
pub(crate) async fn join(
    State(state): State<AppState>,
    ApiPath(slot): ApiPath<String>,
    ApiJson(req): ApiJson<PairingMessageRequest>,
) -> Result<(StatusCode, Json<PairingResponse>), ApiError> {
    let slot = slot_of(&slot)?;
    let msg = message("message", &req.message)?;
    let t = now();
    let _ = live(&state, &slot, t).await?;
    if !state.store.meta().join_pairing(&slot, &msg, t).await? {
        return Err(ApiError::Conflict(
            "this pairing code was already used: run `serment device link` again".into(),
        ));
    }
    let row = live(&state, &slot, t).await?;
    Ok((StatusCode::CREATED, Json(answer(slot, row, t))))
}

/// Posts the linking device's finish (step 3), or aborts the pairing (no message).
#[utoipa::path(
    post, path = "/v1/pairing/{slot}/finish", tag = "directory",
    security(("bearer" = [])),
    params(("slot" = String, Path, description = "6 digits")),
    request_body = FinishPairingRequest,
    responses(
        (status = 201, body = PairingResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "No such slot, or it expired", body = ErrorBody),
        (status = 403, description = "Not the slot's owner", body = ErrorBody),
        (status = 409, description = "No join yet, or already finished", body = ErrorBody),
    )
)]
pub(crate) async fn finish(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiPath(slot): ApiPath<String>,
    ApiJson(req): ApiJson<FinishPairingRequest>,
) -> Result<(StatusCode, Json<PairingResponse>), ApiError> {
    let slot = slot_of(&slot)?;
    let msg = match &req.message {
        Some(m) => Some(message("message", m)?),
        None => None,
    };
    let t = now();
    let row = live(&state, &slot, t).await?;
    if row.owner_device != caller.device_id {
        return Err(ApiError::Forbidden("not this device's pairing slot"));
    }
    if msg.is_some() && row.join.is_none() {
        return Err(ApiError::Conflict("no join to answer yet".into()));
    }
    if !state
        .store
        .meta()
        .finish_pairing(&slot, &caller.device_id, msg.as_deref(), t)
        .await?
    {
        return Err(ApiError::Conflict(
            "not this device's pairing slot, or it is already finished".into(),
        ));
    }
    let row = live(&state, &slot, t).await?;
    Ok((StatusCode::CREATED, Json(answer(slot, row, t))))
}
