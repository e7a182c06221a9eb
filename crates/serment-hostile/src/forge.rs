//! Forgeries a key-holding adversary can make with the public core API.
//!
//! A hostile server holds no signing key of an honest party, so its forgeries carry its own keys.
//! A malicious co-tenant (a contact the reader pinned) or a stolen author device can, however,
//! sign whatever it likes: [`seal_raw`] seals an arbitrary framed plaintext (PROTOCOL.md §6.2),
//! bypassing the framing and padding that [`serment_core::document::seal`] enforces, so tests and
//! the fuzzer can check that every reader-side plaintext check holds on its own.

use ed25519_dalek::SigningKey;
use serment_core::document::{Header, Trailer};
use serment_core::identity::DeviceSecret;
use serment_core::sign::{self, Context};
use serment_core::stream::{CHUNK_SIZE, DEK_LEN, NONCE_PREFIX_LEN, StreamKey, chunk_plain_len};
use serment_core::wrap::{self, Recipient};
use serment_core::{DocId, Error, KeyId, Suite};
use zeroize::Zeroizing;

/// A sealed document and its wraps, as [`seal_raw`] made them.
#[derive(Debug, Clone)]
pub struct Forged {
    /// The whole sealed document (header, chunks, trailer).
    pub blob: Vec<u8>,
    /// The header.
    pub header: Header,
    /// One wrap per recipient device, author included.
    pub wraps: Vec<(KeyId, Vec<u8>)>,
}

impl Forged {
    /// The wrap for `device`, if it is a recipient.
    pub fn wrap_for(&self, device: &KeyId) -> Option<&[u8]> {
        self.wraps
            .iter()
            .find(|(k, _)| k == device)
            .map(|(_, w)| w.as_slice())
    }
}

/// What [`seal_raw`] seals.
#[derive(Debug)]
pub struct RawSeal<'a> {
    /// The signing (author) device.
    pub author: &'a DeviceSecret,
    /// Document id.
    pub doc_id: DocId,
    /// Version.
    pub doc_version: u32,
    /// The DEK.
    pub dek: [u8; DEK_LEN],
    /// The STREAM nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// The framed plaintext, used as is: `padded_len` is its length.
    pub plaintext: &'a [u8],
    /// Recipients besides the author.
    pub recipients: &'a [Recipient],
}

/// Seals `input.plaintext` as the padded plaintext of a document signed by `input.author`,
/// following PROTOCOL.md §5 and §6.1 exactly but without checking the framing of §6.2.
///
/// # Errors
/// Core errors for a plaintext over the format's limits or an invalid recipient key.
pub fn seal_raw(input: &RawSeal<'_>) -> Result<Forged, Error> {
    let padded = input.plaintext.len() as u64;
    let header = Header {
        suite: Suite::CURRENT,
        doc_id: input.doc_id,
        doc_version: input.doc_version,
        author_device: input.author.id(),
        nonce_prefix: input.nonce_prefix,
        padded_len: padded,
    };
    let hh = header.hash();
    let dek = Zeroizing::new(input.dek);
    let key = StreamKey::new(&dek, header.suite, input.nonce_prefix, hh, header.chunks())?;
    let mut blob = header.encode().to_vec();
    let mut ct = header.suite.ciphertext_hasher();
    let mut rest = input.plaintext;
    for i in 0..header.chunks() {
        let len = chunk_plain_len(padded, i).min(CHUNK_SIZE);
        let (chunk, tail) = rest.split_at_checked(len).ok_or(Error::Truncated {
            what: "forged plaintext",
        })?;
        rest = tail;
        let mut buf = chunk.to_vec();
        ct.update(&key.seal_chunk(i, padded, &mut buf)?);
        blob.extend_from_slice(&buf);
    }
    let mut all: Vec<Recipient> = input.recipients.to_vec();
    all.push(Recipient::from_device(input.author));
    all.sort_by_key(|r| r.device_id);
    all.dedup_by_key(|r| r.device_id);
    let ids: Vec<KeyId> = all.iter().map(|r| r.device_id).collect();
    let mut signed = Vec::with_capacity(66 + 32 * ids.len());
    signed.extend_from_slice(&hh);
    signed.extend_from_slice(&ct.finalize());
    signed.extend_from_slice(&(ids.len() as u16).to_be_bytes());
    for id in &ids {
        signed.extend_from_slice(id.as_bytes());
    }
    let sk = SigningKey::from_bytes(&input.author.signing_seed());
    let signature = sign::sign(&sk, Context::Document, &signed);
    blob.extend_from_slice(
        &Trailer {
            recipients: ids,
            signature,
        }
        .encode()?,
    );
    let mut rng = serment_core::rng::os_rng();
    let mut wraps = Vec::with_capacity(all.len());
    for r in &all {
        wraps.push((
            r.device_id,
            wrap::wrap_dek(
                &dek,
                &input.doc_id,
                input.doc_version,
                &hh,
                r,
                input.author,
                &mut rng,
            )?,
        ));
    }
    Ok(Forged {
        blob,
        header,
        wraps,
    })
}

/// A framed plaintext (PROTOCOL.md §6.2) for `metadata` JSON and `content`, padded with zeros to
/// PADMÉ length, as an honest author frames it.
pub fn frame(metadata: &[u8], content: &[u8]) -> Vec<u8> {
    let raw = 4 + metadata.len() + content.len();
    let padded = serment_core::document::padme(raw as u64) as usize;
    let mut v = Vec::with_capacity(padded);
    v.extend_from_slice(&(metadata.len() as u32).to_be_bytes());
    v.extend_from_slice(metadata);
    v.extend_from_slice(content);
    v.resize(padded.max(raw), 0);
    v
}
