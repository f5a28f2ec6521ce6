//! Modals the bot opens, rendered from data. Pure functions, no I/O.
//!
//! Each modal carries the request id (decimal) as `private_metadata` and names its input
//! blocks after [`field`]: every input block's `block_id` equals its element's `action_id`.

use chrono::{DateTime, Utc};
use slack_morphism::prelude::*;

use super::blocks::{card_blocks, context, header, mention, request_row};
use super::ids::{callback, field};
use super::limits;
use super::mrkdwn::{escape, plain, truncate};
use crate::domain::{allowed, AccessRequest, Actor, App, CardKind};

/// Longest comment typed in the request modal (a plain-text input holds at most 3,000).
pub const COMMENT_MAX_CHARS: u64 = 3000;
/// Longest access length typed in a modal (`unlimited`, `30m`, `2w`, …).
const ACCESS_LENGTH_MAX_CHARS: u64 = 40;
/// Rows of "Your requests" kept in the App Home however many tasks there are.
const HOME_MIN_REQUESTS: usize = 5;

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
    let mut blocks = vec![section(&intro), permission_input(app, &request.permission)];
    blocks.extend(groups_input(app, &request.groups));
    blocks.push(access_length_input(&request.access_length.to_string()));
    modal("Edit request", "Save", request, callback::EDIT, blocks)
}

/// The `/access` modal (`callback_id` = [`callback::NEW_REQUEST`], `private_metadata` = the
/// selected app's slug, or empty).
///
/// The app select (block and action id [`field::APP`]) lists the first 100 apps of the
/// catalog (option value = slug) and sits in an input block with `dispatch_action: true`:
/// choosing an app sends a `block_actions` payload (`container.type` = `view`, action id
/// `app`, the slug in `actions[0].selected_option.value`), and the handler answers with
/// `views.update` (`view_id` = `view.id`, `hash` = `view.hash`) of
/// `request_modal(apps, Some(chosen), requester)`.
///
/// Once an app is selected, the modal also asks for the permission (first one preselected),
/// the groups (optional; left out when the app has none), the access length (`unlimited`),
/// a comment (optional) and the target user (the requester). On submission,
/// `view.state.values` looks like:
/// ```json
/// {
///   "app":           {"app":           {"type": "static_select",
///                                       "selected_option": {"text": {…}, "value": "github"}}},
///   "permission":    {"permission":    {"type": "static_select",
///                                       "selected_option": {"text": {…}, "value": "Member"}}},
///   "groups":        {"groups":        {"type": "multi_static_select", "selected_options": []}},
///   "access_length": {"access_length": {"type": "plain_text_input", "value": "unlimited"}},
///   "comment":       {"comment":       {"type": "plain_text_input", "value": null}},
///   "target_user":   {"target_user":   {"type": "users_select", "selected_user": "U123"}}
/// }
/// ```
/// Only `app` is there when no app was selected yet. An empty catalog gives a modal that
/// says so, with no inputs and no submit button.
pub fn request_modal(apps: &[App], selected: Option<&App>, requester: &str) -> SlackView {
    let title = plain("Request access", limits::MODAL_TITLE);
    if apps.is_empty() && selected.is_none() {
        return SlackView::Modal(
            SlackModalView::new(
                title.into(),
                vec![section(
                    "No apps are in the catalog yet. Ask an admin to add one.",
                )],
            )
            .with_close(plain("Close", limits::MODAL_BUTTON).into())
            .with_callback_id(SlackCallbackId::new(callback::NEW_REQUEST.to_string())),
        );
    }
    let mut blocks = vec![SlackBlock::Input(app_input(apps, selected))];
    match selected {
        None => blocks.push(context("Choose an app to see its permissions and groups.")),
        Some(app) => blocks.extend(request_inputs(app, requester)),
    }
    SlackView::Modal(
        SlackModalView::new(title.into(), blocks)
            .with_submit(plain("Request", limits::MODAL_BUTTON).into())
            .with_close(plain("Cancel", limits::MODAL_BUTTON).into())
            .with_callback_id(SlackCallbackId::new(callback::NEW_REQUEST.to_string()))
            .with_private_metadata(
                selected
                    .map(|app| plain(&app.slug, limits::PRIVATE_METADATA))
                    .unwrap_or_default(),
            ),
    )
}

/// The app select of the request modal; the selected app is always among its options.
fn app_input(apps: &[App], selected: Option<&App>) -> SlackInputBlock {
    let option = |app: &App| {
        SlackBlockChoiceItem::new(
            plain(&app.name, limits::OPTION_TEXT).into(),
            plain(&app.slug, limits::OPTION_VALUE),
        )
    };
    let mut options: Vec<_> = apps
        .iter()
        .take(limits::SELECT_OPTIONS)
        .map(option)
        .collect();
    let mut select = SlackBlockStaticSelectElement::new()
        .with_action_id(SlackActionId::new(field::APP.to_string()))
        .with_placeholder(plain("Choose an app", limits::PLACEHOLDER).into());
    if let Some(app) = selected {
        let chosen = option(app);
        if !options.iter().any(|o| o.value == chosen.value) {
            options.truncate(limits::SELECT_OPTIONS - 1);
            options.push(chosen.clone());
        }
        select = select.with_initial_option(chosen);
    }
    let mut block = input_block(field::APP, "App", select.with_options(options).into())
        .with_dispatch_action(true);
    if apps.len() > limits::SELECT_OPTIONS {
        block = block.with_hint(
            plain(
                &format!(
                    "Showing the first {} of {} apps.",
                    limits::SELECT_OPTIONS,
                    apps.len()
                ),
                limits::INPUT_LABEL,
            )
            .into(),
        );
    }
    block
}

/// The inputs of the request modal once `app` is selected.
fn request_inputs(app: &App, requester: &str) -> Vec<SlackBlock> {
    let mut blocks = vec![permission_input(app, app.default_permission())];
    blocks.extend(groups_input(app, &[]));
    blocks.push(access_length_input("unlimited"));
    let comment = SlackBlockPlainTextInputElement::new()
        .with_action_id(SlackActionId::new(field::COMMENT.to_string()))
        .with_multiline(true)
        .with_max_length(COMMENT_MAX_CHARS)
        .with_placeholder(plain("Why do you need it?", limits::PLACEHOLDER).into());
    blocks.push(SlackBlock::Input(
        input_block(field::COMMENT, "Comment", comment.into()).with_optional(true),
    ));
    let target = SlackBlockUsersSelectElement::new()
        .with_action_id(SlackActionId::new(field::TARGET_USER.to_string()))
        .with_initial_user(requester.to_string());
    blocks.push(SlackBlock::Input(input_block(
        field::TARGET_USER,
        "Who needs access",
        target.into(),
    )));
    blocks
}

/// The app's permissions as a single select, `selected` preselected when it is one of them
/// (Slack refuses an initial option that is not among the options).
fn permission_input(app: &App, selected: &str) -> SlackBlock {
    let permissions: Vec<_> = app
        .permissions
        .iter()
        .take(limits::SELECT_OPTIONS)
        .map(|name| choice(name))
        .collect();
    let mut select = SlackBlockStaticSelectElement::new()
        .with_action_id(SlackActionId::new(field::PERMISSION.to_string()))
        .with_placeholder(plain("Choose a permission", limits::PLACEHOLDER).into());
    if let Some(current) = permissions.iter().find(|o| o.value == selected) {
        select = select.with_initial_option(current.clone());
    }
    SlackBlock::Input(input_block(
        field::PERMISSION,
        "Permission",
        select.with_options(permissions).into(),
    ))
}

/// The app's groups as an optional multi select with `selected` preselected; none when the
/// app has no groups.
fn groups_input(app: &App, selected: &[String]) -> Option<SlackBlock> {
    if app.groups.is_empty() {
        return None;
    }
    let groups: Vec<_> = app
        .groups
        .iter()
        .take(limits::SELECT_OPTIONS)
        .map(|name| choice(name))
        .collect();
    let chosen: Vec<_> = groups
        .iter()
        .filter(|o| selected.contains(&o.value))
        .cloned()
        .collect();
    let mut select = SlackBlockMultiStaticSelectElement::new()
        .with_action_id(SlackActionId::new(field::GROUPS.to_string()))
        .with_placeholder(plain("Choose groups", limits::PLACEHOLDER).into());
    if !chosen.is_empty() {
        select = select.with_initial_options(chosen);
    }
    Some(SlackBlock::Input(
        input_block(field::GROUPS, "Groups", select.with_options(groups).into())
            .with_optional(true),
    ))
}

fn access_length_input(initial: &str) -> SlackBlock {
    let element = SlackBlockPlainTextInputElement::new()
        .with_action_id(SlackActionId::new(field::ACCESS_LENGTH.to_string()))
        .with_initial_value(plain(initial, limits::PLAIN_TEXT_INPUT))
        .with_max_length(ACCESS_LENGTH_MAX_CHARS);
    SlackBlock::Input(
        input_block(field::ACCESS_LENGTH, "Access Length", element.into())
            .with_hint(plain("unlimited, or e.g. 30m, 12h, 7d, 2w", limits::INPUT_LABEL).into()),
    )
}

/// The App Home tab of `user`.
///
/// "Your tasks": every request of `tasks` on which the policy lets `user` act at `now`,
/// rendered as the card they would get (approval, provisioning or removal, by status) with
/// the same live buttons (same action ids, value = request id), divided by dividers.
/// "Your requests": one row per request of `own` (in the order given; newest first reads
/// best) with the receipt's button the policy allows (`Cancel request`, `Release access`).
///
/// At most 100 blocks: tasks come first, but at least the first five requests keep their
/// place; each section ends with "…and N more" when not everything fits.
pub fn home(
    user: &str,
    tasks: &[AccessRequest],
    own: &[AccessRequest],
    now: DateTime<Utc>,
) -> SlackView {
    let actor = Actor::User(user.to_string());
    // A task is a request whose stage card would offer this user a button.
    let cards: Vec<Vec<SlackBlock>> = tasks
        .iter()
        .filter_map(|request| {
            let kind = CardKind::stage_card(request.status)?;
            let allowed = allowed(request, &actor, now);
            let acts = kind
                .actions(request.status)
                .iter()
                .any(|action| allowed.contains(*action));
            acts.then(|| card_blocks(request, kind, user, now))
        })
        .collect();
    let rows: Vec<Vec<SlackBlock>> = own
        .iter()
        .map(|r| vec![request_row(r, user, now)])
        .collect();

    // What the requests section needs at least: a divider, its header, and a few rows
    // (or the line saying there are none) with their "…and N more".
    let shown_rows = rows.len().clamp(1, HOME_MIN_REQUESTS);
    let requests_reserve = 2 + shown_rows + usize::from(rows.len() > HOME_MIN_REQUESTS);

    let mut blocks = vec![header("Your tasks")];
    if cards.is_empty() {
        blocks.push(section("Nothing waits for you."));
    } else {
        let budget = limits::VIEW_BLOCKS - requests_reserve - blocks.len();
        blocks.extend(fill(&cards, budget, true, "tasks"));
    }
    blocks.push(SlackBlock::Divider(SlackDividerBlock::new()));
    blocks.push(header("Your requests"));
    if rows.is_empty() {
        blocks.push(section(
            "You have not requested anything yet. Use `/access` to request an app.",
        ));
    } else {
        let budget = limits::VIEW_BLOCKS - blocks.len();
        blocks.extend(fill(&rows, budget, false, "requests"));
    }
    SlackView::Home(SlackHomeView::new(blocks))
}

/// As many `items` as fit in `budget` blocks (`budget` ≥ 1), optionally divided by
/// dividers, then "…and N more {what}" when some did not fit.
fn fill(items: &[Vec<SlackBlock>], budget: usize, divided: bool, what: &str) -> Vec<SlackBlock> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let divider = usize::from(divided && i > 0);
        let more = usize::from(i + 1 < items.len());
        if out.len() + divider + item.len() + more > budget {
            out.push(context(&format!("…and {} more {what}", items.len() - i)));
            break;
        }
        if divider == 1 {
            out.push(SlackBlock::Divider(SlackDividerBlock::new()));
        }
        out.extend(item.iter().cloned());
    }
    out
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
    use crate::domain::Status;

    /// The `action_id`s Slack sends back, as the Home tab must carry them.
    mod action {
        pub const CONFIRM_PROVISIONING: &str = "confirm_provisioning";
        pub const DENY: &str = "deny";
        pub const EDIT: &str = "edit";
        pub const CANCEL_REQUEST: &str = "cancel_request";
        pub const APPROVE: &str = "approve";
        pub const CONFIRM_REMOVAL: &str = "confirm_removal";
        pub const RELEASE_ACCESS: &str = "release_access";
    }
    use crate::slack::limits::testing::{app, assert_within_limits, huge_request, request, t};

    fn json(view: &SlackView) -> Value {
        let value = serde_json::to_value(view).unwrap();
        assert_eq!(value["type"], "modal");
        assert_within_limits(&value);
        value
    }

    fn home_json(view: &SlackView) -> Value {
        let value = serde_json::to_value(view).unwrap();
        assert_eq!(value["type"], "home");
        assert_within_limits(&value);
        value
    }

    fn catalog() -> Vec<App> {
        let mut jira = app();
        jira.slug = "jira".into();
        jira.name = "Jira".into();
        jira.groups.clear();
        vec![app(), jira]
    }

    fn types(view: &Value) -> Vec<String> {
        view["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap().to_string())
            .collect()
    }

    /// (action_id, value) of every button of a view, in order.
    fn buttons(view: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for block in view["blocks"].as_array().unwrap() {
            let elements = match block["type"].as_str().unwrap() {
                "actions" => block["elements"].as_array().unwrap().clone(),
                "section" if block["accessory"].is_object() => vec![block["accessory"].clone()],
                _ => continue,
            };
            for e in elements {
                out.push((
                    e["action_id"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap().to_string(),
                ));
            }
        }
        out
    }

    fn texts(view: &Value) -> Vec<String> {
        view["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| {
                b["text"]["text"]
                    .as_str()
                    .or_else(|| b["elements"][0]["text"].as_str())
            })
            .map(str::to_string)
            .collect()
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

    #[test]
    fn request_modal_without_an_app_asks_for_one_first() {
        let view = json(&request_modal(&catalog(), None, "UREQ"));
        assert_eq!(view["callback_id"], callback::NEW_REQUEST);
        assert_eq!(view["title"]["text"], "Request access");
        assert_eq!(view["submit"]["text"], "Request");
        assert_eq!(view["close"]["text"], "Cancel");
        assert_eq!(view["private_metadata"], "");
        assert_eq!(types(&view), ["input", "context"]);
        let block = input(&view, field::APP).unwrap();
        assert_eq!(block["dispatch_action"], true);
        assert!(block["optional"].is_null());
        let select = &block["element"];
        assert_eq!(select["type"], "static_select");
        assert_eq!(select["action_id"], field::APP);
        assert!(select["initial_option"].is_null());
        let options: Vec<(&str, &str)> = select["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["value"].as_str().unwrap(),
                    o["text"]["text"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(options, [("github", "GitHub"), ("jira", "Jira")]);
        assert!(view["blocks"][1]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Choose an app"));
    }

    #[test]
    fn request_modal_with_an_app_asks_for_everything_else() {
        let apps = catalog();
        let view = json(&request_modal(&apps, Some(&apps[0]), "UREQ"));
        assert_eq!(view["private_metadata"], "github");
        assert_eq!(view["submit"]["text"], "Request");
        let ids: Vec<&str> = view["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["block_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                field::APP,
                field::PERMISSION,
                field::GROUPS,
                field::ACCESS_LENGTH,
                field::COMMENT,
                field::TARGET_USER
            ]
        );
        let app = input(&view, field::APP).unwrap();
        assert_eq!(app["dispatch_action"], true);
        assert_eq!(app["element"]["initial_option"]["value"], "github");

        let permission = &input(&view, field::PERMISSION).unwrap()["element"];
        assert_eq!(permission["type"], "static_select");
        assert_eq!(permission["initial_option"]["value"], "Member");
        assert_eq!(permission["options"].as_array().unwrap().len(), 2);

        let groups = input(&view, field::GROUPS).unwrap();
        assert_eq!(groups["optional"], true);
        assert_eq!(groups["element"]["type"], "multi_static_select");
        assert_eq!(groups["element"]["options"].as_array().unwrap().len(), 3);
        assert!(groups["element"]["initial_options"].is_null());

        let length = input(&view, field::ACCESS_LENGTH).unwrap();
        assert_eq!(length["element"]["type"], "plain_text_input");
        assert_eq!(length["element"]["initial_value"], "unlimited");
        assert_eq!(
            length["hint"]["text"],
            "unlimited, or e.g. 30m, 12h, 7d, 2w"
        );

        let comment = input(&view, field::COMMENT).unwrap();
        assert_eq!(comment["optional"], true);
        assert_eq!(comment["element"]["multiline"], true);
        assert_eq!(comment["element"]["max_length"], 3000);
        assert_eq!(
            comment["element"]["placeholder"]["text"],
            "Why do you need it?"
        );

        let target = input(&view, field::TARGET_USER).unwrap();
        assert_eq!(target["label"]["text"], "Who needs access");
        assert_eq!(target["element"]["type"], "users_select");
        assert_eq!(target["element"]["initial_user"], "UREQ");
        assert!(target["optional"].is_null());

        let jira = json(&request_modal(&apps, Some(&apps[1]), "UREQ"));
        assert_eq!(jira["private_metadata"], "jira");
        assert!(input(&jira, field::GROUPS).is_none(), "Jira has no groups");
        assert!(input(&jira, field::PERMISSION).is_some());
    }

    #[test]
    fn request_modal_with_an_empty_catalog_says_so_and_cannot_be_submitted() {
        let view = json(&request_modal(&[], None, "UREQ"));
        assert_eq!(types(&view), ["section"]);
        assert_eq!(
            view["blocks"][0]["text"]["text"],
            "No apps are in the catalog yet. Ask an admin to add one."
        );
        assert!(view["submit"].is_null());
        assert_eq!(view["callback_id"], callback::NEW_REQUEST);
    }

    #[test]
    fn request_modal_for_the_longest_catalog_stays_within_limits() {
        let (_, big) = huge_request();
        let apps: Vec<App> = (0..150)
            .map(|i| {
                let mut a = big.clone();
                a.slug = format!("{}{i:03}", "x".repeat(77));
                a
            })
            .collect();
        let view = json(&request_modal(&apps, None, "UREQ"));
        let app = input(&view, field::APP).unwrap();
        assert_eq!(app["element"]["options"].as_array().unwrap().len(), 100);
        assert_eq!(app["hint"]["text"], "Showing the first 100 of 150 apps.");

        // An app beyond the first 100 stays selectable once chosen (e.g. by slug).
        let view = json(&request_modal(&apps, Some(&apps[140]), &"U".repeat(80)));
        let options = input(&view, field::APP).unwrap()["element"]["options"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(options.len(), 100);
        assert_eq!(options[99]["value"], apps[140].slug.as_str());
        assert_eq!(view["private_metadata"], apps[140].slug.as_str());
        for id in [field::PERMISSION, field::GROUPS] {
            let element = &input(&view, id).unwrap()["element"];
            assert_eq!(element["options"].as_array().unwrap().len(), 100);
        }
    }

    fn pending(id: i64, status: Status) -> AccessRequest {
        let mut r = request();
        r.id = id;
        r.status = status;
        if status != Status::PendingApproval {
            r.approved_by = Some("UAPPR1".into());
            r.approved_at = Some(t(10));
        }
        if matches!(
            status,
            Status::Provisioned | Status::PendingDeprovisioning | Status::Expired
        ) {
            r.decided_by = Some("UADMIN1".into());
            r.provisioned_at = Some(t(11));
            r.expires_at = Some(t(12));
        }
        r
    }

    #[test]
    fn home_shows_tasks_with_their_live_buttons_and_own_requests() {
        let tasks = [
            pending(1, Status::PendingApproval),
            pending(2, Status::PendingProvisioning),
            pending(3, Status::PendingDeprovisioning),
        ];
        // UAPPR1 approves; UADMIN1 provisions and removes.
        let view = home_json(&home("UADMIN1", &tasks, &[], t(12)));
        assert!(view["private_metadata"].as_str().unwrap_or("").is_empty());
        let got = buttons(&view);
        let want: Vec<(String, String)> = [
            (action::CONFIRM_PROVISIONING, "2"),
            (action::DENY, "2"),
            (action::EDIT, "2"),
            (action::CONFIRM_REMOVAL, "3"),
        ]
        .iter()
        .map(|(a, v)| (a.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want, "request 1 waits for the approvers, not UADMIN1");
        let kinds = types(&view);
        assert_eq!(kinds[0], "header");
        assert_eq!(kinds.iter().filter(|k| *k == "divider").count(), 2);
        let text = texts(&view).join("\n");
        assert!(text.contains("Please confirm provisioning"));
        assert!(text.contains("please remove it"));
        assert!(text.contains("You have not requested anything yet"));

        let view = home_json(&home("UAPPR1", &tasks, &[], t(12)));
        assert_eq!(
            buttons(&view)
                .iter()
                .map(|(a, v)| format!("{a}:{v}"))
                .collect::<Vec<_>>(),
            ["approve:1", "deny:1", "edit:1"]
        );
    }

    #[test]
    fn home_without_anything_says_so() {
        let view = home_json(&home(
            "UNOBODY",
            &[pending(1, Status::PendingApproval)],
            &[],
            t(12),
        ));
        assert_eq!(
            types(&view),
            ["header", "section", "divider", "header", "section"]
        );
        let text = texts(&view);
        assert_eq!(text[0], "Your tasks");
        assert_eq!(text[1], "Nothing waits for you.");
        assert_eq!(text[2], "Your requests");
        assert!(buttons(&view).is_empty());
    }

    #[test]
    fn home_lists_own_requests_with_cancel_while_pending_and_release_once_provisioned() {
        let mut denied = pending(4, Status::Denied);
        denied.decided_by = Some("UAPPR2".into());
        let mut other = pending(5, Status::PendingApproval);
        other.target_user = "UOTHER".into();
        let own = [
            pending(1, Status::PendingApproval),
            pending(2, Status::PendingProvisioning),
            pending(3, Status::Provisioned),
            denied,
            other,
        ];
        let view = home_json(&home("UREQ", &[], &own, t(12)));
        assert_eq!(
            buttons(&view)
                .iter()
                .map(|(a, v)| format!("{a}:{v}"))
                .collect::<Vec<_>>(),
            [
                format!("{}:1", action::CANCEL_REQUEST),
                format!("{}:2", action::CANCEL_REQUEST),
                format!("{}:3", action::RELEASE_ACCESS),
                format!("{}:5", action::CANCEL_REQUEST)
            ]
        );
        let rows: Vec<&Value> = view["blocks"].as_array().unwrap().iter().skip(4).collect();
        assert_eq!(rows.len(), 5);
        let row = |i: usize| rows[i]["text"]["text"].as_str().unwrap().to_string();
        assert!(row(0).starts_with("*GitHub* — Member · #1\n⏳ Pending approval by <@UAPPR1>"));
        assert!(row(0).contains("requested <!date^"));
        assert!(row(1).contains("Pending provisioning"));
        assert!(row(2).contains("Ready to go"));
        assert!(row(3).contains("Denied by <@UAPPR2>"));
        assert!(row(4).contains("for <@UOTHER>"));
        assert!(rows[0]["accessory"]["confirm"].is_object());
    }

    #[test]
    fn home_with_200_tasks_and_200_requests_keeps_to_100_blocks() {
        let (base, _) = huge_request();
        let user = base.approvers[0].clone();
        let admin = base.app_admins[0].clone();
        let many = |status: Status| -> Vec<AccessRequest> {
            (0..200)
                .map(|i| {
                    let mut r = base.clone();
                    r.id = i;
                    r.status = status;
                    r.approved_by = Some(base.approvers[1].clone());
                    r.approved_at = Some(t(10));
                    r
                })
                .collect()
        };
        let own_by = |requester: &str| -> Vec<AccessRequest> {
            let mut own = many(Status::PendingProvisioning);
            for r in &mut own {
                r.requester = requester.to_string();
            }
            own
        };
        let tasks = many(Status::PendingApproval);
        let own = own_by(&user);
        let view = home_json(&home(&user, &tasks, &own, t(12)));
        let blocks = view["blocks"].as_array().unwrap();
        assert!(
            blocks.len() <= 100 && blocks.len() >= 95,
            "{}",
            blocks.len()
        );
        let size = view.to_string().len();
        assert!(size < 250_000, "view_too_large above 250 kB: {size} bytes");
        // Headers are plain_text, which Slack never parses: only they hold the raw name.
        for block in blocks.iter().filter(|b| b["type"] != "header") {
            let block = block.to_string();
            assert!(!block.contains("<&>") && !block.contains("<!channel>"));
        }
        let text = texts(&view);
        let shown_tasks = buttons(&view)
            .iter()
            .filter(|(a, _)| a == action::APPROVE)
            .count();
        let shown_rows = buttons(&view)
            .iter()
            .filter(|(a, _)| a == action::CANCEL_REQUEST)
            .count();
        assert!(shown_tasks >= 10, "{shown_tasks}");
        assert!(shown_rows >= HOME_MIN_REQUESTS);
        assert!(text.contains(&format!("…and {} more tasks", 200 - shown_tasks)));
        assert!(text.contains(&format!("…and {} more requests", 200 - shown_rows)));
        let requests = text.iter().position(|t| t == "Your requests").unwrap();
        assert!(text[requests + 1].contains("Pending provisioning"));

        // Only own requests: they may use the whole view.
        let view = home_json(&home(&admin, &[], &own_by(&admin), t(12)));
        let rows = buttons(&view).len();
        assert_eq!(rows, 100 - 5, "header, line, divider, header, …and N more");
        assert!(texts(&view).contains(&format!("…and {} more requests", 200 - rows)));

        // Only tasks: the requests section keeps its header and line.
        let provisioning = many(Status::PendingProvisioning);
        let view = home_json(&home(&admin, &provisioning, &[], t(12)));
        let kinds = types(&view);
        assert_eq!(kinds[kinds.len() - 2..], ["header", "section"]);
        assert!(kinds.len() >= 95);
    }
}
