//! Downgrade: an older or unknown format version, a weaker or unknown suite, and "this is not
//! encrypted" (suite 0, or a plaintext body) are refused by name (PROTOCOL.md §2), before any key
//! is used. A sealed header may name suite 1 or 2, but relabelling one as the other breaks the
//! header hash that the wraps, the STREAM associated data and the signature bind.

use serde_json::json;
use serment_client::ClientError;
use serment_client::contacts;
use serment_client::keystore::Keystore;
use serment_core::Error;
use serment_hostile::harness::b64;
use zeroize::Zeroizing;

use crate::common::*;

/// `magic[4] || u16 version || u16 suite`: the version and suite of every format.
fn set_version_suite(b: &mut [u8], version: u16, suite: u16) {
    b[4..6].copy_from_slice(&version.to_be_bytes());
    b[6..8].copy_from_slice(&suite.to_be_bytes());
}

fn is_downgrade(e: &Error, version: u16, suite: u16) -> bool {
    match e {
        Error::UnsupportedVersion { version: v, .. } => *v == version && version != 1,
        Error::UnsupportedSuite { suite: s, .. } => *s == suite && version == 1,
        _ => false,
    }
}

/// For device records, wraps and keystores, which carry suite id 1 in every suite.
const CASES: &[(u16, u16)] = &[
    (0, 1),
    (2, 1),
    (1, 0),
    (1, 2),
    (0, 0),
    (u16::MAX, 1),
    (1, u16::MAX),
];

/// For sealed headers, which carry suite 1 or 2 (every new document: 2).
const HEADER_CASES: &[(u16, u16)] = &[
    (0, 2),
    (2, 2),
    (1, 0),
    (1, 3),
    (0, 0),
    (u16::MAX, 2),
    (1, u16::MAX),
];

#[test]
fn downgrade_sealed_header_version_and_suite() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Bundle\"}", "x", &[PATIENT]);
    let blob = w.blob(&r);
    assert_eq!(&blob[4..8], &[0, 1, 0, 2], "new documents are suite 2");
    for &(v, s) in HEADER_CASES {
        let mut b = blob.clone();
        set_version_suite(&mut b, v, s);
        w.h.clear_hooks();
        serve_blob(&w.h, &r.doc_id, 1, b);
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert!(is_downgrade(integrity(&e), v, s), "header {v}/{s}: {e:?}");
    }
    // Suite 1 is still read, but relabelling a suite-2 document as suite 1 changes its header
    // hash: the wrap no longer matches.
    let mut b = blob.clone();
    set_version_suite(&mut b, 1, 1);
    w.h.clear_hooks();
    serve_blob(&w.h, &r.doc_id, 1, b);
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(integrity(&e), Error::ContextMismatch(_)),
        "header 1/1: {e:?}"
    );
}

#[test]
fn downgrade_not_encrypted_body_is_refused() {
    let mut w = World::new();
    let body = b"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"DUPONT\"}]}".to_vec();
    let r = w.put(&body, "x", &[PATIENT]);
    // The server serves the plaintext itself, then a header claiming suite 0 over plaintext.
    serve_blob(&w.h, &r.doc_id, 1, body.clone());
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::BadMagic { .. } | Error::TruncatedStream
        ),
        "{e:?}"
    );
    let mut fake = w.blob(&r)[..serment_core::document::Header::LEN].to_vec();
    set_version_suite(&mut fake, 1, 0);
    fake.extend_from_slice(&body);
    w.h.clear_hooks();
    serve_blob(&w.h, &r.doc_id, 1, fake);
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(integrity(&e), Error::UnsupportedSuite { suite: 0, .. }),
        "{e:?}"
    );
}

#[test]
fn downgrade_key_wrap_version_and_suite() {
    let mut w = World::new();
    let r = w.put(b"{}", "x", &[PATIENT]);
    let wrap = stored_wrap(&w.h, &r.doc_id, 1, &w.patient.ks.device.id());
    for &(v, s) in CASES {
        let mut b = wrap.clone();
        set_version_suite(&mut b, v, s);
        w.h.clear_hooks();
        serve_wrap(&w.h, &r.doc_id, 1, b);
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert!(is_downgrade(integrity(&e), v, s), "wrap {v}/{s}: {e:?}");
    }
}

#[test]
fn downgrade_device_record_version_and_suite() {
    let mut w = World::new();
    let real = w.patient.ks.own_record().unwrap();
    for &(v, s) in CASES {
        let mut b = real.clone();
        set_version_suite(&mut b, v, s);
        w.h.clear_hooks();
        w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
            ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&b)] }));
        });
        let e = contacts::add(&w.gp.api, &mut w.gp.ks, PATIENT).unwrap_err();
        assert!(is_downgrade(integrity(&e), v, s), "record {v}/{s}: {e:?}");
    }
}

#[test]
fn downgrade_keystore_version_and_suite() {
    let w = World::new();
    drop(w.lab);
    let path = w.h.keystore_path(LAB);
    let good = std::fs::read(&path).unwrap();
    for &(v, s) in CASES {
        let mut b = good.clone();
        set_version_suite(&mut b, v, s);
        std::fs::write(&path, &b).unwrap();
        let e = Keystore::open(&path, Zeroizing::new(format!("passphrase of {LAB}"))).unwrap_err();
        match &e {
            ClientError::Keystore(inner) => {
                assert!(is_downgrade(inner, v, s), "keystore {v}/{s}: {e:?}")
            }
            other => panic!("{other:?}"),
        }
    }
}
