//! JSON request and response bodies (PROTOCOL.md §8). Binary fields are unpadded base64url; ids
//! are lowercase hex; times are seconds since the Unix epoch. Requests refuse unknown fields.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{AccessRow, VersionRow};

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthResponse {
    /// Always `ok`.
    pub(crate) status: &'static str,
    /// Largest sealed blob accepted by `POST /v1/blobs`, in bytes (clients check before uploading).
    pub(crate) max_blob_bytes: u64,
    /// Largest JSON request body, in bytes.
    pub(crate) max_json_bytes: u64,
}

/// `POST /v1/devices` (§8.1).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterDeviceRequest {
    /// The signed device record (§4), base64url.
    pub(crate) record: String,
}

/// A registered device.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegisterDeviceResponse {
    /// Device id, 64 hex.
    pub(crate) device_id: String,
    /// Identity id, 64 hex.
    pub(crate) identity_id: String,
    /// The handle the device is registered under.
    pub(crate) handle: String,
}

/// `GET /v1/directory/{handle}` (§8.1).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DirectoryResponse {
    /// The handle.
    pub(crate) handle: String,
    /// The device records of the identity owning the handle, base64url, oldest first.
    pub(crate) records: Vec<String>,
}

/// `POST /v1/auth/challenge` (§8.2).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChallengeRequest {
    /// Device id, 64 hex.
    pub(crate) device_id: String,
}

/// A login challenge.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChallengeResponse {
    /// 32 random bytes, base64url; single use.
    pub(crate) challenge: String,
    /// Seconds until the challenge expires (60).
    pub(crate) expires_in: u64,
}

/// `POST /v1/auth/token` (§8.2).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRequest {
    /// Device id, 64 hex.
    pub(crate) device_id: String,
    /// The challenge received, base64url.
    pub(crate) challenge: String,
    /// Ed25519 signature over `sig_input("auth", challenge || device_id)`, base64url (64 bytes).
    pub(crate) signature: String,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    /// 32 random bytes, base64url; send as `Authorization: Bearer <token>`.
    pub(crate) token: String,
    /// Seconds until the token expires.
    pub(crate) expires_in: u64,
}

/// `POST /v1/blobs` (§8.3).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlobResponse {
    /// SHA-256 of the blob, 64 hex.
    pub(crate) blob_id: String,
    /// Size in bytes.
    pub(crate) size: u64,
}

/// `POST /v1/documents` (§8.3).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommitRequest {
    /// Document id, 32 hex.
    pub(crate) doc_id: String,
    /// Version number, from 1, new for this document.
    pub(crate) doc_version: u32,
    /// The uploaded sealed blob, 64 hex. Exactly one of `blob_id` and `blob` is given.
    #[serde(default)]
    pub(crate) blob_id: Option<String>,
    /// The sealed document itself, base64url, at most 262 144 bytes once decoded: stored in the
    /// same transaction as the version (no `POST /v1/blobs` first).
    #[serde(default)]
    pub(crate) blob: Option<String>,
    /// Key wraps (§7), base64url, 1 to 1024, one per distinct recipient device.
    pub(crate) wraps: Vec<String>,
    /// The tree size the client has pinned: when given, the response carries `log`, with a
    /// consistency proof from this size (§11.7).
    #[serde(default)]
    pub(crate) log_from: Option<u64>,
}

/// The proofs of a commit's own log entries (§11.7), returned when the request gave `log_from`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommitProof {
    /// The checkpoint note signed in the commit's transaction (§11.4), without cosignatures.
    pub(crate) checkpoint: String,
    /// The wrap entries appended, in request order, each with its inclusion proof against
    /// `checkpoint` (RFC 9162 §2.1.3).
    pub(crate) entries: Vec<super::log::ProvenEntry>,
    /// The request's `log_from`.
    pub(crate) from: u64,
    /// Consistency proof from `from` to the checkpoint's size (RFC 9162 §2.1.4), base64url
    /// hashes; empty when `from` is 0 or the checkpoint's size.
    pub(crate) consistency: Vec<String>,
}

/// `POST /v1/documents/{doc_id}/versions/{v}/wraps` (§8.3).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddWrapsRequest {
    /// Key wraps (§7), base64url, for recipients that have none yet.
    pub(crate) wraps: Vec<String>,
}

/// Wraps added.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AddWrapsResponse {
    /// Document id, 32 hex.
    pub(crate) doc_id: String,
    /// Version number.
    pub(crate) doc_version: u32,
    /// How many wraps were stored.
    pub(crate) added: usize,
    /// The log indices of the wrap entries appended (PROTOCOL.md §11.3).
    pub(crate) log_indices: Vec<u64>,
}

/// One document version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionSummary {
    /// Document id, 32 hex.
    pub(crate) doc_id: String,
    /// Version number.
    pub(crate) doc_version: u32,
    /// Author device id, 64 hex.
    pub(crate) author_device: String,
    /// Author identity id, 64 hex.
    pub(crate) author_identity: String,
    /// Sealed blob id, 64 hex.
    pub(crate) blob_id: String,
    /// Sealed blob size in bytes.
    pub(crate) size: u64,
    /// Commit time, seconds since the Unix epoch.
    pub(crate) created_at: u64,
    /// On commit: the log indices of the wrap entries appended (PROTOCOL.md §11.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log_indices: Option<Vec<u64>>,
    /// On commit with `log_from`: the proofs of those entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log: Option<CommitProof>,
}

impl From<VersionRow> for VersionSummary {
    fn from(r: VersionRow) -> Self {
        VersionSummary {
            doc_id: r.doc_id,
            doc_version: r.doc_version,
            author_device: r.author_device,
            author_identity: r.author_identity,
            blob_id: r.blob_id,
            size: r.size,
            created_at: r.created_at,
            log_indices: None,
            log: None,
        }
    }
}

/// `GET /v1/documents`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocumentsResponse {
    /// Versions the caller authored (any device of its identity) or holds a wrap for.
    pub(crate) documents: Vec<VersionSummary>,
}

/// `GET /v1/documents/{doc_id}/versions/{v}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionResponse {
    /// Document id, 32 hex.
    pub(crate) doc_id: String,
    /// Version number.
    pub(crate) doc_version: u32,
    /// Author device id, 64 hex.
    pub(crate) author_device: String,
    /// Author identity id, 64 hex.
    pub(crate) author_identity: String,
    /// Sealed blob id, 64 hex.
    pub(crate) blob_id: String,
    /// Sealed blob size in bytes.
    pub(crate) size: u64,
    /// Commit time, seconds since the Unix epoch.
    pub(crate) created_at: u64,
    /// The caller's own key wrap, base64url; `null` for an author device that holds none.
    pub(crate) wrap: Option<String>,
    /// The wrap's log entry with its inclusion proof against the checkpoint of `log_size`
    /// (PROTOCOL.md §11.6).
    pub(crate) wrap_entry: Option<super::log::ProvenEntry>,
    /// The tree size `wrap_entry`'s proof is against.
    pub(crate) log_size: u64,
    /// The log index of the access entry this fetch appended.
    pub(crate) access_index: Option<u64>,
}

/// One recorded read.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccessEntry {
    /// Reader device id, 64 hex.
    pub(crate) device_id: String,
    /// Reader's handle.
    pub(crate) handle: String,
    /// `wrap` or `blob`.
    pub(crate) what: String,
    /// Time of the read, seconds since the Unix epoch.
    pub(crate) at: u64,
    /// The version read.
    pub(crate) doc_version: u32,
}

impl From<AccessRow> for AccessEntry {
    fn from(r: AccessRow) -> Self {
        AccessEntry {
            device_id: r.device_id,
            handle: r.handle,
            what: r.what,
            at: r.at,
            doc_version: r.doc_version,
        }
    }
}

/// `GET /v1/documents/{doc_id}/accesses`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccessesResponse {
    /// Document id, 32 hex.
    pub(crate) doc_id: String,
    /// Reads of any version, oldest first (the most recent 10 000).
    pub(crate) accesses: Vec<AccessEntry>,
}
