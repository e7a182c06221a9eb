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

/// `POST /v1/teams/{name}/keys`: a member device hands the team's epoch keys it holds on to
/// another current device of its own identity (PROTOCOL.md §12.3, "Hand-over").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamKeyHandoverRequest {
    /// Team key wraps (§12.3), base64url, each signed by the caller device (`sharer`) and
    /// addressed to another current device of the caller's identity.
    pub key_wraps: Vec<String>,
}

/// The answer to [`TeamKeyHandoverRequest`] (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamKeyHandoverResponse {
    /// How many wraps were stored (a wrap of the same team, epoch and device already held is
    /// kept, so a repeated hand-over stores 0).
    pub stored: u32,
}

/// `GET /v1/log/team/{name}` query: the tree size to prove against and, for a client that holds
/// the team's state up to a verified head (PROTOCOL.md §12.4), the index of that head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamLogQuery {
    /// The tree size to prove against (a published checkpoint); default the latest.
    pub size: Option<u64>,
    /// Only the changes with a larger log index (default: the whole chain).
    pub after: Option<u64>,
}
