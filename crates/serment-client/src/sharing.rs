//! Sharing on a [`Session`]: adding recipients to a version, re-wrapping for hybrid keys
//! (`rewrap --pq`, PROTOCOL.md §7.2) and removing a recipient; each wrap or removal is a
//! logged entry the client finds in the log (its own write).

use serment_core::log::entry::{AccessWhat, EntryKind};
use serment_core::wrap::{self, Recipient, WrappedKey};
use serment_core::{DocId, KeyId};

use crate::contacts;
use crate::error::{ClientError, Result};
use crate::vault::Session;

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

impl Session {
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
}
