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

/// A reply's text as it is kept: at most [`MAX_THREAD_TEXT`] characters, the rest cut with
/// an ellipsis.
pub fn kept_thread_text(text: &str) -> String {
    if text.chars().count() <= MAX_THREAD_TEXT {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(MAX_THREAD_TEXT - 1).collect();
    kept.push('…');
    kept
}
