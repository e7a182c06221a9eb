//! Device pairing (PROTOCOL.md §4.1): a short one-time code shown by an existing device
//! (`serment device link`) and typed on a new one (`serment device join --code …`) authenticates,
//! through a relay the protocol distrusts (the server), the new device's public keys to the old
//! device and the identity's secrets to the new device.
//!
//! The code is `SSSS-SSPP-PPPP-PPPP`: 6 decimal digits naming the relay slot (public: the server
//! sees it) and 10 digits of password (never sent). The password is the input of SPAKE2
//! (Abdalla and Pointcheval, "Simple Password-Based Encrypted Key Exchange Protocols", CT-RSA
//! 2005), RustCrypto's `spake2` crate over the Ed25519 group, so whoever relays the messages
//! learns nothing that lets it test guesses offline: each guess costs one live pairing attempt,
//! which the slot's single use ends. The SPAKE2 key, bound to the slot and both messages, gives
//! two AES-256-GCM keys (one per direction, each sealing exactly one message, so a fixed nonce).
//!
//! Messages (every one starts with `"SRMP" u16 format_version u16 suite_id u8 step`):
//!
//! | step | from | body |
//! |---|---|---|
//! | 1 hello | linking device | `spake_a: bytes16` |
//! | 2 join | new device | `spake_b: bytes16 || sealed: bytes16` (the new device's public keys and its key confirmation: a signature by its signing key over the transcript and those keys) |
//! | 3 finish | linking device | `sealed: u32 length || bytes` (identity seed, signed record, state) |

use core::fmt;

use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use crate::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::{DeviceSecret, HYBRID_PUBLIC_KEY_LEN, HybridPublicKey};
use crate::ids::labeled_hash;
use crate::sign::{self, Context};
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

/// Magic bytes of every pairing message.
pub const MAGIC: &[u8; 4] = b"SRMP";
/// Digits of the slot part of a code.
pub const SLOT_DIGITS: usize = 6;
/// Digits of the password part of a code (10 digits: about 33 bits, one online guess per slot).
pub const SECRET_DIGITS: usize = 10;
/// Seconds a pairing slot lives on the relay (§4.1); the code is useless afterwards.
pub const PAIRING_TTL_SECS: u64 = 300;
/// The largest finish payload, in bytes (the state JSON carries at most a CA bundle).
pub const MAX_FINISH_LEN: usize = 256 * 1024;
/// The AES-GCM tag length.
const TAG_LEN: usize = 16;

const STEP_HELLO: u8 = 1;
const STEP_JOIN: u8 = 2;
const STEP_FINISH: u8 = 3;

/// A pairing code: the relay slot and the one-time password. `Debug` hides the password.
#[derive(Clone)]
pub struct PairingCode {
    slot: String,
    secret: Zeroizing<String>,
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairingCode(slot {}, ***)", self.slot)
    }
}

/// `n` uniformly random decimal digits (rejection sampling on bytes below 250).
fn random_digits(n: usize) -> Result<String> {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        let mut b = [0u8; 32];
        crate::rng::fill(&mut b)?;
        for x in b {
            if x < 250 && out.len() < n {
                out.push(char::from(b'0' + x % 10));
            }
        }
    }
    Ok(out)
}

impl PairingCode {
    /// A fresh code from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Rng`].
    pub fn generate() -> Result<PairingCode> {
        Ok(PairingCode {
            slot: random_digits(SLOT_DIGITS)?,
            secret: Zeroizing::new(random_digits(SECRET_DIGITS)?),
        })
    }

    /// Parses a code as typed: 16 decimal digits, with any `-` or spaces between them.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for anything else.
    pub fn parse(s: &str) -> Result<PairingCode> {
        let digits: Zeroizing<String> = Zeroizing::new(
            s.chars()
                .filter(|c| *c != '-' && !c.is_whitespace())
                .collect(),
        );
        if digits.len() != SLOT_DIGITS + SECRET_DIGITS
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Error::InvalidField {
                field: "pairing code",
                reason: "expected 16 digits, as `serment device link` shows them",
            });
        }
        let (slot, secret) = digits.split_at(SLOT_DIGITS);
        Ok(PairingCode {
            slot: slot.to_owned(),
            secret: Zeroizing::new(secret.to_owned()),
        })
    }

    /// The relay slot (public).
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// The code to show, `SSSS-SSPP-PPPP-PPPP`. Secret: show it to the user only.
    pub fn display(&self) -> Zeroizing<String> {
        let all = Zeroizing::new(format!("{}{}", self.slot, self.secret.as_str()));
        let mut out = Zeroizing::new(String::with_capacity(19));
        for (i, c) in all.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// Whether `slot` is a well-formed slot (6 digits), as the relay checks it.
    pub fn is_slot(slot: &str) -> bool {
        slot.len() == SLOT_DIGITS && slot.bytes().all(|b| b.is_ascii_digit())
    }

    fn spake(&self, link: bool) -> (Spake2<Ed25519Group>, Vec<u8>) {
        let pw = Password::new(self.secret.as_bytes());
        let id_a = Identity::new(format!("serment/v1/pairing/link/{}", self.slot).as_bytes());
        let id_b = Identity::new(format!("serment/v1/pairing/join/{}", self.slot).as_bytes());
        if link {
            Spake2::<Ed25519Group>::start_a_with_rng(&pw, &id_a, &id_b, crate::rng::os_rng())
        } else {
            Spake2::<Ed25519Group>::start_b_with_rng(&pw, &id_a, &id_b, crate::rng::os_rng())
        }
    }
}

fn header(w: &mut Writer, step: u8) {
    w.bytes(MAGIC)
        .u16(FORMAT_VERSION)
        .u16(RECORD_SUITE_ID)
        .u8(step);
}

fn read_header<'a>(bytes: &'a [u8], step: u8, what: &'static str) -> Result<Reader<'a>> {
    let mut r = Reader::new(bytes, what);
    r.magic(MAGIC)?;
    crate::check_version(what, r.u16()?, r.u16()?)?;
    if r.u8()? != step {
        return Err(Error::InvalidField {
            field: "pairing step",
            reason: "a pairing message of another step",
        });
    }
    Ok(r)
}

fn bytes16(w: &mut Writer, b: &[u8]) -> Result<()> {
    let n = u16::try_from(b.len()).map_err(|_| Error::TooLarge {
        what: "pairing field",
        limit: u64::from(u16::MAX),
    })?;
    w.u16(n).bytes(b);
    Ok(())
}

fn read_bytes16<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    let n = r.u16()?;
    r.take(usize::from(n))
}

/// The two directions' keys, derived from the SPAKE2 key and the transcript.
struct Keys {
    join: LessSafeKey,
    finish: LessSafeKey,
    aad: Vec<u8>,
    transcript: [u8; 32],
}

impl Keys {
    fn derive(shared: &[u8], slot: &str, hello: &[u8], spake_b: &[u8]) -> Result<Keys> {
        let transcript = labeled_hash("pairing-transcript", &[slot.as_bytes(), hello, spake_b]);
        let key = |dir: &[u8]| -> Result<LessSafeKey> {
            let k = Zeroizing::new(labeled_hash("pairing-key", &[shared, &transcript, dir]));
            Ok(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, k.as_ref()).map_err(|_| Error::Decrypt)?,
            ))
        };
        let mut aad = b"serment/v1/pairing\x00".to_vec();
        aad.extend_from_slice(&transcript);
        Ok(Keys {
            join: key(b"join")?,
            finish: key(b"finish")?,
            aad,
            transcript,
        })
    }
}

fn seal(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let mut buf = plain.to_vec();
    // Each direction's key seals exactly one message: a fixed nonce is unique for its key.
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| Error::Decrypt)?;
    Ok(buf)
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < TAG_LEN {
        return Err(Error::Pairing("a sealed pairing message is truncated"));
    }
    let mut buf = Zeroizing::new(sealed.to_vec());
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| {
            Error::Pairing(
                "the pairing message does not authenticate: wrong code, or the relay changed it",
            )
        })?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// The public keys of the new device, as the join message carries them (sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoiningDevice {
    /// Ed25519 signing key.
    pub signing_key: [u8; 32],
    /// X25519 encryption key.
    pub encryption_key: [u8; 32],
    /// X-Wing key, if the device has one (every new device does).
    pub hybrid_key: Option<HybridPublicKey>,
}

/// The body the new device signs to prove it holds the keys it announces (PROTOCOL.md §4.1, key
/// confirmation): `transcript || keys`, signed as `sig_input("pairing-confirm", …)`.
fn confirmation_body(transcript: &[u8; 32], keys: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(32 + keys.len());
    b.extend_from_slice(transcript);
    b.extend_from_slice(keys);
    b
}

impl JoiningDevice {
    /// The public keys of `device`.
    pub fn of(device: &DeviceSecret) -> JoiningDevice {
        JoiningDevice {
            signing_key: device.signing_public_key(),
            encryption_key: device.encryption_public_key(),
            hybrid_key: device.hybrid_public_key(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(65 + HYBRID_PUBLIC_KEY_LEN);
        w.bytes(&self.signing_key).bytes(&self.encryption_key);
        match &self.hybrid_key {
            Some(h) => w.u8(1).bytes(h.as_bytes()),
            None => w.u8(0),
        };
        w.into_vec()
    }
    /// Decodes `keys || confirmation[64]` and returns the keys with the encoded keys' length.
    fn decode(b: &[u8]) -> Result<(JoiningDevice, usize)> {
        let mut r = Reader::new(b, "joining device keys");
        let signing_key = r.array()?;
        let encryption_key = r.array()?;
        let hybrid_key = match r.u8()? {
            0 => None,
            1 => Some(HybridPublicKey::from_bytes(r.take(HYBRID_PUBLIC_KEY_LEN)?)?),
            _ => {
                return Err(Error::InvalidField {
                    field: "hybrid flag",
                    reason: "expected 0 or 1",
                });
            }
        };
        let keys_len = b.len() - r.remaining();
        Ok((
            JoiningDevice {
                signing_key,
                encryption_key,
                hybrid_key,
            },
            keys_len,
        ))
    }
}

/// The linking (existing) device's side, after it sent the hello.
pub struct Link {
    code: PairingCode,
    spake: Spake2<Ed25519Group>,
    hello: Vec<u8>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Link({:?})", self.code)
    }
}

/// The linking device once it accepted a join: seals the finish message.
pub struct Linked {
    keys: Keys,
}

impl fmt::Debug for Linked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Linked(***)")
    }
}

impl Link {
    /// Starts SPAKE2 as side A and returns the hello (step 1) to post to the relay.
    pub fn start(code: &PairingCode) -> (Link, Vec<u8>) {
        let (spake, msg) = code.spake(true);
        let mut w = Writer::with_capacity(48);
        header(&mut w, STEP_HELLO);
        // 33 bytes: cannot exceed a u16.
        let _ = bytes16(&mut w, &msg);
        let hello = w.into_vec();
        (
            Link {
                code: code.clone(),
                spake,
                hello: hello.clone(),
            },
            hello,
        )
    }

    /// Finishes SPAKE2 with the join message (step 2), opens the new device's keys and checks
    /// its key confirmation: a signature by the announced signing key over this pairing's
    /// transcript and the keys (`pairing-confirm`), so the joiner holds the keys it announces.
    ///
    /// # Errors
    /// Decoding errors; [`Error::Pairing`] for a wrong code, a message the relay changed or
    /// replayed, or a missing or wrong key confirmation (nothing may be enrolled then).
    pub fn accept(self, join: &[u8]) -> Result<(Linked, JoiningDevice)> {
        let mut r = read_header(join, STEP_JOIN, "pairing join")?;
        let spake_b = read_bytes16(&mut r)?;
        let sealed = read_bytes16(&mut r)?;
        r.finish()?;
        let shared = Zeroizing::new(
            self.spake
                .finish(spake_b)
                .map_err(|_| Error::Pairing("the join message is not a SPAKE2 message"))?,
        );
        let keys = Keys::derive(&shared, &self.code.slot, &self.hello, spake_b)?;
        let plain = open(&keys.join, &keys.aad, sealed)?;
        let (dev, keys_len) = JoiningDevice::decode(&plain)?;
        let (announced, rest) = plain.split_at(keys_len);
        let sig: [u8; 64] = rest.try_into().map_err(|_| {
            Error::Pairing("the join carries no key confirmation of the new device")
        })?;
        sign::verify(
            &dev.signing_key,
            Context::PairingConfirm,
            &confirmation_body(&keys.transcript, announced),
            &sig,
            "pairing key confirmation",
        )
        .map_err(|_| {
            Error::Pairing("the new device did not prove it holds the keys it announces")
        })?;
        Ok((Linked { keys }, dev))
    }
}

impl Linked {
    /// Seals the finish message (step 3) carrying `payload` (the identity seed, the new device's
    /// signed record and the client state, PROTOCOL.md §4.1).
    ///
    /// # Errors
    /// [`Error::TooLarge`] over [`MAX_FINISH_LEN`].
    pub fn finish(&self, payload: &[u8]) -> Result<Vec<u8>> {
        if payload.len() > MAX_FINISH_LEN {
            return Err(Error::TooLarge {
                what: "pairing finish",
                limit: MAX_FINISH_LEN as u64,
            });
        }
        let sealed = seal(&self.keys.finish, &self.keys.aad, payload)?;
        let mut w = Writer::with_capacity(sealed.len() + 16);
        header(&mut w, STEP_FINISH);
        w.u32(sealed.len() as u32).bytes(&sealed);
        Ok(w.into_vec())
    }
}

/// The new device's side, after it sent the join.
pub struct Join {
    keys: Keys,
}

impl fmt::Debug for Join {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Join(***)")
    }
}

impl Join {
    /// Answers the hello (step 1) found on the relay: SPAKE2 side B, and the new device's public
    /// keys with its key confirmation (its signing key over the transcript and the keys),
    /// sealed under the derived key. Returns the join message (step 2) to post.
    ///
    /// # Errors
    /// Decoding errors of the hello; [`Error::Pairing`] if it is not a SPAKE2 message.
    pub fn start(
        code: &PairingCode,
        hello: &[u8],
        device: &DeviceSecret,
    ) -> Result<(Join, Vec<u8>)> {
        Self::start_confirmed_by(code, hello, &JoiningDevice::of(device), device)
    }

    /// [`Join::start`] announcing `keys` with a confirmation signed by `prover`: the same as
    /// `start` when `prover` holds `keys`; otherwise a join the linking device must refuse
    /// (for tests of that refusal).
    ///
    /// # Errors
    /// As [`Join::start`].
    pub fn start_confirmed_by(
        code: &PairingCode,
        hello: &[u8],
        keys: &JoiningDevice,
        prover: &DeviceSecret,
    ) -> Result<(Join, Vec<u8>)> {
        let mut r = read_header(hello, STEP_HELLO, "pairing hello")?;
        let spake_a = read_bytes16(&mut r)?;
        r.finish()?;
        let (spake, spake_b) = code.spake(false);
        let shared = Zeroizing::new(
            spake
                .finish(spake_a)
                .map_err(|_| Error::Pairing("the hello is not a SPAKE2 message"))?,
        );
        let derived = Keys::derive(&shared, &code.slot, hello, &spake_b)?;
        let mut plain = Zeroizing::new(keys.encode());
        let confirmation = sign::sign(
            prover.signing_key(),
            Context::PairingConfirm,
            &confirmation_body(&derived.transcript, &plain),
        );
        plain.extend_from_slice(&confirmation);
        let sealed = seal(&derived.join, &derived.aad, &plain)?;
        let mut w = Writer::with_capacity(spake_b.len() + sealed.len() + 16);
        header(&mut w, STEP_JOIN);
        bytes16(&mut w, &spake_b)?;
        bytes16(&mut w, &sealed)?;
        Ok((Join { keys: derived }, w.into_vec()))
    }

    /// Opens the finish message (step 3).
    ///
    /// # Errors
    /// Decoding errors; [`Error::Pairing`] for a message the linking device did not seal for
    /// this pairing (a wrong code, a relay that changed or replayed it).
    pub fn open_finish(&self, finish: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut r = read_header(finish, STEP_FINISH, "pairing finish")?;
        let n = r.u32()? as usize;
        if n > MAX_FINISH_LEN + TAG_LEN {
            return Err(Error::TooLarge {
                what: "pairing finish",
                limit: MAX_FINISH_LEN as u64,
            });
        }
        let sealed = r.take(n)?;
        r.finish()?;
        open(&self.keys.finish, &self.keys.aad, sealed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::identity::DeviceSecret;

    fn joining() -> DeviceSecret {
        DeviceSecret::generate()
    }

    #[test]
    fn code_round_trip_and_parse_errors() {
        let c = PairingCode::generate().unwrap();
        let shown = c.display();
        assert_eq!(shown.len(), 19);
        let p = PairingCode::parse(&shown).unwrap();
        assert_eq!(p.slot(), c.slot());
        assert_eq!(p.secret.as_str(), c.secret.as_str());
        assert!(!format!("{c:?}").contains(c.secret.as_str()));
        for bad in ["", "1234", "1234-5678-9012-345a", "1234-5678-9012-34567"] {
            assert!(PairingCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pairing_round_trip() {
        let code = PairingCode::generate().unwrap();
        let dev = joining();
        let (link, hello) = Link::start(&code);
        let (join, join_msg) = Join::start(&code, &hello, &dev).unwrap();
        let (linked, got) = link.accept(&join_msg).unwrap();
        assert_eq!(got, JoiningDevice::of(&dev));
        let fin = linked.finish(b"identity and record").unwrap();
        assert_eq!(&join.open_finish(&fin).unwrap()[..], b"identity and record");
    }

    #[test]
    fn a_join_without_the_new_devices_key_confirmation_is_refused() {
        // The announced keys are one device's, the confirmation is signed by another: whoever
        // sent the join does not hold the keys it asks to enrol.
        let code = PairingCode::generate().unwrap();
        let (link, hello) = Link::start(&code);
        let announced = JoiningDevice::of(&joining());
        let (_j, msg) = Join::start_confirmed_by(&code, &hello, &announced, &joining()).unwrap();
        let e = link.accept(&msg).unwrap_err();
        assert!(
            matches!(e, Error::Pairing(m) if m.contains("did not prove")),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_code_is_refused_by_both_sides() {
        let code = PairingCode::generate().unwrap();
        let wrong = PairingCode::parse(&format!("{}{}", code.slot(), "0000000000")).unwrap();
        let (link, hello) = Link::start(&code);
        let (_join, join_msg) = Join::start(&wrong, &hello, &joining()).unwrap();
        assert!(matches!(link.accept(&join_msg), Err(Error::Pairing(_))));
    }

    #[test]
    fn every_flipped_byte_of_join_or_finish_is_refused() {
        let code = PairingCode::generate().unwrap();
        let dev = joining();
        let (link, hello) = Link::start(&code);
        let (join, join_msg) = Join::start(&code, &hello, &dev).unwrap();
        // A few positions of the join: SPAKE2 element, sealed keys, tag.
        for i in [12, 20, 45, join_msg.len() - 1] {
            let (l2, h2) = Link::start(&code);
            let (_j2, mut m2) = Join::start(&code, &h2, &dev).unwrap();
            m2[i] ^= 1;
            assert!(l2.accept(&m2).is_err(), "join flip at {i}");
        }
        let (linked, _) = link.accept(&join_msg).unwrap();
        let fin = linked.finish(b"payload").unwrap();
        for i in 0..fin.len() {
            let mut f = fin.clone();
            f[i] ^= 1;
            assert!(join.open_finish(&f).is_err(), "finish flip at {i}");
        }
    }

    #[test]
    fn replayed_messages_from_another_pairing_are_refused() {
        let code = PairingCode::generate().unwrap();
        let dev = joining();
        // An earlier pairing with the same code (the relay recorded it).
        let (old_link, old_hello) = Link::start(&code);
        let (_old_join, old_join_msg) = Join::start(&code, &old_hello, &dev).unwrap();
        let (old_linked, _) = old_link.accept(&old_join_msg).unwrap();
        let old_finish = old_linked.finish(b"old").unwrap();
        // Now: the relay replays the old join to the linking device, the old finish to the new.
        let (link, hello) = Link::start(&code);
        assert!(matches!(link.accept(&old_join_msg), Err(Error::Pairing(_))));
        let (join, _) = Join::start(&code, &hello, &dev).unwrap();
        assert!(matches!(
            join.open_finish(&old_finish),
            Err(Error::Pairing(_))
        ));
    }
}
