//! What the load benchmark (`loadgen.rs`) and the history benchmark (`history.rs`) share:
//! the accessbot child process, signed Slack requests sent on raw keep-alive connections,
//! `/metrics` reading and the PostgreSQL URL helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use reqwest::header::HeaderValue;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::fake_slack::DEFAULT_BOT_TOKEN;
use crate::signer::{self, ButtonClick, FORM, TEST_SIGNING_SECRET};

/// The API token both benchmarks give accessbot.
pub const API_TOKEN: &str = "bench-api-token";

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, AnyError>;

pub fn fail(msg: impl Into<String>) -> AnyError {
    msg.into().into()
}

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One accessbot process.
pub struct Replica {
    child: Child,
    pub pid: u32,
    pub base: String,
    /// From spawning the process to its first `/readyz` 200.
    pub ready_after: Duration,
}

impl Replica {
    /// Starts `bin` in `work_dir` (its log there as `{name}.log`) on `database_url`, with
    /// Slack at `slack_api`, and waits until it is ready.
    pub async fn start(
        bin: &Path,
        work_dir: &Path,
        database_url: &str,
        slack_api: &str,
        name: &str,
    ) -> Res<Replica> {
        let port = free_port()?;
        std::fs::create_dir_all(work_dir)?;
        let log = std::fs::File::create(work_dir.join(format!("{name}.log")))?;
        let started = Instant::now();
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("SLACK_BOT_TOKEN", DEFAULT_BOT_TOKEN)
            .env("SLACK_SIGNING_SECRET", TEST_SIGNING_SECRET)
            .env("SLACK_API_URL", slack_api)
            .env("ACCESSBOT_API_TOKEN", API_TOKEN)
            .env("ACCESSBOT_ADDR", format!("127.0.0.1:{port}"))
            .env("ACCESSBOT_SCHEDULER_INTERVAL", "30s")
            .env("RUST_LOG", env_or("BENCH_RUST_LOG", "info"))
            .current_dir(work_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", bin.display())))?;
        let pid = child.id().ok_or_else(|| fail("accessbot exited at once"))?;
        let mut replica = Replica {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            ready_after: Duration::ZERO,
        };
        let client = reqwest::Client::new();
        loop {
            if let Ok(resp) = client.get(format!("{}/readyz", replica.base)).send().await {
                if resp.status().is_success() {
                    replica.ready_after = started.elapsed();
                    return Ok(replica);
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(fail(format!(
                    "accessbot {name} not ready after 30 s; see {}",
                    work_dir.join(format!("{name}.log")).display()
                )));
            }
            // Polled often: the history benchmark reports the time to ready.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// (VmHWM, VmRSS) in kB.
    pub fn memory(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    pub async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

pub fn api(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
) -> reqwest::RequestBuilder {
    client.request(method, url).bearer_auth(API_TOKEN)
}

/// A request from Slack (a click, an event, a command), signed before it is sent.
pub struct Signed {
    path: &'static str,
    content_type: &'static str,
    pub body: Bytes,
    pub timestamp: HeaderValue,
    pub signature: HeaderValue,
}

impl Signed {
    /// `body` for Slack endpoint `path`, signed now with the test signing secret.
    pub fn new(path: &'static str, content_type: &'static str, body: String) -> Signed {
        let now = signer::unix_now();
        let signature = signer::sign(TEST_SIGNING_SECRET, now, &body);
        Signed {
            path,
            content_type,
            body: Bytes::from(body),
            timestamp: HeaderValue::from_str(&now.to_string()).expect("digits"),
            signature: HeaderValue::from_str(&signature).expect("hex"),
        }
    }

    /// The whole HTTP/1.1 request to `host`.
    pub fn request(&self, host: &str) -> Vec<u8> {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nhost: {host}\r\ncontent-type: {}\r\n\
             x-slack-request-timestamp: {}\r\nx-slack-signature: {}\r\n\
             content-length: {}\r\n\r\n",
            self.path,
            self.content_type,
            self.timestamp.to_str().unwrap_or_default(),
            self.signature.to_str().unwrap_or_default(),
            self.body.len()
        )
        .into_bytes();
        request.extend_from_slice(&self.body);
        request
    }
}

/// One keep-alive HTTP/1.1 connection, reopened if the server closes it.
pub struct RawConnection {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl RawConnection {
    pub async fn open(addr: &str) -> Res<RawConnection> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawConnection {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` and reads the answer: its status and body.
    pub async fn exchange(&mut self, addr: &str, request: &[u8]) -> Res<(u16, Vec<u8>)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if self.stream.write_all(request).await.is_err() {
            *self = RawConnection::open(addr).await?;
            self.stream.write_all(request).await?;
        }
        self.buffer.clear();
        loop {
            if let Some((status, length, head)) = parse_head(&self.buffer)? {
                while self.buffer.len() < head + length {
                    if self.stream.read_buf(&mut self.buffer).await? == 0 {
                        return Err(fail("connection closed in an answer's body"));
                    }
                }
                return Ok((status, self.buffer[head..head + length].to_vec()));
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(fail("connection closed before an answer"));
            }
        }
    }
}

/// The status, content length and head length of an HTTP/1.1 answer, once its head is in.
pub fn parse_head(buffer: &[u8]) -> Res<Option<(u16, usize, usize)>> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..end])?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| fail(format!("not an HTTP answer: {head:?}")))?;
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.trim().parse())
        .transpose()?
        .unwrap_or(0);
    Ok(Some((status, length, end + 4)))
}

pub fn sign_click(
    user: &str,
    channel: &str,
    ts: &str,
    message: Option<&Value>,
    click: &ButtonClick,
) -> Signed {
    let payload = signer::block_actions_in_message(user, channel, ts, message, click);
    Signed::new(
        "/slack/interactivity",
        FORM,
        signer::interactivity_form(&payload),
    )
}

/// The gauges of `/metrics` this benchmark reads.
pub async fn metrics(client: &reqwest::Client, base: &str) -> Res<BTreeMap<String, f64>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect())
}

/// `url` with `sslmode=disable` unless it names a mode: accessbot is built with TLS, and sqlx's
/// default (`prefer`) would encrypt every connection to a server that offers TLS, so numbers
/// measured before and after TLS support would not compare. Ask for TLS in the URL to measure it.
pub fn plaintext_unless_asked(url: &str) -> Res<String> {
    let mut parsed = url::Url::parse(url)?;
    if !parsed.query_pairs().any(|(name, _)| name == "sslmode") {
        parsed.query_pairs_mut().append_pair("sslmode", "disable");
    }
    Ok(parsed.to_string())
}

pub fn pg_db_url(base: &str, db: &str) -> Res<String> {
    let mut url = url::Url::parse(base)?;
    url.set_path(&format!("/{db}"));
    Ok(url.to_string())
}
