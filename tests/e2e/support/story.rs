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
//!
//! Everything a story uses is here, re-exported: the people of the stories (`people`) and
//! the cards, DMs and modals the fake Slack holds with the waits for them (`cards`).
#![allow(dead_code)]

mod cards;
mod people;

pub use cards::*;
pub use people::*;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accessbot::clock::ManualClock;
use accessbot::store::Store;
use chrono::{DateTime, TimeZone, Utc};
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

    /// The app with its background loops on a manual clock at [`t0`], with extra variables
    /// (`""` removes one): time moves when the story advances it.
    pub async fn spawn_at_t0(&self, vars: &[(&str, &str)]) -> TestApp {
        let clock = Arc::new(ManualClock::new(t0()));
        TestApp::spawn_with(self.db.url(), &self.slack, Some(clock), vars).await
    }
}

/// Where the manual clock of timed stories starts.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The catalog and requests used by the stories (the people are in `people`).

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

/// Figma with [`ADMIN1`] as admin, [`APPROVER`] as approver (when `approved`) and
/// [`ADMIN_CHANNEL`] (when `channel`).
pub fn figma(approved: bool, channel: bool) -> Value {
    json!({
        "name": "Figma",
        "admins": [ADMIN1],
        "approvers": if approved { vec![APPROVER] } else { vec![] },
        "permissions": ["Member", "Admin"],
        "groups": ["design", "eng"],
        "admin_channel": if channel { json!(ADMIN_CHANNEL) } else { Value::Null },
    })
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

/// What [`file`] adds to file a request by [`REQUESTER`] for themself for `access_length`.
pub fn asking_for(access_length: &str) -> Value {
    json!({
        "target_user": REQUESTER,
        "comment": "for the launch",
        "access_length": access_length,
    })
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

/// The kinds of the audit trail of request `id`, oldest first.
pub async fn audit_kinds(app: &TestApp, id: i64) -> Vec<String> {
    let (status, body) = app.api_get(&format!("/api/v1/requests/{id}/events")).await;
    assert_eq!(status, 200, "events of {id}: {body}");
    body.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The status of request `id` through the API.
pub async fn status_of(app: &TestApp, id: i64) -> String {
    app.request(&id.to_string()).await["status"]
        .as_str()
        .expect("a status")
        .to_string()
}

/// `GET /api/v1/requests/{id}/thread`.
pub async fn thread_of(app: &TestApp, id: i64) -> Vec<Value> {
    let (status, body) = app.api_get(&format!("/api/v1/requests/{id}/thread")).await;
    assert_eq!(status, 200, "thread of {id}: {body}");
    body.as_array().expect("a list").clone()
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

/// For an app with its background loops: returns once every Slack call it stored before now
/// has been attempted. A Home published for [`OUTSIDER`] is delivered after them (the worker
/// finishes a batch before it claims the next). A card seen in the fake may not be recorded
/// as posted yet; after this it is. (A stepped app calls [`TestApp::settle`] instead.)
pub async fn wait_for_worker(app: &TestApp) {
    let published = |s: &FakeSlack| {
        s.ok_calls_to("views.publish")
            .iter()
            .filter(|c| c.arg("user_id") == Some(OUTSIDER))
            .count()
    };
    let before = published(&app.slack);
    let (status, body) = app.open_home(OUTSIDER).await;
    assert_eq!(status, 200, "app_home_opened: {body}");
    wait_for_state(&app.slack, "the worker to settle", |s| {
        published(s) > before
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
