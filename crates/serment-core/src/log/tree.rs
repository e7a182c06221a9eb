//! The Merkle tree of the transparency log (PROTOCOL.md §11.2, RFC 9162 §2.1).
//!
//! Hashing is RFC 9162 §2.1.1: a leaf is `H(0x00 || entry)`, an interior node `H(0x01 || left ||
//! right)`, with SHA-256. Proof *verification* is delegated to the `ct-merkle` crate
//! ([`verify_inclusion`], [`verify_consistency`]); proof *generation* works over stored hashes so
//! that the server never holds the tree in memory.
//!
//! # Stored hashes
//!
//! The log stores the hash of every complete, aligned subtree: node `(level, index)` is the hash of
//! leaves `[index · 2^level, (index + 1) · 2^level)`. A tree of `n` leaves has fewer than `2n` such
//! nodes and they never change once written; every root, inclusion proof and consistency proof of
//! every tree size up to `n` is computed from them (the storage model of Go's `tlog` package and of
//! C2SP tlog-tiles). [`append`] lists the nodes to store when a leaf is added.
//!
//! Readers implement [`HashReader`]. Because which nodes an algorithm reads depends only on the
//! sizes and indices, never on hash values, an asynchronous store can first run an algorithm over a
//! [`Recorder`] to learn the nodes it needs, fetch them in one query into a [`HashMap`], and run it
//! again for real.

use std::cell::RefCell;
use std::collections::HashMap;

use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A SHA-256 hash: a leaf, a node or a root.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The most leaves a tree may hold (`ct-merkle`'s bound, `2^63`).
pub const MAX_TREE_SIZE: u64 = u64::MAX / 2 + 1;

/// The longest inclusion or consistency proof, in hashes (a tree of at most `2^63` leaves).
pub const MAX_PROOF_HASHES: usize = 128;

/// A stored node: the complete subtree of `2^level` leaves starting at leaf `index · 2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 for a leaf).
    pub level: u8,
    /// Position among the nodes of that level, from 0.
    pub index: u64,
}

/// Reads stored node hashes.
pub trait HashReader {
    /// The hash of a stored node.
    ///
    /// # Errors
    /// Whatever the store fails with; [`Error::Log`] for a node it does not hold.
    fn hash(&self, node: NodeId) -> Result<Hash>;
}

impl HashReader for HashMap<NodeId, Hash> {
    fn hash(&self, node: NodeId) -> Result<Hash> {
        self.get(&node).copied().ok_or(Error::Log {
            reason: "a tree node is missing from the store",
        })
    }
}

/// A [`HashReader`] that records which nodes are read and answers zeros (see the module docs).
#[derive(Debug, Default)]
pub struct Recorder(RefCell<Vec<NodeId>>);

impl HashReader for Recorder {
    fn hash(&self, node: NodeId) -> Result<Hash> {
        self.0.borrow_mut().push(node);
        Ok([0; 32])
    }
}

impl Recorder {
    /// Runs `f` over a recorder and returns the distinct nodes it read, sorted.
    pub fn nodes<T>(f: impl FnOnce(&Recorder) -> Result<T>) -> Result<Vec<NodeId>> {
        let r = Recorder::default();
        f(&r)?;
        let mut v = r.0.into_inner();
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }
}

/// An in-memory store of every node, level by level (for audits, tests and benchmarks).
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    size: u64,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }
    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Appends a leaf by its entry bytes; returns its index.
    ///
    /// # Errors
    /// [`Error::Log`] if the tree is full.
    pub fn push_entry(&mut self, entry: &[u8]) -> Result<u64> {
        self.push_leaf_hash(leaf_hash(entry))
    }
    /// Appends a leaf by its leaf hash; returns its index.
    ///
    /// # Errors
    /// [`Error::Log`] if the tree is full.
    pub fn push_leaf_hash(&mut self, leaf: Hash) -> Result<u64> {
        let n = self.size;
        for (node, hash) in append(n, leaf, self)? {
            let level = usize::from(node.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            if let Some(l) = self.levels.get_mut(level) {
                l.push(hash);
            }
        }
        self.size = n + 1;
        Ok(n)
    }
    /// The root of the tree of the first `size` leaves.
    ///
    /// # Errors
    /// [`Error::Log`] if `size` is larger than the tree.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        if size > self.size {
            return Err(Error::Log {
                reason: "tree size beyond the end of the log",
            });
        }
        root(size, self)
    }
}

impl HashReader for MemoryTree {
    fn hash(&self, node: NodeId) -> Result<Hash> {
        usize::try_from(node.index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(node.level))?.get(i))
            .copied()
            .ok_or(Error::Log {
                reason: "a tree node is missing from the store",
            })
    }
}

/// `H(0x00 || entry)` (RFC 9162 §2.1.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// `H(0x01 || left || right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The nodes to store when leaf `n` (0-based, so the tree grows from `n` to `n + 1` leaves) with
/// hash `leaf` is appended: the leaf itself, then each complete subtree it closes. Reads the left
/// siblings (at most `log2 n` nodes) from `r`.
///
/// # Errors
/// [`Error::Log`] if the tree is full; errors of `r`.
pub fn append(n: u64, leaf: Hash, r: &impl HashReader) -> Result<Vec<(NodeId, Hash)>> {
    if n >= MAX_TREE_SIZE {
        return Err(Error::Log {
            reason: "the log is full",
        });
    }
    let mut out = vec![(NodeId { level: 0, index: n }, leaf)];
    let mut hash = leaf;
    let mut index = n;
    let mut level = 0u8;
    while index & 1 == 1 {
        let left = r.hash(NodeId {
            level,
            index: index - 1,
        })?;
        hash = node_hash(&left, &hash);
        index >>= 1;
        level += 1;
        out.push((NodeId { level, index }, hash));
    }
    Ok(out)
}

/// The largest power of two strictly below `n` (`n ≥ 2`).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[lo:hi])` (RFC 9162 §2.1.1) from stored nodes. `lo` must be the start of a subtree of
/// the RFC's recursion, which every caller here guarantees.
fn subtree(lo: u64, hi: u64, r: &impl HashReader) -> Result<Hash> {
    let n = hi - lo;
    if n == 0 {
        return Ok(EMPTY_ROOT);
    }
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return r.hash(NodeId {
            level: n.trailing_zeros() as u8,
            index: lo / n,
        });
    }
    let k = split(n);
    let left = subtree(lo, lo + k, r)?;
    let right = subtree(lo + k, hi, r)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree of the first `size` leaves.
///
/// # Errors
/// [`Error::Log`] if `size` is too large; errors of `r`.
pub fn root(size: u64, r: &impl HashReader) -> Result<Hash> {
    if size > MAX_TREE_SIZE {
        return Err(Error::Log {
            reason: "tree size too large",
        });
    }
    subtree(0, size, r)
}

/// `PATH(m, D[lo:hi])` (RFC 9162 §2.1.3.1), leaf to root.
fn path(m: u64, lo: u64, hi: u64, r: &impl HashReader, out: &mut Vec<Hash>) -> Result<()> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m - lo < k {
        path(m, lo, lo + k, r, out)?;
        out.push(subtree(lo + k, hi, r)?);
    } else {
        path(m, lo + k, hi, r, out)?;
        out.push(subtree(lo, lo + k, r)?);
    }
    Ok(())
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1): the
/// sibling hashes from the leaf up.
///
/// # Errors
/// [`Error::Log`] if `index ≥ size` or `size` is too large; errors of `r`.
pub fn inclusion_proof(index: u64, size: u64, r: &impl HashReader) -> Result<Vec<Hash>> {
    if index >= size || size > MAX_TREE_SIZE {
        return Err(Error::Log {
            reason: "leaf index outside the tree",
        });
    }
    let mut out = Vec::new();
    path(index, 0, size, r, &mut out)?;
    Ok(out)
}

/// `SUBPROOF(m, D[lo:hi], b)` (RFC 9162 §2.1.4.1).
fn subproof(
    m: u64,
    lo: u64,
    hi: u64,
    complete: bool,
    r: &impl HashReader,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(subtree(lo, hi, r)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, lo, lo + k, complete, r, out)?;
        out.push(subtree(lo + k, hi, r)?);
    } else {
        subproof(m - k, lo + k, hi, false, r, out)?;
        out.push(subtree(lo, lo + k, r)?);
    }
    Ok(())
}

/// The consistency proof from the tree of `old_size` leaves to the tree of `new_size` leaves
/// (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equals `new_size`.
///
/// # Errors
/// [`Error::Log`] if `old_size > new_size` or `new_size` is too large; errors of `r`.
pub fn consistency_proof(old_size: u64, new_size: u64, r: &impl HashReader) -> Result<Vec<Hash>> {
    if old_size > new_size || new_size > MAX_TREE_SIZE {
        return Err(Error::Log {
            reason: "consistency proof between impossible tree sizes",
        });
    }
    let mut out = Vec::new();
    if old_size > 0 && old_size < new_size {
        subproof(old_size, 0, new_size, true, r, &mut out)?;
    }
    Ok(out)
}

/// Verifies that `entry` is leaf `index` of the tree of `size` leaves with root `root`, using
/// `ct-merkle`'s verifier (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`Error::BadInclusionProof`].
pub fn verify_inclusion(
    entry: &[u8],
    index: u64,
    size: u64,
    root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    if proof.len() > MAX_PROOF_HASHES || size > MAX_TREE_SIZE {
        return Err(Error::BadInclusionProof);
    }
    let rh = RootHash::<Sha256>::new((*root).into(), size);
    let p = InclusionProof::<Sha256>::from_digests(proof.iter().map(|h| h.into()));
    rh.verify_inclusion(&entry, index, &p)
        .map_err(|_| Error::BadInclusionProof)
}

/// Verifies that the tree `(old_size, old_root)` is a prefix of `(new_size, new_root)`, using
/// `ct-merkle`'s verifier (RFC 9162 §2.1.4.2). An empty old tree is a prefix of every tree; equal
/// sizes need equal roots and an empty proof.
///
/// # Errors
/// [`Error::BadConsistencyProof`] (which covers a smaller new tree: the caller reports rollbacks
/// before calling this).
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    if proof.len() > MAX_PROOF_HASHES || new_size > MAX_TREE_SIZE || old_size > new_size {
        return Err(Error::BadConsistencyProof);
    }
    if old_size == 0 {
        return if proof.is_empty() && (new_size > 0 || *new_root == EMPTY_ROOT) {
            Ok(())
        } else {
            Err(Error::BadConsistencyProof)
        };
    }
    let old = RootHash::<Sha256>::new((*old_root).into(), old_size);
    let new = RootHash::<Sha256>::new((*new_root).into(), new_size);
    let p = ConsistencyProof::<Sha256>::from_digests(proof.iter().map(|h| h.into()));
    new.verify_consistency(&old, &p)
        .map_err(|_| Error::BadConsistencyProof)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn tree(n: u64) -> (MemoryTree, Vec<Vec<u8>>) {
        let mut t = MemoryTree::new();
        let mut entries = Vec::new();
        for i in 0..n {
            let e = format!("entry {i}").into_bytes();
            t.push_entry(&e).unwrap();
            entries.push(e);
        }
        (t, entries)
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(MemoryTree::new().root_at(0).unwrap(), EMPTY_ROOT);
    }

    #[test]
    fn every_proof_verifies_and_wrong_ones_fail() {
        let (t, entries) = tree(37);
        for size in 1..=37u64 {
            let root = t.root_at(size).unwrap();
            for i in 0..size {
                let p = inclusion_proof(i, size, &t).unwrap();
                verify_inclusion(&entries[i as usize], i, size, &root, &p).unwrap();
                // Wrong index, wrong entry, truncated proof.
                let j = (i + 1) % size;
                if j != i {
                    assert!(verify_inclusion(&entries[i as usize], j, size, &root, &p).is_err());
                }
                assert!(verify_inclusion(b"other", i, size, &root, &p).is_err());
                if !p.is_empty() {
                    assert!(
                        verify_inclusion(&entries[i as usize], i, size, &root, &p[1..]).is_err()
                    );
                }
            }
            for old in 0..=size {
                let p = consistency_proof(old, size, &t).unwrap();
                let old_root = t.root_at(old).unwrap();
                verify_consistency(old, &old_root, size, &root, &p).unwrap();
                if old > 0 && old < size {
                    assert!(verify_consistency(old, &root, size, &root, &p).is_err());
                    assert!(verify_consistency(size, &root, old, &old_root, &p).is_err());
                }
            }
        }
    }

    #[test]
    fn recorder_predicts_the_nodes_read() {
        let (t, _) = tree(1000);
        let need = Recorder::nodes(|r| inclusion_proof(517, 999, r)).unwrap();
        let map: HashMap<NodeId, Hash> = need.iter().map(|n| (*n, t.hash(*n).unwrap())).collect();
        assert_eq!(
            inclusion_proof(517, 999, &map).unwrap(),
            inclusion_proof(517, 999, &t).unwrap()
        );
        let need = Recorder::nodes(|r| consistency_proof(3, 999, r)).unwrap();
        let map: HashMap<NodeId, Hash> = need.iter().map(|n| (*n, t.hash(*n).unwrap())).collect();
        assert_eq!(
            consistency_proof(3, 999, &map).unwrap(),
            consistency_proof(3, 999, &t).unwrap()
        );
    }

    #[test]
    fn impossible_requests_are_errors_not_panics() {
        let (t, _) = tree(5);
        assert!(inclusion_proof(5, 5, &t).is_err());
        assert!(inclusion_proof(0, 0, &t).is_err());
        assert!(consistency_proof(6, 5, &t).is_err());
        assert!(root(9, &t).is_err());
        assert!(verify_inclusion(b"x", 0, 0, &EMPTY_ROOT, &[]).is_err());
        assert!(verify_consistency(0, &EMPTY_ROOT, 0, &[1; 32], &[]).is_err());
        assert!(verify_inclusion(b"x", 0, u64::MAX, &EMPTY_ROOT, &[]).is_err());
    }
}
