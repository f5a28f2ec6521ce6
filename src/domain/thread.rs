//! The one conversation of a request, gathered from the threads of all its cards, and the
//! relay policy: who is relayed, how much of a message, and how often.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{AccessRequest, Actor, Role, Roles};

/// Longest thread message relayed and kept, marker included. Slack accepts 40,000
/// characters; a card's thread is a conversation about one request, where 3,000 characters
/// (a long paragraph, a pasted error) is plenty, and each message is copied into every thread
/// of the request and kept for as long as the request.
pub const MAX_THREAD_TEXT: usize = 3_000;

/// What ends a message cut to [`MAX_THREAD_TEXT`], so that everyone sees it was cut.
pub const TRUNCATED: &str = "… (truncated)";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadMessage {
    #[serde(with = "crate::time_format")]
    pub at: DateTime<Utc>,
    pub user: String,
    pub text: String,
}

/// A reply's text as it is relayed and kept: at most [`MAX_THREAD_TEXT`] characters; a
/// longer one keeps its beginning and ends with [`TRUNCATED`]. The rest is kept nowhere.
pub fn kept_thread_text(text: &str) -> String {
    if text.chars().count() <= MAX_THREAD_TEXT {
        return text.to_string();
    }
    let room = MAX_THREAD_TEXT - TRUNCATED.chars().count();
    let mut kept: String = text.chars().take(room).collect();
    kept.truncate(kept.trim_end().len());
    kept.push_str(TRUNCATED);
    kept
}

/// Whether a reply by `author`, written in the thread of a card sent to `recipient` (a user
/// or a channel id), is relayed: the request's people (requester, target user, approvers,
/// app admins) are, and in the app's admin channel whoever can post there counts as one of
/// them. Anyone else (someone who was an assignee once, a user added to a conversation) is
/// not.
pub fn relays_from(request: &AccessRequest, author: &str, recipient: &str) -> bool {
    if request.admin_channel.as_deref() == Some(recipient) {
        return true;
    }
    let roles = Roles::in_request(request, &Actor::User(author.to_string()));
    [Role::Requester, Role::Target, Role::Approver, Role::Admin]
        .into_iter()
        .any(|role| roles.has(role))
}

/// Why a reply was not relayed (nor kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayRefusal {
    /// The author is none of the request's people.
    NotOfTheRequest,
    /// The author wrote more than [`USER_RELAYS`] a minute; a token is back in `retry_in`.
    AuthorTooFast { retry_in: Duration },
    /// The request's threads had more than [`REQUEST_RELAYS`] a minute.
    RequestTooBusy { retry_in: Duration },
}

/// Relays a person may make in a burst, and per minute after it. A person typing writes a
/// few messages a minute; more is a paste loop or a script, and each relay becomes one post
/// per card of the request.
pub const USER_RELAYS: u32 = 5;
/// Relays a request may carry in a burst, and per minute after it: three people talking at
/// once stay under it, while a request with many cards (one post per card per relay) stays
/// within what Slack lets a workspace post.
pub const REQUEST_RELAYS: u32 = 15;

/// A token costs this many units; a bucket of capacity `c` gains `c` units a millisecond,
/// so it refills in a minute, in integers (no rounding makes a token late or early).
const TOKEN: i64 = 60_000;

/// A token bucket: `capacity` tokens, refilled evenly over a minute; each relay takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    capacity: u32,
    units: i64,
    at: DateTime<Utc>,
    /// The holder was told they are over the limit, since their last relay.
    told: bool,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, now: DateTime<Utc>) -> TokenBucket {
        TokenBucket {
            capacity,
            units: i64::from(capacity) * TOKEN,
            at: now,
            told: false,
        }
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        // A clock that went back refills nothing (and takes nothing back).
        let elapsed = (now - self.at).num_milliseconds().max(0);
        let rate = i64::from(self.capacity);
        let full = rate * TOKEN;
        self.units = elapsed
            .saturating_mul(rate)
            .saturating_add(self.units)
            .min(full);
        self.at = self.at.max(now);
    }

    /// Whether a token is there at `now` (without taking it); `Err` says when one will be.
    fn check(&mut self, now: DateTime<Utc>) -> Result<(), Duration> {
        self.refill(now);
        if self.units >= TOKEN {
            return Ok(());
        }
        let rate = i64::from(self.capacity).max(1);
        let wait = (TOKEN - self.units + rate - 1) / rate;
        Err(Duration::milliseconds(wait.max(1)))
    }

    fn take(&mut self) {
        self.units -= TOKEN;
        self.told = false;
    }

    /// True when nobody has been told about this bucket being empty yet (and marks it told).
    fn first_refusal(&mut self) -> bool {
        !std::mem::replace(&mut self.told, true)
    }

    /// Full again: nothing to remember about it.
    fn is_full(&self, now: DateTime<Utc>) -> bool {
        let mut bucket = self.clone();
        bucket.refill(now);
        bucket.units >= i64::from(bucket.capacity) * TOKEN
    }
}

/// What the limiter said about one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limited {
    /// Relay it (a token of the author's and of the request's was taken).
    Relay,
    /// Do not; `tell` is true the first time since the author's last relay.
    Refused { why: RelayRefusal, tell: bool },
}

/// Buckets kept before the full ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

/// Rate limits of the relay: one bucket per author and one per request. A reply is relayed
/// only if both have a token, and then takes one from each.
#[derive(Debug, Default)]
pub struct RelayLimiter {
    authors: HashMap<String, TokenBucket>,
    requests: HashMap<i64, TokenBucket>,
}

impl RelayLimiter {
    /// Asks for a relay of `author`'s reply in request `request_id` at `now`.
    pub fn admit(&mut self, author: &str, request_id: i64, now: DateTime<Utc>) -> Limited {
        if self.authors.len() + self.requests.len() > MAX_BUCKETS {
            self.authors.retain(|_, bucket| !bucket.is_full(now));
            self.requests.retain(|_, bucket| !bucket.is_full(now));
        }
        let author_bucket = self
            .authors
            .entry(author.to_string())
            .or_insert_with(|| TokenBucket::new(USER_RELAYS, now));
        let author_check = author_bucket.check(now);
        let request_bucket = self
            .requests
            .entry(request_id)
            .or_insert_with(|| TokenBucket::new(REQUEST_RELAYS, now));
        let why = match (author_check, request_bucket.check(now)) {
            (Ok(()), Ok(())) => {
                request_bucket.take();
                if let Some(bucket) = self.authors.get_mut(author) {
                    bucket.take();
                }
                return Limited::Relay;
            }
            (Err(retry_in), _) => RelayRefusal::AuthorTooFast { retry_in },
            (Ok(()), Err(retry_in)) => RelayRefusal::RequestTooBusy { retry_in },
        };
        // The author hears about it once, until one of their replies goes through again.
        let tell = self
            .authors
            .get_mut(author)
            .is_some_and(TokenBucket::first_refusal);
        Limited::Refused { why, tell }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::Status;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    fn request() -> AccessRequest {
        AccessRequest {
            id: 7,
            app: "figma".into(),
            app_name: "Figma".into(),
            target_user: "UTARGET".into(),
            requester: "UREQ".into(),
            permission: "Member".into(),
            status: Status::PendingApproval,
            approvers: vec!["UAPPROVER".into()],
            app_admins: vec!["UADMIN".into()],
            admin_channel: Some("CADMINS".into()),
            created_at: t(0),
            updated_at: t(0),
            version: 1,
            ..AccessRequest::default()
        }
    }

    #[test]
    fn the_requests_people_are_relayed_and_nobody_else() {
        let request = request();
        for person in ["UREQ", "UTARGET", "UAPPROVER", "UADMIN"] {
            assert!(relays_from(&request, person, "DSOMEONE"), "{person}");
        }
        assert!(!relays_from(&request, "USTRANGER", "DAPPROVER"));
        assert!(!relays_from(&request, "USTRANGER", "COTHER"));
    }

    #[test]
    fn in_the_admin_channel_anyone_who_can_post_counts() {
        assert!(relays_from(&request(), "USTRANGER", "CADMINS"));
        let mut without = request();
        without.admin_channel = None;
        assert!(!relays_from(&without, "USTRANGER", "CADMINS"));
    }

    #[test]
    fn long_texts_are_cut_to_the_cap_with_a_visible_mark() {
        assert_eq!(kept_thread_text("short"), "short");
        let exact = "x".repeat(MAX_THREAD_TEXT);
        assert_eq!(kept_thread_text(&exact), exact);
        let kept = kept_thread_text(&"é".repeat(40_000));
        assert_eq!(kept.chars().count(), MAX_THREAD_TEXT);
        assert!(kept.ends_with("… (truncated)"), "{kept}");
        assert!(kept.starts_with("éé"));
    }

    #[test]
    fn an_author_gets_a_burst_then_one_relay_every_twelve_seconds() {
        let mut limiter = RelayLimiter::default();
        for _ in 0..USER_RELAYS {
            assert_eq!(limiter.admit("U1", 1, t(0)), Limited::Relay);
        }
        let Limited::Refused { why, tell } = limiter.admit("U1", 1, t(0)) else {
            panic!("the sixth relay of a burst is refused");
        };
        assert_eq!(
            why,
            RelayRefusal::AuthorTooFast {
                retry_in: Duration::seconds(12)
            }
        );
        assert!(tell, "told the first time");
        assert_eq!(
            limiter.admit("U1", 1, t(6)),
            Limited::Refused {
                why: RelayRefusal::AuthorTooFast {
                    retry_in: Duration::seconds(6)
                },
                tell: false
            },
            "and only once"
        );
        assert_eq!(limiter.admit("U1", 1, t(12)), Limited::Relay);
        // After a relay went through, a new refusal is told again.
        assert!(matches!(
            limiter.admit("U1", 1, t(12)),
            Limited::Refused { tell: true, .. }
        ));
        // Someone else is not slowed down by U1.
        assert_eq!(limiter.admit("U2", 1, t(12)), Limited::Relay);
    }

    #[test]
    fn a_request_carries_a_bounded_number_of_relays_whoever_writes() {
        let mut limiter = RelayLimiter::default();
        for i in 0..REQUEST_RELAYS {
            assert_eq!(limiter.admit(&format!("U{i}"), 1, t(0)), Limited::Relay);
        }
        assert!(matches!(
            limiter.admit("UNEW", 1, t(0)),
            Limited::Refused {
                why: RelayRefusal::RequestTooBusy { .. },
                tell: true
            }
        ));
        // A refused reply takes no token: the author still has a full burst elsewhere.
        for _ in 0..USER_RELAYS {
            assert_eq!(limiter.admit("UNEW", 2, t(0)), Limited::Relay);
        }
        assert_eq!(limiter.admit("UOTHER", 1, t(4)), Limited::Relay);
    }

    #[test]
    fn a_clock_that_goes_back_refills_nothing() {
        let mut bucket = TokenBucket::new(1, t(60));
        bucket.take();
        assert!(bucket.check(t(0)).is_err());
        assert!(bucket.check(t(120)).is_ok());
    }

    #[test]
    fn idle_buckets_are_forgotten_when_there_are_many() {
        let mut limiter = RelayLimiter::default();
        // Each new author in a new request adds two buckets.
        for i in 0..=(MAX_BUCKETS / 2) as i64 {
            limiter.admit(&format!("U{i}"), i, t(0));
        }
        assert!(limiter.authors.len() + limiter.requests.len() > MAX_BUCKETS);
        limiter.admit("ULAST", 0, t(600));
        assert!(limiter.authors.len() + limiter.requests.len() < 10);
    }
}
