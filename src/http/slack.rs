//! Slack's requests into the bot: verified at the edge, answered within Slack's three
//! seconds; anything slow (opening a modal, posting cards) happens after or elsewhere.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::json::read_body;
use super::AppState;
use crate::domain::{Actor, Command, Refusal, ValidationError};
use crate::service::ServiceError;
use crate::slack::ids::{action, callback, field};
use crate::slack::payload::{parse_interaction, ButtonClick, Interaction, Submission};
use crate::slack::signature;
use crate::slack::views;

/// Checks Slack's signature over the raw body and returns the body.
async fn verified_body(state: &AppState, req: Request) -> Result<axum::body::Bytes, ApiError> {
    let Some(slack) = &state.slack else {
        return Err(ApiError::Unavailable(
            "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET".into(),
        ));
    };
    let headers = req.headers().clone();
    let body = read_body(req, &()).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    signature::verify(
        &slack.signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        state.service.clock().now().timestamp(),
    )
    .map_err(|err| ApiError::Unauthorized(format!("invalid Slack request: {err}")))?;
    Ok(body)
}

/// `POST /slack/events`: the Events API, including the `url_verification` handshake.
pub async fn events(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let body = verified_body(&state, req).await?;
    let envelope: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("the event body is not JSON".into()))?;
    if envelope.get("type").and_then(Value::as_str) == Some("url_verification") {
        let challenge = envelope
            .get("challenge")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::BadRequest("url_verification without a challenge".into()))?;
        return Ok(Json(json!({ "challenge": challenge })).into_response());
    }
    Ok(().into_response())
}

/// `POST /slack/interactivity`: button clicks and modal submissions.
pub async fn interactivity(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let body = verified_body(&state, req).await?;
    let interaction =
        parse_interaction(&body).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    match interaction {
        Interaction::Button(click) => on_click(&state, click).await,
        Interaction::Submission(submission) => on_submission(&state, submission).await,
        Interaction::Ignored => Ok(().into_response()),
    }
}

/// `POST /slack/commands`: slash commands.
pub async fn commands(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let _body = verified_body(&state, req).await?;
    Ok(Json(json!({
        "response_type": "ephemeral",
        "text": "Request access with the HTTP API for now; `/access` in Slack is coming.",
    }))
    .into_response())
}

async fn on_click(state: &AppState, click: ButtonClick) -> Result<Response, ApiError> {
    let Some(request_id) = click.value.as_deref().and_then(|v| v.parse::<i64>().ok()) else {
        return Ok(().into_response());
    };
    let actor = Actor::User(click.user.clone());
    let command = match click.action_id.as_str() {
        action::APPROVE => Command::Approve,
        action::DENY => Command::Deny,
        action::CONFIRM_PROVISIONING => Command::ConfirmProvisioning,
        action::CONFIRM_REMOVAL => Command::ConfirmRemoval,
        action::CANCEL_REQUEST => Command::Cancel,
        action::EDIT => {
            let result = state.service.editable(request_id, &actor).await;
            let outcome = result.map(|(request, app)| views::edit_modal(&request, &app));
            return open_modal(state, &click, request_id, outcome).await;
        }
        action::SEND_FEEDBACK => {
            let result = state.service.feedback_allowed(request_id, &actor).await;
            let outcome = result.map(|request| views::feedback_modal(&request));
            return open_modal(state, &click, request_id, outcome).await;
        }
        _ => return Ok(().into_response()),
    };
    let result = state.service.act(request_id, &actor, command).await;
    explain_failure(state, &click, request_id, result.map(|_| ())).await
}

/// Opens a modal while the trigger id is fresh; Slack gets its answer at once.
async fn open_modal(
    state: &AppState,
    click: &ButtonClick,
    request_id: i64,
    view: Result<slack_morphism::prelude::SlackView, ServiceError>,
) -> Result<Response, ApiError> {
    let view = match view {
        Ok(view) => view,
        Err(err) => return explain_failure(state, click, request_id, Err(err)).await,
    };
    if let Some(slack) = &state.slack {
        let api = slack.api.clone();
        let trigger_id = click.trigger_id.clone();
        tokio::spawn(async move {
            // A failure is logged and counted by the client; the trigger cannot be retried.
            let _ = api.open_view(&trigger_id, view).await;
        });
    }
    Ok(().into_response())
}

/// Tells the person who clicked why nothing happened.
async fn explain_failure(
    state: &AppState,
    click: &ButtonClick,
    request_id: i64,
    result: Result<(), ServiceError>,
) -> Result<Response, ApiError> {
    let text = match result {
        Ok(()) => return Ok(().into_response()),
        Err(ServiceError::Refused(refusal)) => refusal.to_string(),
        Err(ServiceError::UnknownRequest(_)) => "That request no longer exists.".to_string(),
        Err(err) => return Err(ApiError::from(err)),
    };
    // A click in the Home tab has no conversation; the explanation goes by DM then.
    let channel = click.channel.clone().unwrap_or_else(|| click.user.clone());
    state
        .service
        .tell(Some(request_id), &channel, &click.user, &text)
        .await?;
    Ok(().into_response())
}

async fn on_submission(state: &AppState, submission: Submission) -> Result<Response, ApiError> {
    let Ok(request_id) = submission.private_metadata.parse::<i64>() else {
        return Ok(().into_response());
    };
    let actor = Actor::User(submission.user.clone());
    let values = &submission.values;
    let (result, error_field) = match submission.callback_id.as_str() {
        callback::EDIT => {
            let Some(permission) = values.selected(field::PERMISSION) else {
                return Ok(field_errors(&[(field::PERMISSION, "Choose a permission.")]));
            };
            let access_length = values
                .text(field::ACCESS_LENGTH)
                .unwrap_or_else(|| "unlimited".into());
            let groups = values.selected_many(field::GROUPS);
            let result = state
                .service
                .edit(request_id, &actor, &permission, groups, &access_length)
                .await;
            let error_field = match &result {
                Err(ServiceError::Invalid(ValidationError::BadInput(_))) => field::ACCESS_LENGTH,
                Err(ServiceError::Invalid(ValidationError::NotInCatalog(m)))
                    if m.contains("group") =>
                {
                    field::GROUPS
                }
                _ => field::PERMISSION,
            };
            (result.map(|_| ()), error_field)
        }
        callback::FEEDBACK => {
            let Some(text) = values.text(field::FEEDBACK) else {
                return Ok(field_errors(&[(
                    field::FEEDBACK,
                    "Write some feedback first.",
                )]));
            };
            let result = state
                .service
                .act(request_id, &actor, Command::SendFeedback(text))
                .await;
            (result.map(|_| ()), field::FEEDBACK)
        }
        _ => return Ok(().into_response()),
    };
    match result {
        Ok(()) | Err(ServiceError::Refused(Refusal::NothingChanged)) => Ok(().into_response()),
        Err(ServiceError::Invalid(invalid)) => {
            Ok(field_errors(&[(error_field, &invalid.to_string())]))
        }
        Err(ServiceError::Refused(refusal)) => {
            Ok(field_errors(&[(error_field, &refusal.to_string())]))
        }
        Err(ServiceError::UnknownRequest(_)) => Ok(field_errors(&[(
            error_field,
            "That request no longer exists.",
        )])),
        Err(err) => Err(err.into()),
    }
}

/// `response_action: errors`, shown under the named inputs of the open modal.
fn field_errors(errors: &[(&str, &str)]) -> Response {
    let errors: serde_json::Map<String, Value> = errors
        .iter()
        .map(|(field, message)| (field.to_string(), json!(message)))
        .collect();
    Json(json!({ "response_action": "errors", "errors": errors })).into_response()
}
