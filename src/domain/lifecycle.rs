//! Transitions: a request, an actor, a command and `now` in; the new state, its audit
//! entry and the effects to carry out (cards to post or update, messages to send) out.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    is_slack_id, AccessLength, AccessRequest, App, CardKind, EventKind, Field, NewEvent, Status,
    ValidationError,
};

/// Longer comments are refused; cards show at most what fits and end with an ellipsis.
pub const MAX_COMMENT_CHARS: usize = 10_000;

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

    fn user(&self) -> Option<&str> {
        match self {
            Actor::User(id) => Some(id),
            _ => None,
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
    Edit(Edit),
    SendFeedback(String),
    /// The access length has elapsed.
    Expire,
    /// Tell the requester their access ends soon.
    RemindExpiry,
    /// Tell the assignees the request has been waiting for them.
    RemindAssignees,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// Something the requester is told in a direct message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
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
    AccessEnded,
    ExpiresSoon {
        at: DateTime<Utc>,
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
    /// Send the requester a direct message.
    NotifyRequester(Notice),
    /// Remind each current assignee that the request waits for them.
    RemindAssignees,
}

/// A transition that may happen.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub request: AccessRequest,
    pub event: NewEvent,
    pub effects: Vec<Effect>,
}

/// Why a command changed nothing; shown to the person who tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("This request was already {status} by {by}.")]
    AlreadyDecided { status: &'static str, by: String },
    #[error("Only {who} can {what} this request.")]
    NotAssignee {
        who: &'static str,
        what: &'static str,
    },
    #[error("You can't {what} your own request.")]
    OwnRequest { what: &'static str },
    #[error("This request is {status}, so it can't be {what}.")]
    WrongStatus {
        status: &'static str,
        what: &'static str,
    },
    #[error("Nothing changed.")]
    NothingChanged,
    #[error("{0}")]
    Invalid(ValidationError),
}

impl Refusal {
    /// Refusals that mean "somebody else got there first": an illegal transition (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Refusal::AlreadyDecided { .. } | Refusal::WrongStatus { .. }
        )
    }
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
        approved_by: None,
        approved_at: None,
        decided_by: None,
        decided_at: None,
        provisioned_at: None,
        expires_at: None,
        removed_by: None,
        removed_at: None,
        denial_feedback: None,
        expiry_reminded: false,
        stage_reminded: false,
        version: 1,
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
    let (kind, mut recipients) = match request.status {
        Status::PendingApproval => (CardKind::Approval, request.approvers.clone()),
        Status::PendingDeprovisioning => (CardKind::Removal, request.app_admins.clone()),
        _ => (CardKind::Provisioning, request.app_admins.clone()),
    };
    if kind != CardKind::Approval {
        recipients.extend(request.admin_channel.clone());
    }
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

/// Decides what `command` by `actor` does to `request` at `now`.
pub fn decide(
    request: &AccessRequest,
    actor: &Actor,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    let mut next = request.clone();
    next.updated_at = now;
    next.version = request.version + 1;
    let name = actor.audit_name();
    let (kind, effects, detail) = match command {
        Command::Approve => {
            require_stage(request, actor, Status::PendingApproval, "approve")?;
            next.status = Status::PendingProvisioning;
            next.approved_by = Some(name.clone());
            next.approved_at = Some(now);
            next.stage_reminded = false;
            let cards = stage_cards(&next);
            (EventKind::Approved, vec![Effect::RefreshCards, cards], None)
        }
        Command::Deny => {
            let stage = pending_stage(request, "denied")?;
            require_stage(request, actor, stage, "deny")?;
            next.status = Status::Denied;
            next.decided_by = Some(name.clone());
            next.decided_at = Some(now);
            (
                EventKind::Denied,
                vec![
                    Effect::RefreshCards,
                    Effect::NotifyRequester(Notice::Denied { by: name.clone() }),
                ],
                None,
            )
        }
        Command::ConfirmProvisioning => {
            require_stage(request, actor, Status::PendingProvisioning, "confirm")?;
            next.status = Status::Provisioned;
            next.decided_by = Some(name.clone());
            next.decided_at = Some(now);
            next.provisioned_at = Some(now);
            next.expires_at = request.access_length.duration().map(|length| now + length);
            (
                EventKind::Provisioned,
                vec![
                    Effect::RefreshCards,
                    Effect::NotifyRequester(Notice::ReadyToGo { by: name.clone() }),
                ],
                None,
            )
        }
        Command::ConfirmRemoval => {
            require_stage(
                request,
                actor,
                Status::PendingDeprovisioning,
                "confirm the removal of",
            )?;
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
            pending_stage(request, "canceled")?;
            if let Actor::User(user) = actor {
                if user != &request.requester {
                    return Err(Refusal::NotAssignee {
                        who: "the requester",
                        what: "cancel",
                    });
                }
            }
            next.status = Status::Canceled;
            next.decided_by = Some(name.clone());
            next.decided_at = Some(now);
            (EventKind::Canceled, vec![Effect::RefreshCards], None)
        }
        Command::Edit(edit) => {
            let stage = pending_stage(request, "edited")?;
            require_stage(request, actor, stage, "edit")?;
            next.permission = edit.permission.clone();
            next.groups = edit.groups.clone();
            next.access_length = edit.access_length;
            let changes = changes(request, &next);
            if changes.is_empty() {
                return Err(Refusal::NothingChanged);
            }
            (
                EventKind::Edited,
                vec![
                    Effect::RefreshCards,
                    Effect::NotifyRequester(Notice::Edited {
                        by: name.clone(),
                        changes,
                    }),
                ],
                None,
            )
        }
        Command::SendFeedback(text) => {
            if request.status != Status::Denied {
                return Err(Refusal::WrongStatus {
                    status: request.status.as_str(),
                    what: "given denial feedback",
                });
            }
            if actor.user().is_none() || request.decided_by.as_deref() != actor.user() {
                return Err(Refusal::NotAssignee {
                    who: "the person who denied",
                    what: "send feedback on",
                });
            }
            if request.denial_feedback.is_some() {
                return Err(Refusal::AlreadyDecided {
                    status: "given feedback",
                    by: mention(&name),
                });
            }
            if text.trim().is_empty() {
                return Err(Refusal::Invalid(ValidationError::bad_field(
                    Field::Feedback,
                    "Feedback must not be empty.",
                )));
            }
            next.denial_feedback = Some(text.clone());
            (
                EventKind::FeedbackSent,
                vec![
                    Effect::RefreshCards,
                    Effect::NotifyRequester(Notice::Feedback {
                        by: name.clone(),
                        text: text.clone(),
                    }),
                ],
                Some(text.clone()),
            )
        }
        Command::Expire => {
            let due = request.expires_at.is_some_and(|at| at <= now);
            if request.status != Status::Provisioned || !due {
                return Err(Refusal::WrongStatus {
                    status: request.status.as_str(),
                    what: "expired",
                });
            }
            next.status = Status::PendingDeprovisioning;
            let cards = stage_cards(&next);
            (
                EventKind::Expired,
                vec![
                    Effect::RefreshCards,
                    cards,
                    Effect::NotifyRequester(Notice::AccessEnded),
                ],
                None,
            )
        }
        Command::RemindExpiry => {
            let Some(at) = request.expires_at else {
                return Err(Refusal::NothingChanged);
            };
            if request.status != Status::Provisioned || request.expiry_reminded {
                return Err(Refusal::NothingChanged);
            }
            next.expiry_reminded = true;
            (
                EventKind::ReminderSent,
                vec![Effect::NotifyRequester(Notice::ExpiresSoon { at })],
                Some("requester reminded that access ends soon".into()),
            )
        }
        Command::RemindAssignees => {
            if !request.status.is_pending() || request.stage_reminded {
                return Err(Refusal::NothingChanged);
            }
            next.stage_reminded = true;
            (
                EventKind::ReminderSent,
                vec![Effect::RemindAssignees],
                Some(format!("assignees reminded of {}", request.status)),
            )
        }
    };
    let event = NewEvent {
        at: now,
        actor: name,
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

/// The pending stage a deny, cancel or edit applies to.
fn pending_stage(request: &AccessRequest, what: &'static str) -> Result<Status, Refusal> {
    match request.status {
        Status::PendingApproval | Status::PendingProvisioning => Ok(request.status),
        _ => Err(already_decided(request).unwrap_or(Refusal::WrongStatus {
            status: request.status.as_str(),
            what,
        })),
    }
}

/// Checks that the request is in `stage` and that `actor` is assigned to it.
fn require_stage(
    request: &AccessRequest,
    actor: &Actor,
    stage: Status,
    what: &'static str,
) -> Result<(), Refusal> {
    if request.status != stage {
        return Err(already_decided(request).unwrap_or(Refusal::WrongStatus {
            status: request.status.as_str(),
            what: "changed that way",
        }));
    }
    let Some(user) = actor.user() else {
        // The API and the scheduler act on behalf of the operators.
        return Ok(());
    };
    let decides = !matches!(what, "deny");
    if decides && (user == request.requester || user == request.target_user) {
        return Err(Refusal::OwnRequest { what });
    }
    if !request.assignees().iter().any(|a| a == user) {
        let who = match stage {
            Status::PendingApproval => "the approvers",
            _ => "the app admins",
        };
        return Err(Refusal::NotAssignee { who, what });
    }
    Ok(())
}

/// "Already approved by <@U1>" when the request has moved on from where the actor thought it was.
fn already_decided(request: &AccessRequest) -> Option<Refusal> {
    let (status, by) = match request.status {
        Status::PendingProvisioning => ("approved", request.approved_by.as_ref()?),
        Status::Provisioned => ("provisioned", request.decided_by.as_ref()?),
        Status::Denied => ("denied", request.decided_by.as_ref()?),
        Status::Canceled => ("canceled", request.decided_by.as_ref()?),
        Status::PendingDeprovisioning => ("provisioned", request.decided_by.as_ref()?),
        Status::Expired => ("removed", request.removed_by.as_ref()?),
        Status::PendingApproval => return None,
    };
    Some(Refusal::AlreadyDecided {
        status,
        by: mention(by),
    })
}

/// How an actor's name reads in a Slack message.
pub fn mention(name: &str) -> String {
    match name {
        "api" => "the access API".to_string(),
        "system" => "accessbot".to_string(),
        user => format!("<@{user}>"),
    }
}

fn changes(before: &AccessRequest, after: &AccessRequest) -> Vec<FieldChange> {
    let list = |groups: &[String]| {
        if groups.is_empty() {
            "none".to_string()
        } else {
            groups.join(", ")
        }
    };
    let mut changes = Vec::new();
    if before.permission != after.permission {
        changes.push(FieldChange {
            field: "Permission",
            before: before.permission.clone(),
            after: after.permission.clone(),
        });
    }
    if before.groups != after.groups {
        changes.push(FieldChange {
            field: "Groups",
            before: list(&before.groups),
            after: list(&after.groups),
        });
    }
    if before.access_length != after.access_length {
        changes.push(FieldChange {
            field: "Access Length",
            before: before.access_length.human(),
            after: after.access_length.human(),
        });
    }
    changes
}
