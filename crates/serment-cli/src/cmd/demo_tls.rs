//! The throwaway PKI of the demo (issue 10 §1) and of `serment tls test-pki`: a private CA and a
//! certificate for the loopback server, generated with rcgen (ECDSA P-256 over `ring`). The demo
//! holds them in memory and writes them only to its temporary directory; `tls test-pki` writes
//! them where a trial of the README's walkthrough expects them. Nothing here is meant for a real
//! deployment: the CA's key is discarded, and the certificates name only loopback addresses.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{CliError, CliResult};

/// A CA certificate and a server certificate it issued, PEM.
pub(crate) struct DemoPki {
    /// The CA certificate (what clients trust).
    pub(crate) ca_pem: String,
    /// The server certificate, for `localhost`, `127.0.0.1` and `::1`.
    pub(crate) cert_pem: String,
    /// The server's private key (PKCS#8).
    pub(crate) key_pem: String,
}

fn pki_err(e: rcgen::Error) -> CliError {
    CliError::Server(format!("cannot generate the demo certificates: {e}"))
}

/// Generates a fresh CA and a loopback server certificate, valid from an hour ago for `days`
/// days. The CA may sign no other CA (path length 0) and its private key is dropped here.
///
/// # Errors
/// [`CliError::Server`] if rcgen fails (the system random generator, say).
pub(crate) fn generate(days: u32) -> CliResult<DemoPki> {
    let now = time::OffsetDateTime::now_utc();
    let (not_before, not_after) = (
        now - time::Duration::hours(1),
        now + time::Duration::days(i64::from(days)),
    );

    let ca_key = KeyPair::generate().map_err(pki_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "Serment trial CA (throwaway)");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(pki_err)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(pki_err)?;
    let mut leaf = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(pki_err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "serment trial server");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let cert = leaf.signed_by(&key, &issuer).map_err(pki_err)?;
    Ok(DemoPki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
