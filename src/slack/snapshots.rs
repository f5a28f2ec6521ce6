//! Every Slack surface the bot renders, snapshot-tested as the text a person reads in Slack
//! (not as Block Kit JSON), so that a change of wording shows up in review as a diff of words.
//!
//! The surfaces are enumerated in code: every card kind in every situation (with the buttons
//! each viewer's copy shows), every notice, every refusal, the modals, the App Home and the
//! texts of `/access`. A new `Status`, `CardKind`, `Notice` or `Refusal` variant stops this
//! module from compiling until it has a snapshot. Times are fixed, so snapshots are stable.
//!
//! Accept changed snapshots with `INSTA_UPDATE=always cargo test --lib snapshots` (or move
//! the `.snap.new` files over the `.snap` files) after reading them; a missing snapshot fails.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use slack_morphism::prelude::{SlackMessageContent, SlackView};

use super::blocks::{
    card, help_text, notice, open_requests_text, refusal, relay_refusal, thread_relay,
    thread_summary,
};
use super::limits::testing::{app, assert_within_limits, request, t};
use super::views::{edit_modal, feedback_modal, home, request_modal};
use crate::domain::{
    decide, kept_thread_text, permit, AccessLength, AccessRequest, Action, Actor, App, CardKind,
    Command, Field, FieldChange, Notice, Refusal, RelayRefusal, Role, Status, ThreadMessage,
    Unreachable, Unreached, ValidationError,
};

// ---------------------------------------------------------------------------------------
// The renderer: Block Kit JSON as text.
// ---------------------------------------------------------------------------------------

/// Slack mrkdwn as a reader sees it: `<@U1>` as `@U1`, a `<!date^…|fallback>` as its
/// fallback, `<!channel>` as `@channel`, links as `label (url)`, entities decoded.
/// Emphasis (`*bold*`, `_italic_`) stays, so it can be reviewed too.
fn readable(mrkdwn: &str) -> String {
    let mut out = String::new();
    let mut rest = mrkdwn;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            break;
        };
        out.push_str(&token(&after[..close]));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What Slack shows for one `<…>` token.
fn token(inner: &str) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(label)),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        format!("@{user}")
    } else if let Some(channel) = target.strip_prefix('#') {
        format!("#{}", label.unwrap_or(channel))
    } else if target.starts_with("!date^") {
        label.unwrap_or(target).to_string()
    } else if let Some(special) = target.strip_prefix('!') {
        label.map_or_else(|| format!("@{special}"), str::to_string)
    } else {
        match label {
            Some(label) => format!("{label} ({target})"),
            None => target.to_string(),
        }
    }
}

/// A text object: mrkdwn made readable, plain_text as it is (Slack never parses it).
fn text(object: &Value) -> String {
    let raw = object["text"].as_str().unwrap_or("");
    if object["type"] == "mrkdwn" {
        readable(raw)
    } else {
        raw.to_string()
    }
}

/// `[Label] (style, action_id, value V, with confirm "title / text / confirm / deny")`.
fn button(element: &Value) -> String {
    assert_eq!(element["type"], "button", "{element}");
    let mut out = format!(
        "[{}] ({}, {}",
        text(&element["text"]),
        element["style"].as_str().unwrap_or("plain"),
        element["action_id"].as_str().unwrap_or("?")
    );
    if let Some(value) = element["value"].as_str() {
        write!(out, ", value {value}").unwrap();
    }
    let confirm = &element["confirm"];
    if !confirm.is_null() {
        write!(
            out,
            ", with confirm \"{} / {} / {} / {}\"",
            text(&confirm["title"]),
            text(&confirm["text"]),
            text(&confirm["confirm"]),
            text(&confirm["deny"])
        )
        .unwrap();
    }
    out.push(')');
    out
}

/// Continuation lines of a multi-line value, indented under their first line.
fn indented(value: &str) -> String {
    value.lines().collect::<Vec<_>>().join("\n    ")
}

/// A section field `*Label*\nvalue` as `Label: value`.
fn field_line(field: &Value) -> String {
    let shown = text(field);
    match shown.split_once('\n') {
        Some((label, value)) if label.starts_with('*') && label.ends_with('*') => {
            format!("{}: {}", label.trim_matches('*'), indented(value))
        }
        _ => indented(&shown),
    }
}

fn option(option: &Value) -> String {
    let shown = text(&option["text"]);
    match option["value"].as_str() {
        Some(value) if value != shown => format!("{shown} (= {value})"),
        _ => shown,
    }
}

fn input(block: &Value, out: &mut String) {
    let element = &block["element"];
    let mut traits = vec![
        element["type"].as_str().unwrap_or("?").to_string(),
        format!("block {}", block["block_id"].as_str().unwrap_or("?")),
    ];
    if block["optional"] == true {
        traits.push("optional".into());
    }
    if block["dispatch_action"] == true {
        traits.push("updates the form when changed".into());
    }
    if element["multiline"] == true {
        traits.push("multiline".into());
    }
    if let Some(max) = element["max_length"].as_u64() {
        traits.push(format!("at most {max} characters"));
    }
    writeln!(
        out,
        "Input \"{}\" ({})",
        text(&block["label"]),
        traits.join(", ")
    )
    .unwrap();
    if !element["placeholder"].is_null() {
        writeln!(out, "  placeholder: {}", text(&element["placeholder"])).unwrap();
    }
    if let Some(value) = element["initial_value"].as_str() {
        writeln!(out, "  initial value: {value}").unwrap();
    }
    if let Some(user) = element["initial_user"].as_str() {
        writeln!(out, "  initial user: @{user}").unwrap();
    }
    if !element["initial_option"].is_null() {
        writeln!(out, "  selected: {}", option(&element["initial_option"])).unwrap();
    }
    if let Some(chosen) = element["initial_options"].as_array() {
        let chosen: Vec<String> = chosen.iter().map(option).collect();
        writeln!(out, "  selected: {}", chosen.join(", ")).unwrap();
    }
    if let Some(options) = element["options"].as_array() {
        let options: Vec<String> = options.iter().map(option).collect();
        writeln!(out, "  options: {}", options.join(" | ")).unwrap();
    }
    if !block["hint"].is_null() {
        writeln!(out, "  hint: {}", text(&block["hint"])).unwrap();
    }
}

/// The blocks of a message or view, one paragraph per block.
fn blocks(blocks: &Value, out: &mut String) {
    for block in blocks.as_array().expect("blocks") {
        out.push('\n');
        match block["type"].as_str().unwrap_or("") {
            "header" => writeln!(out, "# {}", text(&block["text"])).unwrap(),
            "section" => {
                if !block["text"].is_null() {
                    writeln!(out, "{}", text(&block["text"])).unwrap();
                }
                for field in block["fields"].as_array().into_iter().flatten() {
                    writeln!(out, "{}", field_line(field)).unwrap();
                }
                if !block["accessory"].is_null() {
                    writeln!(out, "  ↳ {}", button(&block["accessory"])).unwrap();
                }
            }
            "context" => {
                for element in block["elements"].as_array().into_iter().flatten() {
                    writeln!(out, "(small print) {}", indented(&text(element))).unwrap();
                }
            }
            "divider" => writeln!(out, "────────────").unwrap(),
            "actions" => {
                for element in block["elements"].as_array().into_iter().flatten() {
                    writeln!(out, "{}", button(element)).unwrap();
                }
            }
            "input" => input(block, out),
            other => panic!("no rendering for block type {other}"),
        }
    }
}

fn message_json(message: &SlackMessageContent) -> Value {
    let value = serde_json::to_value(message).unwrap();
    assert_within_limits(&value);
    value
}

/// A message as its recipient reads it: the notification text, then the blocks.
fn message_text(message: &SlackMessageContent) -> String {
    let value = message_json(message);
    let mut out = format!(
        "Notification: {}\n",
        readable(value["text"].as_str().unwrap_or(""))
    );
    blocks(&value["blocks"], &mut out);
    out
}

/// A modal or the App Home as its user reads it.
fn view_text(view: &SlackView) -> String {
    let value = serde_json::to_value(view).unwrap();
    assert_within_limits(&value);
    let mut out = String::new();
    match value["type"].as_str() {
        Some("modal") => {
            writeln!(out, "Modal \"{}\"", text(&value["title"])).unwrap();
            let submit = match value["submit"].is_null() {
                true => "(none)".to_string(),
                false => format!("[{}]", text(&value["submit"])),
            };
            writeln!(out, "Submit: {submit}  Close: [{}]", text(&value["close"])).unwrap();
            writeln!(
                out,
                "(callback_id {}, private_metadata {:?})",
                value["callback_id"].as_str().unwrap_or(""),
                value["private_metadata"].as_str().unwrap_or("")
            )
            .unwrap();
        }
        Some("home") => writeln!(out, "App Home").unwrap(),
        other => panic!("no rendering for view type {other:?}"),
    }
    blocks(&value["blocks"], &mut out);
    out
}

/// A plain message text (`/access` answers, ephemeral refusals, thread replies).
fn snippet(mrkdwn: &str) -> String {
    assert!(mrkdwn.chars().count() <= super::limits::MESSAGE_TEXT);
    readable(mrkdwn)
}

// ---------------------------------------------------------------------------------------
// The situations: one request of GitHub by UREQ for UTARGET, through every status.
// ---------------------------------------------------------------------------------------

const REQUESTER: &str = "UREQ";
const TARGET: &str = "UTARGET";
const APPROVER: &str = "UAPPR1";
const ADMIN: &str = "UADMIN1";
const OUTSIDER: &str = "UOUTSIDER";
const CHANNEL: &str = "CADMINS";
/// The approver who denies, when the request is denied.
const DENIER: &str = "UAPPR2";

/// When the 7-day grant (provisioned at 11:00) ends.
fn expires() -> DateTime<Utc> {
    t(11) + Duration::days(7)
}

/// "Now" for every rendering: after everything the situations record.
fn now() -> DateTime<Utc> {
    expires() + Duration::hours(6)
}

fn pending_approval() -> AccessRequest {
    let mut r = request();
    r.target_user = TARGET.into();
    r.admin_channel = Some(CHANNEL.into());
    r
}

fn pending_provisioning() -> AccessRequest {
    let mut r = pending_approval();
    r.status = Status::PendingProvisioning;
    r.approved_by = Some(APPROVER.into());
    r.approved_at = Some(t(10));
    r
}

fn provisioned() -> AccessRequest {
    let mut r = pending_provisioning();
    r.status = Status::Provisioned;
    r.decided_by = Some(ADMIN.into());
    r.decided_at = Some(t(11));
    r.provisioned_at = Some(t(11));
    r.expires_at = Some(expires());
    r
}

fn denied(feedback: Option<&str>) -> AccessRequest {
    let mut r = pending_approval();
    r.status = Status::Denied;
    r.decided_by = Some(DENIER.into());
    r.decided_at = Some(t(10));
    r.denial_feedback = feedback.map(str::to_string);
    r
}

fn canceled() -> AccessRequest {
    let mut r = pending_approval();
    r.status = Status::Canceled;
    r.decided_by = Some(REQUESTER.into());
    r.decided_at = Some(t(10));
    r
}

/// The access length elapsed; the admins are asked to remove the access.
fn time_up() -> AccessRequest {
    let mut r = provisioned();
    r.status = Status::PendingDeprovisioning;
    r
}

/// The target released the grant early, the day it was provisioned.
fn released() -> AccessRequest {
    let mut r = provisioned();
    r.status = Status::PendingDeprovisioning;
    r.released_by = Some(TARGET.into());
    r.released_at = Some(t(15));
    r
}

fn removed(mut r: AccessRequest, at: DateTime<Utc>) -> AccessRequest {
    r.status = Status::Expired;
    r.removed_by = Some("UADMIN2".into());
    r.removed_at = Some(at);
    r
}

const FEEDBACK: &str = "Please ask for the read-only role first.\nAdmin needs a security review.";

/// The operator who closes stuck requests, as they name themselves to the API.
const OPERATOR: &str = "it-ops <ops@example.com>";
const CLOSE_REASON: &str = "The app admins left the company.\nThe account is tracked in IT-4411.";

/// `r` closed by [`OPERATOR`] at `at`, as the domain closes it.
fn closed(r: AccessRequest, at: DateTime<Utc>) -> AccessRequest {
    let close = Command::Close {
        reason: CLOSE_REASON.into(),
        operator: OPERATOR.into(),
    };
    decide(&r, &Actor::Api, &close, at).unwrap().request
}

/// Every status, in every situation that reads differently. The `match` makes a new status
/// a compile error here until it has its situations.
fn situations() -> Vec<(&'static str, AccessRequest)> {
    Status::ALL
        .into_iter()
        .flat_map(|status| match status {
            Status::PendingApproval => vec![("pending_approval", pending_approval())],
            Status::PendingProvisioning => vec![("pending_provisioning", pending_provisioning())],
            Status::Provisioned => vec![("provisioned", provisioned())],
            Status::Denied => vec![
                ("denied", denied(None)),
                ("denied_with_feedback", denied(Some(FEEDBACK))),
            ],
            Status::Canceled => vec![
                ("canceled", canceled()),
                (
                    "canceled_by_an_operator_while_pending",
                    closed(pending_provisioning(), t(14)),
                ),
            ],
            Status::PendingDeprovisioning => vec![
                ("pending_deprovisioning_time_up", time_up()),
                ("pending_deprovisioning_released", released()),
            ],
            Status::Expired => vec![
                (
                    "expired",
                    removed(time_up(), expires() + Duration::hours(2)),
                ),
                ("expired_after_release", removed(released(), t(16))),
                (
                    "expired_closed_by_an_operator_at_removal",
                    closed(time_up(), expires() + Duration::hours(3)),
                ),
                (
                    "expired_closed_by_an_operator_while_provisioned",
                    closed(provisioned(), t(14)),
                ),
            ],
        })
        .collect()
}

/// Every card kind. The `match` makes a new kind a compile error here.
fn kinds() -> Vec<CardKind> {
    let every = [
        CardKind::Approval,
        CardKind::Provisioning,
        CardKind::Removal,
        CardKind::Receipt,
    ];
    for kind in every {
        match kind {
            CardKind::Approval | CardKind::Provisioning | CardKind::Removal | CardKind::Receipt => {
            }
        }
    }
    every.to_vec()
}

/// Who may see a copy of a card of `r`: (who they are, their id).
fn viewers(r: &AccessRequest) -> Vec<(&'static str, String)> {
    let mut viewers = vec![("requester", r.requester.clone())];
    if r.target_user != r.requester {
        viewers.push(("target", r.target_user.clone()));
    }
    viewers.extend([("approver", APPROVER.into()), ("app admin", ADMIN.into())]);
    viewers.push(("outsider", OUTSIDER.into()));
    if let Some(channel) = &r.admin_channel {
        viewers.push(("admin channel", channel.clone()));
    }
    if r.status == Status::Denied {
        if let Some(denier) = &r.decided_by {
            viewers.push(("denier", denier.clone()));
        }
    }
    viewers
}

/// The buttons of a rendered card, in full.
fn card_buttons(card: &Value) -> Vec<String> {
    card["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter().map(button))
        .collect()
}

fn without_buttons(card: &Value) -> Value {
    let mut card = card.clone();
    card["blocks"]
        .as_array_mut()
        .unwrap()
        .retain(|b| b["type"] != "actions");
    card
}

fn card_snapshot(kind: CardKind, situation: &str, r: &AccessRequest) -> String {
    let shown = card(r, kind, ADMIN, now());
    let admin_copy = message_json(&shown);
    let mut out = format!(
        "{} card of a request {situation}, as the app admin @{ADMIN} gets it:\n\n",
        kind.as_str()
    );
    out.push_str(&message_text(&shown));
    out.push_str("\nButtons on each viewer's copy:\n");
    let mut in_full: Vec<String> = Vec::new();
    for (who, id) in viewers(r) {
        let copy = message_json(&card(r, kind, &id, now()));
        // An outsider never gets a card; one who holds a card of a live stage was dropped
        // from the app's lists (`the_card_of_someone_no_longer_assigned_…`).
        if who != "outsider" {
            assert_eq!(
                without_buttons(&copy),
                without_buttons(&admin_copy),
                "copies differ only in their buttons"
            );
        }
        let buttons = card_buttons(&copy);
        let labels: Vec<String> = buttons
            .iter()
            .map(|b| {
                b.split_once(" (")
                    .map_or(b.as_str(), |(l, _)| l)
                    .to_string()
            })
            .collect();
        let shown = match labels.is_empty() {
            true => "none".to_string(),
            false => labels.join(" "),
        };
        let sign = if id.starts_with('C') { '#' } else { '@' };
        writeln!(out, "- {who} {sign}{id}: {shown}").unwrap();
        for button in buttons {
            if !in_full.contains(&button) {
                in_full.push(button);
            }
        }
    }
    if !in_full.is_empty() {
        out.push_str("\nThose buttons in full:\n");
        for button in in_full {
            writeln!(out, "{button}").unwrap();
        }
    }
    out
}

#[test]
fn every_card_kind_in_every_situation_reads_well_and_shows_each_viewer_their_buttons() {
    for kind in kinds() {
        for (situation, r) in situations() {
            insta::assert_snapshot!(
                format!("card_{}_{situation}", kind.as_str()),
                card_snapshot(kind, situation, &r)
            );
        }
    }
}

/// The app's lists changed while a stage waited: the card of whoever was dropped (an
/// approver, an admin, the old admin channel) says so and has no buttons.
#[test]
fn the_card_of_someone_no_longer_assigned_says_so_with_no_buttons() {
    let mut approval = pending_approval();
    approval.approvers.retain(|id| id != APPROVER);
    let mut provisioning = pending_provisioning();
    provisioning.app_admins = vec!["UADMIN2".into()];
    let mut removal = time_up();
    removal.admin_channel = Some("CNEWADMINS".into());
    for (name, r, kind, recipient) in [
        ("approver", approval, CardKind::Approval, APPROVER),
        ("admin", provisioning, CardKind::Provisioning, ADMIN),
        ("admin_channel", removal, CardKind::Removal, CHANNEL),
    ] {
        let shown = card(&r, kind, recipient, now());
        assert!(card_buttons(&message_json(&shown)).is_empty(), "{name}");
        let text = format!(
            "{} card, as {recipient} gets it once no longer assigned:\n\n{}",
            kind.as_str(),
            message_text(&shown)
        );
        insta::assert_snapshot!(format!("card_no_longer_assigned_{name}"), text);
    }
}

// ---------------------------------------------------------------------------------------
// Notices.
// ---------------------------------------------------------------------------------------

/// The snapshot name of a notice; the `match` makes a new notice a compile error here.
fn notice_name(notice: &Notice) -> &'static str {
    match notice {
        Notice::ReadyToGo { .. } => "ready_to_go",
        Notice::Denied { .. } => "denied",
        Notice::Feedback { .. } => "feedback",
        Notice::Edited { .. } => "edited",
        Notice::AccessEnded => "access_ended",
        Notice::ExpiresSoon { .. } => "expires_soon",
        Notice::StillWaiting => "still_waiting",
        Notice::Closed { .. } => "closed",
        Notice::NobodyToAct { .. } => "nobody_to_act",
        Notice::NobodyReachedByDm { .. } => "nobody_reached_by_dm",
    }
}

fn notices() -> Vec<(&'static str, AccessRequest, Notice)> {
    let mut unlimited = provisioned();
    unlimited.access_length = AccessLength::Unlimited;
    unlimited.expires_at = None;
    let admin = || ADMIN.to_string();
    vec![
        ("", provisioned(), Notice::ReadyToGo { by: admin() }),
        ("_unlimited", unlimited, Notice::ReadyToGo { by: admin() }),
        (
            "",
            denied(None),
            Notice::Denied {
                by: DENIER.to_string(),
            },
        ),
        (
            "",
            denied(Some(FEEDBACK)),
            Notice::Feedback {
                by: DENIER.to_string(),
                text: FEEDBACK.to_string(),
            },
        ),
        (
            "",
            pending_provisioning(),
            Notice::Edited {
                by: admin(),
                changes: vec![
                    FieldChange::Permission {
                        before: "Member".into(),
                        after: "Admin".into(),
                    },
                    FieldChange::Groups {
                        before: vec!["eng".into()],
                        after: vec!["eng".into(), "ops".into()],
                    },
                    FieldChange::AccessLength {
                        before: "7d".parse().unwrap(),
                        after: AccessLength::Unlimited,
                    },
                ],
            },
        ),
        (
            "_groups_emptied",
            pending_approval(),
            Notice::Edited {
                by: APPROVER.to_string(),
                changes: vec![FieldChange::Groups {
                    before: vec!["eng".into()],
                    after: vec![],
                }],
            },
        ),
        ("", time_up(), Notice::AccessEnded),
        ("", provisioned(), Notice::ExpiresSoon { at: expires() }),
        ("_approval", pending_approval(), Notice::StillWaiting),
        (
            "_provisioning",
            pending_provisioning(),
            Notice::StillWaiting,
        ),
        ("_removal", time_up(), Notice::StillWaiting),
        ("_release", released(), Notice::StillWaiting),
        (
            "_while_pending",
            closed(pending_approval(), t(14)),
            Notice::Closed {
                by: OPERATOR.into(),
                reason: CLOSE_REASON.into(),
                removal_unconfirmed: false,
            },
        ),
        (
            "_removal_unconfirmed",
            closed(time_up(), expires() + Duration::hours(3)),
            Notice::Closed {
                by: OPERATOR.into(),
                reason: CLOSE_REASON.into(),
                removal_unconfirmed: true,
            },
        ),
        (
            "_approval",
            pending_approval(),
            Notice::NobodyToAct {
                stage: CardKind::Approval,
                unreached: vec![deactivated(APPROVER)],
            },
        ),
        (
            "_approvers_removed",
            pending_approval(),
            Notice::NobodyToAct {
                stage: CardKind::Approval,
                unreached: vec![
                    Unreached {
                        recipient: APPROVER.into(),
                        why: Unreachable::Removed,
                    },
                    Unreached {
                        recipient: DENIER.into(),
                        why: Unreachable::Removed,
                    },
                ],
            },
        ),
        (
            "_removal",
            time_up(),
            Notice::NobodyToAct {
                stage: CardKind::Removal,
                unreached: vec![
                    deactivated(ADMIN),
                    refused("UADMIN2", "user_not_found"),
                    refused("CADMINS", "is_archived"),
                ],
            },
        ),
        (
            "_provisioning",
            pending_provisioning(),
            Notice::NobodyReachedByDm {
                stage: CardKind::Provisioning,
                unreached: vec![deactivated(ADMIN)],
            },
        ),
        (
            "_removal",
            released(),
            Notice::NobodyReachedByDm {
                stage: CardKind::Removal,
                unreached: vec![deactivated(ADMIN), refused("UADMIN2", "cannot_dm_bot")],
            },
        ),
    ]
}

fn deactivated(user: &str) -> Unreached {
    Unreached {
        recipient: user.to_string(),
        why: Unreachable::Deactivated,
    }
}

fn refused(recipient: &str, error: &str) -> Unreached {
    Unreached {
        recipient: recipient.to_string(),
        why: Unreachable::Refused(error.to_string()),
    }
}

#[test]
fn every_notice_reads_well() {
    for (variant, r, n) in notices() {
        let name = format!("notice_{}{variant}", notice_name(&n));
        let text = format!("{n:?}\n\n{}", message_text(&notice(&r, &n)));
        insta::assert_snapshot!(name, text);
    }
}

// ---------------------------------------------------------------------------------------
// Refusals.
// ---------------------------------------------------------------------------------------

/// The snapshot name of a refusal; the `match` makes a new refusal a compile error here.
fn refusal_name(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::AlreadyDecided { .. } => "already_decided",
        Refusal::NotAssignee { .. } => "not_assignee",
        Refusal::OwnRequest { .. } => "own_request",
        Refusal::WrongStatus { .. } => "wrong_status",
        Refusal::FeedbackAlreadySent { .. } => "feedback_already_sent",
        Refusal::Closed { .. } => "closed",
        Refusal::NothingChanged => "nothing_changed",
        Refusal::Invalid(_) => "invalid",
    }
}

fn refusals() -> Vec<Refusal> {
    let already = |outcome, by: &str| Refusal::AlreadyDecided {
        outcome,
        by: by.to_string(),
    };
    let mut all = vec![
        already("approved", APPROVER),
        already("denied", "api"),
        already("canceled", "system"),
        Refusal::FeedbackAlreadySent {
            by: DENIER.to_string(),
        },
        Refusal::Closed {
            by: OPERATOR.to_string(),
        },
    ];
    for role in [Role::Approver, Role::Admin, Role::Requester, Role::Target] {
        for action in Action::ALL.into_iter().filter(|a| a.button().is_some()) {
            all.push(Refusal::NotAssignee { who: role, action });
        }
    }
    for action in Action::ALL.into_iter().filter(|a| a.button().is_some()) {
        all.push(Refusal::OwnRequest { action });
    }
    for status in Status::ALL {
        for action in Action::ALL.into_iter().filter(|a| a.button().is_some()) {
            if !action.applies_in().contains(&status) {
                all.push(Refusal::WrongStatus { status, action });
            }
        }
    }
    all.push(Refusal::NothingChanged);
    all.push(Refusal::Invalid(ValidationError::bad_field(
        Field::Feedback,
        "Feedback must not be empty.",
    )));
    all.push(Refusal::Invalid(ValidationError::NotInCatalog {
        field: Field::Permission,
        message: "permission \"Owner\" is not one of GitHub's permissions (Member, Admin)".into(),
    }));
    all
}

#[test]
fn every_refusal_variant_reads_well() {
    let mut by_variant: Vec<(&str, String)> = Vec::new();
    for r in refusals() {
        let name = refusal_name(&r);
        let line = format!("{r:?}\n  → {}\n", snippet(&refusal(&r)));
        match by_variant.iter_mut().find(|(n, _)| *n == name) {
            Some((_, text)) => text.push_str(&line),
            None => by_variant.push((name, line)),
        }
    }
    assert_eq!(by_variant.len(), 8, "every variant has examples");
    for (name, text) in by_variant {
        insta::assert_snapshot!(format!("refusal_{name}"), text);
    }
}

#[test]
fn every_click_a_viewer_cannot_make_is_explained() {
    let mut out = String::new();
    for (situation, r) in situations() {
        writeln!(out, "## {situation}").unwrap();
        for action in Action::ALL.into_iter().filter(|a| a.button().is_some()) {
            let label = action.button().unwrap().label;
            // Viewers grouped by what a click answers them.
            let mut answers: Vec<(String, Vec<String>)> = Vec::new();
            for (who, id) in viewers(&r)
                .into_iter()
                .filter(|(who, _)| *who != "admin channel")
            {
                let answer = match permit(&r, &Actor::User(id.clone()), action, now()) {
                    Ok(()) => "(allowed)".to_string(),
                    Err(refused) => snippet(&refusal(&refused)),
                };
                let viewer = format!("{who} @{id}");
                match answers.iter_mut().find(|(a, _)| *a == answer) {
                    Some((_, viewers)) => viewers.push(viewer),
                    None => answers.push((answer, vec![viewer])),
                }
            }
            writeln!(out, "[{label}]").unwrap();
            for (answer, viewers) in answers {
                writeln!(out, "  {}: {answer}", viewers.join(", ")).unwrap();
            }
        }
        out.push('\n');
    }
    insta::assert_snapshot!("refusals_by_situation", out);
}

// ---------------------------------------------------------------------------------------
// Modals.
// ---------------------------------------------------------------------------------------

fn catalog() -> Vec<App> {
    let mut jira = app();
    jira.slug = "jira".into();
    jira.name = "Jira".into();
    jira.groups.clear();
    vec![app(), jira]
}

#[test]
fn the_edit_and_feedback_modals_read_well() {
    insta::assert_snapshot!(
        "modal_edit",
        view_text(&edit_modal(&pending_provisioning(), &app()))
    );
    let jira = &catalog()[1];
    let mut no_groups = pending_approval();
    no_groups.app = jira.slug.clone();
    no_groups.app_name = jira.name.clone();
    no_groups.groups.clear();
    insta::assert_snapshot!(
        "modal_edit_app_without_groups",
        view_text(&edit_modal(&no_groups, jira))
    );
    insta::assert_snapshot!("modal_feedback", view_text(&feedback_modal(&denied(None))));
}

#[test]
fn the_request_modal_reads_well_before_and_after_an_app_is_chosen() {
    let apps = catalog();
    insta::assert_snapshot!(
        "modal_request_no_app_chosen",
        view_text(&request_modal(&apps, None, REQUESTER))
    );
    insta::assert_snapshot!(
        "modal_request_app_chosen",
        view_text(&request_modal(&apps, Some(&apps[0]), REQUESTER))
    );
    insta::assert_snapshot!(
        "modal_request_app_without_groups_chosen",
        view_text(&request_modal(&apps, Some(&apps[1]), REQUESTER))
    );
    insta::assert_snapshot!(
        "modal_request_empty_catalog",
        view_text(&request_modal(&[], None, REQUESTER))
    );
}

// ---------------------------------------------------------------------------------------
// The App Home.
// ---------------------------------------------------------------------------------------

/// A request of Figma (where UADMIN1 is neither admin nor approver) by UADMIN1.
fn own(id: i64, situation: AccessRequest) -> AccessRequest {
    let mut r = situation;
    r.id = id;
    r.app = "figma".into();
    r.app_name = "Figma".into();
    r.requester = ADMIN.into();
    r.target_user = ADMIN.into();
    r.approvers = vec!["UFIGAPPR".into()];
    r.app_admins = vec!["UFIGADMIN".into()];
    r.admin_channel = None;
    r.permission = "Editor".into();
    r.groups = vec![];
    // Figma's own people acted on it; where the requester or the target acted, UADMIN1 did.
    r.approved_by = r.approved_by.map(|_| "UFIGAPPR".into());
    r.removed_by = r.removed_by.map(|_| "UFIGADMIN".into());
    r.released_by = r.released_by.map(|_| ADMIN.into());
    r.decided_by = match r.status {
        _ if r.decided_by.is_none() => None,
        Status::Denied => Some("UFIGAPPR".into()),
        Status::Canceled => Some(ADMIN.into()),
        _ => Some("UFIGADMIN".into()),
    };
    r
}

fn with_id(id: i64, mut r: AccessRequest) -> AccessRequest {
    r.id = id;
    r
}

#[test]
fn the_app_home_reads_well_empty_busy_and_overflowing() {
    insta::assert_snapshot!("home_nothing", view_text(&home(OUTSIDER, &[], &[], now())));

    let tasks = [
        with_id(1, pending_approval()),
        with_id(2, pending_provisioning()),
        with_id(3, time_up()),
        with_id(4, released()),
        // Not a task of the admin's: it waits for the approvers.
        with_id(5, pending_approval()),
    ];
    let mut other_target = own(15, pending_approval());
    other_target.target_user = "UNEWHIRE".into();
    let mine = [
        own(11, pending_approval()),
        own(12, pending_provisioning()),
        own(13, provisioned()),
        own(14, denied(Some(FEEDBACK))),
        other_target,
        own(16, canceled()),
        own(17, released()),
        own(18, removed(time_up(), expires() + Duration::hours(2))),
    ];
    insta::assert_snapshot!(
        "home_tasks_and_requests",
        view_text(&home(ADMIN, &tasks, &mine, now()))
    );

    let many_tasks: Vec<AccessRequest> = (1..=30)
        .map(|id| with_id(id, pending_provisioning()))
        .collect();
    let many_mine: Vec<AccessRequest> = (101..=130).map(|id| own(id, pending_approval())).collect();
    insta::assert_snapshot!(
        "home_overflowing",
        view_text(&home(ADMIN, &many_tasks, &many_mine, now()))
    );
}

// ---------------------------------------------------------------------------------------
// Texts: `/access help`, `/access list`, thread relays and summaries.
// ---------------------------------------------------------------------------------------

#[test]
fn the_slash_command_texts_read_well() {
    insta::assert_snapshot!("access_help", snippet(&help_text()));
    let mut own_request = with_id(43, pending_provisioning());
    own_request.target_user = REQUESTER.into();
    let list = open_requests_text(&[
        pending_approval(),
        own_request,
        with_id(44, provisioned()),
        with_id(45, time_up()),
        with_id(46, released()),
        with_id(47, denied(None)),
    ]);
    let none = open_requests_text(&[with_id(47, denied(None))]);
    insta::assert_snapshot!(
        "access_list",
        format!(
            "With open requests:\n{}\n\nWith none:\n{}",
            snippet(&list),
            snippet(&none)
        )
    );
}

fn said(user: &str, text: &str, hour: u32) -> ThreadMessage {
    ThreadMessage {
        at: t(hour),
        user: user.into(),
        text: text.into(),
    }
}

#[test]
fn thread_relays_and_summaries_read_well() {
    insta::assert_snapshot!(
        "thread_relay",
        snippet(&thread_relay(
            REQUESTER,
            "Which org is it? <!channel> & <@UADMIN2> should know"
        ))
    );
    let summary = thread_summary(&[
        said(
            REQUESTER,
            "Is this the right app?\nI need the mobile repo.",
            9,
        ),
        said(APPROVER, "Yes & approved.", 10),
        said(ADMIN, "On it.", 11),
    ]);
    insta::assert_snapshot!(
        "thread_summary",
        format!(
            "With three messages:\n{}\n\nWith none:\n{}",
            snippet(&summary),
            snippet(&thread_summary(&[]))
        )
    );
}

#[test]
fn relay_refusals_read_well() {
    let seconds = chrono::Duration::milliseconds;
    insta::assert_snapshot!(
        "relay_refusals",
        format!(
            "Not one of the request's people:\n{}\n\nToo fast:\n{}\n\nA busy request:\n{}",
            snippet(&relay_refusal(&RelayRefusal::NotOfTheRequest)),
            snippet(&relay_refusal(&RelayRefusal::AuthorTooFast {
                retry_in: seconds(11_200)
            })),
            snippet(&relay_refusal(&RelayRefusal::RequestTooBusy {
                retry_in: seconds(400)
            })),
        )
    );
}

#[test]
fn a_long_relay_shows_it_was_truncated() {
    let kept = kept_thread_text(&format!("{} & more", "word ".repeat(1000)));
    let relay = thread_relay(REQUESTER, &kept);
    assert!(relay.ends_with("… (truncated)"), "{relay}");
    insta::assert_snapshot!(
        "thread_relay_truncated",
        snippet(
            &relay
                .chars()
                .skip(relay.chars().count() - 60)
                .collect::<String>()
        )
    );
}

#[test]
fn the_renderer_shows_mrkdwn_as_slack_does() {
    assert_eq!(
        readable(
            "<@U1> &lt;!channel&gt; &amp; <!here> <!date^1^{time}|09:00 UTC> <https://x.example|x>"
        ),
        "@U1 <!channel> & @here 09:00 UTC x (https://x.example)"
    );
    assert_eq!(readable("a &amp;lt; b"), "a &lt; b");
}
