//! Unauthenticated key material: a keystore (the wrapped private keys) or a key wrap altered
//! block-wise gives one uniform error, so the alteration teaches the attacker nothing (no
//! padding- or format-oracle of the kind that broke MEGA's RSA key wrapping).

use serment_client::ClientError;
use serment_client::keystore::Keystore;
use serment_core::Error;
use serment_core::wrap::WrappedKey;
use serment_hostile::harness::Hostile;
use zeroize::Zeroizing;

use crate::common::*;

/// PROTOCOL.md §9: the keystore header length (magic .. nonce).
const HEADER: usize = 48;

fn open_err(path: &std::path::Path, bytes: &[u8], pass: &str) -> ClientError {
    std::fs::write(path, bytes).unwrap();
    Keystore::open(path, Zeroizing::new(pass.to_owned())).unwrap_err()
}

#[test]
fn unauthenticated_key_material_keystore_altered_blockwise_is_one_uniform_error() {
    let h = Hostile::new();
    let s = h.party("alice");
    drop(s);
    let path = h.keystore_path("alice");
    let good = std::fs::read(&path).unwrap();
    let pass = "passphrase of alice";
    let victim = path.with_extension("altered");
    let uniform = open_err(&victim, &good, "wrong passphrase");
    assert!(
        matches!(uniform, ClientError::Keystore(Error::KeystoreDecrypt)),
        "{uniform:?}"
    );
    let uniform_text = uniform.to_string();
    let check = |what: &str, bytes: &[u8]| {
        let e = open_err(&victim, bytes, pass);
        assert!(
            matches!(e, ClientError::Keystore(Error::KeystoreDecrypt)),
            "{what}: {e:?}"
        );
        assert_eq!(e.to_string(), uniform_text, "{what}");
        assert_eq!(e.code(), "keystore");
    };
    // Salt and nonce (authenticated as associated data).
    for i in [32usize, 47] {
        let mut b = good.clone();
        b[i] ^= 0x80;
        check(&format!("header byte {i}"), &b);
    }
    let body = good.len() - HEADER;
    let nblocks = body.div_ceil(16);
    for k in 0..nblocks {
        let at = HEADER + 16 * k;
        // One bit flipped in block k (the last block holds the GCM tag).
        let mut b = good.clone();
        b[at] ^= 0x01;
        check(&format!("flip in block {k}"), &b);
        // Block k dropped, i.e. the file truncated or shortened at a block boundary.
        let mut b = good.clone();
        b.drain(at..(at + 16).min(good.len()));
        check(&format!("block {k} dropped"), &b);
        if k + 1 < nblocks && at + 32 <= good.len() {
            // Blocks k and k+1 swapped.
            let mut b = good.clone();
            let (x, y) = (good[at..at + 16].to_vec(), good[at + 16..at + 32].to_vec());
            b[at..at + 16].copy_from_slice(&y);
            b[at + 16..at + 32].copy_from_slice(&x);
            check(&format!("blocks {k},{} swapped", k + 1), &b);
            // Block k duplicated.
            let mut b = good.clone();
            b.splice(at..at, x.iter().copied());
            check(&format!("block {k} duplicated"), &b);
        }
    }
    // Truncated to the header, or to a tag's worth of body.
    check("no body", &good[..HEADER]);
    check("body of one block", &good[..HEADER + 16]);
    // The untouched file still opens.
    std::fs::write(&victim, &good).unwrap();
    Keystore::open(&victim, Zeroizing::new(pass.to_owned())).unwrap();
}

#[test]
fn unauthenticated_key_material_key_wrap_altered_blockwise_is_one_uniform_error() {
    let mut w = World::new();
    let r = w.put(
        b"{\"resourceType\":\"DiagnosticReport\"}",
        "rapport",
        &[PATIENT],
    );
    let wrap = stored_wrap(&w.h, &r.doc_id, 1, &w.patient.ks.device.id());
    // The patient's device advertises an X-Wing key: its wrap is suite 3 (PROTOCOL.md §7).
    assert_eq!(wrap.len(), WrappedKey::HYBRID_LEN);
    // Offsets of PROTOCOL.md §7: everything from `recipient` on is key material or signature.
    const SIGNED_BODY: usize = 4 + 2 + 2 + 16 + 4 + 32;
    for k in 0..wrap.len().div_ceil(16) {
        let mut bad = wrap.clone();
        bad[16 * k] ^= 0x01;
        w.h.clear_hooks();
        serve_wrap(&w.h, &r.doc_id, 1, bad);
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert_eq!(e.code(), "integrity", "block {k}: {e:?}");
        if 16 * k >= SIGNED_BODY {
            // The sharer's signature is checked before any HPKE decryption: every alteration of
            // the encapsulated key, the wrapped DEK or the signature is the same error.
            let inner = integrity(&e);
            assert!(
                matches!(
                    inner,
                    Error::BadSignature { .. }
                        | Error::WrongSigner { .. }
                        | Error::ContextMismatch(_)
                ),
                "block {k}: {inner:?}"
            );
            if 16 * k >= SIGNED_BODY + 64 {
                assert!(
                    matches!(inner, Error::BadSignature { what: "key wrap" }),
                    "block {k}: {inner:?}"
                );
            }
        }
    }
    w.h.clear_hooks();
    read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap();
}

#[test]
fn unauthenticated_key_material_never_leaves_the_client() {
    // The server never receives a keystore, a passphrase-derived value or a private key, so it has
    // no key material of its own to tamper with: scan every request body the proxy saw.
    let mut w = World::new();
    w.put(b"{}", "x", &[PATIENT, GP]);
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for s in [&w.lab, &w.gp, &w.patient] {
        secrets.push(s.ks.device.signing_seed().to_vec());
        secrets.push(s.ks.device.encryption_secret().to_vec());
        secrets.push(s.ks.device.hybrid_secret().unwrap().to_vec());
        secrets.push(s.ks.identity.to_seed().to_vec());
    }
    let needles: Vec<Vec<u8>> = secrets
        .iter()
        .flat_map(|s| {
            [
                s.clone(),
                hex::encode(s).into_bytes(),
                serment_hostile::harness::b64(s).into_bytes(),
            ]
        })
        .collect();
    for ex in w.h.exchanges() {
        for n in &needles {
            assert!(
                !ex.request.windows(n.len()).any(|x| x == n.as_slice()),
                "{} {} carries key material",
                ex.method,
                ex.path
            );
        }
    }
}
