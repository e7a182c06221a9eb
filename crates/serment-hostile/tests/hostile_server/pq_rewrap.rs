//! `serment rewrap --pq` (issue 15, PROTOCOL.md §7.2): a store built with the classical suite
//! (every device without an X-Wing key, every wrap X25519) is converted once the devices have
//! upgraded: each classical wrap is replaced by a logged X-Wing wrap, the server keeps no
//! classical wrap, `verify-log` still passes and every reader still opens every document.

use serment_client::contacts;
use serment_client::keystore::Keystore;
use serment_client::vault::Session;
use serment_core::keystore::KdfParams;
use serment_core::wrap::{WrapKem, WrappedKey};
use serment_hostile::harness::Hostile;
use zeroize::Zeroizing;

use crate::common::*;

fn classical(h: &Hostile, handle: &str) -> Session {
    let mut ks = Keystore::create(
        &h.keystore_path(handle),
        Zeroizing::new(format!("passphrase of {handle}")),
        handle,
        handle,
        KdfParams::FLOOR,
    )
    .unwrap();
    ks.use_classical_device_for_tests();
    ks.save().unwrap();
    Session::register(ks, h.url()).unwrap()
}

fn suites_stored(h: &Hostile) -> Vec<u16> {
    h.sql("SELECT wrap FROM wraps")
        .iter()
        .map(|r| {
            let w = r[0].1.clone().unwrap();
            u16::from_be_bytes([w[6], w[7]])
        })
        .collect()
}

#[test]
fn pq_rewrap_all_converts_a_classical_store_and_verify_log_passes() {
    let h = Hostile::new();
    let mut lab = classical(&h, LAB);
    let mut gp = classical(&h, GP);
    let mut patient = classical(&h, PATIENT);
    for c in [GP, PATIENT] {
        contacts::add(&lab.api, &mut lab.ks, c).unwrap();
    }
    for p in [&mut gp, &mut patient] {
        contacts::add(&p.api, &mut p.ks, LAB).unwrap();
    }
    let to = [GP.to_owned(), PATIENT.to_owned()];
    let mut docs = Vec::new();
    for i in 0..3u8 {
        let c = content(3000 + usize::from(i) * 70_000, i);
        docs.push((lab.put(&c[..], meta(&c, "report"), &to).unwrap().doc_id, c));
    }
    assert!(
        suites_stored(&h).iter().all(|s| *s == 1),
        "a classical store"
    );
    assert_eq!(suites_stored(&h).len(), 9);

    // Every device upgrades; the GP's and the patient's clients keep reading old documents.
    for s in [&mut lab, &mut gp, &mut patient] {
        s.upgrade_device().unwrap();
    }
    let done = lab.rewrap_pq(None).unwrap();
    assert_eq!(done.len(), 3);
    for d in &done {
        assert_eq!(d.rewrapped.len(), 3, "author, GP and patient: {d:?}");
        assert_eq!(d.log_indices.len(), 3);
        assert!(d.still_classical.is_empty());
    }
    // The server deleted every classical wrap: one X-Wing wrap per recipient remains.
    let stored = suites_stored(&h);
    assert_eq!(stored.len(), 9, "{stored:?}");
    assert!(stored.iter().all(|s| *s == 3), "{stored:?}");
    // Running it again finds nothing to do.
    assert!(
        lab.rewrap_pq(None)
            .unwrap()
            .iter()
            .all(|d| d.rewrapped.is_empty())
    );

    for (doc, c) in &docs {
        for reader in [&mut gp, &mut patient, &mut lab] {
            let (out, r) = read(reader, doc, Some(1)).unwrap();
            assert_eq!(&out, c);
            assert_eq!(r.kem, WrapKem::XWing);
        }
    }
    let w = WrappedKey::decode(&stored_wrap(&h, &docs[0].0, 1, &patient.ks.device.id())).unwrap();
    assert_eq!(w.kem, WrapKem::XWing);

    let t = serment_client::log::trust(&patient.api, &patient.ks).unwrap();
    let report = serment_client::log::verify_log(&patient.api, &t).unwrap();
    assert!(report.verified(), "{report:?}");
}

/// A document not authored by this device cannot be re-wrapped by it (version 1: only the
/// author device shares).
#[test]
fn pq_rewrap_of_a_document_the_device_did_not_author_is_refused() {
    let mut w = World::new();
    let r = w.put(b"{}", "x", &[PATIENT]);
    let e = w.patient.rewrap_pq(Some(&[r.doc_id])).unwrap_err();
    assert!(
        matches!(e, serment_client::ClientError::NotAuthor { .. }),
        "{e:?}"
    );
}
