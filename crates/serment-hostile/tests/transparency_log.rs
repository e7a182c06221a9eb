//! Issue 6: the server attacks the transparency log (PROTOCOL.md §11), and the client catches it.
//! Each test is named after its attack; the hostile server is the intercepting proxy of
//! `serment_hostile::harness` (rewritten or replayed answers) and direct edits of its database
//! made with its own log key (a malicious operator appending what it likes, properly hashed and
//! signed). `docs/THREAT_MODEL.md` maps each test to the client check it exercises.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;

use serde_json::{Value, json};
use serment_client::ClientError;
use serment_client::contacts;
use serment_client::keystore::Keystore;
use serment_client::vault::{PutResult, Session};
use serment_core::document::Metadata;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::keystore::KdfParams;
use serment_core::log::entry::{Access, EntryKind, LogEntry, Payload, PrevLink, encode_entry};
use serment_core::log::note::{Checkpoint, KEY_TYPE_ED25519, NoteSigner, SignedCheckpoint};
use serment_core::log::tree::{self, Hash, NodeId};
use serment_core::{DocId, Error};
use serment_hostile::harness::{Hostile, b64};
use zeroize::Zeroizing;

const LAB: &str = "labo-biomed";
const GP: &str = "dr-generaliste";
const PATIENT: &str = "patient-7f3a";

struct World {
    h: Hostile,
    lab: Session,
    gp: Session,
    patient: Session,
}

fn world() -> World {
    let h = Hostile::new();
    let mut lab = h.party(LAB);
    let mut gp = h.party(GP);
    let mut patient = h.party(PATIENT);
    for c in [GP, PATIENT] {
        contacts::add(&lab.api, &mut lab.ks, c).unwrap();
    }
    for p in [&mut gp, &mut patient] {
        contacts::add(&p.api, &mut p.ks, LAB).unwrap();
    }
    World {
        h,
        lab,
        gp,
        patient,
    }
}

fn meta(content: &[u8]) -> Metadata {
    Metadata {
        content_length: content.len() as u64,
        mime_type: Some("application/fhir+json".into()),
        title: Some("t".into()),
        ..Metadata::default()
    }
}

fn put(w: &mut World, to: &[&str]) -> PutResult {
    let to: Vec<String> = to.iter().map(|s| (*s).to_owned()).collect();
    let c = b"{\"resourceType\":\"Observation\"}";
    w.lab.put(c.as_slice(), meta(c), &to).unwrap()
}

fn read(s: &mut Session, doc: &DocId) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    s.get(doc, Some(1), &mut out)?;
    Ok(out)
}

fn is_log(e: &ClientError, f: impl Fn(&Error) -> bool) -> bool {
    matches!(e, ClientError::Log(inner) if f(inner))
}

// ---- a malicious operator writing its own log entries ------------------------------------------

fn log_signer(h: &Hostile) -> NoteSigner {
    let seed_hex = std::fs::read_to_string(h.data_dir().join("log.key")).unwrap();
    let mut seed = [0u8; 32];
    hex::decode_to_slice(seed_hex.trim(), &mut seed).unwrap();
    let origin = latest_note(h).checkpoint.origin;
    NoteSigner::new(&origin, KEY_TYPE_ED25519, &seed).unwrap()
}

fn latest_note(h: &Hostile) -> SignedCheckpoint {
    let rows = h.sql("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1");
    SignedCheckpoint::parse(&String::from_utf8(rows[0][0].1.clone().unwrap()).unwrap()).unwrap()
}

fn int(v: &Option<Vec<u8>>) -> u64 {
    String::from_utf8(v.clone().unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

fn nodes(h: &Hostile) -> HashMap<NodeId, Hash> {
    h.sql("SELECT level, idx, hash FROM log_nodes")
        .into_iter()
        .map(|r| {
            (
                NodeId {
                    level: int(&r[0].1) as u8,
                    index: int(&r[1].1),
                },
                r[2].1.clone().unwrap().try_into().unwrap(),
            )
        })
        .collect()
}

/// Appends an entry the way the server does (chained, hashed into the tree, new checkpoint
/// signed with the log key), straight into the database.
fn operator_append(
    h: &Hostile,
    subject: &str,
    kind: EntryKind,
    device: &str,
    payload: &[u8],
) -> u64 {
    let n = int(&h.sql("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries")[0][0].1);
    let prev = h
        .sql(&format!(
            "SELECT idx, leaf_hash FROM log_entries WHERE subject = '{subject}' ORDER BY idx DESC LIMIT 1"
        ))
        .first()
        .map(|r| PrevLink {
            index: int(&r[0].1),
            leaf_hash: r[1].1.clone().unwrap().try_into().unwrap(),
        });
    let entry = encode_entry(kind, 1_800_000_000, prev, payload).unwrap();
    let leaf = tree::leaf_hash(&entry);
    let mut map = nodes(h);
    for (node, hash) in tree::append(n, leaf, &map).unwrap() {
        h.sql_exec(&format!(
            "INSERT INTO log_nodes (level, idx, hash) VALUES ({}, {}, {})",
            node.level,
            node.index,
            h.bytes_literal(&hash)
        ));
        map.insert(node, hash);
    }
    h.sql_exec(&format!(
        "INSERT INTO log_entries (idx, kind, subject, device_id, entry, leaf_hash, logged_at) \
         VALUES ({n}, {}, '{subject}', '{device}', {}, {}, 1800000000)",
        kind as u8,
        h.bytes_literal(&entry),
        h.bytes_literal(&leaf)
    ));
    let signer = log_signer(h);
    let cp = Checkpoint {
        origin: signer.name().to_owned(),
        size: n + 1,
        root: tree::root(n + 1, &map).unwrap(),
    };
    let note = signer.sign_checkpoint(&cp).unwrap().encode().unwrap();
    h.sql_exec(&format!(
        "INSERT INTO log_checkpoints (size, note) VALUES ({}, '{}')",
        n + 1,
        note.replace('\'', "''")
    ));
    n
}

/// The patient's first access entry (wrap fetch) of `doc`.
fn first_access(h: &Hostile, doc: &DocId) -> Access {
    for r in h.sql(&format!(
        "SELECT entry FROM log_entries WHERE subject = 'd:{doc}' AND kind = 6 ORDER BY idx"
    )) {
        if let Payload::Access(a) = LogEntry::decode(&r[0].1.clone().unwrap()).unwrap().payload {
            return a;
        }
    }
    panic!("no access entry");
}

// ---- the tests ---------------------------------------------------------------------------------

#[test]
fn key_substitution_for_a_contact_on_first_contact_is_caught_by_the_log() {
    // The GP has never seen the patient. The server answers the directory and the log history
    // with a key it controls, keeping the real inclusion proofs.
    let w = world();
    let ident = IdentitySecret::generate();
    let dev = DeviceSecret::generate();
    let forged = ident
        .sign_device_record(PATIENT, &dev, 1_700_000_000)
        .unwrap();
    let f2 = forged.clone();
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&f2)] }));
    });
    w.h.on_response(&format!("GET /v1/log/identity/{PATIENT}"), move |ex| {
        let mut j = ex.json();
        let e = encode_entry(EntryKind::Device, 1, None, &forged).unwrap();
        j["entries"] = json!([{ "index": j["entries"][0]["index"], "entry": b64(&e), "proof": j["entries"][0]["proof"] }]);
        ex.set_json(&j);
    });
    let mut gp = w.gp;
    let e = contacts::add(&gp.api, &mut gp.ks, PATIENT).unwrap_err();
    assert!(
        is_log(&e, |i| matches!(i, Error::BadInclusionProof)),
        "{e:?}"
    );
}

#[test]
fn old_key_replayed_with_its_old_proof_after_rotation_is_refused() {
    let mut w = world();
    let old_answer = w.h.last(&format!("GET /v1/log/identity/{PATIENT}"));
    let old_dir = w.h.last(&format!("GET /v1/directory/{PATIENT}"));
    // The patient rotates its identity key; the lab's client moves on to a newer checkpoint.
    w.patient.rotate_identity().unwrap();
    w.lab.checkpoint_note().unwrap();
    // The server replays the old history (valid proofs against the old checkpoint) and the old
    // directory answer: the rotated-away key.
    let (a, d) = (old_answer.response.clone(), old_dir.response.clone());
    w.h.on_response(&format!("GET /v1/log/identity/{PATIENT}"), move |ex| {
        ex.set_body(a.clone())
    });
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_body(d.clone())
    });
    let e = contacts::add(&w.lab.api, &mut w.lab.ks, PATIENT).unwrap_err();
    assert!(is_log(&e, |i| matches!(i, Error::Rollback { .. })), "{e:?}");
    // Honest answers: the lab follows the rotation (signed by the old key) to the new key.
    w.h.clear_hooks();
    let (c, _) = contacts::add(&w.lab.api, &mut w.lab.ks, PATIENT).unwrap();
    assert_eq!(c.identity_id, w.patient.ks.identity.id());
}

#[test]
fn checkpoint_rollback_is_refused() {
    let mut w = world();
    let old = w.h.last("GET /v1/log/checkpoint");
    put(&mut w, &[PATIENT]);
    w.patient.checkpoint_note().unwrap();
    let body = old.response.clone();
    w.h.on_response("GET /v1/log/checkpoint", move |ex| {
        ex.set_body(body.clone())
    });
    let e = w.patient.checkpoint_note().unwrap_err();
    assert!(is_log(&e, |i| matches!(i, Error::Rollback { .. })), "{e:?}");
}

/// Red team 3: a patient who only reads (`get`, `ls`) must still persist the checkpoint it
/// verified, so that the server's database restored from an older copy is caught on the next
/// run of the client (a fresh session from the keystore on disk).
#[test]
fn rollback_of_the_server_database_is_caught_by_a_read_only_patient() {
    let mut w = world();
    let snap = w.h.snapshot_db();
    let doc = put(&mut w, &[PATIENT]).doc_id;
    read(&mut w.patient, &doc).unwrap();
    w.h.restore_db(&snap);
    let reopen = || {
        let ks = Keystore::open(
            &w.h.keystore_path(PATIENT),
            Zeroizing::new(format!("passphrase of {PATIENT}")),
        )
        .unwrap();
        Session::connect(ks, None).unwrap()
    };
    let rolled_back = |e: &ClientError| {
        is_log(e, |i| {
            matches!(i, Error::Rollback { .. } | Error::Fork { .. })
        })
    };
    let e = reopen().list().unwrap_err();
    assert!(rolled_back(&e), "ls: {e:?}");
    let e = read(&mut reopen(), &doc).unwrap_err();
    assert!(rolled_back(&e), "get: {e:?}");
}

/// Red team 6: a log key replaced on the server is `LogKeyChanged` (exit 4) for any command: on
/// connecting, and when a checkpoint signed by the new key fails to verify mid-session.
#[test]
fn replaced_log_key_is_log_key_changed() {
    let w = world();
    let mut patient = w.patient;
    let origin = latest_note(&w.h).checkpoint.origin;
    let other = NoteSigner::new(&origin, KEY_TYPE_ED25519, &[42; 32]).unwrap();
    let vkey = other.verifier().encode();
    let o = origin.clone();
    w.h.on_response("GET /v1/log/key", move |ex| {
        ex.set_json(&json!({ "origin": o, "vkey": vkey }));
    });
    let cp = latest_note(&w.h).checkpoint;
    let note = other.sign_checkpoint(&cp).unwrap().encode().unwrap();
    w.h.on_response("GET /v1/log/checkpoint", move |ex| {
        ex.set_json(&json!({ "checkpoint": note }));
    });
    let e = patient.checkpoint_note().unwrap_err();
    assert!(matches!(e, ClientError::LogKeyChanged { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    let ks = Keystore::open(
        &w.h.keystore_path(PATIENT),
        Zeroizing::new(format!("passphrase of {PATIENT}")),
    )
    .unwrap();
    let e = Session::connect(ks, None).unwrap_err();
    assert!(matches!(e, ClientError::LogKeyChanged { .. }), "{e:?}");
}

/// A fork: a checkpoint signed with the real log key for a tree that is not an extension of the
/// real one (the view the server would give a second client).
fn forked_note(w: &World) -> String {
    let real = latest_note(&w.h).checkpoint;
    let signer = log_signer(&w.h);
    let fork = Checkpoint {
        origin: real.origin,
        size: real.size + 3,
        root: [0x5a; 32],
    };
    signer.sign_checkpoint(&fork).unwrap().encode().unwrap()
}

#[test]
fn split_view_caught_when_two_clients_compare_checkpoints() {
    let mut w = world();
    let fork = forked_note(&w);
    // The GP was shown the fork; it gossips its checkpoint to the patient.
    let e = w.patient.compare_checkpoint(&fork).unwrap_err();
    assert!(matches!(e, ClientError::SplitView(_)), "{e:?}");
    // Two honest views compare fine.
    let gp_note = w.gp.checkpoint_note().unwrap();
    w.patient.compare_checkpoint(&gp_note).unwrap();
}

#[test]
fn split_view_caught_through_the_witness_quorum() {
    let mut w = world();
    let wdir = w.h.root().join("witness");
    let mut witness = serment_client::witness::Witness::open(&wdir, "witness.test/w1").unwrap();
    witness.step(&w.patient.api).unwrap();
    let base = w.patient.api.base().to_owned();
    serment_client::log::set_witnesses(&mut w.patient.ks, &base, &[witness.vkey()], 1).unwrap();
    // The real checkpoint is cosigned: accepted.
    w.patient.checkpoint_note().unwrap();
    // The patient is shown a forked tree the witness never saw.
    let fork = forked_note(&w);
    w.h.on_response("GET /v1/log/checkpoint", move |ex| {
        ex.set_json(&json!({ "checkpoint": fork }));
    });
    let e = w.patient.checkpoint_note().unwrap_err();
    assert!(
        is_log(&e, |i| matches!(i, Error::NoQuorum { have: 0, need: 1 })),
        "{e:?}"
    );
}

#[test]
fn own_revocation_left_out_of_the_log_is_detected() {
    let mut w = world();
    // A second device of the patient's identity.
    let mut ks = Keystore::create(
        &w.h.root().join("homes/patient-2/keystore.srmk"),
        Zeroizing::new("passphrase of patient-2".into()),
        PATIENT,
        "Patient, phone",
        KdfParams::FLOOR,
    )
    .unwrap();
    ks.identity = w.patient.ks.identity.clone();
    let phone = Session::register(ks, w.h.url()).unwrap();
    // The server acknowledges the revocation but never logs it: it answers itself, pointing at
    // another entry.
    w.h.on_request("POST /v1/log/revocations", |ex| {
        ex.answered = true;
        ex.status = 201;
        ex.set_json(&json!({ "log_indices": [0] }));
    });
    let e = w.patient.revoke_device(&phone.ks.device.id()).unwrap_err();
    assert!(matches!(e, ClientError::OwnWriteMissing(_)), "{e:?}");
    // Honestly logged, it passes, and the lab no longer offers the phone a key.
    w.h.clear_hooks();
    w.patient.revoke_device(&phone.ks.device.id()).unwrap();
    let (c, _) = contacts::add(&w.lab.api, &mut w.lab.ks, PATIENT).unwrap();
    assert!(
        c.devices
            .iter()
            .all(|d| d.device_id() != phone.ks.device.id())
    );
}

/// The patient reads `doc` (two access entries: wrap and blob), then the GP too.
fn accessed_doc(w: &mut World) -> DocId {
    let r = put(w, &[PATIENT, GP]);
    read(&mut w.patient, &r.doc_id).unwrap();
    read(&mut w.gp, &r.doc_id).unwrap();
    r.doc_id
}

fn rewrite_doc_log(w: &World, doc: &DocId, f: impl Fn(&mut Vec<Value>) + Send + Sync + 'static) {
    w.h.on_response(&format!("GET /v1/documents/{doc}/log"), move |ex| {
        let mut j = ex.json();
        let mut v: Vec<Value> = serde_json::from_value(j["entries"].clone()).unwrap();
        f(&mut v);
        j["entries"] = json!(v);
        ex.set_json(&j);
    });
}

#[test]
fn audit_entries_reordered_are_refused() {
    let mut w = world();
    let doc = accessed_doc(&mut w);
    assert_eq!(w.patient.audit(&doc).unwrap().len(), 4);
    let n = w.patient.audit(&doc).unwrap().len();
    assert_eq!(n, 4);
    rewrite_doc_log(&w, &doc, |v| {
        let l = v.len();
        v.swap(l - 1, l - 2);
    });
    let e = w.patient.audit(&doc).unwrap_err();
    assert!(is_log(&e, |i| matches!(i, Error::History { .. })), "{e:?}");
}

#[test]
fn audit_entry_missing_is_refused() {
    let mut w = world();
    let doc = accessed_doc(&mut w);
    // The server hides the patient's blob fetch (the third entry after the wraps).
    rewrite_doc_log(&w, &doc, |v| {
        let l = v.len();
        v.remove(l - 3);
    });
    let e = w.patient.audit(&doc).unwrap_err();
    assert!(is_log(&e, |i| matches!(i, Error::History { .. })), "{e:?}");
}

#[test]
fn audit_access_receipt_replayed_is_refused() {
    let mut w = world();
    let doc = accessed_doc(&mut w);
    // The operator appends a second access by the patient reusing its first receipt.
    let a = first_access(&w.h, &doc);
    let payload = Access::sign(
        log_signer(&w.h).signing_key(),
        &a.doc_id,
        a.doc_version,
        a.what,
        &a.device_id,
        a.at,
        &a.nonce,
        a.receipt.as_ref(),
    );
    operator_append(
        &w.h,
        &format!("d:{doc}"),
        EntryKind::Access,
        &a.device_id.to_string(),
        &payload,
    );
    let e = w.patient.audit(&doc).unwrap_err();
    assert!(is_log(&e, |i| matches!(i, Error::History { .. })), "{e:?}");
}

#[test]
fn audit_access_reflected_as_another_device_is_refused() {
    let mut w = world();
    let doc = accessed_doc(&mut w);
    // The operator logs the patient's receipt as an access by the GP's device.
    let a = first_access(&w.h, &doc);
    let gp_dev = w.gp.ks.device.id();
    let payload = Access::sign(
        log_signer(&w.h).signing_key(),
        &a.doc_id,
        a.doc_version,
        a.what,
        &gp_dev,
        a.at,
        &a.nonce,
        a.receipt.as_ref(),
    );
    operator_append(
        &w.h,
        &format!("d:{doc}"),
        EntryKind::Access,
        &gp_dev.to_string(),
        &payload,
    );
    let e = w.patient.audit(&doc).unwrap_err();
    assert!(
        is_log(&e, |i| matches!(i, Error::BadSignature { .. })),
        "{e:?}"
    );
}

#[test]
fn tampered_checkpoint_signature_is_refused() {
    let mut w = world();
    w.h.on_response("GET /v1/log/checkpoint", |ex| {
        let mut j = ex.json();
        let note = j["checkpoint"].as_str().unwrap().to_owned();
        let mut s = SignedCheckpoint::parse(&note).unwrap();
        s.signatures[0].payload[10] ^= 1;
        j["checkpoint"] = json!(s.encode().unwrap());
        ex.set_json(&j);
    });
    let e = w.patient.checkpoint_note().unwrap_err();
    assert!(
        is_log(&e, |i| matches!(i, Error::BadSignature { .. })),
        "{e:?}"
    );
}

#[test]
fn proof_for_the_wrong_leaf_index_is_refused() {
    let mut w = world();
    let r = put(&mut w, &[PATIENT]);
    w.h.on_response(
        &format!("GET /v1/documents/{}/versions/1", r.doc_id),
        |ex| {
            let mut j = ex.json();
            let i = j["wrap_entry"]["index"].as_u64().unwrap();
            j["wrap_entry"]["index"] = json!(i - 1);
            ex.set_json(&j);
        },
    );
    let e = read(&mut w.patient, &r.doc_id).unwrap_err();
    assert!(
        is_log(&e, |i| matches!(i, Error::BadInclusionProof)),
        "{e:?}"
    );
}

#[test]
fn honest_log_passes_every_check() {
    let mut w = world();
    let doc = accessed_doc(&mut w);
    let lines = w.patient.audit(&doc).unwrap();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().any(|l| l.handle == GP));
    let t = serment_client::log::trust(&w.patient.api, &w.patient.ks).unwrap();
    let report = serment_client::log::verify_log(&w.patient.api, &t).unwrap();
    assert!(report.verified(), "{report:?}");
    assert_eq!(report.unreceipted_accesses, 0);
    assert!(lines.iter().all(|l| l.receipted), "{lines:?}");
}

#[test]
fn audit_shows_an_access_without_receipt_flagged_among_the_proven_ones() {
    let mut w = world();
    let doc = accessed_doc(&mut w);
    // A stolen credential (or the server itself) fetches the patient's wrap without the
    // patient's receipt: the log records a server-attested access.
    w.patient.api.version(&doc, 1).unwrap();
    let lines = w.patient.audit(&doc).unwrap();
    assert_eq!(lines.len(), 5, "{lines:?}");
    let flagged: Vec<_> = lines.iter().filter(|l| !l.receipted).collect();
    assert_eq!(flagged.len(), 1, "{lines:?}");
    assert_eq!(flagged[0].handle, PATIENT);
    assert_eq!(flagged[0].what, "wrap");
    // The receipted accesses are still all there, proven.
    assert_eq!(lines.iter().filter(|l| l.receipted).count(), 4);
    let t = serment_client::log::trust(&w.patient.api, &w.patient.ks).unwrap();
    let report = serment_client::log::verify_log(&w.patient.api, &t).unwrap();
    assert_eq!(report.unreceipted_accesses, 1);
}

/// The server names `device` (hex) as the author of every document it lists.
fn list_every_document_as_authored_by(w: &World, device: String) {
    w.h.on_response("GET /v1/documents", move |ex| {
        let mut j = ex.json();
        if let Some(docs) = j["documents"].as_array_mut() {
            for d in docs {
                d["author_device"] = json!(device.clone());
            }
        }
        ex.set_json(&j);
    });
}

#[test]
fn audit_all_covers_a_document_hidden_from_the_listing() {
    let mut w = world();
    let doc = accessed_doc(&mut w);
    // A stolen credential fetches the patient's wrap without a receipt, then the server leaves
    // the document out of the patient's listing to hide that access.
    w.patient.api.version(&doc, 1).unwrap();
    let hidden = doc.to_string();
    w.h.on_response("GET /v1/documents", move |ex| {
        let mut j = ex.json();
        if let Some(docs) = j["documents"].as_array_mut() {
            docs.retain(|d| d["doc_id"] != hidden.as_str());
        }
        ex.set_json(&j);
    });
    assert!(w.patient.list().unwrap().is_empty());
    let all = w.patient.audit_all().unwrap();
    assert_eq!(all.unlisted, [doc.to_string()]);
    let lines: Vec<_> = all.documents.iter().flat_map(|(_, l)| l).collect();
    assert_eq!(
        lines.iter().filter(|l| !l.receipted).count(),
        1,
        "{lines:?}"
    );
}

#[test]
fn a_listing_that_contradicts_a_verified_author_is_refused() {
    let mut w = world();
    let doc = accessed_doc(&mut w);
    let gp_dev = w.gp.ks.device.id().to_string();
    list_every_document_as_authored_by(&w, gp_dev);
    // The patient verified the lab's signature on it: the listing cannot move it to the GP.
    let e = w.patient.list().unwrap_err();
    assert!(matches!(e, ClientError::Integrity(_)), "{e:?}");
    let _ = doc;
}

#[test]
fn share_decides_authorship_from_what_this_device_verified() {
    let mut w = world();
    let r = put(&mut w, &[PATIENT]);
    read(&mut w.patient, &r.doc_id).unwrap();
    contacts::add(&w.patient.api, &mut w.patient.ks, GP).unwrap();
    let before = w.patient.accesses(&r.doc_id).unwrap().len();
    // The server names the patient as the author in every listing: the patient verified the
    // lab's signature, so it refuses without fetching anything.
    let me = w.patient.ks.device.id().to_string();
    list_every_document_as_authored_by(&w, me);
    let e = w
        .patient
        .share(&r.doc_id, Some(1), &[GP.to_owned()])
        .unwrap_err();
    assert!(matches!(e, ClientError::NotAuthor { .. }), "{e:?}");
    assert_eq!(w.patient.accesses(&r.doc_id).unwrap().len(), before);
}

#[test]
fn a_device_falsely_called_revoked_is_told_the_log_disagrees() {
    let w = world();
    w.h.on_response("POST /v1/auth/challenge", |ex| {
        ex.status = 403;
        ex.set_json(&json!({ "error": { "code": "device_revoked", "message": "revoked" } }));
    });
    let path = w.h.keystore_path(PATIENT);
    drop(w.patient);
    let ks = Keystore::open(&path, Zeroizing::new(format!("passphrase of {PATIENT}"))).unwrap();
    let e = Session::connect(ks, None).unwrap_err();
    assert!(is_log(&e, |i| matches!(i, Error::History { .. })), "{e:?}");
}

#[test]
fn share_by_the_author_is_co_signed_and_audits_clean() {
    let mut w = world();
    let r = put(&mut w, &[PATIENT]);
    w.lab.share(&r.doc_id, None, &[GP.to_owned()]).unwrap();
    read(&mut w.gp, &r.doc_id).unwrap();
    for s in [&mut w.lab, &mut w.gp, &mut w.patient] {
        let lines = s.audit(&r.doc_id).unwrap();
        assert!(lines.iter().all(|l| l.receipted), "{lines:?}");
    }
    // The author's own wrap fetch during `share` is a receipted access by the lab.
    let lines = w.lab.audit(&r.doc_id).unwrap();
    assert!(
        lines.iter().any(|l| l.handle == LAB && l.what == "wrap"),
        "{lines:?}"
    );
}

#[test]
fn share_by_a_recipient_is_refused_as_not_the_author() {
    let mut w = world();
    let r = put(&mut w, &[PATIENT]);
    contacts::add(&w.patient.api, &mut w.patient.ks, GP).unwrap();
    let e = w
        .patient
        .share(&r.doc_id, None, &[GP.to_owned()])
        .unwrap_err();
    assert!(matches!(e, ClientError::NotAuthor { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 2);
    // The listing is only a hint: a server that names the patient as the author in it still
    // cannot make the patient sign for the lab's wrap (its signature is the lab's).
    let me = w.patient.ks.device.id().to_string();
    list_every_document_as_authored_by(&w, me);
    let e = w
        .patient
        .share(&r.doc_id, None, &[GP.to_owned()])
        .unwrap_err();
    assert!(matches!(e, ClientError::NotAuthor { .. }), "{e:?}");
}

// ---- the proofs a commit's answer carries (PROTOCOL.md §8.3, §11.7) ---------------------------

/// Rewrites the `log` object of every commit answer.
fn rewrite_commit_proof(w: &World, f: impl Fn(&mut Value) + Send + Sync + 'static) {
    w.h.on_response("POST /v1/documents", move |ex| {
        let mut j = ex.json();
        f(&mut j["log"]);
        ex.set_json(&j);
    });
}

fn put_err(w: &mut World) -> ClientError {
    let c = b"{\"resourceType\":\"Observation\"}";
    w.lab
        .put(c.as_slice(), meta(c), &[PATIENT.to_owned()])
        .unwrap_err()
}

#[test]
fn commit_is_one_request_with_its_own_proofs() {
    let mut w = world();
    put(&mut w, &[PATIENT]);
    let to = w
        .lab
        .recipients(&[PATIENT.to_owned(), GP.to_owned()])
        .unwrap();
    let c = b"{\"resourceType\":\"Observation\"}";
    let doc = DocId::random().unwrap();
    let before = w.h.exchanges().len();
    let r = w
        .lab
        .put_version(c.as_slice(), meta(c), doc, 1, &to)
        .unwrap();
    let calls: Vec<String> = w.h.exchanges()[before..]
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(calls, ["POST /v1/documents"], "{calls:?}");
    // The pin moved to the commit's checkpoint, and the entries are really there.
    let pinned = serment_client::log::pinned(&w.lab.api, &w.lab.ks)
        .unwrap()
        .unwrap();
    assert_eq!(pinned.size, latest_note(&w.h).checkpoint.size);
    assert_eq!(
        read(&mut w.patient, &r.doc_id).unwrap(),
        b"{\"resourceType\":\"Observation\"}"
    );
}

#[test]
fn commit_proof_with_another_entry_is_refused() {
    let mut w = world();
    put(&mut w, &[PATIENT]);
    rewrite_commit_proof(&w, |log| {
        // Serve the entry of the previous commit instead of the new wrap.
        let e = log["entries"][0]["entry"].as_str().unwrap().to_owned();
        let mut bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, e).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        log["entries"][0]["entry"] = json!(b64(&bytes));
    });
    let e = put_err(&mut w);
    assert!(
        is_log(&e, |i| matches!(i, Error::BadInclusionProof)),
        "{e:?}"
    );
}

#[test]
fn commit_proof_with_a_forged_consistency_proof_is_a_fork() {
    let mut w = world();
    put(&mut w, &[PATIENT]);
    rewrite_commit_proof(&w, |log| {
        let n = log["consistency"].as_array().unwrap().len();
        assert!(n > 0, "a pinned client gets a consistency proof");
        log["consistency"][0] = json!(b64(&[7u8; 32]));
    });
    let e = put_err(&mut w);
    assert!(
        is_log(&e, |i| matches!(
            i,
            Error::Fork { .. } | Error::BadConsistencyProof
        )),
        "{e:?}"
    );
}

#[test]
fn commit_proof_with_a_tampered_checkpoint_is_refused() {
    let mut w = world();
    rewrite_commit_proof(&w, |log| {
        let note = log["checkpoint"].as_str().unwrap().to_owned();
        let mut s = SignedCheckpoint::parse(&note).unwrap();
        s.checkpoint.size += 1;
        log["checkpoint"] = json!(s.encode().unwrap());
    });
    let e = put_err(&mut w);
    assert!(
        is_log(&e, |i| matches!(i, Error::BadSignature { .. })),
        "{e:?}"
    );
}

#[test]
fn commit_proof_left_out_falls_back_to_fetched_proofs() {
    let mut w = world();
    w.h.on_response("POST /v1/documents", |ex| {
        let mut j = ex.json();
        j.as_object_mut().unwrap().remove("log");
        ex.set_json(&j);
    });
    let r = put(&mut w, &[PATIENT]);
    let paths: Vec<String> = w.h.exchanges().iter().map(|e| e.path.clone()).collect();
    assert!(
        paths.iter().any(|p| p.starts_with("/v1/log/proof")),
        "{paths:?}"
    );
    assert_eq!(
        read(&mut w.patient, &r.doc_id).unwrap(),
        b"{\"resourceType\":\"Observation\"}"
    );
}

#[test]
fn commit_proof_from_another_size_is_not_trusted() {
    let mut w = world();
    put(&mut w, &[PATIENT]);
    // A consistency proof from a size the client never pinned: it must fetch its own.
    rewrite_commit_proof(&w, |log| {
        log["from"] = json!(1);
        log["consistency"] = json!([]);
    });
    let before = w.h.exchanges().len();
    put(&mut w, &[PATIENT]);
    let fetched = w.h.exchanges()[before..]
        .iter()
        .any(|e| e.path.starts_with("/v1/log/consistency"));
    assert!(fetched, "the client fetched the proof from its own pin");
}

#[test]
fn deferred_pin_save_writes_on_flush() {
    use serment_client::vault::PinSave;
    let mut w = world();
    put(&mut w, &[PATIENT]);
    let path = w.h.keystore_path(LAB);
    let url = w.h.url().to_owned();
    let on_disk = |p: &std::path::Path| {
        let ks = Keystore::open(p, Zeroizing::new(format!("passphrase of {LAB}"))).unwrap();
        let api = serment_client::api::Api::new(&url).unwrap();
        serment_client::log::pinned(&api, &ks)
            .unwrap()
            .unwrap()
            .size
    };
    let saved = on_disk(&path);
    w.lab
        .set_pin_save(PinSave::Every(std::time::Duration::from_secs(3600)));
    put(&mut w, &[PATIENT]);
    let in_memory = serment_client::log::pinned(&w.lab.api, &w.lab.ks)
        .unwrap()
        .unwrap()
        .size;
    assert!(in_memory > saved);
    assert_eq!(on_disk(&path), saved, "deferred: not written yet");
    w.lab.flush().unwrap();
    assert_eq!(on_disk(&path), in_memory, "written by flush");
}

#[test]
fn inline_commit_refused_as_too_large_falls_back_to_an_upload() {
    let mut w = world();
    // A server whose JSON limit is below the inline commit: 413 for any commit carrying `blob`.
    w.h.on_request("POST /v1/documents", |ex| {
        let body: Value = serde_json::from_slice(&ex.request).unwrap();
        if body.get("blob").is_some() {
            ex.answered = true;
            ex.status = 413;
            ex.set_json(&json!({ "error": { "code": "payload_too_large", "message": "too big" } }));
        }
    });
    let r = put(&mut w, &[PATIENT]);
    let calls: Vec<String> = w.h.exchanges().iter().map(|e| e.path.clone()).collect();
    assert!(calls.iter().any(|p| p == "/v1/blobs"), "{calls:?}");
    assert_eq!(
        read(&mut w.patient, &r.doc_id).unwrap(),
        b"{\"resourceType\":\"Observation\"}"
    );
}

#[test]
fn commit_answer_lost_once_is_retried_and_proven() {
    let mut w = world();
    let to = w.lab.recipients(&[PATIENT.to_owned()]).unwrap();
    // The server commits, but the first answer is lost (a proxy's 502).
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let l = std::sync::Arc::clone(&lost);
    w.h.on_response("POST /v1/documents", move |ex| {
        if !l.swap(true, std::sync::atomic::Ordering::SeqCst) {
            ex.status = 502;
            ex.set_json(&json!({ "error": { "code": "bad_gateway", "message": "reset" } }));
        }
    });
    let c = b"{\"resourceType\":\"Observation\"}";
    let doc = DocId::random().unwrap();
    let before = w.h.exchanges().len();
    w.lab
        .put_version(c.as_slice(), meta(c), doc, 1, &to)
        .unwrap();
    let commits: Vec<u16> = w.h.exchanges()[before..]
        .iter()
        .filter(|e| e.path == "/v1/documents")
        .map(|e| e.status)
        .collect();
    assert_eq!(commits, [502, 200], "the identical retry is answered 200");
    // Stored once: one wrap entry per recipient (the lab and the patient), not two.
    let entries = w.h.sql(&format!(
        "SELECT idx FROM log_entries WHERE subject = 'd:{doc}'"
    ));
    assert_eq!(entries.len(), 2);
    assert_eq!(read(&mut w.patient, &doc).unwrap(), c);
}
