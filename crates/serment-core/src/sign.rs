//! Domain-separated Ed25519 signatures (PROTOCOL.md §3).
//!
//! A signature is always over `"serment/v1/sig/" || label || 0x00 || body`, so a signature made for
//! one purpose (a login challenge, say) can never be replayed as another (a key wrap).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::{Error, Result};

/// The signing contexts of PROTOCOL.md §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A device record signed by an identity key.
    DeviceRecord,
    /// A login challenge signed by a device key.
    Auth,
    /// A sealed document signed by its author device.
    Document,
    /// A key wrap signed by the sharing device.
    Wrap,
    /// An identity key rotation, signed by the old and the new identity key (PROTOCOL.md §11.3).
    LogRotation,
    /// A device revocation, signed by the identity key (PROTOCOL.md §11.3).
    LogRevocation,
    /// A recipient removal, signed by the author device (PROTOCOL.md §11.3).
    LogRemoval,
    /// An access receipt, signed by the fetching device (PROTOCOL.md §11.5).
    AccessReceipt,
    /// An access entry, signed by the log key (PROTOCOL.md §11.3).
    LogAccess,
    /// A care-team membership change, signed by an admin's device (PROTOCOL.md §12.2).
    TeamChange,
    /// A team epoch key wrapped to a member device, signed by the admin device that made it
    /// (PROTOCOL.md §12.3).
    TeamKey,
    /// A new device's key confirmation in a pairing, signed by its signing key (PROTOCOL.md
    /// §4.1).
    PairingConfirm,
    /// A web bundle entry, signed by the log key (PROTOCOL.md §11.3, kind 8).
    LogBundle,
    /// An erasure tombstone, signed by the requester device (PROTOCOL.md §11.3, kind 9).
    LogErasure,
    /// A provisional recipient's record, signed by the lab device that made it (PROTOCOL.md
    /// §11.3, kind 10; §15).
    LogProvisional,
    /// A claim of a provisional recipient, signed by the provisional key and the claimant's
    /// device (PROTOCOL.md §11.3, kind 11; §15).
    LogClaim,
    /// A recovery entry, signed by the identity key (PROTOCOL.md §11.3, kind 12).
    LogRecovery,
    /// A social recovery share wrapped to a device, signed by the device that wrapped it
    /// (PROTOCOL.md §4.3).
    RecoveryShare,
    /// A recovery contacts entry, signed by the identity key (PROTOCOL.md §4.3, kind 13).
    LogRecoveryContacts,
    /// A social recovery request, signed by the requesting new device (PROTOCOL.md §4.3,
    /// kind 14).
    LogRecoveryRequest,
    /// A contact's approval of a recovery request, signed by the contact's device (PROTOCOL.md
    /// §4.3, kind 15).
    LogRecoveryApproval,
    /// A veto of a recovery request, signed by a device of the identity (PROTOCOL.md §4.3,
    /// kind 16).
    LogRecoveryVeto,
    /// A requesting device's proof, to fetch its social recovery's escrow and shares
    /// (PROTOCOL.md §4.3).
    RecoveryFetch,
    /// A restore's loss statement, signed by the log key (PROTOCOL.md §11.11).
    LossStatement,
}

impl Context {
    /// The label bytes of this context.
    pub fn label(self) -> &'static str {
        match self {
            Context::DeviceRecord => "device-record",
            Context::Auth => "auth",
            Context::Document => "document",
            Context::Wrap => "wrap",
            Context::LogRotation => "log-rotation",
            Context::LogRevocation => "log-revocation",
            Context::LogRemoval => "log-removal",
            Context::AccessReceipt => "access-receipt",
            Context::LogAccess => "log-access",
            Context::TeamChange => "team-change",
            Context::TeamKey => "team-key",
            Context::PairingConfirm => "pairing-confirm",
            Context::LogBundle => "log-bundle",
            Context::LogErasure => "log-erasure",
            Context::LogProvisional => "log-provisional",
            Context::LogClaim => "log-claim",
            Context::LogRecovery => "log-recovery",
            Context::RecoveryShare => "recovery-share",
            Context::LogRecoveryContacts => "log-recovery-contacts",
            Context::LogRecoveryRequest => "log-recovery-request",
            Context::LogRecoveryApproval => "log-recovery-approval",
            Context::LogRecoveryVeto => "log-recovery-veto",
            Context::RecoveryFetch => "recovery-fetch",
            Context::LossStatement => "loss-statement",
        }
    }
}

/// The exact bytes that are signed: `sig_input(label, body)`.
pub fn sig_input(ctx: Context, body: &[u8]) -> Vec<u8> {
    let label = ctx.label();
    let mut v = Vec::with_capacity(16 + label.len() + 1 + body.len());
    v.extend_from_slice(b"serment/v1/sig/");
    v.extend_from_slice(label.as_bytes());
    v.push(0);
    v.extend_from_slice(body);
    v
}

/// Signs `body` in context `ctx` (RFC 8032 §5.1.6).
pub fn sign(key: &SigningKey, ctx: Context, body: &[u8]) -> [u8; 64] {
    key.sign(&sig_input(ctx, body)).to_bytes()
}

/// Verifies a signature over `body` exactly as received, with `verify_strict` (rejects small-order
/// keys and non-canonical signatures, RFC 8032 §5.1.7).
///
/// # Errors
/// [`Error::BadSignature`] naming `what` when the key is not a valid point or the signature fails.
pub fn verify(
    public_key: &[u8; 32],
    ctx: Context,
    body: &[u8],
    signature: &[u8],
    what: &'static str,
) -> Result<()> {
    let vk = VerifyingKey::from_bytes(public_key).map_err(|_| Error::BadSignature { what })?;
    let sig = Signature::from_slice(signature).map_err(|_| Error::BadSignature { what })?;
    vk.verify_strict(&sig_input(ctx, body), &sig)
        .map_err(|_| Error::BadSignature { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_do_not_cross() {
        let sk = SigningKey::from_bytes(&[9u8; 32]);
        let pk = sk.verifying_key().to_bytes();
        let sig = sign(&sk, Context::Auth, b"msg");
        assert!(verify(&pk, Context::Auth, b"msg", &sig, "t").is_ok());
        assert!(verify(&pk, Context::Wrap, b"msg", &sig, "t").is_err());
        assert!(verify(&pk, Context::Auth, b"msh", &sig, "t").is_err());
        assert!(verify(&pk, Context::Auth, b"msg", &sig[..63], "t").is_err());
    }
}
