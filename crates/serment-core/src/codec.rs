//! A checked reader and a writer for the binary formats of PROTOCOL.md §1.
//!
//! In the style of `rustls::msgs::codec`: every read goes through `split_at_checked`, never
//! indexing; every length-prefixed field has a cap; [`Reader::finish`] rejects trailing bytes.

use crate::error::{Error, Result};

/// A cursor over a byte slice that never panics on short input.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`; `what` names the structure in error messages.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { rest: bytes, what }
    }

    /// Takes the next `n` bytes, or fails with [`Error::Truncated`].
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(Error::Truncated { what: self.what })?;
        self.rest = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a big-endian `u8`.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a `u8`-length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str8(&mut self, field: &'static str, max: usize) -> Result<&'a str> {
        let len = usize::from(self.u8()?);
        if len > max {
            return Err(Error::InvalidField {
                field,
                reason: "too long",
            });
        }
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes).map_err(|_| Error::InvalidField {
            field,
            reason: "not UTF-8",
        })
    }

    /// Checks the magic bytes.
    pub fn magic(&mut self, magic: &[u8; 4]) -> Result<()> {
        let found: [u8; 4] = self.array()?;
        if &found == magic {
            Ok(())
        } else {
            Err(Error::BadMagic { what: self.what })
        }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Succeeds only if every byte was read.
    pub fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                what: self.what,
                extra: self.rest.len(),
            })
        }
    }
}

/// Appends big-endian fields to a buffer (the writing half of [`Reader`]).
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(cap),
        }
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }
    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// Appends a `u8`-length-prefixed string. Fails if it is longer than 255 bytes.
    pub fn str8(&mut self, field: &'static str, s: &str) -> Result<&mut Self> {
        let len = u8::try_from(s.len()).map_err(|_| Error::InvalidField {
            field,
            reason: "too long",
        })?;
        Ok(self.u8(len).bytes(s.as_bytes()))
    }
    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
    /// Consumes the writer.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn short_input_is_truncated_not_panic() {
        let mut r = Reader::new(&[1, 2, 3], "t");
        assert_eq!(r.u32(), Err(Error::Truncated { what: "t" }));
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut r = Reader::new(&[0, 1, 9], "t");
        assert_eq!(r.u16().unwrap(), 1);
        assert_eq!(
            r.finish(),
            Err(Error::TrailingBytes {
                what: "t",
                extra: 1
            })
        );
    }

    #[test]
    fn str8_cap_enforced() {
        let mut w = Writer::default();
        w.str8("s", "hello").unwrap();
        let v = w.into_vec();
        assert!(Reader::new(&v, "t").str8("s", 4).is_err());
        assert_eq!(Reader::new(&v, "t").str8("s", 5).unwrap(), "hello");
    }
}
