//! Block Kit limits the renderers stay within. Slack rejects a payload that breaks one
//! (`invalid_blocks`, `invalid_arguments`, `msg_too_long`), and slack-morphism checks none
//! of them, so every renderer truncates to these numbers.
//!
//! Sources: docs.slack.dev Block Kit reference (blocks, block elements, composition
//! objects, modal views), `@slack/types` and `slack_sdk` 3.48 as summarised in
//! `shared/reference/slack-platform.md` §4.

/// Blocks in a modal or the App Home ("100 blocks in modals or Home tabs"; same page).
pub const VIEW_BLOCKS: usize = 100;
/// Section block `text` (section block reference; `@slack/types`).
pub const SECTION_TEXT: usize = 3000;
/// One section field's text (`@slack/types` blocks.ts).
pub const SECTION_FIELD: usize = 2000;
/// Header block text, plain_text only (`@slack/types`).
pub const HEADER_TEXT: usize = 150;
/// Button label (`@slack/types` block-elements.ts; Slack shows about 30).
pub const BUTTON_TEXT: usize = 75;
/// Confirmation dialog title (`@slack/types` composition-objects.ts).
pub const CONFIRM_TITLE: usize = 100;
/// Confirmation dialog text (same).
pub const CONFIRM_TEXT: usize = 300;
/// Confirmation dialog confirm/deny button labels (same).
pub const CONFIRM_BUTTON: usize = 30;
/// Modal `title` (modal view reference: 24 characters).
pub const MODAL_TITLE: usize = 24;
/// Modal `submit` and `close` labels (modal view reference: 24 characters).
pub const MODAL_BUTTON: usize = 24;
/// A view's `private_metadata` (modal view reference: 3000 characters).
pub const PRIVATE_METADATA: usize = 3000;
/// Input block `label` and `hint` (`@slack/types`).
pub const INPUT_LABEL: usize = 2000;
/// Placeholder text of an input element (`@slack/types`).
pub const PLACEHOLDER: usize = 150;
/// Option object `text` (`@slack/types`, `slack_sdk`).
pub const OPTION_TEXT: usize = 75;
/// Option object `value` (docs.slack.dev option object and `slack_sdk`: 150; older docs 75).
pub const OPTION_VALUE: usize = 150;
/// Options of one static select (`@slack/types`, `slack_sdk`: at most 100).
pub const SELECT_OPTIONS: usize = 100;
/// Text of one context block element (`@slack/types`).
pub const CONTEXT_TEXT: usize = 2000;
/// plain_text_input `initial_value` and `max_length` (plain-text input element reference).
pub const PLAIN_TEXT_INPUT: usize = 3000;
/// Message `text` fallback. chat.postMessage advises 4000 and chat.update answers
/// `msg_too_long` above 4000; we keep a margin.
pub const MESSAGE_TEXT: usize = 3000;

/// Shared by the renderers' tests: a sample request and a checker of every limit above
/// and of those below that no renderer comes near.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::Value;

    use super::*;
    use crate::domain::{AccessLength, AccessRequest, App, Status};

    // Limits only the checker needs: no renderer gets near them.
    /// Blocks in one message ("up to 50 blocks in each message"; docs.slack.dev blocks reference).
    pub const MESSAGE_BLOCKS: usize = 50;
    /// Fields of one section block (`@slack/types`: at most 10).
    pub const SECTION_FIELDS: usize = 10;
    /// Button `value` (`@slack/types` block-elements.ts).
    pub const BUTTON_VALUE: usize = 2000;
    /// Context block elements (`@slack/types`: at most 10).
    pub const CONTEXT_ELEMENTS: usize = 10;
    /// Cumulative text of all blocks of one message: undocumented, `msg_blocks_too_long` was
    /// observed near 13,200 characters (slackapi/bolt-js#2509); we stay well below.
    pub const MESSAGE_BLOCKS_TEXT: usize = 12_000;

    pub fn t(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap()
    }

    pub fn app() -> App {
        App {
            slug: "github".into(),
            name: "GitHub".into(),
            admins: vec!["UADMIN1".into(), "UADMIN2".into()],
            approvers: vec!["UAPPR1".into(), "UAPPR2".into()],
            permissions: vec!["Member".into(), "Admin".into()],
            groups: vec!["eng".into(), "design".into(), "ops".into()],
            admin_channel: None,
        }
    }

    /// Request 42 for GitHub by UREQ, pending approval.
    pub fn request() -> AccessRequest {
        let app = app();
        AccessRequest {
            id: 42,
            app: app.slug,
            app_name: app.name,
            target_user: "UREQ".into(),
            requester: "UREQ".into(),
            permission: "Member".into(),
            groups: vec!["eng".into()],
            comment: "Need it for the release".into(),
            access_length: "7d".parse::<AccessLength>().unwrap(),
            status: Status::PendingApproval,
            approvers: app.approvers,
            app_admins: app.admins,
            created_at: t(9),
            updated_at: t(9),
            version: 1,
            ..Default::default()
        }
    }

    /// The longest request the domain accepts: 100 approvers and admins with long ids,
    /// 100 groups of 80 characters, a 10,000-character hostile comment and feedback.
    pub fn huge_request() -> (AccessRequest, App) {
        let users = |prefix: char| -> Vec<String> {
            (0..100)
                .map(|i| format!("{prefix}{i:0>79}"))
                .collect::<Vec<_>>()
        };
        let groups: Vec<String> = (0..100)
            .map(|i| format!("{}xx{i:03}", "<&>".repeat(25)))
            .collect();
        let permissions: Vec<String> = (0..100)
            .map(|i| format!("{}x{i:03}", "<&".repeat(38)))
            .collect();
        let app = App {
            slug: "x".repeat(80),
            name: "<&>".repeat(26) + "xx",
            admins: users('A'),
            approvers: users('B'),
            permissions: permissions.clone(),
            groups: groups.clone(),
            admin_channel: None,
        };
        let mut request = request();
        request.app = app.slug.clone();
        request.app_name = app.name.clone();
        request.target_user = format!("T{}", "9".repeat(79));
        request.requester = format!("R{}", "8".repeat(79));
        request.permission = permissions[99].clone();
        request.groups = groups;
        request.comment = "<&>".repeat(3334);
        request.approvers = app.approvers.clone();
        request.app_admins = app.admins.clone();
        request.denial_feedback = Some("<!channel>&".repeat(1000));
        (request, app)
    }

    fn len(value: &Value) -> usize {
        value.as_str().map(|s| s.chars().count()).unwrap_or(0)
    }

    fn text_of(value: &Value) -> usize {
        len(&value["text"])
    }

    fn check_button(button: &Value, count: &mut impl FnMut(&Value, usize, &str)) {
        assert_eq!(button["type"], "button");
        count(&button["text"], BUTTON_TEXT, "button");
        assert!(len(&button["value"]) <= BUTTON_VALUE);
        let confirm = &button["confirm"];
        if !confirm.is_null() {
            assert!(text_of(&confirm["title"]) <= CONFIRM_TITLE);
            assert!(text_of(&confirm["text"]) <= CONFIRM_TEXT);
            assert!(text_of(&confirm["confirm"]) <= CONFIRM_BUTTON);
            assert!(text_of(&confirm["deny"]) <= CONFIRM_BUTTON);
        }
    }

    /// Asserts that a rendered message (`text` + `blocks`), modal or Home tab keeps every
    /// limit, and returns the total characters of text in its blocks.
    pub fn assert_within_limits(payload: &Value) -> usize {
        let blocks = payload["blocks"].as_array().expect("blocks");
        let view_type = payload.get("type").and_then(Value::as_str);
        let is_view = view_type.is_some();
        match view_type {
            Some("modal") => {
                assert!(blocks.len() <= VIEW_BLOCKS);
                assert!((1..=MODAL_TITLE).contains(&text_of(&payload["title"])));
                assert_eq!(payload["title"]["type"], "plain_text");
                assert!(text_of(&payload["submit"]) <= MODAL_BUTTON);
                assert!(text_of(&payload["close"]) <= MODAL_BUTTON);
                assert!(len(&payload["private_metadata"]) <= PRIVATE_METADATA);
                if blocks.iter().any(|b| b["type"] == "input") {
                    assert!(
                        text_of(&payload["submit"]) > 0,
                        "a modal with inputs needs a submit button"
                    );
                }
            }
            Some("home") => {
                assert!(blocks.len() <= VIEW_BLOCKS, "{} blocks", blocks.len());
                assert!(payload["title"].is_null() && payload["submit"].is_null());
                assert!(len(&payload["private_metadata"]) <= PRIVATE_METADATA);
            }
            Some(other) => panic!("unexpected view type {other}"),
            None => {
                assert!(blocks.len() <= MESSAGE_BLOCKS);
                assert!(len(&payload["text"]) <= MESSAGE_TEXT);
            }
        }
        assert!(!blocks.is_empty(), "Slack refuses an empty list of blocks");
        let mut block_ids: Vec<&str> = blocks
            .iter()
            .filter_map(|b| b["block_id"].as_str())
            .collect();
        let named = block_ids.len();
        block_ids.sort();
        block_ids.dedup();
        assert_eq!(block_ids.len(), named, "block ids are unique");
        let mut total = 0;
        let mut count = |value: &Value, max: usize, what: &str| {
            let n = text_of(value);
            assert!(n <= max, "{what} has {n} > {max} characters");
            total += n;
        };
        for block in blocks {
            match block["type"].as_str().unwrap() {
                "section" => {
                    if !block["text"].is_null() {
                        assert!(text_of(&block["text"]) > 0, "empty section text");
                        count(&block["text"], SECTION_TEXT, "section text");
                    }
                    let fields = block["fields"].as_array().cloned().unwrap_or_default();
                    assert!(fields.len() <= SECTION_FIELDS);
                    for field in &fields {
                        count(field, SECTION_FIELD, "section field");
                    }
                    if !block["accessory"].is_null() {
                        check_button(&block["accessory"], &mut count);
                    }
                }
                "header" => {
                    assert_eq!(block["text"]["type"], "plain_text");
                    count(&block["text"], HEADER_TEXT, "header");
                }
                "divider" => {}
                "context" => {
                    let elements = block["elements"].as_array().unwrap();
                    assert!(elements.len() <= CONTEXT_ELEMENTS);
                    for element in elements {
                        count(element, CONTEXT_TEXT, "context element");
                    }
                }
                "actions" => {
                    let elements = block["elements"].as_array().unwrap();
                    assert!(elements.len() <= 25);
                    let mut ids: Vec<&str> = elements
                        .iter()
                        .map(|e| e["action_id"].as_str().unwrap())
                        .collect();
                    ids.sort();
                    ids.dedup();
                    assert_eq!(ids.len(), elements.len(), "action ids are unique");
                    for button in elements {
                        check_button(button, &mut count);
                    }
                }
                "input" => {
                    assert!(is_view, "input blocks belong in views");
                    assert!(len(&block["block_id"]) <= 255);
                    assert!(text_of(&block["label"]) <= INPUT_LABEL);
                    assert!(text_of(&block["hint"]) <= INPUT_LABEL);
                    let element = &block["element"];
                    assert_eq!(element["action_id"], block["block_id"]);
                    assert!(text_of(&element["placeholder"]) <= PLACEHOLDER);
                    assert!(len(&element["initial_value"]) <= PLAIN_TEXT_INPUT);
                    if let Some(max) = element["max_length"].as_u64() {
                        assert!((1..=PLAIN_TEXT_INPUT as u64).contains(&max));
                    }
                    let options = element["options"].as_array().cloned().unwrap_or_default();
                    assert!(options.len() <= SELECT_OPTIONS);
                    for option in &options {
                        assert!(text_of(&option["text"]) <= OPTION_TEXT);
                        assert!(len(&option["value"]) <= OPTION_VALUE);
                    }
                    // Slack refuses initial options that are not among the options.
                    let initial = element["initial_option"].as_object().into_iter();
                    let initials = element["initial_options"].as_array().into_iter().flatten();
                    for chosen in initial
                        .map(|o| Value::Object(o.clone()))
                        .chain(initials.cloned())
                    {
                        assert!(options.contains(&chosen), "{chosen} is not an option");
                    }
                }
                other => panic!("unexpected block type {other}"),
            }
        }
        if !is_view {
            assert!(total <= MESSAGE_BLOCKS_TEXT, "{total} characters of text");
        }
        total
    }
}
