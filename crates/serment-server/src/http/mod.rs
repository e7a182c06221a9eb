//! The HTTP API (PROTOCOL.md §8): routes, shared state, error mapping and the OpenAPI document.
//!
//! | route | handler |
//! |---|---|
//! | `GET /healthz` | [`healthz`] |
//! | `GET /healthz/backup` | [`healthz_backup`]: 503 while the backup loop lags (REVIEW5 U6) |
//! | `GET /openapi.json` | [`openapi_json`] |
//! | `POST /v1/devices` | [`directory::register_device`] |
//! | `GET /v1/directory/{handle}` | [`directory::directory`] |
//! | `GET /v1/devices/{device_id}` | [`directory::device`]: which handle a device belongs to |
//! | `POST /v1/auth/challenge` | [`directory::challenge`] |
//! | `POST /v1/auth/token` | [`directory::token`] |
//! | `POST /v1/blobs` | [`blobs::upload`] |
//! | `POST /v1/documents` | [`documents::commit`] |
//! | `GET /v1/documents` | [`documents::list`] |
//! | `GET /v1/documents/{doc_id}/versions/{v}` | [`documents::get_version`] |
//! | `GET /v1/documents/{doc_id}/versions/{v}/blob` | [`blobs::download`] |
//! | `POST /v1/documents/{doc_id}/versions/{v}/wraps` | [`documents::add_wraps`] |
//! | `GET /v1/documents/{doc_id}/accesses` | [`documents::accesses`] |
//! | `POST /v1/documents/{doc_id}/erase` | [`erasure::erase`]: the author's tombstone (§11.3.2) |
//! | `POST /v1/pairing`, `GET /v1/pairing/{slot}`, `POST …/join`, `POST …/finish` | [`pairing`]: the device-pairing relay (§4.1) |
//! | `POST /v1/provisional`, `GET /v1/provisional`, `POST /v1/provisional/code`, `POST /v1/provisional/open`, `POST /v1/provisional/{id}/claim`, `GET /v1/provisional/{id}/wraps`, `POST /v1/documents/{doc_id}/versions/{v}/provisional-wraps`, `GET /v1/log/provisional/{id}` | [`provisional`]: recipients who have not registered yet (§15) |
//! | `GET /`, `/assets/{app.js,style.css,icon.svg}` | [`web`]: the patient's page |
//! | `GET /metrics` | [`crate::telemetry::metrics`]: Prometheus metrics, behind `metrics_token` |
//!
//! JSON routes sit behind `tower_http`'s `RequestBodyLimitLayer` (`max_json_bytes`); the blob
//! upload enforces `max_blob_bytes` itself while streaming.

mod blobs;
mod directory;
mod documents;
mod erasure;
pub(crate) mod error;
mod extract;
pub(crate) use extract::RecordCache;
mod log;
mod pairing;
mod provisional;
mod recovery;
pub(crate) mod replay;
mod social;
mod teams;
pub(crate) mod throttle;
mod types;
pub(crate) mod web;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::config::Config;
use crate::store::Store;
use error::{ApiError, ErrorBody, ErrorDetail};
use types::{BackupHealth, HealthResponse};

/// Shared state of every handler (cheap to clone; no global statics).
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The database and blob directory.
    pub(crate) store: Store,
    /// The validated settings.
    pub(crate) config: Arc<Config>,
    /// The OpenAPI document, rendered once.
    pub(crate) openapi: Bytes,
    /// Device records whose signature was already checked (every request's bearer lookup).
    pub(crate) records: Arc<RecordCache>,
    /// Login throttle per address and per device (shared by every router of the server).
    pub(crate) throttle: Arc<throttle::Throttle>,
    /// The state of the server's backup loop (REVIEW5 U6).
    pub(crate) backup: Arc<crate::backup::Health>,
}

/// The OpenAPI 3.1 description of the API.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Serment API", description = "End-to-end encrypted health-document vault (PROTOCOL.md §8). The server sees only sealed blobs, key wraps and signed device records."),
    paths(
        healthz, healthz_backup,
        directory::register_device, directory::directory, directory::device, directory::challenge,
        directory::token,
        blobs::upload, blobs::download,
        documents::commit, documents::list, documents::get_version, documents::add_wraps,
        documents::accesses,
        log::key, log::checkpoint, log::loss_statements, log::consistency, log::proof, log::entries, log::identity,
        log::document, log::bundles, log::cosign, log::revoke, log::rotate, log::remove,
        erasure::erase,
        teams::post_change, teams::team_log, teams::keys, teams::hand_over_keys, teams::list,
        teams::add_team_wrap,
        pairing::open, pairing::show, pairing::join, pairing::finish,
        provisional::create, provisional::list, provisional::send_code, provisional::open,
        provisional::claim, provisional::wraps, provisional::add_wraps, provisional::history,
        recovery::put_escrow, recovery::get_escrow, recovery::post_recovery,
        social::put_contacts, social::shares, social::post_request, social::post_approval,
        social::post_veto, social::fetch_request, social::history,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "directory", description = "Device records and handles (§8.1)"),
        (name = "auth", description = "Challenge-response login (§8.2)"),
        (name = "documents", description = "Sealed blobs, versions, wraps and accesses (§8.3)"),
        (name = "log", description = "Transparency log: checkpoints, proofs, histories, witnesses (§11)"),
        (name = "teams", description = "Care teams: signed, logged membership and epoch keys (§12)"),
        (name = "provisional", description = "Recipients who have not registered yet: escrow, one-time codes, claims (§15)"),
        (name = "recovery", description = "Social recovery, k-of-n: contacts, requests, approvals, vetoes (§4.3)"),
    )
)]
pub(crate) struct ApiDoc;

/// Adds the `bearer` security scheme (§8.2).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Liveness probe, with the size limits clients check and the backup loop's state: `status`
/// is `degraded` while the backup lags (still 200: a load balancer must not take the service
/// down over a backup problem; `GET /healthz/backup` answers 503 then).
#[utoipa::path(get, path = "/healthz", tag = "directory", responses((status = 200, body = HealthResponse)))]
pub(crate) async fn healthz(State(state): State<AppState>) -> axum::Json<HealthResponse> {
    let backup = state.backup.report(crate::store::now());
    let lagging = backup.as_ref().is_some_and(|b| b.state == "lagging");
    axum::Json(HealthResponse {
        status: if lagging { "degraded" } else { "ok" }.to_owned(),
        max_blob_bytes: state.config.max_blob_bytes,
        max_json_bytes: state.config.max_json_bytes as u64,
        backup,
    })
}

/// The backup loop's state for monitoring (REVIEW5 U6): 200 while it is up to date, 503 when
/// it lags past its limit or this process runs no backup loop (`state` says which).
#[utoipa::path(get, path = "/healthz/backup", tag = "directory", responses(
    (status = 200, body = BackupHealth, description = "the backup loop is up to date"),
    (status = 503, body = BackupHealth, description = "it lags (`lagging`), or there is none (`off`)")))]
pub(crate) async fn healthz_backup(State(state): State<AppState>) -> Response {
    match state.backup.report(crate::store::now()) {
        Some(b) if b.state == "ok" => axum::Json(b).into_response(),
        Some(b) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(b)).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(BackupHealth {
                state: "off".to_owned(),
                lag_seconds: 0,
                max_lag_seconds: 0,
                consecutive_failures: 0,
            }),
        )
            .into_response(),
    }
}

/// The OpenAPI 3.1 document.
pub(crate) async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi.clone(),
    )
        .into_response()
}

/// Unknown routes.
async fn fallback() -> ApiError {
    ApiError::NotFound("no such route")
}

/// A known route with another method.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Rewrites the plain-text 413 of `RequestBodyLimitLayer` (sent when `Content-Length` is over the
/// limit, before any extractor runs) into the API's JSON error.
async fn json_413(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::PayloadTooLarge("the JSON body is over the limit".into()).into_response();
    }
    response
}

/// Renders the OpenAPI document.
pub(crate) fn openapi_document() -> Result<Bytes, serde_json::Error> {
    ApiDoc::openapi().to_json().map(Bytes::from)
}

/// Builds the router over `state`.
pub(crate) fn router(state: AppState) -> Router {
    let max_json = state.config.max_json_bytes;
    let json_routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/healthz/backup", get(healthz_backup))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/devices", post(directory::register_device))
        .route("/v1/devices/{device_id}", get(directory::device))
        .route("/v1/directory/{handle}", get(directory::directory))
        .route(
            "/v1/auth/challenge",
            post(directory::challenge).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::auth_throttle,
            )),
        )
        .route(
            "/v1/auth/token",
            post(directory::token).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::auth_throttle,
            )),
        )
        .route(
            "/v1/documents",
            post(documents::commit).get(documents::list),
        )
        .route(
            "/v1/documents/{doc_id}/versions/{v}",
            get(documents::get_version),
        )
        .route(
            "/v1/documents/{doc_id}/versions/{v}/blob",
            get(blobs::download),
        )
        .route(
            "/v1/documents/{doc_id}/versions/{v}/wraps",
            post(documents::add_wraps),
        )
        .route("/v1/documents/{doc_id}/accesses", get(documents::accesses))
        .route("/v1/documents/{doc_id}/log", get(log::document))
        .route(
            "/v1/documents/{doc_id}/versions/{v}/removals",
            post(log::remove),
        )
        .route("/v1/documents/{doc_id}/erase", post(erasure::erase))
        .route("/v1/log/key", get(log::key))
        .route("/v1/log/checkpoint", get(log::checkpoint))
        .route("/v1/log/loss-statements", get(log::loss_statements))
        .route("/v1/log/consistency", get(log::consistency))
        .route("/v1/log/proof", get(log::proof))
        .route("/v1/log/entries", get(log::entries))
        .route("/v1/log/identity/{handle}", get(log::identity))
        .route("/v1/log/bundles", get(log::bundles))
        .route("/v1/log/cosignatures", post(log::cosign))
        .route("/v1/log/revocations", post(log::revoke))
        .route("/v1/log/rotations", post(log::rotate))
        .route("/v1/log/team/{name}", get(teams::team_log))
        .route("/v1/teams", get(teams::list))
        .route("/v1/teams/{name}/changes", post(teams::post_change))
        .route(
            "/v1/teams/{name}/keys",
            get(teams::keys).post(teams::hand_over_keys),
        )
        .route(
            "/v1/documents/{doc_id}/versions/{v}/team-wraps",
            post(teams::add_team_wrap),
        )
        .route("/metrics", get(crate::telemetry::metrics))
        // Device pairing (§4.1): a join (the one guess at a code a relay attempt gets) is throttled
        // per address like the login routes, every refusal counting as a failure.
        .route("/v1/pairing", post(pairing::open))
        // Asking for a slot: every unknown one (404) counts as a failure of the address (F3).
        .route(
            "/v1/pairing/{slot}",
            get(pairing::show).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::failure_throttle,
            )),
        )
        .route(
            "/v1/pairing/{slot}/join",
            post(pairing::join).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::auth_throttle,
            )),
        )
        .route("/v1/pairing/{slot}/finish", post(pairing::finish))
        // Provisional recipients (§15): asking for and proving a one-time code are throttled per
        // address like the login routes (every refusal a failure), and per recipient inside.
        .route(
            "/v1/provisional",
            post(provisional::create).get(provisional::list),
        )
        .route(
            "/v1/provisional/code",
            post(provisional::send_code).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::auth_throttle,
            )),
        )
        .route(
            "/v1/provisional/open",
            post(provisional::open).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::auth_throttle,
            )),
        )
        .route("/v1/provisional/{id}/claim", post(provisional::claim))
        .route("/v1/provisional/{id}/wraps", get(provisional::wraps))
        .route(
            "/v1/documents/{doc_id}/versions/{v}/provisional-wraps",
            post(provisional::add_wraps),
        )
        .route("/v1/log/provisional/{id}", get(provisional::history))
        // Recovery (PROTOCOL.md §4.2): every escrow fetch takes a token of the address's login
        // budget, a 404 a failure token too.
        .route("/v1/recovery/escrow", post(recovery::put_escrow))
        .route(
            "/v1/recovery/escrow/{handle}",
            get(recovery::get_escrow).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::auth_throttle,
            )),
        )
        .route("/v1/log/recoveries", post(recovery::post_recovery))
        // Social recovery (PROTOCOL.md §4.3): the unauthenticated routes of the new machine
        // take a token of the address's login budget, as the escrow fetch does.
        .route("/v1/recovery/contacts", post(social::put_contacts))
        .route("/v1/recovery/shares/{handle}", get(social::shares))
        .route(
            "/v1/recovery/requests",
            post(social::post_request).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::auth_throttle,
            )),
        )
        .route(
            "/v1/recovery/requests/{id}",
            post(social::fetch_request).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::auth_throttle,
            )),
        )
        .route("/v1/recovery/approvals", post(social::post_approval))
        .route("/v1/recovery/vetoes", post(social::post_veto))
        .route("/v1/log/social/{handle}", get(social::history))
        // Inside the body limit: the digest check buffers at most `max_json_bytes`.
        .layer(axum::middleware::from_fn(extract::content_digest))
        // The tower-http limit is the one in force; axum's own 2 MB default would cap it below a
        // larger configured `max_json_bytes`.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(max_json))
        .layer(axum::middleware::map_response(json_413));
    let blob_routes = Router::new().route("/v1/blobs", post(blobs::upload));
    json_routes
        .merge(blob_routes)
        .merge(web::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), durable))
        // A body that stalls longer than this fails its request (issue 10 §3).
        .layer(RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(state.config.body_idle_timeout_secs),
        ))
        .layer(TraceLayer::new_for_http())
        // Outermost: counts every answer, the limit and timeout layers' included.
        .layer(axum::middleware::from_fn(crate::telemetry::track))
        .with_state(state)
}

/// Group commit (store `group_sync`): no response leaves before the database writes its request
/// made are on disk. One WAL fsync serves every request waiting at that moment.
async fn durable(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let resp = next.run(req).await;
    match state.store.meta().durable().await {
        Ok(()) => resp,
        Err(e) => {
            axum::response::IntoResponse::into_response(ApiError::internal("group commit", &e))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn openapi_lists_every_route() {
        let doc = openapi_document().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = v["paths"].as_object().unwrap();
        for p in [
            "/healthz",
            "/healthz/backup",
            "/v1/devices",
            "/v1/directory/{handle}",
            "/v1/auth/challenge",
            "/v1/auth/token",
            "/v1/blobs",
            "/v1/documents",
            "/v1/documents/{doc_id}/versions/{v}",
            "/v1/documents/{doc_id}/versions/{v}/blob",
            "/v1/documents/{doc_id}/versions/{v}/wraps",
            "/v1/documents/{doc_id}/accesses",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        assert!(v["components"]["securitySchemes"]["bearer"].is_object());
    }
}
