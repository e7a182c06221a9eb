//! Opening a sealed document (PROTOCOL.md §6.3): every check, then the content.
//!
//! [`open_with`] checks and decrypts in one streaming pass. [`verify_sealed`] runs every check
//! that does not need the plaintext (header, key wrap and its signature, the unwrap, every chunk's
//! hash and the author's signature over them) and hands back an [`Unlocked`] document whose
//! chunks the caller decrypts elsewhere: the patient's page opens the AES-GCM of the chunks with
//! the browser's WebCrypto (PROTOCOL.md §2.1), then [`Unlocked::finish`] cross-checks the first and
//! last chunks with this crate's AEAD and decodes the framing, exactly as [`open_with`] does.

use std::io::{Read, Write};

use zeroize::Zeroizing;

use super::framing::Deframer;
use super::header::{Header, Trailer};
use super::{Metadata, document_signed_bytes, pipeline, read_exact_or_truncated};
use crate::error::{Error, Result};
use crate::identity::DeviceSecret;
use crate::ids::{DocId, KeyId, KeyKind};
use crate::sign::{self, Context};
use crate::stream::{self, CHUNK_SIZE, DEK_LEN, StreamKey, TAG_LEN, chunk_nonce, chunk_plain_len};
use crate::suite::Suite;
use crate::team::EpochSecret;
use crate::wrap::{self, WrappedKey};

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

/// Which key opens the wrap, and who may have made it.
#[derive(Clone, Copy)]
pub enum Unwrap<'a> {
    /// This device's own wrap, made by the author device (PROTOCOL.md §7).
    Own,
    /// A wrap to a care team's epoch (§12.3): its `recipient` must be `epoch_id`, opened with the
    /// epoch's `secret`, which the caller accepted with [`crate::team::unwrap_epoch_secret`]
    /// against the replayed chain.
    Team {
        /// The epoch id the wrap must name.
        epoch_id: &'a KeyId,
        /// The epoch's secret.
        secret: &'a EpochSecret,
    },
    /// A catch-up wrap made by another device of the reader's own identity (§4.1), whose key the
    /// caller took from its own proven key history. The document must still carry the author's
    /// signature.
    Shared {
        /// The sharing device's Ed25519 key.
        sharer_signing_key: &'a [u8; 32],
    },
}

impl core::fmt::Debug for Unwrap<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Unwrap::Own => f.write_str("Own"),
            Unwrap::Team { epoch_id, .. } => write!(f, "Team({epoch_id}, ***)"),
            Unwrap::Shared { .. } => f.write_str("Shared"),
        }
    }
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
pub fn open<R: Read, W: Write>(input: OpenInput<'_>, sealed: R, out: W) -> Result<Opened> {
    open_inner(input, sealed, out, None, Unwrap::Own)
}

/// [`open`] with a key wrap addressed to a care team's epoch ([`Unwrap::Team`]).
///
/// # Errors
/// As [`open`]; [`Error::Downgrade`] for a classical wrap to a team.
pub fn open_for_team<R: Read, W: Write>(
    input: OpenInput<'_>,
    epoch_id: &KeyId,
    secret: &EpochSecret,
    sealed: R,
    out: W,
) -> Result<Opened> {
    open_inner(input, sealed, out, None, Unwrap::Team { epoch_id, secret })
}

/// [`open`] with a catch-up wrap made by `sharer_signing_key`'s device ([`Unwrap::Shared`]).
///
/// # Errors
/// As [`open`]; [`Error::WrongSigner`] if the wrap names another sharer.
pub fn open_shared<R: Read, W: Write>(
    input: OpenInput<'_>,
    sharer_signing_key: &[u8; 32],
    sealed: R,
    out: W,
) -> Result<Opened> {
    open_inner(
        input,
        sealed,
        out,
        None,
        Unwrap::Shared { sharer_signing_key },
    )
}

/// [`open`], [`open_for_team`] or [`open_shared`], as `unwrap` says.
///
/// # Errors
/// As those.
pub fn open_with<R: Read, W: Write>(
    input: OpenInput<'_>,
    unwrap: Unwrap<'_>,
    sealed: R,
    out: W,
) -> Result<Opened> {
    open_inner(input, sealed, out, None, unwrap)
}

/// Every check of [`open_with`] that does not need the plaintext, on a sealed document held in
/// memory: the header, the key wrap (binding, signature, unwrap), every chunk's hash and the
/// author's signature over them and the recipients. Nothing is decrypted; the [`Unlocked`]
/// result carries what an AES-GCM implementation elsewhere needs to decrypt each chunk (the DEK,
/// each chunk's nonce and position, the associated data), and [`Unlocked::finish`] completes
/// the open with the plaintext.
///
/// # Errors
/// As [`open_with`], but never [`Error::Decrypt`] nor [`Error::Metadata`] (those come from
/// [`Unlocked::finish`]).
pub fn verify_sealed(input: OpenInput<'_>, unwrap: Unwrap<'_>, sealed: &[u8]) -> Result<Unlocked> {
    let (header, dek, recipients) = verify_inner(input, sealed, None, unwrap, None)?;
    Ok(Unlocked {
        header,
        dek,
        recipients,
    })
}

/// A sealed document whose every ciphertext check passed ([`verify_sealed`]), awaiting its
/// plaintext. Holds the DEK (zeroized on drop, never in `Debug`).
pub struct Unlocked {
    header: Header,
    dek: Zeroizing<[u8; DEK_LEN]>,
    recipients: Vec<KeyId>,
}

impl core::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Unlocked")
            .field("header", &self.header)
            .field("dek", &"***")
            .finish_non_exhaustive()
    }
}

impl Unlocked {
    /// The verified header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The 32-byte AES-256-GCM key of every chunk (the DEK, PROTOCOL.md §5). Hand it only to the
    /// AEAD that decrypts this document's chunks, and let no copy outlive it.
    pub fn dek(&self) -> &[u8; DEK_LEN] {
        &self.dek
    }

    /// The associated data of every chunk: the header hash (§5), 32 bytes.
    pub fn aad(&self) -> [u8; 32] {
        self.header.hash()
    }

    /// The number of chunks.
    pub fn chunks(&self) -> u64 {
        self.header.chunks()
    }

    /// Chunk `index`'s nonce (12 bytes, §5), its byte offset in the sealed document and its
    /// length there (ciphertext and tag).
    ///
    /// # Errors
    /// [`Error::ExtendedStream`] if `index` is past the last chunk.
    pub fn chunk(&self, index: u64) -> Result<([u8; 12], u64, usize)> {
        let nonce = chunk_nonce(&self.header.nonce_prefix, index, self.chunks())?;
        let offset = Header::LEN as u64 + index * (CHUNK_SIZE + TAG_LEN) as u64;
        Ok((
            nonce,
            offset,
            chunk_plain_len(self.header.padded_len, index) + TAG_LEN,
        ))
    }

    /// Completes the open with `plaintext`, every chunk's plaintext in order (`padded_len`
    /// bytes, tags removed), decrypted elsewhere from `sealed` (the bytes [`verify_sealed`]
    /// checked). The first and last chunks are decrypted again here with this crate's AEAD and
    /// must match, so a decryption glue that reorders, drops or mangles chunks is caught at the
    /// ends; the framing is decoded as [`open_with`] does, and the content written to `out`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] if `plaintext` is not `padded_len` bytes; [`Error::Decrypt`] if a
    /// cross-checked chunk does not match; [`Error::TruncatedStream`] if `sealed` is short;
    /// [`Error::Metadata`] for bad framing; I/O errors of `out`.
    pub fn finish<W: Write>(self, sealed: &[u8], plaintext: &[u8], mut out: W) -> Result<Opened> {
        if plaintext.len() as u64 != self.header.padded_len {
            return Err(Error::InvalidField {
                field: "plaintext",
                reason: "not the padded length the header announces",
            });
        }
        let key = StreamKey::new(
            &self.dek,
            self.header.suite,
            self.header.nonce_prefix,
            self.aad(),
            self.chunks(),
        )?;
        let last = self.chunks() - 1;
        for index in [0, last] {
            let (_, offset, len) = self.chunk(index)?;
            let start = usize::try_from(offset).map_err(|_| Error::TruncatedStream)?;
            let mut slot = sealed
                .get(start..start + len)
                .ok_or(Error::TruncatedStream)?
                .to_vec();
            key.open_slot(index, &mut slot)?;
            let plain_start =
                usize::try_from(index * CHUNK_SIZE as u64).map_err(|_| Error::TruncatedStream)?;
            let mine = slot.get(..len - TAG_LEN).unwrap_or_default();
            let theirs = plaintext
                .get(plain_start..plain_start + mine.len())
                .ok_or(Error::Decrypt)?;
            if mine != theirs {
                return Err(Error::Decrypt);
            }
        }
        let mut deframer = Deframer::new(self.header.padded_len);
        deframer.feed(plaintext, &mut |c| out.write_all(c).map_err(Error::from))?;
        let metadata = deframer.finish()?;
        out.flush()?;
        Ok(Opened {
            header: self.header,
            metadata,
            recipients: self.recipients,
        })
    }
}

/// [`open_with`], refusing a header whose suite is not `suite` when one is given (the offline
/// container names the suite of the document it holds).
pub(super) fn open_inner<R: Read, W: Write>(
    input: OpenInput<'_>,
    sealed: R,
    mut out: W,
    suite: Option<Suite>,
    unwrap: Unwrap<'_>,
) -> Result<Opened> {
    let mut deframer: Option<Deframer> = None;
    let mut feed = |plain: &[u8], padded_len: u64| -> Result<()> {
        deframer
            .get_or_insert_with(|| Deframer::new(padded_len))
            .feed(plain, &mut |c| out.write_all(c).map_err(Error::from))
    };
    let (header, _, recipients) = verify_inner(input, sealed, suite, unwrap, Some(&mut feed))?;
    let metadata = deframer
        .unwrap_or_else(|| Deframer::new(header.padded_len))
        .finish()?;
    out.flush()?;
    Ok(Opened {
        header,
        metadata,
        recipients,
    })
}

/// The plaintext sink of [`verify_inner`]: each chunk's plaintext in order, with `padded_len`.
type PlainSink<'s> = &'s mut dyn FnMut(&[u8], u64) -> Result<()>;

/// Reads and checks a sealed document: header, wrap, unwrap, every chunk (decrypted into `plain`
/// when given, else only hashed) and the author's signature. Returns the header, the DEK and the
/// trailer's recipients.
fn verify_inner<R: Read>(
    input: OpenInput<'_>,
    mut sealed: R,
    suite: Option<Suite>,
    unwrap: Unwrap<'_>,
    mut plain: Option<PlainSink<'_>>,
) -> Result<(Header, Zeroizing<[u8; DEK_LEN]>, Vec<KeyId>)> {
    let mut hb = [0u8; Header::LEN];
    read_exact_or_truncated(&mut sealed, &mut hb)?;
    let header = Header::decode(&hb)?;
    if suite.is_some_and(|s| s != header.suite) {
        return Err(Error::ContextMismatch(
            "the container and the sealed header name different suites",
        ));
    }
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
    // §7: the author device shares; §4.1: or, for a catch-up wrap, a device of the reader's own
    // identity that the caller names.
    match unwrap {
        Unwrap::Own | Unwrap::Team { .. } => w.verify_signature(input.author_signing_key)?,
        Unwrap::Shared { sharer_signing_key } => {
            let sharer_id = KeyId::of(KeyKind::Device, sharer_signing_key);
            if w.sharer != sharer_id {
                return Err(Error::WrongSigner {
                    what: "key wrap",
                    expected: sharer_id.to_string(),
                    found: w.sharer.to_string(),
                });
            }
            w.verify_signature(sharer_signing_key)?;
        }
    }
    let dek = match unwrap {
        Unwrap::Team { epoch_id, secret } => wrap::unwrap_dek_for_epoch(&w, epoch_id, secret)?,
        Unwrap::Own | Unwrap::Shared { .. } => wrap::unwrap_dek(&w, input.device)?,
    };
    let key = StreamKey::new(
        &dek,
        header.suite,
        header.nonce_prefix,
        header_hash,
        header.chunks(),
    )?;

    let decrypt = plain.is_some();
    let mut ct_hasher = header.suite.ciphertext_hasher();
    pipeline::run(
        header.chunks(),
        header.padded_len,
        |job| read_exact_or_truncated(&mut sealed, &mut job.buf),
        |index, slot| {
            if decrypt {
                key.open_slot(index, slot)
            } else {
                // The pipeline never goes past the header's chunk count; the counter fits.
                let index = u32::try_from(index).map_err(|_| Error::ExtendedStream)?;
                Ok(stream::chunk_hash(header.suite, index, slot))
            }
        },
        |job| {
            for (slot, h) in job.slots().zip(&job.hashes) {
                ct_hasher.update(h);
                if let Some(sink) = plain.as_mut() {
                    let p = slot
                        .get(..slot.len().saturating_sub(TAG_LEN))
                        .unwrap_or_default();
                    sink(p, header.padded_len)?;
                }
            }
            Ok(())
        },
    )?;
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
    let ct_hash = ct_hasher.finalize();
    sign::verify(
        input.author_signing_key,
        Context::Document,
        &document_signed_bytes(&header_hash, &ct_hash, &trailer.recipients)?,
        &trailer.signature,
        "document",
    )?;
    Ok((header, dek, trailer.recipients))
}
