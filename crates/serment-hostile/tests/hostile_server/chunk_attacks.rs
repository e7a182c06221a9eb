//! Chunk attacks through the server (PROTOCOL.md §5): reorder, duplicate, drop, truncate at a
//! chunk boundary, extend, an empty body, and a chunk spliced across versions. Every one fails
//! with a specific integrity error and leaves no output file.

use serment_core::Error;

use crate::common::*;

/// 3.5 chunks of content.
const LEN: usize = 3 * 65536 + 32768;

fn expect(
    w: &mut World,
    doc: &serment_core::DocId,
    blob: Vec<u8>,
    what: &str,
    ok: fn(&Error) -> bool,
) {
    w.h.clear_hooks();
    serve_blob(&w.h, doc, 1, blob);
    let e = read_to_file(&w.h, &mut w.patient, doc, Some(1)).unwrap_err();
    let inner = integrity(&e);
    assert!(ok(inner), "{what}: {inner:?}");
}

#[test]
fn chunk_attacks_reorder_duplicate_drop_truncate_extend_empty() {
    let mut w = World::new();
    let data = content(LEN, 1);
    let r = w.put(&data, "nfs", &[PATIENT]);
    assert_eq!(
        read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap(),
        data
    );
    let p = Parts::split(&w.blob(&r));
    assert_eq!(p.chunks.len(), 4);
    let doc = r.doc_id;
    let decrypt = |e: &Error| matches!(e, Error::Decrypt);

    let mut q = p.clone();
    q.chunks.swap(1, 2);
    expect(&mut w, &doc, q.join(), "reorder", decrypt);

    let mut q = p.clone();
    q.chunks[2] = q.chunks[1].clone();
    expect(&mut w, &doc, q.join(), "duplicate in place", decrypt);

    let mut q = p.clone();
    q.chunks.insert(2, q.chunks[1].clone());
    expect(&mut w, &doc, q.join(), "duplicate inserted", decrypt);

    let mut q = p.clone();
    q.chunks.remove(1);
    expect(&mut w, &doc, q.join(), "drop", |e| {
        matches!(e, Error::Decrypt | Error::TruncatedStream)
    });

    for keep in 1..p.chunks.len() {
        let mut q = p.clone();
        q.chunks.truncate(keep);
        q.trailer.clear();
        expect(
            &mut w,
            &doc,
            q.join(),
            "truncate at a chunk boundary",
            |e| matches!(e, Error::TruncatedStream),
        );
    }
    let mut q = p.clone();
    q.trailer.clear();
    expect(&mut w, &doc, q.join(), "trailer cut", |e| {
        matches!(e, Error::TruncatedStream)
    });

    let mut q = p.clone();
    q.trailer.extend_from_slice(&p.chunks[0]);
    expect(&mut w, &doc, q.join(), "extended by a chunk", |e| {
        matches!(e, Error::ExtendedStream)
    });

    let mut q = p.clone();
    q.trailer.push(0);
    expect(&mut w, &doc, q.join(), "extended by a byte", |e| {
        matches!(e, Error::TrailingBytes { .. } | Error::ExtendedStream)
    });

    expect(&mut w, &doc, Vec::new(), "empty body", |e| {
        matches!(e, Error::TruncatedStream)
    });
    expect(&mut w, &doc, p.header.clone(), "header only", |e| {
        matches!(e, Error::TruncatedStream)
    });

    // The honest blob still reads.
    w.h.clear_hooks();
    assert_eq!(
        read_to_file(&w.h, &mut w.patient, &doc, Some(1)).unwrap(),
        data
    );
}

#[test]
fn chunk_attacks_chunk_spliced_across_versions() {
    let mut w = World::new();
    let v1 = content(LEN, 1);
    let r1 = w.put(&v1, "v", &[PATIENT]);
    let recipients = w.lab.recipients(&[PATIENT.to_owned()]).unwrap();
    // Version 2: same document, same length, same recipients (a corrected report).
    let mut v2 = v1.clone();
    v2[70_000] ^= 0xff;
    let r2 = w
        .lab
        .put_version(v2.as_slice(), meta(&v2, "v"), r1.doc_id, 2, &recipients)
        .unwrap();
    let p1 = Parts::split(&w.blob(&r1));
    let p2 = Parts::split(&w.blob(&r2));
    for i in 0..p1.chunks.len() {
        let mut q = p1.clone();
        q.chunks[i] = p2.chunks[i].clone();
        expect(&mut w, &r1.doc_id, q.join(), "spliced chunk", |e| {
            matches!(e, Error::Decrypt)
        });
    }
    // Version 2's trailer on version 1's chunks.
    let mut q = p1.clone();
    q.trailer = p2.trailer.clone();
    expect(&mut w, &r1.doc_id, q.join(), "spliced trailer", |e| {
        matches!(e, Error::BadSignature { what: "document" })
    });
    w.h.clear_hooks();
    assert_eq!(
        read_to_file(&w.h, &mut w.patient, &r1.doc_id, Some(1)).unwrap(),
        v1
    );
    assert_eq!(
        read_to_file(&w.h, &mut w.patient, &r1.doc_id, Some(2)).unwrap(),
        v2
    );
}

/// The page's open (`get_unlocked`) holds the whole sealed document in memory: it refuses an
/// announced size above `MAX_UNLOCKED_LEN` before reading the body, and reads no more than the
/// size announced, so an endless body cannot exhaust its memory (review finding R9).
#[test]
fn chunk_attacks_the_in_memory_open_reads_only_what_was_announced() {
    use serment_client::documents::MAX_UNLOCKED_LEN;
    let mut w = World::new();
    let data = content(LEN, 3);
    let r = w.put(&data, "mem", &[PATIENT]);
    let doc = r.doc_id;
    let unlocked = |w: &mut World| w.patient.get_unlocked(&doc, Some(1));

    // An announced size above the cap: refused before the blob's body is read.
    w.h.on_response(&version_route(&doc, 1), |ex| {
        let mut j = ex.json();
        j["size"] = serde_json::Value::from(MAX_UNLOCKED_LEN + 1);
        ex.set_json(&j);
    });
    let e = unlocked(&mut w).unwrap_err();
    assert!(
        matches!(integrity(&e), Error::TooLarge { limit, .. } if *limit == MAX_UNLOCKED_LEN),
        "{e:?}"
    );

    // A body longer than announced (an endless one, cut here at 4 MiB more): refused as an
    // extended stream, having read one byte past the announced size.
    w.h.clear_hooks();
    let mut long = w.blob(&r);
    long.resize(long.len() + (4 << 20), 0xa5);
    serve_blob(&w.h, &doc, 1, long);
    let e = unlocked(&mut w).unwrap_err();
    assert!(matches!(integrity(&e), Error::ExtendedStream), "{e:?}");

    // The honest blob opens: every check passed on exactly the sealed bytes served.
    w.h.clear_hooks();
    let got = unlocked(&mut w).unwrap();
    assert_eq!(got.sealed, w.blob(&r));
}
