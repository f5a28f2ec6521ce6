//! Delivers the stored Slack calls (the outbox).
//!
//! A delivery is claimed with a lease, made, and then marked done, postponed (429, 5xx,
//! network trouble) or dead-lettered (Slack said no). A worker that dies leaves its
//! claims to expire, and another worker takes them over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures::stream::{self, StreamExt};
use rand::Rng;
use slack_morphism::prelude::{SlackBlock, SlackMessageContent};
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::directory::{deactivated_error, is_deactivated_error, Directory};
use crate::domain::{
    is_person, nobody_reached_by_dm_event, nobody_to_act_event, reach, CardKind, CardPost, Notice,
    Post, Reach, Unreachable,
};
use crate::foreground::Foreground;
use crate::metrics::Metrics;
use crate::slack::client::{CallError, Posted, SlackApi, RECIPIENT_GONE};
use crate::slack::{blocks, views};
use crate::store::{
    CardState, Delivery, Note, OutboxItem, RelayCopy, RequestFilter, Store, StoreError,
};

/// How long a claim protects a delivery from other workers.
const LEASE: i64 = 60;
/// Deliveries claimed at once.
const BATCH: u32 = 64;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 16;
/// While Slack requests are being handled (see `foreground`) the worker claims this many
/// deliveries at a time, with this many in flight, and rests between batches, still far
/// above what Slack's rate limits (per method and workspace: 50 or 100 a minute, a message
/// a second per channel) let a workspace make. Each replica trickles on its own, so a faster
/// trickle costs every replica's clicks (measurements in bench/analysis.md).
const YIELDING_BATCH: u32 = 16;
const YIELDING_CONCURRENCY: usize = 4;
const YIELDING_REST: StdDuration = StdDuration::from_millis(100);
/// After this many attempts a delivery that keeps failing is dead-lettered.
const MAX_ATTEMPTS: i32 = 12;
/// The error noted on a delivery postponed by a 429.
const RATE_LIMITED: &str = "rate limited by Slack";
/// Tasks and own requests read for a Home tab; the view shows what fits.
const HOME_ITEMS: u32 = 100;
/// The longest wait between two attempts.
const MAX_BACKOFF_SECONDS: i64 = 300;

/// Splits claimed deliveries (oldest first) into lanes, one per conversation, each in the
/// order it was queued.
fn lanes(items: Vec<OutboxItem>) -> Vec<Vec<OutboxItem>> {
    let mut lanes: Vec<Vec<OutboxItem>> = Vec::new();
    let mut lane_of: HashMap<String, usize> = HashMap::new();
    for item in items {
        let key = item.delivery.conversation();
        let lane = *lane_of.entry(key).or_insert_with(|| {
            lanes.push(Vec::new());
            lanes.len() - 1
        });
        lanes[lane].push(item);
    }
    lanes
}

/// What a 429 pauses. Slack limits chat.postMessage per channel (about a message a second
/// in each), so its 429 pauses that channel only, and posts elsewhere go on; the other
/// methods are limited per method and workspace, so their 429 pauses the method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PauseScope {
    method: &'static str,
    channel: Option<String>,
}

impl PauseScope {
    fn of(method: &'static str, channel: &str) -> PauseScope {
        let channel = (method == "chat.postMessage").then(|| channel.to_string());
        PauseScope { method, channel }
    }
}

/// Scopes rate-limited by Slack until the given time: no call in them before. Per worker:
/// another replica learns of a limit from its own 429.
#[derive(Debug, Default)]
struct Pauses(Mutex<HashMap<PauseScope, DateTime<Utc>>>);

impl Pauses {
    fn until(&self, scope: &PauseScope, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let paused = self.0.lock().unwrap_or_else(|p| p.into_inner());
        paused.get(scope).copied().filter(|until| *until > now)
    }

    fn pause(&self, scope: PauseScope, until: DateTime<Utc>, now: DateTime<Utc>) {
        let mut paused = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Pauses over are forgotten, so that one entry per channel ever limited does not pile up.
        paused.retain(|_, until| *until > now);
        let entry = paused.entry(scope).or_insert(until);
        *entry = (*entry).max(until);
    }
}

/// How long to wait after a 429: Slack's `Retry-After`, or a second without one.
fn rate_limit_wait(retry_after: Option<StdDuration>) -> Duration {
    retry_after
        .and_then(|wait| Duration::from_std(wait).ok())
        .unwrap_or(Duration::seconds(1))
}

/// What became of one attempt.
enum Outcome {
    /// Made; for a card update, the card and the request version it shows now.
    Done { card: Option<(i64, i64)> },
    /// Slack asked us to wait (429): never dead-letters a delivery.
    RateLimited { wait: Duration },
    /// 5xx, network trouble, a card not posted yet: try again after a backoff.
    Transient(String),
    /// Slack refused the call for good.
    Failed(String),
    /// Not sent, for good: the recipient cannot receive it (this error says why).
    NotSent(String),
}

pub struct Worker {
    store: Arc<dyn Store>,
    slack: Option<SlackApi>,
    clock: Arc<dyn Clock>,
    foreground: Arc<Foreground>,
    owner: String,
    /// Methods and channels rate-limited by Slack.
    paused: Pauses,
    /// Who is deactivated; present with Slack.
    directory: Option<Directory>,
    metrics: Arc<Metrics>,
}

impl Worker {
    /// `user_refresh`: how long the users directory trusts what Slack said about a person.
    pub fn new(
        store: Arc<dyn Store>,
        slack: Option<SlackApi>,
        clock: Arc<dyn Clock>,
        foreground: Arc<Foreground>,
        metrics: Arc<Metrics>,
        user_refresh: Duration,
    ) -> Worker {
        let owner = format!(
            "{}-{:08x}",
            std::process::id(),
            rand::thread_rng().gen::<u32>()
        );
        let directory = slack
            .as_ref()
            .map(|api| Directory::new(store.clone(), api.clone(), clock.clone(), user_refresh));
        Worker {
            store,
            slack,
            clock,
            foreground,
            owner,
            paused: Pauses::default(),
            directory,
            metrics,
        }
    }

    /// Delivers until shut down: whenever woken, at every interval, and when a postponed
    /// delivery becomes due.
    pub async fn run(
        &self,
        wake: Arc<Notify>,
        interval: StdDuration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            if *shutdown.borrow() {
                // Claims of deliveries not attempted go back at once, not when leases expire.
                if let Err(err) = self.store.release_claims(&self.owner).await {
                    tracing::warn!(error = %err, "could not release claimed deliveries");
                }
                return;
            }
            if let Err(err) = self.deliver_due(&shutdown).await {
                tracing::error!(error = %err, "delivering Slack calls failed");
            }
            let pause = self.time_to_next_due(interval).await;
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn time_to_next_due(&self, interval: StdDuration) -> StdDuration {
        let Ok(Some(due)) = self.store.next_delivery_due().await else {
            return interval;
        };
        let until = (due - self.clock.now())
            .to_std()
            .unwrap_or(StdDuration::ZERO);
        until.clamp(StdDuration::from_millis(5), interval)
    }

    /// Makes every due delivery once, claiming no more once `stop` is set; returns how many
    /// were attempted.
    pub async fn deliver_due(&self, stop: &watch::Receiver<bool>) -> Result<usize, StoreError> {
        let Some(slack) = &self.slack else {
            return Ok(0);
        };
        let mut attempted = 0;
        loop {
            if *stop.borrow() {
                return Ok(attempted);
            }
            let yielding = self.foreground.is_busy();
            let (batch, concurrency) = if yielding {
                (YIELDING_BATCH, YIELDING_CONCURRENCY)
            } else {
                (BATCH, CONCURRENCY)
            };
            let now = self.clock.now();
            let mut items = self
                .store
                .claim_deliveries(&self.owner, now, Duration::seconds(LEASE), batch)
                .await?;
            if items.is_empty() {
                return Ok(attempted);
            }
            attempted += items.len();
            // Card refreshes are no Slack call: they become one update per card, all in one
            // transaction, and those are claimed next time round.
            let mut refreshes = Vec::new();
            items.retain(|item| match item.delivery {
                Delivery::RefreshCards { request_id } => {
                    refreshes.push((item.id, request_id));
                    false
                }
                _ => true,
            });
            if let Err(err) = self.expand_refreshes(&refreshes).await {
                // Their leases run out and they are expanded again.
                tracing::error!(error = %err, "could not expand card refreshes");
            }
            // Calls to one conversation go one after another, in the order they were queued
            // (two thread replies must not swap); different conversations go side by side.
            let finished: Vec<(i64, Option<(i64, i64)>)> = stream::iter(lanes(items))
                .map(|lane| async move {
                    let mut finished = Vec::with_capacity(lane.len());
                    for item in lane {
                        finished.extend(self.attempt(slack, item).await);
                    }
                    finished
                })
                .buffer_unordered(concurrency)
                .flat_map(stream::iter)
                .collect()
                .await;
            // Successes are recorded together: one write for the whole batch.
            let ids: Vec<i64> = finished.iter().map(|(id, _)| *id).collect();
            let cards: Vec<(i64, i64)> = finished.iter().filter_map(|(_, card)| *card).collect();
            if let Err(err) = self.store.deliveries_done(&ids, &cards).await {
                // Their leases run out and they are checked against Slack and retried.
                tracing::error!(error = %err, "could not record finished deliveries");
            }
            if yielding {
                tokio::time::sleep(YIELDING_REST).await;
            }
        }
    }

    async fn expand_refreshes(&self, refreshes: &[(i64, i64)]) -> Result<(), StoreError> {
        self.store
            .expand_card_refreshes(&self.owner, refreshes, self.clock.now())
            .await
    }

    /// Makes one delivery; returns it (and the card it updated) when it is done, and records
    /// any other outcome itself.
    async fn attempt(
        &self,
        slack: &SlackApi,
        item: OutboxItem,
    ) -> Option<(i64, Option<(i64, i64)>)> {
        let method = item.delivery.method();
        let now = self.clock.now();
        let outcome = self
            .deliver(slack, &item)
            .await
            .unwrap_or_else(|err| Outcome::Transient(format!("database: {err}")));
        let gave_up = matches!(outcome, Outcome::Failed(_) | Outcome::NotSent(_))
            || matches!(outcome, Outcome::Transient(_) if item.attempts + 1 >= MAX_ATTEMPTS);
        let result = match outcome {
            Outcome::Done { card } => return Some((item.id, card)),
            Outcome::RateLimited { wait } => {
                self.store
                    .delivery_postponed(item.id, now + wait, RATE_LIMITED, false)
                    .await
            }
            Outcome::Transient(error) if item.attempts + 1 < MAX_ATTEMPTS => {
                let retry_at = now + backoff(item.attempts);
                self.store
                    .delivery_postponed(item.id, retry_at, &error, true)
                    .await
            }
            Outcome::Transient(error) | Outcome::Failed(error) => {
                self.store
                    .delivery_failed(item.id, &format!("{method} failed: {error}"), now)
                    .await
            }
            Outcome::NotSent(error) => self.store.delivery_failed(item.id, &error, now).await,
        };
        if let Err(err) = result {
            // The lease runs out and the delivery is tried again.
            tracing::error!(delivery = item.id, error = %err, "could not record a delivery's outcome");
            return None;
        }
        if let (true, Delivery::PostCard { .. }, Some(request_id)) =
            (gave_up, &item.delivery, item.request_id)
        {
            if let Err(err) = self.check_reach(request_id).await {
                // The next card of the request that fails asks again.
                tracing::error!(request = request_id, error = %err, "could not check who is left to act");
            }
        }
        None
    }

    /// After a card failed for good, or the admin channel's was posted: whether anybody is left to act on the request's
    /// current stage. When nobody is, the audit trail and the admin channel are told (once
    /// per stage, whichever worker notices first) and `/metrics` counts it; when only the
    /// admin channel's card got through, the channel is told that nobody could be reached
    /// by DM.
    async fn check_reach(&self, request_id: i64) -> Result<(), StoreError> {
        let Some(request) = self.store.request(request_id).await? else {
            return Ok(());
        };
        let cards: Vec<CardPost> = self
            .store
            .card_states(request_id)
            .await?
            .into_iter()
            .map(card_post)
            .collect();
        let now = self.clock.now();
        let stage_key = |what: &str| {
            format!(
                "{what}:{request_id}:{}:{}",
                request.status.as_str(),
                request.version
            )
        };
        let (note, unattended) = match reach(&request, &cards) {
            Reach::Reached => return Ok(()),
            Reach::Nobody { stage, unreached } => {
                let event = nobody_to_act_event(stage, &unreached, now);
                let notice = Notice::NobodyToAct { stage, unreached };
                let deliveries = request
                    .admin_channel
                    .iter()
                    .map(|channel| Delivery::Notify {
                        request_id,
                        to: channel.clone(),
                        notice: notice.clone(),
                    })
                    .collect();
                let note = Note {
                    key: stage_key("nobody"),
                    request_id,
                    event: Some(event),
                    deliveries,
                    at: now,
                };
                (note, Some(stage))
            }
            Reach::ChannelOnly {
                stage,
                channel,
                unreached,
            } => {
                let event = nobody_reached_by_dm_event(stage, &unreached, now);
                let notice = Notice::NobodyReachedByDm { stage, unreached };
                let note = Note {
                    key: stage_key("no-dm"),
                    request_id,
                    event: Some(event),
                    deliveries: vec![Delivery::Notify {
                        request_id,
                        to: channel,
                        notice,
                    }],
                    at: now,
                };
                (note, None)
            }
        };
        if self.store.note_once(note).await? {
            if let Some(stage) = unattended {
                tracing::warn!(
                    request = request_id,
                    stage = stage.as_str(),
                    "nobody is left to act on this stage"
                );
                self.metrics.stage_unattended(stage.as_str());
                if stage == CardKind::Removal {
                    self.metrics.removal_undeliverable();
                }
            }
        }
        Ok(())
    }

    /// Makes Slack call `call` (a `method` in `channel`) unless a 429 paused its scope, and
    /// pauses the scope when Slack answers this call with one.
    async fn call<T>(
        &self,
        method: &'static str,
        channel: &str,
        call: impl std::future::Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let scope = PauseScope::of(method, channel);
        let now = self.clock.now();
        if let Some(until) = self.paused.until(&scope, now) {
            return Err(CallError::RateLimited {
                retry_after: (until - now).to_std().ok(),
            });
        }
        let result = call.await;
        if let Err(CallError::RateLimited { retry_after }) = &result {
            let now = self.clock.now();
            self.paused
                .pause(scope, now + rate_limit_wait(*retry_after), now);
        }
        result
    }

    /// Posts a message once: when an earlier attempt may have posted it (its answer was
    /// lost, or its worker died), Slack is asked first and the earlier message is used if it
    /// is there.
    async fn post_once(
        &self,
        slack: &SlackApi,
        item: &OutboxItem,
        channel: &str,
        content: SlackMessageContent,
        thread_ts: Option<&str>,
    ) -> Result<Posted, CallError> {
        // A rate-limited attempt was refused before anything happened; any other may have
        // posted.
        let outcome_unknown = item.attempts > 0 && item.last_error.as_deref() != Some(RATE_LIMITED);
        if outcome_unknown {
            let text = content.text.clone().unwrap_or_default();
            let found = slack.find_posted(channel, thread_ts, item.id, &text);
            if let Some(posted) = self.call("conversations.history", channel, found).await? {
                tracing::info!(
                    delivery = item.id,
                    "an earlier attempt had posted this message"
                );
                return Ok(posted);
            }
        }
        let post = slack.post_message(channel, content, thread_ts, item.id);
        self.call("chat.postMessage", channel, post).await
    }

    /// Makes one Slack call; `Err` only for database trouble.
    async fn deliver(&self, slack: &SlackApi, item: &OutboxItem) -> Result<Outcome, StoreError> {
        let delivery = &item.delivery;
        let result = match delivery {
            Delivery::PostCard { card_id } => return self.post_card(slack, item, *card_id).await,
            Delivery::UpdateCard { card_id } => return self.update_card(slack, *card_id).await,
            Delivery::Notify {
                request_id,
                to,
                notice,
            } => {
                let Some(request) = self.store.request(*request_id).await? else {
                    return Ok(Outcome::Done { card: None });
                };
                let content = blocks::notice(&request, notice);
                self.post_once(slack, item, to, content, None)
                    .await
                    .map(|_| ())
            }
            Delivery::RelayReply {
                card_id,
                author,
                text,
            } => {
                let reply = ThreadText::Relay { author, text };
                return self.post_in_thread(slack, item, *card_id, reply).await;
            }
            Delivery::ThreadSummary { card_id, messages } => {
                let summary = ThreadText::Summary {
                    messages: *messages,
                };
                return self.post_in_thread(slack, item, *card_id, summary).await;
            }
            Delivery::PostInCardThread { card_id, text } => {
                let text = ThreadText::Rendered(text);
                return self.post_in_thread(slack, item, *card_id, text).await;
            }
            Delivery::PostMessage {
                channel,
                text,
                blocks,
            } => self
                .post_once(slack, item, channel, prepared(text, blocks.as_ref()), None)
                .await
                .map(|_| ()),
            Delivery::PostEphemeral {
                channel,
                user,
                text,
                thread_ts,
            } => {
                let post = slack.post_ephemeral(channel, user, text, thread_ts.as_deref());
                self.call("chat.postEphemeral", channel, post).await
            }
            Delivery::PublishHome { user } => return self.publish_home(slack, user).await,
            Delivery::RelayMessage {
                card_id,
                message_id,
            } => return self.relay_message(slack, item, *card_id, *message_id).await,
            Delivery::UpdateRelayCopy {
                card_id,
                message_id,
            } => return self.update_relay_copy(slack, *card_id, *message_id).await,
            Delivery::DeleteRelayCopy {
                card_id,
                message_id,
            } => return self.delete_relay_copy(slack, *card_id, *message_id).await,
            // `deliver_due` expands these a batch at a time before the lanes run; one
            // arriving here alone is expanded the same way.
            Delivery::RefreshCards { request_id } => {
                self.expand_refreshes(&[(item.id, *request_id)]).await?;
                return Ok(Outcome::Done { card: None });
            }
        };
        Ok(self.outcome(result))
    }

    async fn post_card(
        &self,
        slack: &SlackApi,
        item: &OutboxItem,
        card_id: i64,
    ) -> Result<Outcome, StoreError> {
        let Some((card, request)) = self.store.card_with_request(card_id).await? else {
            return Ok(Outcome::Done { card: None });
        };
        if card.ts.is_some() {
            return Ok(Outcome::Done { card: None });
        }
        if let Some(directory) = self
            .directory
            .as_ref()
            .filter(|_| is_person(&card.recipient))
        {
            // A retry of a card held back asks Slack again: the person may be back.
            let held_back = item.last_error.as_deref().is_some_and(is_deactivated_error);
            let person = if held_back {
                directory.person_afresh(&card.recipient).await?
            } else {
                directory.person(&card.recipient).await?
            };
            if person.is_deactivated() {
                tracing::info!(
                    card = card_id,
                    user = %card.recipient,
                    name = person.display_name().unwrap_or_default(),
                    "not posting a card to a deactivated user"
                );
                return Ok(Outcome::NotSent(deactivated_error(&card.recipient)));
            }
        }
        let content = blocks::card(&request, card.kind, &card.recipient, self.clock.now());
        match self
            .post_once(slack, item, &card.recipient, content, None)
            .await
        {
            Ok(posted) => {
                let now = self.clock.now();
                // A message found from an earlier attempt shows what that attempt rendered,
                // which may be older than this request version: have it updated.
                let shown_version = if posted.found { 0 } else { request.version };
                // A card that joins a running conversation starts with what was said so far.
                self.store
                    .card_posted(card_id, &posted.channel, &posted.ts, shown_version, now)
                    .await?;
                // The people's cards may all have failed before the channel's got through:
                // then the channel is the one place left, and must hear so.
                if !is_person(&card.recipient) {
                    if let Err(err) = self.check_reach(card.request_id).await {
                        tracing::error!(request = card.request_id, error = %err, "could not check who is left to act");
                    }
                }
                Ok(Outcome::Done { card: None })
            }
            Err(CallError::Permanent(code))
                if is_person(&card.recipient) && RECIPIENT_GONE.contains(&code.as_str()) =>
            {
                if let Some(directory) = &self.directory {
                    directory.mark_gone(&card.recipient).await?;
                }
                Ok(Outcome::Failed(code))
            }
            Err(err) => Ok(self.outcome(Err(err))),
        }
    }

    /// Posts into the thread of a card once Slack has it.
    async fn post_in_thread(
        &self,
        slack: &SlackApi,
        item: &OutboxItem,
        card_id: i64,
        text: ThreadText<'_>,
    ) -> Result<Outcome, StoreError> {
        let Some(card) = self.store.card(card_id).await? else {
            return Ok(Outcome::Done { card: None });
        };
        let (Some(channel), Some(ts)) = (&card.channel, &card.ts) else {
            return Ok(Outcome::Transient("the card is not posted yet".into()));
        };
        let text = match text {
            ThreadText::Relay { author, text } => blocks::thread_relay(author, text),
            ThreadText::Summary { messages } => {
                let thread = self.store.thread(card.request_id).await?;
                blocks::thread_summary(&thread[..messages.min(thread.len())])
            }
            ThreadText::Rendered(text) => text.to_string(),
        };
        let content = SlackMessageContent::new().with_text(text);
        let result = self
            .post_once(slack, item, channel, content, Some(ts))
            .await;
        Ok(self.outcome(result.map(|_| ())))
    }

    async fn update_card(&self, slack: &SlackApi, card_id: i64) -> Result<Outcome, StoreError> {
        let Some((card, request)) = self.store.card_with_request(card_id).await? else {
            return Ok(Outcome::Done { card: None });
        };
        // A card not posted yet will be rendered fresh when it is.
        let (Some(channel), Some(ts)) = (&card.channel, &card.ts) else {
            return Ok(Outcome::Done { card: None });
        };
        if card.rendered_version >= request.version {
            return Ok(Outcome::Done { card: None });
        }
        let content = blocks::card(&request, card.kind, &card.recipient, self.clock.now());
        let update = slack.update_message(channel, ts, content);
        match self.call("chat.update", channel, update).await {
            Ok(()) => Ok(Outcome::Done {
                card: Some((card_id, request.version)),
            }),
            Err(err) => Ok(self.outcome(Err(err))),
        }
    }

    async fn publish_home(&self, slack: &SlackApi, user: &str) -> Result<Outcome, StoreError> {
        let tasks = self.store.open_tasks(user, HOME_ITEMS).await?;
        let filter = RequestFilter {
            user: Some(user.to_string()),
            limit: HOME_ITEMS,
            ..RequestFilter::default()
        };
        let own: Vec<_> = self
            .store
            .requests(&filter)
            .await?
            .into_iter()
            .filter(|request| request.requester == user)
            .collect();
        let view = views::home(user, &tasks, &own, self.clock.now());
        let publish = slack.publish_home(user, view);
        Ok(self.outcome(self.call("views.publish", user, publish).await))
    }

    /// Posts kept thread message `message_id` into the thread of card `card_id`, as the
    /// message is now, and remembers the copy.
    async fn relay_message(
        &self,
        slack: &SlackApi,
        item: &OutboxItem,
        card_id: i64,
        message_id: i64,
    ) -> Result<Outcome, StoreError> {
        let done = Outcome::Done { card: None };
        let (Some(card), Some(message)) = (
            self.store.card(card_id).await?,
            self.store.thread_message(message_id).await?,
        ) else {
            return Ok(done);
        };
        if message.deleted {
            return Ok(done);
        }
        let (Some(channel), Some(ts)) = (&card.channel, &card.ts) else {
            return Ok(Outcome::Transient("the card is not posted yet".into()));
        };
        let content = SlackMessageContent::new()
            .with_text(blocks::thread_relay(&message.user, &message.text));
        match self
            .post_once(slack, item, channel, content, Some(ts))
            .await
        {
            Ok(posted) => {
                // A copy found from an earlier attempt may show an older version: have it
                // updated.
                let shown = if posted.found { 0 } else { message.version };
                let copy = RelayCopy {
                    channel: posted.channel,
                    ts: posted.ts,
                };
                self.store
                    .relay_copy_posted(message_id, card_id, copy, shown, self.clock.now())
                    .await?;
                Ok(done)
            }
            Err(err) => Ok(self.outcome(Err(err))),
        }
    }

    /// Updates the copy of an edited thread message to its text now.
    async fn update_relay_copy(
        &self,
        slack: &SlackApi,
        card_id: i64,
        message_id: i64,
    ) -> Result<Outcome, StoreError> {
        let done = Outcome::Done { card: None };
        let (Some(message), Some(copy)) = (
            self.store.thread_message(message_id).await?,
            self.store.relay_copy(message_id, card_id).await?,
        ) else {
            return Ok(done);
        };
        // A deleted message's copy has its deletion queued.
        if message.deleted {
            return Ok(done);
        }
        let content = SlackMessageContent::new()
            .with_text(blocks::thread_relay(&message.user, &message.text));
        let update = slack.update_message(&copy.channel, &copy.ts, content);
        Ok(self.outcome(self.call("chat.update", &copy.channel, update).await))
    }

    /// Deletes the copy of a deleted thread message.
    async fn delete_relay_copy(
        &self,
        slack: &SlackApi,
        card_id: i64,
        message_id: i64,
    ) -> Result<Outcome, StoreError> {
        let Some(copy) = self.store.relay_copy(message_id, card_id).await? else {
            return Ok(Outcome::Done { card: None });
        };
        let delete = slack.delete_message(&copy.channel, &copy.ts);
        match self.call("chat.delete", &copy.channel, delete).await {
            // Gone already (someone deleted it in Slack, or an earlier attempt did).
            Err(CallError::Permanent(code)) if code == "message_not_found" => {
                Ok(Outcome::Done { card: None })
            }
            result => Ok(self.outcome(result)),
        }
    }

    fn outcome(&self, result: Result<(), CallError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Done { card: None },
            Err(CallError::RateLimited { retry_after }) => Outcome::RateLimited {
                wait: rate_limit_wait(retry_after),
            },
            Err(CallError::Transient(error)) => Outcome::Transient(error),
            Err(CallError::Permanent(error)) => Outcome::Failed(error),
        }
    }
}

/// A card as the rule of who is left to act reads it.
fn card_post(state: CardState) -> CardPost {
    let post = match (&state.card.ts, state.failed) {
        (Some(_), _) => Post::Posted,
        (None, Some(error)) => Post::Failed(unreachable(&error)),
        (None, None) => Post::Waiting,
    };
    CardPost {
        kind: state.card.kind,
        recipient: state.card.recipient,
        post,
    }
}

/// Why a card did not reach its recipient, from the error its failed delivery recorded
/// (`chat.postMessage failed: is_archived`, or the directory's "… is deactivated in Slack").
fn unreachable(error: &str) -> Unreachable {
    let code = error.rsplit(": ").next().unwrap_or(error);
    if is_deactivated_error(error) || code == "user_disabled" {
        Unreachable::Deactivated
    } else {
        Unreachable::Refused(code.to_string())
    }
}

/// What goes into a card's thread.
enum ThreadText<'a> {
    /// A reply written in another thread of the request.
    Relay { author: &'a str, text: &'a str },
    /// The first `messages` messages of the request's conversation.
    Summary { messages: usize },
    /// Text rendered when it was queued (rows of earlier releases).
    Rendered(&'a str),
}

/// Backoff for the n-th failed attempt: 1 s, 2 s, 4 s … up to five minutes, with jitter.
pub fn backoff(attempts: i32) -> Duration {
    let base = 1i64 << attempts.clamp(0, 16);
    let capped = base.min(MAX_BACKOFF_SECONDS) * 1000;
    let jittered = rand::thread_rng().gen_range(capped / 2..=capped);
    Duration::milliseconds(jittered)
}

fn prepared(text: &str, blocks: Option<&serde_json::Value>) -> SlackMessageContent {
    let content = SlackMessageContent::new().with_text(text.to_string());
    match blocks.and_then(|b| serde_json::from_value::<Vec<SlackBlock>>(b.clone()).ok()) {
        Some(blocks) => content.with_blocks(blocks),
        None => content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, delivery: Delivery) -> OutboxItem {
        OutboxItem {
            id,
            request_id: None,
            delivery,
            attempts: 0,
            last_error: None,
        }
    }

    #[test]
    fn a_429_on_a_post_pauses_its_channel_and_on_other_methods_the_method() {
        use chrono::TimeZone;
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        let later = now + Duration::seconds(30);
        let pauses = Pauses::default();
        pauses.pause(PauseScope::of("chat.postMessage", "D1"), later, now);
        pauses.pause(PauseScope::of("chat.update", "D1"), later, now);
        let paused = |method, channel| pauses.until(&PauseScope::of(method, channel), now);
        assert_eq!(paused("chat.postMessage", "D1"), Some(later));
        assert_eq!(
            paused("chat.postMessage", "D2"),
            None,
            "another channel posts"
        );
        assert_eq!(
            paused("chat.update", "D2"),
            Some(later),
            "a workspace limit"
        );
        assert_eq!(
            pauses.until(&PauseScope::of("chat.postMessage", "D1"), later),
            None
        );
        // Pauses over are forgotten.
        pauses.pause(
            PauseScope::of("views.publish", "U1"),
            later + Duration::seconds(1),
            later,
        );
        assert_eq!(pauses.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_failed_card_says_whether_its_recipient_is_deactivated_or_refused() {
        assert_eq!(
            unreachable(&deactivated_error("U1")),
            Unreachable::Deactivated
        );
        assert_eq!(
            unreachable("chat.postMessage failed: user_disabled"),
            Unreachable::Deactivated
        );
        assert_eq!(
            unreachable("chat.postMessage failed: is_archived"),
            Unreachable::Refused("is_archived".into())
        );
        assert_eq!(
            unreachable("chat.postMessage failed: HTTP 503"),
            Unreachable::Refused("HTTP 503".into())
        );
    }

    #[test]
    fn a_conversation_keeps_its_order_and_others_go_beside_it() {
        let reply = |id, card_id| {
            item(
                id,
                Delivery::PostInCardThread {
                    card_id,
                    text: format!("reply {id}"),
                },
            )
        };
        let items = vec![
            reply(1, 7),
            reply(2, 8),
            item(3, Delivery::UpdateCard { card_id: 7 }),
            reply(4, 7),
            item(5, Delivery::PublishHome { user: "U1".into() }),
        ];
        let lanes: Vec<Vec<i64>> = lanes(items)
            .into_iter()
            .map(|lane| lane.into_iter().map(|item| item.id).collect())
            .collect();
        assert_eq!(lanes, [vec![1, 3, 4], vec![2], vec![5]]);
    }
}
