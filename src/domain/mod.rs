//! The request lifecycle: statuses, who may act, transitions and the effects they cause.
//! Nothing here knows about HTTP, Slack JSON or SQL.

mod access_length;
mod action;
mod app;
mod authority;
mod event;
mod lifecycle;
mod policy;
#[cfg(test)]
mod policy_tests;
mod reach;
mod request;
mod thread;

pub use access_length::{AccessLength, InvalidAccessLength, TimeUnit};
pub use action::{Action, Actions, Button, ButtonStyle, Click};
pub use app::{is_slack_id, is_slug, App, MAX_LIST_LEN};
pub use authority::{is_assigned, reassign};
pub use event::{AuditEvent, EventKind, NewEvent};
pub use lifecycle::{
    check_close, decide, file_request, Actor, Command, Decision, Edit, Effect, FieldChange, Notice,
    RequestDraft, MAX_CLOSE_CHARS, MAX_COMMENT_CHARS,
};
pub use policy::{allowed, allowed_to, permit, plain_name, Refusal, Role, Roles};
pub use reach::{
    is_person, nobody_reached_by_dm_event, nobody_to_act_event, reach, CardPost, Post, Reach,
    Unreachable, Unreached,
};
pub use request::{AccessRequest, CardKind, Status, UnknownStatus};
pub use thread::{
    kept_thread_text, relays_from, Limited, RelayLimiter, RelayRefusal, ThreadMessage,
    MAX_THREAD_TEXT, REQUEST_RELAYS, TRUNCATED, USER_RELAYS,
};

/// The part of a request a validation error is about, so a form can show it in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Permission,
    Groups,
    AccessLength,
    Comment,
    TargetUser,
    Requester,
    Feedback,
}

/// Input that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Malformed or missing input (HTTP 400).
    #[error("{message}")]
    BadInput {
        field: Option<Field>,
        message: String,
    },
    /// A value outside the app's catalog (HTTP 422).
    #[error("{message}")]
    NotInCatalog { field: Field, message: String },
}

impl ValidationError {
    /// Bad input that is not about one field of a request.
    pub fn bad(message: impl Into<String>) -> Self {
        ValidationError::BadInput {
            field: None,
            message: message.into(),
        }
    }

    /// Bad input in `field`.
    pub fn bad_field(field: Field, message: impl Into<String>) -> Self {
        ValidationError::BadInput {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn field(&self) -> Option<Field> {
        match self {
            ValidationError::BadInput { field, .. } => *field,
            ValidationError::NotInCatalog { field, .. } => Some(*field),
        }
    }
}

impl From<InvalidAccessLength> for ValidationError {
    fn from(err: InvalidAccessLength) -> Self {
        ValidationError::bad_field(Field::AccessLength, err.to_string())
    }
}
