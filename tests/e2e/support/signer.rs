//! Slack's side of the inbound requests: v0 signatures and complete payloads that
//! slack-morphism's strict models accept (platform notes §1, §2, §9.5).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::fake_slack::{APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID};

/// The signing secret the test app is configured with.
pub const TEST_SIGNING_SECRET: &str = "e2e0signing0secret0for0accessbot";
/// `Content-Type` of Events API requests.
pub const JSON: &str = "application/json";
/// `Content-Type` of interactivity and slash command requests.
pub const FORM: &str = "application/x-www-form-urlencoded";
/// The slash command in the manifest.
pub const COMMAND: &str = "/access";

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Seconds since the Unix epoch, by the system clock.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `v0=` + hex(HMAC-SHA256(secret, `v0:{timestamp}:{body}`)), exactly as Slack signs.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The two headers Slack adds: (`X-Slack-Request-Timestamp`, `X-Slack-Signature`).
pub fn signature_headers(secret: &str, timestamp: i64, body: &str) -> [(&'static str, String); 2] {
    [
        ("X-Slack-Request-Timestamp", timestamp.to_string()),
        ("X-Slack-Signature", sign(secret, timestamp, body)),
    ]
}

/// A fresh trigger_id in Slack's `digits.digits.hex` shape; it starts with the Unix time in
/// milliseconds, which lets the fake expire it after 3 s when asked to.
pub fn trigger_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis();
    let n = next();
    format!(
        "{millis}.{}.{:032x}",
        4_744_562_912 + n,
        (n as u128) * 0x9e37_79b9_7f4a_7c15
    )
}

/// A fresh, unique Events API `event_id`.
pub fn event_id() -> String {
    format!("Ev{:010}", next())
}

/// A fresh `action_ts`.
pub fn action_ts() -> String {
    format!("{}.{:06}", unix_now(), next() % 1_000_000)
}

fn response_url(kind: &str) -> String {
    format!(
        "https://hooks.slack.com/{kind}/{TEAM_ID}/{}/{:024x}",
        1_234_567_890_000 + next(),
        next()
    )
}

fn user_info(user: &str) -> Value {
    json!({"id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": TEAM_ID})
}

fn team_info() -> Value {
    json!({"id": TEAM_ID, "domain": TEAM_DOMAIN})
}

/// The form body of an interactivity request: `payload=<url-encoded JSON>`.
pub fn interactivity_form(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form encoding")
}

/// A URL-encoded form body from fields, in order.
pub fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).expect("form encoding")
}

/// The button a user clicks.
#[derive(Debug, Clone)]
pub struct ButtonClick {
    pub action_id: String,
    pub block_id: String,
    pub value: String,
    /// The button's label.
    pub text: String,
}

impl ButtonClick {
    pub fn new(action_id: &str, block_id: &str, value: &str, text: &str) -> ButtonClick {
        ButtonClick {
            action_id: action_id.into(),
            block_id: block_id.into(),
            value: value.into(),
            text: text.into(),
        }
    }

    /// Finds the button with `action_id` in a message or view as Slack stores it, so the click
    /// carries its real block_id, value and label.
    pub fn find_in(surface: &Value, action_id: &str) -> Option<ButtonClick> {
        let blocks = surface.get("blocks")?.as_array()?;
        for block in blocks {
            let elements = block
                .get("elements")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(block.get("accessory"));
            for element in elements {
                if element["action_id"] == action_id {
                    return Some(ButtonClick {
                        action_id: action_id.into(),
                        block_id: block["block_id"].as_str().unwrap_or("").into(),
                        value: element["value"].as_str().unwrap_or("").into(),
                        text: element["text"]["text"].as_str().unwrap_or("").into(),
                    });
                }
            }
        }
        None
    }

    fn action(&self) -> Value {
        json!({
            "action_id": self.action_id,
            "block_id": self.block_id,
            "text": {"type": "plain_text", "text": self.text, "emoji": true},
            "value": self.value,
            "type": "button",
            "action_ts": action_ts(),
        })
    }
}

/// `block_actions` for a button in a message (a card): container type `message` with its
/// channel and ts. `message` is the message as Slack stores it (from the fake), if known.
pub fn block_actions_in_message(
    user: &str,
    channel_id: &str,
    message_ts: &str,
    message: Option<&Value>,
    click: &ButtonClick,
) -> Value {
    let message = message.cloned().unwrap_or_else(|| {
        json!({"type": "message", "text": "", "ts": message_ts, "user": BOT_USER_ID, "bot_id": BOT_ID})
    });
    json!({
        "type": "block_actions",
        "user": user_info(user),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": false,
        },
        "trigger_id": trigger_id(),
        "team": team_info(),
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": channel_id, "name": if channel_id.starts_with('D') { "directmessage" } else { "approvals" }},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url("actions"),
        "actions": [click.action()],
    })
}

/// `block_actions` for a button in a view (the App Home or a modal): container type `view`.
pub fn block_actions_in_view(user: &str, view: &Value, click: &ButtonClick) -> Value {
    let view = complete_view(view);
    let mut plain_view = view.clone();
    if let Some(object) = plain_view.as_object_mut() {
        for key in [
            "id",
            "team_id",
            "state",
            "hash",
            "previous_view_id",
            "root_view_id",
            "app_id",
            "bot_id",
            "app_installed_team_id",
        ] {
            object.remove(key);
        }
    }
    json!({
        "type": "block_actions",
        "user": user_info(user),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id(),
        "team": team_info(),
        "enterprise": null,
        "is_enterprise_install": false,
        "view": plain_view,
        "state": view["state"],
        "actions": [click.action()],
    })
}

/// Adds what a stateful view carries (id, team_id, hash, state…) to a view that lacks it,
/// e.g. one taken from the body of a `views.open` call.
pub fn complete_view(view: &Value) -> Value {
    let mut full = view.as_object().cloned().unwrap_or_default();
    let n = next();
    let id = full
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("V9{n:09}"));
    let defaults = [
        ("id", json!(id)),
        ("team_id", json!(TEAM_ID)),
        ("type", json!("modal")),
        ("blocks", json!([])),
        ("private_metadata", json!("")),
        ("callback_id", json!("")),
        ("external_id", json!("")),
        ("state", json!({"values": {}})),
        ("hash", json!(format!("{}.{n:08x}", unix_now()))),
        ("clear_on_close", json!(false)),
        ("notify_on_close", json!(false)),
        ("previous_view_id", Value::Null),
        ("root_view_id", json!(id)),
        ("app_id", json!(APP_ID)),
        ("app_installed_team_id", json!(TEAM_ID)),
        ("bot_id", json!(BOT_ID)),
    ];
    for (key, value) in defaults {
        if full
            .get(key)
            .is_none_or(|v| v.is_null() && !value.is_null())
        {
            full.insert(key.into(), value);
        }
    }
    if full["type"] == "modal" && full.get("title").is_none_or(Value::is_null) {
        full.insert(
            "title".into(),
            json!({"type": "plain_text", "text": "Modal"}),
        );
    }
    Value::Object(full)
}

/// A `plain_text_input` value for `state.values` (`None` is a field left empty).
pub fn text_value(value: Option<&str>) -> Value {
    json!({"type": "plain_text_input", "value": value})
}

/// A `static_select` value for `state.values`.
pub fn selected_value(text: &str, value: &str) -> Value {
    json!({
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": text, "emoji": true}, "value": value},
    })
}

/// A `multi_static_select` value for `state.values`: (text, value) pairs.
pub fn multi_selected_value(options: &[(&str, &str)]) -> Value {
    let selected: Vec<Value> = options
        .iter()
        .map(|(text, value)| json!({"text": {"type": "plain_text", "text": text, "emoji": true}, "value": value}))
        .collect();
    json!({"type": "multi_static_select", "selected_options": selected})
}

/// A `users_select` value for `state.values`.
pub fn user_value(user: &str) -> Value {
    json!({"type": "users_select", "selected_user": user})
}

/// `view_submission` of `view` (stateful, e.g. from the fake; missing fields are filled in)
/// with `values` as `state.values` (`{block_id: {action_id: value}}`).
pub fn view_submission(user: &str, view: &Value, values: Value) -> Value {
    let mut view = complete_view(view);
    view["state"] = json!({ "values": values });
    json!({
        "type": "view_submission",
        "team": team_info(),
        "user": user_info(user),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": trigger_id(),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": false,
        "enterprise": null,
    })
}

/// `view_closed` of `view` (sent only when it was opened with `notify_on_close`).
pub fn view_closed(user: &str, view: &Value) -> Value {
    json!({
        "type": "view_closed",
        "team": team_info(),
        "user": user_info(user),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "view": complete_view(view),
        "is_cleared": false,
        "is_enterprise_install": false,
        "enterprise": null,
    })
}

/// The Events API envelope around `event`, with a fresh `event_id`.
pub fn event_callback(event: Value) -> Value {
    let event_time = unix_now();
    json!({
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id(),
        "event_time": event_time,
        "authorizations": [{
            "enterprise_id": null,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
        "event_context": format!("4-{:016x}", next()),
    })
}

/// A `message` event a person wrote; `thread_ts` makes it a reply in that thread.
/// `channel_type` is `im` for DMs, `channel` for public channels, `group` for private ones.
pub fn user_message_event(
    channel: &str,
    channel_type: &str,
    user: &str,
    text: &str,
    ts: &str,
    thread_ts: Option<&str>,
) -> Value {
    let mut event = json!({
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": TEAM_ID,
        "client_msg_id": format!("{:08x}-0000-4000-8000-{:012x}", next(), next()),
    });
    if let Some(thread_ts) = thread_ts {
        event["thread_ts"] = json!(thread_ts);
        event["parent_user_id"] = json!(BOT_USER_ID);
    }
    event
}

/// A `message` event for a message a bot posted (the bot's own posts come back like this).
pub fn bot_message_event(
    channel: &str,
    channel_type: &str,
    bot_id: &str,
    text: &str,
    ts: &str,
    thread_ts: Option<&str>,
) -> Value {
    let mut event = json!({
        "type": "message",
        "channel": channel,
        "bot_id": bot_id,
        "app_id": APP_ID,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": TEAM_ID,
    });
    if bot_id == BOT_ID {
        event["user"] = json!(BOT_USER_ID);
    }
    if let Some(thread_ts) = thread_ts {
        event["thread_ts"] = json!(thread_ts);
    }
    event
}

/// `message_changed` for `user`'s reply `ts` in the thread `thread_ts`, edited at
/// `edit_ts` from `before` to `after`: Slack's shape (hidden, the new message nested under
/// `message` with `edited`, the old one under `previous_message`).
pub fn message_changed_event(
    channel: &str,
    channel_type: &str,
    user: &str,
    ts: &str,
    thread_ts: &str,
    (before, after): (&str, &str),
    edit_ts: &str,
) -> Value {
    json!({
        "type": "message",
        "subtype": "message_changed",
        "hidden": true,
        "channel": channel,
        "channel_type": channel_type,
        "ts": edit_ts,
        "event_ts": edit_ts,
        "message": {
            "type": "message",
            "user": user,
            "team": TEAM_ID,
            "text": after,
            "ts": ts,
            "thread_ts": thread_ts,
            "parent_user_id": BOT_USER_ID,
            "edited": {"user": user, "ts": edit_ts},
        },
        "previous_message": {
            "type": "message",
            "user": user,
            "team": TEAM_ID,
            "text": before,
            "ts": ts,
            "thread_ts": thread_ts,
            "parent_user_id": BOT_USER_ID,
        },
    })
}

/// `message_deleted` of `user`'s reply `ts` in the thread `thread_ts`, at `delete_ts`.
pub fn message_deleted_event(
    channel: &str,
    channel_type: &str,
    user: &str,
    ts: &str,
    thread_ts: &str,
    text: &str,
    delete_ts: &str,
) -> Value {
    json!({
        "type": "message",
        "subtype": "message_deleted",
        "hidden": true,
        "channel": channel,
        "channel_type": channel_type,
        "ts": delete_ts,
        "event_ts": delete_ts,
        "deleted_ts": ts,
        "previous_message": {
            "type": "message",
            "user": user,
            "team": TEAM_ID,
            "text": text,
            "ts": ts,
            "thread_ts": thread_ts,
            "parent_user_id": BOT_USER_ID,
        },
    })
}

/// `app_home_opened` for `user`; `view` is the Home view published before, if any.
pub fn app_home_opened_event(user: &str, tab: &str, view: Option<&Value>) -> Value {
    let mut event = json!({
        "type": "app_home_opened",
        "user": user,
        "channel": super::fake_slack::dm_channel_of(user),
        "event_ts": format!("{}.{:06}", unix_now(), next() % 1_000_000),
        "tab": tab,
    });
    if let Some(view) = view {
        let mut view = complete_view(view);
        view["type"] = json!("home");
        if let Some(object) = view.as_object_mut() {
            object.remove("title");
        }
        event["view"] = view;
    }
    event
}

/// The `url_verification` request Slack sends when the events URL is saved.
pub fn url_verification(challenge: &str) -> Value {
    json!({"token": "legacy-verification-token", "challenge": challenge, "type": "url_verification"})
}

/// The form fields of a slash command, as Slack sends them (URL-encode with [`form`]).
pub fn slash_command(
    user: &str,
    channel: &str,
    command: &str,
    text: &str,
) -> Vec<(String, String)> {
    [
        ("token", "legacy-verification-token".to_string()),
        ("team_id", TEAM_ID.to_string()),
        ("team_domain", TEAM_DOMAIN.to_string()),
        ("channel_id", channel.to_string()),
        (
            "channel_name",
            if channel.starts_with('D') {
                "directmessage"
            } else {
                "general"
            }
            .to_string(),
        ),
        ("user_id", user.to_string()),
        ("user_name", user.to_lowercase()),
        ("command", command.to_string()),
        ("text", text.to_string()),
        ("api_app_id", APP_ID.to_string()),
        ("is_enterprise_install", "false".to_string()),
        ("response_url", response_url("commands")),
        ("trigger_id", trigger_id()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use slack_morphism::prelude::*;
    use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

    #[test]
    fn signer_reproduces_slacks_documented_example() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }

    #[test]
    fn signer_agrees_with_slack_morphisms_verifier() {
        let body = interactivity_form(&json!({"type": "block_actions"}));
        let ts = unix_now();
        let verifier =
            SlackEventSignatureVerifier::new(&SlackSigningSecret::new(TEST_SIGNING_SECRET.into()));
        verifier
            .verify(
                &sign(TEST_SIGNING_SECRET, ts, &body),
                &body,
                &ts.to_string(),
            )
            .expect("slack-morphism accepts the signature");
    }

    #[test]
    fn trigger_and_event_ids_are_unique_and_well_formed() {
        let (a, b) = (trigger_id(), trigger_id());
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[..2]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_digit())));
        assert_ne!(event_id(), event_id());
    }

    fn card() -> Value {
        json!({
            "type": "message", "text": "Access request", "ts": "1700000000.000100",
            "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID, "team": TEAM_ID,
            "metadata": {"event_type": "access_request", "event_payload": {"request_id": "42"}},
            "blocks": [{"type": "actions", "block_id": "decide", "elements": [
                {"type": "button", "action_id": "confirm_provisioning", "style": "primary",
                 "text": {"type": "plain_text", "text": "Confirm Provisioning"}, "value": "42"}]}]
        })
    }

    fn modal() -> Value {
        json!({
            "id": "V0000000001", "team_id": TEAM_ID, "type": "modal", "hash": "1700000001.0000abcd",
            "title": {"type": "plain_text", "text": "Send feedback"},
            "submit": {"type": "plain_text", "text": "Send"},
            "blocks": [
                {"type": "input", "block_id": "feedback", "label": {"type": "plain_text", "text": "Feedback"},
                 "element": {"type": "plain_text_input", "action_id": "text", "multiline": true}},
                {"type": "input", "block_id": "permission", "label": {"type": "plain_text", "text": "Permission"},
                 "element": {"type": "static_select", "action_id": "value", "options": [
                    {"text": {"type": "plain_text", "text": "Member"}, "value": "Member"}]}}
            ],
            "private_metadata": "{\"request_id\":\"42\"}", "callback_id": "feedback",
        })
    }

    #[test]
    fn block_actions_from_a_card_parse_as_slack_morphism_interactions() {
        let click = ButtonClick::find_in(&card(), "confirm_provisioning").expect("button");
        assert_eq!(click.block_id, "decide");
        assert_eq!(click.value, "42");
        let payload = block_actions_in_message(
            "U0ADMIN1",
            "D0ADMIN1",
            "1700000000.000100",
            Some(&card()),
            &click,
        );
        match serde_json::from_value::<SlackInteractionEvent>(payload).expect("parses") {
            SlackInteractionEvent::BlockActions(event) => {
                let actions = event.actions.expect("actions");
                assert_eq!(actions[0].action_id.value(), "confirm_provisioning");
                assert_eq!(actions[0].value.as_deref(), Some("42"));
                assert!(matches!(
                    event.container,
                    SlackInteractionActionContainer::Message(ref c) if c.message_ts.value() == "1700000000.000100"
                ));
                assert!(event.message.expect("message").content.blocks.is_some());
            }
            other => panic!("not block_actions: {other:?}"),
        }
        let bare = block_actions_in_message(
            "U0ADMIN1",
            "C0ADMINS",
            "1700000000.000200",
            None,
            &ButtonClick::new("deny", "b", "42", "Deny"),
        );
        assert!(serde_json::from_value::<SlackInteractionEvent>(bare).is_ok());
    }

    #[test]
    fn block_actions_from_a_view_parse_as_slack_morphism_interactions() {
        let home = json!({"id": "V0000000009", "type": "home", "blocks": [
            {"type": "section", "block_id": "task-42", "text": {"type": "mrkdwn", "text": "Task"},
             "accessory": {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "Approve"}, "value": "42"}}]});
        let click = ButtonClick::find_in(&home, "approve").expect("button");
        let payload = block_actions_in_view("U0APPROVER", &home, &click);
        assert!(matches!(
            serde_json::from_value::<SlackInteractionEvent>(payload).expect("parses"),
            SlackInteractionEvent::BlockActions(SlackInteractionBlockActionsEvent {
                container: SlackInteractionActionContainer::View(_),
                ..
            })
        ));
    }

    #[test]
    fn view_submission_and_view_closed_parse_as_slack_morphism_interactions() {
        let values = json!({
            "feedback": {"text": text_value(Some("Please ask your manager"))},
            "permission": {"value": selected_value("Member", "Member")},
            "groups": {"value": multi_selected_value(&[("eng", "eng"), ("ops", "ops")])},
            "target": {"user": user_value("U0TARGET")},
        });
        let payload = view_submission("U0ADMIN1", &modal(), values);
        match serde_json::from_value::<SlackInteractionEvent>(payload).expect("parses") {
            SlackInteractionEvent::ViewSubmission(event) => {
                let state = event.view.state_params.state.expect("state");
                assert_eq!(
                    state.values[&"feedback".into()][&"text".into()]
                        .value
                        .as_deref(),
                    Some("Please ask your manager")
                );
                assert_eq!(
                    state.values[&"permission".into()][&"value".into()]
                        .selected_option
                        .as_ref()
                        .expect("option")
                        .value,
                    "Member"
                );
                match event.view.view {
                    SlackView::Modal(modal) => {
                        assert_eq!(
                            modal.private_metadata.as_deref(),
                            Some("{\"request_id\":\"42\"}")
                        )
                    }
                    other => panic!("not a modal: {other:?}"),
                }
            }
            other => panic!("not view_submission: {other:?}"),
        }
        // A view taken from a views.open call body (no id, hash, team) is completed.
        let mut bare = modal();
        for key in ["id", "team_id", "hash"] {
            bare.as_object_mut().unwrap().remove(key);
        }
        assert!(
            serde_json::from_value::<SlackInteractionEvent>(view_submission(
                "U1",
                &bare,
                json!({})
            ))
            .is_ok()
        );
        assert!(matches!(
            serde_json::from_value::<SlackInteractionEvent>(view_closed("U0ADMIN1", &modal()))
                .expect("parses"),
            SlackInteractionEvent::ViewClosed(_)
        ));
    }

    #[test]
    fn thread_replies_parse_as_slack_morphism_message_events() {
        let reply = event_callback(user_message_event(
            "D0REQUESTER",
            "im",
            "U0REQUESTER",
            "any news?",
            "1700000000.000300",
            Some("1700000000.000100"),
        ));
        match serde_json::from_value::<SlackPushEvent>(reply).expect("parses") {
            SlackPushEvent::EventCallback(callback) => match callback.event {
                SlackEventCallbackBody::Message(message) => {
                    assert_eq!(
                        message.origin.thread_ts.expect("thread").value(),
                        "1700000000.000100"
                    );
                    assert_eq!(message.sender.user.expect("user").value(), "U0REQUESTER");
                    assert_eq!(
                        message.content.expect("content").text.as_deref(),
                        Some("any news?")
                    );
                }
                other => panic!("not a message: {other:?}"),
            },
            other => panic!("not an event callback: {other:?}"),
        }
        let own = event_callback(bot_message_event(
            "C0ADMINS",
            "channel",
            BOT_ID,
            "relayed",
            "1700000000.000400",
            Some("1700000000.000100"),
        ));
        match serde_json::from_value::<SlackPushEvent>(own).expect("parses") {
            SlackPushEvent::EventCallback(SlackPushEventCallback {
                event: SlackEventCallbackBody::Message(message),
                ..
            }) => assert_eq!(message.sender.bot_id.expect("bot").value(), BOT_ID),
            other => panic!("not a bot message: {other:?}"),
        }
    }

    #[test]
    fn app_home_opened_and_url_verification_parse_as_slack_morphism_push_events() {
        let home = json!({"id": "V0000000009", "type": "home", "blocks": []});
        for view in [None, Some(&home)] {
            let event = event_callback(app_home_opened_event("U0REQUESTER", "home", view));
            assert!(matches!(
                serde_json::from_value::<SlackPushEvent>(event).expect("parses"),
                SlackPushEvent::EventCallback(SlackPushEventCallback {
                    event: SlackEventCallbackBody::AppHomeOpened(_),
                    ..
                })
            ));
        }
        assert!(matches!(
            serde_json::from_value::<SlackPushEvent>(url_verification("c")).expect("parses"),
            SlackPushEvent::UrlVerification(SlackUrlVerificationEvent { ref challenge }) if challenge == "c"
        ));
    }

    #[test]
    fn slash_command_form_parses_as_a_slack_morphism_command_event() {
        let fields = slash_command("U0REQUESTER", "C0GENERAL", COMMAND, "figma admin");
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = form(&pairs);
        let decoded: std::collections::HashMap<String, String> =
            serde_urlencoded::from_str(&body).expect("form decodes");
        let event: SlackCommandEvent =
            serde_json::from_value(serde_json::to_value(decoded).unwrap()).expect("parses");
        assert_eq!(event.command.value(), COMMAND);
        assert_eq!(event.text.as_deref(), Some("figma admin"));
        assert_eq!(event.user_id.value(), "U0REQUESTER");
    }

    #[test]
    fn interactivity_form_round_trips_the_payload() {
        let payload = json!({"type": "block_actions", "text": "a&b=c +%"});
        let body = interactivity_form(&payload);
        assert!(body.starts_with("payload=%7B"));
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&decoded[0].1).unwrap(),
            payload
        );
    }
}
