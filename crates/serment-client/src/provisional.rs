//! Provisional recipients (PROTOCOL.md §15, issue 17 §1): a lab seals for a patient who has not
//! registered yet (`put --to-unregistered email:ADDRESS[,ins:INS]`), and the patient claims
//! (`serment claim --code …`).
//!
//! What the lab relies on: a provisional recipient it finds on the server for a contact is used
//! only if its record is proven in the log (inclusion against the pinned checkpoint's
//! successor), signed by a current device of the lab's own identity, and tagged for this very
//! contact; its chain holds at most one claim, signed by the provisional key. So the server can
//! neither swap the key the lab seals to nor make the lab send to someone who did not hold the
//! claim code and the server's share together.
//!
//! What the patient relies on: the escrow opens only with the claim code and the share; the keys
//! inside must be those of the record proven in the log; its claim is checked in the log as an
//! own write, as is every re-wrap.

use serment_api::{
    ClaimRequest, CodeSent, CreateProvisionalRequest, HistoryResponse, OpenProvisionalRequest,
    OpenedProvisional, ProvisionalAppended, ProvisionalList, ProvisionalWraps, SendCodeRequest,
};
use serment_core::document::Metadata;
use serment_core::log::entry::{EntryKind, Subject};
use serment_core::log::history::check_chain;
use serment_core::provisional::{
    Claim, ClaimCode, Contact, ProvisionalRecord, ProvisionalState, SERVER_SHARE_LEN, contact_key,
    open_escrow, replay_provisional, seal_escrow,
};
use serment_core::wrap::{self, Recipient, WrappedKey};
use serment_core::{DocId, KeyId};
use zeroize::Zeroizing;

use crate::api::{Api, b64d, b64e, key_id};
use crate::documents::PutResult;
use crate::error::{ClientError, Result};
use crate::vault::Session;

fn integrity(reason: &'static str) -> ClientError {
    ClientError::Integrity(serment_core::Error::ContextMismatch(reason))
}

/// Where a document for an unregistered contact goes.
#[derive(Debug)]
pub enum UnregisteredTarget {
    /// The contact claimed its provisional recipient: seal to this handle's devices.
    Claimed {
        /// The claimant's handle.
        handle: String,
        /// The provisional recipient that was claimed.
        provisional_id: KeyId,
    },
    /// A provisional recipient, proven in the log.
    Provisional {
        /// Its record.
        record: ProvisionalRecord,
        /// The claim code, when this call created it (print it for the patient, once).
        new_code: Option<ClaimCode>,
    },
}

/// The outcome of [`Session::put_to_unregistered`]. `Debug` leaves the claim code out.
pub struct UnregisteredPut {
    /// The document put.
    pub put: PutResult,
    /// The provisional recipient sealed to (or claimed, if `claimed_by`).
    pub provisional_id: KeyId,
    /// The claim code to give the patient, if a new provisional recipient was made.
    pub claim_code: Option<Zeroizing<String>>,
    /// The handle the document went to directly, because the contact claimed.
    pub claimed_by: Option<String>,
}

impl std::fmt::Debug for UnregisteredPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnregisteredPut")
            .field("put", &self.put)
            .field("provisional_id", &self.provisional_id)
            .field(
                "claim_code",
                &self.claim_code.as_ref().map(|_| "<redacted>"),
            )
            .field("claimed_by", &self.claimed_by)
            .finish()
    }
}

/// The outcome of [`Session::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOutcome {
    /// The provisional recipient claimed.
    pub provisional_id: KeyId,
    /// The log index of the claim (kind 11).
    pub claim_index: u64,
    /// Whether this call logged the claim (false: it was this identity's already; re-wraps
    /// resumed).
    pub newly_claimed: bool,
    /// Versions whose key this call re-wrapped to this identity's devices.
    pub versions: usize,
    /// Wraps posted (each a logged wrap entry, kind 4).
    pub wraps: usize,
    /// Log entries this call appended: the claim (if new) and the wraps.
    pub log_entries: usize,
    /// The handle under which the log holds the lab device that made the provisional recipient
    /// (the newcomer's H27: the patient is told whom to add as a contact to read the documents).
    /// The server names the handle; the client checks that the device is current in that
    /// handle's proven key history. Not pinned: the patient compares it with the handle on the
    /// receipt, then runs `contact add` (a dishonest server can log one device key under a second
    /// identity, visible to any auditor of the log, and name that one). `None` when the device is
    /// no longer registered (revoked since), or when the server did not answer the look-up.
    pub lab: Option<String>,
}

impl Api {
    /// `POST /v1/documents/{id}/versions/{v}/provisional-wraps` (author only, PROTOCOL.md §15).
    ///
    /// # Errors
    /// [`ClientError::Server`].
    pub fn add_provisional_wraps(
        &self,
        doc_id: &DocId,
        version: u32,
        wraps: &[Vec<u8>],
    ) -> Result<Vec<u64>> {
        let wraps: Vec<String> = wraps.iter().map(|w| b64e(w)).collect();
        let v: serment_api::AddWrapsResponse = self.post_json(
            &format!("/v1/documents/{doc_id}/versions/{version}/provisional-wraps"),
            &serment_api::AddWrapsRequest { wraps },
            true,
        )?;
        Ok(v.log_indices)
    }

    /// `POST /v1/provisional/open` (bearer): proves the one-time code `otp` for the provisional
    /// recipient whose claim code has the lookup id `lookup`; the answer carries the server's
    /// share and the escrow (PROTOCOL.md §15.2). Nothing in it is checked here.
    ///
    /// # Errors
    /// [`ClientError::Server`]: 403 (wrong, used or expired code), 404, 409 (claimed by another
    /// identity), 429 (too many attempts: retry later).
    pub fn open_provisional(&self, lookup: &[u8; 32], otp: &str) -> Result<OpenedProvisional> {
        self.post_json(
            "/v1/provisional/open",
            &OpenProvisionalRequest {
                lookup: hex::encode(lookup),
                code: otp.trim().to_owned(),
            },
            true,
        )
    }

    /// `POST /v1/provisional/{id}/claim` (bearer): posts a claim (kind 11). Returns its log
    /// index (to check as an own write).
    ///
    /// # Errors
    /// [`ClientError::Server`]: 400 (a claim that does not verify or names another recipient,
    /// device or handle), 403 (no proven one-time code), 409 (already claimed).
    pub fn post_claim(&self, id: &KeyId, claim: &[u8]) -> Result<u64> {
        let done: ProvisionalAppended = self.post_json(
            &format!("/v1/provisional/{id}/claim"),
            &ClaimRequest { claim: b64e(claim) },
            true,
        )?;
        Ok(done.log_index)
    }

    /// `POST /v1/provisional/code`: asks the server to email a one-time code to the contact of
    /// the provisional recipient of `code` (no login needed). Returns the code's lifetime in
    /// seconds.
    ///
    /// # Errors
    /// [`ClientError::Server`]: 404 (no such claim code), 409 (already claimed), 429 (too many:
    /// retry later), 503 `smtp_not_configured`.
    pub fn request_claim_otp(&self, code: &ClaimCode) -> Result<u64> {
        let r: CodeSent = self.post_json(
            "/v1/provisional/code",
            &SendCodeRequest {
                lookup: hex::encode(code.lookup()),
            },
            false,
        )?;
        Ok(r.expires_in)
    }
}

impl Session {
    /// The provisional recipient's chain, proven against a checkpoint that extends the pinned
    /// one, replayed.
    fn proven_provisional(&mut self, id: &KeyId) -> Result<ProvisionalState> {
        let cp = crate::log::sync(&self.api, &mut self.ks, 0)?;
        let h: HistoryResponse = self
            .api
            .get_json(&format!("/v1/log/provisional/{id}?size={}", cp.size), false)?;
        let cp = crate::log::accept_note(&self.api, &mut self.ks, &h.checkpoint)?;
        if cp.size != h.size {
            return Err(ClientError::Log(serment_core::Error::BadInclusionProof));
        }
        let chain = h
            .entries
            .iter()
            .map(|pe| crate::log::verify_proven(&cp, pe))
            .collect::<Result<Vec<_>>>()?;
        check_chain(&chain, &Subject::Provisional(*id)).map_err(ClientError::Log)?;
        let st = replay_provisional(&chain).map_err(ClientError::Log)?;
        if st.record.id() != *id {
            return Err(integrity("the log's provisional record has another id"));
        }
        Ok(st)
    }

    /// Resolves an unregistered contact (`email:ADDRESS[,ins:INS]`) for a put: the claimant's
    /// handle if its provisional recipient was claimed; else the newest provisional recipient
    /// this identity made for it, proven (see the module documentation); else a new one, whose
    /// claim code is returned once.
    ///
    /// # Errors
    /// [`ClientError::Input`] for a bad contact; [`ClientError::KeySubstitution`]-like
    /// integrity errors ([`ClientError::Integrity`], [`ClientError::Log`]) when the server
    /// serves a record this identity did not make, for another contact, or not in the log;
    /// server errors (503 `smtp_not_configured` when the server sends no email).
    pub fn unregistered_target(&mut self, contact: &str) -> Result<UnregisteredTarget> {
        self.unregistered_target_with(contact, false)
    }

    /// As [`Session::unregistered_target`]; with `new_claim_code`, an unclaimed provisional
    /// recipient of the contact is not reused: a new one is made and its claim code returned
    /// (review S14, PROTOCOL.md §15.1 "Re-issue"): for a receipt the patient lost, a claim code
    /// nobody saw (a run that failed before printing it), or a recipient locked after too many
    /// wrong one-time codes (§15.2). Documents sealed to the old recipient stay there (the lab
    /// sends them again). A contact that claimed is refused with the flag (newcomer 5 N21: a
    /// new code would reach no one; without the flag it goes to the claimant).
    ///
    /// # Errors
    /// As [`Session::unregistered_target`]; [`ClientError::Input`] with `new_claim_code` for a
    /// contact that claimed.
    pub fn unregistered_target_with(
        &mut self,
        contact: &str,
        new_claim_code: bool,
    ) -> Result<UnregisteredTarget> {
        let contact = Contact::parse(contact).map_err(|e| ClientError::Input(e.to_string()))?;
        let key = contact_key(&self.ks.identity.to_seed());
        let tag = contact.tag(&key);
        let list: ProvisionalList = self.api.get_json(
            &format!("/v1/provisional?contact_tag={}", hex::encode(tag)),
            true,
        )?;
        if let Some(last) = list.provisionals.last() {
            let id = key_id(last, "provisionals")?;
            let st = self.proven_provisional(&id)?;
            if st.record.contact_tag != tag {
                return Err(integrity(
                    "the server offered a provisional recipient made for another contact",
                ));
            }
            if self.own_device_in_log(&st.record.lab_device())?.is_none() {
                return Err(ClientError::Integrity(serment_core::Error::WrongSigner {
                    what: "provisional record",
                    expected: "a current device of this identity".into(),
                    found: st.record.lab_device().to_string(),
                }));
            }
            match st.claim {
                // Newcomer 5 N21: the flag was ignored here, and the document went to the
                // claimant without a word.
                Some((c, _)) if new_claim_code => {
                    return Err(ClientError::Input(format!(
                        "--new-claim-code: this contact's provisional recipient {} was claimed \
                         by {h} (the claim is in the log): documents sent to this contact go \
                         straight to {h}'s devices, and a new claim code would reach no one. \
                         Send without --new-claim-code. If {h} is not your patient (the \
                         receipt was lost or stolen), do not send to this contact: ask the \
                         patient for their handle and send with --to HANDLE",
                        id.short(),
                        h = c.handle
                    )));
                }
                Some((c, _)) => {
                    return Ok(UnregisteredTarget::Claimed {
                        handle: c.handle,
                        provisional_id: id,
                    });
                }
                None if !new_claim_code => {
                    return Ok(UnregisteredTarget::Provisional {
                        record: st.record,
                        new_code: None,
                    });
                }
                // Re-issue: a new recipient below; the server lists it last from now on.
                None => {}
            }
        }
        // A new provisional recipient: keys, claim code C, server share S, escrow under both.
        let prov = serment_core::identity::DeviceSecret::generate();
        let code = ClaimCode::generate().map_err(ClientError::Integrity)?;
        let mut share = Zeroizing::new([0u8; SERVER_SHARE_LEN]);
        serment_core::rng::fill(share.as_mut()).map_err(ClientError::Integrity)?;
        let escrow = seal_escrow(&prov, &code, &share).map_err(ClientError::Integrity)?;
        let record = ProvisionalRecord::sign(&prov, &tag, &self.ks.device, crate::now_secs())
            .map_err(ClientError::Integrity)?;
        let created: ProvisionalAppended = self.api.post_json(
            "/v1/provisional",
            &CreateProvisionalRequest {
                record: b64e(&record),
                escrow: b64e(&escrow),
                server_share: b64e(share.as_ref()),
                lookup: hex::encode(code.lookup()),
                email: contact.email.clone(),
            },
            true,
        )?;
        if created.provisional_id != prov.id().to_string() {
            return Err(integrity(
                "the server answered with another provisional recipient",
            ));
        }
        crate::log::check_own_writes(
            &self.api,
            &mut self.ks,
            &[created.log_index],
            &[(EntryKind::Provisional, record.as_slice())],
        )?;
        self.ks.save()?;
        let record = ProvisionalRecord::decode_verified(&record).map_err(ClientError::Integrity)?;
        Ok(UnregisteredTarget::Provisional {
            record,
            new_code: Some(code),
        })
    }

    /// `put --to-unregistered CONTACT` (PROTOCOL.md §15.1): seals `content` for the contacts `to`
    /// (handles, may be empty) and for the unregistered `contact`: to its provisional recipient,
    /// or, once it claimed, straight to the claimant's devices.
    ///
    /// # Errors
    /// As [`Session::put`] and [`Session::unregistered_target`].
    pub fn put_to_unregistered<R: std::io::Read + Send>(
        &mut self,
        content: R,
        metadata: Metadata,
        to: &[String],
        contact: &str,
    ) -> Result<UnregisteredPut> {
        let mut recipients = self.recipients(to)?;
        let target = self.unregistered_target(contact)?;
        let doc_id = DocId::random().map_err(ClientError::Integrity)?;
        match target {
            UnregisteredTarget::Claimed {
                handle,
                provisional_id,
            } => {
                let (c, _) = crate::contacts::add(&self.api, &mut self.ks, &handle)?;
                recipients.extend(c.devices.iter().map(Recipient::from));
                self.ks.save()?;
                let put = self.put_version(content, metadata, doc_id, 1, &recipients)?;
                Ok(UnregisteredPut {
                    put,
                    provisional_id,
                    claim_code: None,
                    claimed_by: Some(handle),
                })
            }
            UnregisteredTarget::Provisional { record, new_code } => {
                let id = record.id();
                recipients.push(record.recipient());
                let put =
                    self.put_version_with(content, metadata, doc_id, 1, &recipients, &[id])?;
                Ok(UnregisteredPut {
                    put,
                    provisional_id: id,
                    claim_code: new_code.map(|c| c.display()),
                    claimed_by: None,
                })
            }
        }
    }

    /// `serment claim --code CLAIM --otp CODE` (PROTOCOL.md §15.3): proves the emailed one-time
    /// code, opens the escrow with the claim code and the server's share, checks the keys are
    /// those of the provisional record in the log, logs the claim (kind 11, signed by the
    /// provisional key and this device) and re-wraps every document of the provisional
    /// recipient to this identity's current devices. Run again, it resumes the re-wraps.
    ///
    /// # Errors
    /// [`ClientError::Server`] 403 for a wrong, used or expired one-time code, 429 with a wait;
    /// [`ClientError::Integrity`] if the escrow does not open (a wrong claim code, or a server
    /// that changed the escrow or the share) or holds other keys than the logged record, or if
    /// the recipient was claimed by another handle; log errors.
    pub fn claim(&mut self, code: &ClaimCode, otp: &str) -> Result<ClaimOutcome> {
        let opened = self.api.open_provisional(&code.lookup(), otp)?;
        let id = key_id(&opened.provisional_id, "provisional_id")?;
        let share: [u8; SERVER_SHARE_LEN] = b64d(&opened.server_share, "server_share")?
            .try_into()
            .map_err(|_| ClientError::BadResponse("server_share: expected 32 bytes".into()))?;
        let share = Zeroizing::new(share);
        let escrow = b64d(&opened.escrow, "escrow")?;
        let prov = open_escrow(&escrow, code, &share).map_err(|e| match e {
            serment_core::Error::Decrypt => integrity(
                "the claim code and the server's share do not open the escrow: a mistyped \
                 claim code, or a server that changed the escrow or its share",
            ),
            e => ClientError::Integrity(e),
        })?;
        if prov.id() != id {
            return Err(integrity(
                "the escrow holds another provisional recipient than the server named",
            ));
        }
        let st = self.proven_provisional(&id)?;
        let r = &st.record;
        if r.signing_key != prov.signing_public_key()
            || r.encryption_key != prov.encryption_public_key()
            || Some(&r.hybrid_key) != prov.hybrid_public_key().as_ref()
        {
            return Err(integrity(
                "the escrow's keys are not those of the provisional record in the log",
            ));
        }
        let handle = self.ks.handle().to_owned();
        let (claim_index, newly_claimed) = match &st.claim {
            Some((c, idx)) if c.handle == handle => (*idx, false),
            Some(_) => {
                return Err(integrity(
                    "this provisional recipient was already claimed by another handle",
                ));
            }
            None => {
                let claim = Claim::sign(&prov, &handle, &self.ks.device, crate::now_secs())
                    .map_err(ClientError::Integrity)?;
                let index = self.api.post_claim(&id, &claim)?;
                crate::log::check_own_writes(
                    &self.api,
                    &mut self.ks,
                    &[index],
                    &[(EntryKind::Claim, claim.as_slice())],
                )?;
                (index, true)
            }
        };
        // Re-wrap to this identity's current devices, from its proven key history.
        let own = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        if own.identity_key != self.ks.identity.public_key() {
            return Err(ClientError::Log(serment_core::Error::History {
                reason: "the log's current identity key for this handle is not this keystore's",
            }));
        }
        let devices: Vec<Recipient> = own.devices.iter().map(Recipient::from).collect();
        let listed: ProvisionalWraps = self
            .api
            .get_json(&format!("/v1/provisional/{id}/wraps"), true)?;
        let (mut versions, mut posted) = (0, 0);
        for pw in &listed.wraps {
            let doc_id = DocId::from_hex(&pw.doc_id)
                .map_err(|_| ClientError::BadResponse("doc_id: expected 32 hex".into()))?;
            let w = WrappedKey::decode(&b64d(&pw.wrap, "wrap")?).map_err(ClientError::Integrity)?;
            if w.recipient != id || w.doc_id != doc_id || w.doc_version != pw.doc_version {
                return Err(integrity(
                    "a wrap listed for the provisional recipient is not addressed to it",
                ));
            }
            // The DEK's worth is checked when the document is read: its header hash binds the
            // wrap, and the author's signature binds the header (PROTOCOL.md §6.3).
            let dek = wrap::unwrap_dek(&w, &prov).map_err(ClientError::Integrity)?;
            let mut rng = serment_core::rng::os_rng();
            let mut wraps = Vec::new();
            for d in &devices {
                wraps.push(
                    wrap::wrap_dek(
                        &dek,
                        &doc_id,
                        w.doc_version,
                        &w.header_hash,
                        d,
                        &self.ks.device,
                        &mut rng,
                    )
                    .map_err(ClientError::Integrity)?,
                );
            }
            if wraps.is_empty() {
                continue;
            }
            // A resumed claim: devices that already hold a wrap are answered 409 one by one
            // and skipped (this device cannot read the document's log before it holds one).
            let (wraps, indices) = match self.api.add_wraps(&doc_id, w.doc_version, &wraps) {
                Ok(i) => (wraps, i),
                Err(ClientError::Server { status: 409, .. }) => {
                    let (mut kept, mut idx) = (Vec::new(), Vec::new());
                    for one in wraps {
                        match self
                            .api
                            .add_wraps(&doc_id, w.doc_version, std::slice::from_ref(&one))
                        {
                            Ok(i) => {
                                idx.extend(i);
                                kept.push(one);
                            }
                            Err(ClientError::Server { status: 409, .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    (kept, idx)
                }
                Err(e) => return Err(e),
            };
            if wraps.is_empty() {
                continue;
            }
            let expected: Vec<(EntryKind, &[u8])> = wraps
                .iter()
                .map(|w| (EntryKind::Wrap, w.as_slice()))
                .collect();
            crate::log::check_own_writes(&self.api, &mut self.ks, &indices, &expected)?;
            versions += 1;
            posted += wraps.len();
        }
        // The claim and its re-wraps are done and saved first: naming the lab is a look-up
        // after them, and a server that refuses it (or a network cut) must not fail the claim.
        // A device record that does not check out is still an error (the server lied).
        self.ks.save()?;
        let lab = match self.provisional_lab(&r.lab_device_key) {
            Ok(lab) => lab,
            Err(ClientError::Server { .. } | ClientError::Transport(_)) => None,
            Err(e) => return Err(e),
        };
        self.ks.save()?;
        Ok(ClaimOutcome {
            provisional_id: id,
            claim_index,
            newly_claimed,
            versions,
            wraps: posted,
            log_entries: posted + usize::from(newly_claimed),
            lab,
        })
    }

    /// The handle of the lab device that made a provisional recipient (the newcomer's H27), for
    /// [`ClaimOutcome::lab`]. The device's key comes from the record proven in the log, whose
    /// escrow the patient's claim code opened. The server says which handle the device belongs
    /// to: the device record it serves must be that device's, signed by its identity, and the
    /// device current in the handle's proven key history. `None` if the server knows no such
    /// current device.
    fn provisional_lab(&mut self, lab_device_key: &[u8; 32]) -> Result<Option<String>> {
        let device = KeyId::of(serment_core::ids::KeyKind::Device, lab_device_key);
        let raw = match self.api.device_record(&device) {
            Ok(raw) => raw,
            Err(ClientError::Server { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let record = serment_core::identity::DeviceRecord::decode_verified(&raw)
            .map_err(ClientError::Integrity)?;
        if record.signing_key != *lab_device_key {
            return Err(integrity(
                "the server answered another device's record for the lab's device",
            ));
        }
        let history = crate::log::key_history(&self.api, &mut self.ks, &record.handle, None)?;
        if !history
            .devices
            .iter()
            .any(|d| d.signing_key == *lab_device_key)
        {
            return Err(integrity(
                "the lab's device is not a current device of the handle the server named for it",
            ));
        }
        Ok(Some(record.handle))
    }

    /// Whether the log shows the provisional recipient `id` claimed, and by which handle (the
    /// lab's view, PROTOCOL.md §15.4).
    ///
    /// # Errors
    /// Log and server errors.
    pub fn provisional_claimed_by(&mut self, id: &KeyId) -> Result<Option<String>> {
        Ok(self.proven_provisional(id)?.claim.map(|(c, _)| c.handle))
    }
}
