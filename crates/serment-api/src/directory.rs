//! Device registration, the directory and login (PROTOCOL.md §8.1, §8.2).

use serde::{Deserialize, Serialize};

/// `POST /v1/devices` (§8.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    /// The signed device record (§4), base64url.
    pub record: String,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterDeviceResponse {
    /// Device id, 64 hex.
    pub device_id: String,
    /// Identity id, 64 hex.
    pub identity_id: String,
    /// The handle the device is registered under.
    pub handle: String,
}

/// `GET /v1/directory/{handle}` (§8.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectoryResponse {
    /// The handle.
    pub handle: String,
    /// The device records of the identity owning the handle, base64url, oldest first.
    pub records: Vec<String>,
}

/// `GET /v1/devices/{device_id}` (§8.1): the record of a registered, unrevoked device, which
/// names its handle. Unverified as served: the client decodes and verifies it, and proves the
/// handle's devices in the log before relying on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceRecordResponse {
    /// The signed device record (§4), base64url.
    pub record: String,
}

/// `POST /v1/auth/challenge` (§8.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// Device id, 64 hex.
    pub device_id: String,
}

/// A login challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeResponse {
    /// 32 random bytes, base64url; single use.
    pub challenge: String,
    /// Seconds until the challenge expires (60).
    pub expires_in: u64,
}

/// `POST /v1/auth/token` (§8.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Device id, 64 hex.
    pub device_id: String,
    /// The challenge received, base64url.
    pub challenge: String,
    /// Ed25519 signature over `sig_input("auth", challenge || device_id)`, base64url (64 bytes).
    pub signature: String,
}

/// A bearer token.
// `Debug` shows the token's length only: it is a credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// 32 random bytes, base64url; send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &format_args!("<{} chars>", self.token.len()))
            .field("expires_in", &self.expires_in)
            .finish()
    }
}
