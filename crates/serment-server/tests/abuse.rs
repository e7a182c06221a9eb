//! Slow and abusive clients over real loopback sockets (issue 10 §3): slow headers, stalled
//! bodies, idle keep-alive connections, connection caps, and login throttling with its log.
//! Every loop is bounded and every test stops by itself.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use serment_server::{Config, Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// A started server and what stops it.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), serment_server::ServerError>>,
    _dir: TempDir,
}

impl Running {
    async fn start(tag: &str, tweak: impl FnOnce(&mut Config)) -> Running {
        let dir = TempDir::new(tag);
        let mut config = test_config(&dir.path().join("data"));
        tweak(&mut config);
        let running = Server::open(config).await.unwrap().bind().await.unwrap();
        let addr = running.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(running.serve(async {
            let _ = rx.await;
        }));
        Running {
            addr,
            stop: Some(tx),
            task,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

/// One request with `Connection: close`: (status, lower-cased head, body).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Vec<u8>) {
    request_from([127, 0, 0, 1], addr, method, path, body).await
}

/// [`request`] from the loopback address `from` (any 127.x.y.z reaches the server).
async fn request_from(
    from: [u8; 4],
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Vec<u8>) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((std::net::Ipv4Addr::from(from), 0)))
        .unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, resp[split + 4..].to_vec())
}

/// True once the server has closed `s` (EOF or reset), waiting at most `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + limit;
    loop {
        match timeout(
            deadline.saturating_duration_since(Instant::now()),
            s.read(&mut buf),
        )
        .await
        {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or 400 answer before the close is fine: keep reading to the EOF.
            Ok(Ok(_)) => {}
        }
    }
}

#[test]
fn defaults_bound_slow_clients() {
    let c = Config::default();
    assert!(c.header_read_timeout_secs <= 30);
    assert!(c.body_idle_timeout_secs <= 60);
    assert!(c.keep_alive_timeout_secs <= c.header_read_timeout_secs);
    assert!(c.max_connections_per_ip <= c.max_connections);
    assert!(c.shutdown_grace_ms < 1000);
}

/// The soft limit on open files (Linux), if known.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_header_connections_do_not_starve_healthz_and_are_closed() {
    const SLOW: usize = 1000;
    // Both ends live in this process: 2,000 descriptors and some room.
    if let Some(limit) = open_files_limit() {
        assert!(
            limit >= 2 * SLOW as u64 + 200,
            "this test needs `ulimit -n` >= {} (it is {limit})",
            2 * SLOW + 200
        );
    }
    let server = Running::start("slowloris", |c| {
        c.header_read_timeout_secs = 2;
        c.max_connections = 4096;
        c.max_connections_per_ip = 4096;
    })
    .await;
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        // A request head that never ends.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    for _ in 0..3 {
        let (status, _, body) = timeout(
            Duration::from_secs(1),
            request(server.addr, "GET", "/healthz", None),
        )
        .await
        .expect("/healthz answers within 1 s beside 1,000 slow connections");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Every slow connection is closed by the header read timeout, well within 30 s.
    let started = Instant::now();
    for s in &mut slow {
        let left = Duration::from_secs(30).saturating_sub(started.elapsed());
        assert!(
            closed_within(s, left).await,
            "a slow connection is still open after 30 s"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_body_and_an_idle_keep_alive_connection_are_closed() {
    let server = Running::start("stall", |c| {
        c.body_idle_timeout_secs = 1;
        c.keep_alive_timeout_secs = 1;
        // Longer than the waits below: only the timeouts under test can close the connections.
        c.header_read_timeout_secs = 60;
    })
    .await;
    // A body announced as 100 bytes that stops after 10.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /v1/devices HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"record\":")
        .await
        .unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)).await,
        "stalled body kept open"
    );

    // A kept-alive connection that goes idle after one answer.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(
        closed_within(&mut s, Duration::from_secs(10)).await,
        "idle keep-alive kept open"
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_once() {
    let server = Running::start("cap", |c| {
        c.max_connections_per_ip = 3;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let n = timeout(Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0, "the fourth connection was served");
    drop(held);
    // Slots are freed when connections close.
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(Ok((200, _, _))) = timeout(
            Duration::from_secs(1),
            tokio::spawn(request(server.addr, "GET", "/healthz", None)),
        )
        .await
        .map(|r| r.map_err(|_| ()))
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "slots not freed");
    server.stop().await;
}

/// Log lines written by `tracing` while the test runs.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_burst_of_bad_logins_gets_429_with_retry_after_and_is_logged() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    // current-thread runtime: the server's tasks run on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    const LIMIT: u32 = 5;
    let server = Running::start("throttle", |c| {
        c.auth_failures_per_minute = LIMIT;
    })
    .await;
    let user = User::new("victim");
    let (s, _, _) = request(
        server.addr,
        "POST",
        "/v1/devices",
        Some(json!({"record": b64(&user.record)})),
    )
    .await;
    assert_eq!(s, 201);

    let mut statuses = Vec::new();
    let mut retry_after = None;
    let mut signatures = Vec::new();
    for _ in 0..20 {
        let (s, head, body) = request(
            server.addr,
            "POST",
            "/v1/auth/challenge",
            Some(json!({"device_id": user.device_id()})),
        )
        .await;
        if s == 429 {
            statuses.push(429);
            retry_after = head
                .lines()
                .find_map(|l| l.strip_prefix("retry-after: "))
                .map(|v| v.trim().parse::<u64>().unwrap());
            break;
        }
        assert_eq!(s, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        let challenge = v["challenge"].as_str().unwrap().to_owned();
        // A signature by another key: a bad login.
        let wrong = User::new("attacker");
        let c: [u8; 32] = unb64(&challenge).try_into().unwrap();
        let sig = b64(&serment_core::auth::sign_challenge(&wrong.device, &c));
        signatures.push(sig.clone());
        let (s, head, _) = request(
            server.addr,
            "POST",
            "/v1/auth/token",
            Some(json!({"device_id": user.device_id(), "challenge": challenge, "signature": sig})),
        )
        .await;
        statuses.push(s);
        if s == 429 {
            retry_after = head
                .lines()
                .find_map(|l| l.strip_prefix("retry-after: "))
                .map(|v| v.trim().parse::<u64>().unwrap());
            break;
        }
    }
    let failures = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(failures, LIMIT as usize, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let retry_after = retry_after.expect("429 carries Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // The good key is throttled too for this device and this address, until the budget refills.
    let (s, _, body) = request(
        server.addr,
        "POST",
        "/v1/auth/challenge",
        Some(json!({"device_id": User::new("other").device_id()})),
    )
    .await;
    assert_eq!(s, 429, "same address: {}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "too_many_requests");

    server.stop().await;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("login failed"))
        .collect();
    assert_eq!(failed.len(), LIMIT as usize, "{text}");
    let prefix = &user.device_id()[..8];
    for line in &failed {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains(&format!("device={prefix}")), "{line}");
        assert!(
            !line.contains(&user.device_id()[..9]),
            "more than 8 hex digits: {line}"
        );
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
        assert!(line.contains("bad signature"), "{line}");
    }
    for sig in &signatures {
        assert!(!text.contains(sig.as_str()), "a signature reached the log");
    }
    assert!(text.contains("login throttled"), "{text}");
    let _ = std::io::stderr().flush();
}

/// F5 of the hostile review: a device id is public, so bad logins naming it from another
/// address must not lock the device out; the sender's own address is throttled.
#[tokio::test]
async fn bad_logins_naming_a_device_from_elsewhere_do_not_lock_it_out() {
    const LIMIT: u32 = 5;
    let server = Running::start("throttle-f5", |c| {
        c.auth_failures_per_minute = LIMIT;
    })
    .await;
    let victim = User::new("victim");
    let (s, _, _) = request(
        server.addr,
        "POST",
        "/v1/devices",
        Some(json!({"record": b64(&victim.record)})),
    )
    .await;
    assert_eq!(s, 201);
    let attacker = [127, 0, 0, 2];
    let mut statuses = Vec::new();
    for _ in 0..(LIMIT + 4) {
        let (s, _, _) = request_from(
            attacker,
            server.addr,
            "POST",
            "/v1/auth/token",
            Some(
                json!({"device_id": victim.device_id(), "challenge": "AAAA", "signature": "AAAA"}),
            ),
        )
        .await;
        statuses.push(s);
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the sender is throttled: {statuses:?}"
    );
    // The victim, from its own address, still gets a challenge and logs in.
    let (s, _, body) = request(
        server.addr,
        "POST",
        "/v1/auth/challenge",
        Some(json!({"device_id": victim.device_id()})),
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let challenge = v["challenge"].as_str().unwrap().to_owned();
    let c: [u8; 32] = unb64(&challenge).try_into().unwrap();
    let sig = b64(&serment_core::auth::sign_challenge(&victim.device, &c));
    let (s, _, body) = request(
        server.addr,
        "POST",
        "/v1/auth/token",
        Some(json!({"device_id": victim.device_id(), "challenge": challenge, "signature": sig})),
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    server.stop().await;
}

/// One request through the router of an opened server (for setup before it is bound).
async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    use tower::ServiceExt as _;
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
    if let Some(t) = token {
        // Signed with the token's device key (PROTOCOL.md §8.2.1), the body covered when it is
        // a JSON request.
        let signed_body = (method == "POST" && uri != "/v1/blobs").then_some(body.as_slice());
        req = authorize(req, method, uri, t, signed_body);
    }
    let resp = router
        .clone()
        .oneshot(req.body(axum::body::Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_response_is_dropped() {
    let dir = TempDir::new("slowread");
    let mut config = test_config(&dir.path().join("data"));
    config.max_blob_bytes = 64 << 20;
    config.body_idle_timeout_secs = 1;
    let server = Server::open(config).await.unwrap();
    let router = server.router();

    // Alice stores a 16 MiB document (more than any socket buffer holds).
    let alice = User::new("alice");
    let json_body = |v: Value| v.to_string().into_bytes();
    let (s, _) = call(
        &router,
        "POST",
        "/v1/devices",
        None,
        "application/json",
        json_body(json!({"record": b64(&alice.record)})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, v) = call(
        &router,
        "POST",
        "/v1/auth/challenge",
        None,
        "application/json",
        json_body(json!({"device_id": alice.device_id()})),
    )
    .await;
    assert_eq!(s, 200);
    let c: [u8; 32] = unb64(v["challenge"].as_str().unwrap()).try_into().unwrap();
    let sig = serment_core::auth::sign_challenge(&alice.device, &c);
    let (s, v) = call(
        &router,
        "POST",
        "/v1/auth/token",
        None,
        "application/json",
        json_body(
            json!({"device_id": alice.device_id(), "challenge": b64(&c), "signature": b64(&sig)}),
        ),
    )
    .await;
    assert_eq!(s, 200);
    let token = v["token"].as_str().unwrap().to_owned();
    remember_signer(&token, &alice.device);
    let doc_id = serment_core::DocId::random().unwrap();
    let content = vec![7u8; 16 << 20];
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[], &content);
    let blob_len = blob.len();
    let (s, v) = call(
        &router,
        "POST",
        "/v1/blobs",
        Some(&token),
        "application/octet-stream",
        blob,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        &router,
        "POST",
        "/v1/documents",
        Some(&token),
        "application/json",
        json_body(json!({"doc_id": doc_id.to_string(), "doc_version": 1, "blob_id": v["blob_id"], "wraps": all_wraps(&sealed)})),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(running.serve(async {
        let _ = rx.await;
    }));

    // A client with a small receive window asks for the blob and stops reading.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let path = format!("/v1/documents/{doc_id}/versions/1/blob");
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n"
    );
    for (k, v) in signature_headers("GET", &path, &token, None) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    // Longer than body_idle_timeout_secs: the server gives up on the stalled send.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => total += n,
            Err(_) => panic!("the server neither sent nor closed"),
        }
    }
    assert!(
        total < blob_len,
        "the whole response ({total} bytes) arrived: the stalled send was not dropped"
    );
    tx.send(()).unwrap();
    timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Registers and logs `user` in through `router`; returns the token.
async fn enroll_via(router: &axum::Router, user: &User) -> String {
    let json_body = |v: Value| v.to_string().into_bytes();
    let (s, _) = call(
        router,
        "POST",
        "/v1/devices",
        None,
        "application/json",
        json_body(json!({"record": b64(&user.record)})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, v) = call(
        router,
        "POST",
        "/v1/auth/challenge",
        None,
        "application/json",
        json_body(json!({"device_id": user.device_id()})),
    )
    .await;
    assert_eq!(s, 200);
    let c: [u8; 32] = unb64(v["challenge"].as_str().unwrap()).try_into().unwrap();
    let sig = serment_core::auth::sign_challenge(&user.device, &c);
    let (s, v) = call(
        router,
        "POST",
        "/v1/auth/token",
        None,
        "application/json",
        json_body(
            json!({"device_id": user.device_id(), "challenge": b64(&c), "signature": b64(&sig)}),
        ),
    )
    .await;
    assert_eq!(s, 200);
    let token = v["token"].as_str().unwrap().to_owned();
    remember_signer(&token, &user.device);
    token
}

/// F3 of the hostile review: sweeping pairing slots with `GET /v1/pairing/{slot}` is throttled
/// per address (every 404 a failure), while a live slot is polled freely and other addresses
/// are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeping_pairing_slots_is_throttled_per_address() {
    const LIMIT: u32 = 5;
    let dir = TempDir::new("pairing-sweep");
    let mut config = test_config(&dir.path().join("data"));
    config.auth_failures_per_minute = LIMIT;
    let server = Server::open(config).await.unwrap();
    let router = server.router();
    let alice = User::new("alice");
    let token = enroll_via(&router, &alice).await;
    let hello = b64(&[7u8; 40]);
    let (s, v) = call(
        &router,
        "POST",
        "/v1/pairing",
        Some(&token),
        "application/json",
        json!({"slot": "123456", "hello": hello})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let running = server.bind().await.unwrap();
    let addr = running.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(running.serve(async {
        let _ = rx.await;
    }));

    let sweeper = [127, 0, 0, 3];
    // Polling the live slot is not a failure, however often.
    for _ in 0..(3 * LIMIT) {
        let (s, _, _) = request_from(sweeper, addr, "GET", "/v1/pairing/123456", None).await;
        assert_eq!(s, 200);
    }
    // Unknown slots: LIMIT answers of 404, then 429 for this address, live slot included.
    let mut statuses = Vec::new();
    for slot in 200_000..200_000 + LIMIT + 3 {
        let (s, _, _) =
            request_from(sweeper, addr, "GET", &format!("/v1/pairing/{slot}"), None).await;
        statuses.push(s);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        LIMIT as usize,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let (s, _, _) = request_from(sweeper, addr, "GET", "/v1/pairing/123456", None).await;
    assert_eq!(s, 429);
    // Another address still reads the slot.
    let (s, _, body) = request(addr, "GET", "/v1/pairing/123456", None).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));

    tx.send(()).unwrap();
    timeout(Duration::from_secs(5), task)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
}

/// Issue 17 §2: fetching recovery escrows (`GET /v1/recovery/escrow/{handle}`, no
/// authentication) takes a token of the address's login budget: a burst from one address gets
/// 429, another address is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetching_recovery_escrows_is_throttled_per_address() {
    const LIMIT: u32 = 5;
    let running = Running::start("escrow-throttle", |c| {
        c.auth_requests_per_minute = LIMIT;
    })
    .await;
    let addr = running.addr;
    let guesser = [127, 0, 0, 4];
    let mut statuses = Vec::new();
    for i in 0..LIMIT + 2 {
        let (s, _, _) = request_from(
            guesser,
            addr,
            "GET",
            &format!("/v1/recovery/escrow/patient-{i}"),
            None,
        )
        .await;
        statuses.push(s);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        LIMIT as usize,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let (s, _, body) = request(addr, "GET", "/v1/recovery/escrow/patient-0", None).await;
    assert_eq!(s, 404, "{}", String::from_utf8_lossy(&body));
    running.stop().await;
}
