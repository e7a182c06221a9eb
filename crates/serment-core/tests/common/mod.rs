//! Shared fixtures for the core's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serment_core::document::{self, Metadata, OpenInput, SealInput, Sealed};
use serment_core::identity::DeviceSecret;
use serment_core::wrap::Recipient;
use serment_core::{DocId, KeyId, Result};

pub(crate) struct Party {
    pub(crate) dev: DeviceSecret,
}

impl Party {
    pub(crate) fn new(seed: u8) -> Party {
        Party {
            dev: DeviceSecret::from_test_seed(&[seed; 32]),
        }
    }
    pub(crate) fn recipient(&self) -> Recipient {
        Recipient::from_device(&self.dev)
    }
}

pub(crate) fn meta(len: usize) -> Metadata {
    Metadata {
        content_length: len as u64,
        mime_type: Some("application/fhir+json".into()),
        title: Some("Bilan".into()),
        ..Metadata::default()
    }
}

pub(crate) fn seal(author: &Party, to: &[&Party], content: &[u8]) -> (Vec<u8>, Sealed) {
    seal_doc(author, to, content, DocId::from_bytes([1; 16]), 1)
}

pub(crate) fn seal_doc(
    author: &Party,
    to: &[&Party],
    content: &[u8],
    doc_id: DocId,
    version: u32,
) -> (Vec<u8>, Sealed) {
    let recipients: Vec<Recipient> = to.iter().map(|p| p.recipient()).collect();
    let mut out = Vec::new();
    let sealed = document::seal(
        SealInput {
            doc_id,
            doc_version: version,
            author: &author.dev,
            recipients: &recipients,
            metadata: meta(content.len()),
        },
        content,
        &mut out,
    )
    .unwrap();
    (out, sealed)
}

pub(crate) fn wrap_for<'a>(sealed: &'a Sealed, id: &KeyId) -> &'a [u8] {
    &sealed.wraps.iter().find(|(k, _)| k == id).unwrap().1
}

pub(crate) fn open(reader: &Party, author: &Party, blob: &[u8], wrap: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    document::open(
        OpenInput {
            device: &reader.dev,
            wrap,
            author_signing_key: &author.dev.signing_public_key(),
            expected: None,
        },
        blob,
        &mut out,
    )?;
    Ok(out)
}
