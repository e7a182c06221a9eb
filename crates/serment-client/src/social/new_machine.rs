//! The new machine's side of a social recovery (PROTOCOL.md §4.3): the request, kept pending
//! next to the keystore path, and the completion, every rule checked again in the proven log.

use serde::{Deserialize, Serialize};
use serment_api::{
    FetchRecoveryRequest, PostRecoveryRequest, RecoveryRequestCreated, SocialRecoveryResponse,
};
use serment_core::KeyId;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::keystore::KdfParams;
use serment_core::log::entry::EntryKind;
use serment_core::log::social::SocialRecoveryRequest;
use serment_core::recovery::EscrowSecrets;
use serment_core::social::{
    Share, ShareContext, ShareWrap, SocialSecret, escrow_hash, open_social_escrow, sign_fetch,
    unwrap_share,
};

use super::chain::{current_contacts, integrity, proven_social, vetoed_by_a_current_device};
use super::parse_request_id;
use crate::api::{Api, b64d, b64e};
use crate::error::{ClientError, Result};
use crate::recovery::{RecoverOptions, Recovered};

/// The state a recovery request leaves on the new machine until it completes: the new device's
/// keys, sealed under the passphrase like a keystore (`<keystore>.recovery-pending`).
#[derive(Debug, Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    handle: String,
    server: String,
    request_id: String,
    /// A sealed in-memory keystore of the new device (its identity a placeholder) holding the
    /// log pin taken at the request.
    keystore: String,
}

/// Where a pending request is kept for the keystore at `path`.
pub fn pending_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".recovery-pending");
    std::path::PathBuf::from(p)
}

/// What [`request_recovery`] did.
#[derive(Debug, Clone)]
pub struct RequestMade {
    /// The request id (32 hex) contacts approve.
    pub request_id: String,
    /// Its log index.
    pub index: u64,
    /// The new device.
    pub new_device: KeyId,
    /// Its fingerprint, to read to the contacts.
    pub fingerprint: String,
    /// The contacts to ask, and K.
    pub contacts: Vec<String>,
    /// K.
    pub threshold: u8,
    /// The waiting period, seconds.
    pub waiting_period: u64,
    /// The log's verifier key this machine pinned (REVIEW4 T17: to compare with the one the
    /// operator publishes, when it was not given in advance).
    pub log_key: String,
}

/// `serment recover --social --handle H --server URL` (PROTOCOL.md §4.3): pins the log key,
/// reads `handle`'s current contacts entry in the proven log (signed by its current identity
/// key), makes a new device and logs its request (kind 14), checked in the log; the device's
/// keys are kept, sealed under `passphrase`, in [`pending_path`] until `--complete`.
///
/// # Errors
/// [`ClientError::KeystoreExists`] if a keystore or a pending request exists at `path`;
/// [`ClientError::Integrity`]; server (404: no contacts) and transport errors.
pub fn request_recovery(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    server: &str,
    transport: &crate::transport::Transport,
    handle: &str,
    params: KdfParams,
) -> Result<RequestMade> {
    request_recovery_pinned(path, passphrase, server, transport, handle, params, None)
}

/// [`request_recovery`] with the log key pinned in advance (`log_key`, REVIEW4 T17; see
/// [`crate::recovery::expected_log_state`]): a server serving another log key is refused
/// ([`ClientError::LogKeyChanged`]) before anything is requested.
///
/// # Errors
/// As [`request_recovery`]; [`ClientError::Input`] for a malformed `log_key`.
pub fn request_recovery_pinned(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    server: &str,
    transport: &crate::transport::Transport,
    handle: &str,
    params: KdfParams,
    log_key: Option<&str>,
) -> Result<RequestMade> {
    let pinned = crate::recovery::expected_log_state(log_key)?;
    let pending = pending_path(path);
    if path.exists() {
        return Err(ClientError::KeystoreExists(path.display().to_string()));
    }
    if pending.exists() {
        return Err(ClientError::KeystoreExists(pending.display().to_string()));
    }
    serment_core::identity::validate_handle(handle)
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let api = Api::with_transport(server, transport)?;
    let device = DeviceSecret::generate();
    let mut ks = crate::keystore::Keystore::in_memory_for(
        IdentitySecret::generate(),
        device,
        handle,
        crate::now_secs(),
    );
    if let Some(l) = pinned {
        ks.set_log_state(api.base(), l);
    }
    crate::log::pin_log_key(&api, &mut ks)?;
    let (st, hist) = proven_social(&api, &mut ks, handle)?;
    let (_, c, ch) = current_contacts(&st, &hist)?;
    let entry = SocialRecoveryRequest::sign(handle, &ch, &ks.device, crate::now_secs())
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let made: RecoveryRequestCreated = api.post_json(
        "/v1/recovery/requests",
        &PostRecoveryRequest {
            request: b64e(&entry),
        },
        false,
    )?;
    crate::log::check_own_writes(
        &api,
        &mut ks,
        &made.log_indices,
        &[(EntryKind::RecoveryRequest, entry.as_slice())],
    )?;
    let req = SocialRecoveryRequest::decode_verified(&entry).map_err(ClientError::Integrity)?;
    if made.request_id != hex::encode(req.id) {
        return Err(ClientError::BadResponse(
            "the server answered another request id".into(),
        ));
    }
    ks.set_server(api.base(), false);
    let sealed = ks.sealed_file(passphrase.as_bytes(), params)?;
    let file = PendingFile {
        version: 1,
        handle: handle.to_owned(),
        server: api.base().to_owned(),
        request_id: made.request_id.clone(),
        keystore: b64e(&sealed),
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| ClientError::Input(format!("pending request: {e}")))?;
    if let Some(dir) = pending.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::io(dir, e))?;
    }
    crate::fsutil::write_atomic(&pending, &json)?;
    Ok(RequestMade {
        request_id: made.request_id,
        index: made.log_indices.first().copied().unwrap_or_default(),
        new_device: req.device_id(),
        fingerprint: crate::contacts::fingerprint(&req.device_id()),
        contacts: c.contacts.iter().map(|k| k.handle.clone()).collect(),
        threshold: c.threshold,
        waiting_period: c.waiting_period,
        log_key: ks
            .log_state(api.base())
            .map(|l| l.vkey.clone())
            .unwrap_or_default(),
    })
}

/// The pending request next to `path`, and the new device's in-memory keystore.
fn open_pending(
    path: &std::path::Path,
    passphrase: &zeroize::Zeroizing<String>,
) -> Result<(PendingFile, crate::keystore::Keystore)> {
    let pending = pending_path(path);
    let raw = std::fs::read(&pending)
        .map_err(|_| ClientError::NoKeystore(pending.display().to_string()))?;
    let file: PendingFile = serde_json::from_slice(&raw)
        .map_err(|e| ClientError::Input(format!("{}: {e}", pending.display())))?;
    if file.version != 1 {
        return Err(ClientError::Input(format!(
            "{}: unknown version",
            pending.display()
        )));
    }
    let ks = crate::keystore::Keystore::open_bytes(
        &b64d(&file.keystore, "keystore")?,
        passphrase.clone(),
    )?;
    Ok((file, ks))
}

/// `POST /v1/recovery/requests/{id}`: the escrow and the shares re-wrapped to this device. The
/// server serves them only to the request's device, on a fresh proof signed with its key
/// (REVIEW4 T1; the real clock: the server checks the proof's time against its own).
fn fetch_request(
    api: &Api,
    ks: &crate::keystore::Keystore,
    rid: &[u8; 16],
) -> Result<SocialRecoveryResponse> {
    let at = crate::now_secs();
    api.post_json(
        &format!("/v1/recovery/requests/{}", hex::encode(rid)),
        &FetchRecoveryRequest {
            signing_key: b64e(&ks.device.signing_public_key()),
            at,
            signature: b64e(&sign_fetch(&ks.device, rid, at)),
        },
        false,
    )
}

/// The fetch of [`complete_recovery`] alone, for the pending request next to `path`, with no
/// check of the answer (tests of the server's gate).
///
/// # Errors
/// As [`complete_recovery`]'s first steps; server errors (403, 409).
#[doc(hidden)]
pub fn fetch_pending(
    path: &std::path::Path,
    passphrase: &zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
) -> Result<SocialRecoveryResponse> {
    let (file, ks) = open_pending(path, passphrase)?;
    let api = Api::with_transport(&file.server, transport)?;
    fetch_request(&api, &ks, &parse_request_id(&file.request_id)?)
}

/// What [`complete_recovery`] did, besides the enrolment.
#[derive(Debug)]
pub struct SocialRecovered {
    /// The enrolment (§4.2 steps 4-8).
    pub recovered: Recovered,
    /// The contacts whose approvals (and shares) were used.
    pub approved_by: Vec<String>,
    /// The request id.
    pub request_id: String,
}

/// `serment recover --social --complete` (PROTOCOL.md §4.3): see the module documentation.
/// Reads the pending request next to `path` (opened with `passphrase`), and on success writes
/// the keystore at `path` and removes the pending file.
///
/// # Errors
/// [`ClientError::NoKeystore`] without a pending request; [`ClientError::Keystore`] for a wrong
/// passphrase; [`ClientError::Integrity`] when any rule fails (too few approvals, a veto, the
/// waiting period, a substituted contact key, an unlogged request, a swapped escrow): nothing
/// is enrolled then; server and transport errors.
pub fn complete_recovery(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
    opts: RecoverOptions,
) -> Result<SocialRecovered> {
    complete_recovery_at(path, passphrase, transport, opts, crate::now_secs())
}

/// [`complete_recovery`] with `now` as this machine's clock (tests).
#[doc(hidden)]
pub fn complete_recovery_at(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
    opts: RecoverOptions,
    now: u64,
) -> Result<SocialRecovered> {
    let pending = pending_path(path);
    let o = open_recovery(path, &passphrase, transport, now)?;
    let Opened {
        file,
        ks,
        api,
        secrets,
        mut approved_by,
        record_at,
    } = o;
    let handle = file.handle.clone();
    let device =
        DeviceSecret::from_secrets(&ks.device.signing_seed(), &ks.device.encryption_secret())
            .and_then(|d| match ks.device.hybrid_secret() {
                Some(h) => d.with_hybrid_secret(&h),
                None => Ok(d),
            })
            .map_err(ClientError::Integrity)?;
    let log_state = ks.log_state(api.base()).cloned();
    let recovered = crate::recovery::enrol_recovered(
        path,
        passphrase,
        api,
        transport,
        &handle,
        secrets,
        device,
        log_state,
        Some(record_at),
        opts,
    )?;
    let _ = std::fs::remove_file(&pending);
    approved_by.sort();
    Ok(SocialRecovered {
        recovered,
        approved_by,
        request_id: file.request_id,
    })
}

/// What [`open_recovery`] opened: every rule checked, nothing enrolled yet.
struct Opened {
    file: PendingFile,
    ks: crate::keystore::Keystore,
    api: Api,
    secrets: EscrowSecrets,
    approved_by: Vec<String>,
    record_at: u64,
}

/// The escrow of the pending request next to `path`, opened after every check of
/// [`complete_recovery`], without enrolling anything: what a requester who does not mean to
/// enrol (K colluding contacts, a thief's client) holds once the escrow is served. Tests of
/// what the owner then sees (`audit`).
///
/// # Errors
/// As [`complete_recovery`].
#[doc(hidden)]
pub fn open_pending_escrow(
    path: &std::path::Path,
    passphrase: &zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
    now: u64,
) -> Result<EscrowSecrets> {
    Ok(open_recovery(path, passphrase, transport, now)?.secrets)
}

fn open_recovery(
    path: &std::path::Path,
    passphrase: &zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
    now: u64,
) -> Result<Opened> {
    let (file, mut ks) = open_pending(path, passphrase)?;
    let handle = file.handle.clone();
    let rid = parse_request_id(&file.request_id)?;
    let api = Api::with_transport(&file.server, transport)?;
    // The proven social chain and key histories, before anything is opened.
    let (st, hist) = proven_social(&api, &mut ks, &handle)?;
    let r = st.request(&rid).cloned().ok_or(integrity(
        "the request is not in the proven log (a recovery the log does not show is refused)",
    ))?;
    if r.request.device_id() != ks.device.id() {
        return Err(integrity("the logged request names another device"));
    }
    let (_, c, ch) = current_contacts(&st, &hist)?;
    if r.request.contacts_hash != ch {
        return Err(integrity(
            "the recovery contacts changed since the request: make a new request",
        ));
    }
    // A veto by a current device of the identity ends the request.
    if vetoed_by_a_current_device(&r, &hist) {
        return Err(integrity("a device of this identity vetoed the request"));
    }
    // The waiting period, by this machine's clock, from the later of the request's log time and
    // its own signed time: a server that lies about time can delay, not shorten it.
    let record_at = r.request.at;
    let ready_at = r
        .logged_at
        .max(r.request.at)
        .saturating_add(c.waiting_period);
    if now < ready_at {
        return Err(ClientError::Input(format!(
            "the waiting period ends in {} s (any device of {handle} can veto until then)",
            ready_at - now
        )));
    }
    // REVIEW5 U15: and no later than its completion window after it.
    if now > ready_at.saturating_add(serment_core::social::REQUEST_COMPLETION_WINDOW) {
        return Err(ClientError::Input(
            "the request's completion window (7 days after its waiting period) is over: make a \
             new request"
                .into(),
        ));
    }
    // Approvals: distinct contacts of the entry, each by one of its named devices that is
    // current in its proven key history.
    let mut approvers: Vec<(String, [u8; 32], usize)> = Vec::new();
    for (_, a) in &r.approvals {
        let Some(pos) = c.position(&a.contact) else {
            continue;
        };
        if approvers.iter().any(|(h, ..)| *h == a.contact) {
            continue;
        }
        let named = c
            .contacts
            .get(pos)
            .is_some_and(|k| k.devices.contains(&a.device_id()));
        if !named {
            continue;
        }
        let chist = crate::log::key_history(&api, &mut ks, &a.contact, None)?;
        if !chist.devices.iter().any(|d| d.device_id() == a.device_id()) {
            continue;
        }
        approvers.push((a.contact.clone(), a.signing_key, pos));
    }
    if approvers.len() < usize::from(c.threshold) {
        return Err(integrity(
            "fewer valid approvals in the log than the contacts entry's threshold",
        ));
    }
    let got = fetch_request(&api, &ks, &rid)?;
    let escrow = b64d(&got.escrow, "escrow")?;
    if escrow_hash(&escrow) != c.escrow_hash {
        return Err(integrity(
            "the escrow served is not the one the contacts entry binds",
        ));
    }
    let ctx = ShareContext {
        handle: &handle,
        contacts_hash: &ch,
        request_id: &rid,
    };
    let mut shares: Vec<Share> = Vec::new();
    let mut approved_by: Vec<String> = Vec::new();
    for s in &got.shares {
        let Ok(w) = ShareWrap::decode(&b64d(s, "share")?) else {
            continue;
        };
        let Some((h, key, pos)) = approvers
            .iter()
            .find(|(_, k, _)| KeyId::of(serment_core::ids::KeyKind::Device, k) == w.sharer)
        else {
            continue;
        };
        if approved_by.contains(h) || w.verify_signature(key).is_err() {
            continue;
        }
        let Ok(sh) = unwrap_share(&w, ctx, &ks.device) else {
            continue;
        };
        if usize::from(sh.x()) != pos + 1 {
            continue;
        }
        approved_by.push(h.clone());
        shares.push(sh);
    }
    if shares.len() < usize::from(c.threshold) {
        return Err(integrity(
            "fewer valid shares than the threshold (shares not signed by an approving contact's device)",
        ));
    }
    // REVIEW4 T2: one approving contact re-wrapping a wrong share must not block the recovery:
    // K-subsets of the valid shares are tried (lexicographic order, at most C(16, 8) = 12870
    // AEAD opens) until the escrow opens; `approved_by` names the contacts whose shares did.
    let k = usize::from(c.threshold);
    let mut idx: Vec<usize> = (0..k).collect();
    let (secrets, used) = loop {
        let subset = idx
            .iter()
            .filter_map(|&i| shares.get(i))
            .map(|sh| Share::from_bytes(sh.as_bytes()))
            .collect::<serment_core::Result<Vec<Share>>>()
            .map_err(ClientError::Integrity)?;
        let opened = SocialSecret::combine(c.threshold, &subset)
            .and_then(|secret| open_social_escrow(&secret, &handle, &escrow));
        match opened {
            Ok(secrets) => break (secrets, idx.clone()),
            Err(e) => {
                // The next K-subset of 0..n, or none left.
                let n = shares.len();
                let Some(i) = (0..k)
                    .rev()
                    .find(|&i| idx.get(i).is_some_and(|&v| v < n - k + i))
                else {
                    return Err(ClientError::Integrity(e));
                };
                if let Some(v) = idx.get_mut(i) {
                    *v += 1;
                }
                let base = idx.get(i).copied().unwrap_or(0);
                for (j, v) in idx.iter_mut().enumerate().skip(i + 1) {
                    *v = base + (j - i);
                }
            }
        }
    };
    let approved_by: Vec<String> = used
        .iter()
        .filter_map(|&i| approved_by.get(i).cloned())
        .collect();
    if secrets.device.id() != c.recovery_device {
        return Err(integrity(
            "the escrow holds another recovery device than the contacts entry names",
        ));
    }
    Ok(Opened {
        file,
        ks,
        api,
        secrets,
        approved_by,
        record_at,
    })
}
