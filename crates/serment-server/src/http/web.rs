//! The patient's page (issue 13 §3), served at `/` from assets embedded in the binary
//! (`crates/serment-server/web/`), with the headers the issue requires:
//!
//! - `Content-Security-Policy`: [`CSP`] — same-origin scripts, styles, images and requests only;
//!   `'wasm-unsafe-eval'` for the WebAssembly core; no framing; no `<base>`; no form
//!   submission; no plugins;
//! - `Strict-Transport-Security` ([`HSTS`]) on every response of a server speaking TLS;
//! - `Referrer-Policy: no-referrer`, `Permissions-Policy` ([`PERMISSIONS_POLICY`]) denying every
//!   powerful feature, `X-Content-Type-Options: nosniff`;
//! - Subresource Integrity (W3C SRI, SHA-384) on every script and stylesheet the page loads,
//!   computed from the embedded bytes when the router is built, and on the WebAssembly module
//!   the worker fetches. The worker script and the wasm-bindgen glue it imports cannot carry an
//!   `integrity` attribute (module workers and static imports have none); all are same-origin
//!   and covered by the bundle hash (PROTOCOL.md §11.3).
//! - The bundle hash ([`bundle_hash`], `serment_core::log::bundle`) over every asset exactly as
//!   served is logged at startup (`Server::log_web_bundle`, kind 8), so that `serment web
//!   verify` can prove which page a server serves.
//!
//! The bundle: `index.html`, `app.js`, `style.css`, `icon.svg`, `worker.js` and `pkg/` (the
//! Rust client core compiled to WebAssembly by `tools/build-web.sh`: `serment_wasm.js`,
//! `serment_wasm_bg.wasm`), all embedded.
//!
//! The page has no inline script and names no other origin (`tests/web.rs` checks both).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The Content-Security-Policy of every page response: issue 13's, with `form-action 'none'`
/// (not covered by `default-src`: an injected form could post the passphrase off-origin) and
/// `object-src 'none'` (hostile review F8).
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                              connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                              form-action 'none'; object-src 'none'";

/// `Strict-Transport-Security` (RFC 6797) of every response when the server speaks TLS: a
/// year, subdomains included, so that a browser that once reached the page over HTTPS never
/// follows a plain-http link to it (SSL stripping of the page where the passphrase is typed,
/// hostile review F8). Behind a TLS-terminating proxy, the proxy sets it (docs/CONFIG.md).
pub(crate) const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Adds [`HSTS`] to a response (the router's outermost layer when TLS is on).
pub(crate) async fn hsts(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    r
}

/// Every powerful feature off: the page needs none.
pub(crate) const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), \
     gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()";

const INDEX: &str = include_str!("../../web/index.html");
const APP_JS: &[u8] = include_bytes!("../../web/app.js");
const WORKER_JS: &str = include_str!("../../web/worker.js");
const WASM_JS: &[u8] = include_bytes!("../../web/pkg/serment_wasm.js");
const WASM: &[u8] = include_bytes!("../../web/pkg/serment_wasm_bg.wasm");
const STYLE_CSS: &[u8] = include_bytes!("../../web/style.css");
const ICON_SVG: &[u8] = include_bytes!("../../web/icon.svg");

/// The page, rendered once: `index.html` with the SRI digests of its assets filled in.
#[derive(Debug)]
pub(crate) struct Page {
    index: String,
    worker: String,
}

/// The W3C SRI value of `bytes`: `sha384-<base64 of SHA-384>`.
pub(crate) fn sri(bytes: &[u8]) -> String {
    serment_core::log::bundle::sri(bytes)
}

/// Every asset of the page exactly as served, by URL path: the bundle the log records.
pub(crate) fn bundle() -> BTreeMap<String, Vec<u8>> {
    let page = Page::build();
    BTreeMap::from([
        ("/".to_owned(), page.index.into_bytes()),
        ("/assets/app.js".to_owned(), APP_JS.to_vec()),
        ("/assets/style.css".to_owned(), STYLE_CSS.to_vec()),
        ("/assets/icon.svg".to_owned(), ICON_SVG.to_vec()),
        ("/assets/worker.js".to_owned(), page.worker.into_bytes()),
        ("/assets/serment_wasm.js".to_owned(), WASM_JS.to_vec()),
        ("/assets/serment_wasm_bg.wasm".to_owned(), WASM.to_vec()),
    ])
}

/// The bundle hash of [`bundle`] (PROTOCOL.md §11.3, kind 8).
///
/// # Errors
/// Never with the embedded assets (valid paths, fewer than 64); typed for the caller anyway.
pub(crate) fn bundle_hash() -> serment_core::Result<[u8; 32]> {
    serment_core::log::bundle::bundle_hash(&bundle())
}

impl Page {
    fn build() -> Page {
        Page {
            index: INDEX
                .replace("{{APP_JS_SRI}}", &sri(APP_JS))
                .replace("{{STYLE_CSS_SRI}}", &sri(STYLE_CSS)),
            worker: WORKER_JS.replace("{{WASM_SRI}}", &sri(WASM)),
        }
    }
}

/// The page's routes: `/`, `/assets/app.js`, `/assets/style.css`, `/assets/icon.svg`,
/// `/assets/worker.js`, `/assets/serment_wasm.js`, `/assets/serment_wasm_bg.wasm`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/style.css", get(style_css))
        .route("/assets/icon.svg", get(icon_svg))
        .route("/assets/worker.js", get(worker_js))
        .route("/assets/serment_wasm.js", get(wasm_js))
        .route("/assets/serment_wasm_bg.wasm", get(wasm))
        .with_state(Arc::new(Page::build()))
}

fn with_headers(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("permissions-policy"),
            PERMISSIONS_POLICY,
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // A new binary may serve a new bundle: the browser revalidates every time.
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

async fn index(State(page): State<Arc<Page>>) -> Response {
    with_headers("text/html; charset=utf-8", page.index.clone())
}

async fn app_js() -> Response {
    with_headers("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> Response {
    with_headers("text/css; charset=utf-8", STYLE_CSS)
}

async fn icon_svg() -> Response {
    with_headers("image/svg+xml", ICON_SVG)
}

async fn worker_js(State(page): State<Arc<Page>>) -> Response {
    with_headers("text/javascript; charset=utf-8", page.worker.clone())
}

async fn wasm_js() -> Response {
    with_headers("text/javascript; charset=utf-8", WASM_JS)
}

async fn wasm() -> Response {
    with_headers("application/wasm", WASM)
}
