//! The device-pairing relay (PROTOCOL.md §4.1, issue 16): three opaque messages per slot, which
//! the server stores and serves without being able to read or forge them.

use serde::{Deserialize, Serialize};

/// `POST /v1/pairing` (bearer): the linking device opens a slot with its hello (step 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenPairingRequest {
    /// The slot: the first 6 digits of the pairing code.
    pub slot: String,
    /// The hello message (`"SRMP"`, step 1), base64url.
    pub hello: String,
}

/// `POST /v1/pairing/{slot}/join` (no authentication: the new device has no account yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PairingMessageRequest {
    /// The message (step 2 or 3), base64url.
    pub message: String,
}

/// `POST /v1/pairing/{slot}/finish` (bearer, the slot's owner): the finish message (step 3), or
/// no message to abort (the join did not authenticate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FinishPairingRequest {
    /// The finish message, base64url; absent to abort the pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `GET /v1/pairing/{slot}` and the answers of the posts: the slot's messages so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingResponse {
    /// The slot (6 digits).
    pub slot: String,
    /// Step 1, base64url.
    pub hello: String,
    /// Step 2, base64url, once the new device posted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// Step 3, base64url, once the linking device posted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<String>,
    /// The linking device refused the join (wrong code, or a message changed on the way).
    #[serde(default)]
    pub aborted: bool,
    /// Seconds until the slot expires.
    pub expires_in: u64,
}
