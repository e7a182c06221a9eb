//! The storage seam (issue 11 §1): what the HTTP layer, the garbage collector and the log
//! service ask of a metadata backend, one trait per use case. A backend (SQLite, PostgreSQL)
//! implements all of them; [`super::Store`] holds it as `Arc<dyn MetaStore>`, so nothing above
//! this module names a backend (the vaultwarden `src/db` habit, Tessera's driver interface).
//!
//! Every method is one transaction: it either happens whole or not at all. Errors are
//! [`StoreError`]s: `Conflict` (the write contradicts stored state), `Forbidden`,
//! `UnknownDevice`, `TooManyWraps`, or `Backend` (details logged, never sent to clients).
//! Times are seconds since the Unix epoch. Ids are typed (serment-core's [`KeyId`] for devices
//! and identities, [`DocId`], [`BlobId`]); the SQL layer stores them as lowercase hex.

use serment_core::log::entry::Subject;
use serment_core::log::note::NoteSigner;
use serment_core::log::tree::Hash;
use serment_core::{DocId, KeyId};

use super::log_service::NewTeamChange;
use super::{
    AccessRow, BlobId, CommitJob, DeviceRow, ErasedDocument, JobCommit, LogRead, NewAccess,
    NewDevice, NewErasure, NewWrap, PairingRow, Registered, RotatedDevice, StoreError, VersionRead,
    VersionRow,
};

/// The directory (PROTOCOL.md §8.1), login (§8.2) and identity changes that the log records
/// (§11.3).
#[async_trait::async_trait]
pub(crate) trait DirectoryStore: Send + Sync {
    /// Registers a device and appends its record to the log. The handle is bound to the first
    /// identity that registers it; the same record registered twice is
    /// [`Registered::Unchanged`]; the hybrid upgrade of an existing device's record (PROTOCOL.md
    /// §4: only the X-Wing key added) replaces it and is logged as [`Registered::Created`]; any
    /// other record for an existing device id, a revoked device, or a handle bound to another
    /// identity is [`StoreError::Conflict`].
    async fn register_device(&self, d: &NewDevice<'_>) -> Result<Registered, StoreError>;

    /// The records of the current devices registered under `handle` by the identity that owns
    /// it, oldest first; `None` if the handle is not bound.
    async fn directory(&self, handle: &str) -> Result<Option<Vec<Vec<u8>>>, StoreError>;

    /// Whether `device_id` was registered and then revoked (PROTOCOL.md §11.3).
    async fn device_revoked(&self, device_id: &KeyId) -> Result<bool, StoreError>;

    /// A registered, unrevoked device.
    async fn device(&self, device_id: &KeyId) -> Result<Option<DeviceRow>, StoreError>;

    /// Stores a login challenge hash; drops expired challenges and keeps at most
    /// [`super::MAX_CHALLENGES_PER_DEVICE`] per device and [`super::MAX_CHALLENGES`] in all (the
    /// ones closest to expiry are dropped first). Shared by every instance on the database.
    async fn insert_challenge(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        self.insert_challenge_capped(
            challenge_hash,
            device_id,
            expires_at,
            now,
            super::MAX_CHALLENGES,
        )
        .await
    }

    /// [`Self::insert_challenge`] with the table's cap as a parameter (tests use a small one).
    async fn insert_challenge_capped(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
        max_total: i64,
    ) -> Result<(), StoreError>;

    /// Consumes a challenge (single use, across instances): true if it existed for this device
    /// and had not expired at `now`.
    async fn take_challenge(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        now: u64,
    ) -> Result<bool, StoreError>;

    /// Stores a session (token hash), dropping expired sessions.
    async fn create_session(
        &self,
        token_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError>;

    /// The device of an unexpired session.
    async fn session_device(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<DeviceRow>, StoreError>;

    /// Revokes `device_id` of `identity_id` under `handle`: the device leaves the directory, its
    /// sessions end, and the signed revocation is appended. Returns the entry's index.
    /// [`StoreError::Conflict`] if it is not a current device of that identity and handle.
    async fn revoke_device(
        &self,
        handle: &str,
        identity_id: &KeyId,
        device_id: &KeyId,
        revocation: &[u8],
        now: u64,
    ) -> Result<u64, StoreError>;

    /// Rotates the identity of `handle` from `old_identity` to `new_identity`: the handle is
    /// rebound, the devices in `keep` are re-certified, every other device of the old identity
    /// is revoked, and the documents it authored follow the new identity. The rotation and the
    /// new records are appended; returns their indices. [`StoreError::Conflict`] if the handle
    /// is not bound to `old_identity` or a kept device is not one of its current devices.
    async fn rotate_identity(
        &self,
        handle: &str,
        old_identity: &KeyId,
        new_identity: &KeyId,
        rotation: &[u8],
        keep: &[RotatedDevice],
        now: u64,
    ) -> Result<Vec<u64>, StoreError>;
}

/// Blob rows, document versions, wraps and accesses (PROTOCOL.md §7, §8.3).
#[async_trait::async_trait]
pub(crate) trait DocumentStore: Send + Sync {
    /// Records an uploaded blob, pending until a commit references it, **before** its bytes
    /// are made visible. A blob already recorded keeps its row: committed bytes stay committed,
    /// a pending blob stays charged to its first uploader but its age restarts at `now` (so the
    /// collector cannot delete the bytes this upload is about to find in place).
    /// [`StoreError::Conflict`] if the blob is being deleted by the collector
    /// ([`Self::mark_blob_deleting`]): retry once the row is gone.
    async fn record_blob(
        &self,
        blob_id: &BlobId,
        size: u64,
        now: u64,
        uploader: &KeyId,
    ) -> Result<(), StoreError>;

    /// The uploads of `device` that no commit references yet: their number and total size in
    /// bytes (issue 10 §2).
    async fn pending_uploads(&self, device: &KeyId) -> Result<(u64, u64), StoreError>;

    /// Up to `limit` pending uploads stored before `before`, oldest first, and the blobs marked
    /// as being deleted (a collection interrupted by a crash is resumed).
    async fn stale_pending_blobs(&self, before: u64, limit: u32)
    -> Result<Vec<BlobId>, StoreError>;

    /// Marks a pending upload stored before `before` as being deleted (its tombstone), if no
    /// commit references it; a blob already marked stays marked. Returns whether it is marked
    /// now: then the caller deletes the bytes, then calls [`Self::forget_deleted_blob`]. From
    /// the mark on, [`Self::record_blob`] of the same bytes is a [`StoreError::Conflict`] (the
    /// upload waits for the row to go) and a commit referencing the blob is refused, so no
    /// instance deletes bytes another one has just referenced (issue 11 §4).
    async fn mark_blob_deleting(&self, blob_id: &BlobId, before: u64) -> Result<bool, StoreError>;

    /// Deletes the row of a blob marked by [`Self::mark_blob_deleting`] (after its bytes were
    /// deleted). Returns whether a row was deleted.
    async fn forget_deleted_blob(&self, blob_id: &BlobId) -> Result<bool, StoreError>;

    /// The recorded size of a blob in bytes.
    async fn blob_size(&self, blob_id: &BlobId) -> Result<Option<u64>, StoreError>;

    /// The bytes of a blob committed inline (§8.3); `None` if the blob is unknown or lives in
    /// the blob store.
    async fn blob_inline(&self, blob_id: &BlobId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Commits a version and its wraps (with its blob when inline), appending one wrap entry
    /// per recipient, batched with the commits waiting at the same moment. A retry of a commit
    /// already stored exactly as sent is answered with the stored entries (idempotent, across
    /// instances: the check reads the database).
    ///
    /// # Errors
    /// [`StoreError::Forbidden`] if the document belongs to another identity,
    /// [`StoreError::Conflict`] if the version exists with other contents,
    /// [`StoreError::UnknownDevice`] if a recipient is not registered, [`StoreError::Backend`].
    async fn commit_version(&self, job: CommitJob) -> Result<JobCommit, StoreError>;

    /// Adds wraps to an existing version (at most [`super::MAX_WRAPS`] per version, else
    /// [`StoreError::TooManyWraps`]); returns their log indices. A suite-3 (X-Wing) wrap for a
    /// recipient holding a suite-1 wrap of the version deletes that wrap in the same transaction
    /// (`serment rewrap --pq`, PROTOCOL.md §7.2).
    async fn add_wraps(
        &self,
        doc: &DocId,
        doc_version: u32,
        wraps: &[NewWrap],
        now: u64,
    ) -> Result<Vec<u64>, StoreError>;

    /// One version.
    async fn version(
        &self,
        doc_id: &DocId,
        doc_version: u32,
    ) -> Result<Option<VersionRow>, StoreError>;

    /// A version and the wrap `device_id` reads it with (its own, else the newest wrap to a care
    /// team whose current members include the handle of the unrevoked device, PROTOCOL.md
    /// §12.5), with that wrap's log entry: the read path's one query (issue 14 §2). `None` if
    /// the version does not exist.
    async fn version_for_reader(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        device_id: &KeyId,
    ) -> Result<Option<VersionRead>, StoreError>;

    /// The versions a device may read: authored by its identity, holding a wrap for it, or
    /// shared with a care team its handle is a member of (a team wrap, PROTOCOL.md §12.3).
    async fn readable_versions(
        &self,
        device_id: &KeyId,
        identity_id: &KeyId,
    ) -> Result<Vec<VersionRow>, StoreError>;

    /// The wrap held by `device_id` for a version.
    async fn wrap_for(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        device_id: &KeyId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .wrap_with_index(doc_id, doc_version, device_id)
            .await?
            .map(|(w, _)| w))
    }

    /// The wrap held by `device_id` for a version, with the log index of its entry.
    async fn wrap_with_index(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        device_id: &KeyId,
    ) -> Result<Option<(Vec<u8>, Option<u64>)>, StoreError>;

    /// Whether the device (or its identity, as author) takes part in any version of `doc_id`;
    /// `None` if the document does not exist.
    async fn is_participant(
        &self,
        doc_id: &DocId,
        device_id: &KeyId,
        identity_id: &KeyId,
    ) -> Result<Option<bool>, StoreError>;

    /// Records one read and appends its access entry (signed by the log key, carrying the
    /// reader's receipt if any, §11.5). Returns the entry's index. A receipt nonce used before
    /// is a [`StoreError::Conflict`].
    async fn record_access(&self, a: &NewAccess) -> Result<u64, StoreError>;

    /// The access rows of a document, oldest first (at most [`super::MAX_ACCESS_ROWS`], the
    /// most recent).
    async fn accesses(&self, doc_id: &DocId) -> Result<Vec<AccessRow>, StoreError>;

    /// Removes `recipient`'s wrap of a version and appends the author's signed removal. Returns
    /// the entry's index; [`StoreError::Conflict`] if the device holds no such wrap.
    async fn remove_recipient(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        recipient: &KeyId,
        removal: &[u8],
        now: u64,
    ) -> Result<u64, StoreError>;
}

/// Erasure (PROTOCOL.md §11.3.2, issue 12 §5): the tombstone is the document's kind-9 log entry.
#[async_trait::async_trait]
pub(crate) trait ErasureStore: Send + Sync {
    /// The tombstone entry of `doc_id`, if it was erased.
    async fn erasure(&self, doc_id: &DocId) -> Result<Option<LogRead>, StoreError>;

    /// Whether the device may still read an erased document's log: a device of the identity
    /// that erased it (the author's), or a device a wrap entry of its chain names as recipient.
    async fn erased_participant(
        &self,
        doc_id: &DocId,
        device_id: &KeyId,
        identity_id: &KeyId,
    ) -> Result<bool, StoreError>;

    /// Erases every version of a document in one transaction holding the log lock: deletes its
    /// accesses rows, wraps, team wraps and versions, deletes inline blobs and marks stored
    /// blobs as being deleted (another document holding the same bytes keeps them), and
    /// appends the tombstone (kind 9, `device_id` the requester). The caller then deletes the
    /// marked blobs' bytes (the collector does if it crashes first).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for a document with no version, [`StoreError::Erased`] if it
    /// already was, [`StoreError::Forbidden`] if the requester's identity is not the author's.
    async fn erase_document(&self, e: &NewErasure<'_>) -> Result<ErasedDocument, StoreError>;
}

/// Reads of the transparency log (PROTOCOL.md §11) and witness cosignatures (§11.8).
#[async_trait::async_trait]
pub(crate) trait LogStore: Send + Sync {
    /// The log's checkpoint key (§11.4).
    fn log_signer(&self) -> &NoteSigner;

    /// The number of entries.
    async fn log_size(&self) -> Result<u64, StoreError>;

    /// The checkpoint note of `size` (default: the latest), with its cosignature lines.
    async fn log_note(&self, size: Option<u64>) -> Result<Option<String>, StoreError>;

    /// The number of cosignature lines stored for the checkpoint of `size`.
    async fn log_cosignature_count(&self, size: u64) -> Result<u64, StoreError>;

    /// Stores a witness's cosignature line for the checkpoint of `size`, keyed by witness name
    /// and key id; a line already stored for that pair is kept (never overwritten).
    async fn log_add_cosignature(
        &self,
        size: u64,
        witness: &str,
        key_id: u32,
        line: &str,
    ) -> Result<(), StoreError>;

    /// The inclusion proof of `index` in the tree of `size` entries (RFC 9162 §2.1.3).
    async fn log_inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError>;

    /// The consistency proof from `old` to `new` entries (RFC 9162 §2.1.4).
    async fn log_consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError>;

    /// Entries `[start, end)`.
    async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Every entry of a subject below `size`, oldest first.
    async fn log_subject(&self, subject: &Subject, size: u64) -> Result<Vec<LogRead>, StoreError>;

    /// The newest device-record entry of `device_id` below `size`.
    async fn log_device_record(
        &self,
        device_id: &KeyId,
        size: u64,
    ) -> Result<Option<LogRead>, StoreError>;

    /// One entry.
    async fn log_entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// The newest 64 loss statements restores wrote (PROTOCOL.md §11.11), oldest first, each
    /// its signed text: empty for a log never restored.
    async fn log_loss_statements(&self) -> Result<Vec<String>, StoreError>;

    /// Logs the patient's page's bundle (PROTOCOL.md §11.3, kind 8) unless the newest bundle
    /// entry already carries `bundle_hash`: under the log lock, so that instances starting
    /// together and restarts append it once. Returns the index of the entry carrying it and
    /// whether it was appended now.
    async fn log_web_bundle(
        &self,
        bundle_hash: &[u8; 32],
        server_version: &str,
        now: u64,
    ) -> Result<(u64, bool), StoreError>;
}

/// What the shared nonce table says of a signed request's `(keyid, nonce)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceUse {
    /// Never seen: now remembered.
    Fresh,
    /// Already accepted inside the window (by any instance): a replay.
    Replayed,
    /// `created` is not above the floor the table raised when it was full.
    BelowFloor,
}

/// The state every instance behind a load balancer must share (issue 11 §4): request-signing
/// nonces (PROTOCOL.md §8.2) and the login throttle's token buckets (issue 10 §3). Each method is
/// one atomic statement or a short sequence whose order keeps the guarantee without a
/// transaction, so neither takes the log lock.
#[async_trait::async_trait]
pub(crate) trait GuardStore: Send + Sync {
    /// Remembers `(key_id, nonce)` of a signed request created at `created` (seconds; the caller
    /// already checked it is within the skew window of `now`), in one atomic insert whose
    /// unique key is the pair: a pair already stored with a `created` at or after
    /// `now - window_secs` is [`NonceUse::Replayed`] (an older row has expired and is reused);
    /// `created` at or below the floor is [`NonceUse::BelowFloor`].
    async fn use_nonce(
        &self,
        key_id: &KeyId,
        nonce: &str,
        created: u64,
        now: u64,
        window_secs: u64,
    ) -> Result<NonceUse, StoreError>;

    /// Drops the nonces created before `now - window_secs`; then, if more than `max_rows`
    /// remain, raises the floor to the `created` of the newest row beyond the `max_rows` newest
    /// and drops every row at or below it (their replays are then refused by the floor).
    /// Returns the number of rows dropped.
    async fn prune_nonces(
        &self,
        now: u64,
        window_secs: u64,
        max_rows: u64,
    ) -> Result<u64, StoreError>;

    /// Takes one token from the bucket `bucket` of `key` (capacity `per_minute`, refilled at
    /// `per_minute / 60` tokens a second, as of `now_ms`, milliseconds since the epoch). With
    /// `only_if_whole`, takes it only if a whole token is there and returns whether it did (one
    /// atomic conditional upsert: across instances, never more than the budget); without, the
    /// bucket goes down to zero at least and the result is `true`.
    async fn take_token(
        &self,
        bucket: &str,
        key: &str,
        per_minute: u32,
        now_ms: u64,
        only_if_whole: bool,
    ) -> Result<bool, StoreError>;

    /// The tokens in the bucket `bucket` of `key` at `now_ms` (a full bucket if none is stored).
    async fn token_level(
        &self,
        bucket: &str,
        key: &str,
        per_minute: u32,
        now_ms: u64,
    ) -> Result<f64, StoreError>;

    /// Drops the buckets of `bucket` that have refilled by `now_ms` (they hold nothing worth
    /// keeping). Returns how many.
    async fn prune_buckets(
        &self,
        bucket: &str,
        per_minute: u32,
        now_ms: u64,
    ) -> Result<u64, StoreError>;
}

/// The device-pairing relay (PROTOCOL.md §4.1, issue 16): one slot per pairing, holding three
/// opaque messages; single use, expiring.
#[async_trait::async_trait]
pub(crate) trait PairingStore: Send + Sync {
    /// Opens `slot` for `owner_device` with its hello, dropping expired slots first. False if a
    /// live slot of that name exists (the client draws another code).
    async fn open_pairing(
        &self,
        slot: &str,
        owner_device: &KeyId,
        hello: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, StoreError>;

    /// A live (unexpired) slot.
    async fn pairing(&self, slot: &str, now: u64) -> Result<Option<PairingRow>, StoreError>;

    /// Stores the join message of a live slot that has none: false otherwise (single use: a
    /// second join, even a replay of the first, is refused).
    async fn join_pairing(&self, slot: &str, join: &[u8], now: u64) -> Result<bool, StoreError>;

    /// Stores the finish message (`None`: the owner aborted the pairing) of a live slot owned by
    /// `owner_device` that has neither: false otherwise.
    async fn finish_pairing(
        &self,
        slot: &str,
        owner_device: &KeyId,
        finish: Option<&[u8]>,
        now: u64,
    ) -> Result<bool, StoreError>;
}

/// `serment restore` (docs/BACKUP.md §7): writes the rows derived from a verified backup.
#[async_trait::async_trait]
pub(crate) trait RestoreStore: Send + Sync {
    /// True if no log entry, device, document, blob or team is stored (a restore writes only
    /// into an empty database).
    async fn restore_target_empty(&self) -> Result<bool, StoreError>;

    /// Sets the log's origin to [`super::restore::RESTORING_ORIGIN`], so that `serve` refuses
    /// this database until [`Self::restore_rows`] commits.
    async fn restore_mark(&self) -> Result<(), StoreError>;

    /// Writes every row of `plan` and the log's origin in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the database is not marked by [`Self::restore_mark`];
    /// [`StoreError::Backend`] (a row already present included: nothing is written then).
    async fn restore_rows(&self, plan: &super::restore::RestorePlan) -> Result<(), StoreError>;

    /// Every provisional recipient's server-only fields, for the backup (review S3): what the
    /// log does not hold (docs/BACKUP.md §1).
    async fn backup_provisionals(
        &self,
    ) -> Result<Vec<crate::backup::side::ProvisionalObject>, StoreError>;

    /// Every recovery escrow row, for the backup (review S3).
    async fn backup_escrows(&self) -> Result<Vec<crate::backup::side::EscrowObject>, StoreError>;

    /// Every handle's social recovery set (escrow row and share wraps), for the backup
    /// (review T11).
    async fn backup_social(&self) -> Result<Vec<crate::backup::side::SocialObject>, StoreError>;
}

/// Recovery escrows and recovery entries (PROTOCOL.md §4.2, issue 17 §2).
#[async_trait::async_trait]
pub(crate) trait RecoveryStore: Send + Sync {
    /// Stores (or replaces) the escrow of `handle`, naming `recovery_device`, which must be a
    /// current device of `identity_id` under `handle`: [`StoreError::Conflict`] otherwise.
    async fn put_escrow(
        &self,
        handle: &str,
        identity_id: &KeyId,
        recovery_device: &KeyId,
        escrow: &[u8],
        now: u64,
    ) -> Result<(), StoreError>;

    /// The escrow of `handle` and the recovery device it names, if any.
    async fn escrow(&self, handle: &str) -> Result<Option<(KeyId, Vec<u8>)>, StoreError>;

    /// Appends a recovery entry (kind 12) about `handle`, whose current identity must be
    /// `identity_id` and whose `new_device` must be a current device of it
    /// ([`StoreError::Conflict`] otherwise), and deletes the escrow naming `recovery_device`
    /// (burnt). Returns the entry's index.
    async fn append_recovery(
        &self,
        handle: &str,
        identity_id: &KeyId,
        recovery_device: &KeyId,
        new_device: &KeyId,
        entry: &[u8],
        now: u64,
    ) -> Result<u64, StoreError>;
}

/// A handle's recovery contacts as the server keeps them (PROTOCOL.md §4.3).
#[derive(Debug, Clone)]
pub(crate) struct SocialRow {
    /// `serment_core::social::contacts_hash` of the current contacts entry, hex.
    pub(crate) contacts_hash: String,
    /// K.
    pub(crate) threshold: u32,
    /// Seconds.
    pub(crate) waiting_period: u64,
    /// The social escrow.
    pub(crate) escrow: Vec<u8>,
}

/// A recovery request as the server keeps it.
#[derive(Debug, Clone)]
pub(crate) struct SocialRequestRow {
    /// The handle it recovers.
    pub(crate) handle: String,
    /// The contacts entry it relies on (hex hash).
    pub(crate) contacts_hash: String,
    /// The requesting device (hex id).
    pub(crate) new_device: String,
    /// Server time of its append.
    pub(crate) logged_at: u64,
    /// Whether a veto was logged.
    pub(crate) vetoed: bool,
    /// Distinct contacts that approved it.
    pub(crate) approvals: u32,
}

/// A contacts entry to log with its escrow and share wraps.
#[derive(Debug)]
pub(crate) struct NewSocial<'a> {
    /// The handle.
    pub(crate) handle: &'a str,
    /// Its identity (the entry's signer).
    pub(crate) identity_id: &'a KeyId,
    /// The social recovery device: a current device of the identity under the handle.
    pub(crate) recovery_device: &'a KeyId,
    /// Hex hash of the entry.
    pub(crate) contacts_hash: &'a str,
    /// K.
    pub(crate) threshold: u8,
    /// Seconds.
    pub(crate) waiting_period: u64,
    /// The escrow.
    pub(crate) escrow: &'a [u8],
    /// The entry payload (kind 13).
    pub(crate) entry: &'a [u8],
    /// `(recipient device hex, sharer device hex, contact handle, wrap)`.
    pub(crate) shares: Vec<(String, String, String, Vec<u8>)>,
    /// Server time.
    pub(crate) now: u64,
}

/// Social recovery (PROTOCOL.md §4.3, issue 17 §2): the entries of kinds 13-16 appended to the
/// handle's social chain with the rows that serve the ciphertexts.
#[async_trait::async_trait]
pub(crate) trait SocialStore: Send + Sync {
    /// Appends a contacts entry (kind 13) and replaces the handle's escrow and distribution
    /// shares. [`StoreError::Conflict`] if the recovery device is not a current device of the
    /// identity under the handle. Returns the entry's index.
    async fn put_social(&self, s: &NewSocial<'_>) -> Result<u64, StoreError>;

    /// The handle's current contacts row.
    async fn social(&self, handle: &str) -> Result<Option<SocialRow>, StoreError>;

    /// The share wraps of `handle` to `recipient` under `request_id` (`""`: the distribution).
    async fn social_shares(
        &self,
        handle: &str,
        request_id: &str,
        recipient: &str,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Appends a request (kind 14); [`StoreError::Conflict`] unless it relies on the handle's
    /// current contacts entry, or if the request exists; [`StoreError::OverCap`] when the handle
    /// already has `serment_core::social::MAX_OPEN_REQUESTS` open requests (on the current
    /// contacts, not vetoed, completion window not over), counted in the same transaction
    /// (REVIEW5 U1).
    async fn append_social_request(
        &self,
        handle: &str,
        request_id: &str,
        contacts_hash: &str,
        new_device: &str,
        entry: &[u8],
        now: u64,
    ) -> Result<u64, StoreError>;

    /// A request by id.
    async fn social_request(
        &self,
        request_id: &str,
    ) -> Result<Option<SocialRequestRow>, StoreError>;

    /// Appends an approval (kind 15) and stores the re-wrapped share (one per contact device
    /// and request: [`StoreError::Conflict`] for a second).
    #[allow(clippy::too_many_arguments)]
    async fn append_social_approval(
        &self,
        handle: &str,
        request_id: &str,
        contact: &str,
        sharer: &str,
        recipient: &str,
        share: &[u8],
        entry: &[u8],
        now: u64,
    ) -> Result<u64, StoreError>;

    /// Appends a veto (kind 16) by `device` and marks the request vetoed.
    async fn append_social_veto(
        &self,
        handle: &str,
        request_id: &str,
        device: &str,
        entry: &[u8],
        now: u64,
    ) -> Result<u64, StoreError>;
}

/// A whole metadata backend.
#[async_trait::async_trait]
pub(crate) trait MetaStore:
    DirectoryStore
    + RestoreStore
    + DocumentStore
    + ErasureStore
    + LogStore
    + PairingStore
    + ProvisionalStore
    + RecoveryStore
    + SocialStore
    + TeamStore
    + GuardStore
    + std::fmt::Debug
{
    /// Returns once every transaction committed before the call is durable (SQLite: the group
    /// commit's WAL fsync; PostgreSQL: already so at commit). The HTTP layer awaits it before
    /// each response.
    async fn durable(&self) -> Result<(), StoreError>;

    /// Closes every connection (after the server stopped).
    async fn close(&self);

    /// This instance's connection pools, for `/metrics`.
    fn pool_use(&self) -> PoolUse;

    /// The bytes of every recorded blob (inline or in the blob store), for `/metrics`.
    async fn blob_bytes(&self) -> Result<u64, StoreError>;
}

/// The connections of an instance's pools (summed over its pools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolUse {
    /// Open connections.
    pub(crate) size: u32,
    /// Open connections not in use.
    pub(crate) idle: u32,
    /// The most connections the pools may open.
    pub(crate) max: u32,
}

/// Care teams (PROTOCOL.md §12): changes appended to the log with the membership rows they
/// imply, team key wraps, and documents' wraps to a team epoch.
#[async_trait::async_trait]
pub(crate) trait TeamStore: Send + Sync {
    /// Appends a team change (kind 7) and, in the same transaction, replaces the team's member
    /// rows and current epoch, and stores its key wraps (a wrap already stored for the same
    /// team, epoch and device is replaced). Returns the entry's index. [`StoreError::Conflict`]
    /// if the team's head is no longer `expected_head` (another change came first: the caller
    /// replays again) or a creation names a team that exists.
    async fn append_team_change(&self, c: &NewTeamChange<'_>) -> Result<u64, StoreError>;

    /// The current epoch of a team and its epoch id (hex); `None` for an unknown team.
    async fn team_epoch(&self, team: &str) -> Result<Option<(u32, String)>, StoreError>;

    /// The team key wraps stored for `device_id`, oldest epoch first.
    async fn team_key_wraps(
        &self,
        team: &str,
        device_id: &KeyId,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Every stored team key wrap (PROTOCOL.md §12.3), by team, epoch and device: what a backup
    /// copies (docs/BACKUP.md §2).
    async fn all_team_key_wraps(&self) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The teams whose current members (as last replayed) include `handle`, by name.
    async fn teams_of(&self, handle: &str) -> Result<Vec<String>, StoreError>;

    /// Stores team key wraps that a member device hands on to another device of its own
    /// identity (PROTOCOL.md §12.3, "Hand-over"): `wraps` are (epoch, recipient device id hex,
    /// wrap), already decoded and checked against the caller. In one transaction: `handle` must
    /// be a current member of `team` ([`StoreError::Forbidden`] otherwise) and every recipient a
    /// current (unrevoked) device of `handle` ([`StoreError::Forbidden`]); a wrap of the same
    /// team, epoch and device already stored is kept (the hand-over is idempotent). Returns how
    /// many wraps were stored.
    async fn hand_over_team_keys(
        &self,
        team: &str,
        handle: &str,
        wraps: &[(u32, String, Vec<u8>)],
    ) -> Result<usize, StoreError>;

    /// Stores a document version's wrap to a team epoch and appends it as a wrap entry (kind 4);
    /// the team's older wraps of that version are deleted (`team rotate --rewrap`, PROTOCOL.md
    /// §12.3). Returns the entry's index. [`StoreError::Conflict`] if the version does not exist
    /// or already holds this wrap.
    #[allow(clippy::too_many_arguments)]
    async fn add_team_wrap(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        team: &str,
        epoch_id: &str,
        sharer_device: &KeyId,
        wrap: &[u8],
        now: u64,
    ) -> Result<u64, StoreError>;
}

/// Provisional recipients (issue 17 §1, PROTOCOL.md §15): their rows, one-time codes, wraps and
/// claims. The record (kind 10) and the claim (kind 11) are appended to the log in the
/// transaction that writes their rows.
#[async_trait::async_trait]
pub(crate) trait ProvisionalStore: Send + Sync {
    /// Stores a provisional recipient and appends its record (kind 10). Returns the entry's
    /// index. [`StoreError::Conflict`] if its id or lookup id exists.
    async fn create_provisional(&self, p: &NewProvisional<'_>) -> Result<u64, StoreError>;

    /// The ids of the provisional recipients `lab_identity` made for `contact_tag` (hex), oldest
    /// first.
    async fn provisionals_tagged(
        &self,
        lab_identity: &KeyId,
        contact_tag: &str,
    ) -> Result<Vec<KeyId>, StoreError>;

    /// The provisional recipient of a claim code's lookup id (hex).
    async fn provisional_by_lookup(
        &self,
        lookup: &str,
    ) -> Result<Option<ProvisionalRow>, StoreError>;

    /// A provisional recipient by id.
    async fn provisional(&self, id: &KeyId) -> Result<Option<ProvisionalRow>, StoreError>;

    /// Replaces the one-time code of `id` (its SHA-256 only) with a fresh, unused one.
    async fn set_provisional_code(
        &self,
        id: &KeyId,
        code_hash: &[u8; 32],
        expires_at: u64,
    ) -> Result<(), StoreError>;

    /// Counts one attempt against the live code of `id` and says whether `code_hash` is it. A
    /// proven code is used up (single use). At most `max_attempts` attempts per code, and at
    /// most `max_failures` wrong ones over the recipient's life, whatever the code (review S16):
    /// past it, [`CodeCheck::Locked`] even for the right code. A proven code is bound to
    /// `prover`, the identity that proved it (REVIEW5 U10): only that identity may then claim.
    async fn try_provisional_code(
        &self,
        id: &KeyId,
        code_hash: &[u8; 32],
        prover: &KeyId,
        now: u64,
        max_attempts: u32,
        max_failures: u32,
    ) -> Result<CodeCheck, StoreError>;

    /// Appends a claim (kind 11) of `id` by `claimant_identity`'s device and records it, if
    /// the recipient is unclaimed and its one-time code was proven by `claimant_identity`. [`StoreError::Conflict`]
    /// for a second claim, [`StoreError::Forbidden`] without a proven code.
    async fn claim_provisional(
        &self,
        id: &KeyId,
        claimant_identity: &KeyId,
        device: &KeyId,
        claim: &[u8],
        now: u64,
    ) -> Result<u64, StoreError>;

    /// Stores wraps of a version to provisional recipients (each a kind 4 entry). Returns their
    /// log indices. [`StoreError::Conflict`] if one already holds a wrap of the version.
    async fn add_provisional_wraps(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        wraps: &[(KeyId, Vec<u8>)],
        now: u64,
    ) -> Result<Vec<u64>, StoreError>;

    /// Every wrap to a provisional recipient: document, version, wrap bytes, log index.
    async fn provisional_wraps(
        &self,
        id: &KeyId,
    ) -> Result<Vec<(DocId, u32, Vec<u8>, u64)>, StoreError>;

    /// Erases the contact address of every unclaimed provisional recipient created before
    /// `created_before` (seconds since the Unix epoch; the newcomer's H19). Returns how many
    /// addresses were erased.
    async fn erase_unclaimed_addresses(&self, created_before: u64) -> Result<u64, StoreError>;

    /// Whether a provisional recipient claimed by `identity` holds a wrap of the version.
    async fn claimed_wrap_of(
        &self,
        identity: &KeyId,
        doc_id: &DocId,
        doc_version: u32,
    ) -> Result<bool, StoreError>;
}

/// A provisional recipient to store.
pub(crate) struct NewProvisional<'a> {
    /// Its id.
    pub(crate) id: KeyId,
    /// The lab identity that made it.
    pub(crate) lab_identity: KeyId,
    /// The lab device that made it.
    pub(crate) lab_device: KeyId,
    /// Its contact tag, hex.
    pub(crate) contact_tag: String,
    /// Its claim code's lookup id, hex.
    pub(crate) lookup: String,
    /// Where one-time codes are sent.
    pub(crate) email: &'a str,
    /// The server share S.
    pub(crate) server_share: &'a [u8],
    /// The escrow.
    pub(crate) escrow: &'a [u8],
    /// The record (kind 10 payload).
    pub(crate) record: &'a [u8],
    /// Server time.
    pub(crate) now: u64,
}

/// A stored provisional recipient. Its `Debug` hides the email and the share.
#[derive(Clone)]
pub(crate) struct ProvisionalRow {
    /// Its id.
    pub(crate) id: KeyId,
    /// The lab identity that made it.
    pub(crate) lab_identity: KeyId,
    /// Where one-time codes are sent.
    pub(crate) email: String,
    /// The server share S.
    pub(crate) server_share: Vec<u8>,
    /// The escrow.
    pub(crate) escrow: Vec<u8>,
    /// The identity that claimed it.
    pub(crate) claimed_identity: Option<KeyId>,
    /// Wrong one-time codes over its whole life (review S16; never reset by a new code).
    pub(crate) failures: u64,
}

impl std::fmt::Debug for ProvisionalRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionalRow")
            .field("id", &self.id)
            .field("claimed_identity", &self.claimed_identity)
            .finish_non_exhaustive()
    }
}

/// The outcome of one attempt at a one-time code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeCheck {
    /// The right code: now used up.
    Proven,
    /// A wrong code (the attempt counted).
    Wrong,
    /// No live code: none sent, expired or used.
    NoCode,
    /// The code's attempts are spent: it is dead.
    Exhausted,
    /// The recipient's lifetime budget of wrong codes is spent: locked until the lab re-issues.
    Locked,
}
