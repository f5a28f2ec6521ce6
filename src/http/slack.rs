//! Slack's requests into the bot: verified at the edge, answered within Slack's three
//! seconds; anything slow (opening a modal, posting cards) happens after or elsewhere.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::json::read_body;
use super::AppState;
use serde::Deserialize;
use slack_morphism::prelude::SlackView;

use crate::domain::{Action, Actor, Click, Command, Field, Refusal, ValidationError};
use crate::foreground::Handling;
use crate::service::{RelayOutcome, RequestInput, ServiceError};
use crate::slack::client::{CallError, SlackApi};
use crate::slack::events::{parse_event, SlackEvent};
use crate::slack::ids::{callback, field};
use crate::slack::payload::{parse_interaction, ButtonClick, Interaction, Submission};
use crate::slack::{blocks, signature, views};

/// What a handler answers Slack: `None` is an empty 200 (over HTTP) or a bare ack (over
/// Socket Mode); `Some` is a JSON body (HTTP) or the ack's `payload` (Socket Mode).
pub(crate) type Reply = Option<Value>;

/// Checks Slack's signature over the raw body and returns the body, with the request marked
/// as in hand until the guard is dropped: the delivery worker yields to Slack's requests, but
/// only to signed ones, so that anyone's unsigned or slow requests cannot slow it down.
async fn verified_body(
    state: &AppState,
    req: Request,
) -> Result<(axum::body::Bytes, Handling), ApiError> {
    let Some(slack) = &state.slack else {
        return Err(ApiError::Unavailable(
            "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET".into(),
        ));
    };
    let Some(signing_secret) = &slack.signing_secret else {
        return Err(ApiError::Unavailable(
            "Slack is heard over Socket Mode: set SLACK_SIGNING_SECRET to accept its HTTP \
             requests too"
                .into(),
        ));
    };
    let headers = req.headers().clone();
    let body = read_body(req, &()).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    signature::verify(
        signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        state.service.clock().now().timestamp(),
    )
    .map_err(|err| ApiError::Unauthorized(format!("invalid Slack request: {err}")))?;
    Ok((body, state.foreground.enter()))
}

/// A handler's reply as the HTTP answer: an empty 200, or the JSON body.
fn respond(reply: Reply) -> Response {
    match reply {
        Some(body) => Json(body).into_response(),
        None => ().into_response(),
    }
}

/// `POST /slack/events`: the Events API, including the `url_verification` handshake.
pub async fn events(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (body, _in_hand) = verified_body(&state, req).await?;
    let event = parse_event(&body).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    on_event(&state, event).await.map(respond)
}

/// An event from Slack, over HTTP or Socket Mode. Each event is handled once: a retried
/// delivery (`X-Slack-Retry-Num`, or an envelope's `retry_attempt`) of an event already seen
/// is acknowledged and dropped (Home tab openings by their event id; thread replies are kept
/// by their own message ts, so their relay is once-only even without the event id; edits
/// and deletions apply once by nature: the second finds nothing left to change).
pub(crate) async fn on_event(state: &AppState, event: SlackEvent) -> Result<Reply, ApiError> {
    match event {
        SlackEvent::UrlVerification { challenge } => {
            return Ok(Some(json!({ "challenge": challenge })))
        }
        SlackEvent::ThreadReply {
            channel,
            thread_ts,
            ts,
            user,
            text,
        } => {
            let relayed = state
                .service
                .relay_thread_reply(&channel, &thread_ts, &ts, &user, &text)
                .await?;
            if let RelayOutcome::Refused {
                request_id,
                why,
                tell: true,
            } = relayed
            {
                let note = blocks::relay_refusal(&why);
                let thread = Some(thread_ts.as_str());
                state
                    .service
                    .tell_in(Some(request_id), &channel, thread, &user, &note)
                    .await?;
            }
        }
        SlackEvent::MessageEdited {
            channel,
            ts,
            user,
            text,
        } => {
            state
                .service
                .edit_thread_reply(&channel, &ts, &user, &text)
                .await?;
        }
        SlackEvent::MessageDeleted { channel, ts } => {
            state.service.delete_thread_reply(&channel, &ts).await?;
        }
        SlackEvent::HomeOpened { event_id, user } => {
            if state.service.first_time(&event_id).await? {
                state.service.home_opened(&user).await?;
            }
        }
        SlackEvent::Ignored => {}
    }
    Ok(None)
}

/// `POST /slack/interactivity`: button clicks and modal submissions.
pub async fn interactivity(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (body, _in_hand) = verified_body(&state, req).await?;
    let interaction =
        parse_interaction(&body).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    on_interaction(&state, interaction).await.map(respond)
}

/// A click or a submitted modal, over HTTP or Socket Mode; a submission's reply carries its
/// `response_action`.
pub(crate) async fn on_interaction(
    state: &AppState,
    interaction: Interaction,
) -> Result<Reply, ApiError> {
    match interaction {
        Interaction::Button(click) => on_click(state, click).await,
        Interaction::Submission(submission) => on_submission(state, submission).await,
        Interaction::Ignored => Ok(None),
    }
}

/// The fields of a slash command the bot uses: a form over HTTP, a JSON object over
/// Socket Mode.
#[derive(Debug, Deserialize)]
pub(crate) struct SlashCommand {
    user_id: String,
    trigger_id: String,
    #[serde(default)]
    text: String,
}

/// `POST /slack/commands`: `/access` opens the request modal; `/access list` and
/// `/access help` answer privately.
pub async fn commands(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (body, _in_hand) = verified_body(&state, req).await?;
    let command: SlashCommand = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ApiError::BadRequest("not a slash command form".into()))?;
    on_command(&state, command).await.map(respond)
}

/// A slash command, over HTTP or Socket Mode; the reply is the private answer, if any.
pub(crate) async fn on_command(state: &AppState, command: SlashCommand) -> Result<Reply, ApiError> {
    if [&command.user_id, &command.trigger_id, &command.text]
        .iter()
        .any(|text| text.contains('\0'))
    {
        return Err(ApiError::BadRequest(crate::nul::REFUSAL.into()));
    }
    let private = |text: String| Some(json!({ "response_type": "ephemeral", "text": text }));
    match command.text.trim().to_lowercase().as_str() {
        "help" => Ok(private(blocks::help_text())),
        "list" => {
            let open = state.service.open_requests_of(&command.user_id).await?;
            Ok(private(blocks::open_requests_text(&open)))
        }
        "" | "request" => {
            let apps = state.service.apps().await?;
            let view = views::request_modal(&apps, None, &command.user_id);
            spawn_view_call(state, move |api| async move {
                api.open_view(&command.trigger_id, view).await
            });
            Ok(None)
        }
        _ => Ok(private(blocks::help_text())),
    }
}

/// Makes a views.* call after Slack got its answer (trigger ids stay fresh for 3 s);
/// failures are logged and counted by the client.
fn spawn_view_call<F, Fut>(state: &AppState, call: F)
where
    F: FnOnce(SlackApi) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), CallError>> + Send,
{
    if let Some(slack) = &state.slack {
        let api = slack.api.clone();
        tokio::spawn(async move {
            let _ = call(api).await;
        });
    }
}

async fn on_click(state: &AppState, click: ButtonClick) -> Result<Reply, ApiError> {
    if click.action_id == field::APP {
        return on_app_chosen(state, &click).await;
    }
    let Some(request_id) = click.value.as_deref().and_then(|v| v.parse::<i64>().ok()) else {
        return Ok(None);
    };
    let actor = Actor::User(click.user.clone());
    let Some(on_click) = Action::from_action_id(&click.action_id).and_then(Action::on_click) else {
        return Ok(None);
    };
    let command = match on_click {
        Click::Run(command) => command,
        Click::AskForEdit => {
            let result = state.service.editable(request_id, &actor).await;
            let outcome = result.map(|(request, app)| views::edit_modal(&request, &app));
            return open_modal(state, &click, request_id, outcome).await;
        }
        Click::AskForFeedback => {
            let result = state.service.feedback_allowed(request_id, &actor).await;
            let outcome = result.map(|request| views::feedback_modal(&request));
            return open_modal(state, &click, request_id, outcome).await;
        }
    };
    let key = format!("click:{}:{}", click.user, click.click_id);
    let result = state
        .service
        .act_once(request_id, &actor, command, Some(&key))
        .await;
    match result {
        // A double click: the first click already did what this one asks.
        Err(ServiceError::Refused(Refusal::AlreadyDecided { by, .. })) if by == click.user => {
            Ok(None)
        }
        other => explain_failure(state, &click, request_id, other.map(|_| ())).await,
    }
}

/// Opens a modal while the trigger id is fresh; Slack gets its answer at once.
async fn open_modal(
    state: &AppState,
    click: &ButtonClick,
    request_id: i64,
    view: Result<SlackView, ServiceError>,
) -> Result<Reply, ApiError> {
    let view = match view {
        Ok(view) => view,
        Err(err) => return explain_failure(state, click, request_id, Err(err)).await,
    };
    let trigger_id = click.trigger_id.clone();
    spawn_view_call(state, move |api| async move {
        api.open_view(&trigger_id, view).await
    });
    Ok(None)
}

/// The app select of the `/access` modal changed: show that app's permissions and groups.
async fn on_app_chosen(state: &AppState, click: &ButtonClick) -> Result<Reply, ApiError> {
    let (Some(view), Some(slug)) = (click.view.clone(), click.selected.as_deref()) else {
        return Ok(None);
    };
    let apps = state.service.apps().await?;
    let chosen = apps.iter().find(|app| app.slug == slug);
    let modal = views::request_modal(&apps, chosen, &click.user);
    spawn_view_call(state, move |api| async move {
        api.update_view(&view.id, view.hash.as_deref(), modal).await
    });
    Ok(None)
}

/// Tells the person who clicked why nothing happened.
async fn explain_failure(
    state: &AppState,
    click: &ButtonClick,
    request_id: i64,
    result: Result<(), ServiceError>,
) -> Result<Reply, ApiError> {
    let text = match result {
        Ok(()) => return Ok(None),
        Err(ServiceError::Refused(refusal)) => blocks::refusal(&refusal),
        Err(ServiceError::UnknownRequest(_)) => "That request no longer exists.".to_string(),
        Err(err) => return Err(ApiError::from(err)),
    };
    // A click in the Home tab has no conversation; the explanation goes by DM then.
    let channel = click.channel.clone().unwrap_or_else(|| click.user.clone());
    state
        .service
        .tell(Some(request_id), &channel, &click.user, &text)
        .await?;
    Ok(None)
}

async fn on_submission(state: &AppState, submission: Submission) -> Result<Reply, ApiError> {
    if submission.callback_id == callback::NEW_REQUEST {
        return on_new_request(state, submission).await;
    }
    let Ok(request_id) = submission.private_metadata.parse::<i64>() else {
        return Ok(None);
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
                Err(ServiceError::Invalid(invalid)) => input_of(invalid, field::PERMISSION),
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
        _ => return Ok(None),
    };
    match result {
        Ok(()) | Err(ServiceError::Refused(Refusal::NothingChanged)) => Ok(None),
        Err(ServiceError::Invalid(invalid)) => {
            Ok(field_errors(&[(error_field, &invalid.to_string())]))
        }
        Err(ServiceError::Refused(refusal)) => {
            Ok(field_errors(&[(error_field, &blocks::refusal(&refusal))]))
        }
        Err(ServiceError::UnknownRequest(_)) => Ok(field_errors(&[(
            error_field,
            "That request no longer exists.",
        )])),
        Err(err) => Err(err.into()),
    }
}

/// The `/access` modal was submitted: file the request exactly as the API would.
async fn on_new_request(state: &AppState, submission: Submission) -> Result<Reply, ApiError> {
    let values = &submission.values;
    let Some(app) = values
        .selected(field::APP)
        .or_else(|| Some(submission.private_metadata.clone()).filter(|s| !s.is_empty()))
    else {
        return Ok(field_errors(&[(field::APP, "Choose an app.")]));
    };
    let input = RequestInput {
        app,
        target_user: values
            .user(field::TARGET_USER)
            .unwrap_or_else(|| submission.user.clone()),
        requester: Some(submission.user.clone()),
        permission: values.selected(field::PERMISSION),
        groups: values.selected_many(field::GROUPS),
        comment: values.text(field::COMMENT).unwrap_or_default(),
        access_length: values.text(field::ACCESS_LENGTH),
    };
    match state
        .service
        .file_request_from_slack(input, &submission.view_id)
        .await
    {
        // A replay (Slack's or anyone's, within the signature's five minutes) filed nothing
        // again; it closes the modal like the first.
        Ok(_) => Ok(None),
        // The same view, submitted after it filed, with other values: Slack closed the
        // modal at the first, so this is no person's form; nothing is filed.
        Err(ServiceError::KeyUsedForAnotherBody) => {
            tracing::warn!(
                view = %submission.view_id,
                "a request form was submitted again with other values; nothing filed"
            );
            Ok(None)
        }
        Err(ServiceError::UnknownApp(_)) => Ok(field_errors(&[(
            field::APP,
            "That app is no longer in the catalog.",
        )])),
        Err(ServiceError::Invalid(invalid)) => Ok(field_errors(&[(
            input_of(&invalid, field::APP),
            &invalid.to_string(),
        )])),
        Err(err) => Err(err.into()),
    }
}

/// The modal input (block id) a validation error is shown under; `otherwise` when the
/// error is about no input of the modal.
fn input_of(invalid: &ValidationError, otherwise: &'static str) -> &'static str {
    match invalid.field() {
        Some(Field::Permission) => field::PERMISSION,
        Some(Field::Groups) => field::GROUPS,
        Some(Field::AccessLength) => field::ACCESS_LENGTH,
        Some(Field::Comment) => field::COMMENT,
        Some(Field::TargetUser) => field::TARGET_USER,
        Some(Field::Feedback) => field::FEEDBACK,
        Some(Field::Requester) | None => otherwise,
    }
}

/// `response_action: errors`, shown under the named inputs of the open modal.
fn field_errors(errors: &[(&str, &str)]) -> Reply {
    let errors: serde_json::Map<String, Value> = errors
        .iter()
        .map(|(field, message)| (field.to_string(), json!(message)))
        .collect();
    Some(json!({ "response_action": "errors", "errors": errors }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use chrono::{TimeZone, Utc};
    use futures::channel::mpsc;
    use tokio::sync::Notify;

    use super::*;
    use crate::clock::ManualClock;
    use crate::foreground::Foreground;
    use crate::http::SlackState;
    use crate::metrics::Metrics;
    use crate::service::Service;

    const SECRET: &str = "signing-secret";

    async fn state() -> AppState {
        let store = crate::store::connect("sqlite::memory:").await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(now));
        let waiting = Arc::new(Notify::new());
        let metrics = Arc::new(Metrics::default());
        AppState {
            service: Service::new(store, clock, waiting.clone()),
            slack: Some(SlackState {
                api: SlackApi::new("http://127.0.0.1:9/api", "xoxb-test", metrics.clone()),
                signing_secret: Some(SECRET.into()),
            }),
            api_token: None,
            metrics_token: None,
            metrics,
            deliveries_waiting: waiting,
            foreground: Arc::new(Foreground::default()),
            supervisor: Default::default(),
            socket: None,
        }
    }

    /// A request whose body arrives when the test sends it, signed with `signature` (`None`:
    /// the right one for `body`).
    fn slow_request(
        state: &AppState,
        body: &'static str,
        signature: Option<&str>,
    ) -> (
        Request,
        mpsc::UnboundedSender<Result<&'static str, std::io::Error>>,
    ) {
        let timestamp = state.service.clock().now().timestamp().to_string();
        let signature = signature
            .map(str::to_string)
            .unwrap_or_else(|| signature::sign(SECRET, &timestamp, body.as_bytes()));
        let (chunks, stream) = mpsc::unbounded();
        let request = Request::builder()
            .method("POST")
            .uri("/slack/interactivity")
            .header("x-slack-request-timestamp", timestamp)
            .header("x-slack-signature", signature)
            .body(Body::from_stream(stream))
            .unwrap();
        (request, chunks)
    }

    #[tokio::test]
    async fn a_slack_request_slows_the_worker_only_once_its_signature_checks_out() {
        let state = state().await;
        let body = "payload=%7B%7D";

        let (request, chunks) = slow_request(&state, body, Some("v0=00"));
        let reading = tokio::spawn({
            let state = state.clone();
            async move { verified_body(&state, request).await.map(|_| ()) }
        });
        chunks.unbounded_send(Ok(&body[..4])).unwrap();
        tokio::task::yield_now().await;
        assert!(!state.foreground.is_busy(), "busy while the body arrives");
        chunks.unbounded_send(Ok(&body[4..])).unwrap();
        drop(chunks);
        let refused = reading.await.unwrap();
        assert!(
            matches!(refused, Err(ApiError::Unauthorized(_))),
            "{refused:?}"
        );
        assert!(!state.foreground.is_busy(), "busy after a bad signature");

        let (request, chunks) = slow_request(&state, body, None);
        chunks.unbounded_send(Ok(body)).unwrap();
        drop(chunks);
        let (read, in_hand) = verified_body(&state, request).await.unwrap();
        assert_eq!(&read[..], body.as_bytes());
        assert!(state.foreground.is_busy(), "a signed request is in hand");
        drop(in_hand);
        assert!(!state.foreground.is_busy());
    }
}
