//! Round trips and tamper tests for sealed documents (PROTOCOL.md §5–§7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use proptest::prelude::*;
use serment_core::Error;
use serment_core::document::Header;
use serment_core::stream::{CHUNK_SIZE, TAG_LEN};

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

#[test]
fn round_trips_at_boundary_sizes() {
    let lab = Party::new(1);
    let patient = Party::new(2);
    let gp = Party::new(3);
    // The metadata prefix shifts chunk boundaries, so also cover sizes around them.
    for len in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        5 * CHUNK_SIZE + 17,
    ] {
        let data = content(len);
        let (blob, sealed) = seal(&lab, &[&patient, &gp], &data);
        assert_eq!(blob.len() as u64, sealed.sealed_len);
        for reader in [&patient, &gp, &lab] {
            let w = wrap_for(&sealed, &reader.dev.id());
            assert_eq!(open(reader, &lab, &blob, w).unwrap(), data, "len {len}");
        }
    }
}

#[test]
fn stored_size_is_padded() {
    let lab = Party::new(1);
    let (a, _) = seal(&lab, &[], &content(1000));
    let (b, _) = seal(&lab, &[], &content(1001));
    assert_eq!(a.len(), b.len(), "PADMÉ hides small length differences");
}

#[test]
fn same_plaintext_twice_gives_unrelated_ciphertexts() {
    let lab = Party::new(1);
    let (a, _) = seal(&lab, &[], &content(4096));
    let (b, _) = seal(&lab, &[], &content(4096));
    let same = a[Header::LEN..]
        .iter()
        .zip(&b[Header::LEN..])
        .filter(|(x, y)| x == y)
        .count();
    assert!(same < 100, "{same} equal bytes");
}

#[test]
fn every_byte_flip_of_blob_and_wrap_is_rejected() {
    let lab = Party::new(1);
    let patient = Party::new(2);
    let data = content(CHUNK_SIZE + 100);
    let (blob, sealed) = seal(&lab, &[&patient], &data);
    let w = wrap_for(&sealed, &patient.dev.id()).to_vec();
    // Every byte of header, first and last bytes of each chunk, and the whole trailer.
    let mut positions: Vec<usize> = (0..Header::LEN).collect();
    positions.extend([Header::LEN + 5, Header::LEN + CHUNK_SIZE + TAG_LEN - 1]);
    positions.extend(blob.len() - 200..blob.len());
    for i in positions {
        let mut t = blob.clone();
        t[i] ^= 0x80;
        assert!(open(&patient, &lab, &t, &w).is_err(), "blob flip at {i}");
    }
    for i in 0..w.len() {
        let mut t = w.clone();
        t[i] ^= 0x01;
        assert!(open(&patient, &lab, &blob, &t).is_err(), "wrap flip at {i}");
    }
}

#[test]
fn chunk_reorder_drop_duplicate_truncate_extend() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let data = content(3 * CHUNK_SIZE);
    let (blob, sealed) = seal(&lab, &[&p], &data);
    let w = wrap_for(&sealed, &p.dev.id()).to_vec();
    let c = CHUNK_SIZE + TAG_LEN;
    let h = Header::LEN;
    let chunk = |i: usize| blob[h + i * c..h + (i + 1) * c].to_vec();
    let nchunks = 4; // 3 chunks of content + metadata spill
    let trailer_start = h + (nchunks - 1) * c + (blob.len() - h - (nchunks - 1) * c);
    let _ = trailer_start;
    // Swap chunks 0 and 1.
    let mut swapped = blob[..h].to_vec();
    swapped.extend(chunk(1));
    swapped.extend(chunk(0));
    swapped.extend(&blob[h + 2 * c..]);
    assert_eq!(open(&p, &lab, &swapped, &w), Err(Error::Decrypt));
    // Duplicate chunk 0 in place of chunk 1.
    let mut dup = blob[..h].to_vec();
    dup.extend(chunk(0));
    dup.extend(chunk(0));
    dup.extend(&blob[h + 2 * c..]);
    assert_eq!(open(&p, &lab, &dup, &w), Err(Error::Decrypt));
    // Drop chunk 1.
    let mut dropped = blob[..h + c].to_vec();
    dropped.extend(&blob[h + 2 * c..]);
    assert!(open(&p, &lab, &dropped, &w).is_err());
    // Truncate at a chunk boundary.
    assert_eq!(
        open(&p, &lab, &blob[..h + 2 * c], &w),
        Err(Error::TruncatedStream)
    );
    // Empty body, header only.
    assert_eq!(open(&p, &lab, &blob[..h], &w), Err(Error::TruncatedStream));
    assert!(open(&p, &lab, &[], &w).is_err());
    // Extend after the trailer.
    let mut ext = blob.clone();
    ext.extend(chunk(0));
    assert!(open(&p, &lab, &ext, &w).is_err());
}

#[test]
fn splicing_across_versions_and_swapping_bodies_fail() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let id = serment_core::DocId::from_bytes([9; 16]);
    let (v1, s1) = seal_doc(&lab, &[&p], &content(CHUNK_SIZE * 2), id, 1);
    let (v2, s2) = seal_doc(&lab, &[&p], &content(CHUNK_SIZE * 2), id, 2);
    let w1 = wrap_for(&s1, &p.dev.id());
    let w2 = wrap_for(&s2, &p.dev.id());
    // v2's body served with v1's wrap, and the other way round.
    assert!(open(&p, &lab, &v2, w1).is_err());
    assert!(open(&p, &lab, &v1, w2).is_err());
    // Chunk 1 of v2 spliced into v1.
    let c = CHUNK_SIZE + TAG_LEN;
    let mut spliced = v1.clone();
    spliced[Header::LEN + c..Header::LEN + 2 * c]
        .copy_from_slice(&v2[Header::LEN + c..Header::LEN + 2 * c]);
    assert_eq!(open(&p, &lab, &spliced, w1), Err(Error::Decrypt));
}

#[test]
fn wrong_author_wrong_reader() {
    let lab = Party::new(1);
    let p = Party::new(2);
    let mallory = Party::new(66);
    let (blob, sealed) = seal(&lab, &[&p], &content(10));
    let w = wrap_for(&sealed, &p.dev.id());
    assert!(matches!(
        open(&p, &mallory, &blob, w),
        Err(Error::WrongSigner { .. })
    ));
    assert!(matches!(
        open(&mallory, &lab, &blob, w),
        Err(Error::ContextMismatch(_))
    ));
}

#[test]
fn document_forged_by_a_recipient_is_rejected() {
    // The patient knows the DEK, re-seals other content under the lab's header: the lab's
    // signature does not cover it.
    let lab = Party::new(1);
    let p = Party::new(2);
    let (blob, sealed) = seal(&lab, &[&p], &content(100));
    let (forged, _) = seal(&p, &[&p], &content(100));
    let mut mixed = blob[..Header::LEN].to_vec();
    mixed.extend(&forged[Header::LEN..]);
    assert!(open(&p, &lab, &mixed, wrap_for(&sealed, &p.dev.id())).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn prop_round_trip(data in proptest::collection::vec(any::<u8>(), 0..200_000)) {
        let lab = Party::new(1);
        let p = Party::new(2);
        let (blob, sealed) = seal(&lab, &[&p], &data);
        prop_assert_eq!(open(&p, &lab, &blob, wrap_for(&sealed, &p.dev.id())).unwrap(), data);
    }

    #[test]
    fn prop_garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..400), wrap in proptest::collection::vec(any::<u8>(), 0..300)) {
        let lab = Party::new(1);
        let p = Party::new(2);
        prop_assert!(open(&p, &lab, &blob, &wrap).is_err());
        let _ = Header::decode(&blob);
        let _ = serment_core::wrap::WrappedKey::decode(&wrap);
        let _ = serment_core::identity::DeviceRecord::decode_verified(&blob);
        let _ = serment_core::document::Trailer::decode(&blob);
    }
}
