//! Interaction payloads from Slack, parsed at the edge into the few facts the bot uses.

use std::collections::HashMap;

use serde::Deserialize;
use slack_morphism::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not a form with a payload field")]
    NoPayload,
    #[error("the payload is not a Slack interaction: {0}")]
    Malformed(String),
    #[error("the payload holds text the bot cannot keep: {}", crate::nul::REFUSAL)]
    Nul,
}

/// A click on a button, or a choice in a select, of a message, a modal or the Home tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonClick {
    pub user: String,
    pub action_id: String,
    /// A button's value.
    pub value: Option<String>,
    /// A select's chosen option.
    pub selected: Option<String>,
    /// Unique per click (`action_ts`); the same in a retried or replayed delivery.
    pub click_id: String,
    pub trigger_id: String,
    /// The conversation of the clicked message, when the button was in a message.
    pub channel: Option<String>,
    /// The modal or Home tab the element was in, with its hash for `views.update`.
    pub view: Option<ViewRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRef {
    pub id: String,
    pub hash: Option<String>,
}

/// A submitted modal.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub user: String,
    /// The submitted view's id: one per opened modal, the same when a submission is sent
    /// again.
    pub view_id: String,
    pub callback_id: String,
    pub private_metadata: String,
    pub values: FormValues,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Interaction {
    Button(ButtonClick),
    Submission(Submission),
    /// Anything the bot does not act on (a closed modal, an unknown payload type).
    Ignored,
}

/// The inputs of a submitted modal, by block id (each block has one element).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormValues(HashMap<String, SlackViewStateValue>);

impl FormValues {
    fn get(&self, field: &str) -> Option<&SlackViewStateValue> {
        self.0.get(field)
    }

    /// A text input's value, trimmed; `None` when empty.
    pub fn text(&self, field: &str) -> Option<String> {
        self.get(field)?
            .value
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    }

    /// The value of a single select's chosen option.
    pub fn selected(&self, field: &str) -> Option<String> {
        Some(self.get(field)?.selected_option.as_ref()?.value.clone())
    }

    /// The values of a multi select's chosen options.
    pub fn selected_many(&self, field: &str) -> Vec<String> {
        self.get(field)
            .and_then(|value| value.selected_options.as_ref())
            .map(|options| options.iter().map(|o| o.value.clone()).collect())
            .unwrap_or_default()
    }

    /// A users_select's chosen user.
    pub fn user(&self, field: &str) -> Option<String> {
        Some(self.get(field)?.selected_user.as_ref()?.to_string())
    }
}

/// Parses the `application/x-www-form-urlencoded` body Slack posts to the interactivity URL.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, PayloadError> {
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| PayloadError::NoPayload)?;
    let payload = fields
        .into_iter()
        .find_map(|(name, value)| (name == "payload").then_some(value))
        .ok_or(PayloadError::NoPayload)?;
    parse_interaction_json(&payload)
}

/// Parses an interaction payload as JSON text: the HTTP form's `payload` field, or the
/// `payload` of a Socket Mode `interactive` envelope.
pub fn parse_interaction_json(payload: &str) -> Result<Interaction, PayloadError> {
    if crate::nul::in_json(payload.as_bytes()) {
        return Err(PayloadError::Nul);
    }
    let kind: PayloadKind = serde_json::from_str(payload).map_err(malformed)?;
    Ok(match kind.kind.as_str() {
        "block_actions" => button_click(serde_json::from_str(payload).map_err(malformed)?),
        "view_submission" => match serde_json::from_str(payload).map_err(malformed)? {
            SlackInteractionEvent::ViewSubmission(submission) => submission_of(submission),
            _ => Interaction::Ignored,
        },
        _ => Interaction::Ignored,
    })
}

fn malformed(err: serde_json::Error) -> PayloadError {
    PayloadError::Malformed(err.to_string())
}

#[derive(Deserialize)]
struct PayloadKind {
    #[serde(rename = "type")]
    kind: String,
}

/// The fields of a `block_actions` payload the bot uses; serde skips the rest unread.
/// slack-morphism's model of the whole payload buffers it into an intermediate tree (its
/// type is an internally tagged enum) and builds every block of the clicked message; on the
/// click path that was a tenth of the CPU of a request.
#[derive(Deserialize)]
struct BlockActions {
    user: Option<Id>,
    #[serde(default)]
    actions: Vec<Action>,
    trigger_id: String,
    container: Container,
    channel: Option<Id>,
    view: Option<View>,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    value: Option<String>,
    selected_option: Option<SelectedOption>,
    action_ts: Option<String>,
}

#[derive(Deserialize)]
struct SelectedOption {
    value: String,
}

/// Where the clicked element is: `message`, `message_attachment` or `view`.
#[derive(Deserialize)]
struct Container {
    #[serde(rename = "type")]
    kind: String,
    channel_id: Option<String>,
    view_id: Option<String>,
}

#[derive(Deserialize)]
struct View {
    #[serde(rename = "type")]
    kind: Option<String>,
    hash: Option<String>,
}

fn button_click(event: BlockActions) -> Interaction {
    let Some(user) = event.user else {
        return Interaction::Ignored;
    };
    let Some(action) = event.actions.into_iter().next() else {
        return Interaction::Ignored;
    };
    let Container {
        kind,
        channel_id,
        view_id,
    } = event.container;
    let (channel, view) = match (kind.as_str(), view_id) {
        ("view", Some(id)) => {
            // Only a modal has a hash to pass to `views.update`; the Home tab is republished.
            let hash = event
                .view
                .filter(|view| view.kind.as_deref() == Some("modal"))
                .and_then(|view| view.hash);
            (None, Some(ViewRef { id, hash }))
        }
        ("view", None) => (None, None),
        _ => (channel_id, None),
    };
    Interaction::Button(ButtonClick {
        user: user.id,
        action_id: action.action_id,
        value: action.value,
        selected: action.selected_option.map(|option| option.value),
        click_id: action.action_ts.unwrap_or_else(|| event.trigger_id.clone()),
        trigger_id: event.trigger_id,
        channel: channel.or(event.channel.map(|channel| channel.id)),
        view,
    })
}

fn submission_of(event: SlackInteractionViewSubmissionEvent) -> Interaction {
    let SlackView::Modal(modal) = &event.view.view else {
        return Interaction::Ignored;
    };
    let values = event
        .view
        .state_params
        .state
        .map(|state| {
            state
                .values
                .into_iter()
                .filter_map(|(block, mut actions)| {
                    let key = block.to_string();
                    let value = actions
                        .remove(&SlackActionId::new(key.clone()))
                        .or_else(|| actions.into_values().next())?;
                    Some((key, value))
                })
                .collect()
        })
        .unwrap_or_default();
    Interaction::Submission(Submission {
        user: event.user.id.to_string(),
        view_id: event.view.state_params.id.to_string(),
        callback_id: modal
            .callback_id
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default(),
        private_metadata: modal.private_metadata.clone().unwrap_or_default(),
        values: FormValues(values),
    })
}
