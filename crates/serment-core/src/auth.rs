//! Login challenges (PROTOCOL.md §8.2): the device proves possession of its signing key.

use crate::error::Result;
use crate::identity::DeviceSecret;
use crate::ids::KeyId;
use crate::sign::{self, Context};

fn body(challenge: &[u8; 32], device_id: &KeyId) -> [u8; 64] {
    let mut b = [0u8; 64];
    let (c, d) = b.split_at_mut(32);
    c.copy_from_slice(challenge);
    d.copy_from_slice(device_id.as_bytes());
    b
}

/// Signs a server challenge: Ed25519 over `sig_input("auth", challenge || device_id)`.
pub fn sign_challenge(device: &DeviceSecret, challenge: &[u8; 32]) -> [u8; 64] {
    sign::sign(
        device.signing_key(),
        Context::Auth,
        &body(challenge, &device.id()),
    )
}

/// Verifies a challenge signature made by the device whose Ed25519 key is `signing_key`.
///
/// # Errors
/// [`crate::Error::BadSignature`] if it does not verify.
pub fn verify_challenge(
    signing_key: &[u8; 32],
    challenge: &[u8; 32],
    device_id: &KeyId,
    signature: &[u8],
) -> Result<()> {
    sign::verify(
        signing_key,
        Context::Auth,
        &body(challenge, device_id),
        signature,
        "login challenge",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_round_trip() {
        let d = DeviceSecret::from_test_seed(&[3; 32]);
        let c = [5u8; 32];
        let sig = sign_challenge(&d, &c);
        assert!(verify_challenge(&d.signing_public_key(), &c, &d.id(), &sig).is_ok());
        assert!(verify_challenge(&d.signing_public_key(), &[6; 32], &d.id(), &sig).is_err());
        let other = DeviceSecret::from_test_seed(&[4; 32]);
        assert!(verify_challenge(&d.signing_public_key(), &c, &other.id(), &sig).is_err());
    }
}
