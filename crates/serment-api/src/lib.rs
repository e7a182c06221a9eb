//! The JSON request and response bodies of the Serment HTTP API (PROTOCOL.md §8 and §11.9),
//! defined once: the server (`serment-server`) serializes its answers and parses its requests
//! with these types, and every client (`serment-client` over ureq, the browser build over fetch)
//! does the converse. Nothing here does I/O, so the crate builds for `wasm32-unknown-unknown`.
//!
//! Conventions (PROTOCOL.md §8): binary fields are unpadded base64url (RFC 4648 §5); ids are
//! lowercase hex; times are seconds since the Unix epoch; sizes are bytes. Requests refuse unknown
//! fields (`deny_unknown_fields`). These types only carry the wire shapes: a client validates every
//! value (hex ids, base64, proofs, signatures) before it uses one, as `serment-client` does.
//!
//! The feature `openapi` adds utoipa's `ToSchema` derives, from which the server renders its
//! OpenAPI 3.1 document (`docs/openapi.json`).

pub mod directory;
pub mod documents;
pub mod log;
pub mod pairing;
pub mod provisional;
pub mod recovery;
pub mod social;
pub mod teams;

pub use directory::{
    ChallengeRequest, ChallengeResponse, DeviceRecordResponse, DirectoryResponse,
    RegisterDeviceRequest, RegisterDeviceResponse, TokenRequest, TokenResponse,
};
pub use documents::{
    AccessEntry, AccessesResponse, AddWrapsRequest, AddWrapsResponse, BlobResponse, CommitProof,
    CommitRequest, DocumentsResponse, VersionResponse, VersionSummary,
};
pub use log::{
    AppendedResponse, CheckpointResponse, ConsistencyQuery, ConsistencyResponse,
    CosignatureRequest, EntriesQuery, EntriesResponse, ErasureRequest, HistoryResponse,
    LogKeyResponse, ProofQuery, ProvenEntry, RECEIPT_HEADER, RemovalRequest, RevocationRequest,
    RotationRequest, SizeQuery,
};
pub use teams::{
    TeamChangeRequest, TeamKeyHandoverRequest, TeamKeyHandoverResponse, TeamKeysResponse,
    TeamLogQuery, TeamWrapRequest, TeamsResponse,
};

pub use recovery::{EscrowResponse, PutEscrowRequest, RecoveryRequest};
pub use social::{
    FetchRecoveryRequest, PostApprovalRequest, PostRecoveryRequest, PostVetoRequest,
    PutContactsRequest, RecoveryRequestCreated, SharesResponse, SocialRecoveryResponse,
};

pub use pairing::{
    FinishPairingRequest, OpenPairingRequest, PairingMessageRequest, PairingResponse,
};

pub use provisional::{
    ClaimRequest, CodeSent, CreateProvisionalRequest, OpenProvisionalRequest, OpenedProvisional,
    ProvisionalAppended, ProvisionalList, ProvisionalQuery, ProvisionalWrap, ProvisionalWraps,
    SendCodeRequest,
};

use serde::{Deserialize, Serialize};

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    /// `ok`; `degraded` when this process's backup loop (`serve --backup-url`) lags (`backup`).
    /// The answer stays 200 either way: clients read their limits here, and a load balancer
    /// must not take the service down over a backup problem (`GET /healthz/backup` answers 503).
    pub status: String,
    /// Largest sealed blob accepted by `POST /v1/blobs`, in bytes (clients check before uploading).
    pub max_blob_bytes: u64,
    /// Largest JSON request body, in bytes.
    pub max_json_bytes: u64,
    /// The backup loop of this process, when it runs one (REVIEW5 U6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupHealth>,
}

/// The state of the `serve --backup-url` loop (`GET /healthz`, `GET /healthz/backup`;
/// docs/BACKUP.md §5, REVIEW5 U6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupHealth {
    /// `ok`: the loop found its target up to date within `max_lag_seconds`; `lagging`: not for
    /// longer (its increments fail, or one hangs); `off`: this process runs no backup loop.
    pub state: String,
    /// Seconds since the loop last found its target up to date (or started); 0 when off.
    pub lag_seconds: u64,
    /// The lag past which the state is `lagging`: three backup intervals, at least 120 s.
    pub max_lag_seconds: u64,
    /// Increments failed in a row (0 after one succeeds).
    pub consecutive_failures: u64,
}

/// The JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// One of `bad_request`, `invalid_base64`, `invalid_record`, `unauthorized`, `forbidden`,
    /// `device_revoked`, `not_shared`, `data_missing`, `not_found`, `method_not_allowed`, `conflict`,
    /// `payload_too_large`, `unsupported_media_type`, `digest_mismatch`, `pending_quota`,
    /// `internal`.
    pub code: String,
    /// Human-readable explanation; never contains secrets, paths or SQL.
    pub message: String,
}
