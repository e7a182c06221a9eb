//! The document flows of a [`Session`]: put, get, list and the access history (PROTOCOL.md
//! §6-§8, §11); sharing is in [`crate::sharing`]. Every check a client makes on what the
//! server returns for a document lives here or in `serment_core`; the session
//! ([`crate::vault`]) owns the connection, the keystore and the log view.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use serment_core::document::{self, Metadata, OpenInput, Opened, SealInput, Unlocked, Unwrap};
use serment_core::log::entry::{AccessWhat, EntryKind};
use serment_core::log::note::Checkpoint;
use serment_core::wrap::{self, Recipient, WrapKem, WrappedKey};
use serment_core::{DocId, KeyId};

use crate::api::{AccessEntry, BlobRef, VersionSummary, key_id};
use crate::error::{ClientError, Result};
use crate::fsutil::AtomicFile;
use crate::vault::Session;

/// The result of [`Session::put`].
#[derive(Debug, Clone)]
pub struct PutResult {
    /// The new document id.
    pub doc_id: DocId,
    /// Its version.
    pub doc_version: u32,
    /// The blob id (SHA-256 of the sealed bytes, as the server computed it).
    pub blob_id: String,
    /// Sealed size in bytes.
    pub sealed_len: u64,
    /// Recipient devices (author included).
    pub recipients: Vec<KeyId>,
}

/// The result of [`Session::get`].
#[derive(Debug, Clone)]
pub struct GetResult {
    /// The verified header and metadata.
    pub opened: Opened,
    /// The author's handle (a pinned contact, or this user).
    pub author: String,
    /// The KEM of the wrap that opened it (PROTOCOL.md §7): X-Wing (suite 3) or X25519.
    pub kem: WrapKem,
}

/// The largest sealed document [`Session::get_unlocked`] holds in memory: 512 MiB (the page's
/// WebAssembly memory holds it, its plaintext and its content at once, within 4 GiB). Larger
/// documents open with the streaming [`Session::get`].
pub const MAX_UNLOCKED_LEN: u64 = 512 << 20;

/// Reads a sealed document whole into memory for [`Session::get_unlocked`]: a size above
/// [`MAX_UNLOCKED_LEN`] is refused before anything is read, and no more than one byte past the
/// announced size is ever read (a longer body is refused, a shorter one is caught by the
/// document's checks). The buffer starts at no more than 16 MiB, whatever the server announced.
///
/// # Errors
/// `TooLarge` for an announced size above the cap, `ExtendedStream` for a longer body, I/O
/// errors of `blob`.
fn read_announced(blob: &mut dyn Read, size: u64) -> serment_core::Result<Vec<u8>> {
    if size > MAX_UNLOCKED_LEN {
        return Err(serment_core::Error::TooLarge {
            what: "a document opened in memory (open it with the CLI)",
            limit: MAX_UNLOCKED_LEN,
        });
    }
    let announced = usize::try_from(size).map_err(|_| serment_core::Error::TruncatedStream)?;
    let mut sealed = Vec::with_capacity(announced.min(16 << 20));
    blob.take(size + 1).read_to_end(&mut sealed)?;
    if sealed.len() > announced {
        return Err(serment_core::Error::ExtendedStream);
    }
    Ok(sealed)
}

/// A document version [`Session::get_unlocked`] fetched and checked, awaiting its plaintext.
/// Its `Debug` shows the sealed document's length, not its bytes (and never the DEK).
pub struct UnlockedGet {
    /// The checked document: its DEK and each chunk's nonce, position and length.
    pub unlocked: Unlocked,
    /// The sealed document, as fetched and checked.
    pub sealed: Vec<u8>,
    /// The author's handle (a pinned contact, or this user).
    pub author: String,
    /// The KEM of the wrap that opened it (PROTOCOL.md §7).
    pub kem: WrapKem,
}

impl std::fmt::Debug for UnlockedGet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockedGet")
            .field("unlocked", &self.unlocked)
            .field("sealed_len", &self.sealed.len())
            .field("author", &self.author)
            .field("kem", &self.kem)
            .finish()
    }
}

impl UnlockedGet {
    /// Completes the open with the chunks' plaintext (`Unlocked::finish`: the length, the first
    /// and last chunks cross-checked, the framing decoded), writing the content to `out`.
    ///
    /// # Errors
    /// [`ClientError::Integrity`] for any failed check; bytes in `out` must then be discarded.
    pub fn finish(self, plaintext: &[u8], out: &mut dyn Write) -> Result<GetResult> {
        let opened = self
            .unlocked
            .finish(&self.sealed, plaintext, out)
            .map_err(ClientError::Integrity)?;
        Ok(GetResult {
            opened,
            author: self.author,
            kem: self.kem,
        })
    }
}

impl Session {
    /// Seals `content` (exactly `metadata.content_length` bytes) for the recipients and uploads it
    /// as version 1 of a new document. Sealing and uploading run concurrently over a pipe, so
    /// memory stays bounded whatever the size.
    ///
    /// # Errors
    /// Contact errors, [`ClientError::Input`] for a content length mismatch, server and transport
    /// errors. Nothing is committed unless the whole blob was sealed and stored.
    pub fn put<R: Read + Send>(
        &mut self,
        content: R,
        metadata: Metadata,
        to: &[String],
    ) -> Result<PutResult> {
        let recipients = self.recipients(to)?;
        let doc_id = DocId::random().map_err(ClientError::Integrity)?;
        self.put_version(content, metadata, doc_id, 1, &recipients)
    }

    /// Seals and uploads one version for already-resolved recipients.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn put_version<R: Read + Send>(
        &mut self,
        content: R,
        metadata: Metadata,
        doc_id: DocId,
        doc_version: u32,
        recipients: &[Recipient],
    ) -> Result<PutResult> {
        self.put_version_with(content, metadata, doc_id, doc_version, recipients, &[])
    }

    /// [`Session::put_version`] where the recipients named in `provisional` are provisional
    /// recipients (PROTOCOL.md §15): their wraps are posted after the commit, to
    /// `/v1/documents/{id}/versions/{v}/provisional-wraps`, and checked in the log like the
    /// commit's own.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn put_version_with<R: Read + Send>(
        &mut self,
        content: R,
        metadata: Metadata,
        doc_id: DocId,
        doc_version: u32,
        recipients: &[Recipient],
        provisional: &[KeyId],
    ) -> Result<PutResult> {
        let is_prov = |k: &KeyId| provisional.contains(k);
        let sealed_len = document::sealed_len(&SealInput {
            doc_id,
            doc_version,
            author: &self.ks.device,
            recipients,
            metadata: metadata.clone(),
        })
        .map_err(ClientError::Integrity)?;
        self.check_limit(sealed_len)?;
        let known = crate::keystore::KnownDocument::from_metadata(&metadata, &self.ks.device.id());
        let log_from = crate::log::pinned(&self.api, &self.ks)?.map(|c| c.size);
        let (sealed, committed) = if sealed_len <= crate::api::MAX_INLINE_BLOB {
            // Small documents (lab results): sealed in memory and committed in one request,
            // which also carries the proofs of the wraps' log entries.
            let mut bytes = Vec::with_capacity(usize::try_from(sealed_len).unwrap_or(0));
            let sealed = document::seal(
                SealInput {
                    doc_id,
                    doc_version,
                    author: &self.ks.device,
                    recipients,
                    metadata,
                },
                content,
                &mut bytes,
            )
            .map_err(seal_err)?;
            let wraps: Vec<Vec<u8>> = sealed
                .wraps
                .iter()
                .filter(|(k, _)| !is_prov(k))
                .map(|(_, w)| w.clone())
                .collect();
            let committed = match self.commit_retrying(
                &doc_id,
                doc_version,
                BlobRef::Inline(&bytes),
                &wraps,
                log_from,
            ) {
                // A server whose JSON limit is below this commit (many wraps): upload first.
                Err(ClientError::Server { status: 413, .. }) => {
                    let blob_id = self.api.upload_blob_bytes(&bytes)?;
                    self.commit_uploaded(&doc_id, doc_version, blob_id, &wraps, log_from)?
                }
                other => other?,
            };
            (sealed, committed)
        } else {
            let (sealed, blob_id) =
                self.seal_and_upload(content, metadata, doc_id, doc_version, recipients)?;
            let wraps: Vec<Vec<u8>> = sealed
                .wraps
                .iter()
                .filter(|(k, _)| !is_prov(k))
                .map(|(_, w)| w.clone())
                .collect();
            let committed =
                self.commit_uploaded(&doc_id, doc_version, blob_id, &wraps, log_from)?;
            (sealed, committed)
        };
        let expected: Vec<(EntryKind, &[u8])> = sealed
            .wraps
            .iter()
            .filter(|(k, _)| !is_prov(k))
            .map(|(_, w)| (EntryKind::Wrap, w.as_slice()))
            .collect();
        crate::log::check_own_commit(&self.api, &mut self.ks, &committed, &expected)?;
        // Where this version lies in the log, proven just above: a restore that loses it tells
        // its author (PROTOCOL.md §11.11, newcomer 6 N2).
        if let (Some(first), Some(st)) = (
            committed
                .log_indices
                .as_deref()
                .and_then(|i| i.iter().min()),
            self.ks.log_state_mut(self.api.base()),
        ) {
            st.record_authored(&doc_id.to_string(), doc_version, *first);
        }
        let prov: Vec<Vec<u8>> = sealed
            .wraps
            .iter()
            .filter(|(k, _)| is_prov(k))
            .map(|(_, w)| w.clone())
            .collect();
        if !prov.is_empty() {
            let indices = self
                .api
                .add_provisional_wraps(&doc_id, doc_version, &prov)?;
            let expected: Vec<(EntryKind, &[u8])> = prov
                .iter()
                .map(|w| (EntryKind::Wrap, w.as_slice()))
                .collect();
            crate::log::check_own_writes(&self.api, &mut self.ks, &indices, &expected)?;
        }
        self.ks
            .remember_document(&doc_id.to_string(), doc_version, known);
        self.save_pin()?;
        Ok(PutResult {
            doc_id,
            doc_version,
            blob_id: committed.blob_id,
            sealed_len: sealed.sealed_len,
            recipients: sealed.wraps.iter().map(|(k, _)| *k).collect(),
        })
    }

    /// [`Api::commit_document`], sent a second time, identical, if the first answer was lost
    /// (transport error, 502, 503 or 504): the server answers an identical retry of a version
    /// it already committed with the original entries (200), which are then checked like any
    /// answer. Anything else is returned as is.
    fn commit_retrying(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        blob: BlobRef<'_>,
        wraps: &[Vec<u8>],
        log_from: Option<u64>,
    ) -> Result<crate::api::VersionSummary> {
        match self
            .api
            .commit_document(doc_id, doc_version, blob, wraps, log_from)
        {
            Err(
                ClientError::Transport(_)
                | ClientError::Server {
                    status: 502..=504, ..
                },
            ) => {
                crate::sleep(COMMIT_RETRY_DELAY);
                self.api
                    .commit_document(doc_id, doc_version, blob, wraps, log_from)
            }
            other => other,
        }
    }

    /// Commits an uploaded blob ([`Session::commit_retrying`] with its id), keeping the id the
    /// upload returned.
    fn commit_uploaded(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        blob_id: String,
        wraps: &[Vec<u8>],
        log_from: Option<u64>,
    ) -> Result<crate::api::VersionSummary> {
        let mut c =
            self.commit_retrying(doc_id, doc_version, BlobRef::Id(&blob_id), wraps, log_from)?;
        c.blob_id = blob_id;
        Ok(c)
    }

    /// Seals `content` and uploads it to `/v1/blobs` concurrently, over a pipe, so memory stays
    /// bounded whatever the size. Returns the sealing result and the blob id.
    fn seal_and_upload<R: Read + Send>(
        &self,
        content: R,
        metadata: Metadata,
        doc_id: DocId,
        doc_version: u32,
        recipients: &[Recipient],
    ) -> Result<(document::Sealed, String)> {
        let (reader, writer) = std::io::pipe().map_err(|e| ClientError::io("pipe", e))?;
        let device = &self.ks.device;
        std::thread::scope(|s| {
            let sealer = s.spawn(move || {
                let mut w = BufWriter::with_capacity(256 * 1024, writer);
                let r = document::seal(
                    SealInput {
                        doc_id,
                        doc_version,
                        author: device,
                        recipients,
                        metadata,
                    },
                    content,
                    &mut w,
                );
                // Dropping the writer ends the upload body.
                drop(w);
                r
            });
            let mut reader = BufReader::with_capacity(256 * 1024, reader);
            let up = self.api.upload_blob(&mut reader);
            drop(reader);
            let sealed = sealer
                .join()
                .map_err(|_| ClientError::Input("the sealing thread panicked".into()))?;
            // A sealing error explains an upload error, so report it first.
            let sealed = sealed.map_err(seal_err)?;
            Ok::<_, ClientError>((sealed, up?))
        })
    }

    /// Refuses, before any upload, a document of `sealed` bytes over the server's limit (the
    /// server would otherwise cut the connection mid-upload). The limit is asked once per
    /// session (`/healthz`).
    fn check_limit(&mut self, sealed: u64) -> Result<()> {
        let limit = match self.max_blob {
            Some(l) => l,
            None => {
                let l = self.api.health()?;
                self.max_blob = Some(l);
                l
            }
        };
        if let Some(limit) = limit
            && sealed > limit
        {
            return Err(ClientError::Input(format!(
                "the sealed document would be {sealed} bytes; the server accepts at most {limit} (413)"
            )));
        }
        Ok(())
    }

    /// The newest version of a document visible to this device. The server's listing is checked
    /// against the log: a newer version the log proves was wrapped for this device, but the
    /// listing hides, is a rollback (or a forked view) and an error.
    ///
    /// # Errors
    /// [`ClientError::Server`] with status 404 semantics if none; [`ClientError::Log`] for a
    /// hidden newer version or a history that does not check out.
    pub fn latest_version(&mut self, doc_id: &DocId) -> Result<u32> {
        self.latest_version_synced(doc_id).map(|(v, _)| v)
    }

    /// [`Session::latest_version`] and the checkpoint its log check synced to (and pinned), for
    /// the rest of the operation to rely on without fetching it again.
    fn latest_version_synced(&mut self, doc_id: &DocId) -> Result<(u32, Checkpoint)> {
        let id = doc_id.to_string();
        let listed = self
            .api
            .list_documents()?
            .into_iter()
            .filter(|d| d.doc_id == id)
            .map(|d| d.doc_version)
            .max();
        let device = self.ks.device.id();
        let (cp, logged) =
            crate::log::newest_logged_version_synced(&self.api, &mut self.ks, doc_id, &device)?;
        self.ks.save()?;
        if logged > listed {
            return Err(ClientError::Log(serment_core::Error::History {
                reason: "the server's listing hides a newer version of the document that the log proves",
            }));
        }
        let v = listed.ok_or(ClientError::Server {
            status: 404,
            code: "not_found".into(),
            message: format!("no document {id} visible to this device"),
        })?;
        Ok((v, cp))
    }

    /// Downloads, verifies and decrypts a document into `out`. Bytes written to `out` must be
    /// discarded unless this returns `Ok` (see [`Session::get_to_file`]).
    ///
    /// # Errors
    /// [`ClientError::Integrity`] for any tampering; [`ClientError::UnknownAuthor`];
    /// [`ClientError::NotShared`] for a document this device may not read;
    /// [`ClientError::Withheld`] when the server cannot produce what the log proves exists (the
    /// blob, this device's wrap); other server errors.
    pub fn get(
        &mut self,
        doc_id: &DocId,
        version: Option<u32>,
        out: &mut dyn Write,
    ) -> Result<GetResult> {
        match self.get_checked(doc_id, version, out) {
            // 410 `erased`: believed only with the tombstone proven in the log (§11.3.2).
            Err(ClientError::Server { code, .. }) if code == "erased" => {
                Err(self.erased_or_withheld(doc_id))
            }
            // Not found, and named by a restore's loss statement this device accepted: the
            // statement and the author to ask, not a bare 404 (newcomer 6 N11).
            Err(e @ ClientError::Server { status: 404, .. }) => {
                Err(self.lost_in_restore(doc_id).unwrap_or(e))
            }
            r => r.map_err(ClientError::on_read),
        }
    }

    /// [`ClientError::LostInRestore`] when a loss statement this device accepted names
    /// `doc_id`.
    pub(crate) fn lost_in_restore(&self, doc_id: &DocId) -> Option<ClientError> {
        let id = doc_id.to_string();
        let (a, author) = self.ks.log_state(self.api.base())?.lost_document(&id)?;
        Some(ClientError::lost_in_restore(
            &id,
            &a.statement,
            author,
            self.ks.handle(),
        ))
    }

    /// The error for a server that says `doc_id` is erased: [`ClientError::Erased`] when the log
    /// proves a valid tombstone, [`ClientError::Withheld`] when it proves none (the server hides
    /// a document it holds), a log error for a forged one.
    fn erased_or_withheld(&mut self, doc_id: &DocId) -> ClientError {
        let r = crate::log::proven_erasure(&self.api, &mut self.ks, doc_id);
        if let Err(e) = self.ks.save() {
            return e;
        }
        match r {
            Ok(Some(t)) => ClientError::erased(&t),
            Ok(None) => ClientError::Withheld(format!(
                "document {doc_id} (the server answers `erased`, but the log proves no tombstone \
                 for it)"
            )),
            Err(e) => e,
        }
    }

    /// Erases every version of a document this identity authored (PROTOCOL.md §11.3.2): signs
    /// the tombstone with this device, posts it, and checks the log holds exactly it. Returns
    /// the tombstone's log index.
    ///
    /// # Errors
    /// Server errors (403 not the author's, 404, 410 already erased);
    /// [`ClientError::OwnWriteMissing`] if the log does not hold the tombstone as sent.
    pub fn erase(
        &mut self,
        doc_id: &DocId,
        reason: serment_core::log::erasure::ErasureReason,
    ) -> Result<u64> {
        use serment_core::log::entry::EntryKind;
        let t = serment_core::log::erasure::Erasure::sign(
            doc_id,
            reason,
            &self.ks.device,
            crate::now_secs(),
        );
        let idx = self.api.erase(doc_id, &t)?;
        crate::log::check_own_writes(&self.api, &mut self.ks, &idx, &[(EntryKind::Erasure, &t)])?;
        self.ks.save()?;
        Ok(idx.first().copied().unwrap_or_default())
    }

    /// [`Session::get`] before the server's typed read errors are mapped.
    fn get_checked(
        &mut self,
        doc_id: &DocId,
        version: Option<u32>,
        out: &mut dyn Write,
    ) -> Result<GetResult> {
        let (opened, author, author_device, kem) =
            self.fetch_and_open(doc_id, version, |input, unwrap, blob, _| {
                let blob = BufReader::with_capacity(256 * 1024, blob);
                document::open_with(input, unwrap, blob, out)
            })?;
        // Verified: remember what `ls` shows of it (saved with the keystore by the caller).
        self.ks.remember_document(
            &doc_id.to_string(),
            opened.header.doc_version,
            crate::keystore::KnownDocument::from_metadata(&opened.metadata, &author_device),
        );
        Ok(GetResult {
            opened,
            author,
            kem,
        })
    }

    /// [`Session::get`] with the decryption of the chunks left to the caller (the patient's
    /// page decrypts them with the browser's WebCrypto AES-GCM, PROTOCOL.md §2.1): every check of
    /// `get` runs here -- the log proofs of the wrap, the author's record, the team or catch-up
    /// key, the sealed header, the unwrap, every chunk's hash and the author's signature -- and
    /// nothing is decrypted. [`UnlockedGet::finish`] completes it with the plaintext. The
    /// document is not remembered for `ls` (the page keeps no such cache). The sealed document
    /// is read whole into memory: at most the size the server announced, which must not pass
    /// [`MAX_UNLOCKED_LEN`].
    ///
    /// # Errors
    /// As [`Session::get`]; [`ClientError::Integrity`] with `TooLarge` for an announced size
    /// above [`MAX_UNLOCKED_LEN`], `ExtendedStream` for a blob longer than announced.
    pub fn get_unlocked(&mut self, doc_id: &DocId, version: Option<u32>) -> Result<UnlockedGet> {
        let ((unlocked, sealed), author, _, kem) = self
            .fetch_and_open(doc_id, version, |input, unwrap, blob, size| {
                let sealed = read_announced(blob, size)?;
                let unlocked = document::verify_sealed(input, unwrap, &sealed)?;
                Ok((unlocked, sealed))
            })
            .map_err(ClientError::on_read)?;
        Ok(UnlockedGet {
            unlocked,
            sealed,
            author,
            kem,
        })
    }

    /// Fetches a version and its wrap, with the wrap's log entry proven against one synced
    /// checkpoint and this device's access receipts, picks the key that opens it (own, team,
    /// catch-up) and runs `open` on the sealed bytes (with the blob size the server announced,
    /// unchecked); then checks the wrap against its proven
    /// log entry and the no-downgrade rule (the document's own checks run first: their errors
    /// are the most precise). Returns what `open` returned, the author's handle and device id,
    /// and the wrap's KEM.
    fn fetch_and_open<T>(
        &mut self,
        doc_id: &DocId,
        version: Option<u32>,
        open: impl FnOnce(OpenInput<'_>, Unwrap<'_>, &mut dyn Read, u64) -> serment_core::Result<T>,
    ) -> Result<(T, String, KeyId, WrapKem)> {
        let (version, synced) = match version {
            Some(v) => (v, None),
            None => {
                let (v, cp) = self.latest_version_synced(doc_id)?;
                (v, Some(cp))
            }
        };
        // The wrap is relied on only with its log entry proven against a verified checkpoint,
        // and every fetch carries this device's signed access receipt (PROTOCOL.md §11.5-6).
        // One checkpoint per operation: the one the freshness check above synced to, if any.
        let cp = match synced {
            Some(cp) => cp,
            None => self.sync_log()?,
        };
        let origin = crate::log::trust(&self.api, &self.ks)?.log_key.name;
        let rc = crate::log::receipt(&self.ks, &origin, doc_id, version, AccessWhat::Wrap)?;
        let (info, wrap) = self
            .api
            .version_with(doc_id, version, Some(&rc), Some(cp.size))?;
        let author_device = key_id(&info.author_device, "author_device")?;
        let (author, record) = self.author_record(&author_device)?;
        let rc = crate::log::receipt(&self.ks, &origin, doc_id, version, AccessWhat::Blob)?;
        let blob = self.api.download_blob_with(doc_id, version, Some(&rc))?;
        // A wrap to a care team this user belongs to (PROTOCOL.md §12.3) opens with the epoch
        // key, once the team's chain is verified; any other wrap is opened as this device's own.
        let team_key = match WrappedKey::decode(&wrap) {
            Ok(served) if served.recipient != self.ks.device.id() => self.team_key_for(&served)?,
            _ => None,
        };
        // A wrap to this device made by another device than the author: a linked device's
        // catch-up (PROTOCOL.md §4.1), accepted only from a current device of this identity,
        // proven in the log.
        let sharer_key = match WrappedKey::decode(&wrap) {
            Ok(served)
                if team_key.is_none()
                    && served.recipient == self.ks.device.id()
                    && served.sharer != author_device =>
            {
                Some(
                    self.own_device_in_log(&served.sharer)?
                        .ok_or(ClientError::Integrity(serment_core::Error::WrongSigner {
                            what: "key wrap",
                            expected: author_device.to_string(),
                            found: served.sharer.to_string(),
                        }))?
                        .signing_key,
                )
            }
            _ => None,
        };
        let input = OpenInput {
            device: &self.ks.device,
            wrap: &wrap,
            author_signing_key: &record.signing_key,
            expected: Some((*doc_id, version)),
        };
        let unwrap = match (&team_key, &sharer_key) {
            (Some((epoch_id, secret)), _) => Unwrap::Team { epoch_id, secret },
            (None, Some(sharer_signing_key)) => Unwrap::Shared { sharer_signing_key },
            (None, None) => Unwrap::Own,
        };
        let mut blob = blob;
        let opened = open(input, unwrap, &mut blob, info.size).map_err(ClientError::Integrity)?;
        // The document's own checks ran first (their errors are the most precise); no `Ok`
        // without the wrap proven in the log (plaintext in `out` is discarded on error).
        let pe = info
            .wrap_entry
            .as_ref()
            .ok_or(ClientError::Log(serment_core::Error::BadInclusionProof))?;
        if info.log_size != cp.size {
            return Err(ClientError::Log(serment_core::Error::BadInclusionProof));
        }
        let e = crate::log::verify_proven(&cp, pe)?;
        if e.entry.kind != EntryKind::Wrap || e.entry.payload_bytes != wrap {
            return Err(ClientError::Integrity(
                serment_core::Error::ContextMismatch(
                    "the wrap served is not the one in its proven log entry",
                ),
            ));
        }
        // No downgrade (PROTOCOL.md §7.1): a classical wrap logged once this device advertised
        // its X-Wing key is refused, whoever signed it.
        let w = WrappedKey::decode(&wrap).map_err(ClientError::Integrity)?;
        wrap::check_not_downgraded(&w, self.ks.hybrid_since(), Some(e.index))
            .map_err(ClientError::Integrity)?;
        Ok((opened, author, author_device, w.kem))
    }

    /// [`Session::get`] into a file: written to a temporary file beside `path` and renamed only
    /// once every chunk and the signature verified. On any error no output file is left. Unless
    /// `overwrite`, an existing `path` is refused before anything is fetched, and again atomically
    /// at the rename.
    ///
    /// # Errors
    /// As [`Session::get`], plus [`ClientError::Io`] and [`ClientError::OutputExists`].
    pub fn get_to_file(
        &mut self,
        doc_id: &DocId,
        version: Option<u32>,
        path: &Path,
        overwrite: bool,
    ) -> Result<GetResult> {
        let mut tmp = if overwrite {
            AtomicFile::new(path)?
        } else {
            AtomicFile::no_clobber(path)?
        };
        let res = {
            let mut w = BufWriter::with_capacity(256 * 1024, tmp.file());
            let r = self.get(doc_id, version, &mut w)?;
            w.flush().map_err(|e| ClientError::io(path, e))?;
            r
        };
        tmp.commit()?;
        Ok(res)
    }

    /// Documents this device authored or may read; the log's checkpoint is synced first
    /// ([`Session::sync_log`]), so a rolled-back or forked server is refused.
    ///
    /// # Errors
    /// [`ClientError::Log`], server errors.
    pub fn list(&mut self) -> Result<Vec<VersionSummary>> {
        let cp = self.sync_log()?;
        let docs = self.api.list_documents()?;
        // A version this device verified (sealed, or opened) keeps the author it verified: a
        // listing that names another is the server contradicting a signature.
        for d in &docs {
            if let Some(k) = self.ks.known_document(&d.doc_id, d.doc_version)
                && !k.author_device.is_empty()
                && k.author_device != d.author_device
            {
                return Err(ClientError::Integrity(
                    serment_core::Error::ContextMismatch(
                        "the server's listing names another author for a document than the one \
                         whose signature this device verified",
                    ),
                ));
            }
        }
        // Each version listed, with the checkpoint verified when it first was: a restore that
        // loses it tells this device (PROTOCOL.md §11.11, newcomer 6 N2).
        let mut new = false;
        if let Some(st) = self.ks.log_state_mut(self.api.base()) {
            for d in &docs {
                new |= st.record_listed(&d.doc_id, d.doc_version, cp.size, &d.author_device);
            }
        }
        if new {
            self.save_pin()?;
        }
        Ok(docs)
    }

    /// Who fetched a document, as the server recorded it (issue 6 adds proofs).
    ///
    /// # Errors
    /// Server errors.
    pub fn accesses(&self, doc_id: &DocId) -> Result<Vec<AccessEntry>> {
        self.api.accesses(doc_id)
    }
}

/// The pause before the one retry of a commit whose answer was lost.
const COMMIT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// A sealing error as a client error: an I/O error reading the content is the caller's input.
fn seal_err(e: serment_core::Error) -> ClientError {
    match e {
        serment_core::Error::Io(m) => ClientError::Input(m),
        other => ClientError::Integrity(other),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Read;

    use super::{MAX_UNLOCKED_LEN, read_announced};

    /// A reader that counts the bytes taken from it.
    struct Counting<R> {
        inner: R,
        taken: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.taken += n as u64;
            Ok(n)
        }
    }

    /// A hostile server's long body (64 MiB here, endless in the attack) is read one byte past
    /// the announced size and no further, then refused (review findings R9 and S12).
    #[test]
    fn a_long_blob_is_read_one_byte_past_the_announced_size_and_refused() {
        let mut body = Counting {
            inner: std::io::repeat(7).take(64 << 20),
            taken: 0,
        };
        let e = read_announced(&mut body, 1000).unwrap_err();
        assert!(matches!(e, serment_core::Error::ExtendedStream), "{e:?}");
        assert_eq!(body.taken, 1001);

        let mut exact = Counting {
            inner: std::io::repeat(7).take(1000),
            taken: 0,
        };
        assert_eq!(read_announced(&mut exact, 1000).unwrap(), vec![7; 1000]);

        let mut untouched = Counting {
            inner: std::io::repeat(7),
            taken: 0,
        };
        let e = read_announced(&mut untouched, MAX_UNLOCKED_LEN + 1).unwrap_err();
        assert!(matches!(e, serment_core::Error::TooLarge { .. }), "{e:?}");
        assert_eq!(untouched.taken, 0);
    }
}
