//! HTTPS on the server (issue 10 §1): a private CA and a loopback certificate made with rcgen, a
//! rustls client that trusts only that CA.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use serment_server::{Config, Server, ServerError, TlsConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A throwaway CA and a certificate for `localhost` / `127.0.0.1` it signed: (CA PEM, leaf chain
/// PEM, leaf key PEM).
pub fn private_ca() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn client(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn https_get(connector: &tokio_rustls::TlsConnector, addr: SocketAddr, path: &str) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // rustls reports a peer that closes without close_notify as an error; the body is complete.
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_https_with_a_private_ca_and_refuses_plain_http() {
    let dir = TempDir::new("tls");
    let (ca, cert, key) = private_ca();
    let server = Server::open(test_config(&dir.path().join("data")))
        .await
        .unwrap()
        .with_tls(TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    assert!(server.is_tls());
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    assert!(running.is_tls());
    assert_eq!(running.url(), format!("https://{addr}"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(running.serve(async {
        let _ = stop_rx.await;
    }));

    let resp = https_get(&client(&ca), addr, "/healthz").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"status\":\"ok\""), "{resp}");
    // Every response over TLS carries HSTS (F8): the API's, the page's, a 404.
    for path in ["/healthz", "/", "/nowhere"] {
        let resp = https_get(&client(&ca), addr, path).await;
        assert!(
            resp.to_ascii_lowercase()
                .contains("\r\nstrict-transport-security: max-age=31536000; includesubdomains\r\n"),
            "{path}: {resp}"
        );
    }

    // A client that trusts another CA refuses the certificate.
    let (other_ca, _, _) = private_ca();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    assert!(client(&other_ca).connect(name, tcp).await.is_err());

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(!out.starts_with(b"HTTP/1.1 200"), "plain HTTP answered");

    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn tls_files_are_checked_at_startup() {
    let dir = TempDir::new("tlsfiles");
    let (_, cert, key) = private_ca();
    let (_, _, other_key) = private_ca();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let other_key_path = dir.path().join("other-key.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    std::fs::write(&other_key_path, &other_key).unwrap();
    let config = |cert: &std::path::Path, key: &std::path::Path| Config {
        tls_cert: Some(cert.to_owned()),
        tls_key: Some(key.to_owned()),
        ..test_config(&dir.path().join("data"))
    };

    let ok = Server::open(config(&cert_path, &key_path)).await.unwrap();
    assert!(ok.is_tls());
    drop(ok);

    let err = Server::open(config(&cert_path, &other_key_path))
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::Tls(_)), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");

    let err = Server::open(config(&key_path, &key_path))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no certificate in PEM"), "{err}");

    let missing = dir.path().join("missing.pem");
    let err = Server::open(config(&missing, &key_path)).await.unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");

    // One without the other is a configuration error.
    let half = Config {
        tls_cert: Some(cert_path.clone()),
        ..test_config(&dir.path().join("data"))
    };
    let err = Server::open(half).await.unwrap_err();
    assert!(matches!(err, ServerError::Config(_)), "{err}");
    assert!(err.to_string().contains("tls_key is missing"), "{err}");
}

#[tokio::test]
async fn a_tls_handshake_that_never_starts_is_closed_by_the_header_timeout() {
    let dir = TempDir::new("tlsslow");
    let (_, cert, key) = private_ca();
    let config = Config {
        header_read_timeout_secs: 1,
        ..test_config(&dir.path().join("data"))
    };
    let running = Server::open(config)
        .await
        .unwrap()
        .with_tls(TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap())
        .bind()
        .await
        .unwrap();
    let addr = running.local_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(running.serve(async {
        let _ = stop_rx.await;
    }));
    // Connected, but no ClientHello ever comes.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "a silent TLS connection was kept open: {r:?}"
    );
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
