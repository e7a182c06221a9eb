//! Care teams (PROTOCOL.md §12): membership changes signed by an admin's device and logged
//! (log entry kind 7), one X-Wing key pair per epoch wrapped to every member device, and the
//! replay of a team's chain that every client runs before it wraps for a team or accepts a team
//! key.
//!
//! ```text
//! TeamChange {                    // log entry kind 7, subject: the team name
//!   magic "SRMG", format_version u16 = 1, suite_id u16 = 3,
//!   team str8, epoch u32, op u8, member str8, member_identity [32], role u8,
//!   epoch_key [1216],             // X-Wing public key of `epoch`
//!   signer str8, signer_key [32], // the admin's handle and device signing key
//!   at u64, signature [64] }      // signer_key over sig_input("team-change", all bytes above)
//!
//! TeamKeyWrap {                   // stored by the server, not logged
//!   magic "SRME", format_version u16 = 1, suite_id u16 = 3,
//!   team str8, epoch u32, epoch_id [32], recipient [32], sharer [32],
//!   enc [1120], wrapped_secret [48],
//!   signature [64] }              // sharer over sig_input("team-key", all bytes above)
//! ```

use hpke::{
    Deserializable, Kem as _, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305,
    kdf::HkdfSha256, kem::XWing,
};
use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::{DeviceSecret, HYBRID_SECRET_LEN, HybridPublicKey, validate_handle};
use crate::ids::{KeyId, KeyKind, labeled_hash};
use crate::sign::{self, Context};
use crate::wrap::Recipient;
use crate::{FORMAT_VERSION, HYBRID_SUITE_ID};

mod replay;
pub use replay::{
    TeamEpoch, TeamMember, TeamState, named_handles, replay_team, revoked_since_current_epoch,
};

fn bad(reason: &'static str) -> Error {
    Error::Team { reason }
}

/// Reads the strict prelude shared by the team formats (PROTOCOL.md §12.2, §12.3): `magic`,
/// `format_version` 1, `suite_id` 3, then the team name (validated). Returns the reader after it
/// and the name.
///
/// # Errors
/// Format errors, [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`],
/// [`Error::InvalidField`] for an invalid name.
fn read_prelude<'a>(
    bytes: &'a [u8],
    magic: &[u8; 4],
    what: &'static str,
) -> Result<(Reader<'a>, String)> {
    let mut r = Reader::new(bytes, what);
    r.magic(magic)?;
    let version = r.u16()?;
    let suite = r.u16()?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion { what, version });
    }
    if suite != HYBRID_SUITE_ID {
        return Err(Error::UnsupportedSuite { what, suite });
    }
    let team = r.str8("team", 64)?.to_owned();
    validate_team_name(&team)?;
    Ok((r, team))
}

/// Checks a team name: the rules of a handle (1 to 64 of `[a-z0-9._-]`, not starting with `.`
/// or `-`), PROTOCOL.md §12.1.
///
/// # Errors
/// [`Error::InvalidField`].
pub fn validate_team_name(name: &str) -> Result<()> {
    validate_handle(name).map_err(|_| Error::InvalidField {
        field: "team name",
        reason: "expected 1 to 64 of [a-z0-9._-], not starting with '.' or '-'",
    })
}

/// What a [`TeamChange`] does (its `op` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TeamOp {
    /// Creates the team; `member` is the creator, its first admin. Epoch 1.
    Create = 1,
    /// Adds `member` with `role`. The epoch is unchanged.
    Add = 2,
    /// Removes `member`. Opens a new epoch (a fresh key), wrapped to the remaining members.
    Remove = 3,
    /// Makes the member `member` an admin. The epoch is unchanged.
    GrantAdmin = 4,
    /// Opens a new epoch without a membership change (`serment team rotate`).
    Rotate = 5,
}

impl TeamOp {
    fn from_u8(b: u8) -> Result<TeamOp> {
        Ok(match b {
            1 => TeamOp::Create,
            2 => TeamOp::Add,
            3 => TeamOp::Remove,
            4 => TeamOp::GrantAdmin,
            5 => TeamOp::Rotate,
            _ => {
                return Err(Error::InvalidField {
                    field: "team change op",
                    reason: "expected 1 (create) to 5 (rotate)",
                });
            }
        })
    }
    /// `create`, `add`, `remove`, `grant-admin` or `rotate`.
    pub fn name(self) -> &'static str {
        match self {
            TeamOp::Create => "create",
            TeamOp::Add => "add",
            TeamOp::Remove => "remove",
            TeamOp::GrantAdmin => "grant-admin",
            TeamOp::Rotate => "rotate",
        }
    }
    /// Whether the change opens a new epoch.
    pub fn opens_epoch(self) -> bool {
        matches!(self, TeamOp::Create | TeamOp::Remove | TeamOp::Rotate)
    }
}

/// A member's role (`role` byte): 0 member, 1 admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TeamRole {
    /// Reads what is shared with the team.
    Member = 0,
    /// Also signs membership changes.
    Admin = 1,
}

impl TeamRole {
    fn from_u8(b: u8) -> Result<TeamRole> {
        match b {
            0 => Ok(TeamRole::Member),
            1 => Ok(TeamRole::Admin),
            _ => Err(Error::InvalidField {
                field: "team role",
                reason: "expected 0 (member) or 1 (admin)",
            }),
        }
    }
}

/// The id of a team epoch key, used as the `recipient` of a key wrap to the team (§7, §12.3):
/// `H("serment/v1/team-epoch" 0x00 || str8(team) || u32(epoch) || epoch_key)`.
pub fn epoch_id(team: &str, epoch: u32, epoch_key: &HybridPublicKey) -> KeyId {
    let len = [u8::try_from(team.len()).unwrap_or(u8::MAX)];
    KeyId::from_bytes(labeled_hash(
        "team-epoch",
        &[
            &len,
            team.as_bytes(),
            &epoch.to_be_bytes(),
            epoch_key.as_bytes(),
        ],
    ))
}

/// A team epoch's secret key: the 32-byte X-Wing seed (draft-connolly-cfrg-xwing-kem-06 §5.2),
/// zeroized on drop, with its public key. `Debug` never shows the seed.
#[derive(Clone)]
pub struct EpochSecret {
    seed: Zeroizing<[u8; HYBRID_SECRET_LEN]>,
    public: HybridPublicKey,
}

impl core::fmt::Debug for EpochSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "EpochSecret({:?}, ***)", self.public)
    }
}

impl EpochSecret {
    /// A fresh epoch key pair from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::InvalidField`] (cannot happen for a generated key).
    pub fn generate() -> Result<EpochSecret> {
        let (sk, _) = XWing::gen_keypair_with_rng(&mut crate::rng::os_rng());
        Self::from_private(&sk)
    }
    /// A deterministic epoch key (X-Wing `DeriveKeyPair`), for test vectors only.
    ///
    /// # Errors
    /// As [`EpochSecret::generate`].
    pub fn from_test_seed(ikm: &[u8; 32]) -> Result<EpochSecret> {
        let (sk, _) = XWing::derive_keypair(ikm);
        Self::from_private(&sk)
    }
    /// Rebuilds the key from its 32-byte seed.
    ///
    /// # Errors
    /// [`Error::InvalidField`] if the seed is not a valid X-Wing secret.
    pub fn from_seed(seed: &[u8; HYBRID_SECRET_LEN]) -> Result<EpochSecret> {
        let sk = <XWing as hpke::Kem>::PrivateKey::from_bytes(seed).map_err(|_| {
            Error::InvalidField {
                field: "team epoch key",
                reason: "not a valid X-Wing secret key",
            }
        })?;
        Self::from_private(&sk)
    }
    fn from_private(sk: &<XWing as hpke::Kem>::PrivateKey) -> Result<EpochSecret> {
        let pk = <XWing as hpke::Kem>::sk_to_pk(sk).to_bytes();
        let mut seed = Zeroizing::new([0u8; HYBRID_SECRET_LEN]);
        seed.copy_from_slice(&sk.to_bytes());
        Ok(EpochSecret {
            seed,
            public: HybridPublicKey::from_bytes(&pk)?,
        })
    }
    /// The seed (to keep in the keystore).
    pub fn seed(&self) -> &Zeroizing<[u8; HYBRID_SECRET_LEN]> {
        &self.seed
    }
    /// The epoch's public key.
    pub fn public(&self) -> &HybridPublicKey {
        &self.public
    }
    pub(crate) fn hpke_private(&self) -> Result<<XWing as hpke::Kem>::PrivateKey> {
        <XWing as hpke::Kem>::PrivateKey::from_bytes(self.seed.as_ref()).map_err(|_| {
            Error::InvalidField {
                field: "team epoch key",
                reason: "not a valid X-Wing secret key",
            }
        })
    }
    /// The recipient to wrap a DEK to this epoch (§12.3): its id is [`epoch_id`].
    pub fn recipient(&self, team: &str, epoch: u32) -> Recipient {
        epoch_recipient(team, epoch, &self.public)
    }
}

/// The recipient of a DEK wrap to a team epoch: id [`epoch_id`], X-Wing key `epoch_key`. Its
/// X25519 field is unused (a wrap to a hybrid key never uses it) and all zero.
pub fn epoch_recipient(team: &str, epoch: u32, epoch_key: &HybridPublicKey) -> Recipient {
    Recipient {
        device_id: epoch_id(team, epoch, epoch_key),
        encryption_key: [0; 32],
        hybrid_key: Some(epoch_key.clone()),
    }
}

/// What a change says, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamChangeBody {
    /// The team name.
    pub team: String,
    /// The epoch after this change.
    pub epoch: u32,
    /// What the change does.
    pub op: TeamOp,
    /// The handle it is about (the creator for [`TeamOp::Create`], the signer for
    /// [`TeamOp::Rotate`]).
    pub member: String,
    /// That handle's identity key, as the signer verified it in the log.
    pub member_identity: [u8; 32],
    /// The member's role ([`TeamOp::Add`]); [`TeamRole::Admin`] for create and grant.
    pub role: TeamRole,
    /// The X-Wing public key of `epoch`.
    pub epoch_key: HybridPublicKey,
    /// The admin's handle.
    pub signer: String,
    /// When, seconds since the Unix epoch (signer's clock).
    pub at: u64,
}

/// A decoded, signature-checked team change (payload of log entry kind 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamChange {
    /// What it says.
    pub body: TeamChangeBody,
    /// The Ed25519 public key of the admin device that signed.
    pub signer_key: [u8; 32],
    /// The payload as received.
    pub bytes: Vec<u8>,
}

impl TeamChange {
    /// Magic bytes.
    pub const MAGIC: &'static [u8; 4] = b"SRMG";

    /// Encodes and signs a change with an admin's device (PROTOCOL.md §12.2).
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an invalid team name or handle.
    pub fn sign(body: &TeamChangeBody, device: &DeviceSecret) -> Result<Vec<u8>> {
        validate_team_name(&body.team)?;
        validate_handle(&body.member)?;
        validate_handle(&body.signer)?;
        let mut w = Writer::with_capacity(1700);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(HYBRID_SUITE_ID)
            .str8("team", &body.team)?
            .u32(body.epoch)
            .u8(body.op as u8)
            .str8("member", &body.member)?
            .bytes(&body.member_identity)
            .u8(body.role as u8)
            .bytes(body.epoch_key.as_bytes())
            .str8("signer", &body.signer)?
            .bytes(&device.signing_public_key())
            .u64(body.at);
        let s = sign::sign(device.signing_key(), Context::TeamChange, w.as_slice());
        w.bytes(&s);
        Ok(w.into_vec())
    }

    /// Decodes a change strictly and verifies its signature by `signer_key`. Whether that key
    /// was a current device of a current admin is the replay's check ([`replay_team`]).
    ///
    /// # Errors
    /// Format errors; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<TeamChange> {
        const WHAT: &str = "team change";
        let (mut r, team) = read_prelude(bytes, Self::MAGIC, WHAT)?;
        let epoch = r.u32()?;
        let op = TeamOp::from_u8(r.u8()?)?;
        let member = r.str8("member", 64)?.to_owned();
        validate_handle(&member)?;
        let member_identity: [u8; 32] = r.array()?;
        let role = TeamRole::from_u8(r.u8()?)?;
        let epoch_key =
            HybridPublicKey::from_bytes(r.take(crate::identity::HYBRID_PUBLIC_KEY_LEN)?)?;
        let signer = r.str8("signer", 64)?.to_owned();
        validate_handle(&signer)?;
        let signer_key: [u8; 32] = r.array()?;
        let at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let sig: [u8; 64] = r.array()?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?;
        sign::verify(&signer_key, Context::TeamChange, signed, &sig, WHAT)?;
        if epoch == 0 {
            return Err(Error::InvalidField {
                field: "team epoch",
                reason: "epochs start at 1",
            });
        }
        Ok(TeamChange {
            body: TeamChangeBody {
                team,
                epoch,
                op,
                member,
                member_identity,
                role,
                epoch_key,
                signer,
                at,
            },
            signer_key,
            bytes: bytes.to_vec(),
        })
    }

    /// The id of the device that signed.
    pub fn signer_device(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.signer_key)
    }
}

/// A team epoch key wrapped to one member device (PROTOCOL.md §12.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamKeyWrap {
    /// The team.
    pub team: String,
    /// The epoch.
    pub epoch: u32,
    /// [`epoch_id`] of the epoch key this wrap claims to carry.
    pub epoch_id: KeyId,
    /// The member device it is for.
    pub recipient: KeyId,
    /// The admin device that made it.
    pub sharer: KeyId,
    enc: Vec<u8>,
    wrapped: [u8; 48],
    signature: [u8; 64],
    signed_len: usize,
    bytes: Vec<u8>,
}

/// The HPKE length of an X-Wing `enc`.
const XWING_ENC_LEN: usize = 1120;

fn key_wrap_info(team: &str, epoch: u32, recipient: &KeyId) -> Result<Vec<u8>> {
    let mut w = Writer::with_capacity(128);
    w.bytes(b"serment/v1/team-key")
        .u8(0)
        .u16(HYBRID_SUITE_ID)
        .str8("team", team)?
        .u32(epoch)
        .bytes(recipient.as_bytes());
    Ok(w.into_vec())
}

/// Wraps an epoch secret to a member device with HPKE base mode, X-Wing, HKDF-SHA256,
/// ChaCha20Poly1305 (`info = "serment/v1/team-key" 0x00 || u16(3) || str8(team) || u32(epoch) ||
/// recipient`, `aad = epoch_id`), signed by the admin device `sharer` (PROTOCOL.md §12.3).
///
/// # Errors
/// [`Error::InvalidField`] if the device advertises no X-Wing key (a team key is never wrapped
/// classically) or the team name is invalid.
pub fn wrap_epoch_secret(
    secret: &EpochSecret,
    team: &str,
    epoch: u32,
    recipient: &Recipient,
    sharer: &DeviceSecret,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u8>> {
    let Some(pk) = &recipient.hybrid_key else {
        return Err(Error::InvalidField {
            field: "team member device",
            reason: "the device has no X-Wing key (team keys are wrapped with the hybrid suite \
                     only: run `serment id upgrade` on it)",
        });
    };
    let id = epoch_id(team, epoch, secret.public());
    let info = key_wrap_info(team, epoch, &recipient.device_id)?;
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, XWing>(
        &OpModeS::Base,
        &pk.hpke_public()?,
        &info,
        secret.seed.as_ref(),
        id.as_bytes(),
        rng,
    )
    .map_err(|_| Error::InvalidField {
        field: "team member device",
        reason: "HPKE encapsulation failed",
    })?;
    let mut w = Writer::with_capacity(1400);
    w.bytes(TeamKeyWrap::MAGIC)
        .u16(FORMAT_VERSION)
        .u16(HYBRID_SUITE_ID)
        .str8("team", team)?
        .u32(epoch)
        .bytes(id.as_bytes())
        .bytes(recipient.device_id.as_bytes())
        .bytes(sharer.id().as_bytes())
        .bytes(&enc.to_bytes())
        .bytes(&ct);
    let s = sign::sign(sharer.signing_key(), Context::TeamKey, w.as_slice());
    w.bytes(&s);
    Ok(w.into_vec())
}

impl TeamKeyWrap {
    /// Magic bytes.
    pub const MAGIC: &'static [u8; 4] = b"SRME";

    /// Decodes a team key wrap strictly (syntax only).
    ///
    /// # Errors
    /// Format errors.
    pub fn decode(bytes: &[u8]) -> Result<TeamKeyWrap> {
        const WHAT: &str = "team key wrap";
        let (mut r, team) = read_prelude(bytes, Self::MAGIC, WHAT)?;
        let epoch = r.u32()?;
        let epoch_id = KeyId::from_bytes(r.array()?);
        let recipient = KeyId::from_bytes(r.array()?);
        let sharer = KeyId::from_bytes(r.array()?);
        let enc = r.take(XWING_ENC_LEN)?.to_vec();
        let wrapped: [u8; 48] = r.array()?;
        let signed_len = bytes.len() - r.remaining();
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        Ok(TeamKeyWrap {
            team,
            epoch,
            epoch_id,
            recipient,
            sharer,
            enc,
            wrapped,
            signature,
            signed_len,
            bytes: bytes.to_vec(),
        })
    }

    /// The wrap as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Verifies the sharer's signature; `sharer_signing_key` must be the key of
    /// [`TeamKeyWrap::sharer`].
    ///
    /// # Errors
    /// [`Error::WrongSigner`], [`Error::BadSignature`].
    pub fn verify_signature(&self, sharer_signing_key: &[u8; 32]) -> Result<()> {
        let id = KeyId::of(KeyKind::Device, sharer_signing_key);
        if id != self.sharer {
            return Err(Error::WrongSigner {
                what: "team key wrap",
                expected: self.sharer.to_string(),
                found: id.to_string(),
            });
        }
        let signed = self.bytes.get(..self.signed_len).ok_or(Error::Truncated {
            what: "team key wrap",
        })?;
        sign::verify(
            sharer_signing_key,
            Context::TeamKey,
            signed,
            &self.signature,
            "team key wrap",
        )
    }
}

/// Opens a team key wrap for `device` and checks the key against the chain: the wrap must name
/// this device, `team`, `epoch` and the [`epoch_id`] of `expected` (the epoch key the replayed
/// chain holds for that epoch), and the unwrapped secret must give exactly `expected`. An old
/// epoch's key served for a newer epoch, or any key the admins did not log, is refused.
///
/// # Errors
/// [`Error::ContextMismatch`] for another device; [`Error::Team`] for another team, epoch or
/// key; [`Error::Decrypt`] on any HPKE failure.
pub fn unwrap_epoch_secret(
    w: &TeamKeyWrap,
    device: &DeviceSecret,
    team: &str,
    epoch: u32,
    expected: &HybridPublicKey,
) -> Result<EpochSecret> {
    if w.recipient != device.id() {
        return Err(Error::ContextMismatch(
            "the team key wrap is for another device",
        ));
    }
    if w.team != team || w.epoch != epoch || w.epoch_id != epoch_id(team, epoch, expected) {
        return Err(bad(
            "the team key served is not the key the membership log holds for this epoch",
        ));
    }
    let info = key_wrap_info(team, epoch, &w.recipient)?;
    let sk = device.hybrid_private()?;
    let enc = <XWing as hpke::Kem>::EncappedKey::from_bytes(&w.enc).map_err(|_| Error::Decrypt)?;
    let pt = Zeroizing::new(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeR::Base,
            &sk,
            &enc,
            &info,
            &w.wrapped,
            w.epoch_id.as_bytes(),
        )
        .map_err(|_| Error::Decrypt)?,
    );
    let seed: [u8; HYBRID_SECRET_LEN] = pt.as_slice().try_into().map_err(|_| Error::Decrypt)?;
    let secret = EpochSecret::from_seed(&seed)?;
    if secret.public() != expected {
        return Err(bad(
            "the unwrapped team key is not the key the membership log holds for this epoch",
        ));
    }
    Ok(secret)
}
