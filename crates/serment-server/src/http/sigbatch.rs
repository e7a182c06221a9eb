//! Batch verification of the Ed25519 signatures of one request (issue 14 §2), a fast path only.
//!
//! [`all_valid`] checks several signatures in one multi-scalar multiplication
//! (`ed25519_dalek::verify_batch`, random coefficients derived from every input). It answers
//! whether **all** verify; it never names the bad one. So callers use it like this: when it says
//! yes, the one-by-one checks are skipped; when it says no (or declines), the caller runs its
//! one-by-one checks, unchanged, which refuse the offending item with its own error (M130).
//!
//! What a batch accepts, next to `verify_strict` (RFC 8032 §5.1.7, used everywhere else):
//! - a weak (small-order) public key is declined here, so nobody can forge for such a key;
//! - the batch equation is cofactorless, like `verify_strict`, but random coefficients may cancel
//!   a small-order component of a signature's `R`. Such a signature can only be made by the
//!   holder of the private key (it needs `s = r + h·a`): the signer can have the server accept a
//!   signature that a strict verifier refuses, about one try in two. It gains nothing it could
//!   not get with a valid signature over bad contents: a recipient verifies the wrap strictly
//!   and refuses it (`BadSignature`, exit 4), as for any wrap its author spoiled.
//!   THREAT_MODEL.md, "Batch verification".

use ed25519_dalek::{Signature, VerifyingKey};

/// The fewest signatures worth a batch: one is checked as fast by `verify_strict` alone.
const MIN_BATCH: usize = 2;

/// One signature to check: the signer's Ed25519 public key, the exact signed message (with its
/// domain separation, PROTOCOL.md §3), and the 64-byte signature.
pub(crate) struct Signed<'a> {
    pub(crate) public_key: &'a [u8; 32],
    pub(crate) message: Vec<u8>,
    pub(crate) signature: [u8; 64],
}

/// True if every signature of `items` verifies, in one batch. False if one does not, if a key is
/// not a valid point or is weak (small order), or if there are fewer than two items: the caller
/// then verifies one by one.
pub(crate) fn all_valid(items: &[Signed<'_>]) -> bool {
    if items.len() < MIN_BATCH {
        return false;
    }
    let mut keys = Vec::with_capacity(items.len());
    for i in items {
        match VerifyingKey::from_bytes(i.public_key) {
            Ok(k) if !k.is_weak() => keys.push(k),
            _ => return false,
        }
    }
    let messages: Vec<&[u8]> = items.iter().map(|i| i.message.as_slice()).collect();
    let signatures: Vec<Signature> = items
        .iter()
        .map(|i| Signature::from_bytes(&i.signature))
        .collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn signed(key: &SigningKey, pk: &[u8; 32], msg: &[u8]) -> Signed<'static> {
        let pk: &'static [u8; 32] = Box::leak(Box::new(*pk));
        Signed {
            public_key: pk,
            message: msg.to_vec(),
            signature: key.sign(msg).to_bytes(),
        }
    }

    #[test]
    fn a_batch_is_all_or_nothing() {
        let k = SigningKey::from_bytes(&[7u8; 32]);
        let pk = k.verifying_key().to_bytes();
        let mut items: Vec<Signed<'_>> = (0..5u8).map(|i| signed(&k, &pk, &[i; 40])).collect();
        assert!(all_valid(&items));
        // One signature of five altered: the batch refuses, whichever it is.
        for bad in 0..items.len() {
            items[bad].signature[63] ^= 0x01;
            assert!(!all_valid(&items), "item {bad} altered");
            items[bad].signature[63] ^= 0x01;
            items[bad].message[0] ^= 0x80;
            assert!(!all_valid(&items), "message {bad} altered");
            items[bad].message[0] ^= 0x80;
        }
        assert!(all_valid(&items));
        // A lone signature is left to the one-by-one check.
        assert!(!all_valid(&items[..1]));
    }

    #[test]
    fn a_weak_key_is_declined() {
        // The identity point (small order): a "signature" (R = identity, s = 0) satisfies the
        // cofactorless equation for every message; verify_strict refuses it, so must the batch.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let k = SigningKey::from_bytes(&[7u8; 32]);
        let pk = k.verifying_key().to_bytes();
        let mut forged = [0u8; 64];
        forged[0] = 1;
        let items = [
            signed(&k, &pk, b"honest"),
            Signed {
                public_key: &identity,
                message: b"anything".to_vec(),
                signature: forged,
            },
        ];
        assert!(!all_valid(&items));
        assert!(
            VerifyingKey::from_bytes(&identity)
                .unwrap()
                .verify_strict(b"anything", &Signature::from_bytes(&forged))
                .is_err()
        );
    }
}
