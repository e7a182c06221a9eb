//! Sealed documents (PROTOCOL.md §6): sealing for recipients and opening with full verification.
//!
//! [`seal`] and [`open`] stream: memory stays bounded by a batch of chunks (about 2 MiB) whatever
//! the document size. Chunks of a batch are sealed or opened on all available cores; the chunk
//! hashes are combined in order, so the result does not depend on the thread count.

mod framing;
mod header;

use std::io::{ErrorKind, Read, Write};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use framing::{MAX_METADATA_LEN, Metadata, PatientIdentifier, padded_len, padme};
pub use header::{Header, MAX_PADDED_LEN, MAX_RECIPIENTS, Trailer};

use crate::error::{Error, Result};
use crate::identity::DeviceSecret;
use crate::ids::{DocId, KeyId, KeyKind};
use crate::sign::{self, Context};
use crate::stream::{CHUNK_SIZE, DEK_LEN, NONCE_PREFIX_LEN, StreamKey, TAG_LEN, chunk_plain_len};
use crate::wrap::{self, Recipient, WrappedKey};
use framing::Deframer;

/// Chunks handled per batch (2 MiB of plaintext).
const BATCH: usize = 32;

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
    mut content: R,
    mut out: W,
    dek: Zeroizing<[u8; DEK_LEN]>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Sealed> {
    if input.doc_version == 0 {
        return Err(Error::InvalidField {
            field: "document version",
            reason: "versions start at 1",
        });
    }
    let mut recipients: Vec<Recipient> = input.recipients.to_vec();
    recipients.push(Recipient {
        device_id: input.author.id(),
        encryption_key: input.author.encryption_public_key(),
    });
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
        doc_id: input.doc_id,
        doc_version: input.doc_version,
        author_device: input.author.id(),
        nonce_prefix,
        padded_len: padded,
    };
    let header_bytes = header.encode();
    let header_hash = header.hash();
    let key = StreamKey::new(&dek, nonce_prefix, header_hash, header.chunks())?;
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
    let mut ct_hasher = ciphertext_hasher();
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut index = 0u64;
    while index < header.chunks() {
        let batch = (header.chunks() - index).min(BATCH as u64) as usize;
        bufs.resize_with(batch, || Vec::with_capacity(CHUNK_SIZE + TAG_LEN));
        for (i, buf) in bufs.iter_mut().enumerate() {
            buf.clear();
            buf.resize(chunk_plain_len(padded, index + i as u64), 0);
            plain.fill(buf)?;
        }
        let hashes = par_chunks(&mut bufs, index, |i, b| key.seal_chunk(i, padded, b))?;
        for (buf, h) in bufs.iter().zip(&hashes) {
            out.write_all(buf)?;
            ct_hasher.update(h);
            sealed_len += buf.len() as u64;
        }
        index += batch as u64;
    }
    // The content must end exactly where the metadata said.
    let mut probe = [0u8; 1];
    if plain.content_left != 0 || read_some(&mut content, &mut probe)? != 0 {
        return Err(Error::Io(
            "content length differs from metadata.content_length".into(),
        ));
    }
    let ct_hash: [u8; 32] = ct_hasher.finalize().into();
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
    Ok(Sealed {
        header,
        wraps,
        sealed_len,
    })
}

/// What to open.
#[derive(Debug)]
pub struct OpenInput<'a> {
    /// This device's secrets.
    pub device: &'a DeviceSecret,
    /// This device's wrap, as received.
    pub wrap: &'a [u8],
    /// The author device's Ed25519 key, from a verified device record the reader trusts.
    pub author_signing_key: &'a [u8; 32],
    /// The document id and version the reader asked for, if any.
    pub expected: Option<(DocId, u32)>,
}

/// The result of [`open`].
#[derive(Debug, Clone)]
pub struct Opened {
    /// The verified header.
    pub header: Header,
    /// The verified metadata.
    pub metadata: Metadata,
    /// The recipients the author sealed for.
    pub recipients: Vec<KeyId>,
}

/// Opens a sealed document, writing the content to `out` (PROTOCOL.md §6.3).
///
/// Bytes reach `out` before the final signature check: the caller MUST discard them unless this
/// returns `Ok` (the client writes to a temporary file and renames it only on success).
///
/// # Errors
/// Header errors ([`Error::UnsupportedVersion`], ...); [`Error::WrongSigner`] if the header names
/// another author; [`Error::ContextMismatch`] if the wrap or header is for another document,
/// version or device; [`Error::Decrypt`]; [`Error::TruncatedStream`]; [`Error::ExtendedStream`];
/// [`Error::BadSignature`]; [`Error::Metadata`].
pub fn open<R: Read, W: Write>(input: OpenInput<'_>, mut sealed: R, mut out: W) -> Result<Opened> {
    let mut hb = [0u8; Header::LEN];
    read_exact_or_truncated(&mut sealed, &mut hb)?;
    let header = Header::decode(&hb)?;
    let author_id = KeyId::of(KeyKind::Device, input.author_signing_key);
    if header.author_device != author_id {
        return Err(Error::WrongSigner {
            what: "document",
            expected: author_id.to_string(),
            found: header.author_device.to_string(),
        });
    }
    if let Some((doc_id, version)) = input.expected
        && (header.doc_id != doc_id || header.doc_version != version)
    {
        return Err(Error::ContextMismatch(
            "the sealed header names another document or version",
        ));
    }
    let header_hash = header.hash();
    let w = WrappedKey::decode(input.wrap)?;
    if w.doc_id != header.doc_id || w.doc_version != header.doc_version {
        return Err(Error::ContextMismatch(
            "the key wrap is for another document or version",
        ));
    }
    if w.header_hash != header_hash {
        return Err(Error::ContextMismatch(
            "the key wrap is bound to another sealed header",
        ));
    }
    // Version 1: only the author device may share (PROTOCOL.md §7).
    w.verify_signature(input.author_signing_key)?;
    let dek = wrap::unwrap_dek(&w, input.device)?;
    let key = StreamKey::new(&dek, header.nonce_prefix, header_hash, header.chunks())?;

    let mut deframer = Deframer::new(header.padded_len);
    let mut ct_hasher = ciphertext_hasher();
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut index = 0u64;
    while index < header.chunks() {
        let batch = (header.chunks() - index).min(BATCH as u64) as usize;
        bufs.resize_with(batch, || Vec::with_capacity(CHUNK_SIZE + TAG_LEN));
        for (i, buf) in bufs.iter_mut().enumerate() {
            buf.clear();
            buf.resize(
                chunk_plain_len(header.padded_len, index + i as u64) + TAG_LEN,
                0,
            );
            read_exact_or_truncated(&mut sealed, buf)?;
        }
        let hashes = par_chunks(&mut bufs, index, |i, b| key.open_chunk(i, b))?;
        for (buf, h) in bufs.iter().zip(&hashes) {
            ct_hasher.update(h);
            deframer.feed(buf, &mut |c| out.write_all(c).map_err(Error::from))?;
        }
        index += batch as u64;
    }
    let mut trailer_bytes = Vec::new();
    (&mut sealed)
        .take(Trailer::MAX_LEN as u64 + 1)
        .read_to_end(&mut trailer_bytes)?;
    if trailer_bytes.len() > Trailer::MAX_LEN {
        return Err(Error::ExtendedStream);
    }
    let trailer = Trailer::decode(&trailer_bytes).map_err(|e| match e {
        Error::Truncated { .. } => Error::TruncatedStream,
        other => other,
    })?;
    let ct_hash: [u8; 32] = ct_hasher.finalize().into();
    sign::verify(
        input.author_signing_key,
        Context::Document,
        &document_signed_bytes(&header_hash, &ct_hash, &trailer.recipients)?,
        &trailer.signature,
        "document",
    )?;
    let metadata = deframer.finish()?;
    out.flush()?;
    Ok(Opened {
        header,
        metadata,
        recipients: trailer.recipients,
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

fn ciphertext_hasher() -> Sha256 {
    let mut h = Sha256::new();
    h.update(b"serment/v1/ciphertext\0");
    h
}

/// Runs `f(index, buf)` over a batch on all available cores; returns the results in order.
fn par_chunks<F>(bufs: &mut [Vec<u8>], first: u64, f: F) -> Result<Vec<[u8; 32]>>
where
    F: Fn(u64, &mut Vec<u8>) -> Result<[u8; 32]> + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || bufs.len() <= 1 {
        return bufs
            .iter_mut()
            .enumerate()
            .map(|(i, b)| f(first + i as u64, b))
            .collect();
    }
    let per = bufs.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = bufs
            .chunks_mut(per)
            .enumerate()
            .map(|(part, slice)| {
                s.spawn(move || {
                    let base = first + (part * per) as u64;
                    slice
                        .iter_mut()
                        .enumerate()
                        .map(|(i, b)| f(base + i as u64, b))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(bufs_len_hint(per, threads));
        for h in handles {
            let part = h
                .join()
                .map_err(|_| Error::Io("a worker thread panicked".into()))??;
            all.extend(part);
        }
        Ok(all)
    })
}

fn bufs_len_hint(per: usize, threads: usize) -> usize {
    per.saturating_mul(threads)
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
    /// Fills `buf` completely.
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
        // The rest of buf is padding; it was zero-filled by the caller.
        Ok(())
    }
}
