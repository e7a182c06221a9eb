//! Social recovery, k-of-n (PROTOCOL.md §4.3, issue 17 §2): the recovery contacts with their
//! escrow and share wraps, recovery requests, approvals (with the share re-wrapped to the new
//! device) and vetoes. Binary values are base64url without padding; ids are lowercase hex.

use serde::{Deserialize, Serialize};

/// `POST /v1/recovery/contacts` (bearer): logs the caller's recovery contacts (kind 13) and
/// stores the escrow and the share wraps to the contacts' devices, replacing any previous set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutContactsRequest {
    /// The contacts entry payload (`"SRMN"`), signed by the caller's identity key.
    pub contacts: String,
    /// The social escrow (`"SRSE"`), whose hash the entry binds.
    pub escrow: String,
    /// One share wrap (`"SRMM"`) for each device the entry names.
    pub shares: Vec<String>,
}

/// Share wraps addressed to the caller's device: `GET /v1/recovery/shares/{handle}` (the
/// distribution, bearer) or inside [`SocialRecoveryResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SharesResponse {
    /// The handle whose shares they are.
    pub handle: String,
    /// Share wraps (`"SRMM"`), base64url.
    pub shares: Vec<String>,
}

/// `POST /v1/recovery/requests` (no authentication, throttled per address): logs a recovery
/// request (kind 14), self-signed by the new device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostRecoveryRequest {
    /// The request payload (`"SRMI"`).
    pub request: String,
}

/// The answer to [`PostRecoveryRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryRequestCreated {
    /// The request id (32 hex: 16 bytes, PROTOCOL.md §4.3).
    pub request_id: String,
    /// The log index of the request entry.
    pub log_indices: Vec<u64>,
}

/// `POST /v1/recovery/approvals` (bearer, a contact's device): logs an approval (kind 15) and
/// stores the contact's share re-wrapped to the requesting device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostApprovalRequest {
    /// The approval payload (`"SRMO"`), signed by the caller's device.
    pub approval: String,
    /// The share wrap (`"SRMM"`) to the request's new device, signed by the caller's device.
    pub share: String,
}

/// `POST /v1/recovery/vetoes` (bearer, a device of the identity): logs a veto (kind 16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostVetoRequest {
    /// The veto payload (`"SRMH"`), signed by the caller's device.
    pub veto: String,
}

/// `POST /v1/recovery/requests/{id}` (throttled per address): the request's own device proves
/// it holds the request's signing key (REVIEW4 T1: the escrow is served to that device only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FetchRecoveryRequest {
    /// The request's signing key (the new device's), base64url: its device id must be the
    /// request's.
    pub signing_key: String,
    /// Seconds since the Unix epoch, within 5 minutes of the server's clock.
    pub at: u64,
    /// Ed25519 by that key over `sig_input("recovery-fetch", request_id || u64 at)`,
    /// base64url (PROTOCOL.md §4.3).
    pub signature: String,
}

/// The answer to [`FetchRecoveryRequest`]: the escrow and the shares re-wrapped to the
/// request's new device, once the server sees enough approvals, the waiting period over and no
/// veto (the client checks all of it again in the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SocialRecoveryResponse {
    /// The handle being recovered.
    pub handle: String,
    /// The social escrow (`"SRSE"`), base64url.
    pub escrow: String,
    /// Share wraps (`"SRMM"`) to the new device, base64url.
    pub shares: Vec<String>,
}
