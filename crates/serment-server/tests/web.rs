//! The patient's page (issue 13 §3): served at `/` with the exact CSP and the other headers the
//! issue lists, Subresource Integrity on every asset that matches the bytes served, no inline
//! script, and no other origin named anywhere in the page.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use common::TestServer;
use sha2::Digest as _;
use tower::ServiceExt as _;

async fn fetch(srv: &TestServer, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let resp = srv
        .router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, body.to_vec())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
    )
}

#[tokio::test]
async fn the_page_carries_the_csp_and_the_other_headers() {
    let srv = TestServer::new().await;
    for (path, ty) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
        ("/assets/worker.js", "text/javascript; charset=utf-8"),
        ("/assets/serment_wasm.js", "text/javascript; charset=utf-8"),
        ("/assets/serment_wasm_bg.wasm", "application/wasm"),
    ] {
        let (s, h, body) = fetch(&srv, path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(!body.is_empty(), "{path}");
        assert_eq!(header(&h, "content-type"), ty, "{path}");
        // Exactly the policy of issue 13 §3.
        assert_eq!(
            header(&h, "content-security-policy"),
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'",
            "{path}"
        );
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP (RFC 6797 §7.2): {path}"
        );
        assert_eq!(header(&h, "referrer-policy"), "no-referrer", "{path}");
        let pp = header(&h, "permissions-policy");
        for feature in ["camera=()", "microphone=()", "geolocation=()", "payment=()"] {
            assert!(pp.contains(feature), "{path}: {pp}");
        }
        assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{path}");
    }
}

#[tokio::test]
async fn every_asset_has_an_sri_digest_of_the_bytes_served() {
    let srv = TestServer::new().await;
    let (_, _, html) = fetch(&srv, "/").await;
    let html = String::from_utf8(html).unwrap();
    for asset in ["/assets/app.js", "/assets/style.css"] {
        let (_, _, bytes) = fetch(&srv, asset).await;
        let tag = html
            .lines()
            .find(|l| l.contains(&format!("\"{asset}\"")))
            .unwrap_or_else(|| panic!("the page does not load {asset}"));
        assert!(
            tag.contains(&format!("integrity=\"{}\"", sri(&bytes))),
            "{asset}: {tag}"
        );
    }
    assert!(!html.contains("{{"), "a placeholder was left: {html}");
    // The worker fetches the WebAssembly module with the SRI digest of the bytes served.
    let (_, _, wasm) = fetch(&srv, "/assets/serment_wasm_bg.wasm").await;
    let (_, _, worker) = fetch(&srv, "/assets/worker.js").await;
    let worker = String::from_utf8(worker).unwrap();
    assert!(
        worker.contains(&format!("integrity: '{}'", sri(&wasm))),
        "{worker}"
    );
    assert!(!worker.contains("{{"), "a placeholder was left: {worker}");
}

#[tokio::test]
async fn no_inline_script_and_no_other_origin() {
    let srv = TestServer::new().await;
    let (_, _, html) = fetch(&srv, "/").await;
    let html = String::from_utf8(html).unwrap();
    // Every <script> has a src and an empty body; no event-handler attributes.
    for part in html.split("<script").skip(1) {
        let (open, rest) = part.split_once('>').unwrap();
        assert!(
            open.contains(" src=\"/"),
            "inline or foreign script: <script{open}>"
        );
        assert!(rest.starts_with("</script>"), "script with a body: {rest}");
    }
    // No event-handler attribute (` onclick=`...): ` on` followed by letters and `=`.
    let lower = html.to_lowercase();
    for (i, _) in lower.match_indices(" on") {
        let name: String = lower[i + 3..]
            .chars()
            .take_while(char::is_ascii_lowercase)
            .collect();
        assert!(
            !lower[i + 3 + name.len()..].starts_with('='),
            "inline event handler on{name}"
        );
    }
    for path in [
        "/",
        "/assets/app.js",
        "/assets/style.css",
        "/assets/worker.js",
        "/assets/serment_wasm.js",
    ] {
        let (_, _, body) = fetch(&srv, path).await;
        let text = String::from_utf8(body).unwrap();
        for scheme in ["http://", "https://", "//cdn", "wss://"] {
            assert!(
                !text.contains(scheme),
                "{path} names another origin ({scheme})"
            );
        }
    }
}

/// PROTOCOL.md §11.3 kind 8: the bundle a browser reaches from `/` (following the asset paths
/// each text asset names, as `serment web verify` does) is exactly the bundle the server hashes;
/// it is logged once however many times the server starts (the check reads the log, under its
/// lock), signed by the log key.
#[tokio::test]
async fn the_bundle_reached_from_the_page_is_logged_once() {
    use serment_core::log::bundle::{asset_references, bundle_hash};
    use serment_core::log::entry::{LogEntry, Payload};
    use serment_server::Server;

    let dir = common::TempDir::new("bundle");
    let data = dir.path().join("data");
    let server = Server::open(common::test_config(&data)).await.unwrap();
    let srv = TestServer {
        router: server.router(),
        data: data.clone(),
        dir: common::TempDir::new("bundle-unused"),
    };
    // Crawl as a browser would.
    let mut assets = std::collections::BTreeMap::new();
    let mut queue = vec!["/".to_owned()];
    while let Some(p) = queue.pop() {
        if assets.contains_key(&p) {
            continue;
        }
        let (s, _, body) = fetch(&srv, &p).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        if !p.ends_with(".wasm") {
            queue.extend(asset_references(&String::from_utf8_lossy(&body)));
        }
        assets.insert(p, body);
    }
    assert_eq!(assets.len(), 7, "{:?}", assets.keys().collect::<Vec<_>>());
    let hash = hex::encode(bundle_hash(&assets).unwrap());
    assert_eq!(hash, Server::web_bundle_hash().unwrap());

    let (idx, appended) = server.log_web_bundle().await.unwrap();
    assert!(appended);
    // A restart, or a second instance on the same database, appends nothing: the check is on
    // the stored chain, not in memory.
    assert_eq!(server.log_web_bundle().await.unwrap(), (idx, false));
    let (s, v) = srv.get("/v1/log/bundles", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let e = LogEntry::decode(&common::unb64(entries[0]["entry"].as_str().unwrap())).unwrap();
    let Payload::Bundle(b) = e.payload else {
        panic!("not a bundle entry")
    };
    assert_eq!(hex::encode(b.bundle_hash), hash);
    assert_eq!(b.server_version, env!("CARGO_PKG_VERSION"));
    let (s, v) = srv.get("/v1/log/key", None).await;
    assert_eq!(s, StatusCode::OK);
    let vkey = serment_core::log::note::VerifierKey::parse(v["vkey"].as_str().unwrap()).unwrap();
    b.verify(&vkey.public_key).unwrap();
}
