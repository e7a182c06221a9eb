//! Parser confusion: non-canonical base64, duplicate JSON keys, trailing bytes, oversized length
//! fields, and names such as `../x`. Each gets a typed error, never a panic, and nothing is
//! written outside the data directory.

use axum::http::Method;
use serde_json::json;
use serment_client::ClientError;
use serment_client::api::BlobRef;
use serment_client::contacts;
use serment_core::Error;
use serment_core::document::Header;
use serment_hostile::forge::{RawSeal, frame, seal_raw};
use serment_hostile::harness::b64;

use crate::common::*;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Non-canonical spellings of the same bytes in base64url.
fn non_canonical(s: &str) -> Vec<String> {
    let mut v = vec![
        format!("{s}="),
        format!("{s}=="),
        format!(" {s}"),
        format!("{s}\n"),
        format!("{}\n{}", &s[..4], &s[4..]),
        s.replace('-', "+").replace('_', "/"),
    ];
    // Non-zero trailing bits: only when the length leaves a partial sextet.
    if !s.len().is_multiple_of(4) {
        let last = s.as_bytes()[s.len() - 1];
        let idx = ALPHABET.iter().position(|c| *c == last).unwrap();
        let mut t = s[..s.len() - 1].to_owned();
        t.push(char::from(ALPHABET[idx | 1]));
        if t != s {
            v.push(t);
        }
    }
    v.retain(|x| x != s);
    v
}

#[test]
fn parser_confusion_non_canonical_base64_in_responses() {
    let mut w = World::new();
    let r = w.put(b"{}", "x", &[PATIENT]);
    let wrap = b64(&stored_wrap(&w.h, &r.doc_id, 1, &w.patient.ks.device.id()));
    for bad in non_canonical(&wrap) {
        w.h.clear_hooks();
        let b = bad.clone();
        w.h.on_response(&version_route(&r.doc_id, 1), move |ex| {
            let mut j = ex.json();
            j["wrap"] = json!(b);
            ex.set_json(&j);
        });
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert!(matches!(e, ClientError::BadResponse(_)), "{bad:?}: {e:?}");
    }
    // A device record (1405 bytes for the patient's handle, with its X-Wing key: a partial
    // sextet at the end) spelled non-canonically.
    let rec = b64(&w.patient.ks.own_record().unwrap());
    assert!(!rec.len().is_multiple_of(4));
    for bad in non_canonical(&rec) {
        w.h.clear_hooks();
        let b = bad.clone();
        w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
            ex.set_json(&json!({ "handle": PATIENT, "records": [b] }));
        });
        let e = contacts::add(&w.lab.api, &mut w.lab.ks, PATIENT).unwrap_err();
        assert!(matches!(e, ClientError::BadResponse(_)), "{bad:?}: {e:?}");
    }
}

#[test]
fn parser_confusion_duplicate_json_keys() {
    let mut w = World::new();
    let r = w.put(b"{}", "x", &[PATIENT, GP]);
    let mine = b64(&stored_wrap(&w.h, &r.doc_id, 1, &w.patient.ks.device.id()));
    let gps = b64(&stored_wrap(&w.h, &r.doc_id, 1, &w.gp.ks.device.id()));
    // Two "wrap" keys: a parser keeping the first and a checker reading the last would disagree.
    let m = mine.clone();
    w.h.on_response(&version_route(&r.doc_id, 1), move |ex| {
        let j = ex.json();
        let text = format!(
            "{{\"doc_id\":{},\"doc_version\":1,\"author_device\":{},\"blob_id\":{},\"size\":1,\"wrap\":\"{m}\",\"wrap\":\"{gps}\"}}",
            j["doc_id"], j["author_device"], j["blob_id"]
        );
        ex.set_body(text.into_bytes());
    });
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(e, ClientError::BadResponse(ref m) if m.contains("duplicate")),
        "{e:?}"
    );
    // Two "records" keys in a directory answer.
    w.h.clear_hooks();
    let rec = b64(&w.patient.ks.own_record().unwrap());
    let other = b64(&w.gp.ks.own_record().unwrap());
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_body(
            format!(
                "{{\"handle\":\"{PATIENT}\",\"records\":[\"{rec}\"],\"records\":[\"{other}\"]}}"
            )
            .into_bytes(),
        );
    });
    let e = contacts::add(&w.gp.api, &mut w.gp.ks, PATIENT).unwrap_err();
    assert!(
        matches!(e, ClientError::BadResponse(ref m) if m.contains("duplicate")),
        "{e:?}"
    );
    // Inside the sealed metadata (a malicious author): duplicate keys are refused too.
    assert!(
        serment_core::document::Metadata::from_json(
            br#"{"content_length":1,"title":"a","title":"b"}"#
        )
        .is_err()
    );
}

#[test]
fn parser_confusion_trailing_bytes() {
    let mut w = World::new();
    let r = w.put(b"{}", "x", &[PATIENT]);
    let wrap = stored_wrap(&w.h, &r.doc_id, 1, &w.patient.ks.device.id());
    // JSON with trailing garbage.
    w.h.on_response(&version_route(&r.doc_id, 1), |ex| {
        let mut b = ex.response.clone();
        b.extend_from_slice(b" {}");
        ex.set_body(b);
    });
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(matches!(e, ClientError::BadResponse(_)), "{e:?}");
    // A wrap with one trailing byte.
    w.h.clear_hooks();
    let mut long = wrap.clone();
    long.push(0);
    serve_wrap(&w.h, &r.doc_id, 1, long);
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(integrity(&e), Error::TrailingBytes { .. }),
        "{e:?}"
    );
    // A device record with one trailing byte.
    w.h.clear_hooks();
    let mut rec = w.patient.ks.own_record().unwrap();
    rec.push(0);
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&rec)] }));
    });
    let e = contacts::add(&w.gp.api, &mut w.gp.ks, PATIENT).unwrap_err();
    assert!(
        matches!(integrity(&e), Error::TrailingBytes { .. }),
        "{e:?}"
    );
}

#[test]
fn parser_confusion_oversized_length_fields() {
    let mut w = World::new();
    let r = w.put(b"{}", "x", &[PATIENT]);
    let blob = w.blob(&r);
    // padded_len above the 1 TiB cap, and at the cap with a short body: refused from the header
    // (and the wrap binding) before anything is allocated for it.
    for (padded, ok) in [
        (
            u64::MAX,
            (|e: &Error| matches!(e, Error::TooLarge { .. })) as fn(&Error) -> bool,
        ),
        ((1u64 << 40) + 1, |e: &Error| {
            matches!(e, Error::TooLarge { .. })
        }),
        (1u64 << 40, |e: &Error| {
            matches!(e, Error::ContextMismatch(_))
        }),
    ] {
        let mut b = blob.clone();
        b[Header::LEN - 8..Header::LEN].copy_from_slice(&padded.to_be_bytes());
        w.h.clear_hooks();
        serve_blob(&w.h, &r.doc_id, 1, b);
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert!(ok(integrity(&e)), "padded_len {padded}: {e:?}");
    }
    // The trailer's recipient count at its maximum with no recipients behind it.
    let mut b = blob.clone();
    let n = b.len();
    let t = n - 64 - 2 - 32 * 2;
    b[t..t + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    w.h.clear_hooks();
    serve_blob(&w.h, &r.doc_id, 1, b);
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::InvalidField { .. } | Error::TruncatedStream
        ),
        "{e:?}"
    );
    // A directory answer with more records than any identity may have, and a 9 MiB JSON answer.
    w.h.clear_hooks();
    let rec = b64(&w.patient.ks.own_record().unwrap());
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": vec![rec.clone(); 1025] }));
    });
    let e = contacts::add(&w.gp.api, &mut w.gp.ks, PATIENT).unwrap_err();
    assert!(matches!(e, ClientError::BadResponse(_)), "{e:?}");
    w.h.clear_hooks();
    w.h.on_response("GET /v1/documents", |ex| {
        ex.set_json(&json!({ "documents": [], "padding": "x".repeat(9 << 20) }));
    });
    let e = w.patient.list().unwrap_err();
    assert!(
        matches!(e, ClientError::Transport(_) | ClientError::BadResponse(_)),
        "{e:?}"
    );
    // A handle length byte of 255 in a device record.
    w.h.clear_hooks();
    let mut rec = w.patient.ks.own_record().unwrap();
    rec[8] = 255;
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&rec)] }));
    });
    let e = contacts::add(&w.gp.api, &mut w.gp.ks, PATIENT).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::InvalidField { .. } | Error::Truncated { .. }
        ),
        "{e:?}"
    );
}

#[test]
fn parser_confusion_oversized_metadata_length_from_a_malicious_author() {
    // A pinned co-tenant signs a document whose framed plaintext announces 4 GiB of metadata.
    let mut w = World::new();
    let mut mallory = w.h.party("mallory");
    contacts::add(&mallory.api, &mut mallory.ks, PATIENT).unwrap();
    contacts::add(&w.patient.api, &mut w.patient.ks, "mallory").unwrap();
    let recipients = mallory.recipients(&[PATIENT.to_owned()]).unwrap();
    let doc = serment_core::DocId::random().unwrap();
    let mut framed = vec![0xff, 0xff, 0xff, 0xff];
    framed.extend_from_slice(&[b'{'; 60]);
    let forged = seal_raw(&RawSeal {
        author: &mallory.ks.device,
        doc_id: doc,
        doc_version: 1,
        dek: [1; 32],
        nonce_prefix: [2; 7],
        plaintext: &framed,
        recipients: &recipients,
    })
    .unwrap();
    let blob_id = mallory
        .api
        .upload_blob(&mut forged.blob.as_slice())
        .unwrap();
    let wraps: Vec<Vec<u8>> = forged.wraps.iter().map(|(_, w)| w.clone()).collect();
    mallory
        .api
        .commit_document(&doc, 1, BlobRef::Id(&blob_id), &wraps, None)
        .unwrap();
    let e = read_to_file(&w.h, &mut w.patient, &doc, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::TooLarge {
                what: "metadata",
                ..
            }
        ),
        "{e:?}"
    );
    // And a well-framed document with non-zero padding.
    let mut framed = frame(br#"{"content_length":3}"#, b"ok!");
    assert_eq!(framed.len(), 28, "one padding byte");
    *framed.last_mut().unwrap() = 1;
    let doc2 = serment_core::DocId::random().unwrap();
    let forged = seal_raw(&RawSeal {
        author: &mallory.ks.device,
        doc_id: doc2,
        doc_version: 1,
        dek: [3; 32],
        nonce_prefix: [4; 7],
        plaintext: &framed,
        recipients: &recipients,
    })
    .unwrap();
    let blob_id = mallory
        .api
        .upload_blob(&mut forged.blob.as_slice())
        .unwrap();
    let wraps: Vec<Vec<u8>> = forged.wraps.iter().map(|(_, w)| w.clone()).collect();
    mallory
        .api
        .commit_document(&doc2, 1, BlobRef::Id(&blob_id), &wraps, None)
        .unwrap();
    let e = read_to_file(&w.h, &mut w.patient, &doc2, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::InvalidField {
                field: "padding",
                ..
            }
        ),
        "{e:?}"
    );
}

/// Every file under `dir`, relative.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn parser_confusion_hostile_names_are_typed_errors_and_write_nothing_outside() {
    let mut w = World::new();
    let names = [
        "../x",
        "..",
        "a/b",
        "../../etc/passwd",
        "x\0y",
        "%2e%2e%2fx",
        "X",
        ".hidden",
        "-rf",
        "",
    ];
    for n in names {
        // As a recipient: refused by the client before any request.
        let before = w.h.exchanges().len();
        let e = contacts::add(&w.lab.api, &mut w.lab.ks, n).unwrap_err();
        assert!(matches!(e, ClientError::Input(_)), "{n:?}: {e:?}");
        assert_eq!(w.h.exchanges().len(), before, "{n:?} reached the server");
        let e = w
            .lab
            .put(b"{}".as_slice(), meta(b"{}", "x"), &[n.to_owned()])
            .unwrap_err();
        assert!(
            matches!(e, ClientError::UnknownContact(_) | ClientError::Input(_)),
            "{n:?}: {e:?}"
        );
    }
    let outside_before = tree(w.h.root());
    // At the server: hostile path parameters and JSON fields are 4xx, never 5xx.
    let token = w.h.token_of(&w.lab.ks.device.id()).unwrap();
    for path in [
        "/v1/directory/..%2Fx",
        "/v1/directory/..%2F..%2Fetc%2Fpasswd",
        "/v1/documents/..%2F..%2Fserment.db/versions/1",
        "/v1/documents/00000000000000000000000000000000/versions/..%2F1/blob",
        "/v1/documents/00000000000000000000000000000000/versions/1/blob",
    ] {
        let (s, _) = w.h.call(Method::GET, path, Some(&token), Vec::new());
        assert!((400..500).contains(&s), "{path}: {s}");
    }
    for body in [
        json!({ "doc_id": "../../x", "doc_version": 1, "blob_id": "ab".repeat(32), "wraps": ["AA"] }),
        json!({ "doc_id": "00".repeat(16), "doc_version": 1, "blob_id": "../../../../tmp/x", "wraps": ["AA"] }),
        json!({ "doc_id": "00".repeat(16), "doc_version": 1, "blob_id": format!("../{}", "a".repeat(61)), "wraps": ["AA"] }),
    ] {
        let (s, _) = w.h.call(
            Method::POST,
            "/v1/documents",
            Some(&token),
            body.to_string().into_bytes(),
        );
        assert!((400..500).contains(&s), "{body}: {s}");
    }
    // A device record whose handle is "../x", signed properly by its identity: refused.
    let ident = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let dev = serment_core::identity::DeviceSecret::generate();
    let mut rec = Vec::new();
    rec.extend_from_slice(b"SRMD");
    rec.extend_from_slice(&1u16.to_be_bytes());
    rec.extend_from_slice(&1u16.to_be_bytes());
    rec.push(4);
    rec.extend_from_slice(b"../x");
    rec.extend_from_slice(&ident.verifying_key().to_bytes());
    rec.extend_from_slice(&dev.signing_public_key());
    rec.extend_from_slice(&dev.encryption_public_key());
    rec.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    let sig = serment_core::sign::sign(&ident, serment_core::sign::Context::DeviceRecord, &rec);
    rec.extend_from_slice(&sig);
    let (s, _) = w.h.call(
        Method::POST,
        "/v1/devices",
        None,
        json!({ "record": b64(&rec) }).to_string().into_bytes(),
    );
    assert!((400..500).contains(&s), "../x record: {s}");
    // ... and served by a hostile directory, refused by the client.
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&rec)] }));
    });
    let e = contacts::add(&w.gp.api, &mut w.gp.ks, PATIENT).unwrap_err();
    assert_eq!(e.code(), "integrity", "{e:?}");
    w.h.clear_hooks();
    // Hostile names inside the sealed metadata (type, file name) are data, never paths: reading
    // writes exactly the requested output file.
    let m = serment_core::document::Metadata {
        resource_type: Some("../x".into()),
        file_name: Some("../../../x".into()),
        title: Some("/etc/passwd".into()),
        ..meta(b"{}", "t")
    };
    let r = w
        .lab
        .put(b"{}".as_slice(), m, &[PATIENT.to_owned()])
        .unwrap();
    read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap();
    // A FHIR bundle with hostile resource types splits without panicking.
    let _ = serment_fhir::split_bundle(
        br#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"../x","id":"../y"}}]}"#,
    );
    let after = tree(w.h.root());
    let new: Vec<&String> = after
        .iter()
        .filter(|p| !outside_before.contains(p))
        .collect();
    for p in &new {
        assert!(
            p.starts_with("data/")
                || *p == &format!("out/{}.json", r.doc_id)
                || p.starts_with("homes/"),
            "unexpected file {p}"
        );
    }
    assert!(
        !after.iter().any(|p| p.ends_with("/x") || p == "x"),
        "{after:?}"
    );
}
