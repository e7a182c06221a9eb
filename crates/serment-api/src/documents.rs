//! Sealed blobs, document versions, key wraps and accesses (PROTOCOL.md §8.3).

use serde::{Deserialize, Serialize};

use crate::log::ProvenEntry;

/// `POST /v1/blobs` (§8.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlobResponse {
    /// SHA-256 of the blob, 64 hex.
    pub blob_id: String,
    /// Size in bytes.
    pub size: u64,
}

/// `POST /v1/documents` (§8.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// Document id, 32 hex.
    pub doc_id: String,
    /// Version number, from 1, new for this document.
    pub doc_version: u32,
    /// The uploaded sealed blob, 64 hex. Exactly one of `blob_id` and `blob` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_id: Option<String>,
    /// The sealed document itself, base64url, at most 262 144 bytes once decoded: stored in the
    /// same transaction as the version (no `POST /v1/blobs` first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Key wraps (§7), base64url, 1 to 1024, one per distinct recipient device.
    pub wraps: Vec<String>,
    /// The tree size the client has pinned: when given, the response carries `log`, with a
    /// consistency proof from this size (§11.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_from: Option<u64>,
}

/// The proofs of a commit's own log entries (§11.7), returned when the request gave `log_from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitProof {
    /// The checkpoint note signed in the commit's transaction (§11.4), without cosignatures.
    pub checkpoint: String,
    /// The wrap entries appended, in request order, each with its inclusion proof against
    /// `checkpoint` (RFC 9162 §2.1.3).
    pub entries: Vec<ProvenEntry>,
    /// The request's `log_from`.
    pub from: u64,
    /// Consistency proof from `from` to the checkpoint's size (RFC 9162 §2.1.4), base64url
    /// hashes; empty when `from` is 0 or the checkpoint's size.
    pub consistency: Vec<String>,
}

/// `POST /v1/documents/{doc_id}/versions/{v}/wraps` (§8.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddWrapsRequest {
    /// Key wraps (§7), base64url, for recipients that have none yet.
    pub wraps: Vec<String>,
}

/// Wraps added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddWrapsResponse {
    /// Document id, 32 hex.
    pub doc_id: String,
    /// Version number.
    pub doc_version: u32,
    /// How many wraps were stored.
    pub added: usize,
    /// The log indices of the wrap entries appended (PROTOCOL.md §11.3).
    pub log_indices: Vec<u64>,
}

/// One document version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionSummary {
    /// Document id, 32 hex.
    pub doc_id: String,
    /// Version number.
    pub doc_version: u32,
    /// Author device id, 64 hex.
    pub author_device: String,
    /// Author identity id, 64 hex.
    pub author_identity: String,
    /// Sealed blob id, 64 hex.
    pub blob_id: String,
    /// Sealed blob size in bytes.
    pub size: u64,
    /// Commit time, seconds since the Unix epoch.
    pub created_at: u64,
    /// On commit: the log indices of the wrap entries appended (PROTOCOL.md §11.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_indices: Option<Vec<u64>>,
    /// On commit with `log_from`: the proofs of those entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<CommitProof>,
}

/// `GET /v1/documents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentsResponse {
    /// Versions the caller authored (any device of its identity) or holds a wrap for.
    pub documents: Vec<VersionSummary>,
}

/// `GET /v1/documents/{doc_id}/versions/{v}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionResponse {
    /// Document id, 32 hex.
    pub doc_id: String,
    /// Version number.
    pub doc_version: u32,
    /// Author device id, 64 hex.
    pub author_device: String,
    /// Author identity id, 64 hex.
    pub author_identity: String,
    /// Sealed blob id, 64 hex.
    pub blob_id: String,
    /// Sealed blob size in bytes.
    pub size: u64,
    /// Commit time, seconds since the Unix epoch.
    pub created_at: u64,
    /// The caller's own key wrap, base64url; `null` for an author device that holds none.
    pub wrap: Option<String>,
    /// The wrap's log entry with its inclusion proof against the checkpoint of `log_size`
    /// (PROTOCOL.md §11.6).
    pub wrap_entry: Option<ProvenEntry>,
    /// The tree size `wrap_entry`'s proof is against.
    pub log_size: u64,
    /// The log index of the access entry this fetch appended.
    pub access_index: Option<u64>,
}

/// One recorded read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessEntry {
    /// Reader device id, 64 hex.
    pub device_id: String,
    /// Reader's handle.
    pub handle: String,
    /// `wrap` or `blob`.
    pub what: String,
    /// Time of the read, seconds since the Unix epoch.
    pub at: u64,
    /// The version read.
    pub doc_version: u32,
}

/// `GET /v1/documents/{doc_id}/accesses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessesResponse {
    /// Document id, 32 hex.
    pub doc_id: String,
    /// Reads of any version, oldest first (the most recent 10 000).
    pub accesses: Vec<AccessEntry>,
}
