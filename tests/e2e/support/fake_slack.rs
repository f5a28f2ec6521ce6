//! A stateful fake of the Slack Web API on loopback, in the manner of rust-lang/bors'
//! fake GitHub: it keeps channels, messages and views, answers with the bodies slack-morphism
//! requires, validates Block Kit limits as Slack does, records every call, and can be told to
//! fail the next call of a method in any of the ways Slack (or the network) fails.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The bot token the fake accepts unless told otherwise.
pub const DEFAULT_BOT_TOKEN: &str = "xoxb-test-token";
/// The workspace every fake object lives in.
pub const TEAM_ID: &str = "T0ACCESS01";
pub const TEAM_DOMAIN: &str = "accessbot-test";
/// The Slack app the bot is, as Slack would name it in payloads.
pub const APP_ID: &str = "A0ACCESS01";
/// The bot's own user id and bot id: its messages carry these.
pub const BOT_USER_ID: &str = "U0ACCESSBOT";
pub const BOT_ID: &str = "B0ACCESSBOT";
/// How long `wait_for_default` waits.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// How long a trigger_id stays usable, when expiry is enforced.
pub const TRIGGER_LIFETIME: Duration = Duration::from_secs(3);

/// Every method the fake knows; anything else is `unknown_method`.
pub const KNOWN_METHODS: &[&str] = &[
    "auth.test",
    "chat.postMessage",
    "chat.update",
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

/// One way to make the next call of a method fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After` and `{"ok":false,"error":"ratelimited"}`; nothing happens.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 500; nothing happens.
    ServerError,
    /// Any other HTTP status (502, 503…); nothing happens.
    Status(u16),
    /// HTTP 200 `{"ok":false,"error":<code>}`; nothing happens.
    SlackError(String),
    /// The request is never answered (until the fake is dropped); the client's timeout must fire.
    Hang,
    /// The call takes effect and is recorded, but the connection breaks before the answer
    /// arrives: the caller cannot know whether it worked.
    DropAfterProcessing,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// Position among all calls, from 0.
    pub seq: usize,
    /// The Web API method, e.g. `chat.postMessage`.
    pub method: String,
    /// GET or POST.
    pub http_method: String,
    /// The arguments as a JSON object (a form or query string becomes an object of strings;
    /// form fields holding JSON, such as `blocks` or `view`, are decoded).
    pub body: Value,
    /// The HTTP status answered; 0 when the call hung.
    pub status: u16,
    /// The JSON answered (or that would have been answered, for `DropAfterProcessing`);
    /// `Null` when the call hung.
    pub response: Value,
    /// The fault injected into this call, if any.
    pub fault: Option<Fault>,
    /// When the call arrived.
    pub at: Instant,
}

impl Call {
    /// Whether Slack answered `ok:true` to it.
    pub fn ok(&self) -> bool {
        self.status == 200 && self.response["ok"] == json!(true)
    }

    /// A string argument of the call.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    /// The error code Slack answered, if any.
    pub fn error(&self) -> Option<&str> {
        self.response.get("error").and_then(Value::as_str)
    }
}

/// Why `wait_for` gave up; its `Display` lists every call received.
#[derive(Debug)]
pub struct WaitTimeout {
    pub waited: Duration,
    pub calls: Vec<Call>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fake Slack: condition not met after {:?}; {} calls received:",
            self.waited,
            self.calls.len()
        )?;
        for call in &self.calls {
            writeln!(
                f,
                "  #{} {} {} -> {} {}{}",
                call.seq,
                call.method,
                call.body,
                call.status,
                call.response,
                call.fault
                    .as_ref()
                    .map(|fault| format!(" (fault: {fault:?})"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for WaitTimeout {}

/// What kind of surface a Block Kit payload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// A message: `text`/`blocks`/`attachments` of chat.postMessage, chat.update, chat.postEphemeral.
    Message,
    /// A modal view (views.open, views.update, views.push).
    Modal,
    /// A Home tab view (views.publish).
    Home,
}

/// Slack's refusal of a payload: the `error` code and the `errors` it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub error: &'static str,
    pub errors: Vec<String>,
}

impl Rejection {
    /// The body Slack answers with: `invalid_blocks` carries `errors` and
    /// `response_metadata.messages`; `invalid_arguments` (views) only the latter.
    pub fn to_response(&self) -> Value {
        let messages: Vec<String> = self.errors.iter().map(|e| format!("[ERROR] {e}")).collect();
        let mut body = json!({"ok": false, "error": self.error});
        if !self.errors.is_empty() {
            if self.error != "invalid_arguments" {
                body["errors"] = json!(self.errors);
            }
            body["response_metadata"] = json!({ "messages": messages });
        }
        body
    }
}

/// Checks a payload against the Block Kit limits Slack enforces (see the platform notes §4):
/// ≤50 blocks per message and ≤100 per view, section text ≤3000, ≤10 fields of ≤2000,
/// plain_text headers ≤150, button text ≤75 and value ≤2000, action_id/block_id ≤255,
/// unique action_ids per block and unique block_ids, modal title/submit/close ≤24,
/// private_metadata ≤3000, options ≤100 with text ≤75 and value ≤150, non-empty texts,
/// message `text` ≤40,000 (`msg_too_long`) and some content (`no_text`).
///
/// For [`Surface::Message`] pass the call's arguments (or a stored message); for views pass the view.
pub fn check_block_kit(surface: Surface, payload: &Value) -> Result<(), Rejection> {
    let mut check = Checker::default();
    match surface {
        Surface::Message => {
            let text_len = payload.get("text").and_then(Value::as_str).map(char_len);
            if text_len.is_some_and(|len| len > 40_000) {
                return Err(Rejection {
                    error: "msg_too_long",
                    errors: vec![],
                });
            }
            let blocks = payload.get("blocks").filter(|b| !b.is_null());
            let has_blocks = blocks
                .and_then(Value::as_array)
                .is_some_and(|b| !b.is_empty());
            let has_attachments = payload
                .get("attachments")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            if let Some(attachments) = payload.get("attachments").and_then(Value::as_array) {
                if attachments.len() > 100 {
                    return Err(Rejection {
                        error: "too_many_attachments",
                        errors: vec![],
                    });
                }
            }
            if let Some(blocks) = blocks {
                check.blocks(blocks, "/blocks", 50);
                if !check.errors.is_empty() {
                    return Err(Rejection {
                        error: "invalid_blocks",
                        errors: check.errors,
                    });
                }
            }
            if text_len.unwrap_or(0) == 0 && !has_blocks && !has_attachments {
                return Err(Rejection {
                    error: "no_text",
                    errors: vec![],
                });
            }
            Ok(())
        }
        Surface::Modal | Surface::Home => {
            check.view(surface, payload);
            if check.errors.is_empty() {
                Ok(())
            } else {
                Err(Rejection {
                    error: "invalid_arguments",
                    errors: check.errors,
                })
            }
        }
    }
}

fn char_len(text: &str) -> usize {
    text.chars().count()
}

#[derive(Default)]
struct Checker {
    errors: Vec<String>,
    block_ids: HashSet<String>,
}

impl Checker {
    fn fail(&mut self, message: impl fmt::Display, pointer: &str) {
        self.errors
            .push(format!("{message} [json-pointer:{pointer}]"));
    }

    /// A string of `min..=max` characters; `required` says whether it may be absent.
    fn string(
        &mut self,
        value: Option<&Value>,
        pointer: &str,
        min: usize,
        max: usize,
        required: bool,
    ) {
        match value {
            None | Some(Value::Null) => {
                if required {
                    self.fail("missing required field", pointer);
                }
            }
            Some(Value::String(text)) => {
                let len = char_len(text);
                if len > max {
                    self.fail(format!("must be less than {} characters", max + 1), pointer);
                }
                if len < min {
                    self.fail(
                        format!("must be more than {} characters", min.saturating_sub(1)),
                        pointer,
                    );
                }
            }
            Some(_) => self.fail("must provide a string", pointer),
        }
    }

    /// A text object `{type: plain_text|mrkdwn, text}` whose text has `1..=max` characters.
    fn text_object(
        &mut self,
        value: Option<&Value>,
        pointer: &str,
        max: usize,
        plain_only: bool,
        required: bool,
    ) {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            if required {
                self.fail("missing required field", pointer);
            }
            return;
        };
        let Some(object) = value.as_object() else {
            self.fail("must provide an object", pointer);
            return;
        };
        match object.get("type").and_then(Value::as_str) {
            Some("plain_text") => {}
            Some("mrkdwn") if !plain_only => {}
            Some("mrkdwn") => self.fail(
                "must be a plain_text text object",
                &format!("{pointer}/type"),
            ),
            _ => self.fail(
                "failed to match all allowed schemas",
                &format!("{pointer}/type"),
            ),
        }
        self.string(object.get("text"), &format!("{pointer}/text"), 1, max, true);
    }

    fn block_id(&mut self, block: &Value, pointer: &str) {
        if let Some(id) = block.get("block_id").filter(|v| !v.is_null()) {
            self.string(Some(id), &format!("{pointer}/block_id"), 1, 255, true);
            if let Some(id) = id.as_str() {
                if !self.block_ids.insert(id.to_string()) {
                    self.fail(
                        format!("duplicate block_id {id:?}"),
                        &format!("{pointer}/block_id"),
                    );
                }
            }
        }
    }

    fn blocks(&mut self, blocks: &Value, pointer: &str, max: usize) {
        let Some(list) = blocks.as_array() else {
            self.fail("must provide an array", pointer);
            return;
        };
        if list.len() > max {
            self.fail(format!("must be no more than {max} items"), pointer);
        }
        for (i, block) in list.iter().enumerate() {
            self.block(block, &format!("{pointer}/{i}"));
        }
    }

    fn block(&mut self, block: &Value, pointer: &str) {
        self.block_id(block, pointer);
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "section" => {
                let text = block.get("text").filter(|v| !v.is_null());
                let fields = block.get("fields").filter(|v| !v.is_null());
                if text.is_none() && fields.is_none() {
                    self.fail("must provide text or fields", pointer);
                }
                self.text_object(text, &format!("{pointer}/text"), 3000, false, false);
                if let Some(fields) = fields {
                    match fields.as_array() {
                        Some(list) => {
                            if list.len() > 10 {
                                self.fail(
                                    "must be no more than 10 items",
                                    &format!("{pointer}/fields"),
                                );
                            }
                            if list.is_empty() {
                                self.fail(
                                    "must provide at least 1 item",
                                    &format!("{pointer}/fields"),
                                );
                            }
                            for (i, field) in list.iter().enumerate() {
                                self.text_object(
                                    Some(field),
                                    &format!("{pointer}/fields/{i}"),
                                    2000,
                                    false,
                                    true,
                                );
                            }
                        }
                        None => self.fail("must provide an array", &format!("{pointer}/fields")),
                    }
                }
                if let Some(accessory) = block.get("accessory").filter(|v| !v.is_null()) {
                    self.element(accessory, &format!("{pointer}/accessory"));
                }
            }
            "header" => {
                self.text_object(
                    block.get("text"),
                    &format!("{pointer}/text"),
                    150,
                    true,
                    true,
                );
            }
            "divider" => {}
            "actions" => {
                let elements = block.get("elements").and_then(Value::as_array);
                match elements {
                    Some(list) => {
                        if list.is_empty() || list.len() > 25 {
                            self.fail("must provide 1 to 25 items", &format!("{pointer}/elements"));
                        }
                        let mut action_ids = HashSet::new();
                        for (i, element) in list.iter().enumerate() {
                            let at = format!("{pointer}/elements/{i}");
                            self.element(element, &at);
                            if let Some(id) = element.get("action_id").and_then(Value::as_str) {
                                if !action_ids.insert(id.to_string()) {
                                    self.fail(
                                        format!("duplicate action_id {id:?} in block"),
                                        &format!("{at}/action_id"),
                                    );
                                }
                            }
                        }
                    }
                    None => self.fail("missing required field", &format!("{pointer}/elements")),
                }
            }
            "context" => match block.get("elements").and_then(Value::as_array) {
                Some(list) => {
                    if list.is_empty() || list.len() > 10 {
                        self.fail("must provide 1 to 10 items", &format!("{pointer}/elements"));
                    }
                    for (i, element) in list.iter().enumerate() {
                        let at = format!("{pointer}/elements/{i}");
                        match element.get("type").and_then(Value::as_str) {
                            Some("image") => {
                                self.string(
                                    element.get("image_url"),
                                    &format!("{at}/image_url"),
                                    1,
                                    3000,
                                    true,
                                );
                                self.string(
                                    element.get("alt_text"),
                                    &format!("{at}/alt_text"),
                                    1,
                                    2000,
                                    true,
                                );
                            }
                            _ => self.text_object(Some(element), &at, 3000, false, true),
                        }
                    }
                }
                None => self.fail("missing required field", &format!("{pointer}/elements")),
            },
            "input" => {
                self.text_object(
                    block.get("label"),
                    &format!("{pointer}/label"),
                    2000,
                    true,
                    true,
                );
                self.text_object(
                    block.get("hint"),
                    &format!("{pointer}/hint"),
                    2000,
                    true,
                    false,
                );
                match block.get("element").filter(|v| !v.is_null()) {
                    Some(element) => self.element(element, &format!("{pointer}/element")),
                    None => self.fail("missing required field", &format!("{pointer}/element")),
                }
            }
            "image" => {
                self.string(
                    block.get("image_url"),
                    &format!("{pointer}/image_url"),
                    1,
                    3000,
                    false,
                );
                self.string(
                    block.get("alt_text"),
                    &format!("{pointer}/alt_text"),
                    1,
                    2000,
                    true,
                );
                self.text_object(
                    block.get("title"),
                    &format!("{pointer}/title"),
                    2000,
                    true,
                    false,
                );
            }
            "markdown" => {
                self.string(
                    block.get("text"),
                    &format!("{pointer}/text"),
                    1,
                    12_000,
                    true,
                );
            }
            "rich_text" | "file" | "video" => {}
            other => self.fail(
                format!("unknown block type {other:?}: failed to match all allowed schemas"),
                pointer,
            ),
        }
    }

    fn options(&mut self, options: Option<&Value>, pointer: &str, max: usize) {
        let Some(options) = options.filter(|v| !v.is_null()) else {
            return;
        };
        let Some(list) = options.as_array() else {
            self.fail("must provide an array", pointer);
            return;
        };
        if list.len() > max {
            self.fail(format!("must be no more than {max} items"), pointer);
        }
        for (i, option) in list.iter().enumerate() {
            self.option(option, &format!("{pointer}/{i}"));
        }
    }

    fn option(&mut self, option: &Value, pointer: &str) {
        self.text_object(
            option.get("text"),
            &format!("{pointer}/text"),
            75,
            false,
            true,
        );
        self.string(
            option.get("value"),
            &format!("{pointer}/value"),
            1,
            150,
            true,
        );
        self.text_object(
            option.get("description"),
            &format!("{pointer}/description"),
            75,
            true,
            false,
        );
    }

    fn confirm(&mut self, confirm: Option<&Value>, pointer: &str) {
        let Some(confirm) = confirm.filter(|v| !v.is_null()) else {
            return;
        };
        self.text_object(
            confirm.get("title"),
            &format!("{pointer}/title"),
            100,
            true,
            true,
        );
        self.text_object(
            confirm.get("text"),
            &format!("{pointer}/text"),
            300,
            false,
            true,
        );
        self.text_object(
            confirm.get("confirm"),
            &format!("{pointer}/confirm"),
            30,
            true,
            true,
        );
        self.text_object(
            confirm.get("deny"),
            &format!("{pointer}/deny"),
            30,
            true,
            true,
        );
    }

    fn element(&mut self, element: &Value, pointer: &str) {
        let kind = element.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "image" {
            self.string(
                element.get("action_id"),
                &format!("{pointer}/action_id"),
                1,
                255,
                false,
            );
        }
        self.text_object(
            element.get("placeholder"),
            &format!("{pointer}/placeholder"),
            150,
            true,
            false,
        );
        self.confirm(element.get("confirm"), &format!("{pointer}/confirm"));
        match kind {
            "button" => {
                self.text_object(
                    element.get("text"),
                    &format!("{pointer}/text"),
                    75,
                    true,
                    true,
                );
                self.string(
                    element.get("value"),
                    &format!("{pointer}/value"),
                    1,
                    2000,
                    false,
                );
                self.string(
                    element.get("url"),
                    &format!("{pointer}/url"),
                    1,
                    3000,
                    false,
                );
                if let Some(style) = element.get("style").filter(|v| !v.is_null()) {
                    if !matches!(style.as_str(), Some("primary" | "danger")) {
                        self.fail(
                            "must be one of primary, danger",
                            &format!("{pointer}/style"),
                        );
                    }
                }
            }
            "static_select" | "multi_static_select" => {
                let options = element.get("options").filter(|v| !v.is_null());
                let groups = element.get("option_groups").filter(|v| !v.is_null());
                if options.is_none() && groups.is_none() {
                    self.fail("must provide options or option_groups", pointer);
                }
                self.options(options, &format!("{pointer}/options"), 100);
                if let Some(groups) = groups.and_then(Value::as_array) {
                    if groups.len() > 100 {
                        self.fail(
                            "must be no more than 100 items",
                            &format!("{pointer}/option_groups"),
                        );
                    }
                    for (i, group) in groups.iter().enumerate() {
                        let at = format!("{pointer}/option_groups/{i}");
                        self.text_object(
                            group.get("label"),
                            &format!("{at}/label"),
                            75,
                            true,
                            true,
                        );
                        self.options(group.get("options"), &format!("{at}/options"), 100);
                    }
                }
                let mut allowed: HashSet<String> = HashSet::new();
                for list in options
                    .into_iter()
                    .chain(groups.into_iter().flat_map(|g| {
                        g.as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|group| group.get("options"))
                    }))
                    .filter_map(Value::as_array)
                {
                    allowed.extend(
                        list.iter()
                            .filter_map(|o| o.get("value").and_then(Value::as_str))
                            .map(str::to_string),
                    );
                }
                let initial: Vec<(String, &Value)> = match element.get("initial_option") {
                    Some(option) if !option.is_null() => {
                        vec![(format!("{pointer}/initial_option"), option)]
                    }
                    _ => element
                        .get("initial_options")
                        .and_then(Value::as_array)
                        .map(|list| {
                            list.iter()
                                .enumerate()
                                .map(|(i, o)| (format!("{pointer}/initial_options/{i}"), o))
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                for (at, option) in initial {
                    self.option(option, &at);
                    let value = option.get("value").and_then(Value::as_str).unwrap_or("");
                    if !allowed.contains(value) {
                        self.fail("must match one of the provided options", &at);
                    }
                }
            }
            "checkboxes" | "radio_buttons" => {
                self.options(element.get("options"), &format!("{pointer}/options"), 10);
            }
            "overflow" => {
                self.options(element.get("options"), &format!("{pointer}/options"), 5);
            }
            "plain_text_input" => {
                let min = element.get("min_length").and_then(Value::as_u64);
                let max = element.get("max_length").and_then(Value::as_u64);
                if min.is_some_and(|m| m > 3000) {
                    self.fail(
                        "must be no more than 3000",
                        &format!("{pointer}/min_length"),
                    );
                }
                if max.is_some_and(|m| !(1..=3000).contains(&m)) {
                    self.fail(
                        "must be between 1 and 3000",
                        &format!("{pointer}/max_length"),
                    );
                }
                if let Some(initial) = element.get("initial_value").and_then(Value::as_str) {
                    if max.is_some_and(|m| char_len(initial) as u64 > m) {
                        self.fail(
                            "is longer than max_length",
                            &format!("{pointer}/initial_value"),
                        );
                    }
                }
            }
            "image" => {
                self.string(
                    element.get("image_url"),
                    &format!("{pointer}/image_url"),
                    1,
                    3000,
                    false,
                );
                self.string(
                    element.get("alt_text"),
                    &format!("{pointer}/alt_text"),
                    1,
                    2000,
                    true,
                );
            }
            "datepicker"
            | "timepicker"
            | "datetimepicker"
            | "users_select"
            | "multi_users_select"
            | "conversations_select"
            | "multi_conversations_select"
            | "channels_select"
            | "multi_channels_select"
            | "external_select"
            | "multi_external_select"
            | "number_input"
            | "email_text_input"
            | "url_text_input"
            | "rich_text_input"
            | "file_input"
            | "workflow_button" => {}
            other => self.fail(
                format!("unknown element type {other:?}: failed to match all allowed schemas"),
                pointer,
            ),
        }
    }

    fn view(&mut self, surface: Surface, view: &Value) {
        let pointer = "/view";
        let Some(object) = view.as_object() else {
            self.fail("must provide an object", pointer);
            return;
        };
        let kind = object.get("type").and_then(Value::as_str);
        match (surface, kind) {
            (Surface::Modal, Some("modal")) | (Surface::Home, Some("home")) => {}
            _ => self.fail(
                "type must be \"modal\" for views.open/update/push and \"home\" for views.publish",
                &format!("{pointer}/type"),
            ),
        }
        match object.get("blocks") {
            Some(blocks) => self.blocks(blocks, &format!("{pointer}/blocks"), 100),
            None => self.fail("missing required field", &format!("{pointer}/blocks")),
        }
        if surface == Surface::Modal {
            self.text_object(
                object.get("title"),
                &format!("{pointer}/title"),
                24,
                true,
                true,
            );
            self.text_object(
                object.get("submit"),
                &format!("{pointer}/submit"),
                24,
                true,
                false,
            );
            self.text_object(
                object.get("close"),
                &format!("{pointer}/close"),
                24,
                true,
                false,
            );
            let has_input = object
                .get("blocks")
                .and_then(Value::as_array)
                .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "input"));
            if has_input && object.get("submit").is_none_or(Value::is_null) {
                self.fail(
                    "submit is required when the view has input blocks",
                    &format!("{pointer}/submit"),
                );
            }
        } else {
            for field in ["submit", "close"] {
                if object.get(field).is_some_and(|v| !v.is_null()) {
                    self.fail(
                        "home views cannot have submit or close",
                        &format!("{pointer}/{field}"),
                    );
                }
            }
        }
        self.string(
            object.get("private_metadata"),
            &format!("{pointer}/private_metadata"),
            0,
            3000,
            false,
        );
        self.string(
            object.get("callback_id"),
            &format!("{pointer}/callback_id"),
            0,
            255,
            false,
        );
        self.string(
            object.get("external_id"),
            &format!("{pointer}/external_id"),
            0,
            255,
            false,
        );
    }
}

/// The DM channel between the bot and `user`, derived deterministically (`U123` → `D123`).
pub fn dm_channel_of(user: &str) -> String {
    let rest = user
        .strip_prefix('U')
        .or_else(|| user.strip_prefix('W'))
        .unwrap_or(user);
    format!("D{rest}")
}

/// Orders two `ts` strings as Slack does: seconds, then the fraction (never as floats).
fn ts_key(ts: &str) -> (u64, u64) {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    (secs.parse().unwrap_or(0), frac.parse().unwrap_or(0))
}

#[derive(Default)]
struct World {
    token: String,
    calls: Vec<Call>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// Messages per channel, in posting order (top-level and replies together).
    messages: BTreeMap<String, Vec<Value>>,
    ephemerals: Vec<Value>,
    /// Views by id, in creation order of their ids.
    views: BTreeMap<String, Value>,
    /// The Home view id of each user.
    homes: HashMap<String, String>,
    /// Custom `users.info` answers.
    users: HashMap<String, Value>,
    used_triggers: HashSet<String>,
    enforce_trigger_expiry: bool,
    enforce_tiers: bool,
    /// When the calls counted against each rate budget were made.
    budget_use: HashMap<String, VecDeque<Instant>>,
    ts_counter: u64,
    id_counter: u64,
    last_modal: Option<String>,
}

impl World {
    fn next_ts(&mut self) -> String {
        self.ts_counter += 100;
        format!(
            "{}.{:06}",
            1_700_000_000 + self.ts_counter / 1_000_000,
            self.ts_counter % 1_000_000
        )
    }

    fn next_id(&mut self) -> u64 {
        self.id_counter += 1;
        self.id_counter
    }

    fn next_hash(&mut self) -> String {
        let n = self.next_id();
        format!(
            "{}.{:08x}",
            1_700_000_000 + n,
            n.wrapping_mul(2_654_435_761) as u32
        )
    }

    /// With tiers enforced: `Some(retry_after_secs)` when this call exceeds its budget,
    /// otherwise counts it.
    fn over_budget(&mut self, method: &str, args: &Value, now: Instant) -> Option<u64> {
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

    fn message_mut(&mut self, channel: &str, ts: &str) -> Option<&mut Value> {
        self.messages
            .get_mut(channel)?
            .iter_mut()
            .find(|m| m["ts"] == ts)
    }

    fn dispatch(&mut self, method: &str, args: &Value) -> Value {
        match method {
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

    /// Where a message for `channel` lands: a user id means the bot's DM with that user.
    fn resolve_channel(channel: &str) -> String {
        if channel.starts_with('U') || channel.starts_with('W') {
            dm_channel_of(channel)
        } else {
            channel.to_string()
        }
    }

    fn post_message(&mut self, args: &Value) -> Value {
        let Some(channel) = str_arg(args, "channel") else {
            return error("channel_not_found");
        };
        if let Err(rejection) = check_block_kit(Surface::Message, args) {
            return rejection.to_response();
        }
        let channel = Self::resolve_channel(channel);
        let thread_ts = str_arg(args, "thread_ts").map(str::to_string);
        if let Some(parent_ts) = &thread_ts {
            let Some(parent) = self.message_mut(&channel, parent_ts) else {
                return error("thread_not_found");
            };
            if parent
                .get("thread_ts")
                .is_some_and(|t| t != parent_ts.as_str())
            {
                return error("cannot_reply_to_message");
            }
        }
        let ts = self.next_ts();
        let mut message = bot_message(args, &ts);
        if let Some(parent_ts) = &thread_ts {
            message["thread_ts"] = json!(parent_ts);
            message["parent_user_id"] = json!(BOT_USER_ID);
            let parent = self
                .message_mut(&channel, parent_ts)
                .expect("parent checked above");
            parent["thread_ts"] = json!(parent_ts);
            let count = parent["reply_count"].as_u64().unwrap_or(0) + 1;
            parent["reply_count"] = json!(count);
            parent["latest_reply"] = json!(ts);
        }
        self.messages
            .entry(channel.clone())
            .or_default()
            .push(message.clone());
        json!({"ok": true, "channel": channel, "ts": ts, "message": message})
    }

    fn update_message(&mut self, args: &Value) -> Value {
        let (Some(channel), Some(ts)) = (str_arg(args, "channel"), str_arg(args, "ts")) else {
            return error("message_not_found");
        };
        if channel.starts_with('U') || channel.starts_with('W') {
            return error("channel_not_found");
        }
        let Some(existing) = self.message_mut(channel, ts).cloned() else {
            return error("message_not_found");
        };
        if existing.get("bot_id").is_none() {
            return error("cant_update_message");
        }
        let mut updated = existing.clone();
        for field in ["text", "blocks", "attachments", "metadata"] {
            if let Some(value) = args.get(field).filter(|v| !v.is_null()) {
                updated[field] = value.clone();
            }
        }
        if let Err(rejection) = check_block_kit(Surface::Message, &updated) {
            return rejection.to_response();
        }
        let edited_ts = self.next_ts();
        updated["edited"] = json!({"user": BOT_USER_ID, "ts": edited_ts});
        *self.message_mut(channel, ts).expect("message found above") = updated.clone();
        json!({
            "ok": true,
            "channel": channel,
            "ts": ts,
            "text": updated["text"],
            "message": updated,
        })
    }

    fn post_ephemeral(&mut self, args: &Value) -> Value {
        let (Some(channel), Some(user)) = (str_arg(args, "channel"), str_arg(args, "user")) else {
            return error("user_not_in_channel");
        };
        if let Err(rejection) = check_block_kit(Surface::Message, args) {
            return rejection.to_response();
        }
        let ts = self.next_ts();
        let mut message = bot_message(args, &ts);
        message["channel"] = json!(Self::resolve_channel(channel));
        message["ephemeral_for"] = json!(user);
        self.ephemerals.push(message);
        json!({"ok": true, "message_ts": ts})
    }

    fn permalink(&mut self, args: &Value) -> Value {
        let (Some(channel), Some(ts)) = (str_arg(args, "channel"), str_arg(args, "message_ts"))
        else {
            return error("channel_not_found");
        };
        if self.message_mut(channel, ts).is_none() {
            return error("message_not_found");
        }
        json!({
            "ok": true,
            "channel": channel,
            "permalink": format!("https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{}", ts.replace('.', "")),
        })
    }

    fn open_conversation(&mut self, args: &Value) -> Value {
        let users: Vec<String> = match args.get("users") {
            Some(Value::String(list)) => list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => vec![],
        };
        let channel = match (str_arg(args, "channel"), users.as_slice()) {
            (Some(channel), _) => channel.to_string(),
            (None, []) => return error("users_list_not_supplied"),
            (None, [user]) => {
                if !(user.starts_with('U') || user.starts_with('W')) {
                    return error("user_not_found");
                }
                dm_channel_of(user)
            }
            (None, many) if many.len() > 8 => return error("too_many_users"),
            (None, many) => format!(
                "G{}",
                many.iter()
                    .map(|u| u.trim_start_matches(['U', 'W']))
                    .collect::<Vec<_>>()
                    .join("")
            ),
        };
        let already_open = self.messages.contains_key(&channel);
        self.messages.entry(channel.clone()).or_default();
        let mut info = json!({"id": channel});
        if args
            .get("return_im")
            .is_some_and(|v| v == true || v == "true")
        {
            info = json!({
                "id": channel,
                "created": 1_700_000_000,
                "is_im": true,
                "is_org_shared": false,
                "user": users.first(),
                "is_user_deleted": false,
                "priority": 0,
            });
        }
        json!({"ok": true, "channel": info, "already_open": already_open, "no_op": already_open})
    }

    fn listed(message: &Value, with_metadata: bool) -> Value {
        let mut message = message.clone();
        if !with_metadata {
            if let Some(object) = message.as_object_mut() {
                object.remove("metadata");
            }
        }
        message
    }

    fn history(&mut self, args: &Value) -> Value {
        let Some(channel) = str_arg(args, "channel") else {
            return error("channel_not_found");
        };
        if channel.starts_with('U') || channel.starts_with('W') {
            return error("channel_not_found");
        }
        let with_metadata = flag(args, "include_all_metadata");
        let inclusive = flag(args, "inclusive");
        let limit = num_arg(args, "limit").unwrap_or(100).clamp(1, 999) as usize;
        let oldest = str_arg(args, "oldest").map(ts_key);
        let mut latest = str_arg(args, "latest").map(ts_key);
        let mut inclusive_latest = inclusive;
        if let Some(cursor) = str_arg(args, "cursor").and_then(|c| c.strip_prefix("next_ts:")) {
            latest = Some(ts_key(cursor));
            inclusive_latest = false;
        }
        let mut top_level: Vec<&Value> = self
            .messages
            .get(channel)
            .map(|list| {
                list.iter()
                    .filter(|m| match m["thread_ts"].as_str() {
                        None => true,
                        Some(thread) => thread == m["ts"] || m["subtype"] == "thread_broadcast",
                    })
                    .filter(|m| {
                        let key = ts_key(m["ts"].as_str().unwrap_or(""));
                        oldest.is_none_or(|o| if inclusive { key >= o } else { key > o })
                            && latest
                                .is_none_or(|l| if inclusive_latest { key <= l } else { key < l })
                    })
                    .collect()
            })
            .unwrap_or_default();
        top_level.sort_by_key(|m| std::cmp::Reverse(ts_key(m["ts"].as_str().unwrap_or(""))));
        let has_more = top_level.len() > limit;
        top_level.truncate(limit);
        let messages: Vec<Value> = top_level
            .iter()
            .map(|m| Self::listed(m, with_metadata))
            .collect();
        let mut body = json!({
            "ok": true,
            "messages": messages,
            "has_more": has_more,
            "pin_count": 0,
        });
        if has_more {
            let last = messages.last().map(|m| m["ts"].clone()).unwrap_or_default();
            body["response_metadata"] =
                json!({"next_cursor": format!("next_ts:{}", last.as_str().unwrap_or(""))});
        }
        body
    }

    fn replies(&mut self, args: &Value) -> Value {
        let (Some(channel), Some(ts)) = (str_arg(args, "channel"), str_arg(args, "ts")) else {
            return error("thread_not_found");
        };
        let with_metadata = flag(args, "include_all_metadata");
        let Some(list) = self.messages.get(channel) else {
            return error("channel_not_found");
        };
        let Some(parent) = list.iter().find(|m| m["ts"] == ts) else {
            return error("thread_not_found");
        };
        let root = parent["thread_ts"].as_str().unwrap_or(ts).to_string();
        let mut thread: Vec<&Value> = list
            .iter()
            .filter(|m| m["ts"] == root.as_str() || m["thread_ts"] == root.as_str())
            .collect();
        thread.sort_by_key(|m| ts_key(m["ts"].as_str().unwrap_or("")));
        let limit = num_arg(args, "limit").unwrap_or(1000) as usize;
        let has_more = thread.len() > limit;
        thread.truncate(limit.max(1));
        json!({
            "ok": true,
            "messages": thread.iter().map(|m| Self::listed(m, with_metadata)).collect::<Vec<_>>(),
            "has_more": has_more,
        })
    }

    fn take_trigger(&mut self, trigger_id: Option<&str>) -> Result<(), Value> {
        let Some(trigger_id) = trigger_id else {
            return Err(error("invalid_trigger_id"));
        };
        let parts: Vec<&str> = trigger_id.split('.').collect();
        let well_formed = parts.len() == 3
            && parts[0].chars().all(|c| c.is_ascii_digit())
            && parts[1].chars().all(|c| c.is_ascii_digit())
            && !parts[0].is_empty()
            && parts[2].chars().all(|c| c.is_ascii_alphanumeric());
        if !well_formed {
            return Err(error("invalid_trigger_id"));
        }
        if self.used_triggers.contains(trigger_id) {
            return Err(error("exchanged_trigger_id"));
        }
        if self.enforce_trigger_expiry {
            // The signer's trigger ids start with the Unix time in milliseconds they were made.
            if let Ok(issued_ms) = parts[0].parse::<u128>() {
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                if issued_ms > 1_000_000_000_000
                    && now_ms.saturating_sub(issued_ms) > TRIGGER_LIFETIME.as_millis()
                {
                    return Err(error("expired_trigger_id"));
                }
            }
        }
        self.used_triggers.insert(trigger_id.to_string());
        Ok(())
    }

    fn stateful_view(
        &mut self,
        id: &str,
        view: &Value,
        root: &str,
        previous: Option<&str>,
    ) -> Value {
        let mut full = view.as_object().cloned().unwrap_or_default();
        let hash = self.next_hash();
        let defaults = [
            ("private_metadata", json!("")),
            ("callback_id", json!("")),
            ("external_id", json!("")),
            ("clear_on_close", json!(false)),
            ("notify_on_close", json!(false)),
        ];
        for (key, value) in defaults {
            if full.get(key).is_none_or(Value::is_null) {
                full.insert(key.to_string(), value);
            }
        }
        full.insert("id".into(), json!(id));
        full.insert("team_id".into(), json!(TEAM_ID));
        full.insert("state".into(), json!({"values": {}}));
        full.insert("hash".into(), json!(hash));
        full.insert("previous_view_id".into(), json!(previous));
        full.insert("root_view_id".into(), json!(root));
        full.insert("app_id".into(), json!(APP_ID));
        full.insert("app_installed_team_id".into(), json!(TEAM_ID));
        full.insert("bot_id".into(), json!(BOT_ID));
        Value::Object(full)
    }

    fn open_view(&mut self, args: &Value, push: bool) -> Value {
        let Some(view) = args.get("view").filter(|v| v.is_object()) else {
            return error("invalid_arguments");
        };
        if let Err(rejection) = check_block_kit(Surface::Modal, view) {
            return rejection.to_response();
        }
        let trigger =
            str_arg(args, "trigger_id").or_else(|| str_arg(args, "interactivity_pointer"));
        if let Err(refusal) = self.take_trigger(trigger) {
            return refusal;
        }
        if let Some(external_id) = str_arg(view, "external_id").filter(|e| !e.is_empty()) {
            if self.views.values().any(|v| v["external_id"] == external_id) {
                return error("duplicate_external_id");
            }
        }
        let id = format!("V{:010}", self.next_id());
        let (root, previous) = match (push, self.last_modal.clone()) {
            (true, Some(previous)) => {
                let root = self.views[&previous]["root_view_id"]
                    .as_str()
                    .unwrap_or(&previous)
                    .to_string();
                let depth = self
                    .views
                    .values()
                    .filter(|v| v["root_view_id"] == root.as_str())
                    .count();
                if depth >= 3 {
                    return error("push_limit_reached");
                }
                (root, Some(previous))
            }
            _ => (id.clone(), None),
        };
        let full = self.stateful_view(&id, view, &root, previous.as_deref());
        self.views.insert(id.clone(), full.clone());
        self.last_modal = Some(id);
        json!({"ok": true, "view": full})
    }

    fn update_view(&mut self, args: &Value) -> Value {
        let Some(view) = args.get("view").filter(|v| v.is_object()) else {
            return error("invalid_arguments");
        };
        let id = match (str_arg(args, "view_id"), str_arg(args, "external_id")) {
            (Some(id), _) => self.views.contains_key(id).then(|| id.to_string()),
            (None, Some(external)) => self
                .views
                .iter()
                .find(|(_, v)| v["external_id"] == external)
                .map(|(id, _)| id.clone()),
            (None, None) => return error("invalid_arguments"),
        };
        let Some(id) = id else {
            return error("not_found");
        };
        let surface = if self.views[&id]["type"] == "home" {
            Surface::Home
        } else {
            Surface::Modal
        };
        if let Err(rejection) = check_block_kit(surface, view) {
            return rejection.to_response();
        }
        if let Some(hash) = str_arg(args, "hash") {
            if self.views[&id]["hash"] != hash {
                return error("hash_conflict");
            }
        }
        let old = self.views[&id].clone();
        let root = old["root_view_id"].as_str().unwrap_or(&id).to_string();
        let previous = old["previous_view_id"].as_str().map(str::to_string);
        let full = self.stateful_view(&id, view, &root, previous.as_deref());
        self.views.insert(id, full.clone());
        json!({"ok": true, "view": full})
    }

    fn publish_view(&mut self, args: &Value) -> Value {
        let Some(user) = str_arg(args, "user_id") else {
            return error("invalid_arguments");
        };
        let Some(view) = args.get("view").filter(|v| v.is_object()) else {
            return error("invalid_arguments");
        };
        if let Err(rejection) = check_block_kit(Surface::Home, view) {
            return rejection.to_response();
        }
        let id = match self.homes.get(user) {
            Some(id) => id.clone(),
            None => format!("V{:010}", self.next_id()),
        };
        if let (Some(hash), Some(current)) = (str_arg(args, "hash"), self.views.get(&id)) {
            if current["hash"] != hash {
                return error("hash_conflict");
            }
        }
        let full = self.stateful_view(&id, view, &id, None);
        self.views.insert(id.clone(), full.clone());
        self.homes.insert(user.to_string(), id);
        json!({"ok": true, "view": full})
    }

    fn user_object(&self, user: &str) -> Option<Value> {
        if let Some(custom) = self.users.get(user) {
            return Some(custom.clone());
        }
        if !(user.starts_with('U') || user.starts_with('W')) || user.len() < 2 {
            return None;
        }
        let name = user.to_lowercase();
        Some(json!({
            "id": user,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": false,
            "real_name": format!("User {user}"),
            "tz": "UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "is_admin": false,
            "is_owner": false,
            "is_bot": user == BOT_USER_ID,
            "is_app_user": false,
            "updated": 1_700_000_000,
            "profile": {
                "real_name": format!("User {user}"),
                "display_name": name,
                "email": format!("{name}@example.com"),
                "team": TEAM_ID,
            },
        }))
    }

    fn user_info(&mut self, args: &Value) -> Value {
        match str_arg(args, "user").and_then(|u| self.user_object(u)) {
            Some(user) => json!({"ok": true, "user": user}),
            None => error("user_not_found"),
        }
    }

    fn lookup_by_email(&mut self, args: &Value) -> Value {
        let Some(email) = str_arg(args, "email") else {
            return error("users_not_found");
        };
        let custom = self
            .users
            .values()
            .find(|u| u["profile"]["email"] == email)
            .cloned();
        let derived = email
            .strip_suffix("@example.com")
            .map(str::to_uppercase)
            .and_then(|id| self.user_object(&id));
        match custom.or(derived) {
            Some(user) => json!({"ok": true, "user": user}),
            None => error("users_not_found"),
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

fn error(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn num_arg(args: &Value, name: &str) -> Option<u64> {
    match args.get(name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn flag(args: &Value, name: &str) -> bool {
    matches!(args.get(name), Some(Value::Bool(true)))
        || matches!(args.get(name).and_then(Value::as_str), Some("true" | "1"))
}

/// The message object Slack stores for a bot post.
fn bot_message(args: &Value, ts: &str) -> Value {
    let mut message = json!({
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": args.get("text").and_then(Value::as_str).unwrap_or(""),
        "ts": ts,
    });
    for field in ["blocks", "attachments", "metadata"] {
        if let Some(value) = args.get(field).filter(|v| !v.is_null()) {
            message[field] = value.clone();
        }
    }
    message
}

struct Shared {
    world: Mutex<World>,
    /// Bumped after every recorded call; `wait_for` watches it.
    changes: watch::Sender<u64>,
    /// Set when the fake goes away, so hanging requests end.
    closing: watch::Sender<bool>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Running {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.closing.send_replace(true);
        self.server.abort();
    }
}

/// A handle on a running fake Slack; clones share the same fake, which stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct FakeSlack {
    running: Arc<Running>,
}

impl FakeSlack {
    /// Starts a fake Slack on `127.0.0.1:0` that accepts [`DEFAULT_BOT_TOKEN`].
    pub async fn start() -> FakeSlack {
        Self::start_with_token(DEFAULT_BOT_TOKEN).await
    }

    /// Starts a fake Slack that accepts `token`.
    pub async fn start_with_token(token: &str) -> FakeSlack {
        let shared = Arc::new(Shared {
            world: Mutex::new(World {
                token: token.to_string(),
                ..World::default()
            }),
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
        FakeSlack {
            running: Arc::new(Running {
                shared,
                addr,
                server,
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.running.shared
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// `http://127.0.0.1:<port>/api`: what `SLACK_API_URL` should be.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// Makes the fake accept another bot token from now on.
    pub fn set_token(&self, token: &str) {
        self.shared().world().token = token.to_string();
    }

    /// Queues a fault for the next call of `method` (faults of a method are used in order).
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.shared()
            .world()
            .faults
            .entry(method.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Queues `fault` for each of the next `times` calls of `method`.
    pub fn fail_next_n(&self, method: &str, fault: Fault, times: usize) {
        for _ in 0..times {
            self.fail_next(method, fault.clone());
        }
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared().world().faults.clear();
    }

    /// Makes trigger_ids older than [`TRIGGER_LIFETIME`] fail with `expired_trigger_id`
    /// (their age is read from the signer's trigger id format).
    pub fn enforce_trigger_expiry(&self, enforce: bool) {
        self.shared().world().enforce_trigger_expiry = enforce;
    }

    /// Enforces Slack's rate tiers ([`rate_budget`]): a call over its method's budget gets
    /// HTTP 429 with `Retry-After` and does nothing. Off by default.
    pub fn enforce_tiers(&self, enforce: bool) {
        let mut world = self.shared().world();
        world.enforce_tiers = enforce;
        world.budget_use.clear();
    }

    /// Overrides what `users.info` answers for `user` (an object with at least `id`).
    pub fn set_user(&self, user: Value) {
        let id = user["id"].as_str().expect("user needs an id").to_string();
        self.shared().world().users.insert(id, user);
    }

    /// A fresh, unique `ts` from the fake's clock.
    pub fn next_ts(&self) -> String {
        self.shared().world().next_ts()
    }

    /// Stores a message a human wrote (as Slack would before sending the event), returning its
    /// `ts`; `thread_ts` makes it a reply.
    pub fn add_user_message(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        let mut world = self.shared().world();
        let ts = world.next_ts();
        let mut message = json!({
            "type": "message",
            "user": user,
            "team": TEAM_ID,
            "text": text,
            "ts": ts,
        });
        if let Some(parent_ts) = thread_ts {
            message["thread_ts"] = json!(parent_ts);
            if let Some(parent) = world.message_mut(channel, parent_ts) {
                parent["thread_ts"] = json!(parent_ts);
                let count = parent["reply_count"].as_u64().unwrap_or(0) + 1;
                parent["reply_count"] = json!(count);
                parent["latest_reply"] = json!(ts);
            }
        }
        world
            .messages
            .entry(channel.to_string())
            .or_default()
            .push(message);
        ts
    }

    /// Every call received, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared().world().calls.clone()
    }

    /// The calls of one method, oldest first.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.shared()
            .world()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The calls of one method that Slack answered `ok:true`.
    pub fn ok_calls_to(&self, method: &str) -> Vec<Call> {
        self.calls_to(method).into_iter().filter(Call::ok).collect()
    }

    /// Forgets the recorded calls (the world — messages, views — stays).
    pub fn clear_calls(&self) {
        self.shared().world().calls.clear();
    }

    /// The messages of a channel (a user id means the bot's DM with them), in posting order,
    /// replies included, as Slack stores them (with `metadata`, `edited`, `thread_ts`…).
    pub fn messages_in(&self, channel: &str) -> Vec<Value> {
        let channel = World::resolve_channel(channel);
        self.shared()
            .world()
            .messages
            .get(&channel)
            .cloned()
            .unwrap_or_default()
    }

    /// The top-level messages of a channel, in posting order.
    pub fn top_level_messages_in(&self, channel: &str) -> Vec<Value> {
        self.messages_in(channel)
            .into_iter()
            .filter(|m| m.get("thread_ts").is_none_or(|t| *t == m["ts"]))
            .collect()
    }

    /// The replies in the thread of `thread_ts`, oldest first.
    pub fn thread_replies(&self, channel: &str, thread_ts: &str) -> Vec<Value> {
        self.messages_in(channel)
            .into_iter()
            .filter(|m| m["thread_ts"] == thread_ts && m["ts"] != thread_ts)
            .collect()
    }

    /// One message by channel and ts.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.shared()
            .world()
            .message_mut(&World::resolve_channel(channel), ts)
            .cloned()
    }

    /// The bot's DM channel with `user`.
    pub fn dm_channel_of(&self, user: &str) -> String {
        dm_channel_of(user)
    }

    /// The messages in the bot's DM with `user`.
    pub fn dms_to(&self, user: &str) -> Vec<Value> {
        self.messages_in(&dm_channel_of(user))
    }

    /// Ephemeral messages shown to `user`, oldest first (each has `channel` and `ephemeral_for`).
    pub fn ephemerals_for(&self, user: &str) -> Vec<Value> {
        self.shared()
            .world()
            .ephemerals
            .iter()
            .filter(|m| m["ephemeral_for"] == user)
            .cloned()
            .collect()
    }

    /// The Home view last published for `user`, as the stateful view Slack keeps.
    pub fn home_of(&self, user: &str) -> Option<Value> {
        let world = self.shared().world();
        let id = world.homes.get(user)?;
        world.views.get(id).cloned()
    }

    /// A view by id.
    pub fn view(&self, id: &str) -> Option<Value> {
        self.shared().world().views.get(id).cloned()
    }

    /// The modal opened, pushed or updated last.
    pub fn last_modal(&self) -> Option<Value> {
        let world = self.shared().world();
        let id = world.last_modal.as_ref()?;
        world.views.get(id).cloned()
    }

    /// Waits, without sleeping, until `condition` holds for the calls received so far; returns
    /// them. On timeout the error lists every call.
    pub async fn wait_for<F>(
        &self,
        condition: F,
        timeout: Duration,
    ) -> Result<Vec<Call>, WaitTimeout>
    where
        F: Fn(&[Call]) -> bool,
    {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared().changes.subscribe();
        loop {
            changes.borrow_and_update();
            let calls = self.calls();
            if condition(&calls) {
                return Ok(calls);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    let calls = self.calls();
                    if condition(&calls) {
                        return Ok(calls);
                    }
                    return Err(WaitTimeout {
                        waited: started.elapsed(),
                        calls,
                    });
                }
            }
        }
    }

    /// [`FakeSlack::wait_for`] with [`DEFAULT_WAIT`].
    pub async fn wait_until<F>(&self, condition: F) -> Result<Vec<Call>, WaitTimeout>
    where
        F: Fn(&[Call]) -> bool,
    {
        self.wait_for(condition, DEFAULT_WAIT).await
    }

    /// Waits until at least `count` calls of `method` were answered `ok:true`; returns them.
    pub async fn wait_for_ok_calls(
        &self,
        method: &str,
        count: usize,
    ) -> Result<Vec<Call>, WaitTimeout> {
        self.wait_until(|calls| {
            calls
                .iter()
                .filter(|c| c.method == method && c.ok())
                .count()
                >= count
        })
        .await?;
        Ok(self.ok_calls_to(method))
    }

    /// Waits for the first call of `method` matching `condition`.
    pub async fn wait_for_call<F>(&self, method: &str, condition: F) -> Result<Call, WaitTimeout>
    where
        F: Fn(&Call) -> bool,
    {
        let calls = self
            .wait_until(|calls| calls.iter().any(|c| c.method == method && condition(c)))
            .await?;
        Ok(calls
            .into_iter()
            .find(|c| c.method == method && condition(c))
            .expect("condition held"))
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
        } else if token.as_deref() != Some(world.token.as_str()) {
            Planned::Answer(StatusCode::OK, error("invalid_auth"), None)
        } else if args.get("__invalid_json").is_some() {
            Planned::Answer(StatusCode::OK, error("invalid_json"), None)
        } else {
            fault = world.faults.get_mut(&method).and_then(VecDeque::pop_front);
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
