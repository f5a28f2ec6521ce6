//! The users directory: who a Slack user is, from `users.info`, kept in the database
//! (`slack_users`) so that Slack is asked about a person at most once per
//! `ACCESSBOT_USER_REFRESH`. It answers whether someone is deactivated (they get no
//! cards), their display name and their email.
//!
//! When Slack cannot answer (rate limited, down, a missing scope), the directory answers
//! with what it kept, however old, or with [`Person::Unknown`], which counts as active: a
//! card is never held back because Slack could not be asked.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;
use crate::slack::client::{CallError, SlackApi, UserInfo, RECIPIENT_GONE};
use crate::store::{SlackUser, Store, StoreResult};

/// What the directory knows about a person (a known row carries the email too, with the
/// `users:read.email` scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    Known(SlackUser),
    /// Slack could not be asked and nothing was kept: taken to be active.
    Unknown {
        id: String,
    },
}

impl Person {
    pub fn is_deactivated(&self) -> bool {
        matches!(self, Person::Known(user) if user.deleted)
    }

    /// The name people see in Slack, when known.
    pub fn display_name(&self) -> Option<&str> {
        match self {
            Person::Known(user) => Some(&user.display_name),
            Person::Unknown { .. } => None,
        }
    }
}

/// The error a card to a deactivated person is failed with; the worker reads it back to
/// tell a deactivated recipient from a refusal (see [`is_deactivated_error`]).
pub fn deactivated_error(user: &str) -> String {
    format!("{user} is deactivated in Slack")
}

/// Whether `error`, as recorded on a failed delivery, is [`deactivated_error`].
pub fn is_deactivated_error(error: &str) -> bool {
    error.ends_with(" is deactivated in Slack")
}

/// Whether a row refreshed at `refreshed_at` may still be used at `now`: younger than
/// `max_age`. A row from the future (a clock set back) is used, not refreshed in a loop.
pub fn is_fresh(refreshed_at: DateTime<Utc>, now: DateTime<Utc>, max_age: Duration) -> bool {
    now - refreshed_at < max_age
}

pub struct Directory {
    store: Arc<dyn Store>,
    slack: SlackApi,
    clock: Arc<dyn Clock>,
    /// How long a kept row is used before Slack is asked again.
    max_age: Duration,
}

impl Directory {
    pub fn new(
        store: Arc<dyn Store>,
        slack: SlackApi,
        clock: Arc<dyn Clock>,
        max_age: Duration,
    ) -> Directory {
        Directory {
            store,
            slack,
            clock,
            max_age,
        }
    }

    /// The person `id`: the kept row when it is fresh, else what Slack says now.
    pub async fn person(&self, id: &str) -> StoreResult<Person> {
        let kept = self.store.slack_user(id).await?;
        let now = self.clock.now();
        match kept {
            Some(user) if is_fresh(user.refreshed_at, now, self.max_age) => Ok(Person::Known(user)),
            kept => Ok(self.ask_slack(id, kept).await),
        }
    }

    /// The person `id` as Slack says now, whatever was kept (a retry of a card that was
    /// held back must not trust the row that held it back).
    pub async fn person_afresh(&self, id: &str) -> StoreResult<Person> {
        let kept = self.store.slack_user(id).await?;
        Ok(self.ask_slack(id, kept).await)
    }

    /// Records that Slack refused a DM to `id` because the person is gone.
    pub async fn mark_gone(&self, id: &str) -> StoreResult<()> {
        let kept = self.store.slack_user(id).await?;
        let gone = gone(id, kept, self.clock.now());
        self.store.save_slack_user(&gone).await
    }

    async fn ask_slack(&self, id: &str, kept: Option<SlackUser>) -> Person {
        let now = self.clock.now();
        let user = match self.slack.user_info(id).await {
            Ok(info) => known(info, now),
            Err(CallError::Permanent(code)) if RECIPIENT_GONE.contains(&code.as_str()) => {
                gone(id, kept, now)
            }
            Err(err) => {
                tracing::info!(user = id, error = %err, "users.info did not answer; using what is kept");
                return match kept {
                    Some(user) => Person::Known(user),
                    None => Person::Unknown { id: id.to_string() },
                };
            }
        };
        if let Err(err) = self.store.save_slack_user(&user).await {
            // The answer still serves this time; Slack is asked again next time.
            tracing::warn!(user = id, error = %err, "could not keep what users.info said");
        }
        Person::Known(user)
    }
}

fn known(info: UserInfo, now: DateTime<Utc>) -> SlackUser {
    SlackUser {
        id: info.id,
        display_name: info.display_name,
        real_name: info.real_name,
        deleted: info.deleted,
        tz: info.tz,
        email: info.email,
        refreshed_at: now,
    }
}

/// The row of a person Slack says is gone: what was kept about them, deactivated.
fn gone(id: &str, kept: Option<SlackUser>, now: DateTime<Utc>) -> SlackUser {
    let kept = kept.unwrap_or_else(|| SlackUser {
        id: id.to_string(),
        display_name: id.to_string(),
        real_name: String::new(),
        deleted: true,
        tz: None,
        email: None,
        refreshed_at: now,
    });
    SlackUser {
        deleted: true,
        refreshed_at: now,
        ..kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_kept_row_is_used_until_it_is_as_old_as_the_refresh_age() {
        let refreshed = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        let day = Duration::hours(24);
        #[rustfmt::skip]
        let table = [
            ("just kept", refreshed, true),
            ("a second short of a day", refreshed + day - Duration::seconds(1), true),
            ("a day old", refreshed + day, false),
            ("a week old", refreshed + Duration::days(7), false),
            ("kept in the future (the clock went back)", refreshed - Duration::hours(1), true),
        ];
        for (case, now, fresh) in table {
            assert_eq!(is_fresh(refreshed, now, day), fresh, "{case}");
        }
    }

    #[test]
    fn a_person_slack_says_is_gone_keeps_their_name_and_is_deactivated() {
        let then = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        let now = then + Duration::hours(1);
        let kept = SlackUser {
            id: "U1".into(),
            display_name: "ada".into(),
            real_name: "Ada Lovelace".into(),
            deleted: false,
            tz: Some("Europe/London".into()),
            email: Some("ada@example.com".into()),
            refreshed_at: then,
        };
        let marked = gone("U1", Some(kept.clone()), now);
        assert!(marked.deleted);
        assert_eq!(marked.refreshed_at, now);
        assert_eq!(marked.display_name, "ada");
        assert_eq!(marked.email, kept.email);
        let unknown = gone("U2", None, now);
        assert!(unknown.deleted);
        assert_eq!(unknown.display_name, "U2");
        assert!(Person::Known(unknown).is_deactivated());
        assert!(!Person::Unknown { id: "U3".into() }.is_deactivated());
    }

    #[test]
    fn the_deactivated_error_is_recognised_and_nothing_else_is() {
        assert!(is_deactivated_error(&deactivated_error("U1")));
        assert!(is_deactivated_error(&format!(
            "chat.postMessage failed: {}",
            deactivated_error("W1")
        )));
        assert!(!is_deactivated_error(
            "chat.postMessage failed: is_archived"
        ));
    }
}
