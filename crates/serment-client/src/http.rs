//! The transport interface the client's checks are driven by (issue 13 §1): one HTTP exchange,
//! request in, status and body out. The checks (pinning, log proofs, contacts, key histories,
//! document open, audit) live in [`crate::api`], [`crate::log`], [`crate::contacts`] and the
//! session; none of them opens a socket. Two transports implement [`HttpTransport`]:
//!
//! - the native one over `ureq` ([`crate::transport::UreqTransport`], feature `native`, used by
//!   the CLI), with rustls and the trust anchors of [`crate::transport::Transport`];
//! - the browser's, over synchronous `XMLHttpRequest` in a Web Worker (`serment-wasm`), where
//!   TLS, the origin and the CSP's `connect-src 'self'` are the browser's.
//!
//! The transport is not trusted for anything but delivery: every answer is parsed strictly and
//! checked by the callers, exactly as before.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use crate::error::{ClientError, Result};

/// The HTTP methods the API uses (PROTOCOL.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The method's name as sent on the wire (`GET`, `POST`), the name the request signature
    /// covers (RFC 9421 `@method`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request body.
pub enum Body<'a> {
    /// No body (`GET`).
    Empty,
    /// Bytes held in memory (JSON, a small blob), sent with a `Content-Length`.
    Bytes(&'a [u8]),
    /// A stream of unknown length (a large sealed blob), sent chunked. A transport that cannot
    /// stream may read it whole first.
    Reader(&'a mut dyn Read),
}

impl fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Reader(_) => f.write_str("Reader"),
        }
    }
}

/// One HTTP request. Header names are lowercase. The `authorization` header carries a bearer
/// token: a transport never logs headers.
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The absolute URL (`https://host[:port]/path?query`).
    pub url: &'a str,
    /// Headers, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body<'a>,
    /// The longest the whole exchange may take, headers and body (JSON calls); `None` for blob
    /// transfers, which may take longer in total but whose transport still times out stalled
    /// reads and writes.
    pub timeout: Option<Duration>,
}

impl fmt::Debug for Request<'_> {
    // Headers are left out: they hold the bearer token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// One HTTP response: the status and a reader over the body. Redirects are never followed (a
/// 3xx is returned as is, and refused by the caller as a non-2xx answer).
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, not yet read. Callers cap what they read ([`read_limited`]).
    pub body: Box<dyn Read + Send>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Carries one HTTP exchange. Implementations only move bytes: they return
/// [`ClientError::Transport`] when no answer arrived (connection refused, TLS failure, timeout),
/// and every answer, whatever its status, as a [`Response`].
pub trait HttpTransport: Send + Sync + fmt::Debug {
    /// Sends `req` and returns the answer's status and body.
    ///
    /// # Errors
    /// [`ClientError::Transport`] when no HTTP answer was received.
    fn send(&self, req: Request<'_>) -> Result<Response>;
}

/// Reads `body` whole, refusing more than `limit` bytes.
///
/// # Errors
/// [`ClientError::Transport`] if reading fails; [`ClientError::BadResponse`] over the limit.
pub fn read_limited(body: &mut dyn Read, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    body.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(ClientError::BadResponse(format!(
            "the answer is over {limit} bytes"
        )));
    }
    Ok(out)
}
