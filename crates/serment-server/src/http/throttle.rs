//! Login throttling (issue 10 §3, PROTOCOL.md §8.2): `POST /v1/auth/challenge` and
//! `POST /v1/auth/token` are limited per client address (IPv6: per /64) and per device id as
//! named from that address (a device id is public: failures sent from elsewhere never lock the
//! device out, hostile review F5).
//!
//! Two token buckets per key, each holding up to its per-minute budget and refilling steadily:
//! - **requests** (`auth_requests_per_minute`): every login request takes one token;
//! - **failures** (`auth_failures_per_minute`): every failed login (any 4xx answer: bad
//!   signature, unknown/used/expired challenge, unknown or revoked device, malformed request)
//!   takes one token.
//!
//! A request whose address or device has an empty bucket gets `429 too_many_requests` with
//! `Retry-After` (RFC 9110 §10.2.3, whole seconds) and is not processed. Each failed login is
//! logged at WARN with the device id's first 8 hex digits, the peer address and the reason,
//! never the challenge, signature or token.
//!
//! The buckets are rows of the metadata store (issue 11 §4), shared by every instance on the
//! database; a token is taken by one atomic conditional write, so the budget holds when the
//! attempts are spread over instances. Buckets that have refilled hold nothing worth keeping
//! and are dropped by the maintenance tick ([`crate::gc`]): the table holds only the keys seen
//! in about the last minute.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serment_core::KeyId;

use super::AppState;
use super::error::{ApiError, ErrorBody, ErrorDetail};
use crate::store::{Store, StoreError};
use crate::transport::client_key;

/// The bucket every login request takes a token from.
const REQUESTS: &str = "requests";
/// The bucket every failed login takes a token from.
const FAILURES: &str = "failures";

/// What a bucket counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    /// A device id as named from one address (or /64): a device id is public (directory,
    /// log), so failures charged to it alone would let anyone lock its device out of login
    /// (hostile review F5); keyed with the address, they lock out only the sender.
    DeviceAt(KeyId, IpAddr),
    /// A device id when the peer address is unknown (a router driven without a socket).
    Device(KeyId),
}

impl Key {
    /// The stored key: `ip:<address or /64>`, `device:<hex>@<address or /64>` or
    /// `device:<hex>`.
    fn stored(&self) -> String {
        match self {
            Key::Ip(ip) => format!("ip:{ip}"),
            Key::DeviceAt(d, ip) => format!("device:{d}@{ip}"),
            Key::Device(d) => format!("device:{d}"),
        }
    }
}

/// Seconds until a bucket at `level` tokens, refilled at `per_minute / 60` a second, holds a
/// whole token; `None` if it holds one now.
fn wait_secs(level: f64, per_minute: u32) -> Option<u64> {
    if level >= 1.0 {
        return None;
    }
    let secs = ((1.0 - level) * 60.0 / f64::from(per_minute.max(1))).ceil();
    // `secs` is finite and positive: per_minute >= 1 (Config::validate).
    Some((secs as u64).max(1))
}

/// The milliseconds since the Unix epoch (the buckets' clock, shared by the instances).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The login throttle's budgets. The buckets live in the metadata store (issue 11 §4), so the
/// budget holds for a client spreading its attempts over several instances; stale buckets are
/// dropped by the maintenance tick ([`prune`]).
#[derive(Debug)]
pub(crate) struct Throttle {
    requests_per_minute: u32,
    failures_per_minute: u32,
}

impl Throttle {
    pub(crate) fn new(requests_per_minute: u32, failures_per_minute: u32) -> Throttle {
        Throttle {
            requests_per_minute,
            failures_per_minute,
        }
    }

    /// Takes a request token for every key, or says how long to wait. A key with no failure
    /// token left refuses the request; then each key's request token is taken by one atomic
    /// conditional write (a refused request may have taken the token of a key checked before
    /// the one that refused it: stricter, never looser).
    async fn admit(
        &self,
        store: &Store,
        keys: &[Key],
        take_request: bool,
    ) -> Result<Result<(), u64>, StoreError> {
        let now = now_ms();
        let meta = store.meta();
        for k in keys {
            let level = meta
                .token_level(FAILURES, &k.stored(), self.failures_per_minute, now)
                .await?;
            if let Some(secs) = wait_secs(level, self.failures_per_minute) {
                return Ok(Err(secs));
            }
        }
        if !take_request {
            return Ok(Ok(()));
        }
        for k in keys {
            let key = k.stored();
            if !meta
                .take_token(REQUESTS, &key, self.requests_per_minute, now, true)
                .await?
            {
                let level = meta
                    .token_level(REQUESTS, &key, self.requests_per_minute, now)
                    .await?;
                return Ok(Err(wait_secs(level, self.requests_per_minute).unwrap_or(1)));
            }
        }
        Ok(Ok(()))
    }

    async fn failed(&self, store: &Store, keys: &[Key]) -> Result<(), StoreError> {
        let now = now_ms();
        for k in keys {
            store
                .meta()
                .take_token(FAILURES, &k.stored(), self.failures_per_minute, now, false)
                .await?;
        }
        Ok(())
    }
}

/// Drops the buckets that have refilled (the maintenance tick). Returns how many.
///
/// # Errors
/// [`StoreError`] from the store.
pub(crate) async fn prune(store: &Store, throttle: &Throttle) -> Result<u64, StoreError> {
    let now = now_ms();
    let meta = store.meta();
    Ok(meta
        .prune_buckets(REQUESTS, throttle.requests_per_minute, now)
        .await?
        + meta
            .prune_buckets(FAILURES, throttle.failures_per_minute, now)
            .await?)
}

/// Only `device_id` is read from the login body; the handler parses the whole body again.
#[derive(serde::Deserialize)]
struct DeviceField {
    device_id: Option<String>,
}

/// The axum middleware of the two login routes and of a pairing join (see the module
/// documentation).
pub(crate) async fn auth_throttle(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    throttled(state, req, next, true).await
}

/// The axum middleware of `GET /v1/pairing/{slot}` (hostile review F3): only failures count
/// (an unknown or expired slot, 404), with the login routes' failure budget per address, so
/// that sweeping the 10^6 slots costs what blind joins cost; the two devices polling a live
/// slot every half second are never refused.
pub(crate) async fn failure_throttle(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    throttled(state, req, next, false).await
}

async fn throttled(state: AppState, req: Request, next: Next, take_request: bool) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = req.into_parts();
    // The body is JSON under `max_json_bytes` (the route's limit layer sits inside this one).
    let bytes = match axum::body::to_bytes(body, state.config.max_json_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::PayloadTooLarge(
                "the JSON body is over the limit or ended early".into(),
            )
            .into_response();
        }
    };
    let device = serde_json::from_slice::<DeviceField>(&bytes)
        .ok()
        .and_then(|d| d.device_id)
        .and_then(|s| KeyId::from_hex(&s).ok());
    let mut keys = Vec::with_capacity(2);
    let ip = peer.map(|p| client_key(p.ip()));
    if let Some(ip) = ip {
        keys.push(Key::Ip(ip));
    }
    if let Some(d) = device {
        keys.push(ip.map_or(Key::Device(d), |ip| Key::DeviceAt(d, ip)));
    }
    let path = parts.uri.path().to_owned();
    let admitted = match state
        .throttle
        .admit(&state.store, &keys, take_request)
        .await
    {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Err(retry_after) = admitted {
        tracing::warn!(
            device = %prefix(device.as_ref()),
            peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            route = %path,
            retry_after,
            "{} throttled",
            what(&path)
        );
        return too_many(what(&path), retry_after);
    }
    let resp = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    let status = resp.status();
    if status.is_client_error() {
        if let Err(e) = state.throttle.failed(&state.store, &keys).await {
            return ApiError::from(e).into_response();
        }
        tracing::warn!(
            device = %prefix(device.as_ref()),
            peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            route = %path,
            reason = reason(&path, status),
            "{} failed",
            what(&path)
        );
    }
    resp
}

/// The first 8 hex digits of a device id, or `-`.
fn prefix(d: Option<&KeyId>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| {
            let mut s = d.to_string();
            s.truncate(8);
            s
        },
    )
}

/// What a throttled route does, for the log line (the newcomer's H16: a claim or a recovery
/// look-up refused was logged as "login failed", sending an operator after the wrong thing).
fn what(path: &str) -> &'static str {
    if path.starts_with("/v1/auth/") {
        "login"
    } else if path.starts_with("/v1/pairing") {
        "pairing"
    } else if path.starts_with("/v1/provisional") {
        "claim"
    } else if path.starts_with("/v1/recovery") {
        "recovery"
    } else {
        "request"
    }
}

fn reason(path: &str, status: StatusCode) -> &'static str {
    if !path.starts_with("/v1/auth/") {
        return match status {
            StatusCode::NOT_FOUND => "unknown slot, code, escrow or request",
            StatusCode::FORBIDDEN => "refused: wrong or used code, or not allowed",
            StatusCode::BAD_REQUEST => "malformed request",
            StatusCode::CONFLICT => "conflict: claimed, used or completed already",
            _ => "refused request",
        };
    }
    match status {
        StatusCode::UNAUTHORIZED => "bad signature, or unknown, used or expired challenge",
        StatusCode::NOT_FOUND => "unknown device",
        StatusCode::FORBIDDEN => "revoked device",
        StatusCode::BAD_REQUEST => "malformed request",
        _ => "refused request",
    }
}

/// `429 too_many_requests` with `Retry-After: <secs>`.
fn too_many(what: &str, retry_after: u64) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: "too_many_requests".to_owned(),
            message: format!("too many {what} attempts: retry in {retry_after} s"),
        },
    };
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_time_to_a_whole_token() {
        assert_eq!(wait_secs(1.0, 3), None);
        assert_eq!(wait_secs(5.0, 3), None);
        // Empty, 3 a minute: one token in 20 s; half a token left: 10 s.
        assert_eq!(wait_secs(0.0, 3), Some(20));
        assert_eq!(wait_secs(0.5, 3), Some(10));
        // Never 0 while a token is missing.
        assert_eq!(wait_secs(0.9999, 600), Some(1));
    }
}
