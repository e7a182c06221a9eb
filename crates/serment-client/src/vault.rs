//! The client flows: register, put, get, share, list, access history. Every check a client makes
//! on what the server returns lives here or in `serment_core`.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use serment_core::document::{self, Metadata, OpenInput, Opened, SealInput};
use serment_core::identity::DeviceRecord;
use serment_core::log::entry::{AccessWhat, EntryKind};
use serment_core::log::note::Checkpoint;
use serment_core::wrap::{self, Recipient, WrapKem, WrappedKey};
use serment_core::{DocId, KeyId};

use crate::api::{AccessEntry, Api, BlobRef, VersionSummary, key_id};
use crate::contacts;
use crate::error::{ClientError, Result};
use crate::fsutil::AtomicFile;
use crate::keystore::Keystore;
use crate::transport::Transport;

/// A keystore connected to its server.
#[derive(Debug)]
pub struct Session {
    /// The open keystore.
    pub ks: Keystore,
    /// The API client, logged in.
    pub api: Api,
    /// The server's largest accepted blob (`/healthz`), once asked.
    max_blob: Option<Option<u64>>,
    /// When the log pin advanced by this session's own commits is written to the keystore.
    pin_save: PinSave,
    /// Since when the keystore holds a pin not yet written (deferred saves only).
    unsaved_since: Option<std::time::Instant>,
}

/// When a session writes the log pin (PROTOCOL.md §11.7) that its own commits advanced to the
/// keystore file (an encrypted write, fsync and rename).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PinSave {
    /// After every write, before it returns (the default; what the CLI does).
    #[default]
    EveryWrite,
    /// At most once per interval, and on [`Session::flush`]: for long-running bulk uploaders
    /// (a lab sending thousands of results an hour). A crash loses at most the interval's pin
    /// progress: the client restarts from the older pin, which still refuses any rollback
    /// below it (`docs/THREAT_MODEL.md`, "Pin persistence"). Never used for reads, key changes
    /// or contacts, which always save.
    Every(std::time::Duration),
}

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

/// What `rewrap --pq` did to one document version (PROTOCOL.md §7.2).
#[derive(Debug, Clone)]
pub struct Rewrapped {
    /// The document.
    pub doc_id: DocId,
    /// The version.
    pub version: u32,
    /// Devices whose classical wrap was replaced by an X-Wing wrap (each a logged wrap entry).
    pub rewrapped: Vec<KeyId>,
    /// The log indices of those wrap entries, in the same order.
    pub log_indices: Vec<u64>,
    /// Devices still holding a classical wrap because their record has no hybrid key yet
    /// (they need `serment id upgrade` first).
    pub still_classical: Vec<KeyId>,
}

/// `transport`, or, when it names no private CA, `transport` plus the CA the keystore recorded.
///
/// # Errors
/// [`ClientError::Input`] if the recorded CA no longer parses.
pub fn effective_transport(ks: &Keystore, transport: &Transport) -> Result<Transport> {
    match (transport.ca_pem(), ks.server_ca()) {
        (None, Some(pem)) => transport.clone().with_ca_pem(pem),
        _ => Ok(transport.clone()),
    }
}

impl Session {
    fn new(ks: Keystore, api: Api) -> Session {
        Session {
            ks,
            api,
            max_blob: None,
            pin_save: PinSave::EveryWrite,
            unsaved_since: None,
        }
    }

    /// Registers this device with `server`, saves the server in the keystore and logs in.
    ///
    /// # Errors
    /// [`ClientError::Server`] (409 if the handle belongs to another identity), transport errors.
    pub fn register(ks: Keystore, server: &str) -> Result<Session> {
        Session::register_with(ks, server, &Transport::default())
    }

    /// [`Session::register`] over `transport`; its private CA, if any, is recorded in the
    /// keystore so later sessions trust it without being told again.
    ///
    /// # Errors
    /// As [`Session::register`]; [`ClientError::Input`] for a URL the transport refuses.
    pub fn register_with(mut ks: Keystore, server: &str, transport: &Transport) -> Result<Session> {
        let mut api = Api::with_transport(server, transport)?;
        let record = ks.own_record()?;
        api.register_device(&record)?;
        ks.set_server(api.base(), true);
        ks.set_server_ca(transport.ca_pem());
        crate::log::pin_log_key(&api, &mut ks)?;
        // Own write: this device's record must be in the log, current under this identity.
        let handle = ks.handle().to_owned();
        let hist = crate::log::key_history(&api, &mut ks, &handle, None)?;
        if hist.identity_key != ks.identity.public_key()
            || !hist.devices.iter().any(|d| d.bytes == record)
        {
            return Err(ClientError::OwnWriteMissing(
                "this device's record is not current in the log's history of its handle".into(),
            ));
        }
        ks.save()?;
        api.login(&ks.device)?;
        Ok(Session::new(ks, api))
    }

    /// Connects to the keystore's server (or `server`, if given), logs in and checks the served
    /// log key against the pinned one.
    ///
    /// # Errors
    /// [`ClientError::NotRegistered`], [`ClientError::LogKeyChanged`], transport and server errors.
    pub fn connect(ks: Keystore, server: Option<&str>) -> Result<Session> {
        Session::connect_with(ks, server, &Transport::default())
    }

    /// [`Session::connect`] over `transport`. When `transport` names no private CA, the one the
    /// keystore recorded at `register` is trusted.
    ///
    /// # Errors
    /// As [`Session::connect`]; [`ClientError::Input`] for a URL the transport refuses.
    pub fn connect_with(
        ks: Keystore,
        server: Option<&str>,
        transport: &Transport,
    ) -> Result<Session> {
        let url = server
            .or(ks.server())
            .ok_or(ClientError::NotRegistered)?
            .to_owned();
        let transport = effective_transport(&ks, transport)?;
        let mut api = Api::with_transport(&url, &transport)?;
        let mut ks = ks;
        // Pinned on first contact; afterwards every session checks the served key against the
        // pin, so a replaced log key is `LogKeyChanged` whatever the command. Checked before
        // logging in: a fresh server with a new log key does not know this device, and "unknown
        // device" would hide the real change.
        let first = ks.log_state(api.base()).is_none();
        crate::log::pin_log_key(&api, &mut ks)?;
        if let Err(e) = api.login(&ks.device) {
            return Err(match e {
                ClientError::DeviceRevoked => revoked_per_log(&api, &mut ks),
                other => other,
            });
        }
        if first {
            ks.save()?;
        }
        Ok(Session::new(ks, api))
    }

    /// Resolves recipient handles to device keys, checking each directory answer against the
    /// pinned identity key.
    ///
    /// # Errors
    /// [`ClientError::UnknownContact`], [`ClientError::KeySubstitution`], [`ClientError::Integrity`].
    pub fn recipients(&mut self, handles: &[String]) -> Result<Vec<Recipient>> {
        let mut out = Vec::new();
        for h in handles {
            if !self.ks.contacts().contains_key(h) {
                return Err(ClientError::UnknownContact(h.clone()));
            }
            let (c, _) = contacts::add(&self.api, &mut self.ks, h)?;
            out.extend(c.devices.iter().map(Recipient::from));
        }
        self.ks.save()?;
        Ok(out)
    }

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
        let sealed_len = self.sealed_len(&metadata, doc_id, doc_version, recipients)?;
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
            let wraps: Vec<Vec<u8>> = sealed.wraps.iter().map(|(_, w)| w.clone()).collect();
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
            let wraps: Vec<Vec<u8>> = sealed.wraps.iter().map(|(_, w)| w.clone()).collect();
            let committed =
                self.commit_uploaded(&doc_id, doc_version, blob_id, &wraps, log_from)?;
            (sealed, committed)
        };
        let expected: Vec<(EntryKind, &[u8])> = sealed
            .wraps
            .iter()
            .map(|(_, w)| (EntryKind::Wrap, w.as_slice()))
            .collect();
        crate::log::check_own_commit(&self.api, &mut self.ks, &committed, &expected)?;
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
                std::thread::sleep(COMMIT_RETRY_DELAY);
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

    /// Chooses when this session's own commits write the log pin to the keystore.
    pub fn set_pin_save(&mut self, when: PinSave) {
        self.pin_save = when;
    }

    /// Writes the keystore if a deferred pin save is pending ([`PinSave::Every`]). Call it
    /// before a bulk uploader exits.
    ///
    /// # Errors
    /// [`ClientError::Io`] or [`ClientError::Keystore`] if the keystore cannot be written.
    pub fn flush(&mut self) -> Result<()> {
        if self.unsaved_since.take().is_some() {
            self.ks.save()?;
        }
        Ok(())
    }

    /// Saves the keystore after an own commit, now or when the deferral interval has passed.
    fn save_pin(&mut self) -> Result<()> {
        match self.pin_save {
            PinSave::EveryWrite => self.ks.save(),
            PinSave::Every(interval) => {
                let since = *self
                    .unsaved_since
                    .get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= interval {
                    self.flush()?;
                }
                Ok(())
            }
        }
    }

    /// The exact sealed size of a version (PROTOCOL.md §6.1), in bytes, before sealing it.
    fn sealed_len(
        &self,
        metadata: &Metadata,
        doc_id: DocId,
        doc_version: u32,
        recipients: &[Recipient],
    ) -> Result<u64> {
        let meta_len = metadata.to_json().map_err(ClientError::Integrity)?.len();
        let padded = document::padded_len(meta_len, metadata.content_length)
            .map_err(ClientError::Integrity)?;
        let mut ids: Vec<KeyId> = recipients.iter().map(|r| r.device_id).collect();
        ids.push(self.ks.device.id());
        ids.sort();
        ids.dedup();
        Ok(document::Header {
            suite: serment_core::Suite::CURRENT,
            doc_id,
            doc_version,
            author_device: self.ks.device.id(),
            nonce_prefix: [0; 7],
            padded_len: padded,
        }
        .sealed_len(ids.len()))
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

    /// Finds the author device's verified record among this user and the pinned contacts,
    /// refreshing contacts from the directory (pin-checked) if needed.
    fn author_record(&mut self, device: &KeyId) -> Result<(String, DeviceRecord)> {
        if *device == self.ks.device.id() {
            return Ok((self.ks.handle().to_owned(), self.ks.own_device_record()?));
        }
        let handles: Vec<String> = self.ks.contacts().keys().cloned().collect();
        for h in &handles {
            if let Some(r) = contacts::pinned(&self.ks, h)?
                .devices
                .into_iter()
                .find(|d| d.device_id() == *device)
            {
                return Ok((h.clone(), r));
            }
        }
        for h in &handles {
            let (c, _) = contacts::add(&self.api, &mut self.ks, h)?;
            if let Some(r) = c.devices.into_iter().find(|d| d.device_id() == *device) {
                self.ks.save()?;
                return Ok((h.clone(), r));
            }
        }
        Err(ClientError::UnknownAuthor(device.to_string()))
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
        self.get_checked(doc_id, version, out)
            .map_err(ClientError::on_read)
    }

    /// [`Session::get`] before the server's typed read errors are mapped.
    fn get_checked(
        &mut self,
        doc_id: &DocId,
        version: Option<u32>,
        out: &mut dyn Write,
    ) -> Result<GetResult> {
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
        let served = WrappedKey::decode(&wrap).map_err(ClientError::Integrity)?;
        let opened = if served.recipient == self.ks.device.id() {
            document::open(
                OpenInput {
                    device: &self.ks.device,
                    wrap: &wrap,
                    author_signing_key: &record.signing_key,
                    expected: Some((*doc_id, version)),
                },
                BufReader::with_capacity(256 * 1024, blob),
                out,
            )
            .map_err(ClientError::Integrity)?
        } else {
            // A wrap to a care team this user belongs to (PROTOCOL.md §12.3): opened with the
            // epoch key, after the team's chain is verified.
            let device = self.ks.device.clone();
            let input = OpenInput {
                device: &device,
                wrap: &wrap,
                author_signing_key: &record.signing_key,
                expected: Some((*doc_id, version)),
            };
            self.open_team_wrap(&served, input, blob, out)?.0
        };
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
        // Verified: remember what `ls` shows of it (saved with the keystore by the caller).
        self.ks.remember_document(
            &doc_id.to_string(),
            version,
            crate::keystore::KnownDocument::from_metadata(&opened.metadata, &author_device),
        );
        Ok(GetResult {
            opened,
            author,
            kem: w.kem,
        })
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

    /// Shares a version this device authored with more contacts: unwraps its own wrap, checks the
    /// wrap is its own, and wraps the DEK for each new recipient device.
    ///
    /// # Errors
    /// [`ClientError::Integrity`] if the own wrap fails; contact and server errors.
    pub fn share(
        &mut self,
        doc_id: &DocId,
        version: Option<u32>,
        to: &[String],
    ) -> Result<Vec<KeyId>> {
        let version = match version {
            Some(v) => v,
            None => self.latest_version(doc_id)?,
        };
        let recipients = self.recipients(to)?;
        // Only the author may share (PROTOCOL.md §8.3): say so before fetching anything, rather
        // than fail later on the wrap's signature as if it were tampering. The listing is only a
        // hint; the author's own signature on the wrap below is what is relied on.
        let me = self.ks.device.id();
        // The author verified when this device sealed or opened the version, else the listing.
        let cached_author = self
            .ks
            .known_document(&doc_id.to_string(), version)
            .map(|k| k.author_device.clone())
            .filter(|a| !a.is_empty());
        let listed_author = match cached_author {
            Some(a) => Some(a),
            None => self
                .api
                .list_documents()?
                .into_iter()
                .find(|d| d.doc_id == doc_id.to_string() && d.doc_version == version)
                .map(|d| d.author_device),
        };
        if let Some(author) = listed_author
            && author != me.to_string()
        {
            return Err(ClientError::NotAuthor {
                doc_id: doc_id.to_string(),
                author_device: author,
            });
        }
        // The author's own wrap fetch is an access like any other, co-signed by this device's
        // receipt, so that `audit` finds no unreceipted access (PROTOCOL.md §11.5).
        let origin = crate::log::trust(&self.api, &self.ks)?.log_key.name;
        let rc = crate::log::receipt(&self.ks, &origin, doc_id, version, AccessWhat::Wrap)?;
        let (info, wrap_bytes) = self.api.version_with(doc_id, version, Some(&rc), None)?;
        if info.author_device != me.to_string() {
            return Err(ClientError::NotAuthor {
                doc_id: doc_id.to_string(),
                author_device: info.author_device,
            });
        }
        let own = WrappedKey::decode(&wrap_bytes).map_err(ClientError::Integrity)?;
        if own.doc_id != *doc_id || own.doc_version != version {
            return Err(ClientError::Integrity(
                serment_core::Error::ContextMismatch(
                    "the server returned a wrap for another document",
                ),
            ));
        }
        own.verify_signature(&self.ks.device.signing_public_key())
            .map_err(ClientError::Integrity)?;
        let dek = wrap::unwrap_dek(&own, &self.ks.device).map_err(ClientError::Integrity)?;
        // Sharing again with a recipient that already holds a wrap is not an error: only new
        // devices get one (as the proven log says).
        let already = crate::log::wrapped_devices(&self.api, &mut self.ks, doc_id, version)?;
        let mut rng = serment_core::rng::os_rng();
        let mut wraps = Vec::new();
        let mut ids = Vec::new();
        for r in recipients
            .iter()
            .filter(|r| !already.contains(&r.device_id))
        {
            wraps.push(
                wrap::wrap_dek(
                    &dek,
                    doc_id,
                    version,
                    &own.header_hash,
                    r,
                    &self.ks.device,
                    &mut rng,
                )
                .map_err(ClientError::Integrity)?,
            );
            ids.push(r.device_id);
        }
        if wraps.is_empty() {
            self.ks.save()?;
            return Ok(ids);
        }
        let indices = self.api.add_wraps(doc_id, version, &wraps)?;
        let expected: Vec<(EntryKind, &[u8])> = wraps
            .iter()
            .map(|w| (EntryKind::Wrap, w.as_slice()))
            .collect();
        crate::log::check_own_writes(&self.api, &mut self.ks, &indices, &expected)?;
        self.ks.save()?;
        Ok(ids)
    }

    /// `serment rewrap --pq` (PROTOCOL.md §7.2, issue 15): for each version this device authored
    /// (all, or those of `docs`), re-wraps the DEK with X-Wing for every recipient device whose
    /// current wrap is classical and whose record, proven by the log, now carries a hybrid key.
    /// Each new wrap is a logged wrap entry, checked in the log; the server deletes the classical
    /// wrap it replaces in the same transaction. Only the author device may share in version 1,
    /// so only it may re-wrap.
    ///
    /// # Errors
    /// [`ClientError::NotAuthor`] for a named document this device did not author;
    /// [`ClientError::Integrity`] if its own wrap fails; contact, log and server errors.
    pub fn rewrap_pq(&mut self, docs: Option<&[DocId]>) -> Result<Vec<Rewrapped>> {
        let me = self.ks.device.id();
        let listing = self.api.list_documents()?;
        let mut targets: Vec<(DocId, u32)> = Vec::new();
        for d in &listing {
            let id = DocId::from_hex(&d.doc_id)
                .map_err(|e| ClientError::BadResponse(format!("listed doc_id: {e}")))?;
            if docs.is_some_and(|want| !want.contains(&id)) {
                continue;
            }
            if d.author_device != me.to_string() {
                if docs.is_some() {
                    return Err(ClientError::NotAuthor {
                        doc_id: d.doc_id.clone(),
                        author_device: d.author_device.clone(),
                    });
                }
                continue;
            }
            targets.push((id, d.doc_version));
        }
        if let Some(want) = docs
            && let Some(missing) = want.iter().find(|w| !targets.iter().any(|(t, _)| t == *w))
        {
            return Err(ClientError::NotShared(format!(
                "document {missing} is not among the documents you can see"
            )));
        }
        // The recipients' current records, from the proven key histories (never the directory
        // alone, §7.1), and this device's own.
        let mut hybrid: std::collections::HashMap<KeyId, Recipient> =
            std::collections::HashMap::new();
        if self.ks.device.hybrid_public_key().is_some() {
            hybrid.insert(me, Recipient::from_device(&self.ks.device));
        }
        let handles: Vec<String> = self.ks.contacts().keys().cloned().collect();
        for h in &handles {
            let (c, _) = contacts::add(&self.api, &mut self.ks, h)?;
            for d in c.devices.iter().filter(|d| d.hybrid_key.is_some()) {
                hybrid.insert(d.device_id(), Recipient::from(d));
            }
        }
        let origin = crate::log::trust(&self.api, &self.ks)?.log_key.name;
        let mut rng = serment_core::rng::os_rng();
        let mut out = Vec::new();
        for (doc_id, version) in targets {
            let kems = crate::log::wrap_kems(&self.api, &mut self.ks, &doc_id, version)?;
            let mut todo: Vec<&Recipient> = Vec::new();
            let mut still_classical = Vec::new();
            for (device, kem) in &kems {
                if kem.is_hybrid() {
                    continue;
                }
                match hybrid.get(device) {
                    Some(r) => todo.push(r),
                    None => still_classical.push(*device),
                }
            }
            todo.sort_by_key(|r| r.device_id);
            still_classical.sort();
            if todo.is_empty() {
                out.push(Rewrapped {
                    doc_id,
                    version,
                    rewrapped: Vec::new(),
                    log_indices: Vec::new(),
                    still_classical,
                });
                continue;
            }
            // The DEK from this device's own wrap, fetched with a receipt as `share` does.
            let rc = crate::log::receipt(&self.ks, &origin, &doc_id, version, AccessWhat::Wrap)?;
            let (info, wrap_bytes) = self.api.version_with(&doc_id, version, Some(&rc), None)?;
            if info.author_device != me.to_string() {
                return Err(ClientError::NotAuthor {
                    doc_id: doc_id.to_string(),
                    author_device: info.author_device,
                });
            }
            let own = WrappedKey::decode(&wrap_bytes).map_err(ClientError::Integrity)?;
            if own.doc_id != doc_id || own.doc_version != version {
                return Err(ClientError::Integrity(
                    serment_core::Error::ContextMismatch(
                        "the server returned a wrap for another document",
                    ),
                ));
            }
            own.verify_signature(&self.ks.device.signing_public_key())
                .map_err(ClientError::Integrity)?;
            let dek = wrap::unwrap_dek(&own, &self.ks.device).map_err(ClientError::Integrity)?;
            let mut wraps = Vec::with_capacity(todo.len());
            for r in &todo {
                wraps.push(
                    wrap::wrap_dek(
                        &dek,
                        &doc_id,
                        version,
                        &own.header_hash,
                        r,
                        &self.ks.device,
                        &mut rng,
                    )
                    .map_err(ClientError::Integrity)?,
                );
            }
            let indices = self.api.add_wraps(&doc_id, version, &wraps)?;
            let expected: Vec<(EntryKind, &[u8])> = wraps
                .iter()
                .map(|w| (EntryKind::Wrap, w.as_slice()))
                .collect();
            crate::log::check_own_writes(&self.api, &mut self.ks, &indices, &expected)?;
            out.push(Rewrapped {
                doc_id,
                version,
                rewrapped: todo.iter().map(|r| r.device_id).collect(),
                log_indices: indices,
                still_classical,
            });
        }
        self.ks.save()?;
        Ok(out)
    }

    /// `serment id upgrade` (PROTOCOL.md §4, §7.1; issue 15): gives this device an X-Wing key,
    /// registers the suite-3 record that advertises it (logged, replacing the classical record)
    /// and checks it is current in the log. Returns the log index from which classical wraps to
    /// this device are refused, and whether this call added the key (`false`: it had one, and
    /// this only finished an upgrade interrupted after the key was saved, or did nothing).
    /// The new secret is saved before the record leaves the device, so an interruption never
    /// loses a key the log advertises.
    ///
    /// # Errors
    /// Server errors; [`ClientError::OwnWriteMissing`] if the log does not show the new record.
    pub fn upgrade_device(&mut self) -> Result<(u64, bool)> {
        if let Some(since) = self.ks.hybrid_since() {
            return Ok((since, false));
        }
        let added = self.ks.add_hybrid_key();
        self.ks.save()?;
        let record = self.ks.own_record()?;
        self.api.register_device(&record)?;
        let handle = self.ks.handle().to_owned();
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        let since = hist
            .hybrid_since(&self.ks.device.id())
            .filter(|_| hist.devices.iter().any(|d| d.bytes == record))
            .ok_or_else(|| {
                ClientError::OwnWriteMissing(
                    "this device's hybrid record is not current in the log's history of its handle"
                        .into(),
                )
            })?;
        self.ks.set_hybrid_since(since);
        self.ks.save()?;
        Ok((since, added))
    }

    /// Revokes one of this identity's devices (PROTOCOL.md §11.3) and checks the revocation is
    /// in the log.
    ///
    /// # Errors
    /// Server errors; [`ClientError::OwnWriteMissing`] if the log does not show it.
    pub fn revoke_device(&mut self, device: &KeyId) -> Result<u64> {
        let rev = serment_core::log::entry::Revocation::sign(
            self.ks.handle(),
            &self.ks.identity,
            device,
            crate::now_secs(),
        )
        .map_err(|e| ClientError::Input(e.to_string()))?;
        let idx = self.api.revoke(&rev)?;
        crate::log::check_own_writes(
            &self.api,
            &mut self.ks,
            &idx,
            &[(EntryKind::Revocation, &rev)],
        )?;
        self.ks.save()?;
        Ok(idx.first().copied().unwrap_or_default())
    }

    /// Rotates this identity's key (PROTOCOL.md §11.3): a new identity key signs a new record for
    /// this device; the rotation is signed by both keys; other devices must be re-enrolled. The
    /// keystore holds the new key once the log shows the rotation.
    ///
    /// # Errors
    /// Server errors; [`ClientError::OwnWriteMissing`].
    pub fn rotate_identity(&mut self) -> Result<Vec<u64>> {
        let new = serment_core::identity::IdentitySecret::generate();
        let rot = serment_core::log::entry::Rotation::sign(
            self.ks.handle(),
            &self.ks.identity,
            &new,
            crate::now_secs(),
        )
        .map_err(|e| ClientError::Input(e.to_string()))?;
        let old = std::mem::replace(&mut self.ks.identity, new);
        let record = self.ks.own_record()?;
        let idx = match self.api.rotate(&rot, std::slice::from_ref(&record)) {
            Ok(i) => i,
            Err(e) => {
                self.ks.identity = old;
                return Err(e);
            }
        };
        crate::log::check_own_writes(
            &self.api,
            &mut self.ks,
            &idx,
            &[(EntryKind::Rotation, &rot), (EntryKind::Device, &record)],
        )?;
        self.ks.save()?;
        Ok(idx)
    }

    /// Removes a recipient device from a version this device authored (PROTOCOL.md §11.3).
    ///
    /// # Errors
    /// Server errors; [`ClientError::OwnWriteMissing`].
    pub fn remove_recipient(
        &mut self,
        doc_id: &DocId,
        version: u32,
        device: &KeyId,
    ) -> Result<u64> {
        let rm = serment_core::log::entry::Removal::sign(
            doc_id,
            version,
            device,
            &self.ks.device,
            crate::now_secs(),
        );
        let idx = self.api.remove_recipient(doc_id, version, &rm)?;
        crate::log::check_own_writes(&self.api, &mut self.ks, &idx, &[(EntryKind::Removal, &rm)])?;
        self.ks.save()?;
        Ok(idx.first().copied().unwrap_or_default())
    }

    /// Audits every document this device may see: those the server lists, and those this device
    /// knows of on its own (sealed, opened or audited before), so that a server cannot hide
    /// evidence by leaving a document out of its listing (PROTOCOL.md §11.5).
    ///
    /// # Errors
    /// As [`Session::audit`]. A document known only to this device that the server no longer
    /// serves (403 or 404: hidden, or this device was removed as a recipient) is reported in
    /// [`AuditAll::unavailable`], not as an error.
    pub fn audit_all(&mut self) -> Result<AuditAll> {
        use std::collections::BTreeSet;
        let listed: BTreeSet<String> = self.list()?.into_iter().map(|d| d.doc_id).collect();
        let mut known: BTreeSet<String> = self.ks.known_document_ids().map(str::to_owned).collect();
        if let Some(state) = self.ks.log_state(self.api.base()) {
            known.extend(state.doc_heads.keys().cloned());
        }
        let unlisted: BTreeSet<String> = known.difference(&listed).cloned().collect();
        let mut out = AuditAll {
            documents: Vec::new(),
            unlisted: unlisted.iter().cloned().collect(),
            unavailable: Vec::new(),
        };
        for id in listed.union(&known) {
            let doc = DocId::from_hex(id)
                .map_err(|_| ClientError::BadResponse(format!("doc_id {id:?}")))?;
            match self.audit(&doc) {
                Ok(lines) => out.documents.push((doc, lines)),
                Err(ClientError::Server {
                    status: 403 | 404, ..
                }) if unlisted.contains(id) => out.unavailable.push(doc),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Who opened a document, each line proven by inclusion (PROTOCOL.md §11.6).
    ///
    /// # Errors
    /// [`ClientError::Log`] for anything that does not check out.
    pub fn audit(&mut self, doc_id: &DocId) -> Result<Vec<crate::log::AuditLine>> {
        let r = crate::log::audit_document(&self.api, &mut self.ks, doc_id);
        self.ks.save()?;
        r
    }

    /// Brings the pinned checkpoint up to date (consistency-checked) and returns its note, for
    /// gossip with other clients ([`Session::compare_checkpoint`]).
    ///
    /// # Errors
    /// [`ClientError::Log`].
    pub fn checkpoint_note(&mut self) -> Result<String> {
        self.sync_log()?;
        self.ks
            .log_state(self.api.base())
            .and_then(|s| s.checkpoint.clone())
            .ok_or(ClientError::NotRegistered)
    }

    /// Compares another client's checkpoint with this one's (gossip, PROTOCOL.md §11.8).
    ///
    /// # Errors
    /// [`ClientError::SplitView`].
    pub fn compare_checkpoint(&mut self, other_note: &str) -> Result<()> {
        crate::log::compare_checkpoints(&self.api, &mut self.ks, other_note)
    }

    /// Syncs the log's checkpoint ([`crate::log::sync`]: signature, quorum, consistency with the
    /// pin) and saves the keystore when the pin advanced, so that a later rollback of the server
    /// is detected even by a client that only reads.
    ///
    /// # Errors
    /// [`ClientError::Log`] (rollback, fork, no quorum), keystore and server errors.
    pub fn sync_log(&mut self) -> Result<Checkpoint> {
        let before = crate::log::pinned(&self.api, &self.ks)?.map(|c| c.size);
        let cp = crate::log::sync(&self.api, &mut self.ks, 0)?;
        if before.is_none_or(|b| cp.size > b) {
            self.ks.save()?;
        }
        Ok(cp)
    }

    /// Documents this device authored or may read; the log's checkpoint is synced first
    /// ([`Session::sync_log`]), so a rolled-back or forked server is refused.
    ///
    /// # Errors
    /// [`ClientError::Log`], server errors.
    pub fn list(&mut self) -> Result<Vec<VersionSummary>> {
        self.sync_log()?;
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

/// The result of [`Session::audit_all`].
#[derive(Debug, Clone)]
pub struct AuditAll {
    /// Each document audited with its proven accesses, by document id.
    pub documents: Vec<(DocId, Vec<crate::log::AuditLine>)>,
    /// Documents (hex) this device knows of that the server's listing left out.
    pub unlisted: Vec<String>,
    /// Unlisted documents the server no longer serves at all.
    pub unavailable: Vec<DocId>,
}

/// The server refused this device as revoked: believed only if the log proves it (the history
/// of the handle no longer lists the device); otherwise the server contradicts its own log.
fn revoked_per_log(api: &Api, ks: &mut Keystore) -> ClientError {
    let handle = ks.handle().to_owned();
    let me = ks.device.id();
    match crate::log::key_history(api, ks, &handle, None) {
        Ok(h) if h.devices.iter().any(|d| d.device_id() == me) => {
            ClientError::Log(serment_core::Error::History {
                reason: "the server refuses this device as revoked, but the log proves no revocation",
            })
        }
        Ok(_) => ClientError::DeviceRevoked,
        Err(e) => e,
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
