//! Replays every saved fuzz corpus file (`fuzz/corpus/<target>/`) and every crash regression
//! (`fuzz/regressions/<target>/`) through the same body the cargo-fuzz target runs
//! (`serment_hostile::fuzz`), on the stable toolchain: CI needs no nightly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use serment_hostile::fuzz;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

type Body = fn(&[u8]);

const TARGETS: &[(&str, Body)] = &[
    ("header_trailer", fuzz::header_trailer),
    ("document_open", fuzz::document_open),
    ("plaintext", fuzz::plaintext),
    ("wrap", fuzz::wrap),
    ("device_record", fuzz::device_record),
    ("keystore", fuzz::keystore),
    ("metadata", fuzz::metadata),
    ("fhir", fuzz::fhir),
    ("client_response", fuzz::client_response),
    ("api_request", fuzz::api_request),
    ("log_entry", fuzz::log_entry),
    ("checkpoint", fuzz::checkpoint),
];

fn replay(kind: &str, target: &str, body: Body) -> usize {
    let dir = Path::new(FUZZ_DIR).join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries {
        let p = e.unwrap().path();
        if p.is_file() {
            let data = std::fs::read(&p).unwrap();
            body(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn every_fuzz_target_has_a_saved_corpus_that_replays() {
    let mut empty = Vec::new();
    for (t, body) in TARGETS {
        let n = replay("corpus", t, *body);
        eprintln!("{t}: {n} corpus files replayed");
        if n == 0 {
            empty.push(*t);
        }
    }
    assert!(empty.is_empty(), "no saved corpus for {empty:?}");
}

#[test]
fn every_fuzz_crash_regression_replays() {
    for (t, body) in TARGETS {
        let n = replay("regressions", t, *body);
        if n > 0 {
            eprintln!("{t}: {n} regressions replayed");
        }
    }
}

#[test]
fn every_fuzz_target_is_listed() {
    let targets = Path::new(FUZZ_DIR).join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(targets)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|(t, _)| (*t).to_owned()).collect();
    listed.sort();
    assert_eq!(names, listed);
}

#[test]
fn fuzz_bodies_accept_their_seeds() {
    // The fixture document opens, and each body runs on trivial inputs without panicking.
    let f = fuzz::fixture();
    fuzz::document_open(&f.blob);
    for (_, body) in TARGETS {
        body(b"");
        body(b"\x00");
        body(b"{}");
    }
    fuzz::header_trailer(&f.blob[..serment_core::document::Header::LEN]);
    fuzz::wrap(&f.wrap);
    fuzz::plaintext(&serment_hostile::forge::frame(
        br#"{"content_length":2}"#,
        b"ok",
    ));
}

/// Writes the seed inputs of every target to `fuzz/corpus/<target>/seed-*` (run once with
/// `--ignored` before fuzzing; the fuzzer's minimized corpus then replaces them).
#[test]
#[ignore = "writes the seed corpus; run by hand before `cargo fuzz run`"]
fn write_seed_corpus() {
    use serment_core::identity::{DeviceSecret, IdentitySecret};
    let f = fuzz::fixture();
    let header = &f.blob[..serment_core::document::Header::LEN];
    let record = IdentitySecret::from_seed(&[5; 32])
        .sign_device_record(
            "labo-biomed",
            &DeviceSecret::from_test_seed(&[6; 32]),
            1_700_000_000,
        )
        .unwrap();
    let keystore = serment_core::keystore::seal_with(
        b"pass",
        b"secret",
        serment_core::keystore::KdfParams::FLOOR,
        [1; 16],
        [2; 12],
    )
    .unwrap();
    let mut payload = vec![0, 1];
    payload.extend_from_slice(&[7; 96]);
    let json = br#"{"handle":"alice","display_name":"Alice","contacts":{}}"#;
    payload.extend_from_slice(&(json.len() as u32).to_be_bytes());
    payload.extend_from_slice(json);
    let meta = br#"{"content_length":12,"mime_type":"application/fhir+json","resource_type":"DiagnosticReport","title":"NFS","file_name":"cr.json","created":"2025-03-14T09:26:53+01:00","author_display":"Labo","patient_identifiers":[{"system":"urn:oid:1.2.250.1.213.1.4.8","value":"279035121518989"}]}"#;
    let bundle = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/fhir/bilan-lipidique.json"
    ))
    .unwrap();
    let version = format!(
        r#"{{"doc_id":"{}","doc_version":1,"author_device":"{}","blob_id":"{}","size":10,"wrap":"{}"}}"#,
        "07".repeat(16),
        f.author.id(),
        "ab".repeat(32),
        serment_hostile::harness::b64(&f.wrap)
    );
    let mut api: Vec<Vec<u8>> = Vec::new();
    let bodies: [&[u8]; 9] = [
        format!(
            r#"{{"record":"{}"}}"#,
            serment_hostile::harness::b64(&record)
        )
        .leak()
        .as_bytes(),
        format!(r#"{{"device_id":"{}"}}"#, f.author.id())
            .leak()
            .as_bytes(),
        format!(
            r#"{{"device_id":"{}","challenge":"AAAA","signature":"AAAA"}}"#,
            f.author.id()
        )
        .leak()
        .as_bytes(),
        format!(
            r#"{{"doc_id":"{}","doc_version":2,"blob_id":"{}","wraps":["{}"]}}"#,
            "07".repeat(16),
            "ab".repeat(32),
            serment_hostile::harness::b64(&f.wrap)
        )
        .leak()
        .as_bytes(),
        format!(
            r#"{{"wraps":["{}"]}}"#,
            serment_hostile::harness::b64(&f.wrap)
        )
        .leak()
        .as_bytes(),
        b"labo-biomed",
        b"07070707070707070707070707070707",
        b"1",
        b"07070707070707070707070707070707",
    ];
    for (i, b) in bodies.iter().enumerate() {
        let mut v = vec![i as u8];
        v.extend_from_slice(b);
        api.push(v);
    }
    let seeds: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "header_trailer",
            vec![header.to_vec(), f.blob[f.blob.len() - 130..].to_vec()],
        ),
        ("document_open", vec![f.blob.clone()]),
        (
            "plaintext",
            vec![serment_hostile::forge::frame(
                br#"{"content_length":2}"#,
                b"ok",
            )],
        ),
        ("wrap", vec![f.wrap.clone()]),
        ("device_record", vec![record.clone()]),
        ("keystore", vec![keystore, payload]),
        ("metadata", vec![meta.to_vec()]),
        ("fhir", vec![bundle]),
        (
            "client_response",
            vec![
                version.into_bytes(),
                serment_hostile::harness::b64(&record).into_bytes(),
            ],
        ),
        ("api_request", api),
    ];
    for (t, list) in seeds {
        let dir = Path::new(FUZZ_DIR).join("corpus").join(t);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in list.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
}

/// Writes seeds for the transparency-log targets from a real server: one entry of each kind
/// present after a put, a read and a revocation-free session, and the latest checkpoint note.
#[test]
#[ignore = "writes the seed corpus; run by hand before `cargo fuzz run`"]
fn write_log_seed_corpus() {
    use serment_hostile::harness::Hostile;
    let h = Hostile::new();
    let mut lab = h.party("labo-biomed");
    let mut patient = h.party("patient-7f3a");
    serment_client::contacts::add(&lab.api, &mut lab.ks, "patient-7f3a").unwrap();
    serment_client::contacts::add(&patient.api, &mut patient.ks, "labo-biomed").unwrap();
    let meta = serment_core::document::Metadata {
        content_length: 2,
        ..Default::default()
    };
    let r = lab
        .put(b"{}".as_slice(), meta, &["patient-7f3a".to_owned()])
        .unwrap();
    let mut out = Vec::new();
    patient.get(&r.doc_id, Some(1), &mut out).unwrap();
    let dir = Path::new(FUZZ_DIR).join("corpus");
    for (sub, q) in [
        (
            "log_entry",
            "SELECT entry FROM log_entries WHERE idx IN \
             (SELECT MIN(idx) FROM log_entries GROUP BY kind)",
        ),
        (
            "checkpoint",
            "SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 2",
        ),
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for (i, row) in h.sql(q).into_iter().enumerate() {
            std::fs::write(
                dir.join(sub).join(format!("seed-{i}")),
                row[0].1.clone().unwrap(),
            )
            .unwrap();
        }
    }
}
