//! Identity administration on a [`Session`]: adding the hybrid key to this device, revoking a
//! device, rotating the identity key (PROTOCOL.md §4, §11.3). Each change is a signed, logged
//! entry that the client checks it finds in the log (its own write).

use serment_core::KeyId;
use serment_core::log::entry::EntryKind;

use crate::error::{ClientError, Result};
use crate::vault::Session;

impl Session {
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
}
