//! Recovery when every device is lost (PROTOCOL.md §4.2, issue 17 §2). The server stores one
//! escrow per handle (an Argon2id + AES-256-GCM ciphertext it cannot open), serves it by handle
//! to anyone (the recovering machine has no account yet) with every fetch taking a token of the
//! address's login budget, and appends the identity-signed recovery entry (kind 12). What a
//! hostile server can do with them — weaken the escrow's parameters, serve another identity's
//! escrow or a burnt one, leave the recovery out of the log — the client detects.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serment_api::{AppendedResponse, EscrowResponse, PutEscrowRequest, RecoveryRequest};
use serment_core::identity::{DeviceRecord, validate_handle};
use serment_core::log::entry::Recovery;
use serment_core::recovery::ESCROW_LEN;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, AuthDevice, b64_decode, b64_encode, parse_key_id};
use crate::store::now;

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

/// Stores or replaces the escrow of the caller's handle.
#[utoipa::path(
    post, path = "/v1/recovery/escrow", tag = "directory",
    security(("bearer" = [])),
    request_body = PutEscrowRequest,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "The recovery device is not a current device of the caller's identity", body = ErrorBody),
    )
)]
pub(crate) async fn put_escrow(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<PutEscrowRequest>,
) -> Result<StatusCode, ApiError> {
    let escrow = b64_decode("escrow", &req.escrow)?;
    if escrow.len() != ESCROW_LEN {
        return Err(ApiError::BadRequest(format!(
            "escrow: expected {ESCROW_LEN} bytes"
        )));
    }
    let device = parse_key_id("recovery_device", &req.recovery_device)?;
    let handle = caller_handle(&state, &caller).await?;
    state
        .store
        .meta()
        .put_escrow(&handle, &caller.identity_id, &device, &escrow, now())
        .await?;
    tracing::info!(device = %caller.device_id.short(), "recovery escrow stored");
    Ok(StatusCode::NO_CONTENT)
}

/// The escrow of a handle (no authentication: the recovering machine has none yet). Throttled
/// per address like the login routes.
#[utoipa::path(
    get, path = "/v1/recovery/escrow/{handle}", tag = "directory",
    params(("handle" = String, Path, description = "The handle")),
    responses(
        (status = 200, body = EscrowResponse),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No escrow for this handle", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    )
)]
pub(crate) async fn get_escrow(
    State(state): State<AppState>,
    ApiPath(handle): ApiPath<String>,
) -> Result<Json<EscrowResponse>, ApiError> {
    validate_handle(&handle).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (device, escrow) = state
        .store
        .meta()
        .escrow(&handle)
        .await?
        .ok_or(ApiError::NotFound("no recovery escrow for this handle"))?;
    Ok(Json(EscrowResponse {
        handle,
        recovery_device: device.to_string(),
        escrow: b64_encode(&escrow),
    }))
}

/// Appends a recovery entry (kind 12), signed by the caller's identity key, and deletes the
/// escrow it burnt.
#[utoipa::path(
    post, path = "/v1/log/recoveries", tag = "log",
    security(("bearer" = [])),
    request_body = RecoveryRequest,
    responses(
        (status = 201, body = AppendedResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
    )
)]
pub(crate) async fn post_recovery(
    State(state): State<AppState>,
    caller: AuthDevice,
    ApiJson(req): ApiJson<RecoveryRequest>,
) -> Result<(StatusCode, Json<AppendedResponse>), ApiError> {
    let bytes = b64_decode("recovery", &req.recovery)?;
    let rec = Recovery::decode_verified(&bytes)
        .map_err(|e| ApiError::InvalidRecord(format!("recovery: {e}")))?;
    if rec.identity_id() != caller.identity_id || rec.new_device != caller.device_id {
        return Err(ApiError::Forbidden(
            "a recovery entry is posted by the device it enrolled, under its own identity",
        ));
    }
    let idx = state
        .store
        .meta()
        .append_recovery(
            &rec.handle,
            &caller.identity_id,
            &rec.recovery_device,
            &rec.new_device,
            &bytes,
            now(),
        )
        .await?;
    tracing::info!(device = %caller.device_id.short(), "recovery logged");
    Ok((
        StatusCode::CREATED,
        Json(AppendedResponse {
            log_indices: vec![idx],
        }),
    ))
}
