//! How the client reaches a server: TLS trust anchors and the plain-HTTP policy (issue 10 §1).
//!
//! - TLS is rustls with the `ring` provider (ureq's `rustls` feature), TLS 1.2 and 1.3.
//! - Trusted roots: Mozilla's root program as shipped by `webpki-roots` / `webpki-root-certs`
//!   (docs/SUPPLY_CHAIN.md says why not the OS store), plus at most one private CA bundle (PEM)
//!   given with `--ca-cert FILE` / `SERMENT_CA_CERT` or recorded in the keystore at `register`.
//! - `http://` is refused for any host outside loopback (`127.0.0.0/8`, `::1`, `localhost`)
//!   unless [`Transport::insecure_http`] is set: a bearer token and the metadata of every request
//!   would cross the network in clear.

use std::net::IpAddr;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::error::{ClientError, Result};
use crate::http::{Body, HttpTransport, Method, Request, Response};

/// The largest CA bundle accepted, in bytes (a bundle of a few hundred certificates).
pub const MAX_CA_PEM: usize = 1024 * 1024;

/// Transport settings of an [`crate::api::Api`]. The default trusts the webpki roots only and
/// refuses plain HTTP outside loopback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// A private CA bundle (PEM, one or more `CERTIFICATE` sections) trusted in addition to the
    /// webpki roots. Checked by [`Transport::with_ca_pem`].
    ca_pem: Option<String>,
    /// Allow `http://` to hosts outside loopback (the caller warns the user).
    pub insecure_http: bool,
}

impl Transport {
    /// Adds a private CA bundle (PEM). Every `CERTIFICATE` section must parse as an X.509 trust
    /// anchor; other sections are ignored.
    ///
    /// # Errors
    /// [`ClientError::Input`] when the text is over [`MAX_CA_PEM`], holds no certificate, or a
    /// certificate does not parse.
    pub fn with_ca_pem(mut self, pem: &str) -> Result<Transport> {
        parse_ca(pem)?;
        self.ca_pem = Some(pem.to_owned());
        Ok(self)
    }

    /// The private CA bundle, if any (PEM).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Checks `base` (`http://` or `https://` URL without path) against the plain-HTTP policy.
    ///
    /// # Errors
    /// [`ClientError::Input`] for another scheme, a URL without a host, or `http://` to a host
    /// outside loopback without [`Transport::insecure_http`].
    pub fn check_url(&self, base: &str) -> Result<()> {
        let uri: ureq::http::Uri = base
            .parse()
            .map_err(|_| ClientError::Input(format!("invalid server URL {base:?}")))?;
        let host = uri
            .host()
            .ok_or_else(|| ClientError::Input(format!("server URL {base:?} names no host")))?;
        match uri.scheme_str() {
            Some("https") => Ok(()),
            Some("http") if self.insecure_http || is_loopback(host) => Ok(()),
            Some("http") => Err(ClientError::Input(format!(
                "refusing plain http:// to {host}: the bearer token and every request would \
                 cross the network unencrypted. Use https:// (with --ca-cert for a private CA), \
                 or pass --insecure-http if a trusted proxy on this path adds TLS"
            ))),
            _ => Err(ClientError::Input(format!(
                "server URL must start with http:// or https://, got {base:?}"
            ))),
        }
    }

    /// The ureq TLS settings: the webpki roots, plus the private CA when one is set.
    ///
    /// # Errors
    /// [`ClientError::Input`] if the stored CA does not parse (it was checked when set).
    pub(crate) fn tls_config(&self) -> Result<TlsConfig> {
        let roots = match &self.ca_pem {
            None => RootCerts::WebPki,
            Some(pem) => {
                let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                certs.extend(parse_ca(pem)?);
                RootCerts::new_with_certs(&certs)
            }
        };
        Ok(TlsConfig::builder().root_certs(roots).build())
    }
}

/// The native [`HttpTransport`] over `ureq` (blocking), with rustls and the trust anchors of a
/// [`Transport`]. Redirects are never followed; a hostile or stalled server cannot hang the
/// client: connecting takes at most 10 s, every read and write at most 60 s, the headers must
/// arrive within 120 s, and a request's [`crate::http::Request::timeout`] bounds the whole call.
#[derive(Debug, Clone)]
pub struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    /// A transport trusting `settings`' roots.
    ///
    /// # Errors
    /// [`ClientError::Input`] if the recorded CA no longer parses.
    pub fn new(settings: &Transport) -> Result<UreqTransport> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(settings.tls_config()?)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .build()
            .into();
        Ok(UreqTransport { agent })
    }
}

impl HttpTransport for UreqTransport {
    fn send(&self, req: Request<'_>) -> Result<Response> {
        let err = |e: ureq::Error| ClientError::Transport(e.to_string());
        let resp = match req.method {
            Method::Get => {
                let mut b = self
                    .agent
                    .get(req.url)
                    .config()
                    .timeout_per_call(req.timeout)
                    .build();
                for (k, v) in req.headers {
                    b = b.header(k, v);
                }
                b.call().map_err(err)?
            }
            Method::Post => {
                let mut b = self
                    .agent
                    .post(req.url)
                    .config()
                    .timeout_per_call(req.timeout)
                    .build();
                for (k, v) in req.headers {
                    b = b.header(k, v);
                }
                match req.body {
                    Body::Empty => b.send_empty(),
                    Body::Bytes(bytes) => b.send(bytes),
                    Body::Reader(r) => b.send(ureq::SendBody::from_reader(r)),
                }
                .map_err(err)?
            }
        };
        let status = resp.status().as_u16();
        // No limit here: the caller caps what it reads (`crate::http::read_limited`, or the
        // sealed format's own bound for blobs).
        let body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        Ok(Response {
            status,
            body: Box::new(body),
        })
    }
}

/// Parses a CA bundle: the certificates, each checked to be a usable trust anchor.
fn parse_ca(pem: &str) -> Result<Vec<Certificate<'static>>> {
    if pem.len() > MAX_CA_PEM {
        return Err(ClientError::Input(format!(
            "the CA bundle is over {MAX_CA_PEM} bytes"
        )));
    }
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        match item {
            Ok(PemItem::Certificate(c)) => {
                let der = rustls::pki_types::CertificateDer::from(c.der());
                let mut store = rustls::RootCertStore::empty();
                store.add(der).map_err(|e| {
                    ClientError::Input(format!("the CA certificate does not parse: {e}"))
                })?;
                certs.push(c);
            }
            Ok(_) => {}
            Err(e) => {
                return Err(ClientError::Input(format!(
                    "the CA bundle is not valid PEM: {e}"
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(ClientError::Input(
            "the CA bundle holds no PEM CERTIFICATE section".into(),
        ));
    }
    Ok(certs)
}

/// True for `localhost`, `127.0.0.0/8`, `::1` (a bracketed IPv6 host is accepted as the URI
/// gives it) and IPv4-mapped loopback.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        let t = Transport::default();
        for ok in [
            "http://127.0.0.1:7878",
            "http://127.8.9.1",
            "http://localhost:1",
            "http://[::1]:7878",
            "https://example.org",
            "https://10.0.0.1:8443",
        ] {
            assert!(t.check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.org",
            "http://10.0.0.1:7878",
            "http://127.0.0.1.example.org",
            "http://localhost.example.org",
            "http://[::2]:1",
            "ftp://127.0.0.1",
            "127.0.0.1:7878",
        ] {
            let e = t.check_url(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        let e = t.check_url("http://example.org").unwrap_err().to_string();
        assert!(e.contains("--insecure-http"), "{e}");
        let insecure = Transport {
            insecure_http: true,
            ..Transport::default()
        };
        assert!(insecure.check_url("http://example.org").is_ok());
        assert!(insecure.check_url("ftp://example.org").is_err());
    }

    #[test]
    fn ca_bundles_are_checked() {
        for bad in [
            "",
            "not pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        ] {
            let e = Transport::default().with_ca_pem(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let huge = "x".repeat(MAX_CA_PEM + 1);
        assert!(Transport::default().with_ca_pem(&huge).is_err());

        // A real CA parses, is kept verbatim, and yields the webpki roots plus itself.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        let t = Transport::default().with_ca_pem(&pem).unwrap();
        assert_eq!(t.ca_pem(), Some(pem.as_str()));
        match t.tls_config().unwrap().root_certs() {
            RootCerts::Specific(certs) => {
                assert_eq!(
                    certs.len(),
                    webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1
                );
            }
            _ => panic!("expected the webpki roots plus the CA"),
        }
        assert!(matches!(
            Transport::default().tls_config().unwrap().root_certs(),
            RootCerts::WebPki
        ));
        // A private key alone is not a CA bundle.
        let e = Transport::default()
            .with_ca_pem(&key.serialize_pem())
            .unwrap_err();
        assert!(e.to_string().contains("no PEM CERTIFICATE"), "{e}");
    }
}
