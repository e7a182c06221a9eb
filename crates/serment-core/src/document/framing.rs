//! Plaintext framing, padding and metadata (PROTOCOL.md §6.2).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest metadata JSON, in bytes.
pub const MAX_METADATA_LEN: usize = 65536;

/// The PADMÉ padding function (Nikitin et al., PETS 2019, §4): the padded length for `len` bytes.
/// Leaks `O(log log len)` bits of the length and adds at most 12 % (PROTOCOL.md §6.2).
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros()); // floor(log2 len)
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let z = e - s;
    let mask = (1u64 << z) - 1;
    len.saturating_add(mask) & !mask
}

/// An identifier of the patient, carried inside the ciphertext only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientIdentifier {
    /// The identifier system, e.g. `urn:oid:1.2.250.1.213.1.4.8` (INS-NIR).
    pub system: String,
    /// The identifier value.
    pub value: String,
}

/// Document metadata, sealed inside the ciphertext (PROTOCOL.md §6.2). The server never sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Bytes of content (required).
    pub content_length: u64,
    /// MIME type, e.g. `application/fhir+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// FHIR resource type, e.g. `DiagnosticReport`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Original file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// RFC 3339 time of sealing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The author's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_display: Option<String>,
    /// Patient identifiers (INS-NIR and others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patient_identifiers: Vec<PatientIdentifier>,
}

impl Metadata {
    /// Encodes the metadata as JSON.
    ///
    /// # Errors
    /// [`Error::TooLarge`] above [`MAX_METADATA_LEN`] bytes.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let v = serde_json::to_vec(self).map_err(|e| Error::Metadata(e.to_string()))?;
        if v.len() > MAX_METADATA_LEN {
            return Err(Error::TooLarge {
                what: "metadata",
                limit: MAX_METADATA_LEN as u64,
            });
        }
        Ok(v)
    }

    /// Decodes metadata JSON (duplicate keys are an error, unknown keys are ignored).
    ///
    /// # Errors
    /// [`Error::Metadata`] if it is not a valid metadata object.
    pub fn from_json(bytes: &[u8]) -> Result<Metadata> {
        serde_json::from_slice(bytes).map_err(|e| Error::Metadata(e.to_string()))
    }
}

/// The padded plaintext length for a metadata block and content.
///
/// # Errors
/// [`Error::TooLarge`] above the format's maximum.
pub fn padded_len(metadata_len: usize, content_len: u64) -> Result<u64> {
    let raw = 4u64
        .checked_add(metadata_len as u64)
        .and_then(|v| v.checked_add(content_len))
        .filter(|v| padme(*v) <= super::header::MAX_PADDED_LEN)
        .ok_or(Error::TooLarge {
            what: "document",
            limit: super::header::MAX_PADDED_LEN,
        })?;
    Ok(padme(raw))
}

/// Where the reader is in the framed plaintext.
#[derive(Debug)]
enum State {
    Length { got: Vec<u8> },
    Metadata { want: usize, got: Vec<u8> },
    Content { left: u64 },
    Padding,
}

/// Decodes framed plaintext incrementally: feed it chunk plaintexts in order, get content slices.
#[derive(Debug)]
pub(crate) struct Deframer {
    state: State,
    padded_len: u64,
    metadata: Option<Metadata>,
}

impl Deframer {
    pub(crate) fn new(padded_len: u64) -> Self {
        Deframer {
            state: State::Length { got: Vec::new() },
            padded_len,
            metadata: None,
        }
    }

    /// Consumes `input`, calling `out` with every content slice.
    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        while !input.is_empty() {
            match &mut self.state {
                State::Length { got } => {
                    let (take, rest) = input.split_at(input.len().min(4 - got.len()));
                    got.extend_from_slice(take);
                    input = rest;
                    if let Ok(len) = <[u8; 4]>::try_from(got.as_slice()) {
                        let want = u32::from_be_bytes(len) as usize;
                        if want > MAX_METADATA_LEN {
                            return Err(Error::TooLarge {
                                what: "metadata",
                                limit: MAX_METADATA_LEN as u64,
                            });
                        }
                        self.state = State::Metadata {
                            want,
                            got: Vec::with_capacity(want),
                        };
                        self.after_metadata_progress()?;
                    }
                }
                State::Metadata { want, got } => {
                    let (take, rest) = input.split_at(input.len().min(*want - got.len()));
                    got.extend_from_slice(take);
                    input = rest;
                    self.after_metadata_progress()?;
                }
                State::Content { left } => {
                    let n = input
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let (take, rest) = input.split_at(n);
                    out(take)?;
                    *left -= n as u64;
                    input = rest;
                    if *left == 0 {
                        self.state = State::Padding;
                    }
                }
                State::Padding => {
                    if input.iter().any(|b| *b != 0) {
                        return Err(Error::InvalidField {
                            field: "padding",
                            reason: "padding bytes must be zero",
                        });
                    }
                    input = &[];
                }
            }
        }
        Ok(())
    }

    fn after_metadata_progress(&mut self) -> Result<()> {
        let State::Metadata { want, got } = &self.state else {
            return Ok(());
        };
        if got.len() < *want {
            return Ok(());
        }
        let meta = Metadata::from_json(got)?;
        if padded_len(*want, meta.content_length)? != self.padded_len {
            return Err(Error::Metadata(
                "content_length does not match the padded length".into(),
            ));
        }
        self.state = if meta.content_length == 0 {
            State::Padding
        } else {
            State::Content {
                left: meta.content_length,
            }
        };
        self.metadata = Some(meta);
        Ok(())
    }

    /// Ends decoding: the metadata, or an error if the plaintext ended early.
    pub(crate) fn finish(self) -> Result<Metadata> {
        match (self.state, self.metadata) {
            (State::Padding, Some(m)) => Ok(m),
            _ => Err(Error::Metadata("plaintext ended before its content".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn padme_known_values() {
        // Values from the PURBs paper's definition, checked by hand.
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(2), 2);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(100), 104);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(65536), 65536);
        assert_eq!(padme(65537), 67584);
        for l in [3u64, 77, 4097, 1 << 20, (1 << 28) + 1] {
            let p = padme(l);
            assert!(p >= l && p - l <= l / 8 + 1, "{l} -> {p}");
        }
    }
}
