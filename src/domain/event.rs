//! The audit trail: one append-only entry per thing that happened to a request.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Edited,
    Approved,
    Denied,
    Provisioned,
    FeedbackSent,
    ThreadMessage,
    /// A thread message was edited by its author; `detail` is the new text.
    ThreadMessageEdited,
    /// A thread message was deleted in Slack; the thread no longer shows it.
    ThreadMessageDeleted,
    Expired,
    RemovalConfirmed,
    Canceled,
    Released,
    ReminderSent,
    DeliveryFailed,
    /// The app's approvers, admins or admin channel changed and the request took them.
    AssigneesChanged,
    /// An operator closed a stuck request through the API; `detail` is their reason.
    Closed,
    /// Every card of the current stage failed for good (its people deactivated or refused
    /// by Slack, and no admin channel's card posted): nobody is left to act on it.
    NobodyToAct,
    /// None of the current stage's people could be reached by DM; the admin channel's card
    /// is the one left to act on.
    NobodyReachedByDm,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Edited => "edited",
            EventKind::Approved => "approved",
            EventKind::Denied => "denied",
            EventKind::Provisioned => "provisioned",
            EventKind::FeedbackSent => "feedback_sent",
            EventKind::ThreadMessage => "thread_message",
            EventKind::ThreadMessageEdited => "thread_message_edited",
            EventKind::ThreadMessageDeleted => "thread_message_deleted",
            EventKind::Expired => "expired",
            EventKind::RemovalConfirmed => "removal_confirmed",
            EventKind::Canceled => "canceled",
            EventKind::Released => "released",
            EventKind::ReminderSent => "reminder_sent",
            EventKind::DeliveryFailed => "delivery_failed",
            EventKind::AssigneesChanged => "assignees_changed",
            EventKind::Closed => "closed",
            EventKind::NobodyToAct => "nobody_to_act",
            EventKind::NobodyReachedByDm => "nobody_reached_by_dm",
        }
    }
}

/// An entry about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    /// A Slack user id, `api` or `system`.
    pub actor: String,
    pub kind: EventKind,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub detail: Option<String>,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub request_id: i64,
    #[serde(with = "crate::time_format")]
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub detail: Option<String>,
}
