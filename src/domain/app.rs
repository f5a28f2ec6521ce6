//! An entry of the catalog: a piece of software people can request.

use serde::{Deserialize, Serialize};

use super::ValidationError;

/// Longest slug, name or Slack id we accept; Slack ids are far shorter.
const MAX_ID_LEN: usize = 80;
/// At most this many people or catalog entries per list, so cards stay inside Block Kit limits.
pub const MAX_LIST_LEN: usize = 100;

/// `Default` lets the store read an app column by column (`store/columns.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct App {
    pub slug: String,
    pub name: String,
    pub admins: Vec<String>,
    pub approvers: Vec<String>,
    pub permissions: Vec<String>,
    pub groups: Vec<String>,
    pub admin_channel: Option<String>,
}

impl App {
    /// Checks a catalog entry before it is stored.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let bad = |message: String| Err(ValidationError::bad(message));
        if !is_slug(&self.slug) {
            return bad("the app slug must be 1-80 characters of a-z, 0-9, '-' or '_'".into());
        }
        if self.name.trim().is_empty() || self.name.chars().count() > MAX_ID_LEN {
            return bad("name must be 1-80 characters".into());
        }
        if self.admins.is_empty() {
            return bad("admins must not be empty".into());
        }
        if self.permissions.is_empty() {
            return bad("permissions must not be empty".into());
        }
        for (field, ids) in [("admins", &self.admins), ("approvers", &self.approvers)] {
            check_list(field, ids)?;
            if let Some(id) = ids.iter().find(|id| !is_slack_id(id)) {
                return bad(format!("{field}: {id:?} is not a Slack user id"));
            }
        }
        check_list("permissions", &self.permissions)?;
        check_list("groups", &self.groups)?;
        if let Some(channel) = &self.admin_channel {
            if !is_slack_id(channel) {
                return bad(format!(
                    "admin_channel: {channel:?} is not a Slack channel id"
                ));
            }
        }
        Ok(())
    }

    /// The permission used when a request names none.
    pub fn default_permission(&self) -> &str {
        self.permissions.first().map(String::as_str).unwrap_or("")
    }
}

fn check_list(field: &str, items: &[String]) -> Result<(), ValidationError> {
    if items.len() > MAX_LIST_LEN {
        return Err(ValidationError::bad(format!(
            "{field} may hold at most {MAX_LIST_LEN} entries"
        )));
    }
    for (i, item) in items.iter().enumerate() {
        if item.trim().is_empty() || item.chars().count() > MAX_ID_LEN {
            return Err(ValidationError::bad(format!(
                "{field} entries must be 1-80 characters"
            )));
        }
        if items[..i].contains(item) {
            return Err(ValidationError::bad(format!(
                "{field} lists {item:?} twice"
            )));
        }
    }
    Ok(())
}

/// A slug is used in URLs and Slack action values, so it is kept to a safe alphabet.
pub fn is_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_ID_LEN
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Slack user and channel ids: an uppercase letter then uppercase letters and digits (`U024BE7LH`).
pub fn is_slack_id(id: &str) -> bool {
    (2..=MAX_ID_LEN).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}
