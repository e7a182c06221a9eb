//! The seal/open pipeline over many jobs (PROTOCOL.md §5, §6) and the offline container (§6.4).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use serment_core::document::{self, CONTAINER_PREFIX_LEN, Header};
use serment_core::stream::{CHUNK_SIZE, TAG_LEN};
use serment_core::wrap::WrappedKey;
use serment_core::{DocId, Error, Suite};
use zeroize::Zeroizing;

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + i / 7) as u8).collect()
}

/// A reader that hands out at most `step` bytes per read, to exercise short reads.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn many_jobs_round_trip_and_match_a_one_job_reference() {
    let lab = Party::new(1);
    let p = Party::new(2);
    // 8 chunks per job: cover 1 job, 2 jobs exactly, and many jobs with a short tail.
    for chunks in [7usize, 16, 17, 41] {
        let data = content(chunks * CHUNK_SIZE - 100);
        let (blob, sealed) = seal(&lab, &[&p], &data);
        assert_eq!(blob.len() as u64, sealed.sealed_len);
        let w = wrap_for(&sealed, &p.dev.id());
        assert_eq!(open(&p, &lab, &blob, w).unwrap(), data, "{chunks} chunks");
        // Short reads on both sides give the same result.
        let mut out = Vec::new();
        document::open(
            document::OpenInput {
                device: &p.dev,
                wrap: w,
                author_signing_key: &lab.dev.signing_public_key(),
                expected: None,
            },
            Dribble {
                data: &blob,
                step: 1000,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(out, data);
    }
}

#[test]
fn seal_from_a_short_reading_source() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let data = content(20 * CHUNK_SIZE + 3);
    let mut blob = Vec::new();
    let sealed = document::seal(
        document::SealInput {
            doc_id: DocId::from_bytes([4; 16]),
            doc_version: 1,
            author: &lab.dev,
            recipients: &[p.recipient()],
            metadata: meta(data.len()),
        },
        Dribble {
            data: &data,
            step: 777,
        },
        &mut blob,
    )
    .unwrap();
    assert_eq!(
        open(&p, &lab, &blob, wrap_for(&sealed, &p.dev.id())).unwrap(),
        data
    );
}

#[test]
fn tamper_in_a_late_job_fails_without_hanging() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let data = content(40 * CHUNK_SIZE);
    let (blob, sealed) = seal(&lab, &[&p], &data);
    let w = wrap_for(&sealed, &p.dev.id());
    let c = CHUNK_SIZE + TAG_LEN;
    for chunk in [0usize, 9, 23, 40] {
        let mut t = blob.clone();
        t[Header::LEN + chunk * c + 11] ^= 1;
        assert_eq!(open(&p, &lab, &t, w), Err(Error::Decrypt), "chunk {chunk}");
    }
    // Cut inside job 3.
    assert_eq!(
        open(&p, &lab, &blob[..Header::LEN + 27 * c + 5], w),
        Err(Error::TruncatedStream)
    );
}

#[test]
fn content_shorter_or_longer_than_announced_fails() {
    let lab = Party::new(1);
    let data = content(30 * CHUNK_SIZE);
    for announced in [data.len() - 1, data.len() + 1] {
        let r = document::seal(
            document::SealInput {
                doc_id: DocId::from_bytes([4; 16]),
                doc_version: 1,
                author: &lab.dev,
                recipients: &[],
                metadata: meta(announced),
            },
            data.as_slice(),
            std::io::sink(),
        );
        assert!(matches!(r, Err(Error::Io(_))), "{announced}: {r:?}");
    }
}

fn seal_container(author: &Party, to: &[&Party], data: &[u8]) -> Vec<u8> {
    let recipients: Vec<_> = to.iter().map(|p| p.recipient()).collect();
    let mut out = Vec::new();
    let sealed = document::seal_container(
        document::SealInput {
            doc_id: DocId::from_bytes([7; 16]),
            doc_version: 1,
            author: &author.dev,
            recipients: &recipients,
            metadata: meta(data.len()),
        },
        data,
        &mut out,
    )
    .unwrap();
    let wraps_len = sealed.wraps.len() * WrappedKey::LEN;
    assert_eq!(
        out.len() as u64,
        (CONTAINER_PREFIX_LEN + wraps_len) as u64 + sealed.sealed_len
    );
    assert_eq!(&out[..4], b"SRMC");
    out
}

fn open_container(reader: &Party, author: &Party, c: &[u8]) -> serment_core::Result<Vec<u8>> {
    let mut out = Vec::new();
    document::open_container(&reader.dev, &author.dev.signing_public_key(), c, &mut out)?;
    Ok(out)
}

#[test]
fn container_round_trip_for_each_recipient() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let gp = Party::new(3);
    let stranger = Party::new(9);
    for len in [0, 1, 3 * CHUNK_SIZE + 5] {
        let data = content(len);
        let c = seal_container(&lab, &[&p, &gp], &data);
        for reader in [&p, &gp, &lab] {
            assert_eq!(open_container(reader, &lab, &c).unwrap(), data);
        }
        assert!(matches!(
            open_container(&stranger, &lab, &c),
            Err(Error::ContextMismatch(_))
        ));
        assert!(matches!(
            open_container(&p, &gp, &c),
            Err(Error::WrongSigner { .. })
        ));
    }
}

#[test]
fn container_tampering_is_rejected() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let c = seal_container(&lab, &[&p], &content(2 * CHUNK_SIZE));
    // Magic, version, suite, count, every byte of the wraps, a chunk byte, the last byte.
    let wraps_end = CONTAINER_PREFIX_LEN + 2 * WrappedKey::LEN;
    let mut positions: Vec<usize> = (0..wraps_end).collect();
    positions.extend([wraps_end + Header::LEN + 3, c.len() - 1]);
    for i in positions {
        let mut t = c.clone();
        t[i] ^= 0x40;
        let r = open_container(&p, &lab, &t);
        // A flip in the other recipient's wrap may leave this reader's wrap intact, but it
        // must then still fail its syntax check or be ignored: never a wrong plaintext.
        if let Ok(out) = r {
            assert_eq!(out, content(2 * CHUNK_SIZE), "flip at {i}");
        }
    }
    // Truncation anywhere fails.
    for cut in [0, 5, CONTAINER_PREFIX_LEN + 3, wraps_end + 10, c.len() - 1] {
        assert!(open_container(&p, &lab, &c[..cut]).is_err(), "cut {cut}");
    }
    // A zero wrap count is refused.
    let mut zero = c.clone();
    zero[8] = 0;
    zero[9] = 0;
    assert!(open_container(&p, &lab, &zero).is_err());
}

/// Seals in `suite` with a fixed DEK (returned), as only tests may.
fn seal_suite(
    suite: Suite,
    author: &Party,
    to: &Party,
    data: &[u8],
    container: bool,
) -> (Vec<u8>, document::Sealed, [u8; 32]) {
    let dek = [0x42u8; 32];
    let mut out = Vec::new();
    let input = document::SealInput {
        doc_id: DocId::from_bytes([8; 16]),
        doc_version: 1,
        author: &author.dev,
        recipients: &[to.recipient()],
        metadata: meta(data.len()),
    };
    let mut rng = serment_core::rng::os_rng();
    let sealed = if container {
        document::seal_container_with_suite(
            input,
            data,
            &mut out,
            suite,
            Zeroizing::new(dek),
            [3; 7],
            &mut rng,
        )
    } else {
        document::seal_with_suite(
            input,
            data,
            &mut out,
            suite,
            Zeroizing::new(dek),
            [3; 7],
            &mut rng,
        )
    }
    .unwrap();
    (out, sealed, dek)
}

#[test]
fn new_documents_are_suite_2_and_suite_1_still_opens_over_many_jobs() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let (blob, sealed) = seal(&lab, &[&p], b"x");
    assert_eq!(sealed.header.suite, Suite::Blake3);
    assert_eq!(&blob[6..8], &[0, 2]);
    // One job (calling thread only) and many jobs (workers), in both suites.
    for chunks in [3usize, 41] {
        let data = content(chunks * CHUNK_SIZE - 7);
        for suite in Suite::ALL {
            let (blob, sealed, _) = seal_suite(suite, &lab, &p, &data, false);
            assert_eq!(&blob[6..8], &suite.id().to_be_bytes());
            let w = wrap_for(&sealed, &p.dev.id());
            assert_eq!(open(&p, &lab, &blob, w).unwrap(), data, "{suite:?}");
            let (c, _, _) = seal_suite(suite, &lab, &p, &data, true);
            assert_eq!(&c[6..8], &suite.id().to_be_bytes());
            assert_eq!(open_container(&p, &lab, &c).unwrap(), data, "{suite:?}");
        }
    }
}

/// Relabelling a document's suite fails even for an attacker who could re-wrap its DEK for the
/// relabelled header (here: with the author's own keys): the header hash is the STREAM
/// associated data, so every chunk fails to authenticate.
#[test]
fn suite_relabelling_fails_even_with_a_rewrapped_key() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let data = content(20 * CHUNK_SIZE);
    for (from, to) in [
        (Suite::Blake3, Suite::Sha256),
        (Suite::Sha256, Suite::Blake3),
    ] {
        let (mut blob, sealed, dek) = seal_suite(from, &lab, &p, &data, false);
        blob[6..8].copy_from_slice(&to.id().to_be_bytes());
        // The original wrap is bound to the original header.
        assert!(matches!(
            open(&p, &lab, &blob, wrap_for(&sealed, &p.dev.id())),
            Err(Error::ContextMismatch(_))
        ));
        let header = Header::decode(&blob[..Header::LEN]).unwrap();
        assert_eq!(header.suite, to);
        let rewrapped = serment_core::wrap::wrap_dek(
            &Zeroizing::new(dek),
            &header.doc_id,
            header.doc_version,
            &header.hash(),
            &p.recipient(),
            &lab.dev,
            &mut serment_core::rng::os_rng(),
        )
        .unwrap();
        assert_eq!(open(&p, &lab, &blob, &rewrapped), Err(Error::Decrypt));
    }
}

#[test]
fn container_suite_must_match_the_sealed_header() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let data = content(CHUNK_SIZE + 1);
    for (suite, other) in [
        (Suite::Blake3, Suite::Sha256),
        (Suite::Sha256, Suite::Blake3),
    ] {
        let (mut c, _, _) = seal_suite(suite, &lab, &p, &data, true);
        c[6..8].copy_from_slice(&other.id().to_be_bytes());
        assert!(
            matches!(open_container(&p, &lab, &c), Err(Error::ContextMismatch(_))),
            "{suite:?}"
        );
        for bad in [0u16, 3] {
            c[6..8].copy_from_slice(&bad.to_be_bytes());
            assert!(matches!(
                open_container(&p, &lab, &c),
                Err(Error::UnsupportedSuite { .. })
            ));
        }
    }
}

#[test]
fn sealed_len_predicts_the_sealed_size_exactly() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let q = Party::new(3);
    // Empty, one partial chunk, a chunk boundary, several chunks; the author listed again as a
    // recipient counts once.
    for len in [0usize, 1, 1000, CHUNK_SIZE, 3 * CHUNK_SIZE + 17] {
        for recipients in [
            vec![p.recipient()],
            vec![p.recipient(), q.recipient(), lab.recipient()],
        ] {
            let data = content(len);
            let input = || document::SealInput {
                doc_id: DocId::from_bytes([9; 16]),
                doc_version: 2,
                author: &lab.dev,
                recipients: &recipients,
                metadata: meta(data.len()),
            };
            let predicted = document::sealed_len(&input()).unwrap();
            let mut blob = Vec::new();
            let sealed = document::seal(input(), &data[..], &mut blob).unwrap();
            assert_eq!(predicted, blob.len() as u64, "{len} bytes");
            assert_eq!(predicted, sealed.sealed_len);
        }
    }
}
