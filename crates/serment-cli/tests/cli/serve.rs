//! `serment serve` as an operator runs it (issues 10 and 18): no store is created implicitly,
//! the absolute data directory is printed, and SIGTERM stops the server within a second even
//! with an idle keep-alive connection open.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;

fn serve(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(cwd)
        .env_remove("SERMENT_DATA_DIR")
        .env_remove("SERMENT_CONFIG")
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts the child and reads its startup lines up to the URL: (child, data dir line, URL).
fn start(mut cmd: Command) -> (Child, String, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut data_dir = String::new();
    let url = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(d) = line.strip_prefix("serment: data directory ") {
            data_dir = d.to_owned();
        }
        if let Some(u) = line.strip_prefix("serment: listening on ") {
            break u.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, data_dir, url)
}

#[test]
fn serve_refuses_to_create_a_store_implicitly() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().canonicalize().unwrap();
    let out = serve(&cwd, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let abs = cwd.join("serment-data");
    assert!(err.contains(&abs.display().to_string()), "{err}");
    assert!(err.contains("--init"), "{err}");
    assert!(!abs.exists(), "a store was created");

    // An empty directory is refused the same way.
    std::fs::create_dir(&abs).unwrap();
    let out = serve(&cwd, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"));

    // --init creates it and prints the absolute path; later starts need no flag.
    let (mut child, data_dir, url) = start(serve(&cwd, &["--init"]));
    assert_eq!(data_dir, abs.display().to_string());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(abs.join("serment.db").exists());
    stop(&mut child);
    let (mut child, data_dir, _) = start(serve(&cwd, &[]));
    assert_eq!(data_dir, abs.display().to_string());
    stop(&mut child);

    // An explicit --data-dir may create a new store.
    let named = cwd.join("named");
    let (mut child, data_dir, _) = start(serve(&cwd, &["--data-dir", "named"]));
    assert_eq!(data_dir, named.display().to_string());
    stop(&mut child);
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
fn sigterm_stops_the_server_within_a_second_with_an_idle_keep_alive_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, _, url) = start(serve(tmp.path(), &["--init"]));
    let addr = url.strip_prefix("http://").unwrap();
    // One answered request, then the connection stays open and idle (keep-alive).
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let sent = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("serve still running 5 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
    drop(s);
}

#[test]
fn serve_speaks_https_with_tls_cert_and_key_and_refuses_a_mismatched_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_pem = tmp.path().join("cert.pem");
    let key_pem = tmp.path().join("key.pem");
    let other_key_pem = tmp.path().join("other-key.pem");
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(&other_key_pem, other.signing_key.serialize_pem()).unwrap();

    // Flags.
    let mut cmd = serve(tmp.path(), &["--init", "--tls-cert"]);
    cmd.arg(&cert_pem).arg("--tls-key").arg(&key_pem);
    let (mut child, _, url) = start(cmd);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    stop(&mut child);

    // The same through SERMENT_TLS_CERT / SERMENT_TLS_KEY.
    let mut cmd = serve(tmp.path(), &[]);
    cmd.env("SERMENT_TLS_CERT", &cert_pem)
        .env("SERMENT_TLS_KEY", &key_pem);
    let (mut child, _, url) = start(cmd);
    assert!(url.starts_with("https://"), "{url}");
    stop(&mut child);

    // A key of another certificate: exit 2 before listening, naming both files.
    let mut cmd = serve(tmp.path(), &["--tls-cert"]);
    cmd.arg(&cert_pem).arg("--tls-key").arg(&other_key_pem);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match"), "{err}");
    assert!(err.contains("other-key.pem"), "{err}");
    assert!(!err.contains("listening on"), "{err}");

    // Only one of the two: exit 2, naming the missing one.
    let mut cmd = serve(tmp.path(), &["--tls-cert"]);
    cmd.arg(&cert_pem);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key is missing"));
}
