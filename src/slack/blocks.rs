//! Messages the bot posts, rendered from data: request cards, the requester's receipt,
//! direct-message notices, reminders and relayed thread messages. Pure functions, no I/O.
//!
//! Every renderer keeps within [`limits`]: user text is escaped and truncated, long lists
//! of people or groups end with "and N more".

use chrono::{DateTime, Utc};
use slack_morphism::prelude::*;

use super::limits;
use super::mrkdwn::{escape, escape_truncated, list, plain, truncate};
use crate::domain::{
    allowed_to, is_assigned, is_person, plain_name, AccessRequest, Action, Actor, ButtonStyle,
    CardKind, FieldChange, Notice, Refusal, RelayRefusal, Role, Roles, Status, ThreadMessage,
    Unreachable, Unreached, REQUEST_RELAYS, TRUNCATED, USER_RELAYS,
};

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
/// Characters of one message in a thread summary, so that a long one leaves room for others.
const SUMMARY_LINE_CHARS: usize = 1000;
/// Characters of the list of assignees on one line of `/access list`.
const LIST_PEOPLE_CHARS: usize = 300;
/// Characters of an operator's name in a card's history (their section shows it whole).
const OPERATOR_CHARS: usize = 200;

/// The card of `request` for `recipient` (a user id, or the admin channel's id) at `now`.
///
/// Approval, provisioning and removal cards ask their recipient to act while the request is
/// in the card's stage; afterwards they show the outcome, who acted and when. The receipt
/// ([`CardKind::Receipt`]) is the requester's copy (and the target's, once provisioned): its
/// status line stays current. Each card carries exactly the buttons of its kind
/// ([`CardKind::actions`]) that the policy allows its recipient; in the admin channel,
/// those of an app admin.
pub fn card(
    request: &AccessRequest,
    kind: CardKind,
    recipient: &str,
    now: DateTime<Utc>,
) -> SlackMessageContent {
    let stage = CardKind::stage_card(request.status) == Some(kind);
    // The app's lists changed since this card was posted: its recipient is not asked any
    // more and plays no other part in the request (a channel: is not its admin channel).
    let dropped = stage
        && !is_assigned(request, recipient)
        && if is_person(recipient) {
            Roles::in_request(request, &Actor::User(recipient.to_string())) == Roles::default()
        } else {
            request.admin_channel.as_deref() != Some(recipient)
        };
    let headline = if stage && !dropped {
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
    if let (Some(by), Some(reason)) = (&request.closed_by, &request.close_reason) {
        blocks.push(section(&format!(
            "*Closed by an operator, {}:*\n{}",
            escape_truncated(by, OPERATOR_CHARS),
            quote(&escape_truncated(reason, FEEDBACK_CHARS))
        )));
    }
    let history = history(request);
    if !history.is_empty() {
        blocks.push(context(&history.join("\n")));
    }
    if dropped {
        blocks.push(context(&no_longer_assigned(request, kind, recipient)));
    }
    let viewer = if request.admin_channel.as_deref() == Some(recipient) {
        Roles::of(&[Role::Admin])
    } else {
        Roles::in_request(request, &Actor::User(recipient.to_string()))
    };
    let allowed = allowed_to(request, viewer, now);
    let buttons: Vec<SlackActionBlockElement> = kind
        .actions(request.status)
        .iter()
        .filter(|action| allowed.contains(**action))
        .filter_map(|action| action_button(request, *action))
        .map(Into::into)
        .collect();
    if !buttons.is_empty() {
        blocks.push(SlackBlock::Actions(SlackActionsBlock::new(buttons)));
    }
    // The fallback `text` is mrkdwn like the blocks (unlike the plain_text header).
    let fallback = format!(
        "Access request: {} — {}",
        escape(&request.app_name),
        headline
    );
    message(&fallback, blocks)
}

/// The button that offers `action` on `request`; what can be undone by nobody asks first.
pub(crate) fn action_button(
    request: &AccessRequest,
    action: Action,
) -> Option<SlackBlockButtonElement> {
    let spec = action.button()?;
    let mut button = button(spec.label, spec.action_id, &request.id.to_string());
    match spec.style {
        ButtonStyle::Plain => {}
        ButtonStyle::Primary => button = button.with_style(SlackBlockButtonStyle::Primary),
        ButtonStyle::Danger => {
            let app = escape(&request.app_name);
            let (title, text, keep) = match action {
                Action::Cancel => (
                    "Cancel this request?",
                    format!("Your request for *{app}* will be withdrawn."),
                    "Keep it",
                ),
                Action::Release => (
                    "Release this access?",
                    format!(
                        "Access to *{app}* for {} ends now, and the app admins are asked to \
                         remove it.",
                        mention(&request.target_user)
                    ),
                    "Keep access",
                ),
                _ => (
                    "Deny this request?",
                    format!(
                        "{} will not get access to *{app}*. This cannot be undone.",
                        mention(&request.target_user)
                    ),
                    "Keep it",
                ),
            };
            button = button
                .with_style(SlackBlockButtonStyle::Danger)
                .with_confirm(confirm_dialog(title, &text, spec.label, keep));
        }
    }
    Some(button)
}

/// Why a click or a form changed nothing, in the words of a Slack message.
pub fn refusal(refusal: &Refusal) -> String {
    let text = match refusal {
        Refusal::AlreadyDecided { outcome, by } => {
            format!("This request was already {outcome} by {}.", mention(by))
        }
        Refusal::FeedbackAlreadySent { by } => {
            format!(
                "Feedback on this denial was already sent by {}.",
                mention(by)
            )
        }
        // The operator named themselves in free text: shown as text, never a mention.
        Refusal::Closed { by } => format!(
            "This request was already closed by an operator ({}).",
            escape_truncated(by, OPERATOR_CHARS)
        ),
        other => other.to_string(),
    };
    truncate(&text, limits::MESSAGE_TEXT)
}

/// How an actor's name (a user id, `api` or `system`) reads in a Slack message.
pub fn mention(name: &str) -> String {
    match name {
        "api" | "system" => plain_name(name).to_string(),
        user => format!("<@{user}>"),
    }
}

/// A direct message telling someone what happened to a request (or that it waits for them).
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
        Notice::StillWaiting => {
            let stage = match request.status {
                Status::PendingApproval => "your approval",
                Status::PendingProvisioning => "provisioning",
                Status::PendingDeprovisioning => "the removal of the access",
                _ => "you",
            };
            format!(
                "⏰ Still waiting for you: {}'s request for {app} ({}) needs {stage} since {}.",
                mention(&request.requester),
                escape(&request.permission),
                date(request.stage_started_at())
            )
        }
        Notice::Closed {
            by,
            reason,
            removal_unconfirmed: false,
        } => format!(
            "🚫 Your request for {app} was closed by an operator ({}):\n{}\nRequest it again \
             if you still need it.",
            escape_truncated(by, OPERATOR_CHARS),
            quote(&escape_truncated(reason, FEEDBACK_CHARS))
        ),
        Notice::Closed {
            by,
            reason,
            removal_unconfirmed: true,
        } => format!(
            "⚠️ Your access to {app} was closed by an operator ({}):\n{}\nNobody confirmed \
             that it was removed, so it may still work.",
            escape_truncated(by, OPERATOR_CHARS),
            quote(&escape_truncated(reason, FEEDBACK_CHARS))
        ),
        Notice::NobodyToAct { stage, unreached } => format!(
            "🚨 Nobody is left to act on request #{} ({}'s access to {app}, {}): it is {}, and \
             none of its {} cards reached anyone who can act.\n{}\n\
             To unblock it, change the app's {} with `PUT /api/v1/apps/{}`, or close the \
             request with `POST /api/v1/requests/{}/close`.",
            request.id,
            mention(&request.target_user),
            escape(&request.permission),
            request.status.words(),
            stage.as_str(),
            unreached_lines(unreached),
            stage_assignees(*stage),
            escape(&request.app),
            request.id
        ),
        Notice::NobodyReachedByDm { stage, unreached } => format!(
            "⚠️ Nobody could be reached by DM about request #{} ({}'s access to {app}, {}), \
             which is {}:\n{}\n\
             The {} card posted in this channel is the only one left: someone here must {}. \
             To fix it for good, change the app's {} with `PUT /api/v1/apps/{}`.",
            request.id,
            mention(&request.target_user),
            escape(&request.permission),
            request.status.words(),
            unreached_lines(unreached),
            stage.as_str(),
            stage_task(*stage),
            stage_assignees(*stage),
            escape(&request.app),
        ),
    };
    let text = truncate(&text, limits::SECTION_TEXT);
    message(&text, vec![section(&text)])
}

/// One line per recipient a stage's card did not reach, and why.
fn unreached_lines(unreached: &[Unreached]) -> String {
    let lines: Vec<String> = unreached
        .iter()
        .map(|unreached| {
            let who = if is_person(&unreached.recipient) {
                mention(&unreached.recipient)
            } else {
                format!("<#{}>", unreached.recipient)
            };
            match &unreached.why {
                Unreachable::Deactivated => format!("• {who} is deactivated in Slack"),
                Unreachable::Refused(error) => {
                    format!("• {who}: Slack refused the card (`{}`)", escape(error))
                }
                Unreachable::Removed => format!("• {who} was taken off the app's list"),
            }
        })
        .collect();
    lines.join("\n")
}

/// Who a stage's cards go to, as the app calls them.
fn stage_assignees(stage: CardKind) -> &'static str {
    match stage {
        CardKind::Approval => "approvers",
        CardKind::Provisioning | CardKind::Removal | CardKind::Receipt => "admins",
    }
}

/// What the stage asks of whoever acts on it.
fn stage_task(stage: CardKind) -> &'static str {
    match stage {
        CardKind::Approval => "approve or deny it",
        CardKind::Provisioning => "set up the access and confirm it, or deny it",
        CardKind::Removal | CardKind::Receipt => "remove the access and confirm the removal",
    }
}

/// A thread message relayed into the other threads of a request: `<@U…>: text`, with the
/// text escaped. A text kept cut (ending with [`TRUNCATED`]) or too long for a message
/// (escaping lengthens it) is cut to fit and still ends with [`TRUNCATED`], so that every
/// copy says it was cut.
pub fn thread_relay(author: &str, text: &str) -> String {
    let prefix = format!("{}: ", mention(author));
    let room = limits::MESSAGE_TEXT - prefix.chars().count();
    let (said, cut) = match text.strip_suffix(TRUNCATED) {
        Some(said) => (said, true),
        None => (text, false),
    };
    let escaped = escape(said);
    if !cut && escaped.chars().count() <= room {
        return prefix + &escaped;
    }
    let limit = room - TRUNCATED.chars().count();
    let mut body = if escaped.chars().count() <= limit {
        escaped
    } else {
        // `truncate` ends with the ellipsis that starts the mark.
        let mut cut = truncate(&escaped, limit + 1);
        cut.pop();
        cut
    };
    body.push_str(TRUNCATED);
    prefix + &body
}

/// What the author of a reply that was not relayed sees, privately, in its thread: why, and
/// (over a rate limit) when to try again.
pub fn relay_refusal(why: &RelayRefusal) -> String {
    let later = |retry_in: &chrono::Duration| {
        let seconds = (retry_in.num_milliseconds() + 999) / 1000;
        match seconds.max(1) {
            1 => "Try again in a second".to_string(),
            n => format!("Try again in {n} seconds"),
        }
    };
    let quiet = "; until one gets through, replies over the limit stay in this thread only, \
                 without another notice.";
    match why {
        RelayRefusal::NotOfTheRequest => "Your reply stays in this thread only: accessbot shares \
            replies with the request's other threads only when they come from its requester, the \
            person getting access, its approvers or its app admins."
            .to_string(),
        RelayRefusal::AuthorTooFast { retry_in } => format!(
            "Your reply was not passed on to the request's other threads: accessbot passes on \
             at most {USER_RELAYS} replies a minute from one person. {}{quiet}",
            later(retry_in)
        ),
        RelayRefusal::RequestTooBusy { retry_in } => format!(
            "Your reply was not passed on to the request's other threads: accessbot passes on \
             at most {REQUEST_RELAYS} replies a minute in one request. {}{quiet}",
            later(retry_in)
        ),
    }
}

/// The first reply in the thread of a card posted after the request's conversation began:
/// "Conversation so far:" and one line `<@U…>: text` per message, oldest first, with the
/// text escaped and its line breaks folded. Within [`limits::MESSAGE_TEXT`]: when it is too
/// long, the newest messages are kept after a line "…N earlier messages", and each message
/// is cut to 1,000 characters. With no messages, only the heading.
pub fn thread_summary(messages: &[ThreadMessage]) -> String {
    const HEADING: &str = "Conversation so far:";
    let earlier = |n: usize| match n {
        1 => "…1 earlier message".to_string(),
        n => format!("…{n} earlier messages"),
    };
    // The heading and the note about earlier messages, whatever their number, always fit.
    let mut used = HEADING.chars().count() + 1 + earlier(messages.len()).chars().count();
    let mut lines = Vec::new();
    for message in messages.iter().rev() {
        let text = message
            .text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let line = truncate(
            &format!("{}: {}", mention(&message.user), escape(&text)),
            SUMMARY_LINE_CHARS,
        );
        let needed = 1 + line.chars().count();
        if used + needed > limits::MESSAGE_TEXT {
            break;
        }
        used += needed;
        lines.push(line);
    }
    let mut out = HEADING.to_string();
    let left_out = messages.len() - lines.len();
    if left_out > 0 {
        out.push('\n');
        out.push_str(&earlier(left_out));
    }
    for line in lines.iter().rev() {
        out.push('\n');
        out.push_str(line);
    }
    truncate(&out, limits::MESSAGE_TEXT)
}

/// The answer to `/access help` (and to an unknown subcommand).
pub fn help_text() -> String {
    [
        "*accessbot* handles requests for access to software.",
        "• `/access` — request an app from the catalog, for yourself or for someone else.",
        "• `/access list` — your open requests and whom they wait for.",
        "• `/access help` — this help.",
        "Your open tasks and your requests are also in the bot's *Home* tab. Reply in the \
         thread of a request's message to talk with everyone involved in it.",
    ]
    .join("\n")
}

/// The answer to `/access list`: one line per open request (`#42 GitHub — Member — pending
/// approval by <@A>, <@B>`), in the order given; requests that are not open are left out.
/// Within [`limits::MESSAGE_TEXT`], ending with "…and N more" when not all fit.
pub fn open_requests_text(requests: &[AccessRequest]) -> String {
    let open: Vec<&AccessRequest> = requests.iter().filter(|r| r.status.is_pending()).collect();
    if open.is_empty() {
        return "You have no open requests.".to_string();
    }
    let mut out = "*Your open requests*".to_string();
    for (i, request) in open.iter().enumerate() {
        let line = open_request_line(request);
        let rest = open.len() - i - 1;
        let reserve = if rest == 0 {
            0
        } else {
            format!("\n…and {rest} more").chars().count()
        };
        if out.chars().count() + 1 + line.chars().count() + reserve > limits::MESSAGE_TEXT {
            out.push_str(&format!("\n…and {} more", open.len() - i));
            break;
        }
        out.push('\n');
        out.push_str(&line);
    }
    truncate(&out, limits::MESSAGE_TEXT)
}

fn open_request_line(request: &AccessRequest) -> String {
    let waiting = match request.status {
        Status::PendingApproval => "pending approval",
        Status::PendingProvisioning => "pending provisioning",
        _ => "access ended, pending removal",
    };
    let assignees: Vec<String> = request.assignees().iter().map(|id| mention(id)).collect();
    let by = if assignees.is_empty() {
        String::new()
    } else {
        format!(" by {}", list(&assignees, LIST_PEOPLE_CHARS))
    };
    let target = if request.target_user == request.requester {
        String::new()
    } else {
        format!(" for {}", mention(&request.target_user))
    };
    format!(
        "#{} *{}*{target} — {} — {waiting}{by}",
        request.id,
        escape(&request.app_name),
        escape(&request.permission)
    )
}

/// The blocks of the card `kind` of `request` for `user`, for the App Home.
pub(crate) fn card_blocks(
    request: &AccessRequest,
    kind: CardKind,
    user: &str,
    now: DateTime<Utc>,
) -> Vec<SlackBlock> {
    card(request, kind, user, now).blocks.unwrap_or_default()
}

/// One compact row of the App Home's "Your requests": app, permission, target when it is
/// someone else, where the request stands and when it was made, with the receipt's button
/// the policy allows `user` (`Cancel request` while pending, `Release access` once
/// provisioned).
pub(crate) fn request_row(request: &AccessRequest, user: &str, now: DateTime<Utc>) -> SlackBlock {
    let target = if request.target_user == request.requester {
        String::new()
    } else {
        format!(" for {}", mention(&request.target_user))
    };
    let text = format!(
        "*{}* — {}{target} · #{}\n{} · requested {}",
        escape(&request.app_name),
        escape(&request.permission),
        request.id,
        status_line(request),
        date(request.created_at)
    );
    let mut row = SlackSectionBlock::new().with_text(md(&truncate(&text, limits::SECTION_TEXT)));
    let allowed = crate::domain::allowed(request, &Actor::User(user.to_string()), now);
    let offered = CardKind::Receipt
        .actions(request.status)
        .iter()
        .find(|action| allowed.contains(**action));
    if let Some(button) = offered.and_then(|action| action_button(request, *action)) {
        row = row.with_accessory(button.into());
    }
    SlackBlock::Section(row)
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
        CardKind::Removal => match &request.released_by {
            Some(by) => format!(
                "*Released early by {}: please remove it.* Take {target}'s access to *{app}* \
                 away, then click Confirm Removal.",
                mention(by)
            ),
            None => format!(
                "*Access has ended: please remove it.* Take {target}'s access to *{app}* away, \
                 then click Confirm Removal."
            ),
        },
        CardKind::Receipt => status_line(request),
    }
}

/// Why a card no longer asks its recipient to act: the app's lists changed.
fn no_longer_assigned(request: &AccessRequest, kind: CardKind, recipient: &str) -> String {
    let app = escape(&request.app_name);
    let role = match kind {
        CardKind::Approval => "approvers",
        _ => "admins",
    };
    if !is_person(recipient) {
        format!("This channel is no longer {app}'s admin channel, so there is nothing to do here.")
    } else {
        format!(
            "You are no longer one of {app}'s {role}, so this request doesn't need you anymore."
        )
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
        Status::Canceled | Status::Expired if request.closed_by.is_some() => closed(request),
        Status::Canceled => canceled_by(request),
        Status::PendingDeprovisioning => format!(
            "⌛ {} — pending removal by {}",
            ended(request),
            people(&request.app_admins)
        ),
        Status::Expired => format!(
            "⌛ Access ended — removal confirmed by {}",
            by(&request.removed_by)
        ),
    }
}

/// "Released early by <@U1>", or "Access ended" when its time was up.
fn ended(request: &AccessRequest) -> String {
    match &request.released_by {
        Some(by) => format!("Released early by {}", mention(by)),
        None => "Access ended".to_string(),
    }
}

/// "Closed by an operator", and that nobody confirmed a removal when access was granted.
fn closed(request: &AccessRequest) -> String {
    if request.removal_unconfirmed() {
        "⚠️ Closed by an operator: removal not confirmed".to_string()
    } else {
        "🚫 Closed by an operator".to_string()
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
        Status::Canceled if request.closed_by.is_some() => {}
        Status::Canceled => lines.push(format!(
            "{}{}",
            canceled_by(request),
            at(request.decided_at)
        )),
        Status::PendingApproval | Status::PendingProvisioning => {}
    }
    if matches!(
        request.status,
        Status::PendingDeprovisioning | Status::Expired
    ) {
        match &request.released_by {
            Some(_) => lines.push(format!("↩️ {}{}", ended(request), at(request.released_at))),
            None if request.status == Status::PendingDeprovisioning || time_was_up(request) => {
                lines.push(format!("⌛ Access ended{}", at(request.expires_at)))
            }
            None => {}
        }
    }
    if let Some(by) = &request.closed_by {
        let (sign, unconfirmed) = match request.removal_unconfirmed() {
            true => ("⚠️", " without a confirmed removal"),
            false => ("🚫", ""),
        };
        // Closed requests are final: their last change is the close.
        lines.push(format!(
            "{sign} Closed by an operator ({}){unconfirmed}{}",
            escape_truncated(by, OPERATOR_CHARS),
            at(Some(request.updated_at))
        ));
    } else if request.status == Status::Expired {
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
            // Closed while the grant still ran: it never ended on its own.
            Status::Expired
                if request.removal_unconfirmed()
                    && request.released_at.is_none()
                    && !time_was_up(request) => {}
            Status::PendingDeprovisioning | Status::Expired => {
                let ended = request.released_at.unwrap_or(expires);
                length = format!("{length} (ended {})", date(ended))
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

/// A grant closed by an operator whose end date had come by the time it was closed.
fn time_was_up(request: &AccessRequest) -> bool {
    request.removal_unconfirmed()
        && request
            .expires_at
            .is_some_and(|at| at <= request.updated_at)
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
    let groups = |groups: &[String]| {
        if groups.is_empty() {
            "none".to_string()
        } else {
            groups.join(", ")
        }
    };
    let (field, before, after) = match change {
        FieldChange::Permission { before, after } => ("Permission", before.clone(), after.clone()),
        FieldChange::Groups { before, after } => ("Groups", groups(before), groups(after)),
        FieldChange::AccessLength { before, after } => {
            ("Access Length", before.human(), after.human())
        }
    };
    format!(
        "• {field}: {} → {}",
        escape_truncated(&before, CHANGE_CHARS),
        escape_truncated(&after, CHANGE_CHARS)
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

pub(crate) fn header(text: &str) -> SlackBlock {
    SlackBlock::Header(SlackHeaderBlock::new(
        plain(text, limits::HEADER_TEXT).into(),
    ))
}

fn section(text: &str) -> SlackBlock {
    SlackBlock::Section(
        SlackSectionBlock::new().with_text(md(&truncate(text, limits::SECTION_TEXT))),
    )
}

pub(crate) fn context(text: &str) -> SlackBlock {
    SlackBlock::Context(SlackContextBlock::new(vec![
        SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(truncate(
            text,
            limits::CONTEXT_TEXT,
        ))),
    ]))
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

    /// The `action_id`s Slack sends back, as the cards must carry them.
    mod action {
        pub const APPROVE: &str = "approve";
        pub const DENY: &str = "deny";
        pub const CONFIRM_PROVISIONING: &str = "confirm_provisioning";
        pub const EDIT: &str = "edit";
        pub const SEND_FEEDBACK: &str = "send_feedback";
        pub const CONFIRM_REMOVAL: &str = "confirm_removal";
        pub const CANCEL_REQUEST: &str = "cancel_request";
    }

    fn said(user: &str, text: &str, hour: u32) -> ThreadMessage {
        ThreadMessage {
            at: t(hour),
            user: user.into(),
            text: text.into(),
        }
    }

    fn json(content: &SlackMessageContent) -> Value {
        let value = serde_json::to_value(content).unwrap();
        assert_within_limits(&value);
        value
    }

    fn render(request: &AccessRequest, kind: CardKind, recipient: &str) -> Value {
        json(&card(request, kind, recipient, t(12)))
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
            ("Deny", action::DENY, "danger"),
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
        assert_eq!(labels(&ready), ["Release access"]);

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
        // Closed by an operator with the longest hostile name and reason the API accepts.
        let hostile = "<!channel> <&>".repeat(crate::domain::MAX_CLOSE_CHARS / 14);
        for status in [Status::Canceled, Status::Expired] {
            let mut r = states[1..]
                .iter()
                .find(|r| r.status == status)
                .unwrap()
                .clone();
            r.closed_by = Some(hostile.clone());
            r.close_reason = Some(hostile.clone());
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
                FieldChange::Groups {
                    before: r.groups.clone(),
                    after: r.groups.clone(),
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
                Notice::Closed {
                    by: hostile.clone(),
                    reason: hostile.clone(),
                    removal_unconfirmed: false,
                },
                Notice::Closed {
                    by: hostile.clone(),
                    reason: hostile.clone(),
                    removal_unconfirmed: true,
                },
            ] {
                json(&notice(r, &n));
            }
            json(&notice(r, &Notice::StillWaiting));
        }
        let comment = fields(&render(&base, CardKind::Approval, "UX"))
            .pop()
            .unwrap();
        assert!(comment.ends_with('…'), "long comments are cut");
        let relay = thread_relay("UREQ", &"<&>".repeat(3334));
        assert!(relay.chars().count() <= limits::MESSAGE_TEXT);
        assert!(relay.starts_with("<@UREQ>: &lt;&amp;&gt;"), "{relay}");
        let body = relay.strip_suffix("… (truncated)").expect("marked as cut");
        assert!(body.ends_with(';'), "no entity cut in half: {body}");
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
                changes: vec![FieldChange::Permission {
                    before: "Member".into(),
                    after: "Admin".into(),
                }],
            },
        );
        assert!(edited.contains("Permission: Member → Admin"), "{edited}");
        assert!(text(&provisioned(), Notice::AccessEnded).contains("admins will remove it"));
        assert!(text(&provisioned(), Notice::ExpiresSoon { at: t(12) }).contains("<!date^"));
        let reminder = json(&notice(&request(), &Notice::StillWaiting));
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

    #[test]
    fn thread_summary_lists_the_conversation_oldest_first() {
        let summary = thread_summary(&[
            said("UREQ", "Which repo?\nThe <!channel> one", 9),
            said("UADMIN1", "a & b", 10),
        ]);
        assert_eq!(
            summary,
            "Conversation so far:\n<@UREQ>: Which repo? The &lt;!channel&gt; one\n\
             <@UADMIN1>: a &amp; b"
        );
        assert_eq!(thread_summary(&[]), "Conversation so far:");
    }

    #[test]
    fn long_thread_summaries_keep_the_newest_messages() {
        let messages: Vec<ThreadMessage> = (0..500)
            .map(|i| {
                said(
                    &format!("U{i:0>79}"),
                    &format!("{i} {}", "<&>".repeat(100)),
                    9,
                )
            })
            .collect();
        let summary = thread_summary(&messages);
        assert!(summary.chars().count() <= limits::MESSAGE_TEXT);
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines[0], "Conversation so far:");
        let shown = lines.len() - 2;
        assert_eq!(lines[1], format!("…{} earlier messages", 500 - shown));
        assert!(lines
            .last()
            .unwrap()
            .contains(&format!("U{:0>79}>: 499 ", 499)));
        assert!(!summary.contains("<&>"));

        let huge = [said("U1", "old", 9), said("U2", &"<&>".repeat(20_000), 10)];
        let summary = thread_summary(&huge);
        assert!(summary.chars().count() <= limits::MESSAGE_TEXT);
        assert!(
            summary.contains("<@U1>: old"),
            "a long message is cut, not the rest"
        );
        assert!(summary.ends_with('…'));

        let many: Vec<ThreadMessage> = (0..40)
            .map(|i| said("U1", &"x".repeat(990 + i), 9))
            .collect();
        let summary = thread_summary(&many);
        assert!(summary.chars().count() <= limits::MESSAGE_TEXT);
        assert_eq!(summary.lines().nth(1).unwrap(), "…38 earlier messages");
        assert_eq!(
            thread_summary(&[
                said("U1", &"x".repeat(2000), 9),
                said("U2", &"y".repeat(2000), 9),
                said("U3", &"z".repeat(2000), 9)
            ])
            .lines()
            .nth(1)
            .unwrap(),
            "…1 earlier message"
        );
    }

    #[test]
    fn help_text_explains_every_subcommand() {
        let help = help_text();
        for usage in ["`/access`", "`/access list`", "`/access help`"] {
            assert!(help.contains(usage), "{usage} missing");
        }
        assert!(help.chars().count() <= limits::MESSAGE_TEXT);
    }

    #[test]
    fn open_requests_text_names_whom_each_request_waits_for() {
        assert_eq!(open_requests_text(&[]), "You have no open requests.");
        let mut done = provisioned();
        done.id = 7;
        assert_eq!(
            open_requests_text(&[done.clone()]),
            "You have no open requests."
        );
        let mut other = approved();
        other.id = 43;
        other.target_user = "UOTHER".into();
        let mut ended = provisioned();
        ended.id = 44;
        ended.status = Status::PendingDeprovisioning;
        let text = open_requests_text(&[request(), done, other, ended]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1..],
            [
                "#42 *GitHub* — Member — pending approval by <@UAPPR1>, <@UAPPR2>",
                "#43 *GitHub* for <@UOTHER> — Member — pending provisioning by <@UADMIN1>, <@UADMIN2>",
                "#44 *GitHub* — Member — access ended, pending removal by <@UADMIN1>, <@UADMIN2>",
            ]
        );
    }

    #[test]
    fn long_lists_of_open_requests_end_with_how_many_more() {
        let (base, _) = huge_request();
        let requests: Vec<AccessRequest> = (0..200)
            .map(|i| {
                let mut r = base.clone();
                r.id = i;
                r
            })
            .collect();
        let text = open_requests_text(&requests);
        assert!(text.chars().count() <= limits::MESSAGE_TEXT);
        assert!(!text.contains("<&>") && !text.contains("<!channel>"));
        let shown = text.lines().count() - 2;
        assert!(shown >= 1);
        assert!(
            text.ends_with(&format!("…and {} more", 200 - shown)),
            "{text}"
        );
    }
}
