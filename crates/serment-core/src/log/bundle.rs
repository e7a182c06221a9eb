//! The patient's page in the log (PROTOCOL.md §11.3, kind 8 `bundle`; issue 13 §3): the hash of
//! the asset bundle a server serves at `/`, signed by the log key, so that a page served to one
//! user only becomes provable (`serment web verify`).
//!
//! **The bundle hash.** Every asset of the page, as served (`index.html` at `/` with its SRI
//! digests filled in, and every `/assets/…` file the page loads, the WebAssembly module
//! included), is listed in a manifest, one line per asset sorted by path (bytewise):
//!
//! ```text
//! <URL path> SP <W3C SRI of the served bytes: "sha384-" base64(SHA-384)> LF
//! ```
//!
//! and `bundle_hash = H("serment/v1/web-bundle" || 0x00 || manifest)` (SHA-256, PROTOCOL.md §3).
//!
//! **The entry payload.**
//!
//! ```text
//! WebBundle { magic "SRMB", format_version u16, suite_id u16, bundle_hash [32],
//!             server_version str8, signature [64] }
//!     // the log key over sig_input("log-bundle", all bytes before the signature)
//! ```

use std::collections::BTreeMap;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use sha2::Digest as _;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::ids::labeled_hash;
use crate::sign::{self, Context};
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

/// The PROTOCOL.md §3 label of the bundle hash.
pub const BUNDLE_HASH_LABEL: &str = "web-bundle";
/// The longest server version string, in bytes.
pub const MAX_SERVER_VERSION_LEN: usize = 64;
/// The most assets a bundle may hold.
pub const MAX_ASSETS: usize = 64;

/// The W3C Subresource Integrity value of `bytes`: `sha384-<standard base64 of SHA-384>`.
pub fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
    )
}

/// A URL path an asset may have: `/`, or `/` followed by ASCII letters, digits and `._-/`,
/// at most 128 bytes, no `..`.
pub fn valid_asset_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 128
        && !path.contains("..")
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

/// The manifest of a bundle (module docs): one `path SP sri LF` line per asset, sorted by path.
///
/// # Errors
/// [`Error::InvalidField`] for an invalid path (see [`valid_asset_path`]) or an empty bundle;
/// [`Error::TooLarge`] over [`MAX_ASSETS`] assets.
pub fn manifest(assets: &BTreeMap<String, Vec<u8>>) -> Result<String> {
    if assets.is_empty() {
        return Err(Error::InvalidField {
            field: "web bundle",
            reason: "no asset",
        });
    }
    if assets.len() > MAX_ASSETS {
        return Err(Error::TooLarge {
            what: "web bundle",
            limit: MAX_ASSETS as u64,
        });
    }
    let mut out = String::new();
    // A BTreeMap<String, _> iterates in bytewise order of the keys.
    for (path, bytes) in assets {
        if !valid_asset_path(path) {
            return Err(Error::InvalidField {
                field: "web bundle asset path",
                reason: "not a URL path of letters, digits and ._-/",
            });
        }
        out.push_str(path);
        out.push(' ');
        out.push_str(&sri(bytes));
        out.push('\n');
    }
    Ok(out)
}

/// The bundle hash: `H("serment/v1/web-bundle" || 0x00 || manifest(assets))`.
///
/// # Errors
/// As [`manifest`].
pub fn bundle_hash(assets: &BTreeMap<String, Vec<u8>>) -> Result<[u8; 32]> {
    Ok(labeled_hash(
        BUNDLE_HASH_LABEL,
        &[manifest(assets)?.as_bytes()],
    ))
}

/// The assets a text asset (HTML, JavaScript, CSS) refers to, as a browser would load them: every
/// quoted string (`"`, `'` or `` ` ``) that is a path under `/assets/` (letters, digits, `._-`),
/// in order of first appearance, without repeats. The page refers to its assets only that way
/// (`tests/web.rs` checks every asset served is reached from `/`).
pub fn asset_references(text: &str) -> Vec<String> {
    const PREFIX: &str = "/assets/";
    let mut out: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text.get(from..).and_then(|t| t.find(PREFIX)) {
        let start = from + pos;
        from = start + PREFIX.len();
        let Some(&quote) = start.checked_sub(1).and_then(|i| bytes.get(i)) else {
            continue;
        };
        if !matches!(quote, b'"' | b'\'' | b'`') {
            continue;
        }
        let Some(len) = text.get(start..).and_then(|t| t.find(quote as char)) else {
            continue;
        };
        let Some(path) = text.get(start..start + len) else {
            continue;
        };
        let name = path.get(PREFIX.len()..).unwrap_or_default();
        if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !name.contains("..")
            && !out.iter().any(|p| p == path)
        {
            out.push(path.to_owned());
        }
    }
    out
}

/// A web bundle entry's payload (kind 8), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebBundle {
    /// The bundle hash ([`bundle_hash`]).
    pub bundle_hash: [u8; 32],
    /// The version of the server that serves it (`serment --version`'s number).
    pub server_version: String,
    signature: [u8; 64],
    signed: Vec<u8>,
}

impl WebBundle {
    const MAGIC: &'static [u8; 4] = b"SRMB";

    /// Builds the payload and signs it with the log key (server side).
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a server version that is empty, not printable ASCII, or over
    /// [`MAX_SERVER_VERSION_LEN`] bytes.
    pub fn sign(
        log_key: &SigningKey,
        bundle_hash: &[u8; 32],
        server_version: &str,
    ) -> Result<Vec<u8>> {
        check_version_string(server_version)?;
        let mut w = Writer::with_capacity(128 + server_version.len());
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .bytes(bundle_hash)
            .str8("server_version", server_version)?;
        let s = sign::sign(log_key, Context::LogBundle, w.as_slice());
        w.bytes(&s);
        Ok(w.into_vec())
    }

    /// Decodes a payload (syntax only: [`WebBundle::verify`] with the log key).
    ///
    /// # Errors
    /// Format errors.
    pub fn decode(bytes: &[u8]) -> Result<WebBundle> {
        const WHAT: &str = "web bundle";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let bundle_hash: [u8; 32] = r.array()?;
        let server_version = r.str8("server_version", MAX_SERVER_VERSION_LEN)?.to_owned();
        check_version_string(&server_version)?;
        let signed_len = bytes.len() - r.remaining();
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?
            .to_vec();
        Ok(WebBundle {
            bundle_hash,
            server_version,
            signature,
            signed,
        })
    }

    /// Verifies the log key's signature.
    ///
    /// # Errors
    /// [`Error::BadSignature`].
    pub fn verify(&self, log_public_key: &[u8; 32]) -> Result<()> {
        sign::verify(
            log_public_key,
            Context::LogBundle,
            &self.signed,
            &self.signature,
            "web bundle entry (log signature)",
        )
    }
}

fn check_version_string(v: &str) -> Result<()> {
    if v.is_empty() || v.len() > MAX_SERVER_VERSION_LEN || !v.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::InvalidField {
            field: "server_version",
            reason: "1 to 64 printable ASCII characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn assets() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            ("/".to_owned(), b"<html>".to_vec()),
            ("/assets/app.js".to_owned(), b"x".to_vec()),
        ])
    }

    #[test]
    fn any_changed_byte_or_path_changes_the_hash() {
        let h = bundle_hash(&assets()).unwrap();
        let mut a = assets();
        a.get_mut("/assets/app.js").unwrap()[0] ^= 1;
        assert_ne!(bundle_hash(&a).unwrap(), h);
        let mut a = assets();
        a.insert("/assets/more.js".into(), Vec::new());
        assert_ne!(bundle_hash(&a).unwrap(), h);
        let mut a = assets();
        let v = a.remove("/assets/app.js").unwrap();
        a.insert("/assets/app2.js".into(), v);
        assert_ne!(bundle_hash(&a).unwrap(), h);
        let mut a = assets();
        a.insert("/assets/../x".into(), Vec::new());
        assert!(bundle_hash(&a).is_err());
        assert!(bundle_hash(&BTreeMap::new()).is_err());
    }

    #[test]
    fn references_are_found_as_a_browser_loads_them() {
        let html = r#"<link href="/assets/style.css"><script src="/assets/app.js" integrity="x">
            new Worker('/assets/worker.js'); import x from `/assets/a-b_c.js`;
            "/assets/../etc" '/assets/' "/assets/app.js" /assets/bare.js"#;
        assert_eq!(
            asset_references(html),
            [
                "/assets/style.css",
                "/assets/app.js",
                "/assets/worker.js",
                "/assets/a-b_c.js"
            ]
        );
    }

    #[test]
    fn entry_round_trips_and_is_signed_by_the_log() {
        let log = SigningKey::from_bytes(&[3; 32]);
        let p = WebBundle::sign(&log, &[7; 32], "0.1.0").unwrap();
        let b = WebBundle::decode(&p).unwrap();
        assert_eq!(b.bundle_hash, [7; 32]);
        assert_eq!(b.server_version, "0.1.0");
        b.verify(&log.verifying_key().to_bytes()).unwrap();
        let other = SigningKey::from_bytes(&[4; 32]);
        assert!(b.verify(&other.verifying_key().to_bytes()).is_err());
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 1;
            let ok = WebBundle::decode(&q)
                .and_then(|b| b.verify(&log.verifying_key().to_bytes()))
                .is_ok();
            assert!(!ok, "flip {i}");
        }
        assert!(WebBundle::sign(&log, &[7; 32], "").is_err());
        assert!(WebBundle::sign(&log, &[7; 32], "a b").is_err());
    }
}
