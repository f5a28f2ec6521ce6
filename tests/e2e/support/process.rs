//! The real `accessbot` binary as a child process, configured only through its environment,
//! with its output captured; a client that speaks to it as Slack and the API would; and a
//! look into the database behind it (for what no endpoint shows, such as leases).
#![allow(dead_code)]

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::fake_slack::{FakeSlack, DEFAULT_BOT_TOKEN};
use super::signer::{self, ButtonClick, FORM, JSON, TEST_SIGNING_SECRET};
use super::story::{id_of, sample_value, Card, PATIENCE};
use super::test_app::TEST_API_TOKEN;

/// How long the binary may take to answer `/healthz` after it was started.
const STARTUP: Duration = Duration::from_secs(10);

/// The secrets a process is started with.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub bot_token: String,
    pub signing_secret: String,
    pub api_token: String,
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets {
            bot_token: DEFAULT_BOT_TOKEN.into(),
            signing_secret: TEST_SIGNING_SECRET.into(),
            api_token: TEST_API_TOKEN.into(),
        }
    }
}

/// A free port on loopback (bound, read and released; another process could take it first,
/// which only makes the start fail loudly).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on loopback")
        .port()
}

/// A running `accessbot` binary.
pub struct AppProcess {
    pub base_url: String,
    pub db_url: String,
    pub secrets: Secrets,
    child: Child,
    output: Captured,
    http: reqwest::Client,
}

/// What the process writes, copied by one reader per stream until the stream closes.
struct Captured {
    text: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Captured {
    fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Everything, once both streams are closed (the process has exited): the readers
    /// copy the last lines after the exit is seen.
    async fn complete(&mut self) -> String {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        self.text()
    }
}

/// The process, not started yet: its command line and what it will log.
struct Prepared {
    command: Command,
    base_url: String,
}

fn prepare(db_url: &str, slack: &FakeSlack, secrets: &Secrets, extra: &[(&str, &str)]) -> Prepared {
    prepare_in(&std::env::temp_dir(), db_url, slack, secrets, extra)
}

fn prepare_in(
    dir: &Path,
    db_url: &str,
    slack: &FakeSlack,
    secrets: &Secrets,
    extra: &[(&str, &str)],
) -> Prepared {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_accessbot"));
    command
        // Only what the test gives: no DATABASE_URL of the developer, no `.env` of the repo.
        .env_clear()
        .current_dir(dir)
        .env("DATABASE_URL", db_url)
        .env("SLACK_BOT_TOKEN", &secrets.bot_token)
        .env("SLACK_SIGNING_SECRET", &secrets.signing_secret)
        .env("SLACK_API_URL", slack.api_url())
        .env("ACCESSBOT_API_TOKEN", &secrets.api_token)
        .env("ACCESSBOT_ADDR", &addr)
        .env("ACCESSBOT_PUBLIC_URL", "http://accessbot.test")
        .env("ACCESSBOT_SCHEDULER_INTERVAL", "100ms")
        .env("RUST_LOG", "debug")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Prepared {
        command,
        base_url: format!("http://{addr}"),
    }
}

/// Copies each line of `stream` into `output` until the stream closes.
fn capture(
    stream: impl AsyncRead + Unpin + Send + 'static,
    output: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut output = output.lock().unwrap_or_else(|p| p.into_inner());
            output.push_str(&line);
            output.push('\n');
        }
    })
}

fn spawn_captured(mut prepared: Prepared) -> (Child, Captured, String) {
    let mut child = prepared
        .command
        .spawn()
        .expect("start the accessbot binary");
    let text = Arc::new(Mutex::new(String::new()));
    let readers = vec![
        capture(child.stdout.take().expect("piped stdout"), text.clone()),
        capture(child.stderr.take().expect("piped stderr"), text.clone()),
    ];
    (child, Captured { text, readers }, prepared.base_url)
}

impl AppProcess {
    /// Starts the binary with the test secrets; returns once `/healthz` answers.
    pub async fn start(db_url: &str, slack: &FakeSlack) -> AppProcess {
        Self::start_with(db_url, slack, Secrets::default(), &[]).await
    }

    /// Starts the binary with `secrets` and extra (or overriding) variables.
    pub async fn start_with(
        db_url: &str,
        slack: &FakeSlack,
        secrets: Secrets,
        extra: &[(&str, &str)],
    ) -> AppProcess {
        Self::start_prepared(prepare(db_url, slack, &secrets, extra), db_url, secrets).await
    }

    /// Starts the binary in the working directory `dir`, with extra (or overriding) variables.
    pub async fn start_in(
        dir: &Path,
        db_url: &str,
        slack: &FakeSlack,
        extra: &[(&str, &str)],
    ) -> AppProcess {
        let secrets = Secrets::default();
        let prepared = prepare_in(dir, db_url, slack, &secrets, extra);
        Self::start_prepared(prepared, db_url, secrets).await
    }

    async fn start_prepared(prepared: Prepared, db_url: &str, secrets: Secrets) -> AppProcess {
        let (child, output, base_url) = spawn_captured(prepared);
        let mut process = AppProcess {
            base_url,
            db_url: db_url.to_string(),
            secrets,
            child,
            output,
            http: reqwest::Client::builder()
                .timeout(PATIENCE)
                .build()
                .expect("HTTP client"),
        };
        process.wait_healthy().await;
        process
    }

    async fn wait_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "accessbot exited with {status} before serving:\n{}",
                    self.output()
                );
            }
            let answer = self.http.get(self.url("/healthz")).send().await;
            if answer.is_ok_and(|a| a.status() == StatusCode::OK) {
                return;
            }
            assert!(
                started.elapsed() < STARTUP,
                "accessbot did not answer /healthz within {STARTUP:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs the binary expecting it to refuse to start: its exit status and output, or a
    /// panic when it still runs after `within`.
    pub async fn run_expecting_exit(
        db_url: &str,
        slack: &FakeSlack,
        within: Duration,
    ) -> (ExitStatus, String) {
        Self::run_in_expecting_exit(&std::env::temp_dir(), db_url, slack, &[], within).await
    }

    /// As `run_expecting_exit`, in the working directory `dir` with extra variables.
    pub async fn run_in_expecting_exit(
        dir: &Path,
        db_url: &str,
        slack: &FakeSlack,
        extra: &[(&str, &str)],
        within: Duration,
    ) -> (ExitStatus, String) {
        let prepared = prepare_in(dir, db_url, slack, &Secrets::default(), extra);
        let (mut child, mut output, _) = spawn_captured(prepared);
        let status = tokio::time::timeout(within, child.wait()).await;
        match status {
            Ok(status) => {
                let status = status.expect("wait for accessbot");
                (status, output.complete().await)
            }
            Err(_) => panic!(
                "accessbot still runs after {within:?}, expected to refuse to start:\n{}",
                output.text()
            ),
        }
    }

    /// Everything the process wrote to stdout and stderr so far.
    /// What the process has written so far; after [`AppProcess::wait_exit`], all of it.
    pub fn output(&self) -> String {
        self.output.text()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process still runs")
    }

    /// Sends SIGTERM, as an orchestrator stopping a container does.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits for the process to exit; panics (with its output) after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => {
                self.output.complete().await;
                status.expect("wait for accessbot")
            }
            Err(_) => panic!(
                "accessbot did not exit within {within:?}:\n{}",
                self.output()
            ),
        }
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL accessbot");
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A request to the HTTP API with the bearer token; `Err` when the process did not answer.
    pub async fn try_api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.secrets.api_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// A request to the HTTP API that must be answered.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.try_api(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.output()))
    }

    /// Puts `body` in the catalog as `slug`.
    pub async fn put_app(&self, slug: &str, body: Value) {
        let (status, answer) = self
            .api(Method::PUT, &format!("/api/v1/apps/{slug}"), Some(body))
            .await;
        assert!(status.is_success(), "PUT app {slug}: {status} {answer}");
    }

    /// Files a request for `slug` (201 expected); returns its id.
    pub async fn file(&self, slug: &str, target_user: &str, comment: &str) -> String {
        let body = json!({"app": slug, "target_user": target_user, "comment": comment});
        let (status, answer) = self.api(Method::POST, "/api/v1/requests", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "filing: {answer}");
        id_of(&answer)
    }

    /// `GET /api/v1/requests/{id}`.
    pub async fn request(&self, id: &str) -> Value {
        let (status, body) = self
            .api(Method::GET, &format!("/api/v1/requests/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "request {id}: {body}");
        body
    }

    /// The kinds of the audit entries of a request, oldest first.
    pub async fn event_kinds(&self, id: &str) -> Vec<String> {
        let (status, body) = self
            .api(Method::GET, &format!("/api/v1/requests/{id}/events"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "events of {id}: {body}");
        body.as_array()
            .into_iter()
            .flatten()
            .map(|event| event["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// One sample of `/metrics` (0 when absent).
    pub async fn metric(&self, sample: &str) -> f64 {
        let response = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}\n{}", self.output()));
        sample_value(&response.text().await.unwrap_or_default(), sample)
    }

    /// Waits until no Slack call is left to make.
    pub async fn wait_idle(&self) {
        let started = Instant::now();
        while self.metric("accessbot_slack_calls_waiting").await != 0.0 {
            assert!(
                started.elapsed() < PATIENCE,
                "the outbox did not drain within {PATIENCE:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs `body` signed as Slack would, now, with `signature` forced when given.
    pub async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        signature: Option<&str>,
    ) -> StatusCode {
        let timestamp = signer::unix_now();
        let signature = signature
            .map(str::to_string)
            .unwrap_or_else(|| signer::sign(&self.secrets.signing_secret, timestamp, body));
        self.http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header("x-slack-signature", signature)
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.output()))
            .status()
    }

    /// `user` clicks the button `action_id` of `card` (as the fake holds it now).
    pub async fn click(&self, slack: &FakeSlack, user: &str, action_id: &str, card: &Card) {
        let message = card.reload(slack).message;
        let button = ButtonClick::find_in(&message, action_id)
            .unwrap_or_else(|| panic!("no {action_id} on {message}"));
        let payload = signer::block_actions_in_message(
            user,
            &card.channel,
            &card.ts,
            Some(&message),
            &button,
        );
        let body = signer::interactivity_form(&payload);
        let status = self
            .post_signed("/slack/interactivity", FORM, &body, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{user} clicking {action_id}");
    }

    /// `user` writes `text` in the thread of `card`; the event is delivered signed.
    pub async fn reply_in_thread(&self, slack: &FakeSlack, user: &str, card: &Card, text: &str) {
        let ts = slack.add_user_message(&card.channel, user, text, Some(&card.ts));
        let event =
            signer::user_message_event(&card.channel, "im", user, text, &ts, Some(&card.ts));
        let body = signer::event_callback(event).to_string();
        let status = self.post_signed("/slack/events", JSON, &body, None).await;
        assert_eq!(status, StatusCode::OK, "thread reply event");
    }
}

// ---------------------------------------------------------------------------------------------
// The database behind the apps, read and written beside them.

/// A plain connection to a test database (no store: on SQLite a store would take the
/// one-process lock).
pub enum Peek {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Peek {
    pub async fn connect(db_url: &str) -> Peek {
        if db_url.starts_with("sqlite:") {
            Peek::Sqlite(
                sqlx::SqliteConnection::connect(db_url)
                    .await
                    .expect("open the SQLite file"),
            )
        } else {
            Peek::Postgres(
                sqlx::PgConnection::connect(db_url)
                    .await
                    .expect("connect to PostgreSQL"),
            )
        }
    }

    /// A query answering one integer (`count(*)` and the like).
    pub async fn count(&mut self, sql: &str) -> i64 {
        match self {
            Peek::Sqlite(conn) => sqlx::query_scalar::<_, i64>(sql).fetch_one(conn).await,
            Peek::Postgres(conn) => sqlx::query_scalar::<_, i64>(sql).fetch_one(conn).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Deliveries still claimed by some worker.
    pub async fn leased_deliveries(&mut self) -> i64 {
        self.count("SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL")
            .await
    }

    /// Lets the leases of a killed process run out now, as they would after their 60 s;
    /// only the time they take is skipped, not what happens when they expire.
    pub async fn expire_leases(&mut self) {
        let sql = "UPDATE outbox SET lease_until = 0 WHERE lease_owner IS NOT NULL";
        match self {
            Peek::Sqlite(conn) => sqlx::query(sql).execute(conn).await.map(|_| ()),
            Peek::Postgres(conn) => sqlx::query(sql).execute(conn).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// (channel, ts) the bot stored for each card of `recipient`, oldest first.
    pub async fn cards_of(&mut self, recipient: &str) -> Vec<(Option<String>, Option<String>)> {
        let sql = "SELECT channel, ts FROM cards WHERE recipient = $1 ORDER BY id";
        match self {
            Peek::Sqlite(conn) => {
                sqlx::query_as::<_, (Option<String>, Option<String>)>(sql)
                    .bind(recipient)
                    .fetch_all(conn)
                    .await
            }
            Peek::Postgres(conn) => {
                sqlx::query_as::<_, (Option<String>, Option<String>)>(sql)
                    .bind(recipient)
                    .fetch_all(conn)
                    .await
            }
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}
