//! The HTTP edge: routes, shared state and API authentication.

mod api;
mod error;
mod json;
pub mod server;
pub(crate) mod slack;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

pub use error::ApiError;

use crate::foreground::Foreground;
use crate::metrics::{self as metric, Metrics, SlackEndpoint};
use crate::service::Service;
use crate::slack::client::SlackApi;
use crate::socket_mode::SocketStatus;
use crate::supervisor::Supervisor;

/// Slack sends small payloads and the API takes small documents; anything bigger is refused.
const BODY_LIMIT: usize = 256 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub slack: Option<SlackState>,
    pub api_token: Option<Arc<str>>,
    /// When set, `/metrics` wants it as a bearer token; when not, `/metrics` is open.
    pub metrics_token: Option<Arc<str>>,
    pub metrics: Arc<Metrics>,
    pub deliveries_waiting: Arc<Notify>,
    /// Slack requests in hand whose signature checked out; the delivery worker yields to them.
    pub foreground: Arc<Foreground>,
    /// Keeps the background loops running; `/readyz` says when it gave up on them.
    pub supervisor: Arc<Supervisor>,
    /// Set with Socket Mode: whether it still listens (`/readyz` reads it).
    pub socket: Option<Arc<SocketStatus>>,
}

#[derive(Clone)]
pub struct SlackState {
    pub api: SlackApi,
    /// `None` when Slack is heard over Socket Mode only: the HTTP endpoints answer 503.
    pub signing_secret: Option<Arc<str>>,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/apps", get(api::list_apps))
        .route("/apps/{slug}", get(api::get_app).put(api::put_app))
        .route("/requests", get(api::list_requests).post(api::file_request))
        .route("/requests/{id}", get(api::get_request))
        .route("/requests/{id}/events", get(api::request_events))
        .route("/requests/{id}/thread", get(api::request_thread))
        .route("/requests/{id}/cancel", post(api::cancel_request))
        .route("/requests/{id}/release", post(api::release_request))
        .route("/requests/{id}/close", post(api::close_request))
        .route("/deliveries", get(api::list_deliveries))
        .route("/deliveries/{id}/retry", post(api::retry_delivery))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let slack = Router::new()
        .route("/events", post(slack::events))
        .route("/interactivity", post(slack::interactivity))
        .route("/commands", post(slack::commands))
        .route_layer(middleware::from_fn_with_state(state.clone(), time_ack));
    Router::new()
        .nest("/api/v1", api)
        .nest("/slack", slack)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(middleware::from_fn(refuse_nul_in_url))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Refuses a URL whose path or query decodes to a NUL, before any handler could look it up
/// (see `nul`).
async fn refuse_nul_in_url(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let query = uri.query().unwrap_or_default();
    if crate::nul::in_percent_encoded(uri.path().as_bytes())
        || crate::nul::in_percent_encoded(query.as_bytes())
    {
        return ApiError::BadRequest(crate::nul::REFUSAL.into()).into_response();
    }
    next.run(req).await
}

/// Times the answer to a Slack request (Slack's 3 s acknowledgement budget). `Instant`, not
/// the app's clock: this is the real time a user waits. (The request counts as in hand for
/// the worker only once its signature is checked: see `slack::verified_body`.)
async fn time_ack(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = SlackEndpoint::of_path(req.uri().path());
    let response = next.run(req).await;
    if let Some(endpoint) = endpoint {
        state.metrics.slack_ack(endpoint, started.elapsed());
    }
    response
}

/// Whether `headers` carry `Authorization: Bearer <expected>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Bearer authentication for `/api/v1`, compared in constant time.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = &state.api_token else {
        return ApiError::Unavailable(
            "the HTTP API is disabled: set ACCESSBOT_API_TOKEN to enable it".into(),
        )
        .into_response();
    };
    if bearer_matches(req.headers(), expected) {
        next.run(req).await
    } else {
        ApiError::Unauthorized("missing or wrong bearer token".into()).into_response()
    }
}

/// 200 when the bot can do its job; 503 when the database does not answer, when the
/// background loops keep panicking, or when Socket Mode stopped (`link_disabled`, a refused
/// token) and no signing secret lets Slack reach the bot over HTTP instead: the bot would
/// hear nothing from Slack. HTTP (the API, metrics) keeps serving in every case.
async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.supervisor.gave_up() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("shutting down: {reason}"),
        )
            .into_response();
    }
    let http_for_slack = state
        .slack
        .as_ref()
        .is_some_and(|slack| slack.signing_secret.is_some());
    let socket_stopped = state.socket.as_ref().and_then(|socket| socket.stopped());
    if let (Some(reason), false) = (socket_stopped, http_for_slack) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Socket Mode stopped ({reason}) and no SLACK_SIGNING_SECRET is set: Slack cannot reach the bot"),
        )
            .into_response();
    }
    match state.service.ping().await {
        Ok(()) => "ready".into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "database is not answering");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(expected) = &state.metrics_token {
        if !bearer_matches(&headers, expected) {
            return Err(ApiError::Unauthorized(
                "/metrics needs ACCESSBOT_METRICS_TOKEN as a bearer token".into(),
            ));
        }
    }
    let status = state
        .metrics
        .status
        .get(state.service.clock().as_ref(), || state.service.stats())
        .await?;
    // Read fresh, not from the cache: tests and the benchmark poll it to learn that every
    // Slack call was made, and it is one count on a partial index of the pending rows.
    let waiting = state.service.deliveries_waiting().await?;
    Ok((
        [(header::CONTENT_TYPE, metric::CONTENT_TYPE)],
        state.metrics.render(&status, waiting),
    )
        .into_response())
}
