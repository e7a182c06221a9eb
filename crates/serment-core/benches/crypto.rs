//! Core benchmarks (issue 4, PROTOCOL.md §2). Run with the machine otherwise quiet:
//!
//! ```text
//! cargo bench -p serment-core --bench crypto
//! cargo bench -p serment-core --bench crypto -- aead   # one group
//! ```
//!
//! - `document_ops`: whole documents through [`document::seal`] and [`document::open`], from
//!   memory to a sink, on all cores (the pipeline's worker threads), at 4 KiB, 1 MiB, 256 MiB, in
//!   suite 2 (and 256 MiB in suite 1);
//! - `aead`: the raw AEAD on 64 KiB chunks, one core: ring AES-256-GCM (the suite's backend),
//!   ring ChaCha20-Poly1305, RustCrypto `aes-gcm` and `chacha20poly1305`;
//! - `chunk`: what the format costs per 64 KiB chunk on one core: SHA-256 alone (`sha2`, which
//!   suite 1 uses, and ring's), BLAKE3 alone (suite 2), each suite's chunk hash, and seal + chunk
//!   hash as [`StreamKey::seal_slot`] does it, per suite;
//! - `ops`: HPKE wrap and unwrap of a DEK, Ed25519 sign and verify of a document signature;
//! - `memory` (issue 14 §1): the memory ceiling, in the same run as `document_ops`: a 256 MiB
//!   copy (`copy_from_slice`: reads 256 MiB, writes 256 MiB) and a read-and-write pass over
//!   256 MiB in place (each 8-byte word read, changed, written back), on one core and on every
//!   core (the buffer split in one contiguous part per thread). The counter is the bytes of the
//!   buffer, as `seal_256mib`'s is the bytes sealed: the all-core seal's ratio against the memory
//!   ceiling is `seal_256mib / read_write_256mib_all_cores` (seal reads its input once and writes
//!   cache-resident chunks to a sink), and against the compute ceiling it is `seal_256mib /
//!   (cores x chunk::seal_slot_suite2)`;
//! - `pq` (issue 15): classical (X25519, suite 1) against hybrid (X-Wing, suite 3) wrap and
//!   unwrap, one core, and sealing a 4 KiB document for 3 recipients with each. Bytes per wrap:
//!   `WrappedKey::LEN` (268) against `WrappedKey::HYBRID_LEN` (1356), the counter of the
//!   `wrap` rows.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::io;

use divan::Bencher;
use divan::counter::BytesCount;
use serment_core::document::{self, Metadata, OpenInput, SealInput};
use serment_core::identity::DeviceSecret;
use serment_core::sign::{self, Context};
use serment_core::stream::{CHUNK_SIZE, StreamKey, TAG_LEN};
use serment_core::wrap::{self, Recipient, WrappedKey};
use serment_core::{DocId, Suite};
use zeroize::Zeroizing;

fn main() {
    divan::main();
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn device(seed: u8) -> DeviceSecret {
    DeviceSecret::from_test_seed(&[seed; 32])
}

fn recipient(d: &DeviceSecret) -> Recipient {
    Recipient::from_device(d)
}

fn content(len: usize) -> Vec<u8> {
    // Incompressible enough, and cheap to make.
    let mut v = vec![0u8; len];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut v {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    v
}

fn meta(len: usize) -> Metadata {
    Metadata {
        content_length: len as u64,
        mime_type: Some("application/octet-stream".into()),
        ..Metadata::default()
    }
}

/// `document::seal` in `suite` (a fixed DEK and nonce prefix: benchmarks only).
fn seal_in<W: io::Write>(
    suite: Suite,
    author: &DeviceSecret,
    to: &[Recipient],
    data: &[u8],
    out: W,
) -> document::Sealed {
    document::seal_with_suite(
        SealInput {
            doc_id: DocId::from_bytes([1; 16]),
            doc_version: 1,
            author,
            recipients: to,
            metadata: meta(data.len()),
        },
        data,
        out,
        suite,
        Zeroizing::new([0x42; 32]),
        [7; 7],
        &mut serment_core::rng::os_rng(),
    )
    .unwrap()
}

fn seal_to_vec(
    suite: Suite,
    author: &DeviceSecret,
    to: &[Recipient],
    data: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 4096);
    let sealed = seal_in(suite, author, to, data, &mut out);
    let wrap = sealed
        .wraps
        .iter()
        .find(|(k, _)| *k == to[0].device_id)
        .unwrap()
        .1
        .clone();
    (out, wrap)
}

fn bench_seal(b: Bencher, size: usize, suite: Suite) {
    let author = device(1);
    let to = [recipient(&device(2)), recipient(&device(3))];
    let data = content(size);
    b.counter(BytesCount::new(size))
        .bench_local(|| seal_in(suite, &author, &to, black_box(data.as_slice()), io::sink()));
}

fn bench_open(b: Bencher, size: usize, suite: Suite) {
    let author = device(1);
    let reader = device(2);
    let to = [recipient(&reader), recipient(&device(3))];
    let (blob, wrap) = seal_to_vec(suite, &author, &to, &content(size));
    let author_key = author.signing_public_key();
    b.counter(BytesCount::new(size)).bench_local(|| {
        document::open(
            OpenInput {
                device: &reader,
                wrap: &wrap,
                author_signing_key: &author_key,
                expected: None,
            },
            black_box(blob.as_slice()),
            io::sink(),
        )
        .unwrap()
    });
}

/// Sealing and opening whole documents (two recipients plus the author), memory to sink, in the
/// current suite (2, BLAKE3); the `_suite1` rows are the same in suite 1 (SHA-256), which is
/// still read.
mod document_ops {
    use super::*;

    #[divan::bench(args = [4 * KIB, MIB])]
    fn seal(b: Bencher, size: usize) {
        bench_seal(b, size, Suite::CURRENT);
    }

    #[divan::bench(args = [4 * KIB, MIB])]
    fn open(b: Bencher, size: usize) {
        bench_open(b, size, Suite::CURRENT);
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn seal_256mib(b: Bencher) {
        bench_seal(b, 256 * MIB, Suite::CURRENT);
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn open_256mib(b: Bencher) {
        bench_open(b, 256 * MIB, Suite::CURRENT);
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn seal_256mib_suite1(b: Bencher) {
        bench_seal(b, 256 * MIB, Suite::Sha256);
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn open_256mib_suite1(b: Bencher) {
        bench_open(b, 256 * MIB, Suite::Sha256);
    }
}

/// The memory ceiling (issue 14 §1): a 256 MiB copy and a 256 MiB read-and-write pass, on one
/// core and on all cores. Buffers are touched once before timing (no page faults measured).
mod memory {
    use super::*;

    const SIZE: usize = 256 * MIB;

    fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    /// Reads each 8-byte word of `buf`, adds 1 and writes it back.
    fn read_write(buf: &mut [u8]) {
        for w in buf.chunks_exact_mut(8) {
            let v = u64::from_ne_bytes(w.try_into().unwrap()).wrapping_add(1);
            w.copy_from_slice(&v.to_ne_bytes());
        }
    }

    /// Runs `f` on matching parts of `a` and `b`, one thread per core.
    fn split2(a: &mut [u8], b: &[u8], f: fn(&mut [u8], &[u8])) {
        let part = a.len().div_ceil(cores());
        std::thread::scope(|s| {
            for (x, y) in a.chunks_mut(part).zip(b.chunks(part)) {
                s.spawn(move || f(x, y));
            }
        });
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn copy_256mib(b: Bencher) {
        let src = content(SIZE);
        let mut dst = vec![1u8; SIZE];
        b.counter(BytesCount::new(SIZE))
            .bench_local(|| dst.copy_from_slice(black_box(&src)));
        black_box(&dst);
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn copy_256mib_all_cores(b: Bencher) {
        let src = content(SIZE);
        let mut dst = vec![1u8; SIZE];
        b.counter(BytesCount::new(SIZE)).bench_local(|| {
            split2(&mut dst, black_box(&src), |x, y| x.copy_from_slice(y));
        });
        black_box(&dst);
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn read_write_256mib(b: Bencher) {
        let mut buf = content(SIZE);
        b.counter(BytesCount::new(SIZE))
            .bench_local(|| read_write(black_box(&mut buf)));
        black_box(&buf);
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn read_write_256mib_all_cores(b: Bencher) {
        let mut buf = content(SIZE);
        let part = SIZE.div_ceil(cores());
        b.counter(BytesCount::new(SIZE)).bench_local(|| {
            std::thread::scope(|s| {
                for x in black_box(&mut buf).chunks_mut(part) {
                    s.spawn(move || read_write(x));
                }
            });
        });
        black_box(&buf);
    }
}

/// The raw AEAD on one 64 KiB chunk, one core, in place, tag detached.
mod aead {
    use super::*;
    use aes_gcm::aead::{AeadInOut, KeyInit};

    const KEY: [u8; 32] = [7; 32];
    const NONCE: [u8; 12] = [1; 12];
    const AAD: [u8; 32] = [2; 32];

    #[divan::bench]
    fn ring_aes256gcm(b: Bencher) {
        use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).unwrap());
        let mut buf = content(CHUNK_SIZE);
        b.counter(BytesCount::new(CHUNK_SIZE)).bench_local(|| {
            key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(AAD),
                black_box(&mut buf),
            )
            .unwrap()
        });
    }

    #[divan::bench]
    fn ring_aes256gcm_open(b: Bencher) {
        use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).unwrap());
        let mut sealed = content(CHUNK_SIZE);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(NONCE),
            Aad::from(AAD),
            &mut sealed,
        )
        .unwrap();
        let mut buf = sealed.clone();
        b.counter(BytesCount::new(CHUNK_SIZE)).bench_local(|| {
            buf.copy_from_slice(&sealed);
            key.open_in_place(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(AAD),
                black_box(&mut buf),
            )
            .map(|p| p.len())
            .unwrap()
        });
    }

    #[divan::bench]
    fn ring_chacha20poly1305(b: Bencher) {
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &KEY).unwrap());
        let mut buf = content(CHUNK_SIZE);
        b.counter(BytesCount::new(CHUNK_SIZE)).bench_local(|| {
            key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(AAD),
                black_box(&mut buf),
            )
            .unwrap()
        });
    }

    #[divan::bench]
    fn rustcrypto_aes256gcm(b: Bencher) {
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&KEY).unwrap();
        let nonce = aes_gcm::aead::Nonce::<aes_gcm::Aes256Gcm>::from(NONCE);
        let mut buf = content(CHUNK_SIZE);
        b.counter(BytesCount::new(CHUNK_SIZE)).bench_local(|| {
            cipher
                .encrypt_inout_detached(&nonce, &AAD, black_box(buf.as_mut_slice()).into())
                .unwrap()
        });
    }

    #[divan::bench]
    fn rustcrypto_chacha20poly1305(b: Bencher) {
        let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&KEY).unwrap();
        let nonce = chacha20poly1305::Nonce::from(NONCE);
        let mut buf = content(CHUNK_SIZE);
        b.counter(BytesCount::new(CHUNK_SIZE)).bench_local(|| {
            cipher
                .encrypt_inout_detached(&nonce, &AAD, black_box(buf.as_mut_slice()).into())
                .unwrap()
        });
    }
}

/// What the format adds per 64 KiB chunk, one core.
mod chunk {
    use super::*;

    #[divan::bench]
    fn sha256_sha2(b: Bencher) {
        use sha2::{Digest, Sha256};
        let buf = content(CHUNK_SIZE + TAG_LEN);
        b.counter(BytesCount::new(buf.len()))
            .bench_local(|| Sha256::digest(black_box(&buf)));
    }

    #[divan::bench]
    fn sha256_ring(b: Bencher) {
        let buf = content(CHUNK_SIZE + TAG_LEN);
        b.counter(BytesCount::new(buf.len()))
            .bench_local(|| ring::digest::digest(&ring::digest::SHA256, black_box(&buf)));
    }

    /// BLAKE3 (the `blake3` crate, runtime-detected SIMD: AVX2 here), one core: suite 2's hash.
    #[divan::bench]
    fn blake3(b: Bencher) {
        let buf = content(CHUNK_SIZE + TAG_LEN);
        b.counter(BytesCount::new(buf.len()))
            .bench_local(|| ::blake3::hash(black_box(&buf)));
    }

    /// Suite 1's chunk hash (§6.1): SHA-256 with its label.
    #[divan::bench]
    fn chunk_hash_suite1(b: Bencher) {
        let buf = content(CHUNK_SIZE + TAG_LEN);
        b.counter(BytesCount::new(buf.len()))
            .bench_local(|| serment_core::stream::chunk_hash(Suite::Sha256, 3, black_box(&buf)));
    }

    /// Suite 2's chunk hash (§6.1): BLAKE3 in derive_key mode.
    #[divan::bench]
    fn chunk_hash_suite2(b: Bencher) {
        let buf = content(CHUNK_SIZE + TAG_LEN);
        b.counter(BytesCount::new(buf.len()))
            .bench_local(|| serment_core::stream::chunk_hash(Suite::Blake3, 3, black_box(&buf)));
    }

    fn bench_seal_slot(b: Bencher, suite: Suite) {
        let key =
            StreamKey::new(&Zeroizing::new([7; 32]), suite, [1; 7], [2; 32], 1 << 20).unwrap();
        let mut slot = content(CHUNK_SIZE + TAG_LEN);
        let padded = (1u64 << 20) * CHUNK_SIZE as u64;
        b.counter(BytesCount::new(CHUNK_SIZE))
            .bench_local(|| key.seal_slot(5, padded, black_box(&mut slot)).unwrap());
    }

    /// Seal one chunk in place and hash it: the per-chunk work of sealing, one core, suite 1.
    #[divan::bench]
    fn seal_slot_suite1(b: Bencher) {
        bench_seal_slot(b, Suite::Sha256);
    }

    /// The same in suite 2.
    #[divan::bench]
    fn seal_slot_suite2(b: Bencher) {
        bench_seal_slot(b, Suite::Blake3);
    }
}

/// Key wraps and signatures, operations per second.
mod ops {
    use super::*;

    #[divan::bench]
    fn hpke_wrap(b: Bencher) {
        let author = device(1);
        let to = recipient(&device(2));
        let dek = Zeroizing::new([9u8; 32]);
        let doc = DocId::from_bytes([1; 16]);
        let mut rng = serment_core::rng::os_rng();
        b.bench_local(|| wrap::wrap_dek(&dek, &doc, 1, &[3; 32], &to, &author, &mut rng).unwrap());
    }

    #[divan::bench]
    fn hpke_unwrap(b: Bencher) {
        let author = device(1);
        let reader = device(2);
        let dek = Zeroizing::new([9u8; 32]);
        let doc = DocId::from_bytes([1; 16]);
        let bytes = wrap::wrap_dek(
            &dek,
            &doc,
            1,
            &[3; 32],
            &recipient(&reader),
            &author,
            &mut serment_core::rng::os_rng(),
        )
        .unwrap();
        let w = WrappedKey::decode(&bytes).unwrap();
        b.bench_local(|| wrap::unwrap_dek(black_box(&w), &reader).unwrap());
    }

    /// Signing a document's signed bytes (header hash, ciphertext hash, three recipients).
    #[divan::bench]
    fn ed25519_sign(b: Bencher) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&device(1).signing_seed());
        let body = [5u8; 64 + 2 + 3 * 32];
        b.bench_local(|| sign::sign(&sk, Context::Document, black_box(&body)));
    }

    #[divan::bench]
    fn ed25519_verify(b: Bencher) {
        let author = device(1);
        let sk = ed25519_dalek::SigningKey::from_bytes(&author.signing_seed());
        let body = [5u8; 64 + 2 + 3 * 32];
        let sig = sign::sign(&sk, Context::Document, &body);
        let pk = author.signing_public_key();
        b.bench_local(|| {
            sign::verify(&pk, Context::Document, black_box(&body), &sig, "document").unwrap()
        });
    }
}

/// Classical against hybrid key wraps (issue 15, PROTOCOL.md §7): one core each.
mod pq {
    use super::*;

    const KEMS: [&str; 2] = ["X25519", "X-Wing"];

    fn dev(kem: &str, seed: u8) -> DeviceSecret {
        match kem {
            "X-Wing" => DeviceSecret::from_test_seed_hybrid(&[seed; 32]),
            _ => DeviceSecret::from_test_seed(&[seed; 32]),
        }
    }

    /// One DEK wrapped to one recipient (HPKE encapsulation + seal + the sharer's Ed25519
    /// signature); the counter is the wrap's size in bytes.
    #[divan::bench(args = KEMS)]
    fn wrap(b: Bencher, kem: &str) {
        let author = dev(kem, 1);
        let to = Recipient::from_device(&dev(kem, 2));
        let dek = Zeroizing::new([9u8; 32]);
        let doc = DocId::from_bytes([1; 16]);
        let mut rng = serment_core::rng::os_rng();
        let len = to.kem().wrap_len();
        b.counter(BytesCount::new(len)).bench_local(|| {
            wrap::wrap_dek(&dek, &doc, 1, &[3; 32], black_box(&to), &author, &mut rng).unwrap()
        });
    }

    /// One wrap opened (HPKE decapsulation + open; the signature check is not included).
    #[divan::bench(args = KEMS)]
    fn unwrap(b: Bencher, kem: &str) {
        let author = dev(kem, 1);
        let reader = dev(kem, 2);
        let dek = Zeroizing::new([9u8; 32]);
        let doc = DocId::from_bytes([1; 16]);
        let bytes = wrap::wrap_dek(
            &dek,
            &doc,
            1,
            &[3; 32],
            &Recipient::from_device(&reader),
            &author,
            &mut serment_core::rng::os_rng(),
        )
        .unwrap();
        let w = WrappedKey::decode(&bytes).unwrap();
        b.counter(BytesCount::new(bytes.len()))
            .bench_local(|| wrap::unwrap_dek(black_box(&w), &reader).unwrap());
    }

    /// A 4 KiB document sealed for 3 recipients (4 wraps with the author's own), suite 2.
    #[divan::bench(args = KEMS)]
    fn seal_4kib_3_recipients(b: Bencher, kem: &str) {
        let author = dev(kem, 1);
        let to: Vec<Recipient> = (2..5)
            .map(|i| Recipient::from_device(&dev(kem, i)))
            .collect();
        let data = content(4 * KIB);
        b.counter(BytesCount::new(4 * KIB)).bench_local(|| {
            seal_in(
                Suite::Blake3,
                &author,
                &to,
                black_box(data.as_slice()),
                io::sink(),
            )
        });
    }
}
