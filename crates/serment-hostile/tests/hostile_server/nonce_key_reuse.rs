//! Nonce or key reuse: across 1,000 chunks and 3 versions every (key, nonce) pair is unique, and
//! the same plaintext sealed twice gives unrelated ciphertext.
//!
//! No test hook in the core is needed to observe the nonces: the nonce of chunk i is
//! `nonce_prefix || u32(i) || last` (PROTOCOL.md §5) with the prefix in the clear header, and the
//! author can unwrap its own DEK. The test rebuilds each nonce itself and decrypts every chunk
//! with `ring` directly under that (DEK, nonce): a chunk that opens proves which pair sealed it,
//! independently of the core's own STREAM code.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serment_core::DocId;
use serment_core::document::{self, Header, SealInput};
use serment_core::identity::DeviceSecret;
use serment_core::stream::{TAG_LEN, chunk_plain_len};
use serment_core::wrap::{self, Recipient, WrappedKey};

use crate::common::*;

/// An endless deterministic content source (the same bytes for every version).
struct Pattern(u64);
impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for b in buf.iter_mut() {
            *b = (self.0 % 253) as u8;
            self.0 += 1;
        }
        Ok(buf.len())
    }
}

/// Opens every chunk of `blob` with ring under (dek, prefix || i || last), recording each pair.
fn check_chunks(
    blob: &mut std::fs::File,
    dek: &[u8; 32],
    seen: &mut HashSet<([u8; 32], [u8; 12])>,
) -> u64 {
    blob.seek(SeekFrom::Start(0)).unwrap();
    let mut hb = [0u8; Header::LEN];
    blob.read_exact(&mut hb).unwrap();
    let h = Header::decode(&hb).unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek).unwrap());
    let aad = h.hash();
    let mut buf = Vec::new();
    for i in 0..h.chunks() {
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&h.nonce_prefix);
        n[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        n[11] = u8::from(i + 1 == h.chunks());
        assert!(seen.insert((*dek, n)), "(key, nonce) reused at chunk {i}");
        buf.resize(chunk_plain_len(h.padded_len, i) + TAG_LEN, 0);
        blob.read_exact(&mut buf).unwrap();
        key.open_in_place(Nonce::assume_unique_for_key(n), Aad::from(aad), &mut buf)
            .unwrap_or_else(|_| panic!("chunk {i} was not sealed under (DEK, prefix||{i}||last)"));
    }
    h.chunks()
}

#[test]
fn nonce_key_reuse_unique_pairs_across_1000_chunks_and_3_versions() {
    let author = DeviceSecret::generate();
    let reader = DeviceSecret::generate();
    let to = [Recipient::from_device(&reader)];
    let doc = DocId::random().unwrap();
    // 1,000 full chunks of content (the PADMÉ padding adds a few more).
    let len = 1000 * 65536u64;
    let mut seen = HashSet::new();
    let mut deks = HashSet::new();
    let mut prefixes = HashSet::new();
    let mut total = 0;
    for version in 1..=3u32 {
        let mut f = tempfile::tempfile().unwrap();
        let sealed = document::seal(
            SealInput {
                doc_id: doc,
                doc_version: version,
                author: &author,
                recipients: &to,
                metadata: serment_core::document::Metadata {
                    content_length: len,
                    ..Default::default()
                },
            },
            Pattern(0).take(len),
            std::io::BufWriter::new(&mut f),
        )
        .unwrap();
        let own = sealed
            .wraps
            .iter()
            .find(|(k, _)| *k == author.id())
            .unwrap();
        let w = WrappedKey::decode(&own.1).unwrap();
        w.verify_signature(&author.signing_public_key()).unwrap();
        let dek = wrap::unwrap_dek(&w, &author).unwrap();
        assert!(deks.insert(*dek), "DEK reused across versions");
        assert!(
            prefixes.insert(sealed.header.nonce_prefix),
            "nonce prefix reused"
        );
        let n = check_chunks(&mut f, &dek, &mut seen);
        assert!(n >= 1000, "{n} chunks");
        total += n;
    }
    assert_eq!(seen.len() as u64, total);
    assert!(total >= 3000);
}

#[test]
fn nonce_key_reuse_same_plaintext_sealed_twice_is_unrelated() {
    let mut w = World::new();
    let body = content(200_000, 3);
    let a = w.put(&body, "identique", &[PATIENT, GP]);
    let b = w.put(&body, "identique", &[PATIENT, GP]);
    let (ba, bb) = (w.blob(&a), w.blob(&b));
    assert_eq!(ba.len(), bb.len(), "same plaintext, same padded size");
    let (ha, hb) = (
        Header::decode(&ba[..Header::LEN]).unwrap(),
        Header::decode(&bb[..Header::LEN]).unwrap(),
    );
    assert_ne!(ha.nonce_prefix, hb.nonce_prefix);
    assert_ne!(ha.doc_id, hb.doc_id);
    // No 16-byte block of ciphertext in common (the trailers list the same public device ids).
    let (ca, cb) = (
        Parts::split(&ba).chunks.concat(),
        Parts::split(&bb).chunks.concat(),
    );
    let common: Vec<_> = blocks(&ca).intersection(&blocks(&cb)).cloned().collect();
    assert!(
        common.is_empty(),
        "{} ciphertext blocks shared",
        common.len()
    );
    // Different DEKs, and every wrap has its own HPKE encapsulation.
    let lab_dev = w.lab.ks.device.id();
    let mut deks = HashSet::new();
    let mut encs = HashSet::new();
    for r in [&a, &b] {
        let own = WrappedKey::decode(&stored_wrap(&w.h, &r.doc_id, 1, &lab_dev)).unwrap();
        assert!(deks.insert(*wrap::unwrap_dek(&own, &w.lab.ks.device).unwrap()));
    }
    for row in w.h.sql("SELECT wrap FROM wraps") {
        let wrap = row[0].1.clone().unwrap();
        // enc sits after magic, version, suite, doc id, version, header hash, recipient, sharer.
        assert!(
            encs.insert(wrap[124..156].to_vec()),
            "HPKE encapsulation reused"
        );
    }
    assert!(encs.len() >= 6);
}
