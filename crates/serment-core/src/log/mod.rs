//! The transparency log (PROTOCOL.md §11): one append-only Merkle tree (RFC 9162 §2.1) of signed
//! entries, published as C2SP checkpoints and cosigned by witnesses.
//!
//! - [`tree`]: hashing, stored-node proofs, and verification through `ct-merkle`;
//! - [`entry`]: the entry envelope and its payloads (device records, rotations, revocations, key
//!   wraps, removals, access events), access receipts;
//! - [`bundle`]: the patient's page's asset bundle, its hash and its log entry (kind 8);
//! - [`erasure`]: erasure tombstones (kind 9) and their reason codes;
//! - [`note`]: checkpoints as signed notes, verifier keys, cosignatures;
//! - [`history`]: per-subject chains and the replay of a handle's key history;
//! - [`social`]: the social recovery entries (kinds 13-16) and their chain's replay;
//! - [`loss`]: a restore's signed statement of the entries it could not bring back;
//! - [`pin`]: the checks a client or witness makes on a new checkpoint (rollback, fork, quorum).
//!
//! Everything here is pure: the server stores nodes and entries, clients fetch them, and both call
//! these functions.

pub mod bundle;
pub mod entry;
pub mod erasure;
pub mod history;
pub mod loss;
pub mod note;
pub mod pin;
pub mod social;
pub mod tree;
