//! Contacts: pinning a contact's identity key on first use (TOFU) and checking every later
//! directory answer against the pin. A directory answer with another identity key for a pinned
//! handle is a hard [`ClientError::KeySubstitution`] error, never a warning.

use serment_core::KeyId;
use serment_core::identity::DeviceRecord;

use crate::api::{Api, b64e};
use crate::error::{ClientError, Result};
use crate::keystore::{Keystore, PinnedContact};

/// A contact's verified device records.
#[derive(Debug, Clone)]
pub struct Contact {
    /// The handle.
    pub handle: String,
    /// The identity id.
    pub identity_id: KeyId,
    /// Verified device records, all signed by the pinned identity key.
    pub devices: Vec<DeviceRecord>,
}

impl Contact {
    /// The fingerprint to compare out of band: the identity id in groups of four hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.identity_id)
    }
}

/// Formats an identity id as a fingerprint: 16 groups of 4 hex digits.
pub fn fingerprint(id: &KeyId) -> String {
    let hex = id.to_string();
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fetches `handle`'s records from the directory, verifies each, and checks them against the pin
/// (or returns them for pinning when there is none).
///
/// # Errors
/// [`ClientError::Integrity`] for a record whose signature fails or that names another handle;
/// [`ClientError::KeySubstitution`]; [`ClientError::BadResponse`] for an empty or mixed answer.
pub fn fetch(api: &Api, handle: &str, pinned: Option<&PinnedContact>) -> Result<Contact> {
    let raw = api.directory(handle)?;
    if raw.is_empty() {
        return Err(ClientError::BadResponse(format!(
            "no device records for {handle:?}"
        )));
    }
    let mut devices = Vec::with_capacity(raw.len());
    for bytes in &raw {
        let rec = DeviceRecord::decode_verified(bytes).map_err(ClientError::Integrity)?;
        if rec.handle != handle {
            return Err(ClientError::Integrity(
                serment_core::Error::ContextMismatch(
                    "the directory served a record signed for another handle",
                ),
            ));
        }
        devices.push(rec);
    }
    let first = devices
        .first()
        .map(|d| d.identity_key)
        .ok_or_else(|| ClientError::BadResponse("empty directory answer".into()))?;
    let expected = match pinned {
        Some(p) => hex_key(&p.identity_key)?,
        None => first,
    };
    for d in &devices {
        if d.identity_key != expected {
            return Err(ClientError::KeySubstitution {
                handle: handle.to_owned(),
                pinned: KeyId::of(serment_core::ids::KeyKind::Identity, &expected).to_string(),
                served: d.identity_id().to_string(),
            });
        }
    }
    Ok(Contact {
        handle: handle.to_owned(),
        identity_id: KeyId::of(serment_core::ids::KeyKind::Identity, &expected),
        devices,
    })
}

/// Pins (or refreshes) a contact in the keystore. Returns the contact and whether it is new.
///
/// The contact's keys come from its key history in the transparency log (PROTOCOL.md §11.6),
/// every entry proven against a checkpoint consistent with the pinned one: the current identity
/// key (reached from the pinned one only through rotations it signed) and its current, unrevoked
/// devices. The directory's answer must name exactly those devices.
///
/// # Errors
/// As [`fetch`]; [`ClientError::Log`] for a history that does not check out;
/// [`ClientError::KeySubstitution`] when the pinned key is not in the history, or the directory
/// serves other keys than the log.
pub fn add(api: &Api, ks: &mut Keystore, handle: &str) -> Result<(Contact, bool)> {
    add_with(api, ks, handle, false)
}

/// [`add`]; `confirmed` when the user confirmed the contact out of band (`serment contact
/// verify --confirm`): devices that came back with a restore's lost range
/// ([`ClientError::RestoredDevices`]) are then pinned.
///
/// # Errors
/// As [`add`]; [`ClientError::RestoredDevices`] unless `confirmed`.
pub fn add_with(
    api: &Api,
    ks: &mut Keystore,
    handle: &str,
    confirmed: bool,
) -> Result<(Contact, bool)> {
    serment_core::identity::validate_handle(handle)
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let existing = ks.contacts().get(handle).cloned();
    crate::log::pin_log_key(api, ks)?;
    let hist = crate::log::key_history(
        api,
        ks,
        handle,
        existing.as_ref().and_then(|e| e.log_head.as_deref()),
    )?;
    let current = KeyId::of(serment_core::ids::KeyKind::Identity, &hist.identity_key);
    if let Some(p) = &existing {
        let pinned_key = hex_key(&p.identity_key)?;
        // REVIEW6 V3/V5: after an accepted loss, a key the contact rotated to in the lost range
        // is gone from the log. The restored history may stand in for it only if it holds a
        // key this device knew for the contact before (the one it rotated from), and only once
        // the user confirms; a history of keys this device never saw is another identity
        // (newcomer 6 N1: a handle whose registration was lost, taken by someone else).
        let known_before = p
            .rotated_from
            .as_deref()
            .and_then(|k| hex_key(k).ok())
            .is_some_and(|k| hist.identity_keys.contains(&k));
        let restored_stand_in = p.lost_from.is_some() && known_before;
        if !hist.identity_keys.contains(&pinned_key) && restored_stand_in && !confirmed {
            return Err(ClientError::RestoredDevices {
                handle: handle.to_owned(),
                devices: hist
                    .devices
                    .iter()
                    .map(|d| d.device_id().to_string())
                    .collect(),
            });
        }
        if !hist.identity_keys.contains(&pinned_key) && (!restored_stand_in || !confirmed) {
            return Err(ClientError::KeySubstitution {
                handle: handle.to_owned(),
                pinned: KeyId::of(serment_core::ids::KeyKind::Identity, &pinned_key).to_string(),
                served: current.to_string(),
            });
        }
    }
    if hist.devices.is_empty() {
        return Err(ClientError::NoActiveDevice(handle.to_owned()));
    }
    // REVIEW6 V3: after an accepted loss, a device current now that was not when this device
    // last verified the contact may be one revoked in the lost range.
    if let Some(p) = existing
        .as_ref()
        .filter(|p| p.lost_from.is_some() && !confirmed)
    {
        let back: Vec<String> = hist
            .devices
            .iter()
            .filter(|d| !p.records.contains(&b64e(&d.bytes)))
            .map(|d| d.device_id().to_string())
            .collect();
        if !back.is_empty() {
            return Err(ClientError::RestoredDevices {
                handle: handle.to_owned(),
                devices: back,
            });
        }
    }
    // The directory must agree with the log: same identity, same devices.
    let log_pin = PinnedContact {
        identity_key: hex::encode(hist.identity_key),
        records: Vec::new(),
        pinned_at: 0,
        verified: false,
        log_head: None,
        rotated_from: None,
        lost_from: None,
    };
    let served = fetch(api, handle, Some(&log_pin))?;
    let mut a: Vec<&[u8]> = served.devices.iter().map(|d| d.bytes.as_slice()).collect();
    let mut b: Vec<&[u8]> = hist.devices.iter().map(|d| d.bytes.as_slice()).collect();
    a.sort();
    b.sort();
    if a != b {
        return Err(ClientError::KeySubstitution {
            handle: handle.to_owned(),
            pinned: current.to_string(),
            served: served.identity_id.to_string(),
        });
    }
    let contact = Contact {
        handle: handle.to_owned(),
        identity_id: current,
        devices: hist.devices.clone(),
    };
    let new = existing.is_none();
    let new_key = hex::encode(hist.identity_key);
    // A rotation since the pin (signed by the old key, proven in the log) is remembered until the
    // user confirms the new fingerprint: the first key not yet confirmed is kept.
    let rotated_from = existing.as_ref().and_then(|e| {
        if e.identity_key == new_key {
            e.rotated_from.clone()
        } else {
            e.rotated_from
                .clone()
                .or_else(|| Some(e.identity_key.clone()))
        }
    });
    ks.pin(
        handle,
        PinnedContact {
            identity_key: hex::encode(hist.identity_key),
            records: contact.devices.iter().map(|d| b64e(&d.bytes)).collect(),
            pinned_at: existing
                .as_ref()
                .map_or_else(crate::now_secs, |e| e.pinned_at),
            verified: existing.as_ref().is_some_and(|e| e.verified)
                && existing
                    .as_ref()
                    .is_some_and(|e| e.identity_key == hex::encode(hist.identity_key)),
            log_head: Some(crate::log::format_head(&hist.head)),
            rotated_from,
            lost_from: None,
        },
    );
    Ok((contact, new))
}

/// An identity rotation of a pinned contact that the user has not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RotationNotice {
    /// The contact.
    pub handle: String,
    /// The fingerprint pinned before the rotation.
    pub old_fingerprint: String,
    /// The current fingerprint, reached through rotations signed by the old key and proven in
    /// the log.
    pub new_fingerprint: String,
}

/// The contacts among `handles` whose identity rotated since the user last confirmed them
/// (PROTOCOL.md §11.6): show them on every use until `contact verify --confirm`.
pub fn rotation_notices<'a>(
    ks: &Keystore,
    handles: impl IntoIterator<Item = &'a String>,
) -> Vec<RotationNotice> {
    let fp = |hex_id: &str| {
        hex_key(hex_id)
            .map(|k| fingerprint(&KeyId::of(serment_core::ids::KeyKind::Identity, &k)))
            .unwrap_or_else(|_| "(unreadable)".into())
    };
    handles
        .into_iter()
        .filter_map(|h| {
            let p = ks.contacts().get(h)?;
            let old = p.rotated_from.as_deref()?;
            Some(RotationNotice {
                handle: h.clone(),
                old_fingerprint: fp(old),
                new_fingerprint: fp(&p.identity_key),
            })
        })
        .collect()
}

/// The pinned records of a contact, re-verified from the keystore.
///
/// # Errors
/// [`ClientError::UnknownContact`], [`ClientError::Keystore`] if the stored records are invalid.
pub fn pinned(ks: &Keystore, handle: &str) -> Result<Contact> {
    let p = ks
        .contacts()
        .get(handle)
        .ok_or_else(|| ClientError::UnknownContact(handle.to_owned()))?;
    let key = hex_key(&p.identity_key)?;
    let mut devices = Vec::new();
    for r in &p.records {
        let bytes = crate::api::b64d(r, "pinned record")?;
        let rec = DeviceRecord::decode_verified(&bytes).map_err(ClientError::Integrity)?;
        if rec.identity_key == key {
            devices.push(rec);
        }
    }
    Ok(Contact {
        handle: handle.to_owned(),
        identity_id: KeyId::of(serment_core::ids::KeyKind::Identity, &key),
        devices,
    })
}

fn hex_key(s: &str) -> Result<[u8; 32]> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(s, &mut k)
        .map_err(|_| ClientError::Keystore(serment_core::Error::KeystoreDecrypt))?;
    Ok(k)
}
