//! Test vectors (PROTOCOL.md §10). Each file in `tests/vectors/` names its inputs (seeds, fixed
//! randomness) and the exact bytes expected, plus what opening it must give: `ok` or an error.
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use serment_core::document::{self, Metadata, OpenInput, SealInput};
use serment_core::identity::{DeviceRecord, DeviceSecret, IdentitySecret};
use serment_core::keystore::{self, KdfParams};
use serment_core::wrap::Recipient;
use serment_core::{DocId, Error, Suite};
use zeroize::Zeroizing;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn seed(b: u8) -> [u8; 32] {
    [b; 32]
}

/// Builds every positive vector from its inputs.
fn generate() -> Vec<(String, Value)> {
    let lab_id = IdentitySecret::from_seed(&seed(0x11));
    let lab = DeviceSecret::from_test_seed(&seed(0x12));
    let pat = DeviceSecret::from_test_seed(&seed(0x22));
    let record = lab_id
        .sign_device_record("labo-biomed", &lab, 1_764_000_000)
        .unwrap();

    let content = br#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"valueQuantity":{"value":13.2,"unit":"g/dL"}}"#;
    let meta = Metadata {
        content_length: content.len() as u64,
        mime_type: Some("application/fhir+json".into()),
        resource_type: Some("Observation".into()),
        title: Some("Hemoglobin".into()),
        ..Metadata::default()
    };
    let seal_in = |suite: Suite| {
        let mut sealed = Vec::new();
        let out = document::seal_with_suite(
            SealInput {
                doc_id: DocId::from_bytes([0x5a; 16]),
                doc_version: 1,
                author: &lab,
                recipients: &[Recipient::from_device(&pat)],
                metadata: meta.clone(),
            },
            &content[..],
            &mut sealed,
            suite,
            Zeroizing::new([0x42; 32]),
            [0x07; 7],
            &mut ChaCha20Rng::from_seed(seed(0x99)),
        )
        .unwrap();
        assert_eq!(out.header.suite, suite);
        let pat_wrap = out
            .wraps
            .iter()
            .find(|(k, _)| *k == pat.id())
            .unwrap()
            .1
            .clone();
        (sealed, out, pat_wrap)
    };
    let (sealed, out, pat_wrap) = seal_in(Suite::Sha256);
    let (sealed2, out2, pat_wrap2) = seal_in(Suite::Blake3);

    let ks = keystore::seal_with(
        b"correct horse battery staple",
        b"serment keystore payload",
        KdfParams::FLOOR,
        [0x33; 16],
        [0x44; 12],
    )
    .unwrap();

    vec![
        (
            "device-record.json".into(),
            json!({
                "description": "A device record (PROTOCOL.md §4) signed by identity seed 0x11.., device seed 0x12.., handle labo-biomed, created_at 1764000000",
                "identity_seed": hex::encode(seed(0x11)),
                "device_seed": hex::encode(seed(0x12)),
                "record": hex::encode(&record),
                "identity_id": lab_id.id().to_string(),
                "device_id": lab.id().to_string(),
                "expect": "ok"
            }),
        ),
        (
            "document-observation.json".into(),
            json!({
                "description": "A sealed document (PROTOCOL.md §6) and its key wrap for the recipient (§7). Author device seed 0x12.., recipient device seed 0x22.., DEK 0x42.., nonce prefix 0x07.., HPKE randomness ChaCha20Rng seed 0x99..",
                "author_device_seed": hex::encode(seed(0x12)),
                "recipient_device_seed": hex::encode(seed(0x22)),
                "doc_id": "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
                "doc_version": 1,
                "dek": hex::encode([0x42; 32]),
                "nonce_prefix": hex::encode([0x07; 7]),
                "hpke_rng_seed": hex::encode(seed(0x99)),
                "metadata": meta,
                "content": String::from_utf8(content.to_vec()).unwrap(),
                "header_hash": hex::encode(out.header.hash()),
                "sealed": hex::encode(&sealed),
                "recipient_wrap": hex::encode(&pat_wrap),
                "expect": "ok"
            }),
        ),
        (
            "document-observation-suite2.json".into(),
            json!({
                "description": "The same sealed document in suite 2 (PROTOCOL.md §2, §6.1: BLAKE3 chunk and ciphertext hashes) and its key wrap for the recipient (§7). Same inputs as document-observation.json: author device seed 0x12.., recipient device seed 0x22.., DEK 0x42.., nonce prefix 0x07.., HPKE randomness ChaCha20Rng seed 0x99..",
                "suite": 2,
                "author_device_seed": hex::encode(seed(0x12)),
                "recipient_device_seed": hex::encode(seed(0x22)),
                "doc_id": "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
                "doc_version": 1,
                "dek": hex::encode([0x42; 32]),
                "nonce_prefix": hex::encode([0x07; 7]),
                "hpke_rng_seed": hex::encode(seed(0x99)),
                "metadata": meta,
                "content": String::from_utf8(content.to_vec()).unwrap(),
                "header_hash": hex::encode(out2.header.hash()),
                "chunk_hash_0": hex::encode(Suite::Blake3.chunk_hash(0, &sealed2[76..sealed2.len() - (2 + 2 * 32 + 64)])),
                "sealed": hex::encode(&sealed2),
                "recipient_wrap": hex::encode(&pat_wrap2),
                "expect": "ok"
            }),
        ),
        (
            "keystore.json".into(),
            json!({
                "description": "A keystore file (PROTOCOL.md §9): Argon2id m=19456 KiB t=2 p=1, salt 0x33.., nonce 0x44..",
                "passphrase": "correct horse battery staple",
                "payload": "serment keystore payload",
                "file": hex::encode(&ks),
                "expect": "ok"
            }),
        ),
    ]
}

fn load(name: &str) -> Value {
    let p = dir().join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap_or_else(|| panic!("missing {k}"))).unwrap()
}

#[test]
fn vectors_match_the_implementation() {
    let generated = generate();
    if std::env::var_os("SERMENT_REGEN_VECTORS").is_some() {
        for (name, v) in &generated {
            std::fs::write(
                dir().join(name),
                serde_json::to_string_pretty(v).unwrap() + "\n",
            )
            .unwrap();
        }
    }
    for (name, v) in &generated {
        assert_eq!(
            &load(name),
            v,
            "{name} differs from what the code produces today"
        );
    }
}

#[test]
fn device_record_vector_verifies() {
    let v = load("device-record.json");
    let rec = DeviceRecord::decode_verified(&h(&v, "record")).unwrap();
    assert_eq!(rec.device_id().to_string(), v["device_id"]);
    assert_eq!(rec.identity_id().to_string(), v["identity_id"]);
}

#[test]
fn document_vectors_open() {
    for (name, suite) in [
        ("document-observation.json", Suite::Sha256),
        ("document-observation-suite2.json", Suite::Blake3),
    ] {
        let v = load(name);
        let reader =
            DeviceSecret::from_test_seed(&h(&v, "recipient_device_seed").try_into().unwrap());
        let author = DeviceSecret::from_test_seed(&h(&v, "author_device_seed").try_into().unwrap());
        let mut out = Vec::new();
        let opened = document::open(
            OpenInput {
                device: &reader,
                wrap: &h(&v, "recipient_wrap"),
                author_signing_key: &author.signing_public_key(),
                expected: Some((DocId::from_hex(v["doc_id"].as_str().unwrap()).unwrap(), 1)),
            },
            &h(&v, "sealed")[..],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, v["content"].as_str().unwrap().as_bytes(), "{name}");
        assert_eq!(opened.metadata.title.as_deref(), Some("Hemoglobin"));
        assert_eq!(opened.header.suite, suite, "{name}");
    }
}

/// The suite-2 chunk hash of the vector, recomputed with the `blake3` crate directly from
/// PROTOCOL.md §6.1 (`derive_key` mode, context `serment/v1/chunk`, input `chunk || u32(0)`).
#[test]
fn suite2_chunk_hash_follows_the_spec() {
    let v = load("document-observation-suite2.json");
    let sealed = h(&v, "sealed");
    let chunk = &sealed[76..sealed.len() - (2 + 2 * 32 + 64)];
    let mut input = chunk.to_vec();
    input.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(
        blake3::derive_key("serment/v1/chunk", &input).to_vec(),
        h(&v, "chunk_hash_0")
    );
    // Only the suite id and the commitment differ from the suite-1 vector: same ciphertext.
    let v1 = load("document-observation.json");
    let sealed1 = h(&v1, "sealed");
    assert_eq!(&sealed1[..6], &sealed[..6]);
    assert_eq!((sealed1[6], sealed1[7], sealed[6], sealed[7]), (0, 1, 0, 2));
    assert_eq!(&sealed1[8..76], &sealed[8..76]);
    assert_ne!(
        sealed1[76..],
        sealed[76..],
        "the header hash is the AEAD's associated data"
    );
}

#[test]
fn keystore_vector_opens() {
    let v = load("keystore.json");
    let pt = keystore::open(v["passphrase"].as_str().unwrap().as_bytes(), &h(&v, "file")).unwrap();
    assert_eq!(&pt[..], v["payload"].as_str().unwrap().as_bytes());
}

/// Negative vectors: each file names the positive vector it mutates; each case names a mutation
/// and the error it must give.
#[test]
fn negative_vectors() {
    for file in ["negative.json", "negative-suite2.json"] {
        check_negative(file);
    }
}

fn check_negative(file: &str) {
    let v = load(file);
    let doc = load(v["vector"].as_str().unwrap());
    let sealed = h(&doc, "sealed");
    let wrap = h(&doc, "recipient_wrap");
    let reader =
        DeviceSecret::from_test_seed(&h(&doc, "recipient_device_seed").try_into().unwrap());
    let author = DeviceSecret::from_test_seed(&h(&doc, "author_device_seed").try_into().unwrap());
    // The documented XOR value (tests/vectors/README.md): 0x01.
    let xor = u8::try_from(v["xor_value"].as_u64().unwrap()).unwrap();
    assert_eq!(xor, 0x01, "{file}: xor_value");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let target = c["target"].as_str().unwrap();
        let mut blob = sealed.clone();
        let mut w = wrap.clone();
        let buf = if target == "sealed" {
            &mut blob
        } else {
            &mut w
        };
        if let Some(at) = c["set_u16_at"].as_u64() {
            let val = c["value"].as_u64().unwrap() as u16;
            buf[at as usize..at as usize + 2].copy_from_slice(&val.to_be_bytes());
        }
        if let Some(at) = c["xor_at"].as_i64() {
            let i = if at < 0 {
                buf.len() - (-at) as usize
            } else {
                at as usize
            };
            buf[i] ^= xor;
        }
        if let Some(n) = c["truncate_to"].as_u64() {
            buf.truncate(n as usize);
        }
        if let Some(extra) = c["append_hex"].as_str() {
            buf.extend(hex::decode(extra).unwrap());
        }
        let r = document::open(
            OpenInput {
                device: &reader,
                wrap: &w,
                author_signing_key: &author.signing_public_key(),
                expected: None,
            },
            &blob[..],
            &mut Vec::new(),
        );
        let got = match r {
            Ok(_) => "ok".to_owned(),
            Err(e) => error_name(&e).to_owned(),
        };
        assert_eq!(got, c["expect"].as_str().unwrap(), "{file}: case {name}");
    }
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::UnsupportedVersion { .. } => "unsupported_version",
        Error::UnsupportedSuite { .. } => "unsupported_suite",
        Error::Decrypt => "decrypt",
        Error::TruncatedStream => "truncated_stream",
        Error::ExtendedStream => "extended_stream",
        Error::BadSignature { .. } => "bad_signature",
        Error::BadMagic { .. } => "bad_magic",
        Error::ContextMismatch(_) => "context_mismatch",
        Error::WrongSigner { .. } => "wrong_signer",
        Error::TrailingBytes { .. } => "trailing_bytes",
        Error::InvalidField { .. } => "invalid_field",
        _ => "other",
    }
}
