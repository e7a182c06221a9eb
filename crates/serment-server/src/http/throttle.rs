//! Login throttling (issue 10 §3, PROTOCOL.md §8.2): `POST /v1/auth/challenge` and
//! `POST /v1/auth/token` are limited per client address (IPv6: per /64) and per device id.
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
//! never the challenge, signature or token. The bucket tables are bounded ([`MAX_KEYS`]): full
//! buckets (no state worth keeping) are dropped first, then the least recently used.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serment_core::KeyId;

use super::AppState;
use super::error::{ApiError, ErrorBody, ErrorDetail};
use crate::transport::client_key;

/// The most keys (addresses and device ids) each bucket table remembers.
pub(crate) const MAX_KEYS: usize = 65_536;

/// What a bucket counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Device(KeyId),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by address or device, `per_minute` tokens deep, refilled at
/// `per_minute / 60` tokens a second.
#[derive(Debug)]
struct Buckets {
    per_minute: f64,
    map: HashMap<Key, Bucket>,
}

impl Buckets {
    fn new(per_minute: u32) -> Buckets {
        Buckets {
            per_minute: f64::from(per_minute),
            map: HashMap::new(),
        }
    }

    fn level(&self, key: &Key, now: Instant) -> f64 {
        match self.map.get(key) {
            None => self.per_minute,
            Some(b) => {
                let refill =
                    now.saturating_duration_since(b.last).as_secs_f64() * self.per_minute / 60.0;
                (b.tokens + refill).min(self.per_minute)
            }
        }
    }

    /// Seconds until every key has a whole token, or `None` if they all have one now.
    fn wait(&self, keys: &[Key], now: Instant) -> Option<u64> {
        let worst = keys
            .iter()
            .map(|k| self.level(k, now))
            .fold(f64::INFINITY, f64::min);
        if worst >= 1.0 {
            return None;
        }
        let secs = ((1.0 - worst) * 60.0 / self.per_minute).ceil();
        // `secs` is finite and positive: per_minute >= 1 (Config::validate).
        Some((secs as u64).max(1))
    }

    fn take(&mut self, keys: &[Key], now: Instant) {
        for k in keys {
            let tokens = (self.level(k, now) - 1.0).max(0.0);
            if !self.map.contains_key(k) && self.map.len() >= MAX_KEYS {
                self.make_room(now);
            }
            self.map.insert(*k, Bucket { tokens, last: now });
        }
    }

    /// Drops the buckets that have refilled (they hold nothing), then, if still full, the least
    /// recently touched one.
    fn make_room(&mut self, now: Instant) {
        let per_minute = self.per_minute;
        self.map.retain(|_, b| {
            let refill = now.saturating_duration_since(b.last).as_secs_f64() * per_minute / 60.0;
            b.tokens + refill < per_minute
        });
        if self.map.len() >= MAX_KEYS
            && let Some(oldest) = self.map.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| *k)
        {
            self.map.remove(&oldest);
        }
    }
}

/// The login throttle of one server (shared by its routers).
#[derive(Debug)]
pub(crate) struct Throttle {
    inner: Mutex<(Buckets, Buckets)>,
}

impl Throttle {
    pub(crate) fn new(requests_per_minute: u32, failures_per_minute: u32) -> Throttle {
        Throttle {
            inner: Mutex::new((
                Buckets::new(requests_per_minute),
                Buckets::new(failures_per_minute),
            )),
        }
    }

    /// Takes a request token for every key, or says how long to wait.
    fn admit(&self, keys: &[Key]) -> Result<(), u64> {
        let now = Instant::now();
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (requests, failures) = &mut *guard;
        let wait = requests.wait(keys, now).max(failures.wait(keys, now));
        if let Some(secs) = wait {
            return Err(secs);
        }
        requests.take(keys, now);
        Ok(())
    }

    fn failed(&self, keys: &[Key]) {
        let now = Instant::now();
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.take(keys, now);
    }
}

/// Only `device_id` is read from the login body; the handler parses the whole body again.
#[derive(serde::Deserialize)]
struct DeviceField {
    device_id: Option<String>,
}

/// The axum middleware of the two login routes (see the module documentation).
pub(crate) async fn auth_throttle(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
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
    if let Some(p) = peer {
        keys.push(Key::Ip(client_key(p.ip())));
    }
    if let Some(d) = device {
        keys.push(Key::Device(d));
    }
    let path = parts.uri.path().to_owned();
    if let Err(retry_after) = state.throttle.admit(&keys) {
        tracing::warn!(
            device = %prefix(device.as_ref()),
            peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            route = %path,
            retry_after,
            "login throttled"
        );
        return too_many(retry_after);
    }
    let resp = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    let status = resp.status();
    if status.is_client_error() {
        state.throttle.failed(&keys);
        tracing::warn!(
            device = %prefix(device.as_ref()),
            peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            route = %path,
            reason = reason(status),
            "login failed"
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

fn reason(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "bad signature, or unknown, used or expired challenge",
        StatusCode::NOT_FOUND => "unknown device",
        StatusCode::FORBIDDEN => "revoked device",
        StatusCode::BAD_REQUEST => "malformed request",
        _ => "refused request",
    }
}

/// `429 too_many_requests` with `Retry-After: <secs>`.
fn too_many(retry_after: u64) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: "too_many_requests".to_owned(),
            message: format!("too many login attempts: retry in {retry_after} s"),
        },
    };
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_empties_then_refills() {
        let mut b = Buckets::new(3);
        let k = [Key::Ip(IpAddr::V4([10, 0, 0, 1].into()))];
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.wait(&k, t0), None);
            b.take(&k, t0);
        }
        // Empty: one token comes back after 20 s (3 a minute).
        assert_eq!(b.wait(&k, t0), Some(20));
        assert_eq!(b.wait(&k, t0 + Duration::from_secs(10)), Some(10));
        assert_eq!(b.wait(&k, t0 + Duration::from_secs(20)), None);
        // Another key is untouched.
        assert_eq!(
            b.wait(&[Key::Ip(IpAddr::V4([10, 0, 0, 2].into()))], t0),
            None
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut b = Buckets::new(1);
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 10) {
            b.take(&[Key::Ip(IpAddr::V4(i.into()))], t0);
        }
        assert!(b.map.len() <= MAX_KEYS);
    }
}
