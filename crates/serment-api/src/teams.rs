//! The care-team routes (PROTOCOL.md §12.5): membership changes with the epoch keys they
//! distribute, a device's team keys, the teams of a handle, and a document's wrap to a team.

use serde::{Deserialize, Serialize};

/// `POST /v1/teams/{name}/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamChangeRequest {
    /// The signed team change (PROTOCOL.md §12.2), base64url.
    pub change: String,
    /// Team key wraps (§12.3) of the change's epoch to member devices, base64url: every current
    /// member device for a change that opens an epoch, the new member's devices for an add.
    pub key_wraps: Vec<String>,
}

/// `GET /v1/teams/{name}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamKeysResponse {
    /// The caller device's team key wraps (§12.3), base64url, oldest epoch first.
    pub keys: Vec<String>,
}

/// `GET /v1/teams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamsResponse {
    /// The teams whose current members include the caller's handle, by name.
    pub teams: Vec<String>,
}

/// `POST /v1/documents/{doc_id}/versions/{v}/team-wraps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamWrapRequest {
    /// The team name.
    pub team: String,
    /// The author's suite-3 key wrap (§7) to the team's current epoch id, base64url.
    pub wrap: String,
}
