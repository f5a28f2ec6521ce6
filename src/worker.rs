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
use crate::foreground::Foreground;
use crate::slack::client::{CallError, Posted, SlackApi};
use crate::slack::{blocks, views};
use crate::store::{Delivery, OutboxItem, RequestFilter, Store, StoreError};

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
}

pub struct Worker {
    store: Arc<dyn Store>,
    slack: Option<SlackApi>,
    clock: Arc<dyn Clock>,
    foreground: Arc<Foreground>,
    owner: String,
    /// Slack methods rate-limited until the given time: no call to them before.
    paused: Mutex<HashMap<&'static str, DateTime<Utc>>>,
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        slack: Option<SlackApi>,
        clock: Arc<dyn Clock>,
        foreground: Arc<Foreground>,
    ) -> Worker {
        let owner = format!(
            "{}-{:08x}",
            std::process::id(),
            rand::thread_rng().gen::<u32>()
        );
        Worker {
            store,
            slack,
            clock,
            foreground,
            owner,
            paused: Mutex::new(HashMap::new()),
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
        let outcome = match self.paused_until(method, now) {
            Some(until) => Outcome::RateLimited { wait: until - now },
            None => self
                .deliver(slack, &item)
                .await
                .unwrap_or_else(|err| Outcome::Transient(format!("database: {err}"))),
        };
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
        };
        if let Err(err) = result {
            // The lease runs out and the delivery is tried again.
            tracing::error!(delivery = item.id, error = %err, "could not record a delivery's outcome");
        }
        None
    }

    fn paused_until(&self, method: &'static str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        paused.get(method).copied().filter(|until| *until > now)
    }

    fn pause(&self, method: &'static str, until: DateTime<Utc>) {
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        let entry = paused.entry(method).or_insert(until);
        *entry = (*entry).max(until);
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
                post_once(slack, item, to, content, None).await.map(|_| ())
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
            } => post_once(slack, item, channel, prepared(text, blocks.as_ref()), None)
                .await
                .map(|_| ()),
            Delivery::PostEphemeral {
                channel,
                user,
                text,
            } => slack.post_ephemeral(channel, user, text).await,
            Delivery::PublishHome { user } => return self.publish_home(slack, user).await,
            // `deliver_due` expands these a batch at a time before the lanes run; one
            // arriving here alone is expanded the same way.
            Delivery::RefreshCards { request_id } => {
                self.expand_refreshes(&[(item.id, *request_id)]).await?;
                return Ok(Outcome::Done { card: None });
            }
        };
        Ok(self.outcome(delivery.method(), result))
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
        let content = blocks::card(&request, card.kind, &card.recipient, self.clock.now());
        match post_once(slack, item, &card.recipient, content, None).await {
            Ok(posted) => {
                let now = self.clock.now();
                // A message found from an earlier attempt shows what that attempt rendered,
                // which may be older than this request version: have it updated.
                let shown_version = if posted.found { 0 } else { request.version };
                // A card that joins a running conversation starts with what was said so far.
                self.store
                    .card_posted(card_id, &posted.channel, &posted.ts, shown_version, now)
                    .await?;
                Ok(Outcome::Done { card: None })
            }
            Err(err) => Ok(self.outcome("chat.postMessage", Err(err))),
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
        let result = post_once(slack, item, channel, content, Some(ts)).await;
        Ok(self.outcome("chat.postMessage", result.map(|_| ())))
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
        match slack.update_message(channel, ts, content).await {
            Ok(()) => Ok(Outcome::Done {
                card: Some((card_id, request.version)),
            }),
            Err(err) => Ok(self.outcome("chat.update", Err(err))),
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
        Ok(self.outcome("views.publish", slack.publish_home(user, view).await))
    }

    fn outcome(&self, method: &'static str, result: Result<(), CallError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Done { card: None },
            Err(CallError::RateLimited { retry_after }) => {
                let wait = retry_after
                    .and_then(|wait| Duration::from_std(wait).ok())
                    .unwrap_or(Duration::seconds(1));
                self.pause(method, self.clock.now() + wait);
                Outcome::RateLimited { wait }
            }
            Err(CallError::Transient(error)) => Outcome::Transient(error),
            Err(CallError::Permanent(error)) => Outcome::Failed(error),
        }
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

/// Posts a message once: when an earlier attempt may have posted it (its answer was lost, or
/// its worker died), Slack is asked first and the earlier message is used if it is there.
async fn post_once(
    slack: &SlackApi,
    item: &OutboxItem,
    channel: &str,
    content: SlackMessageContent,
    thread_ts: Option<&str>,
) -> Result<Posted, CallError> {
    // A rate-limited attempt was refused before anything happened; any other may have posted.
    let outcome_unknown = item.attempts > 0 && item.last_error.as_deref() != Some(RATE_LIMITED);
    if outcome_unknown {
        let text = content.text.clone().unwrap_or_default();
        if let Some(posted) = slack
            .find_posted(channel, thread_ts, item.id, &text)
            .await?
        {
            tracing::info!(
                delivery = item.id,
                "an earlier attempt had posted this message"
            );
            return Ok(posted);
        }
    }
    slack
        .post_message(channel, content, thread_ts, item.id)
        .await
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
