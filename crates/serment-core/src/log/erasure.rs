//! Erasure tombstones (PROTOCOL.md §11.3, kind 9 `erasure`; issue 12 §5): the signed request that
//! a document be erased, kept in the log once the server has deleted its blobs and wraps.
//!
//! ```text
//! Erasure { magic "SRMZ", format_version u16 = 1, suite_id u16 = 1, doc_id [16], reason u8,
//!           requester_device [32], at u64, signature [64] }
//!     // the requester device over sig_input("log-erasure", all bytes before the signature)
//! ```
//!
//! A tombstone holds ids, a reason code and a time: no personal data. Its subject is the document
//! id, so it chains with the document's wrap, removal and access entries (§11.3 `prev_*`). Whether
//! the requester may erase the document is not a property of the bytes alone: it is checked
//! against the document's proven chain (PROTOCOL.md §11.3.2).

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::DeviceSecret;
use crate::ids::{DocId, KeyId, KeyKind};
use crate::sign::{self, Context};
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

/// The length of an encoded tombstone, in bytes: 4 + 2 + 2 + 16 + 1 + 32 + 8 + 64.
pub const ERASURE_LEN: usize = 129;

/// Why a document was erased (the `reason` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErasureReason {
    /// 1: the patient asked for it (RGPD art. 17).
    PatientRequest = 1,
    /// 2: sent in error (wrong patient, wrong document).
    SentInError = 2,
    /// 3: the retention period ended.
    RetentionEnded = 3,
    /// 4: another reason.
    Other = 4,
}

impl ErasureReason {
    /// Every reason, in code order.
    pub const ALL: [ErasureReason; 4] = [
        ErasureReason::PatientRequest,
        ErasureReason::SentInError,
        ErasureReason::RetentionEnded,
        ErasureReason::Other,
    ];

    /// The reason of a code byte.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a code other than 1 to 4.
    pub fn from_u8(b: u8) -> Result<ErasureReason> {
        ErasureReason::ALL
            .into_iter()
            .find(|r| *r as u8 == b)
            .ok_or(Error::InvalidField {
                field: "erasure reason",
                reason: "expected 1 to 4",
            })
    }

    /// The name used by the CLI and the API: `patient-request`, `sent-in-error`,
    /// `retention-ended`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            ErasureReason::PatientRequest => "patient-request",
            ErasureReason::SentInError => "sent-in-error",
            ErasureReason::RetentionEnded => "retention-ended",
            ErasureReason::Other => "other",
        }
    }

    /// The reason of a name ([`ErasureReason::name`]).
    ///
    /// # Errors
    /// [`Error::InvalidField`] for any other string.
    pub fn from_name(s: &str) -> Result<ErasureReason> {
        ErasureReason::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or(Error::InvalidField {
                field: "erasure reason",
                reason: "expected patient-request, sent-in-error, retention-ended or other",
            })
    }

    /// The code byte.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An erasure tombstone (payload of kind 9), decoded; its signature is checked by
/// [`Erasure::verify`] with the requester device's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The erased document (every version).
    pub doc_id: DocId,
    /// Why.
    pub reason: ErasureReason,
    /// The device that asked and signed.
    pub requester_device: KeyId,
    /// When, seconds since the Unix epoch (the requester's clock).
    pub at: u64,
    signature: [u8; 64],
    signed: Vec<u8>,
}

impl Erasure {
    const MAGIC: &'static [u8; 4] = b"SRMZ";

    /// Builds and signs a tombstone for `doc_id` with the requester's device key.
    pub fn sign(
        doc_id: &DocId,
        reason: ErasureReason,
        requester: &DeviceSecret,
        at: u64,
    ) -> Vec<u8> {
        let mut w = Writer::with_capacity(ERASURE_LEN);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .bytes(doc_id.as_bytes())
            .u8(reason.code())
            .bytes(requester.id().as_bytes())
            .u64(at);
        let s = sign::sign(requester.signing_key(), Context::LogErasure, w.as_slice());
        w.bytes(&s);
        w.into_vec()
    }

    /// Decodes a tombstone strictly (syntax only: [`Erasure::verify`] checks the signature).
    ///
    /// # Errors
    /// [`Error::BadMagic`]-style format errors, an unsupported version or suite, an unknown
    /// reason code ([`Error::InvalidField`]), [`Error::Truncated`], [`Error::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<Erasure> {
        const WHAT: &str = "erasure";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let doc_id = DocId::from_bytes(r.array()?);
        let reason = ErasureReason::from_u8(r.u8()?)?;
        let requester_device = KeyId::from_bytes(r.array()?);
        let at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?
            .to_vec();
        Ok(Erasure {
            doc_id,
            reason,
            requester_device,
            at,
            signature,
            signed,
        })
    }

    /// Verifies the requester's signature; `requester_signing_key` must be the Ed25519 key of
    /// [`Erasure::requester_device`] (taken from its proven device record).
    ///
    /// # Errors
    /// [`Error::WrongSigner`] if the key is not that device's; [`Error::BadSignature`].
    pub fn verify(&self, requester_signing_key: &[u8; 32]) -> Result<()> {
        let id = KeyId::of(KeyKind::Device, requester_signing_key);
        if id != self.requester_device {
            return Err(Error::WrongSigner {
                what: "erasure",
                expected: self.requester_device.to_string(),
                found: id.to_string(),
            });
        }
        sign::verify(
            requester_signing_key,
            Context::LogErasure,
            &self.signed,
            &self.signature,
            "erasure",
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn tombstone_round_trips_and_every_flip_fails() {
        let dev = DeviceSecret::from_test_seed(&[2; 32]);
        let doc = DocId::from_bytes([7; 16]);
        let p = Erasure::sign(&doc, ErasureReason::SentInError, &dev, 1_700_000_000);
        assert_eq!(p.len(), ERASURE_LEN);
        let e = Erasure::decode(&p).unwrap();
        assert_eq!(e.doc_id, doc);
        assert_eq!(e.reason, ErasureReason::SentInError);
        assert_eq!(e.requester_device, dev.id());
        assert_eq!(e.at, 1_700_000_000);
        e.verify(&dev.signing_public_key()).unwrap();
        let other = DeviceSecret::from_test_seed(&[3; 32]);
        assert!(matches!(
            e.verify(&other.signing_public_key()),
            Err(Error::WrongSigner { .. })
        ));
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 1;
            let ok = Erasure::decode(&q)
                .and_then(|e| e.verify(&dev.signing_public_key()))
                .is_ok();
            assert!(!ok, "flip {i}");
        }
        assert!(Erasure::decode(&p[..p.len() - 1]).is_err());
        let mut longer = p.clone();
        longer.push(0);
        assert!(Erasure::decode(&longer).is_err());
    }

    #[test]
    fn reasons_have_stable_codes_and_names() {
        for (code, name) in [
            (1, "patient-request"),
            (2, "sent-in-error"),
            (3, "retention-ended"),
            (4, "other"),
        ] {
            let r = ErasureReason::from_u8(code).unwrap();
            assert_eq!(r.name(), name);
            assert_eq!(ErasureReason::from_name(name).unwrap(), r);
        }
        assert!(ErasureReason::from_u8(0).is_err());
        assert!(ErasureReason::from_u8(5).is_err());
        assert!(ErasureReason::from_name("Other").is_err());
    }
}
