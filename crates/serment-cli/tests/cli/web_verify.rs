//! `serment web verify` (issue 13 §3, PROTOCOL.md §11.3 kind 8): the page a server serves is
//! checked against the bundle hashes in its log. A proxy in front of the server (what a hostile
//! server, or anyone between it and one user, could serve) rewrites one asset: the bundle no
//! longer matches any logged hash and `web verify` exits 4; through the same proxy, unmodified,
//! it exits 0 with the log index.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;

/// The page's own script, plus one line: what a targeted attack would add.
const TAMPERED_APP_JS: &str = concat!(
    include_str!("../../../serment-server/web/app.js"),
    "\nfetch('/v1/exfiltrate');\n"
);

/// Reads one request (head and `Content-Length` body) from `r`; `None` at end of stream.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    let mut path = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if head.is_empty() {
            path = line.split(' ').nth(1)?.to_owned();
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if line == "\r\n" {
            head.push_str("Connection: close\r\n\r\n");
            break;
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    let mut req = head.into_bytes();
    req.extend(body);
    Some((path, req))
}

/// A loopback HTTP proxy to `upstream` that, while `tamper` is set, serves
/// [`TAMPERED_APP_JS`] for `/assets/app.js`. Returns its base URL.
fn proxy(upstream: &str, tamper: Arc<AtomicBool>) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let (upstream, tamper) = (upstream.clone(), Arc::clone(&tamper));
            std::thread::spawn(move || {
                let mut out = c.try_clone().unwrap();
                let mut r = BufReader::new(c);
                while let Some((path, req)) = read_request(&mut r) {
                    if path == "/assets/app.js" && tamper.load(Ordering::SeqCst) {
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\ncontent-type: text/javascript; charset=utf-8\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{TAMPERED_APP_JS}",
                            TAMPERED_APP_JS.len()
                        );
                        return;
                    }
                    let mut up = TcpStream::connect(&upstream).unwrap();
                    up.write_all(&req).unwrap();
                    let mut resp = Vec::new();
                    let _ = up.read_to_end(&mut resp);
                    if out.write_all(&resp).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn web_verify_finds_the_served_page_in_the_log_and_catches_a_modified_one() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProc::start(&tmp.path().join("data"), &[]);
    let tamper = Arc::new(AtomicBool::new(false));
    let via = proxy(&server.url, Arc::clone(&tamper));

    // A patient registered through the proxy: the keystore pins the log for that origin.
    let home = tmp.path().join("patient");
    ok(
        &home,
        &["id", "new", "--name", "patient-w", "--kdf", "floor"],
    );
    ok(&home, &["register", "--server", &via]);

    let v = ok(&home, &["web", "verify", "--server", &via]);
    assert_eq!(v["logged"], true, "{v}");
    assert_eq!(v["log_key_pinned"], true, "{v}");
    // The first entry: `serve` logs the bundle at startup, before anyone registers.
    assert_eq!(v["log_index"], 0, "{v}");
    assert_eq!(v["assets"].as_array().unwrap().len(), 7, "{v}");
    let logged_hash = v["bundle_hash"].as_str().unwrap().to_owned();

    // One asset rewritten for this user: not a logged bundle, exit 4.
    tamper.store(true, Ordering::SeqCst);
    let (code, v) = run(&home, &["web", "verify", "--server", &via]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["code"], "bundle_not_logged", "{v}");
    // Text mode says so plainly too.
    let out = std::process::Command::new(bin())
        .args(["web", "verify", "--server", &via])
        .env("SERMENT_HOME", &home)
        .env("SERMENT_PASSPHRASE", PASS)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT LOGGED"), "{text}");
    assert!(!text.contains(&logged_hash), "{text}");

    // Back to the real page; and straight from the server without a keystore, with the log key
    // given out of band.
    tamper.store(false, Ordering::SeqCst);
    ok(&home, &["web", "verify", "--server", &via]);
    let key = ok(&home, &["verify-log", "--server", &via]);
    assert_eq!(key["verified"], true, "{key}");
    assert_eq!(key["report"]["kinds"]["bundle"], 1, "{key}");
    let nobody = tmp.path().join("nobody");
    let v = ok(&nobody, &["web", "verify", "--server", &server.url]);
    assert_eq!(v["logged"], true, "{v}");
    assert_eq!(v["log_key_pinned"], false, "{v}");
    assert_eq!(v["bundle_hash"], logged_hash.as_str(), "{v}");
    server.stop();
}
