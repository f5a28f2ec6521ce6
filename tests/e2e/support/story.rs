//! End-to-end stories on both databases, and what they look at: the cards the fake Slack
//! holds, the API's view of a request, the metrics.
//!
//! ```ignore
//! story! {
//!     /// An approved request gets provisioning cards.
//!     async fn approval_posts_provisioning_cards(app: &TestApp) { … }
//! }
//! story! {
//!     /// Stories that start (and stop) apps themselves get the database and the fake;
//!     /// `env.spawn_stepped()` gives an app that does background work only on `step(now)`.
//!     async fn waiting_calls_survive_a_restart(env: StoryEnv) { … }
//! }
//! ```
//! A story may also take `db_url: String` or, for the store contract, `store: Arc<dyn Store>`.
//! Each becomes the tests `name::sqlite` and `name::postgres`; PostgreSQL is skipped when
//! `TEST_DATABASE_URL` is unset.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accessbot::clock::ManualClock;
use accessbot::store::Store;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::db::{Backend, TestDb};
use super::fake_slack::FakeSlack;
use super::test_app::{TestApp, TEST_API_TOKEN};

/// How long a story waits for something the app does in the background.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Runs a story on SQLite and on PostgreSQL as `$name::sqlite` and `$name::postgres`; the
/// PostgreSQL test skips (and says so) when `TEST_DATABASE_URL` is unset. Each test gets a
/// database of its own, dropped afterwards. What the story is given says what it needs:
///
/// - `async fn name(app: &TestApp)`: a fresh database and fake Slack, the app spawned on them
///   and stopped after the story;
/// - `async fn name(env: StoryEnv)`: the database and the fake; the story spawns its apps;
/// - `async fn name(db_url: String)`: the database's URL only;
/// - `async fn name(store: Arc<dyn Store>)`: the store opened on the database (migrated).
///
/// Attributes before the story (docs, `#[ignore = "…"]`) go on both tests.
macro_rules! story {
    ($(#[$attr:meta])* async fn $name:ident($app:ident: &TestApp) $body:block) => {
        async fn $name($app: &$crate::support::test_app::TestApp) $body
        $crate::support::story::story!(@tests [$(#[$attr])*] $name with_app
            |app| ::std::boxed::Box::pin(super::$name(app)));
    };
    ($(#[$attr:meta])* async fn $name:ident($env:ident: StoryEnv) $body:block) => {
        async fn $name($env: $crate::support::story::StoryEnv) $body
        $crate::support::story::story!(@tests [$(#[$attr])*] $name with_env super::$name);
    };
    ($(#[$attr:meta])* async fn $name:ident($db_url:ident: String) $body:block) => {
        async fn $name($db_url: ::std::string::String) $body
        $crate::support::story::story!(@tests [$(#[$attr])*] $name with_db_url super::$name);
    };
    ($(#[$attr:meta])* async fn $name:ident($store:ident: Arc<dyn Store>) $body:block) => {
        async fn $name($store: ::std::sync::Arc<dyn ::accessbot::store::Store>) $body
        $crate::support::story::story!(@tests [$(#[$attr])*] $name with_store super::$name);
    };
    (@tests [$(#[$attr:meta])*] $name:ident $runner:ident $story:expr) => {
        mod $name {
            use $crate::support::db::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn sqlite() {
                $crate::support::story::$runner(Backend::Sqlite, $story).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn postgres() {
                $crate::support::story::$runner(Backend::Postgres, $story).await;
            }
        }
    };
}
pub(crate) use story;

/// Runs `story` on the app spawned on a fresh database and fake Slack, then stops the app;
/// skips when `backend` is not configured.
pub async fn with_app<F>(backend: Backend, story: F)
where
    F: for<'a> FnOnce(&'a TestApp) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
{
    let Some(env) = StoryEnv::new(backend).await else {
        return;
    };
    let app = env.spawn().await;
    story(&app).await;
    app.stop().await;
}

/// Runs `story` with a fresh database and fake Slack; skips when `backend` is not configured.
pub async fn with_env<F, Fut>(backend: Backend, story: F)
where
    F: FnOnce(StoryEnv) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(env) = StoryEnv::new(backend).await {
        story(env).await;
    }
}

/// Runs `story` with the URL of a fresh database, dropped afterwards; skips when `backend`
/// is not configured.
pub async fn with_db_url<F, Fut>(backend: Backend, story: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(db) = TestDb::new(backend).await {
        story(db.url().to_string()).await;
    }
}

/// Runs `story` on the store of a fresh database (migrated), dropped afterwards; skips when
/// `backend` is not configured.
pub async fn with_store<F, Fut>(backend: Backend, story: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(db) = TestDb::new(backend).await {
        story(db.store().await).await;
    }
}

/// A fresh database and a fresh fake Slack for one story.
pub struct StoryEnv {
    pub backend: Backend,
    pub db: TestDb,
    pub slack: FakeSlack,
}

impl StoryEnv {
    /// `None` when the backend is not configured (the story is skipped).
    pub async fn new(backend: Backend) -> Option<StoryEnv> {
        let db = TestDb::new(backend).await?;
        Some(StoryEnv {
            backend,
            db,
            slack: FakeSlack::start().await,
        })
    }

    pub fn db_url(&self) -> &str {
        self.db.url()
    }

    /// The app with the usual test configuration.
    pub async fn spawn(&self) -> TestApp {
        TestApp::spawn(self.db.url(), &self.slack).await
    }

    /// The app on a manual clock at the present, without background loops: nothing reaches
    /// Slack and no timed work happens until the story calls [`TestApp::step`].
    pub async fn spawn_stepped(&self) -> TestApp {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        TestApp::spawn_stepped(self.db.url(), &self.slack, clock, &[]).await
    }

    /// The app with extra variables (`""` removes one).
    pub async fn spawn_with(&self, vars: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_with(self.db.url(), &self.slack, None, vars).await
    }
}

// ---------------------------------------------------------------------------------------------
// The catalog and requests used by the stories.

pub const REQUESTER: &str = "UREQUESTER";
pub const APPROVER: &str = "UAPPROVER";
pub const ADMIN1: &str = "UADMIN1";
pub const ADMIN2: &str = "UADMIN2";
pub const ADMIN_CHANNEL: &str = "CADMINS";
pub const OUTSIDER: &str = "UOUTSIDER";

/// GitHub: one approver, two admins, an admin channel.
pub fn github() -> Value {
    json!({
        "name": "GitHub",
        "admins": [ADMIN1, ADMIN2],
        "approvers": [APPROVER],
        "permissions": ["Member", "Admin"],
        "groups": ["eng", "ops", "design"],
        "admin_channel": ADMIN_CHANNEL,
    })
}

/// GitHub without approvers: requests start in provisioning.
pub fn github_without_approvers() -> Value {
    let mut app = github();
    app["approvers"] = json!([]);
    app
}

/// Puts `app` in the catalog as `slug`.
pub async fn put_app(app: &TestApp, slug: &str, body: Value) {
    let (status, answer) = app.put_app(slug, body).await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "PUT app {slug}: {status} {answer}"
    );
}

/// Files a request for `slug` by [`REQUESTER`] for themself; returns (id, request).
pub async fn file(app: &TestApp, slug: &str, extra: Value) -> (String, Value) {
    let mut body = json!({"app": slug, "target_user": REQUESTER, "comment": "For the release"});
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            body[key] = value;
        }
    }
    let request = app.file_request(body).await;
    (id_of(&request), request)
}

/// A request's id as a number (the API answers it as one).
pub fn number_of(request: &Value) -> i64 {
    request["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("request without a numeric id: {request}"))
}

/// A request's id as the API paths want it.
pub fn id_of(request: &Value) -> String {
    match &request["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => panic!("request without id: {other} in {request}"),
    }
}

/// The audit trail of a request.
pub async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = app.api_get(&format!("/api/v1/requests/{id}/events")).await;
    assert_eq!(status, StatusCode::OK, "events of {id}: {body}");
    body.as_array().cloned().unwrap_or_default()
}

/// (kind, actor) of each audit entry, oldest first.
pub async fn event_kinds(app: &TestApp, id: &str) -> Vec<(String, String)> {
    events(app, id)
        .await
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_string(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `GET /api/v1/deliveries?status=failed`.
pub async fn failed_deliveries(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.api_get("/api/v1/deliveries?status=failed").await;
    assert_eq!(status, StatusCode::OK, "failed deliveries: {body}");
    body.as_array()
        .cloned()
        .unwrap_or_else(|| panic!("failed deliveries are a list: {body}"))
}

/// Sends `body` as is to the API with the bearer token (for malformed JSON and huge bodies).
pub async fn api_post_raw(app: &TestApp, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(TEST_API_TOKEN)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

// ---------------------------------------------------------------------------------------------
// Metrics.

/// The value of one sample of `/metrics`, e.g. `accessbot_slack_calls_waiting` or
/// `accessbot_slack_calls_total{method="chat.postMessage",outcome="failed"}`; 0 when absent.
pub async fn metric(app: &TestApp, sample: &str) -> f64 {
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK, "/metrics: {text}");
    sample_value(&text, sample)
}

/// The value of `sample` in a Prometheus text exposition; 0 when absent.
pub fn sample_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().unwrap_or(f64::NAN))
        })
        .unwrap_or(0.0)
}

/// Waits until the app has no Slack call left to make (so nothing more can arrive).
pub async fn wait_until_idle(app: &TestApp) {
    eventually("the outbox to drain", || async {
        metric(app, "accessbot_slack_calls_waiting").await == 0.0
    })
    .await;
}

/// Polls `check` until it holds (for state only the app's API can show); panics after
/// [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "gave up waiting for {what} after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Cards as the fake Slack holds them.

/// A card the bot posted: where it is, and what it showed when it was found.
#[derive(Debug, Clone)]
pub struct Card {
    pub channel: String,
    pub ts: String,
    pub message: Value,
}

impl Card {
    /// The card as the fake holds it now (after updates).
    pub fn reload(&self, slack: &FakeSlack) -> Card {
        let message = slack
            .message(&self.channel, &self.ts)
            .unwrap_or_else(|| panic!("card {} {} vanished", self.channel, self.ts));
        Card {
            message,
            ..self.clone()
        }
    }

    pub fn text(&self) -> String {
        all_text(&self.message)
    }

    /// (label, action_id, style) of its buttons.
    pub fn buttons(&self) -> Vec<(String, String, String)> {
        buttons(&self.message)
    }

    pub fn has_actions(&self) -> bool {
        has_actions(&self.message)
    }

    /// The message as the fake holds it now.
    pub fn now(&self, slack: &FakeSlack) -> Value {
        slack
            .message(&self.channel, &self.ts)
            .unwrap_or_else(|| panic!("no message {} {}", self.channel, self.ts))
    }

    /// The texts of the replies in its thread, oldest first.
    pub fn replies(&self, slack: &FakeSlack) -> Vec<String> {
        slack
            .thread_replies(&self.channel, &self.ts)
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Whether the message as the fake holds it now has any actions block left.
    pub fn has_buttons(&self, slack: &FakeSlack) -> bool {
        has_actions(&self.now(slack))
    }

    /// The whole message as the fake holds it now (fallback and blocks), as one string.
    pub fn text_now(&self, slack: &FakeSlack) -> String {
        self.now(slack).to_string()
    }
}

/// Whether a message is a request card (cards and receipts open with a header block).
pub fn is_card(message: &Value) -> bool {
    message["blocks"]
        .as_array()
        .and_then(|blocks| blocks.first())
        .is_some_and(|first| first["type"] == "header")
}

/// The cards (top-level, with a header) in the conversation of `recipient` (a user id
/// means the bot's DM with them), oldest first.
pub fn cards_in(slack: &FakeSlack, recipient: &str) -> Vec<Card> {
    let channel = conversation_of(slack, recipient);
    slack
        .top_level_messages_in(recipient)
        .into_iter()
        .filter(is_card)
        .map(|message| Card {
            channel: channel.clone(),
            ts: message["ts"].as_str().unwrap_or_default().to_string(),
            message,
        })
        .collect()
}

/// Where the bot's messages to `recipient` land.
pub fn conversation_of(slack: &FakeSlack, recipient: &str) -> String {
    if recipient.starts_with('U') || recipient.starts_with('W') {
        slack.dm_channel_of(recipient)
    } else {
        recipient.to_string()
    }
}

/// Waits for the (last) card posted to `recipient`.
pub async fn card_of(slack: &FakeSlack, recipient: &str) -> Card {
    wait_for_card(slack, recipient, |_| true).await
}

/// Waits for the (last) card posted to `recipient` that has the button `action_id`.
pub async fn card_with_button(slack: &FakeSlack, recipient: &str, action_id: &str) -> Card {
    wait_for_card(slack, recipient, |card| {
        card.buttons().iter().any(|(_, id, _)| id == action_id)
    })
    .await
}

/// Waits for the last card posted to `recipient` that satisfies `condition`.
pub async fn wait_for_card<F>(slack: &FakeSlack, recipient: &str, condition: F) -> Card
where
    F: Fn(&Card) -> bool,
{
    let found = || cards_in(slack, recipient).into_iter().rfind(&condition);
    if let Err(timeout) = slack.wait_for(|_| found().is_some(), PATIENCE).await {
        panic!("no matching card for {recipient}: {timeout}");
    }
    found().expect("condition held")
}

/// Waits until the card at (`channel`, `ts`) satisfies `condition`; returns it then.
pub async fn wait_card_until<F>(slack: &FakeSlack, card: &Card, what: &str, condition: F) -> Card
where
    F: Fn(&Card) -> bool,
{
    if let Err(timeout) = slack
        .wait_for(|_| condition(&card.reload(slack)), PATIENCE)
        .await
    {
        panic!(
            "the card {} {} never got to {what}; it is {}\n{timeout}",
            card.channel,
            card.ts,
            card.reload(slack).message
        );
    }
    card.reload(slack)
}

/// Waits until the card has no actions block (it was decided), returns it then.
pub async fn wait_no_actions(slack: &FakeSlack, card: &Card) -> Card {
    wait_card_until(slack, card, "have no buttons", |c| !c.has_actions()).await
}

/// Waits for a DM to `user` (any message, cards included) whose text contains `needle`
/// (case-insensitively).
pub async fn dm_containing(slack: &FakeSlack, user: &str, needle: &str) -> Value {
    let needle = needle.to_lowercase();
    let found = || {
        slack
            .dms_to(user)
            .into_iter()
            .find(|m| all_text(m).to_lowercase().contains(&needle))
    };
    if let Err(timeout) = slack.wait_for(|_| found().is_some(), PATIENCE).await {
        panic!(
            "no DM to {user} containing {needle:?}; DMs: {:#?}\n{timeout}",
            slack.dms_to(user)
        );
    }
    found().expect("condition held")
}

/// Waits for an ephemeral message to `user`; returns the newest.
pub async fn ephemeral_for(slack: &FakeSlack, user: &str, count: usize) -> Value {
    if let Err(timeout) = slack
        .wait_for(|_| slack.ephemerals_for(user).len() >= count, PATIENCE)
        .await
    {
        panic!("no ephemeral message #{count} for {user}: {timeout}");
    }
    slack
        .ephemerals_for(user)
        .pop()
        .expect("an ephemeral message")
}

/// Waits for the `count`-th `views.open` call answered ok; returns the modal as the fake holds it.
pub async fn opened_modal(slack: &FakeSlack, count: usize) -> Value {
    let calls = slack
        .wait_for_ok_calls("views.open", count)
        .await
        .unwrap_or_else(|timeout| panic!("no views.open #{count}: {timeout}"));
    let id = calls[count - 1].response["view"]["id"]
        .as_str()
        .expect("views.open answers the view's id")
        .to_string();
    slack.view(&id).expect("the fake keeps the view")
}

/// Every string under a `text` key of a message or view, and its top-level text, joined.
pub fn all_text(value: &Value) -> String {
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, inner) in object {
                    match inner {
                        Value::String(text) if key == "text" => out.push(text.clone()),
                        _ => collect(inner, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    collect(value, &mut out);
    out.join("\n")
}

/// (label, action_id, style) of each button of a message's actions blocks.
pub fn buttons(message: &Value) -> Vec<(String, String, String)> {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "actions")
        .flat_map(|block| block["elements"].as_array().cloned().unwrap_or_default())
        .map(|element| {
            (
                element["text"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                element["action_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                element["style"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The button `action_id` of a message, as JSON.
pub fn button<'a>(message: &'a Value, action_id: &str) -> Option<&'a Value> {
    message["blocks"]
        .as_array()?
        .iter()
        .filter(|block| block["type"] == "actions")
        .flat_map(|block| block["elements"].as_array().into_iter().flatten())
        .find(|element| element["action_id"] == action_id)
}

/// Whether a message still has an actions block.
pub fn has_actions(message: &Value) -> bool {
    message["blocks"]
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "actions"))
}

/// The labels of a message's buttons.
pub fn labels(message: &Value) -> Vec<String> {
    buttons(message)
        .into_iter()
        .map(|(label, _, _)| label)
        .collect()
}

/// How many ok `chat.postMessage` calls went to `recipient`'s conversation as top-level cards.
pub fn cards_posted_to(slack: &FakeSlack, recipient: &str) -> usize {
    let channel = conversation_of(slack, recipient);
    slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|call| {
            call.response["channel"] == channel.as_str()
                && call.arg("thread_ts").is_none()
                && is_card(&call.response["message"])
        })
        .count()
}
