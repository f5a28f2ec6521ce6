//! The real accessbot, built the way `main` builds it, serving on loopback against a fake
//! Slack and a test database; plus a client that speaks its HTTP API and signs Slack's requests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use accessbot::app::{HttpLimits, Stepped, Stepper, Stopped};
use accessbot::clock::{Clock, ManualClock, SystemClock};
use accessbot::Config;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::fake_slack::{FakeSlack, DEFAULT_BOT_TOKEN};
use super::signer::{self, ButtonClick, COMMAND, FORM, JSON, TEST_SIGNING_SECRET};

/// The bearer token of the HTTP API in tests.
pub const TEST_API_TOKEN: &str = "e2e-api-token";
/// How long one HTTP call to the app may take before the test fails.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Which time the Slack signatures carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningTime {
    /// The app's clock (a `ManualClock` when given): the simulated "now" Slack would send.
    AppClock,
    /// The machine's clock.
    System,
}

/// A running accessbot.
pub struct TestApp {
    /// Where the app listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub db_url: String,
    /// The fake Slack the app talks to.
    pub slack: FakeSlack,
    /// The clock the app was given.
    pub clock: Arc<dyn Clock>,
    /// The same clock when it is a manual one.
    pub manual_clock: Option<Arc<ManualClock>>,
    /// The variables the configuration was built from.
    pub vars: HashMap<String, String>,
    /// What time signatures carry; [`SigningTime::AppClock`] unless changed.
    pub signing_time: SigningTime,
    /// Set when the app runs without its background loops: [`TestApp::step`] drives them.
    stepper: Option<Stepper>,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<Stopped>>>,
}

/// The configuration variables of a test app, before extras.
pub fn test_vars(db_url: &str, slack: &FakeSlack) -> HashMap<String, String> {
    [
        ("DATABASE_URL", db_url.to_string()),
        ("SLACK_BOT_TOKEN", DEFAULT_BOT_TOKEN.to_string()),
        ("SLACK_SIGNING_SECRET", TEST_SIGNING_SECRET.to_string()),
        ("SLACK_API_URL", slack.api_url()),
        ("ACCESSBOT_API_TOKEN", TEST_API_TOKEN.to_string()),
        ("ACCESSBOT_ADDR", "127.0.0.1:0".to_string()),
        ("ACCESSBOT_PUBLIC_URL", "http://accessbot.test".to_string()),
        ("ACCESSBOT_SCHEDULER_INTERVAL", "50ms".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The test variables with `extra` set over them; a variable set to `""` is removed.
fn vars_with(db_url: &str, slack: &FakeSlack, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars = test_vars(db_url, slack);
    for (name, value) in extra {
        if value.is_empty() {
            vars.remove(*name);
        } else {
            vars.insert(name.to_string(), value.to_string());
        }
    }
    vars
}

impl TestApp {
    /// Starts the app on `db_url` against `slack`, with the system clock.
    pub async fn spawn(db_url: &str, slack: &FakeSlack) -> TestApp {
        Self::spawn_with(db_url, slack, None, &[]).await
    }

    /// Starts the app with a manual clock.
    pub async fn spawn_with_clock(
        db_url: &str,
        slack: &FakeSlack,
        clock: Arc<ManualClock>,
    ) -> TestApp {
        Self::spawn_with(db_url, slack, Some(clock), &[]).await
    }

    /// Starts the app with an optional manual clock and extra (or overriding) variables; a
    /// variable set to `""` is removed.
    pub async fn spawn_with(
        db_url: &str,
        slack: &FakeSlack,
        clock: Option<Arc<ManualClock>>,
        extra_vars: &[(&str, &str)],
    ) -> TestApp {
        let vars = vars_with(db_url, slack, extra_vars);
        Self::spawn_from_vars(db_url, slack, clock, vars, false).await
    }

    /// Starts the app on a clock of the test's own, with extra (or overriding) variables.
    pub async fn spawn_on_clock(
        db_url: &str,
        slack: &FakeSlack,
        clock: Arc<dyn Clock>,
        extra_vars: &[(&str, &str)],
    ) -> TestApp {
        let vars = vars_with(db_url, slack, extra_vars);
        Self::start(db_url, slack, clock, None, vars, false, None).await
    }

    /// Starts the app on the system clock with HTTP bounds other than the real ones, so a
    /// test does not wait out the real timeouts.
    pub async fn spawn_with_http_limits(
        db_url: &str,
        slack: &FakeSlack,
        limits: HttpLimits,
    ) -> TestApp {
        let vars = vars_with(db_url, slack, &[]);
        Self::start(
            db_url,
            slack,
            Arc::new(SystemClock),
            None,
            vars,
            false,
            Some(limits),
        )
        .await
    }

    /// Starts the app on a manual clock and without its background loops: the scheduler and
    /// the delivery worker do nothing until [`TestApp::step`], so a story knows when the
    /// work it started is over (and time moves only when it says so).
    pub async fn spawn_stepped(
        db_url: &str,
        slack: &FakeSlack,
        clock: Arc<ManualClock>,
        extra_vars: &[(&str, &str)],
    ) -> TestApp {
        let vars = vars_with(db_url, slack, extra_vars);
        Self::spawn_from_vars(db_url, slack, Some(clock), vars, true).await
    }

    async fn spawn_from_vars(
        db_url: &str,
        slack: &FakeSlack,
        manual_clock: Option<Arc<ManualClock>>,
        vars: HashMap<String, String>,
        stepped: bool,
    ) -> TestApp {
        let clock: Arc<dyn Clock> = match &manual_clock {
            Some(manual) => manual.clone(),
            None => Arc::new(SystemClock),
        };
        Self::start(db_url, slack, clock, manual_clock, vars, stepped, None).await
    }

    async fn start(
        db_url: &str,
        slack: &FakeSlack,
        clock: Arc<dyn Clock>,
        manual_clock: Option<Arc<ManualClock>>,
        vars: HashMap<String, String>,
        stepped: bool,
        http_limits: Option<HttpLimits>,
    ) -> TestApp {
        let config = Config::from_vars(&vars).unwrap_or_else(|e| panic!("test config: {e}"));
        let mut app = match accessbot::App::build(config, clock.clone()).await {
            Ok(app) => app,
            Err(error) => panic!("accessbot failed to start: {error:?}"),
        };
        if let Some(limits) = http_limits {
            app.set_http_limits(limits);
        }
        let stepper = if stepped { app.stepper() } else { None };
        let addr = app.local_addr();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .expect("HTTP client");
        TestApp {
            addr,
            base_url: format!("http://{addr}"),
            db_url: db_url.to_string(),
            slack: slack.clone(),
            clock,
            manual_clock,
            vars,
            signing_time: SigningTime::AppClock,
            stepper,
            http,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Signals shutdown and waits until the app has drained and stopped.
    pub async fn stop(mut self) {
        self.shutdown_and_wait().await;
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let stopped = self.stopped().await;
        assert_eq!(stopped, Some(Stopped::OnRequest), "why accessbot stopped");
    }

    /// Waits, without asking it to, until the app stops; says why it did.
    pub async fn stops_by_itself(mut self) -> Stopped {
        self.stopped().await.expect("the app was running")
    }

    async fn stopped(&mut self) -> Option<Stopped> {
        let task = self.task.take()?;
        match tokio::time::timeout(HTTP_TIMEOUT, task).await {
            Ok(Ok(Ok(stopped))) => Some(stopped),
            Ok(Ok(Err(error))) => panic!("accessbot stopped with an error: {error}"),
            Ok(Err(join_error)) => panic!("accessbot panicked: {join_error}"),
            Err(_) => panic!("accessbot did not stop within {HTTP_TIMEOUT:?}"),
        }
    }

    /// Stops the app and starts it again on the same database, fake Slack, clock and variables
    /// (it listens on a new port).
    pub async fn restart(mut self) -> TestApp {
        self.shutdown_and_wait().await;
        let mut vars = self.vars.clone();
        vars.insert("ACCESSBOT_ADDR".into(), "127.0.0.1:0".into());
        let stepped = self.stepper.is_some();
        let mut app = Self::spawn_from_vars(
            &self.db_url,
            &self.slack,
            self.manual_clock.clone(),
            vars,
            stepped,
        )
        .await;
        app.signing_time = self.signing_time;
        app
    }

    /// Moves the manual clock forward (panics when the app runs on the system clock).
    pub fn advance(&self, by: chrono::Duration) {
        self.manual_clock
            .as_ref()
            .expect("advance needs an app spawned with a ManualClock")
            .advance(by);
    }

    /// The app's clock now.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Sets the manual clock to `now`, runs the scheduler once and makes every Slack call due
    /// by then; returns when they have all been answered. Only for [`TestApp::spawn_stepped`].
    pub async fn step(&self, now: DateTime<Utc>) -> Stepped {
        let stepper = self
            .stepper
            .as_ref()
            .expect("step needs an app spawned with spawn_stepped");
        self.manual_clock
            .as_ref()
            .expect("a stepped app has a manual clock")
            .set(now);
        stepper
            .step()
            .await
            .unwrap_or_else(|error| panic!("step at {now}: {error}"))
    }

    /// [`TestApp::step`] without moving the clock.
    pub async fn settle(&self) -> Stepped {
        self.step(self.now()).await
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        read(response).await
    }

    /// `GET` on the HTTP API with the bearer token.
    pub async fn api_get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None, Some(TEST_API_TOKEN), &[])
            .await
    }

    /// `GET` on the HTTP API with the bearer token, with the answer's headers (e.g. the
    /// `Link` to a list's next page).
    pub async fn api_get_with_headers(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(TEST_API_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let headers = response.headers().clone();
        let (status, body) = read(response).await;
        (status, headers, body)
    }

    /// `PUT` JSON on the HTTP API with the bearer token.
    pub async fn api_put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(&body), Some(TEST_API_TOKEN), &[])
            .await
    }

    /// `POST` JSON on the HTTP API with the bearer token.
    pub async fn api_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(&body), Some(TEST_API_TOKEN), &[])
            .await
    }

    /// `POST` JSON with the bearer token and extra headers (e.g. `Idempotency-Key`).
    pub async fn api_post_with_headers(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            path,
            Some(&body),
            Some(TEST_API_TOKEN),
            headers,
        )
        .await
    }

    /// `GET` without authentication (health, metrics, or API auth tests).
    pub async fn raw_get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None, None, &[]).await
    }

    /// `PUT` JSON without authentication.
    pub async fn raw_put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(&body), None, &[]).await
    }

    /// `POST` JSON without authentication.
    pub async fn raw_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(&body), None, &[]).await
    }

    /// Any request with any bearer token (`None`: no `Authorization` header).
    pub async fn request_with_token(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        self.send(method, path, body.as_ref(), token, &[]).await
    }

    /// `GET` returning the body as text (e.g. `/metrics`).
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// The Unix time Slack's signatures carry now (see [`SigningTime`]).
    pub fn slack_timestamp(&self) -> i64 {
        match self.signing_time {
            SigningTime::AppClock => self.clock.now().timestamp(),
            SigningTime::System => signer::unix_now(),
        }
    }

    /// POSTs `body` to `path` as Slack would: signed with the test secret, unless a timestamp
    /// or signature is forced (`Some("")` as signature sends no signature header at all).
    pub async fn post_signed_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        timestamp_override: Option<i64>,
        signature_override: Option<&str>,
    ) -> (StatusCode, Value) {
        self.post_signed_with_headers(
            path,
            content_type,
            body,
            timestamp_override,
            signature_override,
            &[],
        )
        .await
    }

    async fn post_signed_with_headers(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        timestamp_override: Option<i64>,
        signature_override: Option<&str>,
        extra: &[(&str, String)],
    ) -> (StatusCode, Value) {
        let timestamp = timestamp_override.unwrap_or_else(|| self.slack_timestamp());
        let signature = match signature_override {
            Some(forced) => forced.to_string(),
            None => signer::sign(TEST_SIGNING_SECRET, timestamp, body),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("content type"),
        );
        headers.insert(
            "x-slack-request-timestamp",
            HeaderValue::from_str(&timestamp.to_string()).expect("digits"),
        );
        if !signature.is_empty() {
            headers.insert(
                "x-slack-signature",
                HeaderValue::from_str(&signature).expect("signature header"),
            );
        }
        for (name, value) in extra {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let response = self
            .http
            .post(self.url(path))
            .headers(headers)
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        read(response).await
    }

    /// POSTs a body with no Slack headers at all.
    pub async fn post_unsigned(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        read(response).await
    }

    /// Sends an interaction payload (block_actions, view_submission, view_closed) to
    /// `/slack/interactivity`, form-encoded and signed.
    pub async fn slack_interactivity(&self, payload: &Value) -> (StatusCode, Value) {
        let body = signer::interactivity_form(payload);
        self.post_signed_raw("/slack/interactivity", FORM, &body, None, None)
            .await
    }

    /// Sends an Events API envelope to `/slack/events`, signed.
    pub async fn slack_event(&self, envelope: &Value) -> (StatusCode, Value) {
        self.post_signed_raw("/slack/events", JSON, &envelope.to_string(), None, None)
            .await
    }

    /// Sends the same envelope again as Slack's retry number `retry_num` would.
    pub async fn slack_event_retry(&self, envelope: &Value, retry_num: u32) -> (StatusCode, Value) {
        let extra = [
            ("x-slack-retry-num", retry_num.to_string()),
            ("x-slack-retry-reason", "http_timeout".to_string()),
        ];
        self.post_signed_with_headers(
            "/slack/events",
            JSON,
            &envelope.to_string(),
            None,
            None,
            &extra,
        )
        .await
    }

    /// Sends slash command form fields to `/slack/commands`, URL-encoded and signed.
    pub async fn slack_command<K: AsRef<str>, V: AsRef<str>>(
        &self,
        fields: &[(K, V)],
    ) -> (StatusCode, Value) {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        let body = signer::form(&pairs);
        self.post_signed_raw("/slack/commands", FORM, &body, None, None)
            .await
    }

    /// `user` types `/access <text>` in `channel`.
    pub async fn slash_access(&self, user: &str, channel: &str, text: &str) -> (StatusCode, Value) {
        self.slack_command(&signer::slash_command(user, channel, COMMAND, text))
            .await
    }

    /// `PUT /api/v1/apps/{slug}`.
    pub async fn put_app(&self, slug: &str, app: Value) -> (StatusCode, Value) {
        self.api_put(&format!("/api/v1/apps/{slug}"), app).await
    }

    /// `POST /api/v1/requests`, which must answer 201; returns the request.
    pub async fn file_request(&self, request: Value) -> Value {
        let (status, body) = self.api_post("/api/v1/requests", request.clone()).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "filing {request} answered {body}"
        );
        body
    }

    /// `GET /api/v1/requests/{id}`, which must answer 200.
    pub async fn request(&self, id: &str) -> Value {
        let (status, body) = self.api_get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(status, StatusCode::OK, "request {id}: {body}");
        body
    }

    /// `user` clicks the button `action_id` on the card at (`card_channel`, `card_ts`).
    /// The click carries the button's real block_id and value when the fake has the card
    /// with that button, and `request_id` as the value otherwise (e.g. a stale card).
    pub async fn click(
        &self,
        user: &str,
        action_id: &str,
        request_id: &str,
        card_channel: &str,
        card_ts: &str,
    ) -> (StatusCode, Value) {
        let card = self.slack.message(card_channel, card_ts);
        let button = card
            .as_ref()
            .and_then(|card| ButtonClick::find_in(card, action_id))
            .unwrap_or_else(|| ButtonClick::new(action_id, "actions", request_id, action_id));
        let payload =
            signer::block_actions_in_message(user, card_channel, card_ts, card.as_ref(), &button);
        self.slack_interactivity(&payload).await
    }

    /// `user` clicks the button `action_id` in their App Home (as last published).
    pub async fn click_in_home(&self, user: &str, action_id: &str) -> (StatusCode, Value) {
        let home = self
            .slack
            .home_of(user)
            .unwrap_or_else(|| panic!("no Home view published for {user}"));
        let button = ButtonClick::find_in(&home, action_id)
            .unwrap_or_else(|| panic!("no button {action_id} in the Home of {user}: {home}"));
        self.slack_interactivity(&signer::block_actions_in_view(user, &home, &button))
            .await
    }

    /// `user` submits the view `view_id` (as the fake holds it) with `values` as
    /// `state.values` (`{block_id: {action_id: value}}`, see `signer::text_value` & co).
    pub async fn submit_view(
        &self,
        user: &str,
        view_id: &str,
        values: Value,
    ) -> (StatusCode, Value) {
        let view = self
            .slack
            .view(view_id)
            .unwrap_or_else(|| panic!("the fake has no view {view_id}"));
        self.slack_interactivity(&signer::view_submission(user, &view, values))
            .await
    }

    /// `user` closes the view `view_id`.
    pub async fn close_view(&self, user: &str, view_id: &str) -> (StatusCode, Value) {
        let view = self
            .slack
            .view(view_id)
            .unwrap_or_else(|| panic!("the fake has no view {view_id}"));
        self.slack_interactivity(&signer::view_closed(user, &view))
            .await
    }

    /// `user` writes `text` in the thread of (`channel`, `thread_ts`): the message is stored in
    /// the fake as Slack would, then the event is delivered. Returns the new message's ts and
    /// the app's answer.
    pub async fn reply_in_thread(
        &self,
        user: &str,
        channel: &str,
        thread_ts: &str,
        text: &str,
    ) -> (String, StatusCode) {
        let ts = self
            .slack
            .add_user_message(channel, user, text, Some(thread_ts));
        let event = signer::user_message_event(
            channel,
            channel_type(channel),
            user,
            text,
            &ts,
            Some(thread_ts),
        );
        let (status, _) = self.slack_event(&signer::event_callback(event)).await;
        (ts, status)
    }

    /// `user` edits their reply `ts` in the thread `thread_ts` to `text`, in the fake and
    /// as Slack tells the bot (`message_changed`).
    pub async fn edit_reply(
        &self,
        user: &str,
        channel: &str,
        (thread_ts, ts): (&str, &str),
        text: &str,
    ) -> StatusCode {
        let before = self
            .slack
            .message(channel, ts)
            .and_then(|m| m["text"].as_str().map(str::to_string))
            .unwrap_or_default();
        let edit_ts = self.slack.edit_user_message(channel, ts, text);
        let event = signer::message_changed_event(
            channel,
            channel_type(channel),
            user,
            ts,
            thread_ts,
            (&before, text),
            &edit_ts,
        );
        self.slack_event(&signer::event_callback(event)).await.0
    }

    /// `user` deletes their reply `ts` in the thread `thread_ts`, in the fake and as Slack
    /// tells the bot (`message_deleted`).
    pub async fn delete_reply(
        &self,
        user: &str,
        channel: &str,
        (thread_ts, ts): (&str, &str),
    ) -> StatusCode {
        let text = self
            .slack
            .message(channel, ts)
            .and_then(|m| m["text"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.slack.delete_user_message(channel, ts);
        let delete_ts = self.slack.next_ts();
        let event = signer::message_deleted_event(
            channel,
            channel_type(channel),
            user,
            ts,
            thread_ts,
            &text,
            &delete_ts,
        );
        self.slack_event(&signer::event_callback(event)).await.0
    }

    /// `user` opens the bot's Home tab.
    pub async fn open_home(&self, user: &str) -> (StatusCode, Value) {
        let view = self.slack.home_of(user);
        let event = signer::app_home_opened_event(user, "home", view.as_ref());
        self.slack_event(&signer::event_callback(event)).await
    }

    /// Slack's `url_verification` handshake.
    pub async fn verify_url(&self, challenge: &str) -> (StatusCode, Value) {
        self.slack_event(&signer::url_verification(challenge)).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that forgot `stop()` (or panicked) still ends the app's serving task.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Status and body; the body as JSON when it is JSON, as a JSON string otherwise, `Null` when empty.
async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// An app for the catalog with one admin, one approver and the usual permissions.
pub fn sample_app(admin: &str, approver: Option<&str>) -> Value {
    json!({
        "name": "Figma",
        "admins": [admin],
        "approvers": approver.map(|a| vec![a]).unwrap_or_default(),
        "permissions": ["Member", "Admin"],
        "groups": ["design", "eng"],
        "admin_channel": null,
    })
}

/// The `channel_type` Slack gives events in `channel`.
fn channel_type(channel: &str) -> &'static str {
    match channel.chars().next() {
        Some('D') => "im",
        Some('G') => "group",
        _ => "channel",
    }
}
