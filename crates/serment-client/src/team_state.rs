//! The team state a device keeps between operations (PROTOCOL.md §12.4, "incremental"): the
//! state its replay reached at the head it verified last, stored in the encrypted keystore, so
//! that the next verification fetches and applies only the changes after that head
//! (`serment_core::team::TeamState::apply`).

use serde::{Deserialize, Serialize};
use serment_core::identity::HybridPublicKey;
use serment_core::team::{TeamEpoch, TeamMember, TeamState, epoch_id};

use crate::api::{b64d, b64e};
use crate::log::{format_head, parse_head};

/// A member as held (hex identity key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMember {
    /// The handle.
    pub handle: String,
    /// Its identity key as the admin who added it verified it, 64 hex.
    pub identity_key: String,
    /// Whether it is an admin.
    pub admin: bool,
}

/// An epoch as held (base64url X-Wing key, hex signer keys); its id is recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEpoch {
    /// The epoch number.
    pub epoch: u32,
    /// Its X-Wing public key (1216 bytes), base64url.
    pub key: String,
    /// The log index of the change that opened it.
    pub opened_at: u64,
    /// The admin devices' Ed25519 keys that signed a change of this epoch, 64 hex each.
    pub signers: Vec<String>,
    /// The handles that were members while it was current.
    pub members: Vec<String>,
}

/// A team's replayed state, as kept in the keystore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTeam {
    /// The head verified (`<index>:<leaf hash hex>`).
    pub head: String,
    /// The number of changes replayed.
    pub changes: usize,
    /// The current members.
    pub members: Vec<HeldMember>,
    /// The handles removed, in order.
    pub removed: Vec<String>,
    /// Every epoch, oldest first.
    pub epochs: Vec<HeldEpoch>,
}

impl HeldTeam {
    /// The held form of a replayed state.
    pub fn from_state(s: &TeamState) -> HeldTeam {
        HeldTeam {
            head: format_head(&s.head),
            changes: s.changes,
            members: s
                .members
                .iter()
                .map(|m| HeldMember {
                    handle: m.handle.clone(),
                    identity_key: hex::encode(m.identity_key),
                    admin: m.admin,
                })
                .collect(),
            removed: s.removed.clone(),
            epochs: s
                .epochs
                .iter()
                .map(|e| HeldEpoch {
                    epoch: e.epoch,
                    key: b64e(e.key.as_bytes()),
                    opened_at: e.opened_at,
                    signers: e.signers.iter().map(hex::encode).collect(),
                    members: e.members.clone(),
                })
                .collect(),
        }
    }

    /// The state of `team` back from its held form; `None` if anything does not parse (the
    /// caller then replays the whole chain).
    pub fn to_state(&self, team: &str) -> Option<TeamState> {
        let hex32 = |s: &str| -> Option<[u8; 32]> {
            let mut b = [0u8; 32];
            hex::decode_to_slice(s, &mut b).ok()?;
            Some(b)
        };
        let members = self
            .members
            .iter()
            .map(|m| {
                Some(TeamMember {
                    handle: m.handle.clone(),
                    identity_key: hex32(&m.identity_key)?,
                    admin: m.admin,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let epochs = self
            .epochs
            .iter()
            .map(|e| {
                let key = HybridPublicKey::from_bytes(&b64d(&e.key, "key").ok()?).ok()?;
                Some(TeamEpoch {
                    epoch: e.epoch,
                    id: epoch_id(team, e.epoch, &key),
                    key,
                    opened_at: e.opened_at,
                    signers: e
                        .signers
                        .iter()
                        .map(|s| hex32(s))
                        .collect::<Option<Vec<_>>>()?,
                    members: e.members.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        if epochs.is_empty() || members.is_empty() {
            return None;
        }
        Some(TeamState {
            team: team.to_owned(),
            members,
            removed: self.removed.clone(),
            epochs,
            head: parse_head(&self.head)?,
            changes: self.changes,
        })
    }
}
