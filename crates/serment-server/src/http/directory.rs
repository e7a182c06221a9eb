//! Directory and authentication handlers (PROTOCOL.md §8.1, §8.2).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serment_core::identity::{DeviceRecord, validate_handle};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{
    ApiJson, ApiPath, b64_array, b64_decode, b64_encode, parse_key_id, secret_hash,
};
use super::types::{
    ChallengeRequest, ChallengeResponse, DeviceRecordResponse, DirectoryResponse,
    RegisterDeviceRequest, RegisterDeviceResponse, TokenRequest, TokenResponse,
};
use crate::store::{NewDevice, Registered, now};

/// Seconds a login challenge stays valid (§8.2).
pub(crate) const CHALLENGE_TTL_SECS: u64 = 60;

/// Registers a device record (§8.1): 201 when new, 200 when the same record was already registered.
#[utoipa::path(
    post, path = "/v1/devices", tag = "directory",
    request_body = RegisterDeviceRequest,
    responses(
        (status = 201, description = "Registered", body = RegisterDeviceResponse),
        (status = 200, description = "Already registered with the same record", body = RegisterDeviceResponse),
        (status = 400, description = "Malformed or unverifiable record", body = ErrorBody),
        (status = 409, description = "Handle bound to another identity, or device id taken", body = ErrorBody),
    )
)]
pub(crate) async fn register_device(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterDeviceRequest>,
) -> Result<(StatusCode, Json<RegisterDeviceResponse>), ApiError> {
    let bytes = b64_decode("record", &req.record)?;
    let record = DeviceRecord::decode_verified(&bytes)
        .map_err(|e| ApiError::InvalidRecord(format!("record: {e}")))?;
    let device_id = record.device_id();
    let identity_id = record.identity_id();
    let outcome = state
        .store
        .meta()
        .register_device(&NewDevice {
            device_id,
            identity_id,
            handle: &record.handle,
            record: &bytes,
            created_at: now(),
        })
        .await?;
    let status = match outcome {
        Registered::Created => {
            tracing::info!(device = %device_id.short(), handle = %record.handle, "device registered");
            StatusCode::CREATED
        }
        Registered::Unchanged => StatusCode::OK,
    };
    Ok((
        status,
        Json(RegisterDeviceResponse {
            device_id: device_id.to_string(),
            identity_id: identity_id.to_string(),
            handle: record.handle,
        }),
    ))
}

/// Looks up the device records of a handle (§8.1).
#[utoipa::path(
    get, path = "/v1/directory/{handle}", tag = "directory",
    params(("handle" = String, Path, description = "1 to 64 of [a-z0-9._-], not starting with '.' or '-'")),
    responses(
        (status = 200, body = DirectoryResponse),
        (status = 400, description = "Invalid handle", body = ErrorBody),
        (status = 404, description = "Unknown handle", body = ErrorBody),
    )
)]
pub(crate) async fn directory(
    State(state): State<AppState>,
    ApiPath(handle): ApiPath<String>,
) -> Result<Json<DirectoryResponse>, ApiError> {
    validate_handle(&handle).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let records = state
        .store
        .meta()
        .directory(&handle)
        .await?
        .ok_or(ApiError::NotFound("unknown handle"))?;
    Ok(Json(DirectoryResponse {
        handle,
        records: records.iter().map(|r| b64_encode(r)).collect(),
    }))
}

/// The record of a registered, unrevoked device (§8.1): which handle a device belongs to, for a
/// client that met the device's key in a proven log entry (the lab device of a provisional
/// recipient, PROTOCOL.md §15.4). Public, like the directory and the log that holds the record.
#[utoipa::path(
    get, path = "/v1/devices/{device_id}", tag = "directory",
    params(("device_id" = String, Path, description = "Device id, 64 hex")),
    responses(
        (status = 200, body = DeviceRecordResponse),
        (status = 400, body = ErrorBody),
        (status = 404, description = "Unknown or revoked device", body = ErrorBody),
    )
)]
pub(crate) async fn device(
    State(state): State<AppState>,
    ApiPath(device_id): ApiPath<String>,
) -> Result<Json<DeviceRecordResponse>, ApiError> {
    let device_id = parse_key_id("device_id", &device_id)?;
    let row = state
        .store
        .meta()
        .device(&device_id)
        .await?
        .ok_or(ApiError::NotFound("unknown or revoked device"))?;
    Ok(Json(DeviceRecordResponse {
        record: b64_encode(&row.record),
    }))
}

/// Issues a single-use login challenge for a registered device (§8.2).
#[utoipa::path(
    post, path = "/v1/auth/challenge", tag = "auth",
    request_body = ChallengeRequest,
    responses(
        (status = 200, body = ChallengeResponse),
        (status = 400, body = ErrorBody),
        (status = 403, description = "Revoked device", body = ErrorBody),
        (status = 404, description = "Unknown device", body = ErrorBody),
    )
)]
pub(crate) async fn challenge(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    let device_id = parse_key_id("device_id", &req.device_id)?;
    let meta = state.store.meta();
    if meta.device(&device_id).await?.is_none() {
        // A revoked device is told so (it is public in the log), not "unknown".
        return Err(if meta.device_revoked(&device_id).await? {
            ApiError::DeviceRevoked
        } else {
            ApiError::NotFound("unknown device")
        });
    }
    let mut challenge = [0u8; 32];
    getrandom::fill(&mut challenge)
        .map_err(|e| ApiError::internal("random generator failed", &e))?;
    let t = now();
    meta.insert_challenge(
        &secret_hash(&challenge),
        &device_id,
        t.saturating_add(CHALLENGE_TTL_SECS),
        t,
    )
    .await?;
    Ok(Json(ChallengeResponse {
        challenge: b64_encode(&challenge),
        expires_in: CHALLENGE_TTL_SECS,
    }))
}

/// Exchanges a signed challenge for a bearer token (§8.2). The challenge is consumed whether or
/// not the signature verifies.
#[utoipa::path(
    post, path = "/v1/auth/token", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown, used or expired challenge, or bad signature", body = ErrorBody),
    )
)]
pub(crate) async fn token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    const FAILED: &str = "login failed: unknown, used or expired challenge, or bad signature";
    let device_id = parse_key_id("device_id", &req.device_id)?;
    let challenge: [u8; 32] = b64_array("challenge", &req.challenge)?;
    let signature: [u8; 64] = b64_array("signature", &req.signature)?;
    let meta = state.store.meta();
    let t = now();
    if !meta
        .take_challenge(&secret_hash(&challenge), &device_id, t)
        .await?
    {
        return Err(ApiError::Unauthorized(FAILED));
    }
    let device = meta
        .device(&device_id)
        .await?
        .ok_or(ApiError::Unauthorized(FAILED))?;
    let record = DeviceRecord::decode_verified(&device.record)
        .map_err(|e| ApiError::internal("stored device record does not verify", &e))?;
    serment_core::auth::verify_challenge(&record.signing_key, &challenge, &device_id, &signature)
        .map_err(|_| ApiError::Unauthorized(FAILED))?;
    let mut token = [0u8; 32];
    getrandom::fill(&mut token).map_err(|e| ApiError::internal("random generator failed", &e))?;
    let ttl = state.config.token_ttl_secs;
    meta.create_session(&secret_hash(&token), &device_id, t.saturating_add(ttl), t)
        .await?;
    tracing::info!(device = %device_id.short(), "session opened");
    Ok(Json(TokenResponse {
        token: b64_encode(&token),
        expires_in: ttl,
    }))
}
