//! HTTPS for the server (issue 10 §1): rustls with the `ring` provider (the project's one crypto
//! backend; no aws-lc-rs, no OpenSSL), TLS 1.3 only (RFC 8446), ALPN `http/1.1` (RFC 7301).
//!
//! The certificate chain and key come as PEM (RFC 7468): from the files named by the `tls_cert` /
//! `tls_key` settings ([`TlsConfig::from_files`]), or from bytes in memory
//! ([`TlsConfig::from_pem`], e.g. a throwaway certificate made by the demo). Both check, at
//! startup, that the chain holds at least one certificate, that the key parses, and that the key
//! belongs to the first (leaf) certificate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A validated TLS server configuration, cheap to clone. Its `Debug` output shows no key.
#[derive(Clone)]
pub struct TlsConfig {
    inner: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConfig { .. }")
    }
}

/// Why a certificate or key was refused at startup. Messages name the file (or `<memory>`), never
/// key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read TLS {what} file {path}: {source}")]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate PEM holds no `CERTIFICATE` block, or one that does not decode.
    #[error("TLS certificate {origin}: {reason}")]
    Certificate {
        /// The file, or `<memory>`.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The key PEM holds no private key block, or one that does not decode.
    #[error("TLS key {origin}: {reason}")]
    Key {
        /// The file, or `<memory>`.
        origin: String,
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// The key does not belong to the leaf certificate, or rustls refused the pair.
    #[error("TLS key {key} does not match certificate {cert}: {reason}")]
    Mismatch {
        /// The certificate's file, or `<memory>`.
        cert: String,
        /// The key's file, or `<memory>`.
        key: String,
        /// rustls' explanation.
        reason: String,
    },
}

const MEMORY: &str = "<memory>";

impl TlsConfig {
    /// Reads and checks the PEM certificate chain (leaf first) and private key files.
    ///
    /// # Errors
    /// [`TlsError::Read`] for an unreadable file; otherwise as [`TlsConfig::from_pem`].
    pub fn from_files(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        let cert_pem = read("certificate", cert)?;
        let key_pem = zeroize::Zeroizing::new(read("key", key)?);
        build(
            &cert_pem,
            &key_pem,
            &cert.display().to_string(),
            &key.display().to_string(),
        )
    }

    /// Checks a PEM certificate chain (leaf first, at least one `CERTIFICATE` block) and a PEM
    /// private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`) held in memory.
    ///
    /// # Errors
    /// [`TlsError::Certificate`], [`TlsError::Key`] or [`TlsError::Mismatch`].
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, TlsError> {
        build(cert_chain_pem, key_pem, MEMORY, MEMORY)
    }

    /// The rustls configuration, for [`tokio_rustls::TlsAcceptor`].
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.inner))
    }
}

fn build(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_origin: &str,
    key_origin: &str,
) -> Result<TlsConfig, TlsError> {
    let cert_err = |reason: String| TlsError::Certificate {
        origin: cert_origin.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(cert_err(
            "no certificate in PEM (expected a -----BEGIN CERTIFICATE----- block)".into(),
        ));
    }
    // The pem error only names the section kind and position, never the key bytes.
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
        origin: key_origin.to_owned(),
        reason: match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no private key in PEM (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)"
                    .into()
            }
            other => format!("not a valid PEM private key: {other}"),
        },
    })?;
    // rustls 0.23.48 deprecates the ring provider because it offers no post-quantum key exchange
    // (X25519MLKEM768 needs aws-lc-rs). ring is the project's one crypto backend (deny.toml),
    // so TLS uses X25519 and the gap is recorded in THREAT_MODEL.md.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Mismatch {
            cert: cert_origin.to_owned(),
            key: key_origin.to_owned(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        // Checks that the key parses and that its public key is the leaf certificate's.
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch {
            cert: cert_origin.to_owned(),
            key: key_origin.to_owned(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConfig {
        inner: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn pair() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn accepts_a_matching_pair() {
        let (cert, key) = pair();
        TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    }

    #[test]
    fn refuses_a_key_of_another_certificate() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        let err = TlsConfig::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn refuses_pem_without_certificate_or_key() {
        let (cert, key) = pair();
        let err = TlsConfig::from_pem(key.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no certificate in PEM"), "{err}");
        let err = TlsConfig::from_pem(cert.as_bytes(), cert.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no private key in PEM"), "{err}");
        // The key never appears in an error.
        let body: String = key.lines().nth(1).unwrap().to_owned();
        assert!(!err.to_string().contains(&body));
    }

    #[test]
    fn names_an_unreadable_file() {
        let err = TlsConfig::from_files(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            TlsError::Read {
                what: "certificate",
                ..
            }
        ));
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
