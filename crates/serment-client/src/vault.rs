//! The session: a keystore connected to its server (register, connect, login), the contacts it
//! resolves, its log view (sync, audit, checkpoints) and when it saves its pins. The flows on
//! documents are in [`crate::documents`], identity administration in [`crate::identity_admin`].

use serment_core::identity::DeviceRecord;
use serment_core::log::note::Checkpoint;
use serment_core::wrap::Recipient;
use serment_core::{DocId, KeyId};

use crate::api::Api;
use crate::contacts;
use crate::error::{ClientError, Result};
use crate::keystore::Keystore;
#[cfg(feature = "native")]
use crate::transport::Transport;

pub use crate::documents::{GetResult, PutResult};
pub use crate::sharing::Rewrapped;

/// A keystore connected to its server.
#[derive(Debug)]
pub struct Session {
    /// The open keystore.
    pub ks: Keystore,
    /// The API client, logged in.
    pub api: Api,
    /// The server's largest accepted blob (`/healthz`), once asked.
    pub(crate) max_blob: Option<Option<u64>>,
    /// When the log pin advanced by this session's own commits is written to the keystore.
    pin_save: PinSave,
    /// Since when the keystore holds a pin not yet written (deferred saves only).
    unsaved_since: Option<web_time::Instant>,
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

/// `transport`, or, when it names no private CA, `transport` plus the CA the keystore recorded.
///
/// # Errors
/// [`ClientError::Input`] if the recorded CA no longer parses.
#[cfg(feature = "native")]
pub fn effective_transport(ks: &Keystore, transport: &Transport) -> Result<Transport> {
    match (transport.ca_pem(), ks.server_ca()) {
        (None, Some(pem)) => transport.clone().with_ca_pem(pem),
        _ => Ok(transport.clone()),
    }
}

impl Session {
    pub(crate) fn new(ks: Keystore, api: Api) -> Session {
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
    #[cfg(feature = "native")]
    pub fn register(ks: Keystore, server: &str) -> Result<Session> {
        Session::register_with(ks, server, &Transport::default())
    }

    /// [`Session::register`] over `transport`; its private CA, if any, is recorded in the
    /// keystore so later sessions trust it without being told again.
    ///
    /// # Errors
    /// As [`Session::register`]; [`ClientError::Input`] for a URL the transport refuses.
    #[cfg(feature = "native")]
    pub fn register_with(mut ks: Keystore, server: &str, transport: &Transport) -> Result<Session> {
        let api = Api::with_transport(server, transport)?;
        ks.set_server_ca(transport.ca_pem());
        Session::register_over(ks, api)
    }

    /// [`Session::register`] over an [`Api`] built on any transport ([`Api::with_http`]).
    ///
    /// # Errors
    /// As [`Session::register`].
    pub fn register_over(mut ks: Keystore, mut api: Api) -> Result<Session> {
        let record = ks.own_record()?;
        api.register_device(&record)?;
        ks.set_server(api.base(), true);
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
    #[cfg(feature = "native")]
    pub fn connect(ks: Keystore, server: Option<&str>) -> Result<Session> {
        Session::connect_with(ks, server, &Transport::default())
    }

    /// [`Session::connect`] over `transport`. When `transport` names no private CA, the one the
    /// keystore recorded at `register` is trusted.
    ///
    /// # Errors
    /// As [`Session::connect`]; [`ClientError::Input`] for a URL the transport refuses.
    #[cfg(feature = "native")]
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
        let api = Api::with_transport(&url, &transport)?;
        Session::connect_over(ks, api)
    }

    /// [`Session::connect`] over an [`Api`] built on any transport ([`Api::with_http`]): checks
    /// the served log key against the pin (pinning it on first contact) and logs in.
    ///
    /// # Errors
    /// As [`Session::connect`].
    pub fn connect_over(mut ks: Keystore, mut api: Api) -> Result<Session> {
        // Pinned on first contact; afterwards every session checks the served key against the
        // pin, so a replaced log key is `LogKeyChanged` whatever the command. Checked before
        // logging in: a fresh server with a new log key does not know this device, and "unknown
        // device" would hide the real change.
        let first = ks.log_state(api.base()).is_none();
        crate::log::pin_log_key(&api, &mut ks)?;
        if let Err(e) = api.login(&ks.device) {
            return Err(match e {
                ClientError::DeviceRevoked => revoked_per_log(&api, &mut ks),
                // Unknown to a restored server: this device's registration was in the lost
                // range (newcomer 6 N3), whether or not it accepted the restore yet.
                ClientError::Server { status: 404, .. }
                    if ks
                        .log_state(api.base())
                        .is_some_and(|st| !st.accepted_losses.is_empty())
                        || api.log_loss_statements().is_ok_and(|l| !l.is_empty()) =>
                {
                    let statement = ks
                        .log_state(api.base())
                        .and_then(|st| st.accepted_losses.last())
                        .map(|a| a.statement.clone());
                    ClientError::registration_lost(api.base(), statement.as_deref())
                }
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
    pub(crate) fn save_pin(&mut self) -> Result<()> {
        match self.pin_save {
            PinSave::EveryWrite => self.ks.save(),
            PinSave::Every(interval) => {
                let since = *self
                    .unsaved_since
                    .get_or_insert_with(web_time::Instant::now);
                if since.elapsed() >= interval {
                    self.flush()?;
                }
                Ok(())
            }
        }
    }

    /// Finds the author device's verified record among this user and the pinned contacts,
    /// refreshing contacts from the directory (pin-checked) if needed.
    pub(crate) fn author_record(&mut self, device: &KeyId) -> Result<(String, DeviceRecord)> {
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
        // Another device of this identity (a linked device, PROTOCOL.md §4.1), proven in the log.
        // Asked after the pinned contacts, so that reading a contact's document costs no second
        // log sync (one checkpoint per operation: tests/one_sync_per_operation.rs).
        if let Some(r) = self.own_device_in_log(device)? {
            return Ok((self.ks.handle().to_owned(), r));
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
            lost: Vec::new(),
        };
        for id in listed.union(&known) {
            let doc = DocId::from_hex(id)
                .map_err(|_| ClientError::BadResponse(format!("doc_id {id:?}")))?;
            match self.audit(&doc) {
                Ok(lines) => out.documents.push((doc, lines)),
                Err(ClientError::Server {
                    status: 403 | 404, ..
                }) if unlisted.contains(id) => {
                    // Named by a loss statement this device accepted: lost in the restore, not
                    // hidden (newcomer 6 N5).
                    match self
                        .ks
                        .log_state(self.api.base())
                        .and_then(|s| s.lost_document(id))
                    {
                        Some((a, _)) => out.lost.push((doc, a.statement.clone())),
                        None => out.unavailable.push(doc),
                    }
                }
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
    /// Unlisted documents the server no longer serves that a loss statement this device
    /// accepted names (PROTOCOL.md §11.11), with the statement's id: lost in the restore.
    pub lost: Vec<(DocId, String)>,
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
