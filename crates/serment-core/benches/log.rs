//! Transparency-log benchmarks (issue 6, PROTOCOL.md §11):
//!
//! ```text
//! cargo bench -p serment-core --bench log
//! ```
//!
//! - `append`: leaves appended to the stored-node tree per second ([`MemoryTree::push_entry`]:
//!   the leaf hash and every node it completes, what the server writes per entry);
//! - `inclusion_verify/{10k,100k,1M}`: a client verifying one inclusion proof (`ct-merkle`);
//! - `inclusion_prove/{..}`: the server building one from stored nodes;
//! - `catch_up_1m`: a client pinned at 10 000 entries catching up to 1 010 000: the server builds
//!   the consistency proof, the client verifies the new checkpoint's signature and the proof;
//! - proof sizes are printed once at start (`log bench: ...`).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use serment_core::log::note::{Checkpoint, KEY_TYPE_ED25519, NoteSigner};
use serment_core::log::pin::{LogTrust, check_advance};
use serment_core::log::tree::{self, MemoryTree};

const SIZES: &[u64] = &[10_000, 100_000, 1_000_000];
const OLD: u64 = 10_000;
const BIG: u64 = 1_010_000;

/// A 200-byte entry, about the size of a wrap or access entry.
fn entry(i: u64) -> Vec<u8> {
    let mut e = vec![0u8; 200];
    e[..8].copy_from_slice(&i.to_be_bytes());
    e
}

fn big_tree() -> &'static MemoryTree {
    static T: OnceLock<MemoryTree> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = MemoryTree::new();
        for i in 0..BIG {
            t.push_entry(&entry(i)).unwrap();
        }
        t
    })
}

fn main() {
    let t = big_tree();
    for &n in SIZES {
        let p = tree::inclusion_proof(n / 3, n, t).unwrap();
        let c = tree::consistency_proof(n / 2, n, t).unwrap();
        eprintln!(
            "log bench: size {n}: inclusion proof {} hashes = {} bytes, consistency proof (from n/2) {} hashes = {} bytes",
            p.len(),
            p.len() * 32,
            c.len(),
            c.len() * 32
        );
    }
    let c = tree::consistency_proof(OLD, BIG, t).unwrap();
    eprintln!(
        "log bench: catch-up {OLD} -> {BIG}: consistency proof {} hashes = {} bytes",
        c.len(),
        c.len() * 32
    );
    divan::main();
}

#[divan::bench(sample_count = 5)]
fn append(b: Bencher) {
    const N: u64 = 100_000;
    let entries: Vec<Vec<u8>> = (0..N).map(entry).collect();
    b.counter(ItemsCount::new(N as usize)).bench(|| {
        let mut t = MemoryTree::new();
        for e in &entries {
            t.push_entry(e).unwrap();
        }
        black_box(t.size())
    });
}

#[divan::bench(args = SIZES)]
fn inclusion_verify(b: Bencher, n: u64) {
    let t = big_tree();
    let idx = n / 3;
    let root = t.root_at(n).unwrap();
    let proof = tree::inclusion_proof(idx, n, t).unwrap();
    let e = entry(idx);
    b.bench(|| tree::verify_inclusion(black_box(&e), idx, n, &root, &proof).unwrap());
}

#[divan::bench(args = SIZES)]
fn inclusion_prove(b: Bencher, n: u64) {
    let t = big_tree();
    b.bench(|| tree::inclusion_proof(black_box(n / 3), n, t).unwrap());
}

#[divan::bench]
fn catch_up_1m(b: Bencher) {
    let t = big_tree();
    let signer = NoteSigner::new("serment.log/bench", KEY_TYPE_ED25519, &[1; 32]).unwrap();
    let old = Checkpoint {
        origin: "serment.log/bench".into(),
        size: OLD,
        root: t.root_at(OLD).unwrap(),
    };
    let new = Checkpoint {
        origin: "serment.log/bench".into(),
        size: BIG,
        root: t.root_at(BIG).unwrap(),
    };
    let note = signer.sign_checkpoint(&new).unwrap().encode().unwrap();
    let trust = LogTrust {
        log_key: signer.verifier(),
        witnesses: Vec::new(),
        quorum: 0,
    };
    b.bench(|| {
        // Server: the proof from stored nodes. Client: the note's signature, then consistency.
        let proof = tree::consistency_proof(OLD, BIG, t).unwrap();
        let cp = trust.verify_note(black_box(&note)).unwrap().checkpoint;
        check_advance(Some(&old), &cp, &proof).unwrap();
    });
}
