//! The HTTP edge: routes, shared state and API authentication.

mod api;
mod error;
mod json;
mod slack;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

pub use error::ApiError;

use crate::foreground::Foreground;
use crate::metrics::Metrics;
use crate::service::Service;
use crate::slack::client::SlackApi;
use crate::supervisor::Supervisor;

/// Slack sends small payloads and the API takes small documents; anything bigger is refused.
const BODY_LIMIT: usize = 256 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub slack: Option<SlackState>,
    pub api_token: Option<Arc<str>>,
    pub metrics: Arc<Metrics>,
    pub deliveries_waiting: Arc<Notify>,
    /// Slack requests in hand; the delivery worker yields to them.
    pub foreground: Arc<Foreground>,
    /// Keeps the background loops running; `/readyz` says when it gave up on them.
    pub supervisor: Arc<Supervisor>,
}

#[derive(Clone)]
pub struct SlackState {
    pub api: SlackApi,
    pub signing_secret: Arc<str>,
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
        .route("/deliveries", get(api::list_deliveries))
        .route("/deliveries/{id}/retry", post(api::retry_delivery))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let slack = Router::new()
        .route("/events", post(slack::events))
        .route("/interactivity", post(slack::interactivity))
        .route("/commands", post(slack::commands))
        .route_layer(middleware::from_fn_with_state(state.clone(), in_foreground));
    Router::new()
        .nest("/api/v1", api)
        .nest("/slack", slack)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn in_foreground(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let _handling = state.foreground.enter();
    next.run(req).await
}

/// Bearer authentication for `/api/v1`, compared in constant time.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = &state.api_token else {
        return ApiError::Unavailable(
            "the HTTP API is disabled: set ACCESSBOT_API_TOKEN to enable it".into(),
        )
        .into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        next.run(req).await
    } else {
        ApiError::Unauthorized("missing or wrong bearer token".into()).into_response()
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.supervisor.gave_up() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("shutting down: {reason}"),
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

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let stats = state.service.stats().await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&stats),
    )
        .into_response())
}
