//! Chains of entries about one subject, and the replay of a handle's key history
//! (PROTOCOL.md §11.6).

use super::entry::{LogEntry, Payload, PrevLink, Subject};
use super::tree::leaf_hash;
use crate::error::{Error, Result};
use crate::identity::DeviceRecord;
use crate::ids::{KeyId, KeyKind};

fn broken(reason: &'static str) -> Error {
    Error::History { reason }
}

/// One entry of a chain, as served: its index, its bytes and the decoded entry.
#[derive(Debug, Clone)]
pub struct ChainEntry {
    /// Index in the log.
    pub index: u64,
    /// The entry bytes.
    pub bytes: Vec<u8>,
    /// The decoded entry.
    pub entry: LogEntry,
}

impl ChainEntry {
    /// The link a following entry of the chain must carry.
    pub fn link(&self) -> PrevLink {
        PrevLink {
            index: self.index,
            leaf_hash: leaf_hash(&self.bytes),
        }
    }
}

/// Checks that `chain` is a whole chain about `subject`: every entry names it, the first has no
/// predecessor, each next one links to the one before (index and leaf hash), indices increase.
/// With inclusion proofs for each entry this proves nothing was dropped, inserted or reordered
/// before the last entry.
///
/// # Errors
/// [`Error::History`].
pub fn check_chain(chain: &[ChainEntry], subject: &Subject) -> Result<()> {
    let mut prev: Option<&ChainEntry> = None;
    for e in chain {
        if e.entry.subject() != *subject {
            return Err(broken("an entry of the chain is about another subject"));
        }
        match (prev, e.entry.prev) {
            (None, None) => {}
            (None, Some(_)) => return Err(broken("the chain does not start at its first entry")),
            (Some(_), None) => {
                return Err(broken("a second chain start (entry replayed or forged)"));
            }
            (Some(p), Some(link)) => {
                if link != p.link() || e.index <= p.index {
                    return Err(broken(
                        "an entry does not link to the one before it (dropped, reordered or replayed entries)",
                    ));
                }
            }
        }
        prev = Some(e);
    }
    Ok(())
}

/// A handle's keys after replaying its chain.
#[derive(Debug, Clone)]
pub struct KeyHistory {
    /// The handle.
    pub handle: String,
    /// The current identity key.
    pub identity_key: [u8; 32],
    /// Every identity key the handle held, oldest first (the last is current).
    pub identity_keys: Vec<[u8; 32]>,
    /// The log index of the entry that made each of `identity_keys` current (its first device
    /// record, or its rotation), in the same order.
    pub identity_since: Vec<u64>,
    /// The current devices: certified by the current identity key and not revoked, oldest first.
    pub devices: Vec<DeviceRecord>,
    /// Devices revoked, and devices of rotated-away identities not certified again since.
    pub retired: Vec<KeyId>,
    /// The last entry of the chain.
    pub head: PrevLink,
    /// For every device that ever advertised an X-Wing key: the log index of its first record
    /// with one (PROTOCOL.md §7.1). A classical wrap to it logged at or after that index is a
    /// downgrade.
    pub hybrid_since: Vec<(KeyId, u64)>,
    /// Every recovery entry of the chain (kind 12, PROTOCOL.md §4.2), oldest first: its log
    /// index and the entry. Each was signed by the identity key current at that point.
    pub recoveries: Vec<(u64, super::entry::Recovery)>,
}

impl KeyHistory {
    /// The current identity id.
    pub fn identity_id(&self) -> KeyId {
        KeyId::of(KeyKind::Identity, &self.identity_key)
    }

    /// The identity key current just before log index `index` (the key an entry logged there
    /// must be signed by), or `None` before the handle's first device record.
    pub fn identity_key_at(&self, index: u64) -> Option<[u8; 32]> {
        self.identity_keys
            .iter()
            .zip(&self.identity_since)
            .take_while(|(_, since)| **since < index)
            .last()
            .map(|(k, _)| *k)
    }

    /// The log index of `device`'s first record with a hybrid key, if it has had one.
    pub fn hybrid_since(&self, device: &KeyId) -> Option<u64> {
        self.hybrid_since
            .iter()
            .find(|(d, _)| d == device)
            .map(|(_, i)| *i)
    }
}

/// Replays a handle's chain (already checked with [`check_chain`]): the first device record sets
/// the identity key; a rotation (signed by the current key and the new one) replaces it and
/// retires every device of the old key; a revocation (signed by the current key) retires one
/// device. A record signed by a key that is not current — a rotated-away key replayed — is an
/// error, as is any entry of another kind. A second record for a current device is accepted only
/// as its hybrid upgrade ([`DeviceRecord::is_hybrid_upgrade_of`]), which replaces it; a record
/// without a hybrid key for a device that advertised one is a downgrade.
///
/// # Errors
/// [`Error::History`]; [`Error::Downgrade`].
pub fn replay_keys(handle: &str, chain: &[ChainEntry]) -> Result<KeyHistory> {
    let mut identity: Option<[u8; 32]> = None;
    let mut keys: Vec<[u8; 32]> = Vec::new();
    let mut since: Vec<u64> = Vec::new();
    let mut devices: Vec<DeviceRecord> = Vec::new();
    let mut revoked: Vec<KeyId> = Vec::new();
    let mut rotated_out: Vec<KeyId> = Vec::new();
    let mut hybrid_since: Vec<(KeyId, u64)> = Vec::new();
    let mut recoveries = Vec::new();
    for e in chain {
        match &e.entry.payload {
            Payload::Device(rec) => {
                if rec.handle != handle {
                    return Err(broken("a device record for another handle"));
                }
                match identity {
                    None => {
                        identity = Some(rec.identity_key);
                        keys.push(rec.identity_key);
                        since.push(e.index);
                    }
                    Some(k) if k == rec.identity_key => {}
                    Some(_) if keys.contains(&rec.identity_key) => {
                        return Err(broken(
                            "a device record signed by a rotated-away identity key",
                        ));
                    }
                    Some(_) => {
                        return Err(broken(
                            "a device record signed by an identity key the history never rotated to",
                        ));
                    }
                }
                let id = rec.device_id();
                if revoked.contains(&id) {
                    return Err(broken("a revoked device was certified again"));
                }
                if rec.hybrid_key.is_none() && hybrid_since.iter().any(|(d, _)| *d == id) {
                    return Err(Error::Downgrade(
                        "a device record without the hybrid key the device already advertised",
                    ));
                }
                if rec.hybrid_key.is_some() && !hybrid_since.iter().any(|(d, _)| *d == id) {
                    hybrid_since.push((id, e.index));
                }
                rotated_out.retain(|d| *d != id);
                if let Some(current) = devices.iter_mut().find(|d| d.device_id() == id) {
                    if !rec.is_hybrid_upgrade_of(current) {
                        return Err(broken("a device certified twice"));
                    }
                    *current = rec.clone();
                    continue;
                }
                devices.push(rec.clone());
            }
            Payload::Rotation(rot) => {
                if rot.handle != handle || identity != Some(rot.old_identity_key) {
                    return Err(broken("a rotation away from a key that is not current"));
                }
                if keys.contains(&rot.new_identity_key) {
                    return Err(broken("a rotation back to an old identity key"));
                }
                rotated_out.extend(devices.drain(..).map(|d| d.device_id()));
                identity = Some(rot.new_identity_key);
                keys.push(rot.new_identity_key);
                since.push(e.index);
            }
            Payload::Revocation(rev) => {
                if rev.handle != handle || identity != Some(rev.identity_key) {
                    return Err(broken("a revocation signed by a key that is not current"));
                }
                let before = devices.len();
                devices.retain(|d| d.device_id() != rev.device_id);
                if devices.len() == before {
                    return Err(broken("a revocation of a device that is not current"));
                }
                revoked.push(rev.device_id);
            }
            Payload::Recovery(rec) => {
                // The recovery device named was certified under this identity (current, or
                // revoked by the recovery that burnt it, which may be logged first).
                if rec.handle != handle || identity != Some(rec.identity_key) {
                    return Err(broken("a recovery signed by a key that is not current"));
                }
                recoveries.push((e.index, rec.clone()));
            }
            _ => return Err(broken("an entry of a document in a handle's chain")),
        }
    }
    let (Some(identity_key), Some(last)) = (identity, chain.last()) else {
        return Err(broken("an empty key history"));
    };
    Ok(KeyHistory {
        handle: handle.to_owned(),
        identity_key,
        identity_keys: keys,
        identity_since: since,
        devices,
        retired: revoked.into_iter().chain(rotated_out).collect(),
        head: last.link(),
        hybrid_since,
        recoveries,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::identity::{DeviceSecret, IdentitySecret};
    use crate::log::entry::{EntryKind, Revocation, Rotation, encode_entry};

    fn chain(items: &[(EntryKind, Vec<u8>)]) -> Vec<ChainEntry> {
        let mut out: Vec<ChainEntry> = Vec::new();
        for (i, (k, p)) in items.iter().enumerate() {
            let prev = out.last().map(ChainEntry::link);
            let bytes = encode_entry(*k, 1, prev, p).unwrap();
            out.push(ChainEntry {
                index: i as u64 * 3,
                entry: LogEntry::decode(&bytes).unwrap(),
                bytes,
            });
        }
        out
    }

    #[test]
    fn rotation_revocation_and_replays() {
        let id1 = IdentitySecret::from_seed(&[1; 32]);
        let id2 = IdentitySecret::from_seed(&[2; 32]);
        let d1 = DeviceSecret::from_test_seed(&[3; 32]);
        let d2 = DeviceSecret::from_test_seed(&[4; 32]);
        let r1 = id1.sign_device_record("bob", &d1, 1).unwrap();
        let r2 = id1.sign_device_record("bob", &d2, 1).unwrap();
        let rot = Rotation::sign("bob", &id1, &id2, 2).unwrap();
        let r1b = id2.sign_device_record("bob", &d1, 3).unwrap();
        let items = vec![
            (EntryKind::Device, r1.clone()),
            (EntryKind::Device, r2.clone()),
            (
                EntryKind::Revocation,
                Revocation::sign("bob", &id1, &d2.id(), 2).unwrap(),
            ),
            (EntryKind::Rotation, rot),
            (EntryKind::Device, r1b),
        ];
        let c = chain(&items);
        let s = Subject::Handle("bob".into());
        check_chain(&c, &s).unwrap();
        let h = replay_keys("bob", &c).unwrap();
        assert_eq!(h.identity_key, id2.public_key());
        assert_eq!(h.devices.len(), 1);
        assert_eq!(h.identity_keys.len(), 2);
        // The old key's record replayed after the rotation.
        let mut replay = items.clone();
        replay.push((EntryKind::Device, r2));
        assert!(replay_keys("bob", &chain(&replay)).is_err());
        // A dropped middle entry breaks the chain.
        let mut c2 = c.clone();
        c2.remove(2);
        assert!(check_chain(&c2, &s).is_err());
        // Reordered.
        let mut c3 = c.clone();
        c3.swap(1, 2);
        assert!(check_chain(&c3, &s).is_err());
        // Another handle.
        assert!(check_chain(&c, &Subject::Handle("eve".into())).is_err());
    }

    /// `serment id upgrade` (PROTOCOL.md §4, §11.3): the hybrid record replaces the classical
    /// one; the same device certified again otherwise, or a later record that drops the hybrid
    /// key, is refused.
    #[test]
    fn hybrid_upgrade_is_the_only_recertification_and_never_goes_back() {
        let id = IdentitySecret::from_seed(&[1; 32]);
        let classical = DeviceSecret::from_test_seed(&[3; 32]);
        let hybrid = DeviceSecret::from_test_seed_hybrid(&[3; 32]);
        let r_old = id.sign_device_record("bob", &classical, 1).unwrap();
        let r_new = id.sign_device_record("bob", &hybrid, 5).unwrap();
        let items = vec![
            (EntryKind::Device, r_old.clone()),
            (EntryKind::Device, r_new.clone()),
        ];
        let h = replay_keys("bob", &chain(&items)).unwrap();
        assert_eq!(h.devices.len(), 1);
        assert_eq!(h.devices[0].bytes, r_new);
        assert!(h.devices[0].hybrid_key.is_some());
        assert_eq!(
            h.hybrid_since(&hybrid.id()),
            Some(3),
            "index of the upgrade"
        );
        // The classical record served again after the upgrade: a downgrade.
        let mut back = items.clone();
        back.push((EntryKind::Device, r_old.clone()));
        assert!(matches!(
            replay_keys("bob", &chain(&back)),
            Err(Error::Downgrade(_))
        ));
        // The same classical record twice is not an upgrade.
        let twice = vec![
            (EntryKind::Device, r_old.clone()),
            (EntryKind::Device, r_old),
        ];
        assert!(matches!(
            replay_keys("bob", &chain(&twice)),
            Err(Error::History { .. })
        ));
        // A device created hybrid: hybrid from its first record.
        let h = replay_keys("bob", &chain(&[(EntryKind::Device, r_new)])).unwrap();
        assert_eq!(h.hybrid_since(&hybrid.id()), Some(0));
    }
}
