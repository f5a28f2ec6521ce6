//! Messages the bot posts, rendered from data: request cards, the requester's receipt,
//! direct-message notices, reminders and relayed thread messages. Pure functions, no I/O.
//!
//! Every renderer keeps within [`limits`]: user text is escaped and truncated, long lists
//! of people or groups end with "and N more".

use chrono::{DateTime, Utc};
use slack_morphism::prelude::*;

use super::ids::action;
use super::limits;
use super::mrkdwn::{escape, escape_truncated, list, plain, truncate};
use crate::domain::{mention, AccessRequest, CardKind, FieldChange, Notice, Status};

/// Characters given to a list of people inside a card field or status line.
const PEOPLE_CHARS: usize = 600;
/// Characters given to the list of groups inside a card field.
const GROUPS_CHARS: usize = 1000;
/// Characters of the comment shown on a card.
const COMMENT_CHARS: usize = 1500;
/// Characters of denial feedback shown on a card.
const FEEDBACK_CHARS: usize = 2000;
/// Characters of one before/after value in an "edited" notice (three fit in a section).
const CHANGE_CHARS: usize = 900;

/// The card of `request` for `recipient` (a user id, or the admin channel's id).
///
/// Approval, provisioning and removal cards carry their buttons while the request is in the
/// card's stage ([`CardKind::live_in`]); afterwards they show the outcome, who acted and
/// when, and no buttons. After a denial, the denier's card offers `Send feedback` until
/// feedback was sent. The receipt ([`CardKind::Receipt`]) is the requester's copy: its
/// status line stays current and it offers `Cancel request` while approval or provisioning
/// is pending.
pub fn card(request: &AccessRequest, kind: CardKind, recipient: &str) -> SlackMessageContent {
    let live = kind.live_in() == Some(request.status);
    let headline = if live {
        prompt(request, kind)
    } else {
        status_line(request)
    };
    let mut blocks = vec![
        header(&format!("Access request: {}", request.app_name)),
        section(&headline),
        SlackBlock::Section(SlackSectionBlock::new().with_fields(card_fields(request))),
    ];
    if let Some(feedback) = &request.denial_feedback {
        blocks.push(section(&format!(
            "*Feedback from {}*\n{}",
            request
                .decided_by
                .as_deref()
                .map(mention)
                .unwrap_or_default(),
            escape_truncated(feedback, FEEDBACK_CHARS)
        )));
    }
    let history = history(request);
    if !history.is_empty() {
        blocks.push(context(&history.join("\n")));
    }
    let id = request.id.to_string();
    let mut buttons = Vec::new();
    if live {
        match kind {
            CardKind::Approval => {
                buttons.push(button("Approve", action::APPROVE, &id).with_style(primary()));
                buttons.push(button("Deny", action::DENY, &id));
                buttons.push(button("Edit", action::EDIT, &id));
            }
            CardKind::Provisioning => {
                buttons.push(
                    button("Confirm Provisioning", action::CONFIRM_PROVISIONING, &id)
                        .with_style(primary()),
                );
                buttons.push(
                    button("Deny", action::DENY, &id)
                        .with_style(SlackBlockButtonStyle::Danger)
                        .with_confirm(confirm_dialog(
                            "Deny this request?",
                            &format!(
                                "{} will not get access to *{}*. This cannot be undone.",
                                mention(&request.target_user),
                                escape(&request.app_name)
                            ),
                            "Deny",
                            "Keep it",
                        )),
                );
                buttons.push(button("Edit", action::EDIT, &id));
            }
            CardKind::Removal => {
                buttons.push(
                    button("Confirm Removal", action::CONFIRM_REMOVAL, &id).with_style(primary()),
                );
            }
            CardKind::Receipt => {}
        }
    }
    if kind == CardKind::Receipt
        && matches!(
            request.status,
            Status::PendingApproval | Status::PendingProvisioning
        )
    {
        buttons.push(
            button("Cancel request", action::CANCEL_REQUEST, &id).with_confirm(confirm_dialog(
                "Cancel this request?",
                &format!(
                    "Your request for *{}* will be withdrawn.",
                    escape(&request.app_name)
                ),
                "Cancel request",
                "Keep it",
            )),
        );
    }
    if kind != CardKind::Receipt
        && request.status == Status::Denied
        && request.decided_by.as_deref() == Some(recipient)
        && request.denial_feedback.is_none()
    {
        buttons.push(button("Send feedback", action::SEND_FEEDBACK, &id));
    }
    if !buttons.is_empty() {
        blocks.push(SlackBlock::Actions(SlackActionsBlock::new(
            buttons.into_iter().map(Into::into).collect(),
        )));
    }
    let fallback = format!("Access request: {} — {}", request.app_name, headline);
    message(&fallback, blocks)
}

/// A direct message telling the requester what happened to their request.
pub fn notice(request: &AccessRequest, notice: &Notice) -> SlackMessageContent {
    let app = format!("*{}*", escape(&request.app_name));
    let text = match notice {
        Notice::ReadyToGo { by } => {
            let until = match request.expires_at {
                Some(at) => format!(" Your access lasts until {}.", date(at)),
                None => String::new(),
            };
            format!(
                "🎉 You're ready to go! {} set up your access to {app} ({}).{until}",
                mention(by),
                escape(&request.permission)
            )
        }
        Notice::Denied { by } => {
            format!("⛔ Your request for {app} was denied by {}.", mention(by))
        }
        Notice::Feedback { by, text } => format!(
            "💬 Feedback from {} on your request for {app}:\n{}",
            mention(by),
            quote(&escape_truncated(text, FEEDBACK_CHARS))
        ),
        Notice::Edited { by, changes } => {
            let lines: Vec<String> = changes.iter().map(change_line).collect();
            format!(
                "✏️ {} edited your request for {app}:\n{}",
                mention(by),
                lines.join("\n")
            )
        }
        Notice::AccessEnded => {
            format!("⌛ Your access to {app} has ended. The app admins will remove it.")
        }
        Notice::ExpiresSoon { at } => format!(
            "⏰ Your access to {app} ends {}. Request it again if you still need it.",
            date(*at)
        ),
    };
    let text = truncate(&text, limits::SECTION_TEXT);
    message(&text, vec![section(&text)])
}

/// A nudge to the assignees of a request that has waited for them.
pub fn assignee_reminder(request: &AccessRequest) -> SlackMessageContent {
    let stage = match request.status {
        Status::PendingApproval => "your approval",
        Status::PendingProvisioning => "provisioning",
        Status::PendingDeprovisioning => "the removal of the access",
        _ => "you",
    };
    let text = format!(
        "⏰ Still waiting for you: {}'s request for *{}* ({}) needs {stage} since {}.",
        mention(&request.requester),
        escape(&request.app_name),
        escape(&request.permission),
        date(request.stage_started_at())
    );
    let text = truncate(&text, limits::SECTION_TEXT);
    message(&text, vec![section(&text)])
}

/// A thread message relayed into the other threads of a request: `<@U…>: text`, with the
/// text escaped and cut to fit a message.
pub fn thread_relay(author: &str, text: &str) -> String {
    truncate(
        &format!("{}: {}", mention(author), escape(text)),
        limits::MESSAGE_TEXT,
    )
}

/// An ephemeral answer from the bot's own words (e.g. a refusal, which may hold mentions);
/// not escaped, only cut to fit a message.
pub fn ephemeral(text: &str) -> String {
    truncate(text, limits::MESSAGE_TEXT)
}

/// What the recipient is asked to do on a live card.
fn prompt(request: &AccessRequest, kind: CardKind) -> String {
    let target = mention(&request.target_user);
    let app = escape(&request.app_name);
    match kind {
        CardKind::Approval => format!(
            "*Please approve or deny* {}'s request for {target} to use *{app}*.",
            mention(&request.requester)
        ),
        CardKind::Provisioning => format!(
            "*Please confirm provisioning.* Give {target} access to *{app}* matching the \
             Groups and Permissions below, then click Confirm Provisioning."
        ),
        CardKind::Removal => format!(
            "*Access has ended: please remove it.* Take {target}'s access to *{app}* away, \
             then click Confirm Removal."
        ),
        CardKind::Receipt => status_line(request),
    }
}

/// Where the request stands now, in one line.
fn status_line(request: &AccessRequest) -> String {
    let by = |who: &Option<String>| who.as_deref().map(mention).unwrap_or_default();
    match request.status {
        Status::PendingApproval => {
            format!("⏳ Pending approval by {}", people(&request.approvers))
        }
        Status::PendingProvisioning => {
            format!("⏳ Pending provisioning by {}", people(&request.app_admins))
        }
        Status::Provisioned => match request.expires_at {
            Some(at) => format!("Ready to go 🎉 Access until {}", date(at)),
            None => "Ready to go 🎉".to_string(),
        },
        Status::Denied => format!("⛔ Denied by {}", by(&request.decided_by)),
        Status::Canceled => canceled_by(request),
        Status::PendingDeprovisioning => format!(
            "⌛ Access ended — pending removal by {}",
            people(&request.app_admins)
        ),
        Status::Expired => format!(
            "⌛ Access ended — removal confirmed by {}",
            by(&request.removed_by)
        ),
    }
}

fn canceled_by(request: &AccessRequest) -> String {
    match request.decided_by.as_deref() {
        Some(who) if who == request.requester => "Canceled by the requester".to_string(),
        Some(who) => format!("Canceled by {}", mention(who)),
        None => "Canceled".to_string(),
    }
}

/// Who did what and when, oldest first.
fn history(request: &AccessRequest) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(by) = &request.approved_by {
        lines.push(format!(
            "✅ Approved by {}{}",
            mention(by),
            at(request.approved_at)
        ));
    }
    let decided = request
        .decided_by
        .as_deref()
        .map(mention)
        .unwrap_or_default();
    match request.status {
        Status::Provisioned | Status::PendingDeprovisioning | Status::Expired => {
            if request.provisioned_at.is_some() {
                lines.push(format!(
                    "🎉 Provisioned by {decided}{}",
                    at(request.provisioned_at)
                ));
            }
        }
        Status::Denied => lines.push(format!("⛔ Denied by {decided}{}", at(request.decided_at))),
        Status::Canceled => lines.push(format!(
            "{}{}",
            canceled_by(request),
            at(request.decided_at)
        )),
        Status::PendingApproval | Status::PendingProvisioning => {}
    }
    if request.status == Status::PendingDeprovisioning {
        lines.push(format!("⌛ Access ended{}", at(request.expires_at)));
    }
    if request.status == Status::Expired {
        lines.push(format!(
            "⌛ Access ended — removal confirmed by {}{}",
            request
                .removed_by
                .as_deref()
                .map(mention)
                .unwrap_or_default(),
            at(request.removed_at)
        ));
    }
    lines
}

/// The section fields in Slack's two-column grid: App | Groups on top (Groups upper right),
/// the Permissions just under the Requester, the Comment lower left.
fn card_fields(request: &AccessRequest) -> Vec<SlackBlockText> {
    let groups = if request.groups.is_empty() {
        "None".to_string()
    } else {
        let names: Vec<String> = request.groups.iter().map(|g| escape(g)).collect();
        list(&names, GROUPS_CHARS)
    };
    let mut length = request.access_length.human();
    if let Some(expires) = request.expires_at {
        let verb = if request.status == Status::Provisioned {
            "until"
        } else {
            "ended"
        };
        length = format!("{length} ({verb} {})", date(expires));
    }
    let comment = if request.comment.trim().is_empty() {
        "_none_".to_string()
    } else {
        escape_truncated(&request.comment, COMMENT_CHARS)
    };
    [
        ("App", escape(&request.app_name)),
        ("Groups", groups),
        ("Requester", mention(&request.requester)),
        ("Target User", mention(&request.target_user)),
        ("Permissions", escape(&request.permission)),
        ("Access Length", length),
        ("Approvers", people_or_none(&request.approvers)),
        ("App Admins", people_or_none(&request.app_admins)),
        ("Comment", comment),
    ]
    .into_iter()
    .map(|(label, value)| {
        md(&truncate(
            &format!("*{label}*\n{value}"),
            limits::SECTION_FIELD,
        ))
    })
    .collect()
}

/// Mentions of users, cut with "and N more".
fn people(ids: &[String]) -> String {
    let mentions: Vec<String> = ids.iter().map(|id| mention(id)).collect();
    list(&mentions, PEOPLE_CHARS)
}

fn people_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "None".to_string()
    } else {
        people(ids)
    }
}

fn change_line(change: &FieldChange) -> String {
    format!(
        "• {}: {} → {}",
        change.field,
        escape_truncated(&change.before, CHANGE_CHARS),
        escape_truncated(&change.after, CHANGE_CHARS)
    )
}

/// Quotes every line of (escaped) text.
fn quote(text: &str) -> String {
    text.lines()
        .map(|line| format!(">{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A time Slack shows in the reader's own time zone, with a UTC fallback.
fn date(at: DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} at {{time}}|{}>",
        at.timestamp(),
        at.format("%Y-%m-%d %H:%M UTC")
    )
}

fn at(when: Option<DateTime<Utc>>) -> String {
    when.map(|when| format!(" on {}", date(when)))
        .unwrap_or_default()
}

fn md(text: &str) -> SlackBlockText {
    SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text.to_string()))
}

fn header(text: &str) -> SlackBlock {
    SlackBlock::Header(SlackHeaderBlock::new(
        plain(text, limits::HEADER_TEXT).into(),
    ))
}

fn section(text: &str) -> SlackBlock {
    SlackBlock::Section(
        SlackSectionBlock::new().with_text(md(&truncate(text, limits::SECTION_TEXT))),
    )
}

fn context(text: &str) -> SlackBlock {
    SlackBlock::Context(SlackContextBlock::new(vec![
        SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(truncate(
            text,
            limits::CONTEXT_TEXT,
        ))),
    ]))
}

fn primary() -> SlackBlockButtonStyle {
    SlackBlockButtonStyle::Primary
}

fn button(label: &str, action_id: &str, value: &str) -> SlackBlockButtonElement {
    SlackBlockButtonElement::new(plain(label, limits::BUTTON_TEXT).into())
        .with_action_id(SlackActionId::new(action_id.to_string()))
        .with_value(value.to_string())
}

fn confirm_dialog(title: &str, text: &str, confirm: &str, deny: &str) -> SlackBlockConfirmItem {
    SlackBlockConfirmItem::new(
        plain(title, limits::CONFIRM_TITLE).into(),
        md(&truncate(text, limits::CONFIRM_TEXT)),
        plain(confirm, limits::CONFIRM_BUTTON).into(),
        plain(deny, limits::CONFIRM_BUTTON).into(),
    )
}

fn message(fallback: &str, blocks: Vec<SlackBlock>) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(truncate(fallback, limits::MESSAGE_TEXT))
        .with_blocks(blocks)
}
