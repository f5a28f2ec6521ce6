//! Transitions: a request, an actor, a command and `now` in; the new state, its audit
//! entry and the effects to carry out (cards to post or update, messages to send) out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::authority::stage_recipients;
use super::policy::{permit, Refusal};
use super::reach::Unreached;
use super::{
    is_slack_id, AccessLength, AccessRequest, App, CardKind, EventKind, Field, NewEvent, Status,
    ValidationError,
};

/// Longer comments are refused; cards show at most what fits and end with an ellipsis.
pub const MAX_COMMENT_CHARS: usize = 10_000;

/// The longest operator name and reason a close accepts, in characters.
pub const MAX_CLOSE_CHARS: usize = 500;

/// Who does something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A Slack user, by id.
    User(String),
    /// A caller of the HTTP API.
    Api,
    /// accessbot itself (expiry, reminders).
    System,
}

impl Actor {
    /// The name kept in the audit trail.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::User(id) => id.clone(),
            Actor::Api => "api".to_string(),
            Actor::System => "system".to_string(),
        }
    }
}

/// What somebody asks to happen to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Approve,
    Deny,
    ConfirmProvisioning,
    ConfirmRemoval,
    Cancel,
    /// End a provisioned grant before its time.
    Release,
    Edit(Edit),
    SendFeedback(String),
    /// The access length has elapsed.
    Expire,
    /// Tell the requester their access ends soon.
    RemindExpiry,
    /// Tell the assignees the request has been waiting for them.
    RemindAssignees,
    /// An operator closes a stuck request: pending ones are canceled, granted ones expire
    /// without a confirmed removal. `operator` names them as they chose (free text).
    Close {
        reason: String,
        operator: String,
    },
}

impl Command {
    /// A close, once its operator and reason are checked ([`check_close`]).
    pub fn close(operator: &str, reason: &str) -> Result<Command, ValidationError> {
        check_close(operator, reason)?;
        Ok(Command::Close {
            reason: reason.to_string(),
            operator: operator.to_string(),
        })
    }
}

/// A close names its operator and its reason, each 1 to [`MAX_CLOSE_CHARS`] characters
/// and more than blanks.
pub fn check_close(operator: &str, reason: &str) -> Result<(), ValidationError> {
    for (name, text, meant) in [
        ("operator", operator, "name who closes the request"),
        ("reason", reason, "say why the request is closed"),
    ] {
        if text.trim().is_empty() {
            return Err(ValidationError::bad(format!(
                "{name} must not be empty: {meant}"
            )));
        }
        if text.chars().count() > MAX_CLOSE_CHARS {
            return Err(ValidationError::bad(format!(
                "{name} must be at most {MAX_CLOSE_CHARS} characters"
            )));
        }
    }
    Ok(())
}

/// A validated change of permission, groups and access length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub permission: String,
    pub groups: Vec<String>,
    pub access_length: AccessLength,
}

impl Edit {
    /// Checks the values against the app's catalog.
    pub fn new(
        app: &App,
        permission: &str,
        groups: Vec<String>,
        access_length: AccessLength,
    ) -> Result<Edit, ValidationError> {
        check_catalog(app, permission, &groups)?;
        Ok(Edit {
            permission: permission.to_string(),
            groups,
            access_length,
        })
    }
}

fn check_catalog(app: &App, permission: &str, groups: &[String]) -> Result<(), ValidationError> {
    if !app.permissions.iter().any(|p| p == permission) {
        return Err(ValidationError::NotInCatalog {
            field: Field::Permission,
            message: format!(
                "permission {permission:?} is not one of {}'s permissions ({})",
                app.name,
                app.permissions.join(", ")
            ),
        });
    }
    for (i, group) in groups.iter().enumerate() {
        if !app.groups.contains(group) {
            return Err(ValidationError::NotInCatalog {
                field: Field::Groups,
                message: format!("group {group:?} is not one of {}'s groups", app.name),
            });
        }
        if groups[..i].contains(group) {
            return Err(ValidationError::bad_field(
                Field::Groups,
                format!("group {group:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// One field changed by an edit, for the message to the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum FieldChange {
    Permission {
        before: String,
        after: String,
    },
    Groups {
        before: Vec<String>,
        after: Vec<String>,
    },
    AccessLength {
        before: AccessLength,
        after: AccessLength,
    },
}

/// Something a person is told in a direct message (or, for the notices that say so, the
/// app's admin channel). Kept in the outbox as it is (and rendered when it is sent), so its
/// serialized form must keep reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// The access was set up by `by`.
    ReadyToGo {
        by: String,
    },
    Denied {
        by: String,
    },
    Feedback {
        by: String,
        text: String,
    },
    Edited {
        by: String,
        changes: Vec<FieldChange>,
    },
    /// The access length elapsed; the admins will remove it.
    AccessEnded,
    ExpiresSoon {
        at: DateTime<Utc>,
    },
    /// To an assignee: the request has waited for them since its stage began.
    StillWaiting,
    /// An operator (`by`, free text) closed the request for `reason`. When
    /// `removal_unconfirmed`, it had been granted and nobody confirmed the removal.
    Closed {
        by: String,
        reason: String,
        removal_unconfirmed: bool,
    },
    /// To the admin channel: nobody is left to act on the `stage` the request is in, since
    /// every card of it failed for good (`unreached`, with why).
    NobodyToAct {
        stage: CardKind,
        unreached: Vec<Unreached>,
    },
    /// To the admin channel: none of the `stage`'s people could be reached by DM
    /// (`unreached`); the card posted in the channel is the only one left to act on.
    NobodyReachedByDm {
        stage: CardKind,
        unreached: Vec<Unreached>,
    },
}

/// What a transition asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Post a card of this kind to each recipient (user ids, or the admin channel).
    PostCards {
        kind: CardKind,
        recipients: Vec<String>,
    },
    /// Bring every card of the request, and the receipt, up to date.
    RefreshCards,
    /// Send one user a direct message.
    Notify { to: String, notice: Notice },
}

/// A transition that may happen.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub request: AccessRequest,
    pub event: NewEvent,
    pub effects: Vec<Effect>,
}

/// Everything needed to file a request; checked by [`file_request`].
#[derive(Debug, Clone)]
pub struct RequestDraft {
    pub target_user: String,
    pub requester: String,
    pub permission: Option<String>,
    pub groups: Vec<String>,
    pub comment: String,
    pub access_length: AccessLength,
}

/// Files a new request for `app`: it starts with approval, or with provisioning when the
/// app has no approvers. The returned request has id 0 until stored.
pub fn file_request(
    app: &App,
    draft: RequestDraft,
    now: DateTime<Utc>,
) -> Result<Decision, ValidationError> {
    for (field, name, id) in [
        (Field::TargetUser, "target_user", &draft.target_user),
        (Field::Requester, "requester", &draft.requester),
    ] {
        if !is_slack_id(id) {
            return Err(ValidationError::bad_field(
                field,
                format!("{name} must be a Slack user id such as U024BE7LH"),
            ));
        }
    }
    if draft.comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ValidationError::bad_field(
            Field::Comment,
            format!("comment must be at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let permission = draft
        .permission
        .unwrap_or_else(|| app.default_permission().to_string());
    check_catalog(app, &permission, &draft.groups)?;
    let status = if app.approvers.is_empty() {
        Status::PendingProvisioning
    } else {
        Status::PendingApproval
    };
    let request = AccessRequest {
        id: 0,
        app: app.slug.clone(),
        app_name: app.name.clone(),
        target_user: draft.target_user,
        requester: draft.requester.clone(),
        permission,
        groups: draft.groups,
        comment: draft.comment,
        access_length: draft.access_length,
        status,
        approvers: app.approvers.clone(),
        app_admins: app.admins.clone(),
        admin_channel: app.admin_channel.clone(),
        created_at: now,
        updated_at: now,
        version: 1,
        // Nobody has decided, claimed or been reminded of anything yet.
        ..Default::default()
    };
    let first_stage = stage_cards(&request);
    let receipt = Effect::PostCards {
        kind: CardKind::Receipt,
        recipients: vec![draft.requester.clone()],
    };
    let event = NewEvent {
        at: now,
        actor: draft.requester,
        kind: EventKind::Created,
        before: None,
        after: Some(snapshot(&request)),
        detail: None,
    };
    Ok(Decision {
        request,
        event,
        effects: vec![receipt, first_stage],
    })
}

/// Cards for whoever must act in the request's current stage.
fn stage_cards(request: &AccessRequest) -> Effect {
    // Called once the request is in a pending stage, which always has a card.
    let kind = CardKind::stage_card(request.status).unwrap_or(CardKind::Provisioning);
    let recipients = stage_recipients(request, kind);
    Effect::PostCards { kind, recipients }
}

/// The fields an edit can change and the audit trail records before and after.
fn snapshot(request: &AccessRequest) -> Value {
    json!({
        "status": request.status.as_str(),
        "permission": request.permission,
        "groups": request.groups,
        "access_length": request.access_length.to_string(),
    })
}

/// Decides what `command` by `actor` does to `request` at `now`. Whether the actor may do
/// it at all is the policy's answer ([`permit`]); this function only makes the transition.
pub fn decide(
    request: &AccessRequest,
    actor: &Actor,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    permit(request, actor, command.action(), now)?;
    let mut next = request.clone();
    next.updated_at = now;
    next.version = request.version + 1;
    let name = actor.audit_name();
    // An operator's close is recorded under the name they gave, not the API's.
    let event_actor = match command {
        Command::Close { operator, .. } => operator.clone(),
        _ => name.clone(),
    };
    let to_requester = |notice| Effect::Notify {
        to: request.requester.clone(),
        notice,
    };
    let (kind, effects, detail) = match command {
        Command::Approve => {
            next.status = Status::PendingProvisioning;
            next.approved_by = Some(name.clone());
            next.approved_at = Some(now);
            next.stage_reminded = false;
            let cards = stage_cards(&next);
            (EventKind::Approved, vec![Effect::RefreshCards, cards], None)
        }
        Command::Deny => {
            next.status = Status::Denied;
            next.decided_by = Some(name.clone());
            next.decided_at = Some(now);
            let notice = to_requester(Notice::Denied { by: name.clone() });
            (EventKind::Denied, vec![Effect::RefreshCards, notice], None)
        }
        Command::ConfirmProvisioning => {
            next.status = Status::Provisioned;
            next.decided_by = Some(name.clone());
            next.decided_at = Some(now);
            next.provisioned_at = Some(now);
            next.expires_at = request.access_length.duration().map(|length| now + length);
            let mut effects = vec![
                Effect::RefreshCards,
                to_requester(Notice::ReadyToGo { by: name.clone() }),
            ];
            // The target gets a receipt of their own: it is where they release the access.
            if request.target_user != request.requester {
                effects.push(Effect::PostCards {
                    kind: CardKind::Receipt,
                    recipients: vec![request.target_user.clone()],
                });
            }
            (EventKind::Provisioned, effects, None)
        }
        Command::ConfirmRemoval => {
            next.status = Status::Expired;
            next.removed_by = Some(name.clone());
            next.removed_at = Some(now);
            (
                EventKind::RemovalConfirmed,
                vec![Effect::RefreshCards],
                None,
            )
        }
        Command::Cancel => {
            next.status = Status::Canceled;
            next.decided_by = Some(name.clone());
            next.decided_at = Some(now);
            (EventKind::Canceled, vec![Effect::RefreshCards], None)
        }
        Command::Release => {
            next.status = Status::PendingDeprovisioning;
            next.released_by = Some(name.clone());
            next.released_at = Some(now);
            next.stage_reminded = false;
            let cards = stage_cards(&next);
            (EventKind::Released, vec![Effect::RefreshCards, cards], None)
        }
        Command::Edit(edit) => {
            next.permission = edit.permission.clone();
            next.groups = edit.groups.clone();
            next.access_length = edit.access_length;
            let changes = changes(request, &next);
            if changes.is_empty() {
                return Err(Refusal::NothingChanged);
            }
            let notice = to_requester(Notice::Edited {
                by: name.clone(),
                changes,
            });
            (EventKind::Edited, vec![Effect::RefreshCards, notice], None)
        }
        Command::SendFeedback(text) => {
            if text.trim().is_empty() {
                return Err(Refusal::Invalid(ValidationError::bad_field(
                    Field::Feedback,
                    "Feedback must not be empty.",
                )));
            }
            next.denial_feedback = Some(text.clone());
            let notice = to_requester(Notice::Feedback {
                by: name.clone(),
                text: text.clone(),
            });
            (
                EventKind::FeedbackSent,
                vec![Effect::RefreshCards, notice],
                Some(text.clone()),
            )
        }
        Command::Expire => {
            next.status = Status::PendingDeprovisioning;
            next.stage_reminded = false;
            let cards = stage_cards(&next);
            (
                EventKind::Expired,
                vec![
                    Effect::RefreshCards,
                    cards,
                    to_requester(Notice::AccessEnded),
                ],
                None,
            )
        }
        Command::RemindExpiry => {
            next.expiry_reminded = true;
            let at = request.expires_at.unwrap_or(now);
            (
                EventKind::ReminderSent,
                vec![to_requester(Notice::ExpiresSoon { at })],
                Some("requester reminded that access ends soon".into()),
            )
        }
        Command::RemindAssignees => {
            next.stage_reminded = true;
            let reminders = request.assignees().iter().map(|assignee| Effect::Notify {
                to: assignee.clone(),
                notice: Notice::StillWaiting,
            });
            (
                EventKind::ReminderSent,
                reminders.collect(),
                Some(format!("assignees reminded of {}", request.status)),
            )
        }
        Command::Close { reason, operator } => {
            check_close(operator, reason).map_err(Refusal::Invalid)?;
            // Granted access may still be in place: the request ends without a removal.
            let removal_unconfirmed = matches!(
                request.status,
                Status::Provisioned | Status::PendingDeprovisioning
            );
            next.status = if removal_unconfirmed {
                Status::Expired
            } else {
                Status::Canceled
            };
            next.closed_by = Some(operator.clone());
            next.close_reason = Some(reason.clone());
            let notice = to_requester(Notice::Closed {
                by: operator.clone(),
                reason: reason.clone(),
                removal_unconfirmed,
            });
            (
                EventKind::Closed,
                vec![Effect::RefreshCards, notice],
                Some(reason.clone()),
            )
        }
    };
    let event = NewEvent {
        at: now,
        actor: event_actor,
        kind,
        before: Some(snapshot(request)),
        after: Some(snapshot(&next)),
        detail,
    };
    Ok(Decision {
        request: next,
        event,
        effects,
    })
}

fn changes(before: &AccessRequest, after: &AccessRequest) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    if before.permission != after.permission {
        changes.push(FieldChange::Permission {
            before: before.permission.clone(),
            after: after.permission.clone(),
        });
    }
    if before.groups != after.groups {
        changes.push(FieldChange::Groups {
            before: before.groups.clone(),
            after: after.groups.clone(),
        });
    }
    if before.access_length != after.access_length {
        changes.push(FieldChange::AccessLength {
            before: before.access_length,
            after: after.access_length,
        });
    }
    changes
}
