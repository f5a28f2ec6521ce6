//! Helpers for the end-to-end stories of conversations, Slack requests, the App Home, expiry
//! and cancel: the people of a story, and waits on what the fake Slack holds (never sleeps).
#![allow(dead_code)]

use std::sync::Arc;

use accessbot::clock::ManualClock;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use super::fake_slack::{FakeSlack, DEFAULT_WAIT};
use super::signer::ButtonClick;
use super::story::Card;
use super::test_app::TestApp;

/// The requester of the stories.
pub const REQUESTER: &str = "UREQ0001";
/// The approver of the stories' apps.
pub const APPROVER: &str = "UAPPR001";
/// The app admin of the stories' apps.
pub const ADMIN: &str = "UADMN001";
/// Someone with no part in the request.
pub const STRANGER: &str = "USTRNG01";
/// The admin channel of apps that have one.
pub const ADMIN_CHANNEL: &str = "CADMINS01";

/// Where the manual clock of timed stories starts.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

/// A fake Slack and the app on `db_url` with the system clock.
pub async fn start(db_url: &str) -> TestApp {
    let slack = FakeSlack::start().await;
    TestApp::spawn(db_url, &slack).await
}

/// A fake Slack and the app on `db_url`, on a manual clock at the present and without
/// background loops: nothing reaches Slack until the story calls [`TestApp::step`].
pub async fn start_stepped(db_url: &str) -> TestApp {
    let slack = FakeSlack::start().await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    TestApp::spawn_stepped(db_url, &slack, clock, &[]).await
}

/// A fake Slack and the app on `db_url` with a manual clock at [`t0`] and `vars`.
pub async fn start_at_t0(db_url: &str, vars: &[(&str, &str)]) -> TestApp {
    let slack = FakeSlack::start().await;
    let clock = Arc::new(ManualClock::new(t0()));
    TestApp::spawn_with(db_url, &slack, Some(clock), vars).await
}

/// Figma with [`ADMIN`] as admin, [`APPROVER`] as approver (when `approved`) and
/// [`ADMIN_CHANNEL`] (when `channel`).
pub fn figma(approved: bool, channel: bool) -> Value {
    json!({
        "name": "Figma",
        "admins": [ADMIN],
        "approvers": if approved { vec![APPROVER] } else { vec![] },
        "permissions": ["Member", "Admin"],
        "groups": ["design", "eng"],
        "admin_channel": if channel { json!(ADMIN_CHANNEL) } else { Value::Null },
    })
}

/// Puts `app` in the catalog as `slug`.
pub async fn catalog(app: &TestApp, slug: &str, entry: Value) {
    let (status, body) = app.put_app(slug, entry).await;
    assert!(status.is_success(), "PUT app {slug}: {status} {body}");
}

/// What [`file`](super::story::file) adds to file a request by [`REQUESTER`] for themselves
/// for `access_length`.
pub fn asking_for(access_length: &str) -> Value {
    json!({
        "target_user": REQUESTER,
        "comment": "for the launch",
        "access_length": access_length,
    })
}

/// The status of request `id` through the API.
pub async fn status_of(app: &TestApp, id: i64) -> String {
    app.request(&id.to_string()).await["status"]
        .as_str()
        .expect("a status")
        .to_string()
}

/// Whether `message` is a card (or receipt) of request `id`: one of its buttons carries the id.
pub fn has_button(message: &Value, action_id: &str, id: i64) -> bool {
    ButtonClick::find_in(message, action_id).is_some_and(|b| b.value == id.to_string())
}

/// The top-level messages of `channel` (a user id means the DM with them) carrying the
/// button `action_id` for request `id`.
pub fn cards_with_button(slack: &FakeSlack, channel: &str, action_id: &str, id: i64) -> Vec<Value> {
    slack
        .top_level_messages_in(channel)
        .into_iter()
        .filter(|m| has_button(m, action_id, id))
        .collect()
}

/// Waits until `check` holds on the fake's state; panics with `what` and the calls otherwise.
pub async fn wait_for_state<F>(slack: &FakeSlack, what: &str, check: F)
where
    F: Fn(&FakeSlack) -> bool,
{
    let probe = slack.clone();
    if let Err(timeout) = slack.wait_for(|_| check(&probe), DEFAULT_WAIT).await {
        panic!("waited for {what}: {timeout:?}");
    }
}

/// Waits for the card with button `action_id` of request `id` in `channel`; returns
/// (its channel id, its ts).
pub async fn wait_card(slack: &FakeSlack, channel: &str, action_id: &str, id: i64) -> Card {
    let what = format!("a card of request {id} with {action_id} in {channel}");
    wait_for_state(slack, &what, |s| {
        !cards_with_button(s, channel, action_id, id).is_empty()
    })
    .await;
    let card = cards_with_button(slack, channel, action_id, id)
        .into_iter()
        .next()
        .expect("the card");
    Card {
        channel: resolve(channel),
        ts: card["ts"].as_str().expect("ts").to_string(),
        message: card,
    }
}

/// A user id stands for the bot's DM with them.
pub fn resolve(channel: &str) -> String {
    if channel.starts_with('U') || channel.starts_with('W') {
        super::fake_slack::dm_channel_of(channel)
    } else {
        channel.to_string()
    }
}

/// Waits until the thread of `card` has a reply whose text equals `text`.
pub async fn wait_reply(slack: &FakeSlack, card: &Card, text: &str) {
    let what = format!("the reply {text:?} in the thread of {card:?}");
    wait_for_state(slack, &what, |s| card.replies(s).iter().any(|r| r == text)).await;
}

/// Waits until `user`'s DM holds a top-level message whose text contains `needle`.
pub async fn wait_dm_containing(slack: &FakeSlack, user: &str, needle: &str) {
    let what = format!("a DM to {user} containing {needle:?}");
    wait_for_state(slack, &what, |s| dms_containing(s, user, needle) > 0).await;
}

/// How many top-level messages of `user`'s DM contain `needle` in their text.
pub fn dms_containing(slack: &FakeSlack, user: &str, needle: &str) -> usize {
    slack
        .top_level_messages_in(user)
        .iter()
        .filter(|m| m["text"].as_str().is_some_and(|t| t.contains(needle)))
        .count()
}

/// `GET /api/v1/requests/{id}/thread`.
pub async fn thread_of(app: &TestApp, id: i64) -> Vec<Value> {
    let (status, body) = app.api_get(&format!("/api/v1/requests/{id}/thread")).await;
    assert_eq!(status, 200, "thread of {id}: {body}");
    body.as_array().expect("a list").clone()
}

/// The kinds of the audit trail of `id`, oldest first.
pub async fn event_kinds(app: &TestApp, id: i64) -> Vec<String> {
    let (status, body) = app.api_get(&format!("/api/v1/requests/{id}/events")).await;
    assert_eq!(status, 200, "events of {id}: {body}");
    body.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Returns once every Slack call the app stored before now has been attempted: a Home
/// published for [`STRANGER`] is delivered after them (the worker finishes a batch before
/// it claims the next). A card seen in the fake may not be recorded as posted yet; after
/// this it is.
pub async fn settle(app: &TestApp) {
    let published = |s: &FakeSlack| {
        s.ok_calls_to("views.publish")
            .iter()
            .filter(|c| c.arg("user_id") == Some(STRANGER))
            .count()
    };
    let before = published(&app.slack);
    let (status, body) = app.open_home(STRANGER).await;
    assert_eq!(status, 200, "app_home_opened: {body}");
    wait_for_state(&app.slack, "the worker to settle", |s| {
        published(s) > before
    })
    .await;
}
