//! The spec matches the bytes (issue 10 §6): the lengths, field lists and signed-byte lists
//! written in `docs/PROTOCOL.md` are parsed out of the document and compared with what the
//! encoder produces (the vectors of `tests/vectors/`). A number or a list edited in one place
//! and not the other fails here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use chacha20::ChaCha20Rng;
use hpke::{Kem as _, Serializable as _};
use rand_core::{Rng as _, SeedableRng};
use serde_json::Value;
use serment_core::document::Header;
use serment_core::identity::DeviceSecret;
use serment_core::sign::{self, Context};
use serment_core::wrap::WrappedKey;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn protocol() -> String {
    std::fs::read_to_string(root().join("docs/PROTOCOL.md")).unwrap()
}

fn vector(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/vectors").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hexfield(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap_or_else(|| panic!("missing {k}"))).unwrap()
}

/// A struct as written in a PROTOCOL.md code block: `Name {` … `}  // N bytes`.
struct Spec {
    /// `(field, type)` in order.
    fields: Vec<(String, String)>,
    /// The number in the closing line's comment (`// 76 bytes`), if any.
    documented_len: Option<usize>,
}

fn spec(md: &str, name: &str) -> Spec {
    let open = format!("\n{name} {{\n");
    let start = md
        .find(&open)
        .unwrap_or_else(|| panic!("no `{name} {{` in PROTOCOL.md"))
        + open.len();
    let mut fields = Vec::new();
    for line in md[start..].lines() {
        let code = line.split("//").next().unwrap().trim();
        if code.starts_with('}') {
            let documented_len = line.split_once("//").and_then(|(_, c)| {
                c.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
            });
            return Spec {
                fields,
                documented_len,
            };
        }
        let mut words = code.split_whitespace();
        let field = words.next().unwrap().to_owned();
        let ty: Vec<&str> = words.collect();
        let ty = ty.join(" ");
        // `format_version u16 = 1`: the type is before the `=`.
        let ty = ty.split('=').next().unwrap().trim().to_owned();
        fields.push((field, ty));
    }
    panic!("`{name}` is not closed");
}

/// The size of a field type, or `None` when it is variable (`str8`, `rest`, `[32] * n`...).
fn fixed_size(ty: &str) -> Option<usize> {
    match ty {
        "u8" => Some(1),
        "u16" => Some(2),
        "u32" => Some(4),
        "u64" => Some(8),
        t if t.starts_with('[') && t.ends_with(']') => t[1..t.len() - 1].parse().ok(),
        _ => None,
    }
}

/// Sum of the leading fixed-size fields, and the first variable field (if any).
fn fixed_prefix(s: &Spec) -> (usize, Option<&str>) {
    let mut n = 0;
    for (f, t) in &s.fields {
        match fixed_size(t) {
            Some(k) => n += k,
            None => return (n, Some(f)),
        }
    }
    (n, None)
}

#[test]
fn documented_lengths_match_the_encoder() {
    let md = protocol();
    let doc = vector("document-observation.json");

    // §6.1 Header: every field fixed, documented 76, as encoded.
    let header = spec(&md, "Header");
    assert_eq!(fixed_prefix(&header), (Header::LEN, None));
    assert_eq!(header.documented_len, Some(Header::LEN));
    let sealed = hexfield(&doc, "sealed");
    Header::decode(&sealed[..Header::LEN]).unwrap();

    // §7 WrappedKey: 268, as encoded; §6.4 says the same of each wrap in a container.
    let wrap = spec(&md, "WrappedKey");
    let wrap_bytes = hexfield(&doc, "recipient_wrap");
    assert_eq!(fixed_prefix(&wrap), (wrap_bytes.len(), None));
    assert_eq!(wrap.documented_len, Some(wrap_bytes.len()));
    assert_eq!(WrappedKey::LEN, wrap_bytes.len());
    let container = spec(&md, "Container");
    let wraps_comment = md
        .lines()
        .find(|l| l.trim_start().starts_with("wraps ") && l.contains("WrappedKey * wrap_count"))
        .unwrap();
    let each: usize = wraps_comment
        .split("§7, ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(each, WrappedKey::LEN, "§6.4: {wraps_comment}");
    assert_eq!(fixed_prefix(&container).0, 10);

    // §4 DeviceRecord: fixed fields plus the str8 handle.
    let rec = spec(&md, "DeviceRecord");
    let record = hexfield(&vector("device-record.json"), "record");
    let fixed: usize = rec.fields.iter().filter_map(|(_, t)| fixed_size(t)).sum();
    let handle = "labo-biomed";
    assert_eq!(record.len(), fixed + 1 + handle.len());
    assert_eq!(
        rec.fields
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>(),
        [
            "[4]", "u16", "u16", "str8", "[32]", "[32]", "[32]", "u64", "[64]"
        ]
    );

    // §9 Keystore: the fixed header, then AES-256-GCM ciphertext (payload + 16-byte tag).
    let ks = spec(&md, "Keystore");
    let ks_vec = vector("keystore.json");
    let file = hexfield(&ks_vec, "file");
    let payload = ks_vec["payload"].as_str().unwrap();
    let (prefix, rest) = fixed_prefix(&ks);
    assert_eq!(rest, Some("ciphertext"));
    assert_eq!(file.len(), prefix + payload.len() + 16);

    // §9 KeystorePayload: the fixed part before `state`.
    let payload_spec = spec(&md, "KeystorePayload");
    let (prefix, rest) = fixed_prefix(&payload_spec);
    assert_eq!(rest, Some("state"));
    assert_eq!(payload_spec.documented_len, Some(prefix));
    assert_eq!(prefix, 2 + 32 + 32 + 32 + 32 + 4);
}

/// The signed-field list of §6.1's Trailer comment and §6.3's prose, split on `||`.
fn documented_signed_fields(md: &str) -> Vec<String> {
    let split = |s: &str| -> Vec<String> {
        s.split("||")
            .map(|f| f.trim().trim_start_matches("u16(").trim_end_matches(')'))
            .map(str::to_owned)
            .collect()
    };
    let trailer = md
        .lines()
        .find(|l| l.contains(r#"sig_input("document", "#) && l.contains("signature"))
        .unwrap();
    let inner = trailer
        .split(r#"sig_input("document", "#)
        .nth(1)
        .unwrap()
        .trim_end()
        .trim_end_matches(')');
    let from_trailer = split(inner);
    let prose = md
        .split("The author device signs `")
        .nth(1)
        .unwrap()
        .split('`')
        .next()
        .unwrap();
    assert_eq!(
        split(prose),
        from_trailer,
        "§6.3 and the §6.1 Trailer list different signed fields"
    );
    from_trailer
}

/// Computes each documented signed field from the sealed bytes, as the spec says, and checks
/// that their concatenation is what the author signed.
fn check_document_signature(name: &str, suite2: bool) {
    let md = protocol();
    let fields = documented_signed_fields(&md);
    let doc = vector(name);
    let sealed = hexfield(&doc, "sealed");
    let author =
        DeviceSecret::from_test_seed(&hexfield(&doc, "author_device_seed").try_into().unwrap());
    let header = &sealed[..Header::LEN];
    // §5: header_hash = H("serment/v1/header" 0x00 || header bytes).
    let header_hash: [u8; 32] =
        Sha256::digest([&b"serment/v1/header\x00"[..], header].concat()).into();
    assert_eq!(header_hash.to_vec(), hexfield(&doc, "header_hash"));
    // §6.1: chunks of padded_len bytes in 64 KiB pieces, each + 16-byte tag.
    let padded_len = u64::from_be_bytes(header[68..76].try_into().unwrap()) as usize;
    let n = padded_len.div_ceil(65536).max(1);
    let mut at = Header::LEN;
    let mut chunk_hashes = Vec::new();
    for i in 0..n {
        let len = (padded_len - i * 65536).min(65536) + 16;
        let chunk = &sealed[at..at + len];
        at += len;
        let idx = (i as u32).to_be_bytes();
        let h: [u8; 32] = if suite2 {
            let mut hasher = blake3::Hasher::new_derive_key("serment/v1/chunk");
            hasher.update(chunk).update(&idx);
            hasher.finalize().into()
        } else {
            Sha256::digest([&b"serment/v1/chunk\x00"[..], &idx, chunk].concat()).into()
        };
        chunk_hashes.push(h);
    }
    let ciphertext_hash: [u8; 32] = if suite2 {
        let mut hasher = blake3::Hasher::new_derive_key("serment/v1/ciphertext");
        for h in &chunk_hashes {
            hasher.update(h);
        }
        hasher.finalize().into()
    } else {
        let mut input = b"serment/v1/ciphertext\x00".to_vec();
        chunk_hashes.iter().for_each(|h| input.extend_from_slice(h));
        Sha256::digest(input).into()
    };
    let trailer = &sealed[at..];
    let count = u16::from_be_bytes(trailer[..2].try_into().unwrap()) as usize;
    let recipients = &trailer[2..2 + 32 * count];
    let signature = &trailer[2 + 32 * count..];
    assert_eq!(signature.len(), 64, "{name}: trailer layout");
    let mut body = Vec::new();
    for f in &fields {
        match f.as_str() {
            "header_hash" => body.extend_from_slice(&header_hash),
            "ciphertext_hash" => body.extend_from_slice(&ciphertext_hash),
            "recipient_count" => body.extend_from_slice(&trailer[..2]),
            "recipients" => body.extend_from_slice(recipients),
            other => panic!("PROTOCOL.md signs an unknown field {other:?}"),
        }
    }
    sign::verify(
        &author.signing_public_key(),
        Context::Document,
        &body,
        signature,
        "document",
    )
    .unwrap_or_else(|e| {
        panic!("{name}: the documented fields {fields:?} are not what is signed: {e}")
    });
    // And the list is not vacuous: dropping any one field breaks the signature.
    for skip in &fields {
        let mut partial = Vec::new();
        for f in fields.iter().filter(|f| *f != skip) {
            partial.extend_from_slice(match f.as_str() {
                "header_hash" => &header_hash[..],
                "ciphertext_hash" => &ciphertext_hash[..],
                "recipient_count" => &trailer[..2],
                _ => recipients,
            });
        }
        assert!(
            sign::verify(
                &author.signing_public_key(),
                Context::Document,
                &partial,
                signature,
                "document"
            )
            .is_err()
        );
    }
}

#[test]
fn documented_document_signature_fields_are_the_signed_bytes() {
    let fields = documented_signed_fields(&protocol());
    assert_eq!(
        fields,
        [
            "header_hash",
            "ciphertext_hash",
            "recipient_count",
            "recipients"
        ]
    );
    check_document_signature("document-observation.json", false);
    check_document_signature("document-observation-suite2.json", true);
}

#[test]
fn documented_wrap_signature_covers_all_bytes_above() {
    let md = protocol();
    let wrap = spec(&md, "WrappedKey");
    let sig_line = md
        .lines()
        .find(|l| l.contains(r#"sig_input("wrap", all bytes above)"#))
        .unwrap();
    assert!(sig_line.trim_start().starts_with("signature"), "{sig_line}");
    assert_eq!(wrap.fields.last().unwrap().0, "signature");
    for name in [
        "document-observation.json",
        "document-observation-suite2.json",
    ] {
        let doc = vector(name);
        let w = hexfield(&doc, "recipient_wrap");
        let author =
            DeviceSecret::from_test_seed(&hexfield(&doc, "author_device_seed").try_into().unwrap());
        let (above, sig) = w.split_at(w.len() - 64);
        sign::verify(
            &author.signing_public_key(),
            Context::Wrap,
            above,
            sig,
            "wrap",
        )
        .unwrap();
    }
}

/// tests/vectors/README.md: one ChaCha20 stream, 32 bytes per wrap, in ascending device-id
/// order over the recipients and the author.
#[test]
fn hpke_seed_stream_is_shared_across_wraps_in_recipient_order() {
    // ChaCha20Rng is the RFC 8439 keystream for key = seed and nonce 0 (RFC 8439 A.1, #1).
    let mut z = ChaCha20Rng::from_seed([0; 32]);
    let mut block = [0u8; 16];
    z.fill_bytes(&mut block);
    assert_eq!(hex::encode(block), "76b8e0ada0f13d90405d6ae55386bd28");

    let readme = std::fs::read_to_string(root().join("tests/vectors/README.md")).unwrap();
    assert!(
        readme.contains("sorted by device id (ascending"),
        "README changed"
    );
    assert!(
        readme.contains("next 32 bytes of the stream"),
        "README changed"
    );
    for name in [
        "document-observation.json",
        "document-observation-suite2.json",
    ] {
        let doc = vector(name);
        let author =
            DeviceSecret::from_test_seed(&hexfield(&doc, "author_device_seed").try_into().unwrap());
        let reader = DeviceSecret::from_test_seed(
            &hexfield(&doc, "recipient_device_seed").try_into().unwrap(),
        );
        let mut ids = [author.id(), reader.id()];
        ids.sort();
        let rank = ids.iter().position(|i| *i == reader.id()).unwrap();
        let mut rng = ChaCha20Rng::from_seed(hexfield(&doc, "hpke_rng_seed").try_into().unwrap());
        let mut ikms = [[0u8; 32]; 2];
        for ikm in &mut ikms {
            rng.fill_bytes(ikm);
        }
        let enc_of = |ikm: &[u8; 32]| {
            let (_, pk) = hpke::kem::X25519HkdfSha256::derive_keypair(ikm);
            pk.to_bytes().to_vec()
        };
        let wrap = hexfield(&doc, "recipient_wrap");
        // enc follows magic, version, suite, doc_id, doc_version, header_hash, recipient, sharer.
        let enc = &wrap[4 + 2 + 2 + 16 + 4 + 32 + 32 + 32..][..32];
        assert_eq!(enc_of(&ikms[rank]), enc, "{name}: rank {rank}");
        assert_ne!(enc_of(&ikms[1 - rank]), enc, "{name}");
    }
}

/// §4 and §7, suite 3 (issue 15): the hybrid record and wrap as documented are the bytes of the
/// suite-3 vectors.
#[test]
fn documented_hybrid_lengths_match_the_encoder() {
    let md = protocol();
    let wrap = spec(&md, "HybridWrappedKey");
    let wrap_bytes = hexfield(&vector("document-observation-xwing.json"), "recipient_wrap");
    assert_eq!(fixed_prefix(&wrap), (wrap_bytes.len(), None));
    assert_eq!(wrap.documented_len, Some(wrap_bytes.len()));
    assert_eq!(WrappedKey::HYBRID_LEN, wrap_bytes.len());
    assert_eq!((wrap_bytes[6], wrap_bytes[7]), (0, 3));

    let rec = spec(&md, "HybridDeviceRecord");
    let record = hexfield(&vector("device-record-xwing.json"), "record");
    let fixed: usize = rec.fields.iter().filter_map(|(_, t)| fixed_size(t)).sum();
    assert_eq!(record.len(), fixed + 1 + "labo-biomed".len());
    assert_eq!(
        rec.fields
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>(),
        [
            "[4]", "u16", "u16", "str8", "[32]", "[32]", "[32]", "[1216]", "u64", "[64]"
        ]
    );
    assert_eq!(
        serment_core::identity::DeviceRecord::MAX_LEN,
        fixed + 1 + serment_core::identity::MAX_HANDLE_LEN
    );
}
