//! A counting fake of the few Slack Web API methods the benchmarks cause
//! (chat.postMessage, chat.update, chat.postEphemeral, views.publish, users.info).
//!
//! The stateful fake of the e2e tests (`tests/e2e/support/fake_slack.rs`) keeps every call
//! with its decoded arguments and finds a message by a linear scan of its channel; with
//! 10^5 requests × N admins that is gigabytes and O(n²). This one keeps only what the
//! benchmark checks: how often each card was posted (per recipient) and updated (per
//! message), so duplicate Slack effects can be counted exactly. The fan-out case uses the
//! full fake, with Slack's rate tiers enforced.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::fake_slack::{dm_channel_of, DEFAULT_BOT_TOKEN};

/// One card as Slack holds it.
#[derive(Debug, Clone)]
pub struct PostedCard {
    pub ts: String,
    /// chat.postMessage calls that created this card (1 unless duplicated).
    pub posts: u32,
}

#[derive(Default)]
pub struct Counts {
    ts_counter: u64,
    /// (channel, request id) → the card posted there.
    pub cards: HashMap<(String, i64), PostedCard>,
    /// ts → (channel, request id) of the card.
    pub card_of_ts: HashMap<String, (String, i64)>,
    /// ts → chat.update calls on that card.
    pub updates: HashMap<String, u32>,
    /// chat.update calls naming a message the sink never posted.
    pub unknown_updates: u64,
    /// Messages without a request button (notices to requesters), per channel.
    pub notices: HashMap<String, u32>,
    pub ephemerals: u64,
    /// user → when each views.publish of their Home arrived (the history benchmark times
    /// App Home by it).
    pub home_publishes: HashMap<String, Vec<Instant>>,
    /// Any method other than the four above, and auth failures.
    pub other: HashMap<String, u64>,
    pub calls: u64,
    pub last_call: Option<Instant>,
}

impl Counts {
    fn next_ts(&mut self) -> String {
        self.ts_counter += 1;
        format!(
            "{}.{:06}",
            1_700_000_000 + self.ts_counter / 1_000_000,
            self.ts_counter % 1_000_000
        )
    }

    pub fn total_notices(&self) -> u64 {
        self.notices.values().map(|n| u64::from(*n)).sum()
    }

    pub fn total_updates(&self) -> u64 {
        self.updates.values().map(|n| u64::from(*n)).sum::<u64>() + self.unknown_updates
    }
}

#[derive(Clone)]
pub struct Sink {
    counts: Arc<Mutex<Counts>>,
    addr: SocketAddr,
}

impl Sink {
    pub async fn start() -> Sink {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let router = Router::new()
            .route("/api/{method}", any(handle))
            .with_state(counts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the sink on loopback");
        let addr = listener.local_addr().expect("sink address");
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("sink serves");
        });
        Sink { counts, addr }
    }

    /// What `SLACK_API_URL` should be.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Deserialize)]
struct Args {
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    thread_ts: Option<String>,
    #[serde(default)]
    blocks: Option<Value>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    view: Option<Value>,
}

/// The view Slack answers views.publish with: the one sent, with the fields Slack adds
/// (the Web API client reads them).
fn published_view(view: Option<Value>) -> Value {
    let mut full = match view {
        Some(Value::Object(view)) => view,
        _ => serde_json::Map::new(),
    };
    for (key, value) in [
        ("private_metadata", json!("")),
        ("callback_id", json!("")),
        ("external_id", json!("")),
        ("clear_on_close", json!(false)),
        ("notify_on_close", json!(false)),
    ] {
        if full.get(key).is_none_or(Value::is_null) {
            full.insert(key.into(), value);
        }
    }
    for (key, value) in [
        ("id", json!("V0BENCH")),
        ("team_id", json!("T0BENCH")),
        ("state", json!({"values": {}})),
        ("hash", json!("1.bench")),
        ("previous_view_id", Value::Null),
        ("root_view_id", json!("V0BENCH")),
        ("app_id", json!("A0BENCH")),
        ("app_installed_team_id", json!("T0BENCH")),
        ("bot_id", json!("B0ACCESSBOT")),
    ] {
        full.insert(key.into(), value);
    }
    Value::Object(full)
}

/// The request id a card carries: the `value` of its first button that is a number.
fn request_of(blocks: &Value) -> Option<i64> {
    match blocks {
        Value::Array(items) => items.iter().find_map(request_of),
        Value::Object(object) => {
            if object.get("type").and_then(Value::as_str) == Some("button") {
                if let Some(id) = object
                    .get("value")
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse().ok())
                {
                    return Some(id);
                }
            }
            object.values().find_map(request_of)
        }
        _ => None,
    }
}

async fn handle(
    State(counts): State<Arc<Mutex<Counts>>>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(DEFAULT_BOT_TOKEN);
    // The directory asks who a person is before their first card (a GET with `user` in
    // the query); everybody here is an active member, as in a real workspace.
    if method == "users.info" && authed {
        let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.calls += 1;
        drop(counts);
        let id = query.get("user").cloned().unwrap_or_default();
        let name = id.to_lowercase();
        return axum::Json(json!({"ok": true, "user": {
            "id": id, "name": name, "deleted": false, "real_name": format!("User {id}"),
            "tz": "UTC", "profile": {"display_name": name, "real_name": format!("User {id}"),
            "email": format!("{name}@example.com")}}}))
        .into_response();
    }
    let args: Option<Args> = serde_json::from_slice(&body).ok();
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    counts.calls += 1;
    counts.last_call = Some(Instant::now());
    let (Some(args), true) = (args, authed) else {
        *counts
            .other
            .entry(format!("{method} (refused)"))
            .or_default() += 1;
        return (
            StatusCode::OK,
            axum::Json(json!({"ok": false, "error": "invalid_auth"})),
        )
            .into_response();
    };
    let answer = match method.as_str() {
        "chat.postMessage" => {
            let channel = args.channel.as_deref().unwrap_or("");
            let channel = if channel.starts_with('U') || channel.starts_with('W') {
                dm_channel_of(channel)
            } else {
                channel.to_string()
            };
            let ts = counts.next_ts();
            match (args.thread_ts.is_none())
                .then(|| args.blocks.as_ref().and_then(request_of))
                .flatten()
            {
                Some(request_id) => {
                    let key = (channel.clone(), request_id);
                    let card = counts.cards.entry(key.clone()).or_insert(PostedCard {
                        ts: ts.clone(),
                        posts: 0,
                    });
                    card.posts += 1;
                    counts.card_of_ts.insert(ts.clone(), key);
                }
                None => *counts.notices.entry(channel.clone()).or_default() += 1,
            }
            json!({"ok": true, "channel": channel, "ts": ts,
                   "message": {"type": "message", "text": "", "ts": ts, "bot_id": "B0ACCESSBOT"}})
        }
        "chat.update" => {
            let (channel, ts) = (
                args.channel.unwrap_or_default(),
                args.ts.unwrap_or_default(),
            );
            if counts.card_of_ts.contains_key(&ts) {
                *counts.updates.entry(ts.clone()).or_default() += 1;
            } else {
                counts.unknown_updates += 1;
            }
            json!({"ok": true, "channel": channel, "ts": ts,
                   "message": {"type": "message", "text": "", "ts": ts, "bot_id": "B0ACCESSBOT"}})
        }
        "chat.postEphemeral" => {
            counts.ephemerals += 1;
            let ts = counts.next_ts();
            json!({"ok": true, "message_ts": ts})
        }
        "views.publish" => {
            let user = args.user_id.unwrap_or_default();
            counts
                .home_publishes
                .entry(user)
                .or_default()
                .push(Instant::now());
            json!({"ok": true, "view": published_view(args.view)})
        }
        other => {
            *counts.other.entry(other.to_string()).or_default() += 1;
            json!({"ok": false, "error": "not_enabled"})
        }
    };
    drop(counts);
    axum::Json(answer).into_response()
}
