//! Recovery when every device is lost (PROTOCOL.md §4.2, issue 17 §2): the escrow a recovery
//! code opens, and the logged recovery entry.

use serde::{Deserialize, Serialize};

/// `POST /v1/recovery/escrow` (bearer): stores or replaces the escrow of the caller's handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutEscrowRequest {
    /// The escrow (`"SRMU"`, PROTOCOL.md §4.2), base64url.
    pub escrow: String,
    /// The recovery device it holds the keys of (64 hex): a current device of the caller's
    /// identity.
    pub recovery_device: String,
}

/// `GET /v1/recovery/escrow/{handle}` (no authentication, throttled per address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscrowResponse {
    /// The handle.
    pub handle: String,
    /// The recovery device the escrow names (64 hex; the client checks it in the log).
    pub recovery_device: String,
    /// The escrow, base64url.
    pub escrow: String,
}

/// `POST /v1/log/recoveries` (bearer, a device of the identity): appends a recovery entry
/// (kind 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    /// The recovery entry payload (`"SRMY"`), base64url.
    pub recovery: String,
}
