//! The bodies of the cargo-fuzz targets (`fuzz/fuzz_targets/<name>.rs` calls `fuzz::<name>`).
//!
//! Each body feeds arbitrary bytes to one decoder and checks a property: no panic, and where the
//! format allows it, decode then encode gives back the same bytes (the `age` habit). The bodies
//! live here, not in the fuzz crate, so that `tests/fuzz_corpus.rs` replays every saved corpus file
//! through exactly the same code on the stable toolchain.
//!
//! | target | decoder |
//! |---|---|
//! | [`header_trailer`] | `document::Header::decode`, `document::Trailer::decode` |
//! | [`document_open`] | `document::open` on arbitrary sealed bytes (chunk framing, trailer) |
//! | [`plaintext`] | `document::open` on a validly signed document with arbitrary framed plaintext (metadata length, metadata JSON, padding) |
//! | [`wrap`] | `wrap::WrappedKey::decode`, `verify_signature`, `unwrap_dek` |
//! | [`device_record`] | `identity::DeviceRecord::decode_verified` |
//! | [`keystore`] | `keystore::params_of` (the unauthenticated part of a keystore file) and the client's keystore payload |
//! | [`metadata`] | `document::Metadata::from_json` |
//! | [`fhir`] | `serment_fhir::split_bundle`, `sensitive_strings`, `check_nir` |
//! | [`client_response`] | the client's JSON response types and id/base64 parsers |
//! | [`api_request`] | every JSON request body and path the server parses, through the real router |
//! | [`log_entry`] | transparency-log entries and their payloads (`log::entry`), inclusion and consistency proofs (`log::tree`) |
//! | [`checkpoint`] | signed checkpoints (C2SP notes), signature lines and verifier keys (`log::note`) |

use std::sync::OnceLock;

use serment_core::DocId;
use serment_core::document::{self, Header, Metadata, OpenInput, SealInput, Trailer};
use serment_core::identity::{DeviceRecord, DeviceSecret};
use serment_core::wrap::{Recipient, WrappedKey};
use zeroize::Zeroizing;

/// The fixed parties and document the fuzz bodies open against.
#[derive(Debug)]
pub struct Fixture {
    /// The author device (test seed 1).
    pub author: DeviceSecret,
    /// The reader device (test seed 2).
    pub reader: DeviceSecret,
    /// A valid sealed document from `author` to `reader` (the `document_open` seed).
    pub blob: Vec<u8>,
    /// The reader's wrap for `blob`.
    pub wrap: Vec<u8>,
    /// The content sealed in `blob`.
    pub content: Vec<u8>,
}

/// The fixed DEK of the fixture document (fuzzing only: a real DEK is random).
const FIXTURE_DEK: [u8; 32] = [0x42; 32];

/// The shared fixture, built once.
///
/// # Panics
/// Never in practice: sealing a fixed small document cannot fail (a failure is a fuzz finding).
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let author = DeviceSecret::from_test_seed(&[1; 32]);
        let reader = DeviceSecret::from_test_seed(&[2; 32]);
        // Two chunks and a bit, so the corpus seed covers chunk boundaries.
        let content: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let meta = Metadata {
            content_length: content.len() as u64,
            mime_type: Some("application/fhir+json".into()),
            title: Some("fuzz".into()),
            ..Metadata::default()
        };
        let recipients = [Recipient::from_device(&reader)];
        let mut blob = Vec::new();
        let sealed = document::seal_with(
            SealInput {
                doc_id: DocId::from_bytes([7; 16]),
                doc_version: 1,
                author: &author,
                recipients: &recipients,
                metadata: meta,
            },
            content.as_slice(),
            &mut blob,
            Zeroizing::new(FIXTURE_DEK),
            [9; 7],
            &mut serment_core::rng::os_rng(),
        );
        let wrap = sealed
            .ok()
            .and_then(|s| s.wraps.into_iter().find(|(k, _)| *k == reader.id()))
            .map(|(_, w)| w)
            .unwrap_or_default();
        assert!(!wrap.is_empty(), "the fixture document must seal");
        Fixture {
            author,
            reader,
            blob,
            wrap,
            content,
        }
    })
}

/// Sealed header and trailer: strict decoding, and decode-then-encode is the identity.
pub fn header_trailer(data: &[u8]) {
    if let Ok(h) = Header::decode(data) {
        assert_eq!(h.encode().as_slice(), data, "header re-encodes differently");
        assert!(h.chunks() >= 1);
        assert!(h.ciphertext_len() >= h.padded_len);
    }
    if let Ok(t) = Trailer::decode(data) {
        assert_eq!(t.encode().ok().as_deref(), Some(data), "trailer re-encodes");
    }
}

/// `document::open` on arbitrary bytes as the sealed document, with the fixture's wrap: the only
/// accepted input is the fixture document itself.
pub fn document_open(data: &[u8]) {
    let f = fixture();
    let mut out = Vec::new();
    let r = document::open(
        OpenInput {
            device: &f.reader,
            wrap: &f.wrap,
            author_signing_key: &f.author.signing_public_key(),
            expected: None,
        },
        data,
        &mut out,
    );
    if r.is_ok() {
        assert_eq!(out, f.content, "a forged document opened");
        assert_eq!(data, f.blob.as_slice(), "a different blob opened");
    }
}

/// A validly signed document whose framed plaintext is `data`: exercises the metadata length
/// field, the metadata JSON, the content length and the zero-padding check of PROTOCOL.md §6.2.
/// Whatever opens must be consistent: the content is exactly `content_length` bytes taken right
/// after the metadata, and everything after it is zero.
pub fn plaintext(data: &[u8]) {
    let f = fixture();
    let recipients = [Recipient::from_device(&f.reader)];
    let Ok(forged) = crate::forge::seal_raw(&crate::forge::RawSeal {
        author: &f.author,
        doc_id: DocId::from_bytes([8; 16]),
        doc_version: 1,
        dek: FIXTURE_DEK,
        nonce_prefix: [3; 7],
        plaintext: data,
        recipients: &recipients,
    }) else {
        return;
    };
    let Some(wrap) = forged.wrap_for(&f.reader.id()) else {
        return;
    };
    let mut out = Vec::new();
    let r = document::open(
        OpenInput {
            device: &f.reader,
            wrap,
            author_signing_key: &f.author.signing_public_key(),
            expected: Some((DocId::from_bytes([8; 16]), 1)),
        },
        forged.blob.as_slice(),
        &mut out,
    );
    if let Ok(opened) = r {
        let meta_len = data
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize);
        assert!(meta_len.is_some(), "opened without a metadata length");
        let meta_len = meta_len.unwrap_or_default();
        let start = 4 + meta_len;
        let end = start + out.len();
        assert_eq!(opened.metadata.content_length, out.len() as u64);
        assert_eq!(data.get(start..end), Some(out.as_slice()));
        assert!(data.get(end..).is_some_and(|p| p.iter().all(|b| *b == 0)));
        assert_eq!(
            document::padded_len(meta_len, out.len() as u64).ok(),
            Some(data.len() as u64),
            "accepted a padded length other than PADMÉ's"
        );
    }
}

/// Key wraps: strict decoding (exact bytes kept), signature check and HPKE open never panic.
pub fn wrap(data: &[u8]) {
    let f = fixture();
    if let Ok(w) = WrappedKey::decode(data) {
        assert_eq!(w.as_bytes(), data);
        let _ = w.verify_signature(&f.author.signing_public_key());
        let _ = serment_core::wrap::unwrap_dek(&w, &f.reader);
    }
}

/// Device records: strict decoding and signature verification; an accepted record keeps its
/// exact bytes and a valid handle.
pub fn device_record(data: &[u8]) {
    if let Ok(r) = DeviceRecord::decode_verified(data) {
        assert_eq!(r.bytes.as_slice(), data);
        assert!(serment_core::identity::validate_handle(&r.handle).is_ok());
    }
}

/// Keystore files: the unauthenticated header (magic, version, suite, KDF parameters, salt,
/// nonce) never yields parameters below the floor; the client's decrypted-payload decoder never
/// panics.
pub fn keystore(data: &[u8]) {
    if let Ok(p) = serment_core::keystore::params_of(data) {
        assert!(p.check().is_ok(), "a keystore below the KDF floor parsed");
        assert!(p.m_cost_kib >= serment_core::keystore::KdfParams::FLOOR.m_cost_kib);
        assert!(p.t_cost >= serment_core::keystore::KdfParams::FLOOR.t_cost);
    }
    let _ = serment_client::keystore::decode_payload(data);
}

/// Plaintext metadata JSON: decoding never panics, and what decodes round-trips.
pub fn metadata(data: &[u8]) {
    if let Ok(m) = Metadata::from_json(data)
        && let Ok(j) = m.to_json()
    {
        assert_eq!(Metadata::from_json(&j).ok(), Some(m));
    }
}

/// FHIR bundle splitting, the sensitive-string scan and the NIR check never panic.
pub fn fhir(data: &[u8]) {
    let _ = serment_fhir::split_bundle(data);
    let _ = serment_fhir::sensitive_strings(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = serment_fhir::check_nir(s);
    }
}

/// The client's JSON response types and the id and base64 parsers it applies to server answers.
pub fn client_response(data: &[u8]) {
    use serment_client::api::{AccessEntry, VersionResponse, VersionSummary, b64d, key_id};
    let _ = serde_json::from_slice::<VersionResponse>(data);
    let _ = serde_json::from_slice::<VersionSummary>(data);
    let _ = serde_json::from_slice::<AccessEntry>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(b) = b64d(s, "fuzz") {
            assert_eq!(
                serment_client::api::b64e(&b),
                s,
                "non-canonical base64 accepted"
            );
        }
        let _ = key_id(s, "fuzz");
        if let Ok(d) = DocId::from_hex(s) {
            assert_eq!(d.to_string(), s);
        }
    }
}

/// Every JSON request body and path parameter the server parses, through the real router of an
/// in-process server with one registered, logged-in device: no input yields a 5xx or a panic.
/// The first byte picks the route; the rest is the body (or the path parameter).
pub fn api_request(data: &[u8]) {
    let Some((sel, body)) = data.split_first() else {
        return;
    };
    let api = crate::harness::RouterFixture::shared();
    let status = api.fuzz_request(*sel, body);
    assert!(
        status < 500,
        "the server answered {status} to a client's input"
    );
}

/// Transparency-log entries and their payloads, decoded strictly; inclusion and consistency
/// proofs (the input's first 16 bytes are index and size, the rest 32-byte hashes) never panic.
pub fn log_entry(data: &[u8]) {
    use serment_core::log::entry::{Access, LogEntry, Receipt, Removal, Revocation, Rotation};
    use serment_core::log::tree;
    let _ = LogEntry::decode(data);
    let _ = Receipt::decode(data);
    let _ = Removal::decode(data);
    let _ = Access::decode(data);
    let _ = Rotation::decode_verified(data);
    let _ = Revocation::decode_verified(data);
    let (Some(a), Some(b)) = (data.get(..8), data.get(8..16)) else {
        return;
    };
    let (Ok(a), Ok(b)) = (<[u8; 8]>::try_from(a), <[u8; 8]>::try_from(b)) else {
        return;
    };
    let (x, y) = (u64::from_be_bytes(a), u64::from_be_bytes(b));
    let hashes: Vec<tree::Hash> = data
        .get(16..)
        .unwrap_or_default()
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect();
    let root = hashes.first().copied().unwrap_or([0; 32]);
    let rest = hashes.get(1..).unwrap_or_default();
    let _ = tree::verify_inclusion(b"entry", x, y, &root, rest);
    let _ = tree::verify_consistency(x, &root, y, &root, rest);
}

/// Signed checkpoints (PROTOCOL.md §11.4): strict parsing; what parses re-encodes to a note that
/// parses to the same value; signature lines and verifier keys never panic.
pub fn checkpoint(data: &[u8]) {
    use serment_core::log::note::{NoteSignature, SignedCheckpoint, VerifierKey};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = SignedCheckpoint::parse(s)
        && let Ok(again) = c.encode()
    {
        assert_eq!(SignedCheckpoint::parse(&again).ok(), Some(c));
    }
    for line in s.lines().take(64) {
        let _ = NoteSignature::parse_line(line);
        let _ = VerifierKey::parse(line);
    }
}
