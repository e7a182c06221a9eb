//! Loss statements (PROTOCOL.md §11.11): what a restore from a backup says it could not bring back.
//!
//! A server restored from a backup (docs/BACKUP.md §7) holds a shorter log than the one some
//! clients and witnesses verified: the entries written after the last backed-up increment are
//! gone. Those clients report LOG ROLLBACK, and after the restored log grows, LOG FORK: that is
//! the point, since a server that rolls its log back is exactly what they must catch. The
//! restore therefore writes a **loss statement**: the restored tree head and the range it knows
//! is lost, signed by the log key under the label `loss-statement`, served by the server. A
//! client or a witness that verified past the restored size moves its pin back to the restored
//! tree **only** when its user runs an explicit command naming the restored size the operator
//! announced (`serment accept-rollback --restored SIZE`, `serment witness ... --accept-rollback
//! SIZE`), and never twice for the same statement.
//!
//! The log key lives with the server: a statement proves that whoever holds the log key
//! declared the loss, not that it happened. What stops a compromised server from using one to
//! roll its clients back is the user's explicit step, bound to an announcement made out of band,
//! and, where clients require witness cosignatures, the witnesses' own explicit step: no
//! checkpoint past the restored size is cosigned until a quorum of witness operators accepted
//! the loss.
//!
//! The text format (UTF-8, each line ending in `\n`):
//!
//! ```text
//! serment-loss-statement
//! version 1
//! suite 1
//! origin <the log's origin>
//! restored <size> <root, 64 hex>
//! lost <from> <to>
//! proof <base64 of the signed checkpoint note of size `to`, or `-`>
//! time <seconds since the Unix epoch>
//! signature <128 hex: Ed25519 by the log key over sig_input("loss-statement", every line above)>
//! ```
//!
//! `from` is the restored size; `to` (at least `from`) is one past the last entry a checkpoint
//! known to the restore proves (the backup's newest, or one the operator gave). Entries past `to`
//! may be lost too: the backup never saw them, so a client that pinned past `to` may still
//! accept the statement.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::note::{Checkpoint, SignedCheckpoint, VerifierKey, valid_name};
use super::tree::Hash;
use crate::error::{Error, Result};
use crate::sign::{Context, sig_input};

/// The first line of every loss statement.
pub const LOSS_MAGIC: &str = "serment-loss-statement";
/// The format version.
pub const LOSS_VERSION: u32 = 1;
/// The signature suite: 1 is Ed25519 by the log key (RFC 8032).
pub const LOSS_SUITE: u32 = 1;
/// The most bytes one statement may hold (a guard against a hostile server): 64 KiB.
pub const MAX_LOSS_STATEMENT_LEN: usize = 64 * 1024;

fn bad(reason: &'static str) -> Error {
    Error::LossStatement { reason }
}

/// A restore's statement of what it could not bring back (PROTOCOL.md §11.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossStatement {
    /// The restored tree head: the log as the restored server serves it from now on.
    pub restored: Checkpoint,
    /// One past the last entry a checkpoint known to the restore proves (at least
    /// `restored.size`).
    pub lost_to: u64,
    /// The signed checkpoint note of size `lost_to` that proves it, when the restore had one.
    pub proof: Option<String>,
    /// When the restore wrote it, seconds since the Unix epoch.
    pub time: u64,
}

/// A statement with its signature, as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLossStatement {
    /// What it says.
    pub statement: LossStatement,
    /// The exact bytes, signature line included: their SHA-256 names the statement.
    pub text: String,
}

impl LossStatement {
    /// The body: every line but the signature.
    ///
    /// # Errors
    /// [`Error::LossStatement`] for an invalid origin, `lost_to` below the restored size, or a
    /// proof note of another size.
    pub fn body(&self) -> Result<String> {
        if !valid_name(&self.restored.origin) {
            return Err(bad("invalid origin"));
        }
        if self.lost_to < self.restored.size {
            return Err(bad("the lost range ends before the restored size"));
        }
        let proof = match &self.proof {
            Some(n) => {
                let p = SignedCheckpoint::parse(n).map_err(|_| bad("the proof is not a note"))?;
                if p.checkpoint.size != self.lost_to || p.checkpoint.origin != self.restored.origin
                {
                    return Err(bad("the proof is not a checkpoint of the lost range's end"));
                }
                STANDARD.encode(n.as_bytes())
            }
            None => "-".into(),
        };
        Ok(format!(
            "{LOSS_MAGIC}\nversion {LOSS_VERSION}\nsuite {LOSS_SUITE}\norigin {}\nrestored {} {}\nlost {} {}\nproof {proof}\ntime {}\n",
            self.restored.origin,
            self.restored.size,
            hex::encode(self.restored.root),
            self.restored.size,
            self.lost_to,
            self.time,
        ))
    }

    /// Signs the statement with the log key's Ed25519 seed (`sig_input("loss-statement", body)`).
    ///
    /// # Errors
    /// Those of [`LossStatement::body`].
    pub fn sign(&self, log_key: &SigningKey) -> Result<SignedLossStatement> {
        let body = self.body()?;
        let sig = log_key.sign(&sig_input(Context::LossStatement, body.as_bytes()));
        Ok(SignedLossStatement {
            statement: self.clone(),
            text: format!("{body}signature {}\n", hex::encode(sig.to_bytes())),
        })
    }
}

/// The value of line `l` when it is `<name> <value>`.
fn field<'a>(name: &str, l: &'a str) -> Result<&'a str> {
    l.strip_prefix(name)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(bad("a line is missing or out of order"))
}

/// Parses a decimal field strictly (no sign, no leading zero).
fn decimal(s: &str) -> Result<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical
        .then(|| s.parse().ok())
        .flatten()
        .ok_or(bad("a number is not canonical decimal"))
}

impl SignedLossStatement {
    /// Parses a statement strictly and checks its signature with the log's verifier key (the
    /// Ed25519 key of the log's checkpoints) and that it is for that log (its origin is the
    /// key's name).
    ///
    /// # Errors
    /// [`Error::TooLarge`]; [`Error::LossStatement`] for any malformed line, another version or
    /// suite, another origin, a proof that is not the log's signed checkpoint of `to`;
    /// [`Error::BadSignature`] when the log key did not sign it.
    pub fn verify(text: &str, log_key: &VerifierKey) -> Result<SignedLossStatement> {
        if text.len() > MAX_LOSS_STATEMENT_LEN {
            return Err(Error::TooLarge {
                what: "loss statement",
                limit: MAX_LOSS_STATEMENT_LEN as u64,
            });
        }
        let (body, sig_line) = text
            .strip_suffix('\n')
            .and_then(|t| t.rsplit_once('\n'))
            .map(|(b, s)| (format!("{b}\n"), s))
            .ok_or(bad("expected lines ending in a signature line"))?;
        let sig_hex = sig_line
            .strip_prefix("signature ")
            .ok_or(bad("the last line is not the signature"))?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(sig_hex, &mut sig)
            .map_err(|_| bad("the signature is not 128 hex digits"))?;
        let lines: Vec<&str> = body
            .strip_suffix('\n')
            .unwrap_or(&body)
            .split('\n')
            .collect();
        let [magic, version, suite, origin, restored, lost, proof, time] = lines[..] else {
            return Err(bad("expected exactly eight lines before the signature"));
        };
        if magic != LOSS_MAGIC {
            return Err(bad("not a loss statement"));
        }
        if decimal(field("version", version)?)? != u64::from(LOSS_VERSION) {
            return Err(bad("unsupported version"));
        }
        if decimal(field("suite", suite)?)? != u64::from(LOSS_SUITE) {
            return Err(bad("unsupported suite"));
        }
        if log_key.key_type != super::note::KEY_TYPE_ED25519 {
            return Err(bad("the log key is not an Ed25519 note key"));
        }
        // The signature first: nothing below is believed before the log key vouches for it.
        VerifyingKey::from_bytes(&log_key.public_key)
            .and_then(|k| {
                k.verify_strict(
                    &sig_input(Context::LossStatement, body.as_bytes()),
                    &ed25519_dalek::Signature::from_bytes(&sig),
                )
            })
            .map_err(|_| Error::BadSignature {
                what: "loss statement",
            })?;
        let origin = field("origin", origin)?;
        if origin != log_key.name {
            return Err(bad("the statement is for another log"));
        }
        let (size, root) = field("restored", restored)?
            .split_once(' ')
            .ok_or(bad("restored: expected a size and a root"))?;
        let mut root_hash: Hash = [0; 32];
        hex::decode_to_slice(root, &mut root_hash)
            .map_err(|_| bad("restored: the root is not 64 hex digits"))?;
        let size = decimal(size)?;
        let (from, to) = field("lost", lost)?
            .split_once(' ')
            .ok_or(bad("lost: expected two sizes"))?;
        let (from, to) = (decimal(from)?, decimal(to)?);
        if from != size || to < from {
            return Err(bad("lost: the range must start at the restored size"));
        }
        let proof = match field("proof", proof)? {
            "-" => None,
            b64 => {
                let note = STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(bad("proof: not base64 of a note"))?;
                let p = SignedCheckpoint::parse(&note)
                    .map_err(|_| bad("proof: not a checkpoint note"))?;
                p.verify_log_signature(log_key)
                    .map_err(|_| bad("proof: not signed by the log key"))?;
                if p.checkpoint.size != to {
                    return Err(bad("proof: not a checkpoint of the lost range's end"));
                }
                Some(note)
            }
        };
        let statement = LossStatement {
            restored: Checkpoint {
                origin: origin.to_owned(),
                size,
                root: root_hash,
            },
            lost_to: to,
            proof,
            time: decimal(field("time", time)?)?,
        };
        // Canonical: the bytes are exactly what this statement encodes to.
        if statement.body()? != body {
            return Err(bad("not in canonical form"));
        }
        Ok(SignedLossStatement {
            statement,
            text: text.to_owned(),
        })
    }

    /// The statement's id: SHA-256 of its exact text, hex (what a client records once it
    /// accepted it, so that the same statement served again is refused).
    pub fn id(&self) -> String {
        use sha2::{Digest as _, Sha256};
        hex::encode(Sha256::digest(self.text.as_bytes()))
    }

    /// Whether this statement covers a client's or witness's pinned checkpoint: the pin is past
    /// the restored size (a pin at or below it needs no statement), and when the statement's
    /// proof is a checkpoint of the pin's very size, the two are the same tree.
    ///
    /// # Errors
    /// [`Error::LossStatement`]: another log, a pin the statement does not reach back before,
    /// or a pin that the statement's proof contradicts (a split view, not a loss).
    pub fn covers(&self, pinned: &Checkpoint) -> Result<()> {
        let s = &self.statement;
        if pinned.origin != s.restored.origin {
            return Err(bad("the statement is for another log"));
        }
        if pinned.size <= s.restored.size {
            return Err(bad(
                "the pinned checkpoint is not past the restored size: nothing of it was lost",
            ));
        }
        if let Some(p) = &s.proof
            && let Ok(p) = SignedCheckpoint::parse(p)
            && p.checkpoint.size == pinned.size
            && p.checkpoint.root != pinned.root
        {
            return Err(bad(
                "the statement's checkpoint of the pinned size has another root (a split view)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::log::note::{KEY_TYPE_ED25519, NoteSigner};

    fn signer() -> NoteSigner {
        NoteSigner::new("serment.example/log", KEY_TYPE_ED25519, &[7u8; 32]).unwrap()
    }

    fn statement(to: u64, proof: bool) -> (NoteSigner, SignedLossStatement) {
        let s = signer();
        let restored = Checkpoint {
            origin: "serment.example/log".into(),
            size: 95,
            root: [0x11; 32],
        };
        let proof_note = proof.then(|| {
            s.sign_checkpoint(&Checkpoint {
                origin: restored.origin.clone(),
                size: to,
                root: [0x22; 32],
            })
            .unwrap()
            .encode()
            .unwrap()
        });
        let st = LossStatement {
            restored,
            lost_to: to,
            proof: proof_note,
            time: 1_765_000_000,
        }
        .sign(s.signing_key())
        .unwrap();
        (s, st)
    }

    /// The vector of PROTOCOL.md §11.11 (seed `07` x 32, no proof): its exact text.
    #[test]
    fn vector() {
        let (s, st) = statement(100, false);
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/vectors/loss-statement.txt");
        if std::env::var_os("SERMENT_REGEN_VECTORS").is_some() {
            std::fs::write(&file, &st.text).unwrap();
        }
        assert_eq!(
            st.text,
            std::fs::read_to_string(&file).unwrap(),
            "the loss statement vector changed"
        );
        let back = SignedLossStatement::verify(&st.text, &s.verifier()).unwrap();
        assert_eq!(back.statement, st.statement);
        assert_eq!(back.id().len(), 64);
    }

    #[test]
    fn a_statement_round_trips_with_its_proof() {
        let (s, st) = statement(100, true);
        let back = SignedLossStatement::verify(&st.text, &s.verifier()).unwrap();
        assert_eq!(back.statement, st.statement);
    }

    #[test]
    fn another_key_another_label_or_any_changed_byte_is_refused() {
        let (s, st) = statement(100, true);
        let other = NoteSigner::new("serment.example/log", KEY_TYPE_ED25519, &[8u8; 32]).unwrap();
        assert!(matches!(
            SignedLossStatement::verify(&st.text, &other.verifier()),
            Err(Error::BadSignature { .. })
        ));
        // The same body signed under another label (a manifest's) is not a statement.
        let body = st.statement.body().unwrap();
        let sig = s
            .signing_key()
            .sign(&sig_input(Context::Wrap, body.as_bytes()));
        let relabelled = format!("{body}signature {}\n", hex::encode(sig.to_bytes()));
        assert!(SignedLossStatement::verify(&relabelled, &s.verifier()).is_err());
        // Every single changed byte is refused.
        for i in 0..st.text.len() {
            let mut b = st.text.clone().into_bytes();
            b[i] ^= 0x01;
            if let Ok(t) = String::from_utf8(b) {
                assert!(
                    SignedLossStatement::verify(&t, &s.verifier()).is_err(),
                    "byte {i} flipped was accepted"
                );
            }
        }
        assert!(SignedLossStatement::verify("", &s.verifier()).is_err());
        let huge = "x".repeat(MAX_LOSS_STATEMENT_LEN + 1);
        assert!(matches!(
            SignedLossStatement::verify(&huge, &s.verifier()),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn covers_only_a_pin_past_the_restored_size_and_not_a_contradicted_one() {
        let (_, st) = statement(100, true);
        let pin = |size, root| Checkpoint {
            origin: "serment.example/log".into(),
            size,
            root,
        };
        st.covers(&pin(100, [0x22; 32])).unwrap();
        st.covers(&pin(97, [0x33; 32])).unwrap();
        // Past what the backup proved: the tail the backup never saw is lost too.
        st.covers(&pin(103, [0x33; 32])).unwrap();
        assert!(st.covers(&pin(95, [0x11; 32])).is_err());
        assert!(st.covers(&pin(90, [0x11; 32])).is_err());
        // The proof says tree 100 has another root than the one pinned: a split view.
        assert!(st.covers(&pin(100, [0x44; 32])).is_err());
        let mut other = pin(100, [0x22; 32]);
        other.origin = "other.example/log".into();
        assert!(st.covers(&other).is_err());
    }
}
