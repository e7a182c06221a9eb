//! `GET /metrics` (issue 11 §4): Prometheus text exposition format (version 0.0.4), with the
//! `prometheus` crate's types and text encoder (no protobuf, no push, no listener of its own:
//! rendered from the API's router).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `serment_http_requests_total` | counter | `route` (the matched route template, `unmatched` otherwise: never the raw path, so no id reaches a label), `method`, `status` |
//! | `serment_http_request_duration_seconds` | histogram (seconds until the response head) | `route`, `method` |
//! | `serment_commit_batch_jobs` | histogram (commits per batch transaction) | |
//! | `serment_log_entries` | gauge (entries in the log) | |
//! | `serment_db_pool_connections` | gauge (connections of this instance's pools) | `state`: `in_use`, `idle` |
//! | `serment_db_pool_max_connections` | gauge | |
//! | `serment_blob_bytes` | gauge (bytes of every recorded blob, inline or in the blob store) | |
//! | `serment_blob_upload_bytes_total` | counter (bytes this instance stored through `POST /v1/blobs`) | |
//! | `serment_backup_up_to_date_timestamp_seconds` | gauge (Unix time the `serve --backup-url` loop of this process last found its target up to date, or started; 0: no backup loop) | |
//! | `serment_backup_lag_seconds` | gauge (seconds since then, computed at the scrape: it grows even when the loop is stuck; 0: no backup loop) | |
//! | `serment_backup_consecutive_failures` | gauge (increments failed in a row; 0 after one succeeds) | |
//!
//! Counters and histograms count this process (every server it runs); gauges are read from the
//! shared database at each scrape. Metrics reveal traffic patterns: the route answers 404 unless
//! `metrics_token` is set, then 401 unless the scraper sends `Authorization: Bearer
//! <metrics_token>`. The registry is the server's own, never `prometheus`'s default one.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::http::AppState;
use crate::http::error::ApiError;

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// The metrics of this process, in a registry of their own.
pub(crate) struct Telemetry {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Commits per batch transaction.
    pub(crate) batch_jobs: Histogram,
    /// Bytes stored through `POST /v1/blobs`.
    pub(crate) upload_bytes: IntCounter,
    log_entries: IntGauge,
    blob_bytes: IntGauge,
    pool: IntGaugeVec,
    pool_max: IntGauge,
    backup_up_to_date: IntGauge,
    backup_lag: IntGauge,
    backup_failures: IntGauge,
}

impl Telemetry {
    fn new() -> prometheus::Result<Telemetry> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "serment_http_requests_total",
                "HTTP requests by route template, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "serment_http_request_duration_seconds",
                "Seconds from the request to the response head, by route template and method.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let batch_jobs = Histogram::with_opts(
            HistogramOpts::new(
                "serment_commit_batch_jobs",
                "Document commits per batch transaction.",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
        )?;
        let upload_bytes = IntCounter::new(
            "serment_blob_upload_bytes_total",
            "Bytes of new blobs this process stored through POST /v1/blobs.",
        )?;
        let log_entries = IntGauge::new("serment_log_entries", "Entries in the transparency log.")?;
        let blob_bytes = IntGauge::new(
            "serment_blob_bytes",
            "Bytes of every recorded blob, inline or in the blob store.",
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "serment_db_pool_connections",
                "Database connections of this instance's pools, in use or idle.",
            ),
            &["state"],
        )?;
        let pool_max = IntGauge::new(
            "serment_db_pool_max_connections",
            "The most database connections this instance's pools may open.",
        )?;
        // REVIEW5 U6 (3): a stalled backup must be seen by the site's alerting, not only in a
        // log line at every tick.
        let backup_up_to_date = IntGauge::new(
            "serment_backup_up_to_date_timestamp_seconds",
            "Unix time the backup loop of this process last found its target up to date (or \
             started); 0: no backup loop.",
        )?;
        let backup_lag = IntGauge::new(
            "serment_backup_lag_seconds",
            "Seconds since the backup loop last found its target up to date (at the scrape); 0: \
             no backup loop.",
        )?;
        let backup_failures = IntGauge::new(
            "serment_backup_consecutive_failures",
            "Backup increments failed in a row.",
        )?;
        registry.register(Box::new(backup_up_to_date.clone()))?;
        registry.register(Box::new(backup_lag.clone()))?;
        registry.register(Box::new(backup_failures.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(batch_jobs.clone()))?;
        registry.register(Box::new(upload_bytes.clone()))?;
        registry.register(Box::new(log_entries.clone()))?;
        registry.register(Box::new(blob_bytes.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        Ok(Telemetry {
            registry,
            requests,
            latency,
            batch_jobs,
            upload_bytes,
            log_entries,
            blob_bytes,
            pool,
            pool_max,
            backup_up_to_date,
            backup_lag,
            backup_failures,
        })
    }
}

/// The backup loop found its target up to date at `now` (or started).
pub(crate) fn backup_up_to_date(now: u64) {
    if let Some(t) = get() {
        t.backup_up_to_date
            .set(i64::try_from(now).unwrap_or(i64::MAX));
        t.backup_failures.set(0);
    }
}

/// An increment of the backup loop failed.
pub(crate) fn backup_failed() {
    if let Some(t) = get() {
        t.backup_failures.inc();
    }
}

static TELEMETRY: OnceLock<Option<Telemetry>> = OnceLock::new();

/// The process's metrics, created on first use; `None` if they could not be (logged once: the
/// server runs without metrics rather than not at all).
pub(crate) fn get() -> Option<&'static Telemetry> {
    TELEMETRY
        .get_or_init(|| match Telemetry::new() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "metrics not available: /metrics serves nothing");
                None
            }
        })
        .as_ref()
}

/// A bounded method label: the standard methods by name, anything else `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The middleware that counts every request by route template, method and status, and records
/// its latency (until the response head).
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    if let Some(t) = get() {
        let status = resp.status().as_u16().to_string();
        t.requests
            .with_label_values(&[route.as_str(), method, status.as_str()])
            .inc();
        t.latency
            .with_label_values(&[route.as_str(), method])
            .observe(start.elapsed().as_secs_f64());
    }
    resp
}

/// `GET /metrics`: 404 without `metrics_token`, 401 without the right bearer, else the
/// exposition (`text/plain; version=0.0.4`).
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.config.metrics_token else {
        return ApiError::NotFound("no such route").into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    if !presented.is_some_and(|t| token.matches(t)) {
        return ApiError::Unauthorized("/metrics needs Authorization: Bearer <metrics_token>")
            .into_response();
    }
    let Some(t) = get() else {
        return ApiError::internal("metrics", &"not available").into_response();
    };
    let meta = state.store.meta();
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    match meta.log_size().await {
        Ok(n) => t.log_entries.set(gauge(n)),
        Err(e) => tracing::warn!(error = %e, "metrics: log size not read"),
    }
    match meta.blob_bytes().await {
        Ok(n) => t.blob_bytes.set(gauge(n)),
        Err(e) => tracing::warn!(error = %e, "metrics: blob bytes not read"),
    }
    let pool = meta.pool_use();
    t.pool
        .with_label_values(&["in_use"])
        .set(i64::from(pool.size.saturating_sub(pool.idle)));
    t.pool
        .with_label_values(&["idle"])
        .set(i64::from(pool.idle));
    t.pool_max.set(i64::from(pool.max));
    let up_to_date = t.backup_up_to_date.get();
    t.backup_lag.set(if up_to_date > 0 {
        gauge(crate::store::now()).saturating_sub(up_to_date).max(0)
    } else {
        0
    });
    match TextEncoder::new().encode_to_string(&t.registry.gather()) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal("metrics encoding", &e).into_response(),
    }
}
