//! The HTTP API of SPEC §4: the catalog, requests, their audit trail and the deliveries.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::ApiError;
use super::json::JsonBody;
use super::AppState;
use crate::domain::{AccessRequest, Actor, App, Command, Status};
use crate::service::{Filing, RequestInput, ServiceError};
use crate::store::RequestFilter;
use crate::time_format;

/// Largest page of `GET /api/v1/requests` and `GET /api/v1/deliveries`.
const MAX_PAGE: u32 = 200;
const DEFAULT_PAGE: u32 = 50;
/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;

#[derive(Deserialize)]
pub struct AppBody {
    name: String,
    admins: Vec<String>,
    #[serde(default)]
    approvers: Vec<String>,
    permissions: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    admin_channel: Option<String>,
}

pub async fn put_app(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<AppBody>,
) -> Result<impl IntoResponse, ApiError> {
    let app = App {
        slug,
        name: body.name,
        admins: body.admins,
        approvers: body.approvers,
        permissions: body.permissions,
        groups: body.groups,
        admin_channel: body.admin_channel.filter(|c| !c.is_empty()),
    };
    let created = state.service.put_app(&app).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(app)))
}

pub async fn list_apps(State(state): State<AppState>) -> Result<Json<Vec<App>>, ApiError> {
    Ok(Json(state.service.apps().await?))
}

pub async fn get_app(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(state.service.app(&slug).await?))
}

#[derive(Deserialize)]
pub struct RequestBody {
    app: String,
    target_user: String,
    requester: Option<String>,
    permission: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    comment: String,
    access_length: Option<String>,
}

pub async fn file_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RequestBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                    ))
                })?;
            Some(key.to_string())
        }
    };
    let input = RequestInput {
        app: body.app,
        target_user: body.target_user,
        requester: body.requester,
        permission: body.permission,
        groups: body.groups,
        comment: body.comment,
        access_length: body.access_length,
    };
    let filed = match state.service.file_request(input, key.clone()).await {
        Err(ServiceError::KeyUsedForAnotherBody) => {
            return Err(ApiError::Unprocessable(format!(
                "Idempotency-Key {:?} was used for a different request in the last 24 hours; \
                 send the same body to get that request, or use a new key",
                key.unwrap_or_default()
            )))
        }
        filed => filed?,
    };
    Ok(match filed {
        Filing::Created(request) => (StatusCode::CREATED, Json(RequestJson::from(&request))),
        Filing::Replayed(request) => (StatusCode::OK, Json(RequestJson::from(&request))),
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    app: Option<String>,
    user: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list_requests(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(text.parse::<Status>().map_err(|err| {
            ApiError::BadRequest(format!("{err}; use one of the statuses of SPEC §2"))
        })?),
    };
    let limit = page_limit(query.limit.as_deref())?;
    let before_id = cursor(query.cursor.as_deref())?;
    let filter = RequestFilter {
        status,
        app: query.app.filter(|a| !a.is_empty()),
        user: query.user.filter(|u| !u.is_empty()),
        before_id,
        limit: limit + 1,
    };
    let mut requests = state.service.requests(&filter).await?;
    let next_cursor = if requests.len() > limit as usize {
        requests.truncate(limit as usize);
        requests.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let requests: Vec<RequestJson> = requests.iter().map(RequestJson::from).collect();
    Ok(Json(
        json!({ "requests": requests, "next_cursor": next_cursor }),
    ))
}

/// The `limit` of a list: [`DEFAULT_PAGE`] when absent, else 1 to [`MAX_PAGE`].
fn page_limit(limit: Option<&str>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("limit must be 1-{MAX_PAGE}"))),
    }
}

/// The `cursor` of a list (an id this API gave as the next cursor); empty is none.
fn cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest("cursor is not one this API gave".into())),
    }
}

/// A request id from the path; anything else is a 404 like an unknown id.
fn request_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("there is no request {text:?}")))
}

pub async fn get_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RequestJson>, ApiError> {
    let request = state.service.request(request_id(&id)?).await?;
    Ok(Json(RequestJson::from(&request)))
}

pub async fn request_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = request_id(&id)?;
    let events = state.service.events(id).await?;
    Ok(Json(json!(events)))
}

pub async fn request_thread(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let thread = state.service.thread(request_id(&id)?).await?;
    Ok(Json(json!(thread)))
}

/// `POST /api/v1/requests/{id}/cancel`: withdraws a pending request (409 once decided).
pub async fn cancel_request(
    state: State<AppState>,
    id: Path<String>,
) -> Result<Json<RequestJson>, ApiError> {
    act_for_operators(state, id, Command::Cancel).await
}

/// `POST /api/v1/requests/{id}/release`: ends a provisioned grant early (409 otherwise).
pub async fn release_request(
    state: State<AppState>,
    id: Path<String>,
) -> Result<Json<RequestJson>, ApiError> {
    act_for_operators(state, id, Command::Release).await
}

/// `POST /api/v1/requests/{id}/close` `{"reason", "operator"}`: an operator closes a stuck
/// request (SPEC §8.1). Pending requests become `canceled`; granted ones `expired`, with
/// their removal unconfirmed. A final request answers 409.
pub async fn close_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<RequestJson>, ApiError> {
    let id = request_id(&id)?;
    let Value::Object(fields) = &body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object with \"reason\" and \"operator\"".into(),
        ));
    };
    let text = |name: &str, meant: &str| match fields.get(name) {
        None | Some(Value::Null) => {
            Err(ApiError::BadRequest(format!("{name} is required: {meant}")))
        }
        Some(Value::String(text)) => Ok(text.as_str()),
        Some(_) => Err(ApiError::BadRequest(format!("{name} must be a string"))),
    };
    let reason = text("reason", "say why the request is closed")?;
    let operator = text("operator", "name who closes the request")?;
    let (closed, from) = state.service.close(id, operator, reason).await?;
    state.metrics.request_closed(from);
    Ok(Json(RequestJson::from(&closed)))
}

async fn act_for_operators(
    State(state): State<AppState>,
    Path(id): Path<String>,
    command: Command,
) -> Result<Json<RequestJson>, ApiError> {
    let request = state
        .service
        .act(request_id(&id)?, &Actor::Api, command)
        .await?;
    Ok(Json(RequestJson::from(&request)))
}

#[derive(Deserialize)]
pub struct DeliveryQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/deliveries`: failed deliveries, oldest first, a page at a time. The body
/// stays the bare JSON array it always was, so callers that read it keep working; the next
/// page is named in headers instead (`Link: <…>; rel="next"` and `X-Next-Cursor`), absent
/// on the last page.
pub async fn list_deliveries(
    State(state): State<AppState>,
    Query(query): Query<DeliveryQuery>,
) -> Result<impl IntoResponse, ApiError> {
    match query.status.as_deref() {
        None | Some("failed") => {}
        Some(_) => {
            return Err(ApiError::BadRequest(
                "only status=failed can be listed".into(),
            ))
        }
    }
    let limit = page_limit(query.limit.as_deref())?;
    let after_id = cursor(query.cursor.as_deref())?;
    let mut failed = state.service.failed_deliveries(after_id, limit + 1).await?;
    let mut headers = HeaderMap::new();
    if failed.len() > limit as usize {
        failed.truncate(limit as usize);
        if let Some(last) = failed.last() {
            let next = last.id.to_string();
            let link = format!(
                "</api/v1/deliveries?status=failed&limit={limit}&cursor={next}>; rel=\"next\""
            );
            // Digits and ASCII punctuation only: always a valid header value.
            if let (Ok(link), Ok(next)) = (link.parse(), next.parse()) {
                headers.insert(header::LINK, link);
                headers.insert("x-next-cursor", next);
            }
        }
    }
    Ok((headers, Json(json!(failed))))
}

pub async fn retry_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::NotFound(format!("there is no failed delivery {id:?}"));
    let delivery_id = id.parse::<i64>().map_err(|_| not_found())?;
    if !state.service.retry_delivery(delivery_id).await? {
        return Err(not_found());
    }
    Ok(Json(json!({ "id": delivery_id, "status": "pending" })))
}

/// A request as the API shows it (SPEC §4).
#[derive(Serialize)]
pub struct RequestJson {
    id: i64,
    app: String,
    app_name: String,
    target_user: String,
    requester: String,
    permission: String,
    groups: Vec<String>,
    comment: String,
    access_length: String,
    status: Status,
    approvers: Vec<String>,
    app_admins: Vec<String>,
    admin_channel: Option<String>,
    #[serde(with = "time_format")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "time_format")]
    updated_at: chrono::DateTime<chrono::Utc>,
    approved_by: Option<String>,
    #[serde(with = "time_format::option")]
    provisioned_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(with = "time_format::option")]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    decided_by: Option<String>,
    denial_feedback: Option<String>,
    /// The operator who closed the request through the API, as they named themselves.
    closed_by: Option<String>,
    close_reason: Option<String>,
}

impl From<&AccessRequest> for RequestJson {
    fn from(r: &AccessRequest) -> Self {
        RequestJson {
            id: r.id,
            app: r.app.clone(),
            app_name: r.app_name.clone(),
            target_user: r.target_user.clone(),
            requester: r.requester.clone(),
            permission: r.permission.clone(),
            groups: r.groups.clone(),
            comment: r.comment.clone(),
            access_length: r.access_length.to_string(),
            status: r.status,
            approvers: r.approvers.clone(),
            app_admins: r.app_admins.clone(),
            admin_channel: r.admin_channel.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            approved_by: r.approved_by.clone(),
            provisioned_at: r.provisioned_at,
            expires_at: r.expires_at,
            decided_by: r.decided_by.clone(),
            denial_feedback: r.denial_feedback.clone(),
            closed_by: r.closed_by.clone(),
            close_reason: r.close_reason.clone(),
        }
    }
}
