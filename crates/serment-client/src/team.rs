//! Care teams on the client (PROTOCOL.md §12): every operation first fetches the team's chain
//! and the key history of every handle it names, all proven against one verified checkpoint,
//! and replays it (`serment_core::team::replay_team`); only then does it wrap for the team or
//! accept a team key. The team head verified last is kept in the keystore, so a later view that
//! drops an entry (a removal) is refused.

use std::collections::BTreeMap;
use std::io::Read;

use serment_api::{AppendedResponse, HistoryResponse, TeamChangeRequest};
use serment_api::{TeamWrapRequest, TeamsResponse};
use serment_core::document::Metadata;
use serment_core::identity::DeviceRecord;
use serment_core::ids::KeyKind;
use serment_core::log::entry::{AccessWhat, EntryKind, Subject};
use serment_core::log::history::{ChainEntry, check_chain, replay_keys};
use serment_core::team::{
    EpochSecret, TeamChange, TeamChangeBody, TeamEpoch, TeamOp, TeamRole, TeamState, named_handles,
    replay_team, revoked_since_current_epoch, validate_team_name, wrap_epoch_secret,
};
use serment_core::wrap::{self, Recipient, WrappedKey};
use serment_core::{DocId, KeyId};

use crate::api::b64e;
use crate::error::{ClientError, Result};
use crate::log::{accept_note, check_own_writes, parse_head, sync, verify_proven};
use crate::vault::Session;

fn unix_now() -> u64 {
    // The browser's clock on wasm32 (std's panics there).
    crate::now_secs()
}

fn team_err(reason: &'static str) -> ClientError {
    ClientError::Integrity(serment_core::Error::Team { reason })
}

/// A team as this device verified it (PROTOCOL.md §12.4): the replayed state at a proven size.
#[derive(Debug, Clone)]
pub struct VerifiedTeam {
    /// The replayed state.
    pub state: TeamState,
    /// The tree size everything was proven against.
    pub size: u64,
    /// The signed checkpoint (note) of that size.
    pub checkpoint: String,
    /// How the chain was verified: `true` when only the changes after the held head were
    /// fetched and applied ([`TeamState::apply`]), `false` for a whole replay.
    pub incremental: bool,
}

impl VerifiedTeam {
    /// The current epoch (the only one new wraps may use).
    ///
    /// # Errors
    /// [`ClientError::Integrity`] for a team without an epoch (cannot happen after a replay).
    pub fn current(&self) -> Result<&TeamEpoch> {
        self.state
            .current()
            .ok_or(team_err("a team without an epoch"))
    }
}

/// A verified team with the current devices of its members, from their proven key histories:
/// what wrapping for the team needs (a new epoch's key to every member device, or the check that
/// no member device left since the current epoch opened).
#[derive(Debug, Clone)]
pub struct TeamWithDevices {
    /// The verified team.
    pub team: VerifiedTeam,
    /// The current devices of each current member.
    pub devices: BTreeMap<String, Vec<DeviceRecord>>,
    /// Members with a device revoked since the current epoch opened
    /// ([`revoked_since_current_epoch`]): while not empty, nothing may be wrapped to the epoch.
    pub revoked_since_epoch: Vec<String>,
}

impl TeamWithDevices {
    /// Every current member device, as wrap recipients.
    pub fn member_devices(&self) -> Vec<Recipient> {
        self.devices
            .values()
            .flatten()
            .map(Recipient::from)
            .collect()
    }
}

/// What a team change did.
#[derive(Debug, Clone)]
pub struct TeamChanged {
    /// The team after the change.
    pub team: VerifiedTeam,
    /// The log index of the change.
    pub log_index: u64,
    /// How many member devices received the epoch key.
    pub keys_wrapped: usize,
}

impl Session {
    fn team_history(&self, path: &str) -> Result<Option<HistoryResponse>> {
        match self.api.get_json::<HistoryResponse>(path, false) {
            Ok(h) => Ok(Some(h)),
            Err(ClientError::Server { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The proven key history (chain) of `handle` at the size of `cp`, whose note is `note`.
    fn proven_key_chain(
        &mut self,
        handle: &str,
        cp: &serment_core::log::note::Checkpoint,
        note: &str,
    ) -> Result<Vec<ChainEntry>> {
        let hh = self.api.log_identity(handle, Some(cp.size))?;
        if hh.size != cp.size || hh.checkpoint != note {
            let other = accept_note(&self.api, &mut self.ks, &hh.checkpoint)?;
            if other.size != cp.size || other.root != cp.root {
                return Err(ClientError::Log(serment_core::Error::BadInclusionProof));
            }
        }
        let c = hh
            .entries
            .iter()
            .map(|pe| verify_proven(cp, pe))
            .collect::<Result<Vec<_>>>()?;
        check_chain(&c, &Subject::Handle(handle.to_owned())).map_err(ClientError::Log)?;
        Ok(c)
    }

    /// Fetches and verifies `name`'s chain (PROTOCOL.md §12.4); `None` if the log has no such
    /// team and this device never saw one by that name.
    ///
    /// With a state held from an earlier verification (in the keystore), only the changes after
    /// its head are fetched (`?after=`), proven against the current checkpoint (itself proven
    /// consistent with the pinned one), and applied one by one with [`TeamState::apply`] and the
    /// key histories of the handles those changes name; the first must link to the held head.
    /// Without a held state the whole chain and the key history of every handle it names are
    /// fetched and replayed ([`replay_team`]).
    ///
    /// # Errors
    /// [`ClientError::Log`] for a proof, chain or head failure; [`ClientError::Integrity`]
    /// ([`serment_core::Error::Team`]) for a chain that does not replay.
    pub fn verify_team(&mut self, name: &str) -> Result<Option<VerifiedTeam>> {
        validate_team_name(name).map_err(|e| ClientError::Input(e.to_string()))?;
        let cp = sync(&self.api, &mut self.ks, 0)?;
        let held = self.ks.team_state(name).and_then(|h| h.to_state(name));
        let path = match &held {
            Some(st) => format!(
                "/v1/log/team/{name}?size={}&after={}",
                cp.size, st.head.index
            ),
            None => format!("/v1/log/team/{name}?size={}", cp.size),
        };
        let Some(h) = self.team_history(&path)? else {
            if self.ks.team_head(name).is_some() {
                return Err(team_err(
                    "the server no longer shows a team this device verified before",
                ));
            }
            return Ok(None);
        };
        let cp = accept_note(&self.api, &mut self.ks, &h.checkpoint)?;
        if cp.size != h.size {
            return Err(ClientError::Log(serment_core::Error::BadInclusionProof));
        }
        let chain = h
            .entries
            .iter()
            .map(|pe| verify_proven(&cp, pe))
            .collect::<Result<Vec<_>>>()?;
        let (state, incremental) = match held {
            Some(mut state) => {
                // Only what follows the head: a server that ignores `after` sends the whole
                // chain, whose older part this device already verified.
                let head = state.head.index;
                let mut histories: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
                for e in chain.iter().filter(|e| e.index > head) {
                    for handle in named_handles(std::slice::from_ref(e)) {
                        if let std::collections::btree_map::Entry::Vacant(v) =
                            histories.entry(handle)
                        {
                            let c = self.proven_key_chain(v.key(), &cp, &h.checkpoint)?;
                            v.insert(c);
                        }
                    }
                    state.apply(e, &histories).map_err(ClientError::Integrity)?;
                }
                (state, true)
            }
            None => {
                check_chain(&chain, &Subject::Team(name.to_owned())).map_err(ClientError::Log)?;
                if let Some(head) = self.ks.team_head(name).and_then(parse_head)
                    && !chain.iter().any(|e| e.link() == head)
                {
                    return Err(team_err(
                        "the team's chain no longer holds the change verified before (an entry dropped or rewritten)",
                    ));
                }
                let mut histories: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
                for handle in named_handles(&chain) {
                    let c = self.proven_key_chain(&handle, &cp, &h.checkpoint)?;
                    histories.insert(handle, c);
                }
                let state =
                    replay_team(name, &chain, &histories).map_err(ClientError::Integrity)?;
                (state, false)
            }
        };
        self.ks
            .set_team_state(name, crate::team_state::HeldTeam::from_state(&state));
        self.ks.save()?;
        Ok(Some(VerifiedTeam {
            state,
            size: cp.size,
            checkpoint: h.checkpoint.clone(),
            incremental,
        }))
    }

    /// [`Session::verify_team`], then the proven key history of every current member at the
    /// same size: their current devices and [`revoked_since_current_epoch`]'s check (which needs
    /// each member's history since the current epoch opened, so it stays on this path: every
    /// operation that wraps for the team fetches the members' histories, reading does not).
    ///
    /// # Errors
    /// As [`Session::verify_team`]; a 404 [`ClientError::Server`] for an unknown team.
    pub fn verify_team_devices(&mut self, name: &str) -> Result<TeamWithDevices> {
        let team = self.require_team(name)?;
        let note = team.checkpoint.clone();
        let cp = accept_note(&self.api, &mut self.ks, &note)?;
        self.members_of(team, &cp, &note)
    }

    fn members_of(
        &mut self,
        team: VerifiedTeam,
        cp: &serment_core::log::note::Checkpoint,
        note: &str,
    ) -> Result<TeamWithDevices> {
        let mut histories: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
        let mut devices = BTreeMap::new();
        for m in &team.state.members {
            let chain = self.proven_key_chain(&m.handle, cp, note)?;
            let kh = replay_keys(&m.handle, &chain).map_err(ClientError::Log)?;
            devices.insert(m.handle.clone(), kh.devices);
            histories.insert(m.handle.clone(), chain);
        }
        let revoked_since_epoch = revoked_since_current_epoch(&team.state, &histories);
        Ok(TeamWithDevices {
            team,
            devices,
            revoked_since_epoch,
        })
    }

    /// The team, verified, whose current epoch may receive a wrap: if a member's device was
    /// revoked since the epoch opened, an admin (this device) first opens a new epoch wrapped to
    /// the current devices only (`team rotate`); anyone else is refused
    /// ([`ClientError::TeamKeyRevoked`]) until an admin does.
    fn team_to_wrap_for(&mut self, name: &str) -> Result<VerifiedTeam> {
        let team = self.verify_team_devices(name)?;
        if team.revoked_since_epoch.is_empty() {
            return Ok(team.team);
        }
        if !team.team.state.is_admin(&self.my_handle()) {
            return Err(ClientError::TeamKeyRevoked {
                team: name.to_owned(),
                epoch: team.team.current()?.epoch,
                members: team.revoked_since_epoch.join(", "),
            });
        }
        let rotated = self.team_rotate(name)?;
        Ok(rotated.team)
    }

    pub(crate) fn require_team(&mut self, name: &str) -> Result<VerifiedTeam> {
        self.verify_team(name)?.ok_or(ClientError::Server {
            status: 404,
            code: "not_found".into(),
            message: format!("no team {name}"),
        })
    }

    pub(crate) fn my_handle(&self) -> String {
        self.ks.handle().to_owned()
    }

    fn post_team_change(
        &mut self,
        name: &str,
        change: &[u8],
        key_wraps: &[Vec<u8>],
    ) -> Result<u64> {
        let r: AppendedResponse = self.api.post_json(
            &format!("/v1/teams/{name}/changes"),
            &TeamChangeRequest {
                change: b64e(change),
                key_wraps: key_wraps.iter().map(|w| b64e(w)).collect(),
            },
            true,
        )?;
        check_own_writes(
            &self.api,
            &mut self.ks,
            &r.log_indices,
            &[(EntryKind::Team, change)],
        )?;
        let idx = r
            .log_indices
            .first()
            .copied()
            .ok_or(ClientError::OwnWriteMissing(
                "no log index for the team change".into(),
            ))?;
        // Kept with the change, so that a restore that loses it logs it again with its key
        // wraps (PROTOCOL.md §11.11).
        let base = self.api.base().to_owned();
        if let Some(st) = self.ks.log_state_mut(&base) {
            st.set_own_write_with(idx, key_wraps);
        }
        Ok(idx)
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_change(
        &self,
        name: &str,
        op: TeamOp,
        member: &str,
        member_identity: [u8; 32],
        role: TeamRole,
        epoch: u32,
        key: &EpochSecret,
    ) -> Result<Vec<u8>> {
        TeamChange::sign(
            &TeamChangeBody {
                team: name.to_owned(),
                epoch,
                op,
                member: member.to_owned(),
                member_identity,
                role,
                epoch_key: key.public().clone(),
                signer: self.my_handle(),
                at: unix_now(),
            },
            &self.ks.device,
        )
        .map_err(|e| ClientError::Input(e.to_string()))
    }

    fn wrap_keys(
        &self,
        name: &str,
        epoch: u32,
        key: &EpochSecret,
        to: &[Recipient],
    ) -> Result<Vec<Vec<u8>>> {
        let mut rng = serment_core::rng::os_rng();
        to.iter()
            .map(|r| {
                wrap_epoch_secret(key, name, epoch, r, &self.ks.device, &mut rng)
                    .map_err(|e| ClientError::Input(e.to_string()))
            })
            .collect()
    }

    fn changed(&mut self, name: &str, log_index: u64, keys_wrapped: usize) -> Result<TeamChanged> {
        Ok(TeamChanged {
            team: self.require_team(name)?,
            log_index,
            keys_wrapped,
        })
    }

    /// `serment team new NAME`: creates a team with this user as its first admin, epoch 1, the
    /// epoch key wrapped to every current device of this user.
    ///
    /// # Errors
    /// [`ClientError::Server`] 409 if the name is taken; log and integrity errors.
    pub fn team_new(&mut self, name: &str) -> Result<TeamChanged> {
        if self.verify_team(name)?.is_some() {
            return Err(ClientError::Server {
                status: 409,
                code: "conflict".into(),
                message: format!("team {name} exists"),
            });
        }
        let me = self.my_handle();
        let own = crate::log::key_history(&self.api, &mut self.ks, &me, None)?;
        let key = EpochSecret::generate().map_err(ClientError::Integrity)?;
        let change = self.sign_change(
            name,
            TeamOp::Create,
            &me,
            own.identity_key,
            TeamRole::Admin,
            1,
            &key,
        )?;
        let to: Vec<Recipient> = own.devices.iter().map(Recipient::from).collect();
        let wraps = self.wrap_keys(name, 1, &key, &to)?;
        let idx = self.post_team_change(name, &change, &wraps)?;
        self.changed(name, idx, wraps.len())
    }

    /// `serment team add NAME HANDLE [--admin]`: adds a pinned contact; the current epoch key
    /// is wrapped to each of its current devices (from its proven key history). A new member
    /// reads what the team received since the current epoch opened; a handle removed before is
    /// re-added only after a rotation (a new epoch), so it never reads what was shared while it
    /// was out.
    ///
    /// # Errors
    /// [`ClientError::Input`] if this user is not an admin or the handle is a member already;
    /// contact, log and integrity errors.
    pub fn team_add(&mut self, name: &str, handle: &str, admin: bool) -> Result<TeamChanged> {
        let mut team = self.verify_team_devices(name)?;
        if !team.team.state.is_admin(&self.my_handle()) {
            return Err(ClientError::Input(format!(
                "you are not an admin of team {name}"
            )));
        }
        if team.team.state.is_member(handle) {
            return Err(ClientError::Input(format!(
                "{handle} is already a member of {name}"
            )));
        }
        let (contact, _) = crate::contacts::add(&self.api, &mut self.ks, handle)?;
        let kh = crate::log::key_history(&self.api, &mut self.ks, handle, None)?;
        if KeyId::of(KeyKind::Identity, &kh.identity_key) != contact.identity_id {
            return Err(ClientError::KeySubstitution {
                handle: handle.to_owned(),
                pinned: contact.identity_id.to_string(),
                served: KeyId::of(KeyKind::Identity, &kh.identity_key).to_string(),
            });
        }
        // A member removed before gets a new epoch, not the one her removal opened: she must not
        // read what was shared while she was out (hostile review F9). Nor is a new member given
        // an epoch whose key reached a device since revoked (§12.4).
        if team.team.state.removed.iter().any(|h| h == handle)
            || !team.revoked_since_epoch.is_empty()
        {
            self.team_rotate(name)?;
            team = self.verify_team_devices(name)?;
        }
        let team = team.team;
        let cur = team.current()?.clone();
        let secret = self.team_epoch_secret(&team, &cur)?;
        let role = if admin {
            TeamRole::Admin
        } else {
            TeamRole::Member
        };
        let change = self.sign_change(
            name,
            TeamOp::Add,
            handle,
            kh.identity_key,
            role,
            cur.epoch,
            &secret,
        )?;
        let to: Vec<Recipient> = contact.devices.iter().map(Recipient::from).collect();
        let wraps = self.wrap_keys(name, cur.epoch, &secret, &to)?;
        let idx = self.post_team_change(name, &change, &wraps)?;
        self.ks.save()?;
        self.changed(name, idx, wraps.len())
    }

    /// `serment team remove NAME HANDLE`: removes a member and opens a new epoch, whose fresh key
    /// is wrapped to every current device of every remaining member (PROTOCOL.md §12.3).
    ///
    /// # Errors
    /// [`ClientError::Input`] if this user is not an admin or the handle is not a member; log and
    /// integrity errors.
    pub fn team_remove(&mut self, name: &str, handle: &str) -> Result<TeamChanged> {
        let team = self.verify_team_devices(name)?;
        if !team.team.state.is_admin(&self.my_handle()) {
            return Err(ClientError::Input(format!(
                "you are not an admin of team {name}"
            )));
        }
        let m = team
            .team
            .state
            .members
            .iter()
            .find(|m| m.handle == handle)
            .ok_or_else(|| ClientError::Input(format!("{handle} is not a member of {name}")))?
            .clone();
        self.new_epoch(&team, TeamOp::Remove, handle, m.identity_key, Some(handle))
    }

    /// `serment team rotate NAME`: opens a new epoch without a membership change.
    ///
    /// # Errors
    /// As [`Session::team_remove`].
    pub fn team_rotate(&mut self, name: &str) -> Result<TeamChanged> {
        let team = self.verify_team_devices(name)?;
        let me = self.my_handle();
        let m = team
            .team
            .state
            .members
            .iter()
            .find(|m| m.handle == me && m.admin)
            .ok_or_else(|| ClientError::Input(format!("you are not an admin of team {name}")))?
            .clone();
        self.new_epoch(&team, TeamOp::Rotate, &me, m.identity_key, None)
    }

    fn new_epoch(
        &mut self,
        team: &TeamWithDevices,
        op: TeamOp,
        member: &str,
        member_identity: [u8; 32],
        removed: Option<&str>,
    ) -> Result<TeamChanged> {
        let name = team.team.state.team.clone();
        let epoch = team
            .team
            .current()?
            .epoch
            .checked_add(1)
            .ok_or(team_err("epoch overflow"))?;
        let key = EpochSecret::generate().map_err(ClientError::Integrity)?;
        let change = self.sign_change(
            &name,
            op,
            member,
            member_identity,
            TeamRole::Admin,
            epoch,
            &key,
        )?;
        let to: Vec<Recipient> = team
            .devices
            .iter()
            .filter(|(h, _)| Some(h.as_str()) != removed)
            .flat_map(|(_, d)| d.iter().map(Recipient::from))
            .collect();
        let wraps = self.wrap_keys(&name, epoch, &key, &to)?;
        let idx = self.post_team_change(&name, &change, &wraps)?;
        self.changed(&name, idx, wraps.len())
    }

    /// The teams the server says this user belongs to, and those this device verified.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn team_list(&mut self) -> Result<Vec<String>> {
        let r: TeamsResponse = self.api.get_json("/v1/teams", true)?;
        let mut all = r.teams;
        for t in self.ks.team_names() {
            if !all.contains(&t) {
                all.push(t);
            }
        }
        all.sort();
        Ok(all)
    }

    /// `share DOC --to-team NAME`: one wrap of the version's DEK to the team's **current** epoch
    /// (PROTOCOL.md §12.3), by the author device, logged and checked like any own write. The
    /// chain is verified first; an older epoch is never used. Returns the epoch and log index.
    ///
    /// # Errors
    /// [`ClientError::NotAuthor`]; log, integrity and server errors.
    pub fn share_to_team(
        &mut self,
        doc_id: &DocId,
        version: u32,
        name: &str,
    ) -> Result<(u32, u64)> {
        let team = self.team_to_wrap_for(name)?;
        let cur = team.current()?.clone();
        let origin = crate::log::trust(&self.api, &self.ks)?.log_key.name;
        let rc = crate::log::receipt(&self.ks, &origin, doc_id, version, AccessWhat::Wrap)?;
        let (info, wrap_bytes) = self.api.version_with(doc_id, version, Some(&rc), None)?;
        let me = self.ks.device.id();
        if info.author_device != me.to_string() {
            return Err(ClientError::NotAuthor {
                doc_id: doc_id.to_string(),
                author_device: info.author_device,
            });
        }
        let own = WrappedKey::decode(&wrap_bytes).map_err(ClientError::Integrity)?;
        if own.doc_id != *doc_id || own.doc_version != version || own.recipient != me {
            return Err(ClientError::Integrity(
                serment_core::Error::ContextMismatch(
                    "the server returned a wrap for another document or device",
                ),
            ));
        }
        own.verify_signature(&self.ks.device.signing_public_key())
            .map_err(ClientError::Integrity)?;
        let dek = wrap::unwrap_dek(&own, &self.ks.device).map_err(ClientError::Integrity)?;
        let recipient = serment_core::team::epoch_recipient(name, cur.epoch, &cur.key);
        let w = wrap::wrap_dek(
            &dek,
            doc_id,
            version,
            &own.header_hash,
            &recipient,
            &self.ks.device,
            &mut serment_core::rng::os_rng(),
        )
        .map_err(ClientError::Integrity)?;
        let r: AppendedResponse = self.api.post_json(
            &format!("/v1/documents/{doc_id}/versions/{version}/team-wraps"),
            &TeamWrapRequest {
                team: name.to_owned(),
                wrap: b64e(&w),
            },
            true,
        )?;
        check_own_writes(
            &self.api,
            &mut self.ks,
            &r.log_indices,
            &[(EntryKind::Wrap, &w)],
        )?;
        self.ks.save()?;
        let idx = r.log_indices.first().copied().unwrap_or_default();
        Ok((cur.epoch, idx))
    }

    /// The current epoch of `name` if the proven log of the version already holds a wrap to
    /// it (a repeated `share --to-team`, hostile review F24): `None` otherwise.
    ///
    /// # Errors
    /// Log, integrity and server errors.
    pub fn team_share_in_log(
        &mut self,
        doc_id: &DocId,
        version: u32,
        name: &str,
    ) -> Result<Option<u32>> {
        let team = self.require_team(name)?;
        let cur = team.current()?.clone();
        let wrapped = crate::log::wrapped_devices(&self.api, &mut self.ks, doc_id, version)?;
        Ok(wrapped.contains(&cur.id).then_some(cur.epoch))
    }

    /// `put … --to-team NAME`: seals for this device and `to`, then shares with the team
    /// ([`Session::share_to_team`]).
    ///
    /// # Errors
    /// As [`Session::put`] and [`Session::share_to_team`].
    pub fn put_to_team<R: Read + Send>(
        &mut self,
        content: R,
        metadata: Metadata,
        to: &[String],
        team: &str,
    ) -> Result<(crate::vault::PutResult, u32)> {
        // Verify the team (and that its epoch may be used) before anything is uploaded.
        self.team_to_wrap_for(team)?;
        let put = self.put(content, metadata, to)?;
        let (epoch, _) = self.share_to_team(&put.doc_id, put.doc_version, team)?;
        Ok((put, epoch))
    }

    /// `team rotate NAME --rewrap`: for every version this device authored that the log shows
    /// wrapped to an older epoch of the team, a wrap to the current epoch (the server drops the
    /// older one). Returns the versions re-wrapped.
    ///
    /// # Errors
    /// As [`Session::share_to_team`].
    pub fn team_rewrap(&mut self, name: &str) -> Result<Vec<(DocId, u32)>> {
        let team = self.require_team(name)?;
        let cur = team.current()?.id;
        let old: Vec<KeyId> = team
            .state
            .epochs
            .iter()
            .map(|e| e.id)
            .filter(|id| *id != cur)
            .collect();
        let me = self.ks.device.id().to_string();
        let mut done = Vec::new();
        for d in self.api.list_documents()? {
            if d.author_device != me {
                continue;
            }
            let doc = DocId::from_hex(&d.doc_id)
                .map_err(|e| ClientError::BadResponse(format!("listed doc_id: {e}")))?;
            let wrapped =
                crate::log::wrapped_devices(&self.api, &mut self.ks, &doc, d.doc_version)?;
            if wrapped.iter().any(|r| old.contains(r)) && !wrapped.contains(&cur) {
                self.share_to_team(&doc, d.doc_version, name)?;
                done.push((doc, d.doc_version));
            }
        }
        Ok(done)
    }

    /// The epoch key that opens a wrap addressed to a team epoch (PROTOCOL.md §12.3): the
    /// wrap's recipient must be an epoch of a team whose verified chain holds it, and this
    /// device's key for that epoch must be the logged key. `None` when no team this device can
    /// verify holds that epoch (the caller then opens the wrap as its own, and fails as before).
    ///
    /// # Errors
    /// Log and integrity errors of [`Session::verify_team`] and [`Session::team_epoch_secret`].
    pub(crate) fn team_key_for(&mut self, w: &WrappedKey) -> Result<Option<(KeyId, EpochSecret)>> {
        let candidates = match self.team_list() {
            Ok(c) => c,
            Err(_) => self.ks.team_names(),
        };
        for name in candidates {
            let Ok(Some(team)) = self.verify_team(&name) else {
                continue;
            };
            let Some(epoch) = team.state.epoch_by_id(&w.recipient).cloned() else {
                continue;
            };
            let secret = self.team_epoch_secret(&team, &epoch)?;
            return Ok(Some((epoch.id, secret)));
        }
        Ok(None)
    }
}
