//! Metadata leakage in storage: the demo flow on every real bundle in `shared/data/fhir/`, then a
//! dump of every file and every database row the server holds. No patient name, birth date,
//! NIR/INS, LOINC display string or file name may appear; the same file name sealed twice gives
//! unrelated ciphertexts; stored sizes are PADMÉ-padded.
//!
//! With `CI=true` a missing data directory fails the test; elsewhere it is skipped with a message.

use std::path::{Path, PathBuf};

use serment_core::document::{Header, Metadata, PatientIdentifier, padme};

use crate::common::*;

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/fhir");

fn bundles() -> Option<Vec<PathBuf>> {
    let dir = Path::new(DATA_DIR);
    if !dir.is_dir() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{} is missing and CI=true: the leakage test cannot run",
                dir.display()
            );
        }
        eprintln!(
            "SKIP metadata_leakage: {} not found (set CI=true to make this fatal)",
            dir.display()
        );
        return None;
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no bundle in {}", dir.display());
    Some(v)
}

/// Every regular file below `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

/// The metadata `serment import-fhir` seals for a split document.
fn import_meta(d: &serment_fhir::FhirDocument, file: &str, author: &str) -> Metadata {
    Metadata {
        content_length: d.content.len() as u64,
        mime_type: Some(d.mime_type.clone()),
        resource_type: Some(d.resource_type.clone()),
        title: Some(d.title.clone()),
        file_name: Some(file.to_owned()),
        created: d
            .date
            .clone()
            .or_else(|| Some("2025-01-01T00:00:00Z".into())),
        author_display: Some(author.to_owned()),
        patient_identifiers: d
            .patient_identifiers
            .iter()
            .map(|i| PatientIdentifier {
                system: i.system.clone().unwrap_or_default(),
                value: i.value.clone(),
            })
            .collect(),
    }
}

#[test]
fn metadata_leakage_in_storage_after_the_demo_on_real_bundles() {
    let Some(paths) = bundles() else { return };
    for path in paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let split = serment_fhir::split_bundle(&bytes).unwrap();
        let mut w = World::new();
        let author = w.lab.ks.display_name().to_owned();
        let to = [PATIENT.to_owned(), GP.to_owned()];
        let recipients = w.lab.recipients(&to).unwrap();
        let mut docs = Vec::new();
        for d in &split.documents {
            let id = serment_core::DocId::random().unwrap();
            w.lab
                .put_version(
                    d.content.as_slice(),
                    import_meta(d, &file, &author),
                    id,
                    1,
                    &recipients,
                )
                .unwrap();
            docs.push((id, d.content.clone()));
        }
        // The patient and the GP read everything back, byte for byte, from the lab.
        for (id, content) in &docs {
            for reader in [&mut w.patient, &mut w.gp] {
                let (out, got) = read(reader, id, Some(1)).unwrap();
                assert_eq!(&out, content);
                assert_eq!(got.author, LAB);
            }
        }
        // What must not leak.
        let mut needles = serment_fhir::sensitive_strings(&bytes).unwrap();
        needles.push(file.clone());
        if let Some(stem) = Path::new(&file).file_stem() {
            needles.push(stem.to_string_lossy().into_owned());
        }
        needles.push(author.clone());
        needles.retain(|n| n.len() >= 4);
        needles.sort();
        needles.dedup();
        assert!(!needles.is_empty());
        let mut haystacks: Vec<(String, Vec<u8>)> = files(&w.h.data_dir())
            .into_iter()
            .map(|(p, b)| (p.display().to_string(), b))
            .collect();
        haystacks.extend(
            w.h.dump_db()
                .into_iter()
                .map(|(t, row)| (format!("db row of {t}"), row)),
        );
        // Blobs in a bucket are not under the data directory.
        if w.h.blobs_in_bucket() {
            haystacks.extend(
                w.h.all_blobs()
                    .into_iter()
                    .map(|(id, b)| (format!("object of blob {id}"), b)),
            );
        }
        let mut hits = Vec::new();
        for (where_, hay) in &haystacks {
            for n in &needles {
                if hay.windows(n.len()).any(|x| x == n.as_bytes()) {
                    hits.push(format!("{n:?} in {where_}"));
                }
            }
        }
        assert!(hits.is_empty(), "{file}: plaintext in storage: {hits:#?}");
        // Sizes: each stored blob is header + PADMÉ-padded chunks + trailer, nothing else.
        let mut blobs = 0;
        for (p, b) in w.h.all_blobs() {
            let h = Header::decode(&b[..Header::LEN]).unwrap();
            assert_eq!(padme(h.padded_len), h.padded_len, "{p}: not padded");
            assert_eq!(
                b.len() as u64,
                Header::LEN as u64 + h.ciphertext_len() + 2 + 32 * 3 + 64
            );
            blobs += 1;
        }
        assert_eq!(blobs, docs.len());
        // The same file name (and the same document) sealed twice: unrelated ciphertexts.
        let d = &split.documents[0];
        let mut sealed = Vec::new();
        for _ in 0..2 {
            let id = serment_core::DocId::random().unwrap();
            let r = w
                .lab
                .put_version(
                    d.content.as_slice(),
                    import_meta(d, &file, &author),
                    id,
                    1,
                    &recipients,
                )
                .unwrap();
            sealed.push(w.blob(&r));
        }
        // (Chunks only: the trailers list the same public recipient device ids.)
        let (c0, c1) = (
            Parts::split(&sealed[0]).chunks.concat(),
            Parts::split(&sealed[1]).chunks.concat(),
        );
        let shared = blocks(&c0).intersection(&blocks(&c1)).count();
        assert_eq!(
            shared, 0,
            "{file}: two sealings share {shared} ciphertext blocks"
        );
        eprintln!(
            "{file}: {} documents, {} sensitive strings checked in {} files and rows: 0 hits",
            docs.len(),
            needles.len(),
            haystacks.len()
        );
    }
}
