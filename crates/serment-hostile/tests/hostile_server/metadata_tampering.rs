//! Metadata tampering: name, date, author and type live only inside the signed ciphertext
//! (PROTOCOL.md §6.2); what the server shows in clear (sizes, times, author device) is not trusted.

use serde_json::json;
use serment_client::contacts;
use serment_core::Error;
use serment_core::document::{Header, Metadata};

use crate::common::*;

#[test]
fn metadata_tampering_name_date_author_type_bytes_flipped() {
    let mut w = World::new();
    let body = b"{\"resourceType\":\"DiagnosticReport\",\"status\":\"final\"}";
    let m = meta(body, "Compte-rendu-NFS");
    let r = w
        .lab
        .put(body.as_slice(), m.clone(), &[PATIENT.to_owned()])
        .unwrap();
    let json = m.to_json().unwrap();
    let blob = w.blob(&r);
    // AES-GCM is a stream cipher: plaintext byte i of chunk 0 sits at ciphertext byte
    // Header::LEN + i. Flip exactly the bytes of each field's value.
    let fields = [
        ("title (name)", "Compte-rendu-NFS"),
        ("file name", "Compte-rendu-NFS.json"),
        ("created (date)", "2025-03-14T09:26:53+01:00"),
        ("author_display (author)", "Laboratoire BioMed Centre"),
        ("resource_type (type)", "DiagnosticReport"),
    ];
    for (what, value) in fields {
        let needle = format!("\"{value}\"");
        let at = json
            .windows(needle.len())
            .position(|x| x == needle.as_bytes())
            .unwrap_or_else(|| panic!("{what} not in the metadata"))
            + 1;
        let mut bad = blob.clone();
        bad[Header::LEN + 4 + at] ^= b'A' ^ b'B';
        w.h.clear_hooks();
        serve_blob(&w.h, &r.doc_id, 1, bad);
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert!(matches!(integrity(&e), Error::Decrypt), "{what}: {e:?}");
    }
    w.h.clear_hooks();
    let (_, got) = read(&mut w.patient, &r.doc_id, Some(1)).unwrap();
    assert_eq!(got.opened.metadata, m);
    assert_eq!(got.author, LAB);
}

#[test]
fn metadata_tampering_server_visible_fields_are_not_trusted() {
    let mut w = World::new();
    let body = b"{\"resourceType\":\"Observation\"}";
    let m = meta(body, "Glycemie");
    let r = w
        .lab
        .put(body.as_slice(), m.clone(), &[PATIENT.to_owned()])
        .unwrap();
    // The server lies about size, time and listing: the sealed metadata is what the client shows.
    w.h.on_response(&version_route(&r.doc_id, 1), |ex| {
        let mut j = ex.json();
        j["size"] = json!(1);
        j["created_at"] = json!(0);
        ex.set_json(&j);
    });
    w.h.on_response("GET /v1/documents", |ex| {
        let mut j = ex.json();
        for d in j["documents"].as_array_mut().unwrap() {
            d["created_at"] = json!(4_102_444_800i64);
            d["size"] = json!(999_999_999);
        }
        ex.set_json(&j);
    });
    let (out, got) = read(&mut w.patient, &r.doc_id, None).unwrap();
    assert_eq!(out, body);
    assert_eq!(got.opened.metadata, m);
    assert_eq!(got.author, LAB);
}

#[test]
fn metadata_tampering_author_rewritten_to_another_pinned_contact() {
    let mut w = World::new();
    contacts::add(&w.patient.api, &mut w.patient.ks, GP).unwrap();
    let r = w.put(b"{}", "x", &[PATIENT]);
    let gp_dev = w.gp.ks.device.id().to_string();
    w.h.on_response(&version_route(&r.doc_id, 1), move |ex| {
        let mut j = ex.json();
        j["author_device"] = json!(gp_dev);
        ex.set_json(&j);
    });
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            // The wrap's sharer (the real author) is not the claimed author and not a device
            // of the reader's own identity (PROTOCOL.md §4.1): refused there, or at the
            // document's signature.
            Error::WrongSigner {
                what: "document" | "key wrap",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn metadata_tampering_display_name_cannot_impersonate_the_author() {
    // A malicious co-tenant the patient pinned writes the lab's display name into its own sealed
    // metadata: the client reports the author from the verified device (the pinned handle), and
    // the display name only as the author wrote it.
    let mut w = World::new();
    let mut mallory = w.h.party("mallory");
    contacts::add(&mallory.api, &mut mallory.ks, PATIENT).unwrap();
    contacts::add(&w.patient.api, &mut w.patient.ks, "mallory").unwrap();
    let m = Metadata {
        author_display: Some("Laboratoire BioMed Centre".into()),
        ..meta(b"{}", "Bilan")
    };
    let r = mallory
        .put(b"{}".as_slice(), m, &[PATIENT.to_owned()])
        .unwrap();
    let (_, got) = read(&mut w.patient, &r.doc_id, Some(1)).unwrap();
    assert_eq!(got.author, "mallory");
}
