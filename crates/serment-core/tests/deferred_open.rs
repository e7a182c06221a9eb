//! Opening with the chunks decrypted elsewhere (`document::verify_sealed` then
//! `Unlocked::finish`, PROTOCOL.md §2.1: the patient's page decrypts with WebCrypto): the same
//! content and verdicts as `document::open`, every ciphertext check before any plaintext, and a
//! decryption glue that gets the chunks wrong is caught. The chunks are decrypted here with
//! `ring` directly, as an AEAD outside the core would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{Party, open, seal, wrap_for};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serment_core::Error;
use serment_core::document::{self, OpenInput, Unlocked, Unwrap};

/// Decrypts every chunk of `blob` as the page's worker does with WebCrypto: key, nonce, offset
/// and length from `Unlocked`, associated data the header hash.
fn decrypt_elsewhere(u: &Unlocked, blob: &[u8]) -> Vec<u8> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, u.dek()).unwrap());
    let mut plain = Vec::new();
    for i in 0..u.chunks() {
        let (nonce, offset, len) = u.chunk(i).unwrap();
        let mut c = blob[offset as usize..offset as usize + len].to_vec();
        let p = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(u.aad()),
                &mut c,
            )
            .unwrap();
        plain.extend_from_slice(p);
    }
    plain
}

fn verify(
    reader: &Party,
    author: &Party,
    blob: &[u8],
    wrap: &[u8],
) -> serment_core::Result<Unlocked> {
    document::verify_sealed(
        OpenInput {
            device: &reader.dev,
            wrap,
            author_signing_key: &author.dev.signing_public_key(),
            expected: None,
        },
        Unwrap::Own,
        blob,
    )
}

#[test]
fn decrypting_elsewhere_gives_what_open_gives() {
    let (lab, patient) = (Party::new(1), Party::new(2));
    for len in [0usize, 1, 65_000, 65_536 * 3 + 17] {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let (blob, sealed) = seal(&lab, &[&patient], &content);
        let wrap = wrap_for(&sealed, &patient.dev.id());
        let u = verify(&patient, &lab, &blob, wrap).unwrap();
        let plain = decrypt_elsewhere(&u, &blob);
        let mut out = Vec::new();
        let opened = u.finish(&blob, &plain, &mut out).unwrap();
        assert_eq!(out, content, "len {len}");
        assert_eq!(out, open(&patient, &lab, &blob, wrap).unwrap());
        assert_eq!(opened.metadata.title.as_deref(), Some("Bilan"));
    }
}

#[test]
fn every_ciphertext_check_runs_before_any_plaintext() {
    let (lab, patient) = (Party::new(1), Party::new(2));
    let content = vec![5u8; 200_000];
    let (blob, sealed) = seal(&lab, &[&patient], &content);
    let wrap = wrap_for(&sealed, &patient.dev.id());
    // A flipped ciphertext byte in a middle chunk: the author's signature over the chunk
    // hashes fails, with nothing decrypted.
    let mut bad = blob.clone();
    bad[76 + 65_552 + 10] ^= 1;
    assert!(matches!(
        verify(&patient, &lab, &bad, wrap),
        Err(Error::BadSignature { .. })
    ));
    // Truncated: the trailer is missing.
    assert!(verify(&patient, &lab, &blob[..blob.len() - 40], wrap).is_err());
    // Another reader's wrap does not unwrap.
    let gp = Party::new(3);
    assert!(verify(&gp, &lab, &blob, wrap).is_err());
}

#[test]
fn a_glue_that_gets_the_chunks_wrong_is_caught() {
    let (lab, patient) = (Party::new(1), Party::new(2));
    let content: Vec<u8> = (0..65_536 * 3).map(|i| (i % 253) as u8).collect();
    let (blob, sealed) = seal(&lab, &[&patient], &content);
    let wrap = wrap_for(&sealed, &patient.dev.id());
    let good = {
        let u = verify(&patient, &lab, &blob, wrap).unwrap();
        decrypt_elsewhere(&u, &blob)
    };
    // A chunk missing: the length is not the header's.
    let u = verify(&patient, &lab, &blob, wrap).unwrap();
    assert!(matches!(
        u.finish(&blob, &good[65_536..], &mut Vec::new()),
        Err(Error::InvalidField { .. })
    ));
    // The first chunk's plaintext altered (or chunks swapped): the cross-check fails.
    for (name, plain) in [
        ("first altered", {
            let mut p = good.clone();
            p[3] ^= 1;
            p
        }),
        ("last altered", {
            let mut p = good.clone();
            let n = p.len();
            p[n - 1] ^= 1;
            p
        }),
        ("chunks swapped", {
            let mut p = good.clone();
            let (a, b) = p.split_at_mut(65_536);
            a.swap_with_slice(&mut b[..65_536]);
            p
        }),
    ] {
        let u = verify(&patient, &lab, &blob, wrap).unwrap();
        assert_eq!(
            u.finish(&blob, &plain, &mut Vec::new()).unwrap_err(),
            Error::Decrypt,
            "{name}"
        );
    }
}
