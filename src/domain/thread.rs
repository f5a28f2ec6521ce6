//! The one conversation of a request, gathered from the threads of all its cards.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Longest thread message kept; Slack messages are at most 40,000 characters.
pub const MAX_THREAD_TEXT: usize = 40_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadMessage {
    #[serde(with = "crate::time_format")]
    pub at: DateTime<Utc>,
    pub user: String,
    pub text: String,
}
