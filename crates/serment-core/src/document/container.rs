//! The offline container (PROTOCOL.md §6.4): a sealed document and its key wraps in one file,
//! for `serment seal` and `serment open` without a server.
//!
//! ```text
//! Container = "SRMC" || u16(format_version) || u16(suite_id) || u16(wrap_count)
//!             || WrappedKey * wrap_count || SealedDocument
//! ```
//!
//! The wraps come first so that a reader can unwrap its DEK and then open the sealed document in
//! one pass, from a pipe as well as from a file. Sealing and opening are exactly [`super::seal`]
//! and [`super::open`]: the container adds framing only.

use std::io::{Read, Write};

use zeroize::Zeroizing;

use super::header::MAX_RECIPIENTS;
use super::{
    OpenInput, Opened, SealInput, Sealed, open::open_inner, read_exact_or_truncated, seal_inner,
};
use crate::FORMAT_VERSION;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::DeviceSecret;
use crate::stream::{DEK_LEN, NONCE_PREFIX_LEN};
use crate::suite::Suite;
use crate::wrap::WrappedKey;

/// Magic bytes of the offline container.
pub const CONTAINER_MAGIC: &[u8; 4] = b"SRMC";
/// Bytes before the first wrap: magic, format version, suite id and wrap count.
pub const CONTAINER_PREFIX_LEN: usize = 4 + 2 + 2 + 2;

/// Seals `content` like [`super::seal`] and writes an offline container: the wraps for every
/// recipient (author included), then the sealed document.
///
/// # Errors
/// As [`super::seal`].
pub fn seal_container<R: Read, W: Write>(
    input: SealInput<'_>,
    content: R,
    out: W,
) -> Result<Sealed> {
    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    crate::rng::fill(dek.as_mut())?;
    let mut prefix = [0u8; NONCE_PREFIX_LEN];
    crate::rng::fill(&mut prefix)?;
    seal_container_with(input, content, out, dek, prefix, &mut crate::rng::os_rng())
}

/// [`seal_container`] with the DEK, nonce prefix and HPKE randomness supplied: for test vectors
/// only. Reusing a DEK or nonce prefix across documents breaks confidentiality.
///
/// # Errors
/// As [`seal_container`].
#[doc(hidden)]
pub fn seal_container_with<R: Read, W: Write>(
    input: SealInput<'_>,
    content: R,
    out: W,
    dek: Zeroizing<[u8; DEK_LEN]>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Sealed> {
    seal_container_with_suite(input, content, out, Suite::CURRENT, dek, nonce_prefix, rng)
}

/// [`seal_container_with`] in a given suite: for tests only (suite 1 is no longer written).
///
/// # Errors
/// As [`seal_container`].
#[doc(hidden)]
pub fn seal_container_with_suite<R: Read, W: Write>(
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
        |wraps, out| {
            let count = u16::try_from(wraps.len()).map_err(|_| Error::InvalidField {
                field: "recipients",
                reason: "at most 1024 devices",
            })?;
            let mut w = Writer::with_capacity(CONTAINER_PREFIX_LEN);
            w.bytes(CONTAINER_MAGIC)
                .u16(FORMAT_VERSION)
                .u16(suite.id())
                .u16(count);
            out.write_all(w.as_slice())?;
            for (_, wrap) in wraps {
                out.write_all(wrap)?;
            }
            Ok(())
        },
    )
}

/// Opens an offline container with this device's wrap, writing the content to `out`.
///
/// As with [`super::open`], bytes reach `out` before the final check: discard them unless this
/// returns `Ok`.
///
/// # Errors
/// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`],
/// [`Error::InvalidField`] for a bad wrap count, [`Error::ContextMismatch`] if no wrap is for
/// this device or the container's suite is not the sealed header's, and every error of
/// [`super::open`].
pub fn open_container<R: Read, W: Write>(
    device: &DeviceSecret,
    author_signing_key: &[u8; 32],
    mut sealed: R,
    out: W,
) -> Result<Opened> {
    const WHAT: &str = "container";
    let mut prefix = [0u8; CONTAINER_PREFIX_LEN];
    read_exact_or_truncated(&mut sealed, &mut prefix)?;
    let mut r = Reader::new(&prefix, WHAT);
    r.magic(CONTAINER_MAGIC)?;
    let version = r.u16()?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            what: WHAT,
            version,
        });
    }
    let suite = Suite::from_id(WHAT, r.u16()?)?;
    let count = usize::from(r.u16()?);
    r.finish()?;
    if count == 0 || count > MAX_RECIPIENTS {
        return Err(Error::InvalidField {
            field: "wrap count",
            reason: "must be 1..=1024",
        });
    }
    let me = device.id();
    let mut mine: Option<Vec<u8>> = None;
    for _ in 0..count {
        // Each wrap's length follows from its suite id (268 or 1356 bytes, §7).
        let mut buf = vec![0u8; WrappedKey::PREFIX_LEN];
        read_exact_or_truncated(&mut sealed, &mut buf)?;
        let len = WrappedKey::encoded_len(&buf)?;
        buf.resize(len, 0);
        read_exact_or_truncated(
            &mut sealed,
            buf.get_mut(WrappedKey::PREFIX_LEN..).unwrap_or(&mut []),
        )?;
        let w = WrappedKey::decode(&buf)?;
        if w.recipient == me && mine.is_none() {
            mine = Some(buf);
        }
    }
    let wrap = mine.ok_or(Error::ContextMismatch(
        "the container holds no key wrap for this device",
    ))?;
    open_inner(
        OpenInput {
            device,
            wrap: &wrap,
            author_signing_key,
            expected: None,
        },
        sealed,
        out,
        Some(suite),
        super::Unwrap::Own,
    )
}
