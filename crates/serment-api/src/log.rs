//! The transparency-log routes (PROTOCOL.md §11.9): the log key, checkpoints, proofs, entries,
//! histories with proofs, witness cosignatures, and the writes that exist only for the log.

use serde::{Deserialize, Serialize};

/// The request header carrying an access receipt (§11.5):
/// `base64url(at u64 || nonce [16] || sig [64])`.
pub const RECEIPT_HEADER: &str = "serment-receipt";

/// `GET /v1/log/key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogKeyResponse {
    /// The log's origin (first checkpoint line and key name).
    pub origin: String,
    /// The C2SP verifier key, `<origin>+<key id>+<base64(0x01 || Ed25519 key)>`.
    pub vkey: String,
}

/// `GET /v1/log/checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointResponse {
    /// The signed note: checkpoint text, blank line, log signature, then cosignatures.
    pub checkpoint: String,
}

/// `GET /v1/log/loss-statements` (PROTOCOL.md §11.11): what restores from a backup said they
/// could not bring back, oldest first; empty for a log never restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LossStatementsResponse {
    /// Each statement's exact text, signed by the log key (the label `loss-statement`).
    pub statements: Vec<String>,
}

/// One entry with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvenEntry {
    /// Index in the log.
    pub index: u64,
    /// The entry (§11.3), base64url.
    pub entry: String,
    /// Inclusion proof against the checkpoint of `size`, leaf to root, base64url hashes.
    pub proof: Vec<String>,
}

/// A subject's chain with proofs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryResponse {
    /// Tree size the proofs are against.
    pub size: u64,
    /// The checkpoint note of that size.
    pub checkpoint: String,
    /// The chain, oldest first.
    pub entries: Vec<ProvenEntry>,
    /// For a document: the device-record entry of every device its entries name.
    pub devices: Vec<ProvenEntry>,
}

/// Query of the proof-carrying routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SizeQuery {
    /// The tree size to prove against (a published checkpoint); default the latest.
    pub size: Option<u64>,
}

/// `GET /v1/log/proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// Leaf index.
    pub index: u64,
    /// Tree size.
    pub size: u64,
}

/// `GET /v1/log/consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// Old tree size.
    pub from: u64,
    /// New tree size.
    pub to: u64,
}

/// A consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyResponse {
    /// Old size.
    pub from: u64,
    /// New size.
    pub to: u64,
    /// RFC 9162 §2.1.4 proof, base64url hashes.
    pub proof: Vec<String>,
}

/// `GET /v1/log/entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// First index.
    pub start: u64,
    /// One past the last index (at most 1000 entries).
    pub end: u64,
}

/// Entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntriesResponse {
    /// First index.
    pub start: u64,
    /// The entries, base64url.
    pub entries: Vec<String>,
}

/// `POST /v1/log/cosignatures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CosignatureRequest {
    /// The witness's verifier key (type 0x04).
    pub vkey: String,
    /// The cosigned checkpoint's size.
    pub size: u64,
    /// The cosignature line, `— <name> <base64>`.
    pub cosignature: String,
}

/// `POST /v1/log/revocations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// The signed revocation (§11.3), base64url.
    pub revocation: String,
}

/// `POST /v1/log/rotations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotationRequest {
    /// The signed rotation (§11.3), base64url.
    pub rotation: String,
    /// Device records certified by the new identity key, base64url (devices to keep).
    pub records: Vec<String>,
}

/// `POST /v1/documents/{doc_id}/versions/{v}/removals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RemovalRequest {
    /// The author's signed removal (§11.3), base64url.
    pub removal: String,
}

/// `POST /v1/documents/{doc_id}/erase` (PROTOCOL.md §11.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// The requester device's signed tombstone (log entry kind 9 payload), base64url.
    pub erasure: String,
}

/// Indices of appended entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppendedResponse {
    /// Log indices of the entries appended, in order.
    pub log_indices: Vec<u64>,
}
