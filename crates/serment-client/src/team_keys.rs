//! Team epoch keys on the client (PROTOCOL.md §12.3): accepting a key wrapped to this device, and
//! the hand-over of every epoch key a member device holds to another device of its own identity
//! (a device linked with `serment device link`, or on demand with `serment device catch-up`).

use serment_api::TeamsResponse;
use serment_api::{TeamKeyHandoverRequest, TeamKeyHandoverResponse, TeamKeysResponse};
use serment_core::KeyId;
use serment_core::identity::DeviceRecord;
use serment_core::ids::KeyKind;
use serment_core::team::{
    EpochSecret, TeamEpoch, TeamKeyWrap, unwrap_epoch_secret, wrap_epoch_secret,
};
use serment_core::wrap::Recipient;

use crate::api::{b64d, b64e};
use crate::error::{ClientError, Result};
use crate::team::VerifiedTeam;
use crate::vault::Session;

fn team_err(reason: &'static str) -> ClientError {
    ClientError::Integrity(serment_core::Error::Team { reason })
}

impl Session {
    /// This device's team key wraps of `team`, as the server serves them (decoded, unchecked).
    fn my_team_key_wraps(&self, team: &str) -> Result<Vec<TeamKeyWrap>> {
        let keys: TeamKeysResponse = self.api.get_json(&format!("/v1/teams/{team}/keys"), true)?;
        keys.keys
            .iter()
            .map(|k| TeamKeyWrap::decode(&b64d(k, "keys")?).map_err(ClientError::Integrity))
            .collect()
    }

    /// The Ed25519 key of the device that made a team key wrap, if this device accepts it as a
    /// sharer of `epoch` (PROTOCOL.md §12.3): this device itself; an admin device that signed a
    /// change of that epoch in the verified chain (the devices that distribute an epoch's key);
    /// or, while this handle is a current member of the team (`member`), a device current at the
    /// head of the proven key history of this device's own identity (a hand-over). A revoked
    /// device, another identity's device, or a hand-over after this handle left the team, is
    /// refused.
    fn team_key_sharer(
        &mut self,
        epoch: &TeamEpoch,
        sharer: &KeyId,
        member: bool,
    ) -> Result<[u8; 32]> {
        if *sharer == self.ks.device.id() {
            return Ok(self.ks.device.signing_public_key());
        }
        if let Some(k) = epoch
            .signers
            .iter()
            .find(|k| KeyId::of(KeyKind::Device, k) == *sharer)
        {
            return Ok(*k);
        }
        if !member {
            return Err(team_err(
                "a team key handed on between devices of a handle that is no longer a member of \
                 the team",
            ));
        }
        let me = self.my_handle();
        let own = crate::log::key_history(&self.api, &mut self.ks, &me, None)?;
        own.devices
            .iter()
            .find(|d| d.device_id() == *sharer)
            .map(|d| d.signing_key)
            .ok_or(team_err(
                "a team key handed on by a device that is neither an admin device of that epoch \
                 nor a current device of this identity (revoked, removed, or another identity's)",
            ))
    }

    /// The epoch secret of `epoch`, from this device's team key wraps, checked against the key
    /// the replayed chain holds for it and against its sharer (PROTOCOL.md §12.3).
    ///
    /// # Errors
    /// [`ClientError::Withheld`] (exit 4) if this device's handle was a member while the epoch was
    /// current and the server serves no key for it; [`ClientError::NotShared`] if it was not;
    /// [`ClientError::Integrity`] for a key that is not the logged one or a sharer refused.
    pub fn team_epoch_secret(
        &mut self,
        team: &VerifiedTeam,
        epoch: &TeamEpoch,
    ) -> Result<EpochSecret> {
        let wraps = self.my_team_key_wraps(&team.state.team)?;
        self.epoch_secret_from(team, epoch, &wraps)
    }

    fn epoch_secret_from(
        &mut self,
        team: &VerifiedTeam,
        epoch: &TeamEpoch,
        wraps: &[TeamKeyWrap],
    ) -> Result<EpochSecret> {
        let name = &team.state.team;
        let me = self.ks.device.id();
        let mut last_err = None;
        for w in wraps {
            if w.recipient != me || w.epoch != epoch.epoch {
                continue;
            }
            // The key first (it must be the one the chain logged for this epoch), then who
            // handed it on.
            let opened = unwrap_epoch_secret(w, &self.ks.device, name, epoch.epoch, &epoch.key)
                .map_err(ClientError::Integrity)
                .and_then(|secret| {
                    let member = team.state.is_member(&self.my_handle());
                    let k = self.team_key_sharer(epoch, &w.sharer, member)?;
                    w.verify_signature(&k).map_err(ClientError::Integrity)?;
                    Ok(secret)
                });
            match opened {
                Ok(s) => return Ok(s),
                Err(e) => last_err = Some(e),
            }
        }
        if let Some(e) = last_err {
            return Err(e);
        }
        if epoch.members.iter().any(|h| *h == self.my_handle()) {
            return Err(ClientError::Withheld(format!(
                "the log shows that this handle was a member of team {name} at epoch {}, but \
                 the server serves this device no key for it (withheld; a device linked before \
                 keys were handed over gets them with `serment device catch-up DEVICE` on \
                 another device)",
                epoch.epoch
            )));
        }
        Err(ClientError::NotShared(format!(
            "this device holds no key of team {name} for epoch {}",
            epoch.epoch
        )))
    }

    /// `POST /v1/teams/{name}/keys`: stores team key wraps this device made for other current
    /// devices of its identity (PROTOCOL.md §12.5). Returns how many the server stored.
    ///
    /// # Errors
    /// [`ClientError::Server`] 403 if this handle is not a current member or a recipient is not
    /// a current device of this identity; 400 for a wrap that is not of an epoch the chain
    /// holds; transport errors.
    pub fn post_team_key_wraps(&self, team: &str, wraps: &[Vec<u8>]) -> Result<usize> {
        let r: TeamKeyHandoverResponse = self.api.post_json(
            &format!("/v1/teams/{team}/keys"),
            &TeamKeyHandoverRequest {
                key_wraps: wraps.iter().map(|w| b64e(w)).collect(),
            },
            true,
        )?;
        Ok(r.stored as usize)
    }

    /// Hands every team epoch key this device holds on to `new`, another current device of this
    /// identity (PROTOCOL.md §12.3, "Hand-over"): for each team the server lists for this handle
    /// whose verified chain shows the handle a current member, each epoch key this device
    /// accepts is wrapped to `new` (sharer = this device) and posted in one request per team.
    /// Epochs this device holds no key of are skipped; a device without an X-Wing key receives
    /// nothing. Returns how many wraps the server stored (0 for a repeated hand-over).
    ///
    /// # Errors
    /// Log, integrity (a key of this device that fails its checks), server and transport errors.
    pub fn hand_over_team_keys(&mut self, new: &DeviceRecord) -> Result<usize> {
        let recipient = Recipient::from(new);
        if recipient.hybrid_key.is_none() || new.device_id() == self.ks.device.id() {
            return Ok(0);
        }
        let me = self.my_handle();
        let listed: TeamsResponse = self.api.get_json("/v1/teams", true)?;
        let mut stored = 0usize;
        for name in listed.teams {
            let Some(team) = self.verify_team(&name)? else {
                continue;
            };
            if !team.state.is_member(&me) {
                continue;
            }
            let held = self.my_team_key_wraps(&name)?;
            let mut wraps = Vec::new();
            let mut rng = serment_core::rng::os_rng();
            for epoch in &team.state.epochs {
                let secret = match self.epoch_secret_from(&team, epoch, &held) {
                    Ok(s) => s,
                    Err(ClientError::NotShared(_) | ClientError::Withheld(_)) => continue,
                    Err(e) => return Err(e),
                };
                let w = wrap_epoch_secret(
                    &secret,
                    &name,
                    epoch.epoch,
                    &recipient,
                    &self.ks.device,
                    &mut rng,
                )
                .map_err(|e| ClientError::Input(e.to_string()))?;
                wraps.push(w);
            }
            if wraps.is_empty() {
                continue;
            }
            stored = stored.saturating_add(self.post_team_key_wraps(&name, &wraps)?);
        }
        Ok(stored)
    }
}
