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
    // The fallback `text` is mrkdwn like the blocks (unlike the plain_text header).
    let fallback = format!(
        "Access request: {} — {}",
        escape(&request.app_name),
        headline
    );
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
        match request.status {
            Status::Provisioned => length = format!("{length} (until {})", date(expires)),
            Status::PendingDeprovisioning | Status::Expired => {
                length = format!("{length} (ended {})", date(expires))
            }
            _ => {}
        }
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
    // `date_short_pretty` may read "today", so no preposition before it.
    when.map(|when| format!(", {}", date(when)))
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::domain::FieldChange;
    use crate::slack::limits::testing::{assert_within_limits, huge_request, request, t};

    fn json(content: &SlackMessageContent) -> Value {
        let value = serde_json::to_value(content).unwrap();
        assert_within_limits(&value);
        value
    }

    fn render(request: &AccessRequest, kind: CardKind, recipient: &str) -> Value {
        json(&card(request, kind, recipient))
    }

    /// The buttons of a card as (label, action_id, value, style).
    fn buttons(card: &Value) -> Vec<(String, String, String, String)> {
        card["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().unwrap().clone())
            .map(|e| {
                (
                    e["text"]["text"].as_str().unwrap().to_string(),
                    e["action_id"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap().to_string(),
                    e["style"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn labels(card: &Value) -> Vec<String> {
        buttons(card).into_iter().map(|b| b.0).collect()
    }

    fn all_text(card: &Value) -> String {
        card.to_string()
    }

    fn fields(card: &Value) -> Vec<String> {
        card["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|b| b["fields"].as_array())
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap().to_string())
            .collect()
    }

    fn approved() -> AccessRequest {
        let mut r = request();
        r.status = Status::PendingProvisioning;
        r.approved_by = Some("UAPPR1".into());
        r.approved_at = Some(t(10));
        r
    }

    fn denied_by(denier: &str) -> AccessRequest {
        let mut r = approved();
        r.status = Status::Denied;
        r.decided_by = Some(denier.into());
        r.decided_at = Some(t(11));
        r
    }

    fn provisioned() -> AccessRequest {
        let mut r = approved();
        r.status = Status::Provisioned;
        r.decided_by = Some("UADMIN2".into());
        r.decided_at = Some(t(11));
        r.provisioned_at = Some(t(11));
        r.expires_at = Some(t(11) + chrono::Duration::days(7));
        r
    }

    #[test]
    fn approval_card_offers_approve_deny_edit_with_the_request_id() {
        let card = render(&request(), CardKind::Approval, "UAPPR1");
        let expected = [
            ("Approve", action::APPROVE, "primary"),
            ("Deny", action::DENY, ""),
            ("Edit", action::EDIT, ""),
        ];
        let got = buttons(&card);
        assert_eq!(got.len(), 3);
        for ((label, id, value, style), (want_label, want_id, want_style)) in
            got.iter().zip(expected)
        {
            assert_eq!((label.as_str(), id.as_str()), (want_label, want_id));
            assert_eq!(style, want_style);
            assert_eq!(value, "42");
        }
        assert!(card["text"].as_str().unwrap().contains("GitHub"));
    }

    #[test]
    fn provisioning_card_denies_with_danger_style_and_a_confirmation() {
        let card = render(&approved(), CardKind::Provisioning, "UADMIN1");
        let got = buttons(&card);
        let summary: Vec<_> = got
            .iter()
            .map(|b| (b.0.as_str(), b.1.as_str(), b.3.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "Confirm Provisioning",
                    action::CONFIRM_PROVISIONING,
                    "primary"
                ),
                ("Deny", action::DENY, "danger"),
                ("Edit", action::EDIT, ""),
            ]
        );
        let deny = &card["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "actions")
            .unwrap()["elements"][1];
        assert_eq!(deny["confirm"]["confirm"]["text"], "Deny");
        assert!(deny["confirm"]["title"]["text"].as_str().is_some());
        assert!(all_text(&card).contains("Please confirm provisioning"));
        assert!(all_text(&card).contains("Approved by <@UAPPR1>"));
    }

    #[test]
    fn removal_card_offers_confirm_removal_only() {
        let mut r = provisioned();
        r.status = Status::PendingDeprovisioning;
        let card = render(&r, CardKind::Removal, "UADMIN1");
        let got = buttons(&card);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (
                got[0].0.as_str(),
                got[0].1.as_str(),
                got[0].2.as_str(),
                got[0].3.as_str()
            ),
            ("Confirm Removal", action::CONFIRM_REMOVAL, "42", "primary")
        );
    }

    #[test]
    fn decided_cards_have_no_buttons_and_say_who_acted() {
        let approval_after_approve = render(&approved(), CardKind::Approval, "UAPPR2");
        assert!(buttons(&approval_after_approve).is_empty());
        assert!(all_text(&approval_after_approve).contains("✅ Approved by <@UAPPR1>"));
        assert!(all_text(&approval_after_approve).contains("<!date^"));

        let done = provisioned();
        for kind in [
            CardKind::Approval,
            CardKind::Provisioning,
            CardKind::Removal,
        ] {
            let card = render(&done, kind, "UADMIN1");
            assert!(
                !card["blocks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b["type"] == "actions"),
                "{kind:?} card of a provisioned request has buttons"
            );
            assert!(all_text(&card).contains("🎉 Provisioned by <@UADMIN2>"));
        }

        let card = render(&denied_by("UADMIN2"), CardKind::Provisioning, "UADMIN1");
        assert!(buttons(&card).is_empty());
        assert!(all_text(&card).contains("⛔ Denied by <@UADMIN2>"));

        let mut canceled = request();
        canceled.status = Status::Canceled;
        canceled.decided_by = Some("UREQ".into());
        canceled.decided_at = Some(t(10));
        let card = render(&canceled, CardKind::Approval, "UAPPR1");
        assert!(buttons(&card).is_empty());
        assert!(all_text(&card).contains("Canceled by the requester"));

        let mut expired = provisioned();
        expired.status = Status::Expired;
        expired.removed_by = Some("UADMIN1".into());
        expired.removed_at = Some(t(12));
        let card = render(&expired, CardKind::Removal, "UADMIN1");
        assert!(buttons(&card).is_empty());
        assert!(all_text(&card).contains("⌛ Access ended — removal confirmed by <@UADMIN1>"));
    }

    #[test]
    fn fields_put_groups_upper_right_permissions_under_requester_and_comment_lower_left() {
        let card = render(&request(), CardKind::Approval, "UAPPR1");
        let fields = fields(&card);
        let labels: Vec<&str> = fields
            .iter()
            .map(|f| f.lines().next().unwrap().trim_matches('*'))
            .collect();
        assert_eq!(labels[1], "Groups");
        let requester = labels.iter().position(|l| *l == "Requester").unwrap();
        assert_eq!(
            labels[requester + 2],
            "Permissions",
            "same column, next row"
        );
        assert_eq!(requester % 2, 0, "left column");
        let comment = labels.iter().position(|l| *l == "Comment").unwrap();
        assert_eq!(comment, labels.len() - 1);
        assert_eq!(comment % 2, 0, "lower left");
        for label in [
            "App",
            "Target User",
            "Access Length",
            "Approvers",
            "App Admins",
        ] {
            assert!(labels.contains(&label), "{label} missing");
        }
        assert!(fields[1].ends_with("eng"));
        assert!(fields[requester].contains("<@UREQ>"));
    }

    #[test]
    fn provisioned_card_shows_when_access_ends() {
        let card = render(&provisioned(), CardKind::Provisioning, "UADMIN1");
        let length = fields(&card)
            .into_iter()
            .find(|f| f.starts_with("*Access Length*"))
            .unwrap();
        assert!(length.contains("7 days (until <!date^"), "{length}");
    }

    #[test]
    fn hostile_comment_and_feedback_appear_only_escaped() {
        let hostile = "<!channel> <https://evil.example|click> & co";
        let mut r = denied_by("UADMIN1");
        r.comment = hostile.into();
        r.denial_feedback = Some(hostile.into());
        r.groups = vec!["<!here>".into()];
        let escaped = "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; co";
        for kind in [CardKind::Provisioning, CardKind::Receipt] {
            let card = render(&r, kind, "UADMIN1");
            let text = all_text(&card);
            assert!(!text.contains("<!channel>") && !text.contains("<https://evil"));
            assert!(!text.contains("<!here>"));
            assert_eq!(text.matches(escaped).count(), 2, "comment and feedback");
        }
        let dm = json(&notice(
            &r,
            &Notice::Feedback {
                by: "UADMIN1".into(),
                text: hostile.into(),
            },
        ));
        assert!(!all_text(&dm).contains("<!channel>"));
        assert!(all_text(&dm).contains(escaped));
    }

    #[test]
    fn only_the_deniers_card_offers_feedback_until_it_is_sent() {
        let r = denied_by("UADMIN2");
        let denier = render(&r, CardKind::Provisioning, "UADMIN2");
        let got = buttons(&denier);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].0.as_str(), got[0].1.as_str(), got[0].2.as_str()),
            ("Send feedback", action::SEND_FEEDBACK, "42")
        );
        assert!(buttons(&render(&r, CardKind::Provisioning, "UADMIN1")).is_empty());
        assert!(buttons(&render(&r, CardKind::Approval, "UAPPR1")).is_empty());
        assert!(buttons(&render(&r, CardKind::Receipt, "UREQ")).is_empty());

        let mut sent = r.clone();
        sent.denial_feedback = Some("Use the read-only role".into());
        assert!(buttons(&render(&sent, CardKind::Provisioning, "UADMIN2")).is_empty());
        for (kind, to) in [
            (CardKind::Provisioning, "UADMIN1"),
            (CardKind::Receipt, "UREQ"),
        ] {
            assert!(all_text(&render(&sent, kind, to)).contains("Use the read-only role"));
        }
    }

    #[test]
    fn receipt_tracks_the_status_and_can_be_canceled_while_pending() {
        let pending = render(&request(), CardKind::Receipt, "UREQ");
        assert!(all_text(&pending).contains("Pending approval by <@UAPPR1>, <@UAPPR2>"));
        let got = buttons(&pending);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].0.as_str(), got[0].1.as_str(), got[0].2.as_str()),
            ("Cancel request", action::CANCEL_REQUEST, "42")
        );
        let cancel = &pending["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "actions")
            .unwrap()["elements"][0];
        assert!(cancel["confirm"].is_object());

        let provisioning = render(&approved(), CardKind::Receipt, "UREQ");
        assert!(all_text(&provisioning).contains("Pending provisioning by <@UADMIN1>"));
        assert_eq!(labels(&provisioning), ["Cancel request"]);

        let ready = render(&provisioned(), CardKind::Receipt, "UREQ");
        assert!(all_text(&ready).contains("Ready to go 🎉"));
        assert!(buttons(&ready).is_empty());

        let denied = render(&denied_by("UADMIN2"), CardKind::Receipt, "UREQ");
        assert!(all_text(&denied).contains("Denied by <@UADMIN2>"));
        assert!(buttons(&denied).is_empty());
    }

    #[test]
    fn longest_inputs_stay_within_limits_everywhere() {
        let (base, _) = huge_request();
        let mut states = vec![base.clone()];
        for status in Status::ALL {
            let mut r = base.clone();
            r.status = status;
            r.approved_by = Some(base.approvers[99].clone());
            r.approved_at = Some(t(10));
            r.decided_by = Some(base.app_admins[99].clone());
            r.decided_at = Some(t(11));
            r.provisioned_at = Some(t(11));
            r.expires_at = Some(t(12));
            r.removed_by = Some(base.app_admins[98].clone());
            r.removed_at = Some(t(13));
            states.push(r);
        }
        for r in &states {
            for kind in [
                CardKind::Approval,
                CardKind::Provisioning,
                CardKind::Removal,
                CardKind::Receipt,
            ] {
                let mut card = render(r, kind, &base.app_admins[99]);
                // The header is plain_text, which Slack never parses: it stays unescaped.
                let header = card["blocks"].as_array_mut().unwrap().remove(0);
                assert_eq!(header["type"], "header");
                let text = all_text(&card);
                assert!(
                    !text.contains("<!channel>") && !text.contains("<&>"),
                    "{text}"
                );
                assert!(
                    text.contains(" more"),
                    "long lists say how many are left out"
                );
            }
            let changes = vec![
                FieldChange {
                    field: "Groups",
                    before: r.groups.join(", "),
                    after: r.groups.join(", "),
                };
                3
            ];
            for n in [
                Notice::ReadyToGo {
                    by: "UADMIN1".into(),
                },
                Notice::Denied {
                    by: "UADMIN1".into(),
                },
                Notice::Feedback {
                    by: "UADMIN1".into(),
                    text: r.comment.clone(),
                },
                Notice::Edited {
                    by: "UADMIN1".into(),
                    changes,
                },
                Notice::AccessEnded,
                Notice::ExpiresSoon { at: t(12) },
            ] {
                json(&notice(r, &n));
            }
            json(&assignee_reminder(r));
        }
        let comment = fields(&render(&base, CardKind::Approval, "UX"))
            .pop()
            .unwrap();
        assert!(comment.ends_with('…'), "long comments are cut");
        let relay = thread_relay("UREQ", &"<&>".repeat(3334));
        assert!(relay.chars().count() <= limits::MESSAGE_TEXT);
        assert!(relay.starts_with("<@UREQ>: &lt;&amp;&gt;") && relay.ends_with('…'));
    }

    #[test]
    fn notices_tell_the_requester_what_happened() {
        let text = |r: &AccessRequest, n: Notice| {
            json(&notice(r, &n))["text"].as_str().unwrap().to_string()
        };
        let ready = text(
            &provisioned(),
            Notice::ReadyToGo {
                by: "UADMIN2".into(),
            },
        );
        assert!(ready.contains("ready to go") && ready.contains("🎉"));
        assert!(ready.contains("<@UADMIN2>") && ready.contains("<!date^"));
        assert!(text(
            &request(),
            Notice::Denied {
                by: "UAPPR1".into()
            }
        )
        .contains("denied by <@UAPPR1>"));
        let edited = text(
            &request(),
            Notice::Edited {
                by: "UAPPR1".into(),
                changes: vec![FieldChange {
                    field: "Permission",
                    before: "Member".into(),
                    after: "Admin".into(),
                }],
            },
        );
        assert!(edited.contains("Permission: Member → Admin"), "{edited}");
        assert!(text(&provisioned(), Notice::AccessEnded).contains("admins will remove it"));
        assert!(text(&provisioned(), Notice::ExpiresSoon { at: t(12) }).contains("<!date^"));
        let reminder = json(&assignee_reminder(&request()));
        assert!(reminder["text"]
            .as_str()
            .unwrap()
            .starts_with("⏰ Still waiting for you"));
    }

    #[test]
    fn thread_relay_names_the_author_and_escapes_the_text() {
        assert_eq!(
            thread_relay("U1", "ping <!channel> & <@U2>"),
            "<@U1>: ping &lt;!channel&gt; &amp; &lt;@U2&gt;"
        );
    }
}
