//! The rows of a restored server (`serment restore`, docs/BACKUP.md §7): derived by
//! [`crate::backup::restore`] from a verified backup, written by a backend's
//! [`super::RestoreStore::restore_rows`] in one transaction.
//!
//! Ids are lowercase hex as stored (see [`super`]); times are seconds since the Unix epoch.

use serment_core::log::tree::{Hash, NodeId};

use super::log_service::PendingEntry;

/// The `log_head.origin` of a database a restore is writing: no log key is named so, so
/// `serve` (its startup check of the origin) refuses to start on it until the restore's one
/// transaction replaces it with the log's origin.
pub(crate) const RESTORING_ORIGIN: &str = "serment-restore-in-progress";

/// One device row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DevicePlan {
    pub(crate) device_id: String,
    pub(crate) identity_id: String,
    pub(crate) handle: String,
    pub(crate) record: Vec<u8>,
    pub(crate) created_at: u64,
    pub(crate) revoked: bool,
}

/// One document version row (its blob is in the blob store, never inline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionPlan {
    pub(crate) doc_id: String,
    pub(crate) doc_version: u32,
    pub(crate) author_device: String,
    pub(crate) author_identity: String,
    pub(crate) blob_id: String,
    pub(crate) size: u64,
    pub(crate) created_at: u64,
}

/// One device wrap row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WrapPlan {
    pub(crate) doc_id: String,
    pub(crate) doc_version: u32,
    pub(crate) recipient: String,
    pub(crate) sharer: String,
    pub(crate) wrap: Vec<u8>,
    pub(crate) log_idx: u64,
}

/// One team wrap row (PROTOCOL.md §12.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TeamWrapPlan {
    pub(crate) doc_id: String,
    pub(crate) doc_version: u32,
    pub(crate) epoch_id: String,
    pub(crate) team: String,
    pub(crate) sharer: String,
    pub(crate) wrap: Vec<u8>,
    pub(crate) log_idx: u64,
}

/// One access row and its receipt nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessPlan {
    pub(crate) doc_id: String,
    pub(crate) doc_version: u32,
    pub(crate) device_id: String,
    /// `wrap` or `blob`.
    pub(crate) what: &'static str,
    pub(crate) at: u64,
    /// Hex, for `access_nonces`.
    pub(crate) nonce: String,
}

/// One provisional recipient (review S3): its backed-up server-only fields, and what its
/// verified kind-10 record and claim entry say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProvisionalPlan {
    pub(crate) object: crate::backup::side::ProvisionalObject,
    pub(crate) lab_identity: String,
    pub(crate) lab_device: String,
    /// Hex, as stored.
    pub(crate) contact_tag: String,
    pub(crate) created_at: u64,
    pub(crate) record_index: u64,
    pub(crate) claimed_identity: Option<String>,
}

/// One team: its current epoch, head and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TeamPlan {
    pub(crate) name: String,
    pub(crate) epoch: u32,
    pub(crate) epoch_id: String,
    pub(crate) head_idx: u64,
    /// (handle, admin).
    pub(crate) members: Vec<(String, bool)>,
}

/// One checkpoint: the note as the log signs it, and the witnesses' cosignature lines
/// (witness name, key id, line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointPlan {
    pub(crate) size: u64,
    pub(crate) note: String,
    pub(crate) cosignatures: Vec<(String, u32, String)>,
}

/// Every row a restored server needs; nothing else (sessions, challenges, nonces of signed
/// requests, pairing slots and pending uploads start empty).
#[derive(Debug, Default)]
pub(crate) struct RestorePlan {
    /// The log's entries `0..size`.
    pub(crate) entries: Vec<PendingEntry>,
    /// Every complete-subtree hash of the tree of `size` entries.
    pub(crate) nodes: Vec<(NodeId, Hash)>,
    /// The tree size.
    pub(crate) size: u64,
    /// Its root, which the newest checkpoint signs.
    pub(crate) root: Hash,
    /// The checkpoints, oldest first; the last is of `size`.
    pub(crate) checkpoints: Vec<CheckpointPlan>,
    pub(crate) devices: Vec<DevicePlan>,
    /// (handle, identity id).
    pub(crate) handles: Vec<(String, String)>,
    pub(crate) versions: Vec<VersionPlan>,
    pub(crate) wraps: Vec<WrapPlan>,
    pub(crate) accesses: Vec<AccessPlan>,
    pub(crate) teams: Vec<TeamPlan>,
    /// (team, epoch, recipient device, wrap).
    pub(crate) team_key_wraps: Vec<(String, u32, String, Vec<u8>)>,
    pub(crate) team_wraps: Vec<TeamWrapPlan>,
    /// Provisional recipients whose row the backup holds (review S3).
    pub(crate) provisionals: Vec<ProvisionalPlan>,
    /// Wraps to those provisional recipients (`recipient` is the provisional id).
    pub(crate) provisional_wraps: Vec<WrapPlan>,
    /// Recovery escrows still valid in the restored log (review S3).
    pub(crate) escrows: Vec<crate::backup::side::EscrowObject>,
    /// Social recovery sets the restored log backs, with the share wraps it backs (review T11).
    pub(crate) social: Vec<crate::backup::side::SocialObject>,
    /// Social recovery requests, derived from the log (kinds 14 and 16).
    pub(crate) social_requests: Vec<SocialRequestPlan>,
    /// The loss statements to serve (PROTOCOL.md §11.11), oldest first: (restored size, the
    /// signed text). The restore's own is the last.
    pub(crate) loss_statements: Vec<(u64, String)>,
    /// The verified bytes of small blobs, by blob id (hex), stored inline in their `blobs`
    /// row as the server stores them (at most [`crate::store::MAX_INLINE_BLOB`] bytes each);
    /// the other blobs are files of the blob store.
    pub(crate) inline: std::collections::HashMap<String, axum::body::Bytes>,
}

/// A `social_requests` row, from a kind-14 entry and the kind-16 vetoes of it (review T11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocialRequestPlan {
    /// Hex.
    pub(crate) request_id: String,
    pub(crate) handle: String,
    /// Hex.
    pub(crate) contacts_hash: String,
    pub(crate) new_device: String,
    pub(crate) logged_at: u64,
    pub(crate) vetoed: bool,
}
