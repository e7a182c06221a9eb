//! Vectors of the hybrid suite (PROTOCOL.md §2 suite 3, §4, §7; issue 15): an X-Wing device record,
//! a document wrapped with X-Wing, negative cases of the hybrid wrap and record, and the outside
//! check: the X-Wing draft's own test vectors (draft-connolly-cfrg-xwing-kem-06, `spec/test-vectors.json`
//! of the draft's repository, as shipped by RustCrypto's `x-wing` crate) run through the `hpke`
//! crate's X-Wing KEM, the one our wraps use.
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test hybrid_vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use chacha20::ChaCha20Rng;
use hpke::kem::XWing;
use hpke::{Deserializable, Kem, Serializable};
use rand_core::{SeedableRng, TryCryptoRng, TryRng};
use serde_json::{Value, json};
use serment_core::document::{self, Metadata, OpenInput, SealInput};
use serment_core::identity::{DeviceRecord, DeviceSecret, HYBRID_PUBLIC_KEY_LEN, IdentitySecret};
use serment_core::sign::{self, Context};
use serment_core::wrap::{Recipient, WrapKem, WrappedKey};
use serment_core::{DocId, Error, Suite};
use zeroize::Zeroizing;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn seed(b: u8) -> [u8; 32] {
    [b; 32]
}

const CONTENT: &[u8] = br#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"valueQuantity":{"value":13.2,"unit":"g/dL"}}"#;

/// Offsets in a hybrid wrap (PROTOCOL.md §7): `enc` is the X-Wing ciphertext, ML-KEM-768's 1088
/// bytes then the X25519 ephemeral key's 32 (draft-connolly-cfrg-xwing-kem-06 §5.3).
const ENC_AT: usize = WrappedKey::PREFIX_LEN;
const MLKEM_CT_LEN: usize = 1088;
const X25519_AT: usize = ENC_AT + MLKEM_CT_LEN;
const DEK_AT: usize = X25519_AT + 32;
const SIG_AT: usize = DEK_AT + 48;

fn generate() -> Vec<(String, Value)> {
    let lab_id = IdentitySecret::from_seed(&seed(0x11));
    let lab = DeviceSecret::from_test_seed_hybrid(&seed(0x12));
    let pat = DeviceSecret::from_test_seed_hybrid(&seed(0x22));
    let record = lab_id
        .sign_device_record("labo-biomed", &lab, 1_764_000_000)
        .unwrap();
    let meta = Metadata {
        content_length: CONTENT.len() as u64,
        mime_type: Some("application/fhir+json".into()),
        resource_type: Some("Observation".into()),
        title: Some("Hemoglobin".into()),
        ..Metadata::default()
    };
    let mut sealed = Vec::new();
    let out = document::seal_with_suite(
        SealInput {
            doc_id: DocId::from_bytes([0x5a; 16]),
            doc_version: 1,
            author: &lab,
            recipients: &[Recipient::from_device(&pat)],
            metadata: meta.clone(),
        },
        CONTENT,
        &mut sealed,
        Suite::Blake3,
        Zeroizing::new([0x42; 32]),
        [0x07; 7],
        &mut ChaCha20Rng::from_seed(seed(0x99)),
    )
    .unwrap();
    let pat_wrap = out
        .wraps
        .iter()
        .find(|(k, _)| *k == pat.id())
        .unwrap()
        .1
        .clone();
    // The record: handle "labo-biomed" is 11 bytes, so the keys start at 4+2+2+1+11.
    let rec_keys = 4 + 2 + 2 + 1 + 11;
    let rec_hybrid = rec_keys + 3 * 32;
    let rec_hybrid_end = rec_hybrid + HYBRID_PUBLIC_KEY_LEN;
    vec![
        (
            "device-record-xwing.json".into(),
            json!({
                "description": "A suite-3 device record (PROTOCOL.md §4) advertising an X-Wing key: identity seed 0x11.., device test seed 0x12.. (X25519 and X-Wing keys from DeriveKeyPair(seed) of each KEM), handle labo-biomed, created_at 1764000000",
                "suite": 3,
                "identity_seed": hex::encode(seed(0x11)),
                "device_seed": hex::encode(seed(0x12)),
                "record": hex::encode(&record),
                "hybrid_key": hex::encode(lab.hybrid_public_key().unwrap().as_bytes()),
                "identity_id": lab_id.id().to_string(),
                "device_id": lab.id().to_string(),
                "expect": "ok",
                "negative": [
                    {"name": "suite_relabelled_classical", "set_u16_at": 6, "value": 1, "expect": "trailing_bytes"},
                    {"name": "hybrid_key_stripped_and_relabelled", "set_u16_at": 6, "value": 1, "remove_range": [rec_hybrid, rec_hybrid_end], "expect": "bad_signature"},
                    {"name": "hybrid_key_x25519_part_flipped", "xor_at": rec_hybrid_end - 1, "expect": "bad_signature"},
                    {"name": "hybrid_key_truncated", "remove_range": [rec_hybrid_end - 16, rec_hybrid_end], "expect": "truncated"},
                    {"name": "suite_unknown", "set_u16_at": 6, "value": 4, "expect": "unsupported_suite"}
                ]
            }),
        ),
        (
            "document-observation-xwing.json".into(),
            json!({
                "description": "A suite-2 sealed document (PROTOCOL.md §6) whose key wraps are suite 3 (§7: HPKE base mode, X-Wing KEM 0x647A, HKDF-SHA256, ChaCha20Poly1305). Author device test seed 0x12.., recipient 0x22.. (both with X-Wing keys), DEK 0x42.., nonce prefix 0x07.., HPKE randomness ChaCha20Rng seed 0x99.. (64 bytes per X-Wing wrap, in device-id order)",
                "wrap_suite": 3,
                "kem_id": "647a",
                "author_device_seed": hex::encode(seed(0x12)),
                "recipient_device_seed": hex::encode(seed(0x22)),
                "doc_id": "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
                "doc_version": 1,
                "dek": hex::encode([0x42; 32]),
                "nonce_prefix": hex::encode([0x07; 7]),
                "hpke_rng_seed": hex::encode(seed(0x99)),
                "metadata": meta,
                "content": String::from_utf8(CONTENT.to_vec()).unwrap(),
                "header_hash": hex::encode(out.header.hash()),
                "hpke_info": hex::encode([b"serment/v1/wrap\0".as_slice(), &3u16.to_be_bytes(), &[0x5a; 16], &1u32.to_be_bytes(), pat.id().as_bytes()].concat()),
                "sealed": hex::encode(&sealed),
                "recipient_wrap": hex::encode(&pat_wrap),
                "expect": "ok"
            }),
        ),
        (
            "negative-xwing.json".into(),
            json!({
                "description": "Mutations of the recipient's suite-3 wrap in document-observation-xwing.json. Offsets: enc at 156 (ML-KEM-768 ciphertext 156..1244, X25519 ephemeral key 1244..1276), wrapped_dek 1276..1324, signature 1324..1356. `resign`: the mutated wrap is signed again by the author device (seed 0x12..), i.e. a sharer who turns against the recipient, so the check that fires is past the signature.",
                "vector": "document-observation-xwing.json",
                "xor_value": 1,
                "cases": [
                    {"name": "suite_swapped_to_classical", "set_u16_at": 6, "value": 1, "expect": "trailing_bytes"},
                    {"name": "suite_swapped_to_classical_resigned", "set_u16_at": 6, "value": 1, "resign": true, "expect": "trailing_bytes"},
                    {"name": "suite_swapped_to_document_suite_2", "set_u16_at": 6, "value": 2, "expect": "unsupported_suite"},
                    {"name": "suite_zero", "set_u16_at": 6, "value": 0, "expect": "unsupported_suite"},
                    {"name": "classical_relabel_x25519_half_resigned", "set_u16_at": 6, "value": 1, "remove_range": [ENC_AT, X25519_AT], "resign": true, "expect": "decrypt"},
                    {"name": "mlkem_part_flipped", "xor_at": ENC_AT + 500, "expect": "bad_signature"},
                    {"name": "mlkem_part_flipped_resigned", "xor_at": ENC_AT + 500, "resign": true, "expect": "decrypt"},
                    {"name": "x25519_part_flipped", "xor_at": X25519_AT + 7, "expect": "bad_signature"},
                    {"name": "x25519_part_flipped_resigned", "xor_at": X25519_AT + 7, "resign": true, "expect": "decrypt"},
                    {"name": "mlkem_part_truncated_resigned", "remove_range": [X25519_AT - 64, X25519_AT], "resign": true, "expect": "truncated"},
                    {"name": "x25519_part_truncated_resigned", "remove_range": [DEK_AT - 16, DEK_AT], "resign": true, "expect": "truncated"},
                    {"name": "wrapped_dek_flipped_resigned", "xor_at": DEK_AT + 3, "resign": true, "expect": "decrypt"},
                    {"name": "signature_flipped", "xor_at": SIG_AT + 10, "expect": "bad_signature"},
                    {"name": "truncated_by_one", "truncate_to": SIG_AT + 63, "expect": "truncated"},
                    {"name": "extended_by_one", "append_hex": "00", "expect": "trailing_bytes"}
                ]
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

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::UnsupportedSuite { .. } => "unsupported_suite",
        Error::Decrypt => "decrypt",
        Error::BadSignature { .. } => "bad_signature",
        Error::ContextMismatch(_) => "context_mismatch",
        Error::TrailingBytes { .. } => "trailing_bytes",
        Error::Truncated { .. } => "truncated",
        Error::InvalidField { .. } => "invalid_field",
        Error::Downgrade(_) => "downgrade",
        _ => "other",
    }
}

/// Applies one mutation of a negative case (tests/vectors/README.md).
fn mutate(c: &Value, buf: &mut Vec<u8>) {
    if let Some(at) = c["set_u16_at"].as_u64() {
        let val = c["value"].as_u64().unwrap() as u16;
        buf[at as usize..at as usize + 2].copy_from_slice(&val.to_be_bytes());
    }
    if let Some(r) = c["remove_range"].as_array() {
        let (a, b) = (
            r[0].as_u64().unwrap() as usize,
            r[1].as_u64().unwrap() as usize,
        );
        buf.drain(a..b);
    }
    if let Some(at) = c["xor_at"].as_u64() {
        buf[at as usize] ^= 0x01;
    }
    if let Some(n) = c["truncate_to"].as_u64() {
        buf.truncate(n as usize);
    }
    if let Some(extra) = c["append_hex"].as_str() {
        buf.extend(hex::decode(extra).unwrap());
    }
}

#[test]
fn hybrid_vectors_match_the_implementation() {
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
fn hybrid_record_vector_verifies_and_its_negatives_fail() {
    let v = load("device-record-xwing.json");
    let bytes = h(&v, "record");
    let rec = DeviceRecord::decode_verified(&bytes).unwrap();
    assert_eq!(rec.device_id().to_string(), v["device_id"]);
    assert_eq!(rec.identity_id().to_string(), v["identity_id"]);
    assert_eq!(
        rec.hybrid_key.as_ref().unwrap().as_bytes().to_vec(),
        h(&v, "hybrid_key")
    );
    assert_eq!((bytes[6], bytes[7]), (0, 3), "suite 3");
    let cases = v["negative"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let mut b = bytes.clone();
        mutate(c, &mut b);
        let got = match DeviceRecord::decode_verified(&b) {
            Ok(_) => "ok",
            Err(e) => error_name(&e),
        };
        assert_eq!(got, c["expect"].as_str().unwrap(), "case {}", c["name"]);
    }
}

fn open_with(v: &Value, wrap: &[u8]) -> Result<Vec<u8>, Error> {
    let reader =
        DeviceSecret::from_test_seed_hybrid(&h(v, "recipient_device_seed").try_into().unwrap());
    let author =
        DeviceSecret::from_test_seed_hybrid(&h(v, "author_device_seed").try_into().unwrap());
    let mut out = Vec::new();
    document::open(
        OpenInput {
            device: &reader,
            wrap,
            author_signing_key: &author.signing_public_key(),
            expected: None,
        },
        &h(v, "sealed")[..],
        &mut out,
    )
    .map(|_| out)
}

#[test]
fn hybrid_document_vector_opens_with_an_xwing_wrap() {
    let v = load("document-observation-xwing.json");
    let wrap = h(&v, "recipient_wrap");
    assert_eq!(wrap.len(), WrappedKey::HYBRID_LEN);
    let w = WrappedKey::decode(&wrap).unwrap();
    assert_eq!(w.kem, WrapKem::XWing);
    assert_eq!(WrapKem::XWing.hpke_kem_id(), 0x647a);
    assert_eq!(open_with(&v, &wrap).unwrap(), CONTENT);
    // A reader without its X-Wing secret cannot open it (there is no classical fallback).
    let classical =
        DeviceSecret::from_test_seed(&h(&v, "recipient_device_seed").try_into().unwrap());
    let author =
        DeviceSecret::from_test_seed_hybrid(&h(&v, "author_device_seed").try_into().unwrap());
    let r = document::open(
        OpenInput {
            device: &classical,
            wrap: &wrap,
            author_signing_key: &author.signing_public_key(),
            expected: None,
        },
        &h(&v, "sealed")[..],
        &mut Vec::new(),
    );
    assert!(matches!(r, Err(Error::ContextMismatch(_))), "{r:?}");
}

#[test]
fn hybrid_negative_vectors() {
    let v = load("negative-xwing.json");
    let doc = load(v["vector"].as_str().unwrap());
    let wrap = h(&doc, "recipient_wrap");
    let author_seed: [u8; 32] = h(&doc, "author_device_seed").try_into().unwrap();
    let author_key = ed25519_dalek::SigningKey::from_bytes(&author_seed);
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let mut w = wrap.clone();
        mutate(c, &mut w);
        if c["resign"].as_bool() == Some(true) {
            let at = w.len() - 64;
            let sig = sign::sign(&author_key, Context::Wrap, &w[..at]);
            w[at..].copy_from_slice(&sig);
        }
        let got = match open_with(&doc, &w) {
            Ok(_) => "ok",
            Err(e) => error_name(&e),
        };
        assert_eq!(got, c["expect"].as_str().unwrap(), "case {name}");
    }
}

/// An RNG that hands out fixed bytes: the draft's `eseed`, the randomness of Encapsulate.
struct Fixed(Vec<u8>);

impl TryRng for Fixed {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        assert!(
            dest.len() <= self.0.len(),
            "more randomness than the vector gives"
        );
        dest.copy_from_slice(&self.0[..dest.len()]);
        self.0.drain(..dest.len());
        Ok(())
    }
}

impl TryCryptoRng for Fixed {}

/// Outside agreement on the KEM layer: the X-Wing draft's own test vectors
/// (draft-connolly-cfrg-xwing-kem-06, `tests/vectors/xwing-draft-06.json`, copied from the
/// draft's `spec/test-vectors.json`) through the `hpke` crate's X-Wing KEM, the code path of our
/// wraps: secret key → public key, Encapsulate with the draft's `eseed` → the draft's ciphertext
/// and shared secret, Decapsulate → the same shared secret.
#[test]
fn xwing_draft_test_vectors_agree_with_hpke() {
    let all: Vec<Value> = serde_json::from_value(load("xwing-draft-06.json")).unwrap();
    assert!(all.len() >= 3);
    for (i, tv) in all.iter().enumerate() {
        // Draft 06: the decapsulation key is the 32-byte seed itself.
        assert_eq!(h(tv, "sk"), h(tv, "seed"), "vector {i}");
        let sk = <XWing as Kem>::PrivateKey::from_bytes(&h(tv, "sk")).unwrap();
        let pk = XWing::sk_to_pk(&sk);
        assert_eq!(
            pk.to_bytes().to_vec(),
            h(tv, "pk"),
            "vector {i}: public key"
        );
        let (ss, ct) = XWing::encap_with_rng(&pk, None, &mut Fixed(h(tv, "eseed"))).unwrap();
        assert_eq!(
            ct.to_bytes().to_vec(),
            h(tv, "ct"),
            "vector {i}: ciphertext"
        );
        assert_eq!(ss.0.to_vec(), h(tv, "ss"), "vector {i}: shared secret");
        let ct = <XWing as Kem>::EncappedKey::from_bytes(&h(tv, "ct")).unwrap();
        let ss2 = XWing::decap(&sk, None, &ct).unwrap();
        assert_eq!(ss2.0.to_vec(), h(tv, "ss"), "vector {i}: decapsulation");
        // And our record parser takes the draft's public key as a valid X-Wing key.
        serment_core::identity::HybridPublicKey::from_bytes(&h(tv, "pk")).unwrap();
    }
}
