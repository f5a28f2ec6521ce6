//! Persistence behind one seam: [`Store`], implemented for SQLite and PostgreSQL.
//!
//! Every state change is written with the Slack calls it causes (the outbox) in one
//! transaction, so a crash can never keep one and lose the other.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    AccessRequest, App, AuditEvent, CardKind, NewEvent, Notice, Refusal, Status, ThreadMessage,
};

mod columns;
mod postgres;
mod rows;
mod sql;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request changed since it was read; read it again and decide again.
    #[error("the request was changed by someone else")]
    Conflict,
    /// The deduplication key of this change was seen before: it was already applied.
    #[error("this change was already applied")]
    Duplicate,
    #[error("unknown database URL scheme in {0:?}: use sqlite://… or postgres://…")]
    UnknownScheme(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An error of the SQLite driver (rusqlite), which runs every SQLite statement.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database could not be reached; nothing was written.
    #[error("the database cannot be reached: {0}")]
    Unavailable(String),
    #[error("database write failed: {0}")]
    Write(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "{0} is in use by another accessbot process; SQLite serves one process, use PostgreSQL \
         to run several replicas"
    )]
    InUse(String),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and runs migrations.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        sqlite::open(url).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres::open(url).await
    } else {
        Err(StoreError::UnknownScheme(url.chars().take(20).collect()))
    }
}

/// A Slack Web API call the bot owes, as a fact about a request. What Slack is sent is
/// rendered when it is sent, from the request as it is then, so a late delivery never
/// shows stale buttons. Rows stay readable across releases: a variant is never changed or
/// removed, only added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delivery {
    /// chat.postMessage of a card to its recipient.
    PostCard { card_id: i64 },
    /// chat.update of a posted card to the request's current state.
    UpdateCard { card_id: i64 },
    /// chat.update of every card of a request. A decision queues this one row rather than
    /// a row per card, which keeps its commit small; the worker expands it into
    /// `UpdateCard`s (see [`Store::expand_card_refreshes`]).
    RefreshCards { request_id: i64 },
    /// chat.postMessage of a notice about a request to one user, by DM (or into the admin
    /// channel, for the notices about a stage nobody could be reached for).
    Notify {
        request_id: i64,
        to: String,
        notice: Notice,
    },
    /// chat.postMessage of a reply written in another thread of the request into the
    /// thread of this card, once the card is posted.
    RelayReply {
        card_id: i64,
        author: String,
        text: String,
    },
    /// chat.postMessage of the request's conversation so far (its first `messages`
    /// messages) into the thread of a card posted after the conversation began.
    ThreadSummary { card_id: i64, messages: usize },
    /// chat.postEphemeral: something only `user` sees, in the thread `thread_ts` if set.
    PostEphemeral {
        channel: String,
        user: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_ts: Option<String>,
    },
    /// views.publish of a user's App Home.
    PublishHome { user: String },
    /// chat.postMessage of a message rendered when it was queued (a DM to a user id, or
    /// into a channel). Written by releases before deliveries were facts; still sent.
    PostMessage {
        channel: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocks: Option<serde_json::Value>,
    },
    /// chat.postMessage of rendered text into the thread of a card. Written by releases
    /// before deliveries were facts; still sent.
    PostInCardThread { card_id: i64, text: String },
    /// chat.postMessage of kept thread message `message_id` into the thread of this card,
    /// once the card is posted, rendered as the message is when sent (nothing if it was
    /// deleted meanwhile). The copy is remembered, so that edits and deletions follow it.
    RelayMessage { card_id: i64, message_id: i64 },
    /// chat.update of the copy of thread message `message_id` in this card's thread, to the
    /// message as it is when sent.
    UpdateRelayCopy { card_id: i64, message_id: i64 },
    /// chat.delete of the copy of thread message `message_id` in this card's thread.
    DeleteRelayCopy { card_id: i64, message_id: i64 },
}

impl Delivery {
    /// The conversation this delivery writes to, as a key: a card and its thread are one
    /// conversation, a user's Home tab another.
    pub fn conversation(&self) -> String {
        match self {
            Delivery::PostCard { card_id }
            | Delivery::UpdateCard { card_id }
            | Delivery::RelayReply { card_id, .. }
            | Delivery::ThreadSummary { card_id, .. }
            | Delivery::PostInCardThread { card_id, .. }
            | Delivery::RelayMessage { card_id, .. }
            | Delivery::UpdateRelayCopy { card_id, .. }
            | Delivery::DeleteRelayCopy { card_id, .. } => format!("card:{card_id}"),
            Delivery::PostMessage { channel, .. } | Delivery::PostEphemeral { channel, .. } => {
                format!("channel:{channel}")
            }
            Delivery::Notify { to, .. } => format!("channel:{to}"),
            Delivery::PublishHome { user } => format!("home:{user}"),
            Delivery::RefreshCards { request_id } => format!("request:{request_id}"),
        }
    }

    /// The Slack Web API method this delivery calls.
    pub fn method(&self) -> &'static str {
        match self {
            Delivery::PostCard { .. }
            | Delivery::Notify { .. }
            | Delivery::RelayReply { .. }
            | Delivery::ThreadSummary { .. }
            | Delivery::PostMessage { .. }
            | Delivery::PostInCardThread { .. }
            | Delivery::RelayMessage { .. } => "chat.postMessage",
            Delivery::UpdateCard { .. }
            | Delivery::RefreshCards { .. }
            | Delivery::UpdateRelayCopy { .. } => "chat.update",
            Delivery::DeleteRelayCopy { .. } => "chat.delete",
            Delivery::PostEphemeral { .. } => "chat.postEphemeral",
            Delivery::PublishHome { .. } => "views.publish",
        }
    }
}

/// A card to create (and post) for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCard {
    pub kind: CardKind,
    /// A user id (the card goes by DM) or a channel id.
    pub recipient: String,
}

/// A card of a request; `channel` and `ts` are known once Slack accepted the post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: i64,
    pub request_id: i64,
    pub kind: CardKind,
    pub recipient: String,
    pub channel: Option<String>,
    pub ts: Option<String>,
    /// The request version the card showed when it was last posted or updated.
    pub rendered_version: i64,
}

/// A card and, when its post failed for good, the error recorded on its failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardState {
    pub card: Card,
    pub failed: Option<String>,
}

/// What Slack's `users.info` said about a person, as the users directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackUser {
    pub id: String,
    /// The name people see: the profile's display name, else the real name, else the
    /// account name.
    pub display_name: String,
    pub real_name: String,
    /// The account is deactivated.
    pub deleted: bool,
    pub tz: Option<String>,
    pub email: Option<String>,
    /// When Slack last answered for this person (or a post told us they are gone).
    pub refreshed_at: DateTime<Utc>,
}

/// A note about a request made once, whoever notices first (two workers, two replicas):
/// its key is recorded with its audit entry and its deliveries, in one transaction.
#[derive(Debug, Clone)]
pub struct Note {
    /// A processed key (see [`Store::claim_key`]).
    pub key: String,
    pub request_id: i64,
    pub event: Option<NewEvent>,
    pub deliveries: Vec<Delivery>,
    pub at: DateTime<Utc>,
}

/// A state change of a request, with everything it causes, written in one transaction.
#[derive(Debug, Clone)]
pub struct Change {
    /// The new state; applied only if the stored version is `request.version - 1`.
    pub request: AccessRequest,
    pub event: NewEvent,
    pub new_cards: Vec<NewCard>,
    pub deliveries: Vec<Delivery>,
    /// Users whose Home tab shows this request; it is republished for those who use it.
    pub republish_homes: Vec<String>,
    /// Identifies the cause (e.g. one click); a change with a key seen before is refused
    /// with `Duplicate`, so a repeated delivery is applied once.
    pub dedup_key: Option<String>,
}

/// Turns a request as stored into the change to apply, or refuses (the domain's decision).
pub type Decide = Arc<dyn Fn(AccessRequest) -> Result<Change, Refusal> + Send + Sync>;

/// What an app's open request becomes when the app changes: given the request and its
/// cards, the change to apply, if any (`domain::reassign`). It may be called twice for one
/// request (see `Decide`), so it only reads what it captured.
pub type Follow = Arc<dyn Fn(&AccessRequest, &[Card]) -> Option<Change> + Send + Sync>;

/// What [`Store::put_app_following`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutApp {
    /// The app was created, not replaced.
    pub created: bool,
    /// The open requests that followed the change, by id.
    pub followed: Vec<i64>,
}

/// What [`Store::decide`] did.
#[derive(Debug)]
pub enum Decided {
    /// The change was applied; the request as it is now.
    Applied(Box<AccessRequest>),
    /// Nothing was written.
    Refused(Refusal),
    NotFound,
}

/// Sends the job `job(done)` to the thread or task behind `jobs` and waits for its answer
/// on `done`; `stopped` is the error when nobody is there to answer.
async fn ask<J, T>(
    jobs: &tokio::sync::mpsc::UnboundedSender<J>,
    job: impl FnOnce(tokio::sync::oneshot::Sender<StoreResult<T>>) -> J,
    stopped: fn() -> StoreError,
) -> StoreResult<T> {
    let (done, answer) = tokio::sync::oneshot::channel();
    jobs.send(job(done)).map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())?
}

/// Runs `decide` on `request`; a panic in it becomes an error, so that it cannot stop the
/// task or thread that batches every decision.
fn decide_caught(decide: &Decide, request: AccessRequest) -> StoreResult<Result<Change, Refusal>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decide(request)))
        .map_err(|_| StoreError::Write("deciding a change panicked".into()))
}

/// A request to file, with its first event, cards and messages.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// `id` is ignored; the store assigns one.
    pub request: AccessRequest,
    pub event: NewEvent,
    pub new_cards: Vec<NewCard>,
    pub deliveries: Vec<Delivery>,
    /// Users whose Home tab shows this request; it is republished for those who use it.
    pub republish_homes: Vec<String>,
    /// Makes filing again with the same key and body return the first request.
    pub idempotency: Option<IdempotencyKey>,
}

/// An idempotency key with the body it came with: the same key with the same body finds the
/// request it filed; with another body it files nothing ([`Filed::KeyUsedForAnotherBody`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Named after the door it came through (`api:…`, `slack-view:…`), so that a key sent
    /// through one door never answers with a request filed through another.
    pub key: String,
    /// SHA-256 (hex) of what was asked with the key.
    pub body_hash: String,
    /// The key as releases before keys had bodies kept it, on the request it filed
    /// (`requests.idempotency_key`, read and never written now): such a key has no body to
    /// compare, and replays as it did.
    pub legacy_key: Option<String>,
    /// Keys recorded at or before this moment are forgotten: the key files anew.
    pub live_after: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filed {
    Created(AccessRequest),
    /// The idempotency key was used before with the same body (or before bodies were kept);
    /// this is the request it filed.
    Existing(AccessRequest),
    /// The idempotency key is live and was used with another body; nothing was filed.
    KeyUsedForAnotherBody,
}

impl IdempotencyKey {
    /// What filing with this key answers, given what the key found: its stored body hash
    /// (`None` for a key of an earlier release) and its request.
    fn replay(&self, found: (Option<String>, AccessRequest)) -> Filed {
        match found {
            (Some(hash), _) if hash != self.body_hash => Filed::KeyUsedForAnotherBody,
            (_, request) => Filed::Existing(request),
        }
    }
}

/// A reply in the thread of one card, to keep and relay to the threads of the others.
#[derive(Debug, Clone)]
pub struct ThreadPost {
    pub request_id: i64,
    /// The card in whose thread it was written; it gets no copy.
    pub source_card_id: i64,
    pub source_channel: String,
    pub source_ts: String,
    pub event: NewEvent,
    pub message: ThreadMessage,
}

/// A kept thread message, as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptMessage {
    pub id: i64,
    pub request_id: i64,
    pub user: String,
    /// Empty once deleted.
    pub text: String,
    /// Grows by one with each edit and at the deletion.
    pub version: i64,
    pub deleted: bool,
}

/// An edit (`text`) or a deletion (`None`) of a kept thread message, with its audit entry.
#[derive(Debug, Clone)]
pub struct ThreadChange {
    pub message_id: i64,
    pub request_id: i64,
    pub text: Option<String>,
    pub event: NewEvent,
}

/// Where the bot posted a copy of a thread message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCopy {
    pub channel: String,
    pub ts: String,
}

/// What the copy of thread message `message_id` in card `card_id`'s thread needs after
/// the message changed: an update, or a deletion when the message was deleted.
fn relay_follow_up(message_id: i64, card_id: i64, deleted: bool) -> Delivery {
    if deleted {
        Delivery::DeleteRelayCopy {
            card_id,
            message_id,
        }
    } else {
        Delivery::UpdateRelayCopy {
            card_id,
            message_id,
        }
    }
}

/// A delivery claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub request_id: Option<i64>,
    pub delivery: Delivery,
    /// Attempts made before this one.
    pub attempts: i32,
    /// Why the previous attempt did not finish, if it ended at all.
    pub last_error: Option<String>,
}

/// A delivery that Slack refused for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDelivery {
    pub id: i64,
    pub request_id: Option<i64>,
    pub method: String,
    pub error: String,
    pub attempts: i32,
    #[serde(with = "crate::time_format")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time_format")]
    pub failed_at: DateTime<Utc>,
}

/// Which requests to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<Status>,
    pub app: Option<String>,
    /// Matches the requester or the target user.
    pub user: Option<String>,
    /// Only requests with an id below this (the pagination cursor).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub requests_by_status: Vec<(Status, i64)>,
    pub deliveries_waiting: i64,
    pub deliveries_failed: i64,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates or replaces an app; true when it was created. Its open requests keep their
    /// lists (see [`Store::put_app_following`]).
    async fn put_app(&self, app: &App, now: DateTime<Utc>) -> StoreResult<bool> {
        let unchanged: Follow = Arc::new(|_, _| None);
        Ok(self.put_app_following(app, now, unchanged).await?.created)
    }

    /// Creates or replaces an app and, in the same transaction, applies to each of its open
    /// requests (not final: pending or provisioned) the change `follow` makes of it.
    async fn put_app_following(
        &self,
        app: &App,
        now: DateTime<Utc>,
        follow: Follow,
    ) -> StoreResult<PutApp>;
    async fn app(&self, slug: &str) -> StoreResult<Option<App>>;
    /// The catalog, by slug.
    async fn apps(&self) -> StoreResult<Vec<App>>;

    /// Files a request, unless its idempotency key is live: then the request the key filed
    /// (same body) or nothing (another body). The key is recorded with the request, in one
    /// transaction.
    async fn file_request(&self, new: NewRequest) -> StoreResult<Filed>;
    async fn request(&self, id: i64) -> StoreResult<Option<AccessRequest>>;
    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<AccessRequest>>;
    /// The audit trail, oldest first.
    async fn events(&self, request_id: i64) -> StoreResult<Vec<AuditEvent>>;
    /// Applies a change; `Conflict` if the request changed since it was read.
    async fn apply(&self, change: Change) -> StoreResult<()>;
    /// Reads request `id`, lets `decide` turn it into a change and applies the change with
    /// the deduplication key `key` (`Duplicate` when it was applied before), as if in one
    /// step: a lost race is decided again on the fresh state.
    async fn decide(&self, id: i64, key: Option<String>, decide: Decide) -> StoreResult<Decided>;
    /// Appends an audit entry that changes no state (e.g. a failed delivery).
    async fn append_event(&self, request_id: i64, event: &NewEvent) -> StoreResult<()>;

    async fn card(&self, card_id: i64) -> StoreResult<Option<Card>>;
    /// A card and its request in one read (what rendering a card needs).
    async fn card_with_request(&self, card_id: i64) -> StoreResult<Option<(Card, AccessRequest)>>;
    async fn cards(&self, request_id: i64) -> StoreResult<Vec<Card>>;
    /// Records where Slack put a posted card. In the same transaction, queues an update of
    /// the card if the request changed since it was rendered, and the conversation so far
    /// into its thread if one has started.
    async fn card_posted(
        &self,
        card_id: i64,
        channel: &str,
        ts: &str,
        rendered_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Queues deliveries that belong to no state change (e.g. an ephemeral explanation).
    async fn enqueue(
        &self,
        request_id: Option<i64>,
        deliveries: &[Delivery],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Claims up to `limit` due deliveries for `lease`; deliveries whose lease ran out
    /// (their worker died) are due again.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>>;
    /// Marks deliveries done and records the request version each updated card now shows
    /// (`(card_id, version)`), in one transaction.
    async fn deliveries_done(&self, ids: &[i64], cards: &[(i64, i64)]) -> StoreResult<()>;
    /// Replaces each claimed `RefreshCards` delivery (`(delivery id, request id)`) still
    /// held by `owner` by an `UpdateCard` delivery for each card of its request, all in one
    /// transaction.
    async fn expand_card_refreshes(
        &self,
        owner: &str,
        refreshes: &[(i64, i64)],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Gives back every claim `owner` still holds (at shutdown).
    async fn release_claims(&self, owner: &str) -> StoreResult<()>;
    /// Releases a claimed delivery to be tried again at `not_before`. A postponement that
    /// does not count as an attempt (Slack's 429: nothing happened) gives the claim back.
    async fn delivery_postponed(
        &self,
        id: i64,
        not_before: DateTime<Utc>,
        error: &str,
        counts_as_attempt: bool,
    ) -> StoreResult<()>;
    /// Dead-letters a delivery and notes it in the request's audit trail.
    async fn delivery_failed(&self, id: i64, error: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Failed deliveries by id, the first `limit` with an id above `after_id` (a page).
    async fn failed_deliveries(
        &self,
        after_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<FailedDelivery>>;
    /// Puts a failed delivery back in the queue; false if there is no such failed delivery.
    async fn retry_delivery(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool>;
    /// The earliest time a waiting delivery becomes due, if any.
    async fn next_delivery_due(&self) -> StoreResult<Option<DateTime<Utc>>>;

    async fn stats(&self) -> StoreResult<StoreStats>;
    /// `StoreStats::deliveries_waiting` alone: one count on the partial index of pending
    /// deliveries, cheap enough to read at every scrape.
    async fn deliveries_waiting(&self) -> StoreResult<i64>;

    /// Records `key` as processed; false when it was already (a retried event, a replay).
    async fn claim_key(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Records `note.key` and, when it is new, appends the note's event and queues its
    /// deliveries, in one transaction; false (and nothing written) when the key was seen.
    async fn note_once(&self, note: Note) -> StoreResult<bool>;

    /// Every card of a request, by id, with the error of its post when that failed for good.
    async fn card_states(&self, request_id: i64) -> StoreResult<Vec<CardState>>;

    /// The users directory's row for Slack user `id`, if it has one.
    async fn slack_user(&self, id: &str) -> StoreResult<Option<SlackUser>>;
    /// Keeps what Slack said about a user, replacing what the directory held.
    async fn save_slack_user(&self, user: &SlackUser) -> StoreResult<()>;
    /// Forgets processed keys and idempotency keys recorded before `keys_before` and
    /// finished deliveries older than `done_before`; Slack retries and replays come within
    /// minutes, and idempotency keys are ignored once their day is over anyway. Also folds
    /// the status changes recorded since the last prune into the counts [`Store::stats`]
    /// reads, so that what it adds up stays as short as the time between two prunes.
    async fn prune(
        &self,
        keys_before: DateTime<Utc>,
        done_before: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The card posted as message `ts` in `channel`.
    async fn card_by_message(&self, channel: &str, ts: &str) -> StoreResult<Option<Card>>;
    /// Keeps a thread reply, notes it in the audit trail and queues its relay to every other
    /// posted card of the request, in one transaction; false if this message was kept before.
    async fn add_thread_message(&self, post: ThreadPost) -> StoreResult<bool>;
    /// A request's discussion, oldest first, without the deleted messages.
    async fn thread(&self, request_id: i64) -> StoreResult<Vec<ThreadMessage>>;
    /// The kept thread message written as message `ts` in `channel`.
    async fn thread_message_at(&self, channel: &str, ts: &str) -> StoreResult<Option<KeptMessage>>;
    /// Kept thread message `id`.
    async fn thread_message(&self, id: i64) -> StoreResult<Option<KeptMessage>>;
    /// Edits or deletes a kept thread message, notes it in the audit trail and queues the
    /// update or deletion of each copy posted so far, in one transaction; false when the
    /// message is deleted already. (A copy posted later is checked by
    /// [`Store::relay_copy_posted`].)
    async fn change_thread_message(&self, change: ThreadChange) -> StoreResult<bool>;
    /// Where the copy of thread message `message_id` in the thread of card `card_id` is.
    async fn relay_copy(&self, message_id: i64, card_id: i64) -> StoreResult<Option<RelayCopy>>;
    /// Remembers the copy of thread message `message_id` posted in card `card_id`'s thread,
    /// showing its version `shown_version`. In the same transaction, queues its update if the
    /// message was edited since it was rendered, or its deletion if the message was deleted.
    async fn relay_copy_posted(
        &self,
        message_id: i64,
        card_id: i64,
        copy: RelayCopy,
        shown_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Remembers that `user` uses the Home tab.
    async fn home_opened(&self, user: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Pending requests whose current stage lists `user` among its assignees, oldest first:
    /// the Home tab's candidates (the policy decides which are tasks).
    async fn open_tasks(&self, user: &str, limit: u32) -> StoreResult<Vec<AccessRequest>>;

    /// Provisioned requests whose access has run out at `now`.
    async fn due_expiries(&self, now: DateTime<Utc>, limit: u32)
        -> StoreResult<Vec<AccessRequest>>;
    /// Provisioned requests ending by `at` whose requester was not reminded yet.
    async fn expiring_before(
        &self,
        at: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>>;
    /// Pending requests whose current stage began by `since` and was not reminded yet.
    async fn waiting_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>>;
}
