//! Over a real TCP socket (a minimal HTTP/1.1 client, no extra dependency), and the data
//! directory checks of `Server::open`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use serment_core::DocId;
use serment_server::{Config, Server, ServerError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Sends one request with `Connection: close` and returns (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        let signed_body = (method == "POST" && path != "/v1/blobs").then_some(body);
        for (k, v) in signature_headers(method, path, t, signed_body) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    read_response(&mut s).await
}

/// Reads a whole `Connection: close` response; returns (status, body).
async fn read_response(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("transfer-encoding: chunked"),
        "test client expects Content-Length"
    );
    (status, resp[split + 4..].to_vec())
}

async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (s, b) = http(addr, method, path, token, Some("application/json"), &bytes).await;
    (s, serde_json::from_slice(&b).unwrap())
}

async fn login(addr: SocketAddr, user: &User) -> String {
    let (s, v) = http_json(
        addr,
        "POST",
        "/v1/devices",
        None,
        Some(json!({"record": b64(&user.record)})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = http_json(
        addr,
        "POST",
        "/v1/auth/challenge",
        None,
        Some(json!({"device_id": user.device_id()})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let c: [u8; 32] = unb64(v["challenge"].as_str().unwrap()).try_into().unwrap();
    let sig = serment_core::auth::sign_challenge(&user.device, &c);
    let (s, v) = http_json(
        addr,
        "POST",
        "/v1/auth/token",
        None,
        Some(json!({"device_id": user.device_id(), "challenge": b64(&c), "signature": b64(&sig)})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    remember_signer(&token, &user.device);
    token
}

#[tokio::test]
async fn end_to_end_over_tcp() {
    let dir = TempDir::new("tcp");
    let data = dir.path().join("data");
    let server = Server::open(test_config(&data)).await.unwrap();
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(running.serve(async {
        let _ = stopped.await;
    }));

    let (s, v) = http_json(addr, "GET", "/healthz", None, None).await;
    assert_eq!((s, &v["status"]), (200, &json!("ok")));
    assert!(v["max_blob_bytes"].as_u64().is_some());

    let alice = User::new("alice");
    let bob = User::new("bob");
    let carol = User::new("carol");
    let ta = login(addr, &alice).await;
    let tb = login(addr, &bob).await;
    let tc = login(addr, &carol).await;

    // Over max_json_bytes with a Content-Length: a JSON 413, not the limit layer's plain text.
    // Only the head is sent: the answer must come before any body byte is read.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/devices HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut s).await;
    assert_eq!(status, 413);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");

    let (s, v) = http_json(addr, "GET", "/v1/documents", None, None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "unauthorized");

    let doc_id = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[&bob], &[9u8; 100_000]);
    let (s, b) = http(
        addr,
        "POST",
        "/v1/blobs",
        Some(&ta),
        Some("application/octet-stream"),
        &blob,
    )
    .await;
    assert_eq!(s, 201);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["size"], blob.len());
    let commit = json!({"doc_id": doc_id.to_string(), "doc_version": 1, "blob_id": v["blob_id"], "wraps": all_wraps(&sealed)});
    let (s, v) = http_json(addr, "POST", "/v1/documents", Some(&ta), Some(commit)).await;
    assert_eq!(s, 201, "{v}");

    let path = format!("/v1/documents/{doc_id}/versions/1");
    let (s, v) = http_json(addr, "GET", &path, Some(&tb), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["wrap"], wrap_of(&sealed, &bob));
    let (s, got) = http(addr, "GET", &format!("{path}/blob"), Some(&tb), None, b"").await;
    assert_eq!(s, 200);
    assert_eq!(got, blob);
    let (s, _) = http(addr, "GET", &format!("{path}/blob"), Some(&tc), None, b"").await;
    assert_eq!(s, 403);
    let (s, v) = http_json(
        addr,
        "GET",
        &format!("/v1/documents/{doc_id}/accesses"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let what: Vec<&str> = v["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["what"].as_str().unwrap())
        .collect();
    assert_eq!(what, ["wrap", "blob"]);

    // A client that announces 200 000 bytes, sends 100 000 and hangs up leaves nothing behind
    // (past the first 64 KiB, which the blob store gathers before it creates its file).
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST /v1/blobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ta}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 200000\r\n"
    );
    for (k, v) in signature_headers("POST", "/v1/blobs", &ta, None) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[7u8; 100_000]).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count_files(&data.join("tmp")), 1, "upload in progress");
    drop(s);
    let mut left = usize::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = count_files(&data.join("tmp"));
        if left == 0 {
            break;
        }
    }
    assert_eq!(left, 0, "the partial upload was not deleted");
    assert_eq!(count_files(&data.join("blobs")), 1);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn data_dir_checks() {
    let dir = TempDir::new("datadir");

    // Missing: created with mode 0700, with its layout.
    let fresh = dir.path().join("a/b/data");
    let server = Server::open(sqlite_test_config(&fresh)).await.unwrap();
    drop(server);
    for sub in ["serment.db", "blobs", "tmp"] {
        assert!(fresh.join(sub).exists(), "{sub}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    // Reopening an existing data directory works (migrations are idempotent).
    Server::open(sqlite_test_config(&fresh)).await.unwrap();

    // Empty existing directory: accepted.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    Server::open(sqlite_test_config(&empty)).await.unwrap();

    // Non-empty, without serment.db: refused, and nothing created there.
    let wrong = dir.path().join("home");
    std::fs::create_dir(&wrong).unwrap();
    std::fs::write(wrong.join("notes.txt"), b"mine").unwrap();
    let err = Server::open(sqlite_test_config(&wrong)).await.unwrap_err();
    assert!(matches!(err, ServerError::DataDirNotEmpty { .. }), "{err}");
    assert_eq!(std::fs::read_dir(&wrong).unwrap().count(), 1);

    // A file is not a data directory.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = Server::open(sqlite_test_config(&file)).await.unwrap_err();
    assert!(
        matches!(err, ServerError::DataDirNotADirectory { .. }),
        "{err}"
    );

    // Invalid settings are refused before touching the disk.
    let cfg = Config {
        token_ttl_secs: 0,
        ..sqlite_test_config(&dir.path().join("never"))
    };
    let err = Server::open(cfg).await.unwrap_err();
    assert!(matches!(err, ServerError::Config(_)), "{err}");
    assert!(!dir.path().join("never").exists());
}
