//! The checks a client or a witness makes before it trusts a checkpoint (PROTOCOL.md §11.7):
//! the log's signature, a quorum of witness cosignatures, and consistency with the checkpoint it
//! pinned before. Every failure is a hard error.

use super::note::{Checkpoint, SignedCheckpoint, VerifierKey};
use super::tree::{Hash, verify_consistency};
use crate::error::{Error, Result};

/// What a client trusts about one log: its key, and the witnesses it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTrust {
    /// The log's verifier key (type `0x01`, named after the origin).
    pub log_key: VerifierKey,
    /// Witness verifier keys (type `0x04`).
    pub witnesses: Vec<VerifierKey>,
    /// How many of `witnesses` must cosign a checkpoint (0: none required).
    pub quorum: usize,
}

impl LogTrust {
    /// Parses a served note and checks the log's signature and the witness quorum.
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`], [`Error::BadSignature`], [`Error::NoQuorum`].
    pub fn verify_note(&self, note: &str) -> Result<SignedCheckpoint> {
        let signed = SignedCheckpoint::parse(note)?;
        signed.verify_log_signature(&self.log_key)?;
        if self.quorum > 0 {
            let have = signed.cosigned_by(&self.witnesses);
            if have < self.quorum {
                return Err(Error::NoQuorum {
                    have,
                    need: self.quorum,
                });
            }
        }
        Ok(signed)
    }
}

/// Checks that `new` may replace `pinned`: same log, not smaller, and consistent (a consistency
/// proof from `pinned` to `new`; ignored when the sizes are equal, where the roots must match).
///
/// # Errors
/// [`Error::BadCheckpoint`] (another origin), [`Error::Rollback`], [`Error::Fork`].
pub fn check_advance(pinned: Option<&Checkpoint>, new: &Checkpoint, proof: &[Hash]) -> Result<()> {
    let Some(old) = pinned else {
        return Ok(());
    };
    if old.origin != new.origin {
        return Err(Error::BadCheckpoint {
            reason: "the checkpoint is for another log",
        });
    }
    if new.size < old.size {
        return Err(Error::Rollback {
            pinned: old.size,
            served: new.size,
        });
    }
    if new.size == old.size {
        return if new.root == old.root {
            Ok(())
        } else {
            Err(Error::Fork { size: new.size })
        };
    }
    verify_consistency(old.size, &old.root, new.size, &new.root, proof)
        .map_err(|_| Error::Fork { size: new.size })
}

/// Checks that two checkpoints of the same log, seen by two parties, are consistent (gossip):
/// `proof` is the consistency proof from the smaller to the larger.
///
/// # Errors
/// [`Error::BadCheckpoint`], [`Error::Fork`] (a split view).
pub fn check_same_view(a: &Checkpoint, b: &Checkpoint, proof: &[Hash]) -> Result<()> {
    let (small, large) = if a.size <= b.size { (a, b) } else { (b, a) };
    check_advance(Some(small), large, proof)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::log::tree::{MemoryTree, consistency_proof};

    #[test]
    fn rollback_fork_and_advance() {
        let mut t = MemoryTree::new();
        for i in 0..20u8 {
            t.push_entry(&[i]).unwrap();
        }
        let cp = |n: u64| Checkpoint {
            origin: "o".into(),
            size: n,
            root: t.root_at(n).unwrap(),
        };
        let p = consistency_proof(5, 20, &t).unwrap();
        check_advance(Some(&cp(5)), &cp(20), &p).unwrap();
        check_advance(None, &cp(20), &[]).unwrap();
        check_advance(Some(&cp(20)), &cp(20), &[]).unwrap();
        assert!(matches!(
            check_advance(Some(&cp(20)), &cp(5), &p),
            Err(Error::Rollback {
                pinned: 20,
                served: 5
            })
        ));
        let mut forked = cp(20);
        forked.root = [0; 32];
        assert!(matches!(
            check_advance(Some(&cp(5)), &forked, &p),
            Err(Error::Fork { .. })
        ));
        assert!(matches!(
            check_same_view(&cp(20), &forked, &[]),
            Err(Error::Fork { .. })
        ));
        check_same_view(&cp(20), &cp(5), &p).unwrap();
    }
}
