//! Sealed documents (PROTOCOL.md §6): sealing for recipients and opening with full verification.
//!
//! [`seal`] and [`open`] stream: memory stays bounded by the jobs in flight (a few MiB) whatever
//! the document size. The calling thread reads and writes while worker threads, one per core,
//! seal or open and hash runs of chunks in place ([`pipeline`]); the chunk hashes are combined in
//! order, so the result does not depend on the thread count. New documents are sealed with
//! [`Suite::CURRENT`] (suite 2, BLAKE3 chunk hashes); [`open`] reads suites 1 and 2, as the
//! header says: the suite only picks the chunk hasher ([`crate::suite`]).

mod container;
mod framing;
mod header;
mod open;
mod pipeline;

use std::io::{ErrorKind, Read, Write};

use zeroize::Zeroizing;

pub use container::{
    CONTAINER_MAGIC, CONTAINER_PREFIX_LEN, open_container, seal_container, seal_container_with,
    seal_container_with_suite,
};
pub use framing::{MAX_METADATA_LEN, Metadata, PatientIdentifier, padded_len, padme};
pub use header::{Header, MAX_PADDED_LEN, MAX_RECIPIENTS, Trailer};
pub use open::{
    OpenInput, Opened, Unlocked, Unwrap, open, open_for_team, open_shared, open_with, verify_sealed,
};

use crate::error::{Error, Result};
use crate::identity::DeviceSecret;
use crate::ids::{DocId, KeyId};
use crate::sign::{self, Context};
use crate::stream::{DEK_LEN, NONCE_PREFIX_LEN, StreamKey, TAG_LEN};
use crate::suite::Suite;
use crate::wrap::{self, Recipient};

/// What to seal.
#[derive(Debug)]
pub struct SealInput<'a> {
    /// Document id (random, from [`DocId::random`], for version 1).
    pub doc_id: DocId,
    /// Version number, from 1.
    pub doc_version: u32,
    /// The author device: it signs, and it is always added as a recipient so it can share later.
    pub author: &'a DeviceSecret,
    /// Recipient devices, from verified device records.
    pub recipients: &'a [Recipient],
    /// Metadata; `content_length` must equal the bytes `content` yields.
    pub metadata: Metadata,
}

/// The result of [`seal`].
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The header written.
    pub header: Header,
    /// One key wrap per recipient device (author included), in recipient order.
    pub wraps: Vec<(KeyId, Vec<u8>)>,
    /// Total bytes written to the output.
    pub sealed_len: u64,
}

/// The exact size in bytes of the sealed document [`seal`] would write for `input`
/// (PROTOCOL.md §6.1: header, padded chunks with their tags, trailer), computed before sealing
/// so a client can refuse a document over the server's limit, or choose an inline commit,
/// without reading the content. The author counts as a recipient, duplicates once.
///
/// # Errors
/// As [`seal`] for the metadata ([`Error::TooLarge`], [`Error::InvalidField`]).
pub fn sealed_len(input: &SealInput<'_>) -> Result<u64> {
    let meta_len = input.metadata.to_json()?.len();
    let padded = padded_len(meta_len, input.metadata.content_length)?;
    let mut ids: Vec<KeyId> = input.recipients.iter().map(|r| r.device_id).collect();
    ids.push(input.author.id());
    ids.sort();
    ids.dedup();
    Ok(Header {
        suite: Suite::CURRENT,
        doc_id: input.doc_id,
        doc_version: input.doc_version,
        author_device: input.author.id(),
        nonce_prefix: [0; NONCE_PREFIX_LEN],
        padded_len: padded,
    }
    .sealed_len(ids.len()))
}

/// Seals `content` for the recipients and writes the sealed document to `out` (PROTOCOL.md §6).
///
/// # Errors
/// [`Error::InvalidField`] for a bad version, recipient key or recipient count;
/// [`Error::TooLarge`]; [`Error::Io`] when `content` does not yield exactly
/// `metadata.content_length` bytes or a stream fails.
pub fn seal<R: Read, W: Write>(input: SealInput<'_>, content: R, out: W) -> Result<Sealed> {
    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    crate::rng::fill(dek.as_mut())?;
    let mut prefix = [0u8; NONCE_PREFIX_LEN];
    crate::rng::fill(&mut prefix)?;
    seal_with(input, content, out, dek, prefix, &mut crate::rng::os_rng())
}

/// [`seal`] with the DEK, nonce prefix and HPKE randomness supplied: for test vectors only.
/// Reusing a DEK or nonce prefix across documents breaks confidentiality.
///
/// # Errors
/// As [`seal`].
#[doc(hidden)]
pub fn seal_with<R: Read, W: Write>(
    input: SealInput<'_>,
    content: R,
    out: W,
    dek: Zeroizing<[u8; DEK_LEN]>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Sealed> {
    seal_with_suite(input, content, out, Suite::CURRENT, dek, nonce_prefix, rng)
}

/// [`seal_with`] in a given suite: for test vectors only (suite 1 is no longer written).
///
/// # Errors
/// As [`seal`].
#[doc(hidden)]
pub fn seal_with_suite<R: Read, W: Write>(
    input: SealInput<'_>,
    content: R,
    out: W,
    suite: Suite,
    dek: Zeroizing<[u8; DEK_LEN]>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Sealed> {
    seal_inner(
        input,
        content,
        out,
        suite,
        dek,
        nonce_prefix,
        rng,
        |_, _| Ok(()),
    )
}

/// Seals in `suite`, calling `before(wraps, out)` once the wraps are made and before the sealed document is
/// written (the offline container writes the wraps first).
#[allow(clippy::too_many_arguments)]
fn seal_inner<R: Read, W: Write>(
    input: SealInput<'_>,
    mut content: R,
    mut out: W,
    suite: Suite,
    dek: Zeroizing<[u8; DEK_LEN]>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    rng: &mut impl rand_core::CryptoRng,
    before: impl FnOnce(&[(KeyId, Vec<u8>)], &mut W) -> Result<()>,
) -> Result<Sealed> {
    if input.doc_version == 0 {
        return Err(Error::InvalidField {
            field: "document version",
            reason: "versions start at 1",
        });
    }
    let mut recipients: Vec<Recipient> = input.recipients.to_vec();
    recipients.push(Recipient::from_device(input.author));
    recipients.sort_by_key(|r| r.device_id);
    recipients.dedup_by_key(|r| r.device_id);
    if recipients.len() > MAX_RECIPIENTS {
        return Err(Error::InvalidField {
            field: "recipients",
            reason: "at most 1024 devices",
        });
    }
    let meta = input.metadata.to_json()?;
    let content_len = input.metadata.content_length;
    let padded = padded_len(meta.len(), content_len)?;
    let header = Header {
        suite,
        doc_id: input.doc_id,
        doc_version: input.doc_version,
        author_device: input.author.id(),
        nonce_prefix,
        padded_len: padded,
    };
    let header_bytes = header.encode();
    let header_hash = header.hash();
    let key = StreamKey::new(&dek, suite, nonce_prefix, header_hash, header.chunks())?;

    // The wraps depend only on the DEK and the header, so they are made first (the HPKE
    // randomness is drawn in recipient order, as before).
    let mut wraps = Vec::with_capacity(recipients.len());
    for r in &recipients {
        let w = wrap::wrap_dek(
            &dek,
            &header.doc_id,
            header.doc_version,
            &header_hash,
            r,
            input.author,
            rng,
        )?;
        wraps.push((r.device_id, w));
    }
    before(&wraps, &mut out)?;

    out.write_all(&header_bytes)?;
    let mut sealed_len = Header::LEN as u64;

    let mut prefix = Vec::with_capacity(4 + meta.len());
    prefix.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    prefix.extend_from_slice(&meta);
    let mut plain = Framer {
        prefix,
        prefix_pos: 0,
        content: &mut content,
        content_left: content_len,
    };
    let mut ct_hasher = suite.ciphertext_hasher();
    pipeline::run(
        header.chunks(),
        padded,
        |job| {
            for (_, slot) in job.slots_mut() {
                let plain_len = slot.len().saturating_sub(TAG_LEN);
                plain.fill(slot.get_mut(..plain_len).unwrap_or_default())?;
            }
            Ok(())
        },
        |index, slot| key.seal_slot(index, padded, slot),
        |job| {
            out.write_all(&job.buf)?;
            for h in &job.hashes {
                ct_hasher.update(h);
            }
            sealed_len += job.buf.len() as u64;
            Ok(())
        },
    )?;
    // The content must end exactly where the metadata said.
    let mut probe = [0u8; 1];
    if plain.content_left != 0 || read_some(&mut content, &mut probe)? != 0 {
        return Err(Error::Io(
            "content length differs from metadata.content_length".into(),
        ));
    }
    let ct_hash = ct_hasher.finalize();
    let ids: Vec<KeyId> = recipients.iter().map(|r| r.device_id).collect();
    let signature = sign::sign(
        input.author.signing_key(),
        Context::Document,
        &document_signed_bytes(&header_hash, &ct_hash, &ids)?,
    );
    let trailer = Trailer {
        recipients: ids,
        signature,
    }
    .encode()?;
    out.write_all(&trailer)?;
    out.flush()?;
    sealed_len += trailer.len() as u64;

    Ok(Sealed {
        header,
        wraps,
        sealed_len,
    })
}

/// `header_hash || ciphertext_hash || u16(count) || recipients` (PROTOCOL.md §6.1).
fn document_signed_bytes(
    header_hash: &[u8; 32],
    ct_hash: &[u8; 32],
    recipients: &[KeyId],
) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(64 + 2 + 32 * recipients.len());
    v.extend_from_slice(header_hash);
    v.extend_from_slice(ct_hash);
    v.extend_from_slice(&Trailer::recipients_bytes(recipients)?);
    Ok(v)
}

/// Reads exactly `buf.len()` bytes, mapping a short read to [`Error::TruncatedStream`].
fn read_exact_or_truncated<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => Error::TruncatedStream,
        _ => Error::from(e),
    })
}

fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Produces the framed plaintext: `u32(len) || metadata || content || zeros`.
struct Framer<'r, R: Read> {
    prefix: Vec<u8>,
    prefix_pos: usize,
    content: &'r mut R,
    content_left: u64,
}

impl<R: Read> Framer<'_, R> {
    /// Fills `buf` completely: prefix, then content, then zero padding.
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut pos = 0;
        if let Some(rest) = self.prefix.get(self.prefix_pos..) {
            let n = rest.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.prefix_pos += n;
            pos = n;
        }
        while pos < buf.len() && self.content_left > 0 {
            let want =
                (buf.len() - pos).min(usize::try_from(self.content_left).unwrap_or(usize::MAX));
            let dst = buf
                .get_mut(pos..pos + want)
                .ok_or(Error::Io("framing".into()))?;
            let n = read_some(self.content, dst)?;
            if n == 0 {
                return Err(Error::Io(
                    "content ended before metadata.content_length bytes".into(),
                ));
            }
            pos += n;
            self.content_left -= n as u64;
        }
        // The rest of buf is padding (buffers are reused, so zero it here).
        if let Some(pad) = buf.get_mut(pos..) {
            pad.fill(0);
        }
        Ok(())
    }
}
