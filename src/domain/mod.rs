//! The request lifecycle: statuses, who may act, transitions and the effects they cause.
//! Nothing here knows about HTTP, Slack JSON or SQL.

mod access_length;
mod app;
mod event;
mod lifecycle;
mod request;
mod thread;

pub use access_length::{AccessLength, InvalidAccessLength, TimeUnit};
pub use app::{is_slack_id, is_slug, App, MAX_LIST_LEN};
pub use event::{AuditEvent, EventKind, NewEvent};
pub use lifecycle::{
    decide, file_request, mention, Actor, Command, Decision, Edit, Effect, FieldChange, Notice,
    Refusal, RequestDraft, MAX_COMMENT_CHARS,
};
pub use request::{AccessRequest, CardKind, Status, UnknownStatus};
pub use thread::{ThreadMessage, MAX_THREAD_TEXT};

/// Input that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Malformed or missing input (HTTP 400).
    #[error("{0}")]
    BadInput(String),
    /// A value outside the app's catalog (HTTP 422).
    #[error("{0}")]
    NotInCatalog(String),
}

impl From<InvalidAccessLength> for ValidationError {
    fn from(err: InvalidAccessLength) -> Self {
        ValidationError::BadInput(err.to_string())
    }
}
