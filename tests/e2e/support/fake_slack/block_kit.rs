//! The Block Kit limits Slack enforces on messages and views, checked as Slack does.

use std::collections::HashSet;
use std::fmt;

use serde_json::{json, Value};

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
