//! Cross-checks of the transparency log (PROTOCOL.md §11.2, §11.4) against two independent
//! implementations: `ct-merkle` (whose `MemoryBackedTree` builds proofs its own way, array-based)
//! and `tlog_tiles` (a port of Go's `golang.org/x/mod/sumdb/tlog`), plus `signed_note` (a port of
//! Go's `sumdb/note`) for checkpoint notes and cosignatures. For every tree size up to 70, the
//! three agree on the root, every inclusion proof and every consistency proof.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use serment_core::log::note::{
    Checkpoint, KEY_TYPE_COSIGNATURE_V1, KEY_TYPE_ED25519, NoteSigner, SignedCheckpoint,
};
use serment_core::log::tree::{self, Hash, MemoryTree};
use sha2::Sha256;

struct TlogStore(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for TlogStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

fn flat(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

fn tlog_flat(hashes: &[tlog_tiles::Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

#[test]
fn roots_and_proofs_agree_with_ct_merkle_and_tlog_tiles() {
    const N: u64 = 70;
    let mut ours = MemoryTree::new();
    let mut ct: MemoryBackedTree<Sha256, Vec<u8>> = MemoryBackedTree::new();
    let mut tl = TlogStore(Vec::new());
    let entries: Vec<Vec<u8>> = (0..N)
        .map(|i| format!("serment entry {i}").into_bytes())
        .collect();
    for (n, e) in entries.iter().enumerate() {
        ours.push_entry(e).unwrap();
        ct.push(e.clone());
        let new = tlog_tiles::stored_hashes(n as u64, e, &tl).unwrap();
        tl.0.extend(new);

        let size = n as u64 + 1;
        let root = ours.root_at(size).unwrap();
        assert_eq!(
            root.as_slice(),
            ct.root().as_bytes().as_slice(),
            "ct-merkle root at {size}"
        );
        assert_eq!(
            root,
            tlog_tiles::tree_hash(size, &tl).unwrap().0,
            "tlog root at {size}"
        );
        for i in 0..size {
            let p = tree::inclusion_proof(i, size, &ours).unwrap();
            assert_eq!(
                flat(&p),
                ct.prove_inclusion(i as usize).as_bytes(),
                "incl {i}/{size}"
            );
            let tp = tlog_tiles::prove_record(size, i, &tl).unwrap();
            assert_eq!(flat(&p), tlog_flat(&tp), "tlog incl {i}/{size}");
            tlog_tiles::check_record(
                &tp,
                size,
                tlog_tiles::Hash(root),
                i,
                tlog_tiles::record_hash(&entries[i as usize]),
            )
            .unwrap();
        }
        for old in 1..size {
            let p = tree::consistency_proof(old, size, &ours).unwrap();
            assert_eq!(
                flat(&p),
                ct.prove_consistency((size - old) as usize).as_bytes(),
                "cons {old}->{size}"
            );
            let tp = tlog_tiles::prove_tree(size, old, &tl).unwrap();
            assert_eq!(flat(&p), tlog_flat(&tp), "tlog cons {old}->{size}");
        }
    }
}

/// A `signed_note` verifier for C2SP `cosignature/v1` (type 0x04), written against the spec with
/// `signed_note`'s own key-id function and dalek 2, independently of `serment_core::log::note`.
struct CosigVerifier {
    name: String,
    id: u32,
    key: ed25519_dalek_v2::VerifyingKey,
}

impl signed_note::Verifier for CosigVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let time = u64::from_be_bytes(sig[..8].try_into().unwrap());
        let mut m = format!("cosignature/v1\ntime {time}\n").into_bytes();
        m.extend_from_slice(msg);
        let s = ed25519_dalek_v2::Signature::from_bytes(sig[8..].try_into().unwrap());
        self.key.verify_strict(&m, &s).is_ok()
    }
}

#[test]
fn checkpoints_and_cosignatures_verify_with_signed_note_and_tlog_tiles() {
    let log = NoteSigner::new("serment.example/log", KEY_TYPE_ED25519, &[3; 32]).unwrap();
    let witness = NoteSigner::new("witness.example/w1", KEY_TYPE_COSIGNATURE_V1, &[4; 32]).unwrap();
    let mut t = MemoryTree::new();
    for i in 0..10u8 {
        t.push_entry(&[i]).unwrap();
    }
    let cp = Checkpoint {
        origin: "serment.example/log".into(),
        size: 10,
        root: t.root_at(10).unwrap(),
    };
    let mut signed = log.sign_checkpoint(&cp).unwrap();
    signed.add_signature(witness.cosign(&cp, 1_700_000_000).unwrap());
    let note = signed.encode().unwrap();

    // The text is a C2SP checkpoint for tlog_tiles.
    let parsed = tlog_tiles::Checkpoint::from_bytes(cp.text().unwrap().as_bytes()).unwrap();
    assert_eq!(parsed.origin(), cp.origin);
    assert_eq!(parsed.size(), 10);
    assert_eq!(parsed.hash().0, cp.root);

    // The note and the log signature verify with signed_note's standard verifier (our vkey).
    let n = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
    let log_v = signed_note::StandardVerifier::new(&log.verifier().encode()).unwrap();
    let wk = witness.verifier();
    let w_id = signed_note::key_id(
        &wk.name,
        &[&[KEY_TYPE_COSIGNATURE_V1][..], &wk.public_key].concat(),
    );
    assert_eq!(w_id, wk.id(), "cosigner key id per tlog-cosignature");
    let w_v = CosigVerifier {
        name: wk.name.clone(),
        id: w_id,
        key: ed25519_dalek_v2::VerifyingKey::from_bytes(&wk.public_key).unwrap(),
    };
    let (verified, unverified) = n
        .verify(&signed_note::VerifierList::new(vec![
            Box::new(log_v),
            Box::new(w_v),
        ]))
        .unwrap();
    assert_eq!(verified.len(), 2);
    assert!(unverified.is_empty());

    // And our parser reads back exactly what it wrote.
    assert_eq!(SignedCheckpoint::parse(&note).unwrap(), signed);
}
