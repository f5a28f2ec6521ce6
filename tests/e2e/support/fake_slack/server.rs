//! The HTTP side of the fake: routing `/api/{method}` to the workspace, the bot token,
//! the `ok:false` envelope, queued faults, and 429 with `Retry-After` for rate limits.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::socket_mode::APP_TOKEN;
use super::world::{str_arg, World};
use super::{Call, Fault, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID};

/// Every method the fake knows; anything else is `unknown_method`.
pub const KNOWN_METHODS: &[&str] = &[
    "apps.connections.open",
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.delete",
    "chat.postEphemeral",
    "chat.getPermalink",
    "conversations.open",
    "conversations.history",
    "conversations.replies",
    "views.open",
    "views.update",
    "views.push",
    "views.publish",
    "users.info",
    "users.lookupByEmail",
];

impl World {
    /// With tiers enforced: `Some(retry_after_secs)` when this call exceeds its budget,
    /// otherwise counts it.
    pub(super) fn over_budget(&mut self, method: &str, args: &Value, now: Instant) -> Option<u64> {
        if !self.enforce_tiers {
            return None;
        }
        let (key, budget) = match rate_budget(method) {
            Some(RateBudget::PerChannelPerSecond) => (
                format!(
                    "{method}:{}",
                    Self::resolve_channel(str_arg(args, "channel").unwrap_or(""))
                ),
                (1, Duration::from_secs(1)),
            ),
            Some(RateBudget::PerMinute(n)) => (method.to_string(), (n, Duration::from_secs(60))),
            None => return None,
        };
        let (limit, window) = budget;
        let used = self.budget_use.entry(key).or_default();
        while used
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            used.pop_front();
        }
        if used.len() >= limit {
            let oldest = *used.front().expect("non-empty when over budget");
            let wait = window.saturating_sub(now.duration_since(oldest));
            return Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        used.push_back(now);
        None
    }

    pub(super) fn dispatch(&mut self, method: &str, args: &Value) -> Value {
        match method {
            "apps.connections.open" => match &self.socket_mode {
                Some(socket) => json!({"ok": true, "url": socket.connection_url()}),
                None => error("socket_mode_not_enabled"),
            },
            "auth.test" => json!({
                "ok": true,
                "url": format!("https://{TEAM_DOMAIN}.slack.com/"),
                "team": "accessbot test workspace",
                "user": "accessbot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": false,
            }),
            "chat.postMessage" => self.post_message(args),
            "chat.update" => self.update_message(args),
            "chat.delete" => self.delete_message(args),
            "chat.postEphemeral" => self.post_ephemeral(args),
            "chat.getPermalink" => self.permalink(args),
            "conversations.open" => self.open_conversation(args),
            "conversations.history" => self.history(args),
            "conversations.replies" => self.replies(args),
            "views.open" => self.open_view(args, false),
            "views.push" => self.open_view(args, true),
            "views.update" => self.update_view(args),
            "views.publish" => self.publish_view(args),
            "users.info" => self.user_info(args),
            "users.lookupByEmail" => self.lookup_by_email(args),
            _ => error("unknown_method"),
        }
    }
}

/// Slack's published rate limits (platform notes §5): per method per workspace per minute,
/// except chat.postMessage, about one message per second per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateBudget {
    PerMinute(usize),
    PerChannelPerSecond,
}

/// The budget of a method when tiers are enforced.
pub fn rate_budget(method: &str) -> Option<RateBudget> {
    match method {
        "chat.postMessage" => Some(RateBudget::PerChannelPerSecond),
        // Tier 3: 50+ per minute.
        "chat.update"
        | "chat.delete"
        | "conversations.open"
        | "conversations.history"
        | "conversations.replies"
        | "users.lookupByEmail" => Some(RateBudget::PerMinute(50)),
        // Tier 4: 100+ per minute.
        "chat.postEphemeral" | "views.open" | "views.update" | "views.push" | "views.publish"
        | "users.info" => Some(RateBudget::PerMinute(100)),
        _ => None,
    }
}

/// Where faults for calls of `method` in one channel are queued.
pub(super) fn fault_key(method: &str, channel: &str) -> String {
    format!("{method} in {channel}")
}

pub(super) fn error(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

pub(super) struct Shared {
    pub(super) world: Mutex<World>,
    /// Bumped after every recorded call; `wait_for` watches it.
    pub(super) changes: watch::Sender<u64>,
    /// Set when the fake goes away, so hanging requests end.
    pub(super) closing: watch::Sender<bool>,
}

impl Shared {
    pub(super) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) struct Running {
    pub(super) shared: Arc<Shared>,
    pub(super) addr: SocketAddr,
    pub(super) server: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.closing.send_replace(true);
        self.server.abort();
    }
}

/// Serves `world` on `127.0.0.1:0` until the returned handle is dropped.
pub(super) async fn start(world: World) -> Running {
    let shared = Arc::new(Shared {
        world: Mutex::new(world),
        changes: watch::channel(0).0,
        closing: watch::channel(false).0,
    });
    let router = Router::new()
        .route("/api/{method}", any(handle))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake Slack on loopback");
    let addr = listener.local_addr().expect("fake Slack address");
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("fake Slack serves");
    });
    Running {
        shared,
        addr,
        server,
    }
}

/// Turns the query string and body into one JSON object of arguments.
fn parse_args(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Value {
    let mut args = Map::new();
    if let Some(query) = query {
        merge_form(&mut args, query.as_bytes());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !body.is_empty() {
        if content_type.starts_with("application/json") {
            if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
                args.extend(object);
            } else {
                args.insert("__invalid_json".into(), json!(true));
            }
        } else {
            merge_form(&mut args, body);
        }
    }
    Value::Object(args)
}

/// Form fields are strings; the ones Slack documents as JSON are decoded.
fn merge_form(args: &mut Map<String, Value>, form: &[u8]) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(form).unwrap_or_default();
    for (key, value) in pairs {
        let decoded = match key.as_str() {
            "blocks" | "attachments" | "view" | "metadata" => {
                serde_json::from_str(&value).unwrap_or(Value::String(value))
            }
            _ => Value::String(value),
        };
        args.insert(key, decoded);
    }
}

fn bearer_token(headers: &HeaderMap, args: &Value) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| str_arg(args, "token").map(str::to_string))
}

enum Planned {
    Answer(StatusCode, Value, Option<u64>),
    Hang,
    Drop(Value),
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    http_method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let args = parse_args(&headers, query.as_deref(), &body);
    let planned = {
        let mut world = shared.world();
        let token = bearer_token(&headers, &args);
        let mut fault = None;
        let planned = if !KNOWN_METHODS.contains(&method.as_str()) {
            Planned::Answer(StatusCode::OK, error("unknown_method"), None)
        } else if token.is_none() {
            Planned::Answer(StatusCode::OK, error("not_authed"), None)
        } else if method == "apps.connections.open" && token.as_deref() != Some(APP_TOKEN) {
            // Only an app-level token opens connections; Slack names a bot token's mistake.
            let code = if token.as_deref().is_some_and(|t| t.starts_with("xoxb-")) {
                "not_allowed_token_type"
            } else {
                "invalid_auth"
            };
            Planned::Answer(StatusCode::OK, error(code), None)
        } else if method != "apps.connections.open"
            && token.as_deref() != Some(world.token.as_str())
        {
            Planned::Answer(StatusCode::OK, error("invalid_auth"), None)
        } else if args.get("__invalid_json").is_some() {
            Planned::Answer(StatusCode::OK, error("invalid_json"), None)
        } else {
            // A fault queued for this channel comes first, then one for the method.
            let in_channel = str_arg(&args, "channel")
                .map(|channel| fault_key(&method, &World::resolve_channel(channel)));
            fault = in_channel
                .and_then(|key| world.faults.get_mut(&key).and_then(VecDeque::pop_front))
                .or_else(|| world.faults.get_mut(&method).and_then(VecDeque::pop_front));
            match &fault {
                None => match world.over_budget(&method, &args, Instant::now()) {
                    Some(retry_after) => Planned::Answer(
                        StatusCode::TOO_MANY_REQUESTS,
                        error("ratelimited"),
                        Some(retry_after),
                    ),
                    None => Planned::Answer(StatusCode::OK, world.dispatch(&method, &args), None),
                },
                Some(Fault::RateLimited { retry_after_secs }) => Planned::Answer(
                    StatusCode::TOO_MANY_REQUESTS,
                    error("ratelimited"),
                    Some(*retry_after_secs),
                ),
                Some(Fault::ServerError) => Planned::Answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    error("internal_error"),
                    None,
                ),
                Some(Fault::Status(code)) => Planned::Answer(
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY),
                    error("service_unavailable"),
                    None,
                ),
                Some(Fault::SlackError(code)) => Planned::Answer(StatusCode::OK, error(code), None),
                Some(Fault::Hang) => Planned::Hang,
                Some(Fault::DropAfterProcessing) => Planned::Drop(world.dispatch(&method, &args)),
            }
        };
        let (status, response) = match &planned {
            Planned::Answer(status, response, _) => (status.as_u16(), response.clone()),
            Planned::Hang => (0, Value::Null),
            Planned::Drop(response) => (0, response.clone()),
        };
        let seq = world.calls.len();
        world.calls.push(Call {
            seq,
            method: method.clone(),
            http_method: http_method.to_string(),
            body: args,
            status,
            response,
            fault,
            at: Instant::now(),
        });
        planned
    };
    shared.changes.send_modify(|n| *n += 1);
    match planned {
        Planned::Answer(status, body, retry_after) => {
            let mut response = (status, axum::Json(body)).into_response();
            if let Some(secs) = retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&secs.to_string()).expect("digits"),
                );
            }
            response
        }
        Planned::Hang => {
            let mut closing = shared.closing.subscribe();
            let _ = closing.wait_for(|closed| *closed).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Planned::Drop(_) => {
            // A body that fails makes hyper abort the connection: the caller gets no answer.
            let broken = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "fake Slack drops the connection after processing",
                ))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(broken))
                .expect("response")
        }
    }
}
