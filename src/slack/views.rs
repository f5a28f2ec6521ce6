//! Modals the bot opens, rendered from data. Pure functions, no I/O.
//!
//! Each modal carries the request id (decimal) as `private_metadata` and names its input
//! blocks after [`field`]: every input block's `block_id` equals its element's `action_id`.

use slack_morphism::prelude::*;

use super::ids::{callback, field};
use super::limits;
use super::mrkdwn::{escape, plain, truncate};
use crate::domain::{mention, AccessRequest, App};

/// Longest feedback a denier can type; it fits a card field and a message.
pub const FEEDBACK_MAX_CHARS: u64 = 2000;

/// The modal behind `Send feedback`: one multiline text field.
///
/// On submission (`callback_id` = [`callback::FEEDBACK`], `private_metadata` = request id):
/// `view.state.values["feedback"]["feedback"] = {"type": "plain_text_input", "value": "…"}`.
pub fn feedback_modal(request: &AccessRequest) -> SlackView {
    let intro = format!(
        "Tell {} why their request for *{}* was denied. They get it as a direct message.",
        mention(&request.requester),
        escape(&request.app_name)
    );
    let input = SlackBlockPlainTextInputElement::new()
        .with_action_id(SlackActionId::new(field::FEEDBACK.to_string()))
        .with_multiline(true)
        .with_max_length(FEEDBACK_MAX_CHARS)
        .with_placeholder(plain("What should they know?", limits::PLACEHOLDER).into());
    let blocks = vec![
        section(&intro),
        SlackBlock::Input(input_block(field::FEEDBACK, "Feedback", input.into())),
    ];
    modal("Send feedback", "Send", request, callback::FEEDBACK, blocks)
}

/// The modal behind `Edit`: the app's permissions (single select), its groups (multi
/// select, optional; left out when the app has none) and the access length, prefilled.
///
/// On submission (`callback_id` = [`callback::EDIT`], `private_metadata` = request id),
/// `view.state.values` looks like:
/// ```json
/// {
///   "permission":    {"permission":    {"type": "static_select",
///                                       "selected_option": {"text": {…}, "value": "Admin"}}},
///   "groups":        {"groups":        {"type": "multi_static_select",
///                                       "selected_options": [{"text": {…}, "value": "eng"}]}},
///   "access_length": {"access_length": {"type": "plain_text_input", "value": "7d"}}
/// }
/// ```
/// Option values are the permission and group names themselves. `groups` is absent when the
/// app has no groups, and `selected_options` is `[]` when none is chosen. An emptied text
/// field arrives as `"value": null` (Slack refuses to submit it: the block is required).
/// Errors go back with `response_action: errors` keyed by these same block ids.
pub fn edit_modal(request: &AccessRequest, app: &App) -> SlackView {
    let intro = format!(
        "{}'s request for {} to use *{}*.",
        mention(&request.requester),
        mention(&request.target_user),
        escape(&app.name)
    );
    let permissions: Vec<_> = app
        .permissions
        .iter()
        .take(limits::SELECT_OPTIONS)
        .map(|name| choice(name))
        .collect();
    let mut permission = SlackBlockStaticSelectElement::new()
        .with_action_id(SlackActionId::new(field::PERMISSION.to_string()))
        .with_placeholder(plain("Choose a permission", limits::PLACEHOLDER).into());
    // Slack refuses an initial option that is not among the options.
    if let Some(current) = permissions.iter().find(|o| o.value == request.permission) {
        permission = permission.with_initial_option(current.clone());
    }
    let permission = permission.with_options(permissions);
    let mut blocks = vec![
        section(&intro),
        SlackBlock::Input(input_block(
            field::PERMISSION,
            "Permissions",
            permission.into(),
        )),
    ];
    if !app.groups.is_empty() {
        let groups: Vec<_> = app
            .groups
            .iter()
            .take(limits::SELECT_OPTIONS)
            .map(|name| choice(name))
            .collect();
        let chosen: Vec<_> = groups
            .iter()
            .filter(|o| request.groups.contains(&o.value))
            .cloned()
            .collect();
        let mut select = SlackBlockMultiStaticSelectElement::new()
            .with_action_id(SlackActionId::new(field::GROUPS.to_string()))
            .with_placeholder(plain("Choose groups", limits::PLACEHOLDER).into());
        if !chosen.is_empty() {
            select = select.with_initial_options(chosen);
        }
        let select = select.with_options(groups);
        blocks.push(SlackBlock::Input(
            input_block(field::GROUPS, "Groups", select.into()).with_optional(true),
        ));
    }
    let length = SlackBlockPlainTextInputElement::new()
        .with_action_id(SlackActionId::new(field::ACCESS_LENGTH.to_string()))
        .with_initial_value(plain(
            &request.access_length.to_string(),
            limits::PLAIN_TEXT_INPUT,
        ))
        .with_max_length(40);
    blocks.push(SlackBlock::Input(
        input_block(field::ACCESS_LENGTH, "Access Length", length.into())
            .with_hint(plain("unlimited, or e.g. 30m, 12h, 7d, 2w", limits::INPUT_LABEL).into()),
    ));
    modal("Edit request", "Save", request, callback::EDIT, blocks)
}

fn modal(
    title: &str,
    submit: &str,
    request: &AccessRequest,
    callback_id: &str,
    blocks: Vec<SlackBlock>,
) -> SlackView {
    SlackView::Modal(
        SlackModalView::new(plain(title, limits::MODAL_TITLE).into(), blocks)
            .with_submit(plain(submit, limits::MODAL_BUTTON).into())
            .with_close(plain("Cancel", limits::MODAL_BUTTON).into())
            .with_callback_id(SlackCallbackId::new(callback_id.to_string()))
            .with_private_metadata(request.id.to_string()),
    )
}

/// An option whose value is the catalog name itself (names are at most 80 characters).
fn choice(name: &str) -> SlackBlockChoiceItem<SlackBlockPlainTextOnly> {
    SlackBlockChoiceItem::new(
        plain(name, limits::OPTION_TEXT).into(),
        plain(name, limits::OPTION_VALUE),
    )
}

fn input_block(id: &str, label: &str, element: SlackInputBlockElement) -> SlackInputBlock {
    SlackInputBlock::new(plain(label, limits::INPUT_LABEL).into(), element)
        .with_block_id(SlackBlockId::new(id.to_string()))
}

fn section(text: &str) -> SlackBlock {
    SlackBlock::Section(SlackSectionBlock::new().with_text(SlackBlockText::MarkDown(
        SlackBlockMarkDownText::new(truncate(text, limits::SECTION_TEXT)),
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::slack::limits::testing::{app, assert_within_limits, huge_request, request};

    fn json(view: &SlackView) -> Value {
        let value = serde_json::to_value(view).unwrap();
        assert_eq!(value["type"], "modal");
        assert_within_limits(&value);
        value
    }

    fn input<'a>(view: &'a Value, id: &str) -> Option<&'a Value> {
        view["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["block_id"] == id)
    }

    #[test]
    fn feedback_modal_has_one_long_text_field() {
        let view = json(&feedback_modal(&request()));
        assert_eq!(view["callback_id"], callback::FEEDBACK);
        assert_eq!(view["private_metadata"], "42");
        assert_eq!(view["title"]["text"], "Send feedback");
        assert_eq!(view["submit"]["text"], "Send");
        let block = input(&view, field::FEEDBACK).unwrap();
        assert_eq!(block["type"], "input");
        assert_eq!(block["element"]["type"], "plain_text_input");
        assert_eq!(block["element"]["action_id"], field::FEEDBACK);
        assert_eq!(block["element"]["multiline"], true);
        assert_eq!(block["element"]["max_length"], 2000);
    }

    #[test]
    fn edit_modal_is_prefilled_with_the_request() {
        let mut r = request();
        r.permission = "Admin".into();
        r.groups = vec!["eng".into(), "ops".into()];
        let view = json(&edit_modal(&r, &app()));
        assert_eq!(view["callback_id"], callback::EDIT);
        assert_eq!(view["private_metadata"], "42");
        assert_eq!(view["title"]["text"], "Edit request");
        assert_eq!(view["submit"]["text"], "Save");

        let permission = &input(&view, field::PERMISSION).unwrap()["element"];
        assert_eq!(permission["type"], "static_select");
        assert_eq!(permission["action_id"], field::PERMISSION);
        assert_eq!(permission["options"].as_array().unwrap().len(), 2);
        assert_eq!(permission["initial_option"]["value"], "Admin");

        let groups = input(&view, field::GROUPS).unwrap();
        assert_eq!(groups["optional"], true);
        assert_eq!(groups["element"]["type"], "multi_static_select");
        let chosen: Vec<&str> = groups["element"]["initial_options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(chosen, ["eng", "ops"]);

        let length = input(&view, field::ACCESS_LENGTH).unwrap();
        assert_eq!(length["element"]["initial_value"], "7d");
        assert!(length["hint"]["text"]
            .as_str()
            .unwrap()
            .contains("unlimited"));
    }

    #[test]
    fn edit_modal_leaves_out_groups_when_the_app_has_none() {
        let mut app = app();
        app.groups.clear();
        let mut r = request();
        r.groups.clear();
        let view = json(&edit_modal(&r, &app));
        assert!(input(&view, field::GROUPS).is_none());
        assert!(input(&view, field::PERMISSION).is_some());
    }

    #[test]
    fn edit_modal_never_preselects_what_the_catalog_no_longer_offers() {
        let mut r = request();
        r.permission = "Owner".into();
        r.groups = vec!["gone".into()];
        let view = json(&edit_modal(&r, &app()));
        assert!(input(&view, field::PERMISSION).unwrap()["element"]["initial_option"].is_null());
        assert!(input(&view, field::GROUPS).unwrap()["element"]["initial_options"].is_null());
    }

    #[test]
    fn modals_for_the_longest_catalog_stay_within_limits() {
        let (r, app) = huge_request();
        let view = json(&edit_modal(&r, &app));
        let groups = &input(&view, field::GROUPS).unwrap()["element"];
        assert_eq!(groups["options"].as_array().unwrap().len(), 100);
        assert_eq!(groups["initial_options"].as_array().unwrap().len(), 100);
        let permission = &input(&view, field::PERMISSION).unwrap()["element"];
        assert_eq!(permission["initial_option"]["value"], r.permission.as_str());
        let view = json(&feedback_modal(&r));
        assert!(!view.to_string().contains("<&>"));
    }
}
