//! Recovery when every device is lost (PROTOCOL.md §4.2, issue 17 §2): the recovery code
//! (`serment id recovery-code`) and `serment recover`.
//!
//! Design: a recovery code opens an escrow of the identity key and of the keys of one more
//! device of the identity, the *recovery device*: a normal, logged suite-3 device that every
//! sender wraps to and that the creating device catches up, so that it can catch up the device a
//! recovery enrols with the existing catch-up (§4.1). The escrow lives on the server, sealed
//! under an Argon2id key of the code (floor enforced, `serment_core::recovery`). `recover`
//! opens it, enrols a new device signed by the identity key, checks in the proven key history
//! that the identity key is the handle's current one, that the recovery device is current (a
//! burnt or stale escrow is not) and that the new device is logged, has the recovery device
//! catch it up, logs a recovery entry (kind 12) that every other device sees, revokes the
//! recovery device (the code is burnt) and makes a new code.

use serment_api::{AppendedResponse, EscrowResponse, PutEscrowRequest, RecoveryRequest};
use serment_core::KeyId;
use serment_core::identity::{DeviceRecord, DeviceSecret, IdentitySecret};
use serment_core::keystore::KdfParams;
#[cfg(feature = "native")]
use serment_core::log::entry::EntryKind;
use serment_core::log::entry::Recovery;
use serment_core::recovery::{self, EscrowSecrets, RecoveryCode};

use crate::api::{Api, b64d, b64e, key_id};
use crate::error::{ClientError, Result};
use crate::vault::Session;

impl Api {
    /// `POST /v1/recovery/escrow`: stores or replaces this handle's escrow.
    ///
    /// # Errors
    /// [`ClientError::Server`] (409: the recovery device is not a current device of this
    /// identity).
    pub fn put_escrow(&self, escrow: &[u8], recovery_device: &KeyId) -> Result<()> {
        let resp = self.post_json_raw(
            "/v1/recovery/escrow",
            &PutEscrowRequest {
                escrow: b64e(escrow),
                recovery_device: recovery_device.to_string(),
            },
            true,
        )?;
        Self::check(resp)?;
        Ok(())
    }

    /// `GET /v1/recovery/escrow/{handle}` (no authentication): the escrow and the recovery
    /// device the server says it names (checked by the caller).
    ///
    /// # Errors
    /// [`ClientError::Input`] for an invalid handle; [`ClientError::Server`] (404: no escrow;
    /// 429: too many requests); [`ClientError::BadResponse`].
    pub fn escrow(&self, handle: &str) -> Result<(KeyId, Vec<u8>)> {
        serment_core::identity::validate_handle(handle)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let r: EscrowResponse = self.get_json(&format!("/v1/recovery/escrow/{handle}"), false)?;
        if r.handle != handle {
            return Err(ClientError::BadResponse(
                "the escrow served is for another handle".into(),
            ));
        }
        Ok((
            key_id(&r.recovery_device, "recovery_device")?,
            b64d(&r.escrow, "escrow")?,
        ))
    }

    /// `POST /v1/log/recoveries`: returns the log indices appended.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn post_recovery(&self, entry: &[u8]) -> Result<Vec<u64>> {
        let v: AppendedResponse = self.post_json(
            "/v1/log/recoveries",
            &RecoveryRequest {
                recovery: b64e(entry),
            },
            true,
        )?;
        Ok(v.log_indices)
    }
}

/// What [`Session::new_recovery_code`] did.
#[derive(Debug)]
pub struct NewRecoveryCode {
    /// The code: show it once, never store it.
    pub code: RecoveryCode,
    /// The new recovery device.
    pub recovery_device: KeyId,
    /// Document versions re-wrapped for it (one logged wrap each).
    pub caught_up: usize,
    /// Team epoch keys handed over to it.
    pub team_keys: usize,
    /// The recovery device this code replaced, revoked (logged).
    pub revoked_previous: Option<KeyId>,
    /// Whether a code existed before this one (this keystore made one, or the server held an
    /// escrow for the handle): its escrow stays in the backups for their whole retention.
    pub replaced: bool,
    /// With `rotate` ([`Session::new_recovery_code_with`]): the new identity key's id, and the
    /// devices the rotation retired (the earlier codes' recovery devices).
    pub rotated_to: Option<KeyId>,
    /// The devices the rotation retired.
    pub dropped: Vec<KeyId>,
}

/// What changed in this identity that `ls` and `get` warn about (REVIEW3 S1), from one proven
/// key history ([`Session::peek_identity_changes`]).
#[derive(Debug, Clone)]
pub struct IdentityChanges {
    /// Current devices this device did not make, link or already show.
    pub new_devices: Vec<KeyId>,
    /// Recovery entries (kind 12) not shown yet, with their log indices.
    pub recoveries: Vec<(u64, Recovery)>,
    /// Whether the recovery code this device made still works.
    pub recovery: RecoveryStatus,
}

/// Whether the recovery code this device made can still recover the identity (S11: a rotation
/// of the identity key, or the recovery device retired, makes it useless without a word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStatus {
    /// This device made no recovery code.
    None,
    /// The code's recovery device is current in the proven key history and its escrow holds
    /// the current identity key.
    Usable,
    /// The identity key rotated since the code was made, or its recovery device is no longer
    /// current: the code can no longer recover (`serment id recovery-code` makes a new one).
    Stale,
}

impl RecoveryStatus {
    /// `"none"`, `"usable"` or `"stale"` (the `--json` value).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Usable => "usable",
            Self::Stale => "stale",
        }
    }
}

/// An escrow error as a client error: a wrong code is the keystore's (exit 3); anything the
/// server could have done to the escrow (weakened parameters, another format, version or suite,
/// a truncated escrow) is an integrity failure (exit 4).
#[cfg(feature = "native")]
fn escrow_err(e: serment_core::Error) -> ClientError {
    match e {
        serment_core::Error::KeystoreDecrypt => ClientError::Keystore(e),
        other => ClientError::Integrity(other),
    }
}

impl Session {
    /// `serment id recovery-code` (PROTOCOL.md §4.2): creates a recovery device (a suite-3 device
    /// record signed by the identity key, logged and checked current in the proven history),
    /// catches it up and hands it the team keys, seals the escrow of the identity key and its
    /// keys under a fresh code with Argon2id `params`, stores it on the server, and revokes the
    /// recovery device this device made before (the previous code no longer works).
    ///
    /// # Errors
    /// [`ClientError::Keystore`] for `params` below the floor; [`ClientError::OwnWriteMissing`]
    /// if the log does not show the new record; log, server and transport errors.
    pub fn new_recovery_code(&mut self, params: KdfParams) -> Result<NewRecoveryCode> {
        self.new_recovery_code_with(params, false)
    }

    /// [`Session::new_recovery_code`]; with `rotate`, first rotates the identity key,
    /// re-certifying every current device of the identity except the recovery devices of the
    /// codes replaced (this keystore's, and the one the server's escrow names) (REVIEW5 U18).
    /// An earlier code's escrow is never gone: the backups keep every escrow object for their
    /// whole retention (Object Lock), and it holds the identity key of its time. After the
    /// rotation that key and that recovery device are retired in the log, so an exposed or lost
    /// code opens nothing usable; without it, the old code still opens the current identity
    /// key from any copy of the backup until the retention ends.
    ///
    /// # Errors
    /// As [`Session::new_recovery_code`], and those of [`Session::rotate_dropping`].
    pub fn new_recovery_code_with(
        &mut self,
        params: KdfParams,
        rotate: bool,
    ) -> Result<NewRecoveryCode> {
        params.check().map_err(ClientError::Keystore)?;
        let handle = self.ks.handle().to_owned();
        let mut earlier: Vec<KeyId> = self.ks.recovery_device().into_iter().collect();
        match self.api.escrow(&handle) {
            Ok((d, _)) => earlier.push(d),
            Err(ClientError::Server { status: 404, .. }) => {}
            Err(_) if !rotate => {}
            Err(e) => return Err(e),
        }
        let replaced = !earlier.is_empty();
        let (rotated_to, dropped) = if rotate {
            let out = self.rotate_dropping(&earlier)?;
            (Some(out.identity_id), out.dropped)
        } else {
            (None, Vec::new())
        };
        let device = DeviceSecret::generate();
        let record = self
            .ks
            .identity
            .sign_device_record(&handle, &device, crate::now_secs())
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let rec = DeviceRecord::decode_verified(&record).map_err(ClientError::Integrity)?;
        self.api.register_device(&record)?;
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        if !hist.devices.iter().any(|d| d.bytes == record) {
            return Err(ClientError::OwnWriteMissing(
                "the recovery device's record is not current in the log's history of this handle"
                    .into(),
            ));
        }
        let (caught_up, _) = self.catch_up(&rec)?;
        let team_keys = self.hand_over_team_keys(&rec)?;
        let code = RecoveryCode::generate().map_err(ClientError::Integrity)?;
        let escrow = recovery::seal_escrow(
            &code,
            &handle,
            &EscrowSecrets {
                identity: IdentitySecret::from_seed(&self.ks.identity.to_seed()),
                device,
            },
            params,
        )
        .map_err(ClientError::Keystore)?;
        self.api.put_escrow(&escrow, &rec.device_id())?;
        // The previous code is burnt once its recovery device is revoked (logged).
        let previous = self.ks.recovery_device();
        self.ks.set_recovery_device(Some(&rec.device_id()));
        // The recovery device is this device's own doing: never a device "it did not link"
        // (REVIEW3 S1's alarm).
        self.ks.add_own_device(rec.device_id());
        self.ks.save()?;
        let mut revoked_previous = None;
        if let Some(prev) = previous.filter(|p| *p != rec.device_id())
            && hist.devices.iter().any(|d| d.device_id() == prev)
        {
            self.revoke_device(&prev)?;
            revoked_previous = Some(prev);
        }
        Ok(NewRecoveryCode {
            code,
            recovery_device: rec.device_id(),
            caught_up,
            team_keys,
            revoked_previous,
            replaced,
            rotated_to,
            dropped,
        })
    }

    /// Whether the recovery code this device made still works, from the proven key history
    /// (PROTOCOL.md §4.2): its recovery device current and the identity key unchanged since.
    /// Another device of the identity replacing the server's escrow is not seen here.
    ///
    /// # Errors
    /// Log errors.
    pub fn recovery_status(&mut self) -> Result<RecoveryStatus> {
        if self.ks.recovery_device().is_none() {
            return Ok(RecoveryStatus::None);
        }
        let hist = self.own_key_history()?;
        Ok(self.status_in(&hist))
    }

    /// What `ls` and `get` warn about (REVIEW3 S1), from one proven key history: the devices
    /// [`Session::peek_unseen_devices`] and the recoveries [`Session::peek_unseen_recoveries`]
    /// name, and [`Session::recovery_status`]. Marks nothing seen.
    ///
    /// # Errors
    /// Log errors.
    pub fn peek_identity_changes(&mut self) -> Result<IdentityChanges> {
        let hist = self.own_key_history()?;
        Ok(IdentityChanges {
            new_devices: self.new_devices_in(&hist, false)?,
            recoveries: self.new_recoveries_in(&hist, false)?,
            recovery: self.status_in(&hist),
        })
    }

    fn own_key_history(&mut self) -> Result<serment_core::log::history::KeyHistory> {
        let handle = self.ks.handle().to_owned();
        crate::log::key_history(&self.api, &mut self.ks, &handle, None)
    }

    fn status_in(&self, hist: &serment_core::log::history::KeyHistory) -> RecoveryStatus {
        let Some(r) = self.ks.recovery_device() else {
            return RecoveryStatus::None;
        };
        let current = hist.devices.iter().any(|d| d.device_id() == r);
        let same_identity = self
            .ks
            .recovery_identity()
            .is_none_or(|i| i == self.ks.identity.id());
        if current && same_identity {
            RecoveryStatus::Usable
        } else {
            RecoveryStatus::Stale
        }
    }

    /// Devices current in this handle's proven key history that this device did not make, link
    /// or already warn about (REVIEW3 S1: a device enrolled with a stolen identity key, e.g.
    /// from a recovery escrow opened with a stolen code, without any recovery entry). Marks
    /// them known (saved). The first call takes the devices current then as known.
    ///
    /// # Errors
    /// Log errors.
    pub fn unseen_devices(&mut self) -> Result<Vec<KeyId>> {
        self.new_devices(true)
    }

    /// [`Session::unseen_devices`] without marking them known: what every other command warns
    /// about until `serment device list` shows them (REVIEW3 S1). The first call still records
    /// the devices current then as known.
    ///
    /// # Errors
    /// Log errors.
    pub fn peek_unseen_devices(&mut self) -> Result<Vec<KeyId>> {
        self.new_devices(false)
    }

    fn new_devices(&mut self, mark: bool) -> Result<Vec<KeyId>> {
        let hist = self.own_key_history()?;
        self.new_devices_in(&hist, mark)
    }

    fn new_devices_in(
        &mut self,
        hist: &serment_core::log::history::KeyHistory,
        mark: bool,
    ) -> Result<Vec<KeyId>> {
        let current: Vec<KeyId> = hist.devices.iter().map(DeviceRecord::device_id).collect();
        let me = self.ks.device.id();
        let out: Vec<KeyId> = match self.ks.known_devices() {
            None => vec![],
            Some(known) => current
                .iter()
                .filter(|d| **d != me && !known.contains(d))
                .copied()
                .collect(),
        };
        if self.ks.known_devices().is_none() || (mark && !out.is_empty()) {
            self.ks.add_known_devices(&current);
            self.ks.save()?;
        }
        Ok(out)
    }

    /// Recovery entries (kind 12) of this handle logged after the newest this device has shown,
    /// from the proven key history; marks them shown (saved). A device warns about each on its
    /// next command (PROTOCOL.md §4.2).
    ///
    /// # Errors
    /// Log errors.
    pub fn unseen_recoveries(&mut self) -> Result<Vec<(u64, Recovery)>> {
        self.new_recoveries(true)
    }

    /// [`Session::unseen_recoveries`] without marking them shown (REVIEW3 S1).
    ///
    /// # Errors
    /// Log errors.
    pub fn peek_unseen_recoveries(&mut self) -> Result<Vec<(u64, Recovery)>> {
        self.new_recoveries(false)
    }

    fn new_recoveries(&mut self, mark: bool) -> Result<Vec<(u64, Recovery)>> {
        let hist = self.own_key_history()?;
        self.new_recoveries_in(&hist, mark)
    }

    fn new_recoveries_in(
        &mut self,
        hist: &serment_core::log::history::KeyHistory,
        mark: bool,
    ) -> Result<Vec<(u64, Recovery)>> {
        let seen = self.ks.recoveries_seen();
        let me = self.ks.device.id();
        let out: Vec<(u64, Recovery)> = hist
            .recoveries
            .iter()
            .filter(|(i, r)| seen.is_none_or(|s| *i > s) && r.new_device != me)
            .cloned()
            .collect();
        if let (true, Some((i, _))) = (mark, out.last()) {
            self.ks.set_recoveries_seen(*i);
            self.ks.save()?;
        }
        Ok(out)
    }
}

/// What `serment recover` did.
#[cfg(feature = "native")]
#[derive(Debug)]
pub struct Recovered {
    /// The session of the new device, logged in.
    pub session: Session,
    /// The recovery device whose escrow was opened (now revoked: the code is burnt).
    pub used_recovery_device: KeyId,
    /// The recovery entry's log index.
    pub recovery_index: u64,
    /// Document versions the recovery device re-wrapped for the new device.
    pub caught_up: usize,
    /// Team epoch keys handed over to the new device.
    pub team_keys: usize,
    /// Old devices revoked (`--revoke-others`).
    pub revoked: Vec<KeyId>,
    /// The new identity id, if the identity key was rotated (`--rotate`).
    pub rotated_to: Option<KeyId>,
    /// The code that replaces the used one, and its recovery device.
    pub new_code: NewRecoveryCode,
}

/// Options of [`recover`].
#[cfg(feature = "native")]
#[derive(Debug, Clone, Copy)]
pub struct RecoverOptions {
    /// Argon2id parameters of the new keystore.
    pub keystore_params: KdfParams,
    /// Argon2id parameters of the new escrow.
    pub escrow_params: KdfParams,
    /// Retire every other device of the identity (the lost ones): implies [`Self::rotate`],
    /// since they held the identity key (PROTOCOL.md §4.1).
    pub revoke_others: bool,
    /// Rotate the identity key (kind 2) after the recovery.
    pub rotate: bool,
}

#[cfg(feature = "native")]
/// `serment recover` (PROTOCOL.md §4.2): on a new machine, opens `handle`'s escrow with `code`
/// (parameters below the floor, an unknown version or suite refused before any work), enrols a
/// new device (record signed by the identity key, registered, checked current in the proven key
/// history with the identity key and the recovery device), has the recovery device catch it up,
/// logs the recovery entry (kind 12; checked in the log), revokes the recovery device (the code
/// is burnt) and, as asked, the other devices and the identity key, then makes a new code.
/// Writes the new keystore at `path`; on any failure after it was written, removes it.
///
/// # Errors
/// [`ClientError::KeystoreExists`]; [`ClientError::Keystore`] for a wrong code (or an escrow
/// of another handle); [`ClientError::Integrity`] for weakened parameters, an unknown format,
/// an escrow whose keys are not the handle's current identity and recovery device in the log;
/// [`ClientError::OwnWriteMissing`] when the new device or the recovery entry is not in the
/// log; server (404: no escrow) and transport errors.
pub fn recover(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    server: &str,
    transport: &crate::transport::Transport,
    handle: &str,
    code: &RecoveryCode,
    opts: RecoverOptions,
) -> Result<Recovered> {
    recover_pinned(
        path, passphrase, server, transport, handle, code, opts, None,
    )
}

/// A pin given by the user for a new machine's first contact (REVIEW4 T17): the log's
/// verifier key as the operator publishes it (`serment serve` prints it), instead of whatever
/// the server serves.
///
/// # Errors
/// [`ClientError::Input`] for a key that does not parse.
#[cfg(feature = "native")]
pub fn expected_log_state(log_key: Option<&str>) -> Result<Option<crate::keystore::LogState>> {
    let Some(k) = log_key else {
        return Ok(None);
    };
    let k = k.trim();
    serment_core::log::note::VerifierKey::parse(k)
        .map_err(|e| ClientError::Input(format!("--log-key: {e}")))?;
    Ok(Some(crate::keystore::LogState {
        vkey: k.to_owned(),
        ..crate::keystore::LogState::default()
    }))
}

/// [`recover`] with the log key pinned in advance (`log_key`, REVIEW4 T17): a server serving
/// another log key, or checkpoints it did not sign, is refused before anything is enrolled.
///
/// # Errors
/// As [`recover`]; [`ClientError::Input`] for a malformed `log_key`; log errors for a server
/// whose log is not the pinned one.
#[cfg(feature = "native")]
#[allow(clippy::too_many_arguments)]
pub fn recover_pinned(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    server: &str,
    transport: &crate::transport::Transport,
    handle: &str,
    code: &RecoveryCode,
    opts: RecoverOptions,
    log_key: Option<&str>,
) -> Result<Recovered> {
    let pinned = expected_log_state(log_key)?;
    if path.exists() {
        return Err(ClientError::KeystoreExists(path.display().to_string()));
    }
    let api = Api::with_transport(server, transport)?;
    let (served_device, escrow) = api.escrow(handle)?;
    recovery::escrow_params(&escrow).map_err(escrow_err)?;
    let secrets = recovery::open_escrow(code, handle, &escrow).map_err(escrow_err)?;
    let used = secrets.device.id();
    if served_device != used {
        return Err(ClientError::Integrity(
            serment_core::Error::ContextMismatch(
                "the escrow names another recovery device than the one it holds",
            ),
        ));
    }
    enrol_recovered(
        path,
        passphrase,
        api,
        transport,
        handle,
        secrets,
        DeviceSecret::generate(),
        pinned,
        None,
        opts,
    )
}

/// Steps 3-8 of a recovery (PROTOCOL.md §4.2), shared by the recovery code and social recovery
/// (§4.3): with the escrow's `secrets` opened, checks them against the proven key history,
/// enrols `device` as the new device, has the recovery device catch it up, logs the recovery
/// entry (kind 12), burns the recovery device, and makes a new code. `log_state`: the log pin
/// to start from (social recovery pinned it at the request), else the log key is pinned now.
///
/// # Errors
/// As [`recover`].
#[cfg(feature = "native")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn enrol_recovered(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    api: Api,
    transport: &crate::transport::Transport,
    handle: &str,
    secrets: EscrowSecrets,
    device: DeviceSecret,
    log_state: Option<crate::keystore::LogState>,
    record_at: Option<u64>,
    opts: RecoverOptions,
) -> Result<Recovered> {
    let used = secrets.device.id();
    // Before anything is enrolled: the escrow's keys must be the handle's current identity key
    // and a current recovery device in the proven key history (the log key pinned on this
    // first contact, as `register` does). A burnt code's escrow (its recovery device revoked),
    // one from before a rotation, or another identity's are refused here.
    let identity_pub = secrets.identity.public_key();
    let mut r_ks =
        crate::keystore::Keystore::in_memory_for(secrets.identity, secrets.device, handle, 0);
    match log_state {
        Some(l) => r_ks.set_log_state(api.base(), l),
        None => crate::log::pin_log_key(&api, &mut r_ks)?,
    }
    let hist = crate::log::key_history(&api, &mut r_ks, handle, None)?;
    if hist.identity_key != identity_pub {
        return Err(ClientError::Integrity(
            serment_core::Error::ContextMismatch(
                "the escrow's identity key is not the handle's current one in the log (an escrow of another identity, or from before a rotation)",
            ),
        ));
    }
    let Some(r_rec) = hist.devices.iter().find(|d| d.device_id() == used).cloned() else {
        return Err(ClientError::Integrity(
            serment_core::Error::ContextMismatch(
                "the escrow's recovery device is not a current device of the handle in the log (a burnt code, or a replayed or substituted escrow)",
            ),
        ));
    };
    r_ks.set_created_at(r_rec.created_at);
    // REVIEW4 T3: a social recovery's device is fixed by its request, so its record is made
    // deterministic (`record_at` = the request's signed time; Ed25519 is deterministic): a
    // re-run after a failure past the registration sends the very same record ("unchanged").
    let created_at = record_at.unwrap_or_else(crate::now_secs);
    let record = r_ks
        .identity
        .sign_device_record(handle, &device, created_at)
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let new_rec = DeviceRecord::decode_verified(&record).map_err(ClientError::Integrity)?;
    api.register_device(&record)?;
    let mut ks = crate::keystore::Keystore::create_joined(
        path,
        passphrase,
        IdentitySecret::from_seed(&r_ks.identity.to_seed()),
        device,
        handle,
        handle,
        created_at,
        opts.keystore_params,
    )?;
    ks.set_server(api.base(), true);
    ks.set_server_ca(transport.ca_pem());
    if let Some(l) = r_ks.log_state(api.base()) {
        ks.set_log_state(api.base(), l.clone());
    }
    let stage = (|| {
        let mut s = Session::connect_with(ks, Some(api.base()), transport)?;
        // The new device trusts itself recovered only once its record is current in the
        // proven history, under the same identity key.
        let hist = crate::log::key_history(&s.api, &mut s.ks, handle, None)?;
        if hist.identity_key != identity_pub || !hist.devices.iter().any(|d| d.bytes == record) {
            return Err(ClientError::OwnWriteMissing(
                "this device's record is not current in the log's history of its handle".into(),
            ));
        }
        s.ks.set_recovered_from(&r_rec.bytes);
        s.ks.save()?;
        // The recovery device catches the new one up (§4.1), in a session of its own.
        if let Some(l) = s.ks.log_state(s.api.base()) {
            r_ks.set_log_state(s.api.base(), l.clone());
        }
        let r_api = Api::with_transport(s.api.base(), transport)?;
        let mut r = Session::connect_over(r_ks, r_api)?;
        let (caught_up, _) = r.catch_up_with(&new_rec, true)?;
        let team_keys = r.hand_over_team_keys(&new_rec)?;
        Ok((s, hist, caught_up, team_keys))
    })();
    let (mut s, hist, caught_up, team_keys) = match stage {
        Ok(x) => x,
        Err(e) => {
            // Nothing half-recovered stays behind: the keystore goes (what the log shows
            // stays; a new attempt enrols another device, the code still works).
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    };
    // From here the keystore stays, whatever fails: the code is burnt below, and this device
    // is the way back in (`serment id recovery-code` makes a new code if the last step fails).
    {
        // The recovery entry, by the new device, checked in the log.
        let entry = Recovery::sign(
            handle,
            &s.ks.identity,
            &used,
            &new_rec.device_id(),
            crate::now_secs(),
        )
        .map_err(|e| ClientError::Input(e.to_string()))?;
        let idx = s.api.post_recovery(&entry)?;
        crate::log::check_own_writes(
            &s.api,
            &mut s.ks,
            &idx,
            &[(EntryKind::Recovery, entry.as_slice())],
        )?;
        let recovery_index = idx.first().copied().unwrap_or_default();
        s.ks.set_recoveries_seen(recovery_index);
        // Burn the used code: its recovery device is revoked.
        s.revoke_device(&used)?;
        let mut revoked = vec![];
        let mut rotated_to = None;
        // Revoking the lost devices without a rotation would leave their identity key live
        // (linked devices hold it, PROTOCOL.md §4.1; main's `device revoke` rule): whoever has a
        // lost device could still certify new devices. `--revoke-others` therefore rotates.
        if opts.rotate || opts.revoke_others {
            // The rotation re-certifies this device only: every other one (the lost ones, the
            // recovery device) is retired with the old key.
            s.rotate_identity()?;
            rotated_to = Some(s.ks.identity.id());
            revoked.extend(
                hist.devices
                    .iter()
                    .map(DeviceRecord::device_id)
                    .filter(|d| *d != used && *d != new_rec.device_id()),
            );
        }
        let new_code = s.new_recovery_code(opts.escrow_params)?;
        s.ks.save()?;
        Ok(Recovered {
            session: s,
            used_recovery_device: used,
            recovery_index,
            caught_up,
            team_keys,
            revoked,
            rotated_to,
            new_code,
        })
    }
}
