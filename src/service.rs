//! The use cases: file a request, act on one, manage the catalog. Each reads the request,
//! lets the domain decide, and stores the new state together with the Slack calls it causes.

use std::sync::{Arc, Mutex};

use chrono::Duration;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::domain::{
    self, AccessLength, AccessRequest, Action, Actor, App, AuditEvent, CardKind, Command, Decision,
    Edit, Effect, EventKind, Limited, NewEvent, Refusal, RelayLimiter, RelayRefusal, RequestDraft,
    Status, ThreadMessage, ValidationError,
};
use crate::store::{
    Change, Decide, Decided, Delivery, FailedDelivery, Filed, Follow, IdempotencyKey, NewCard,
    NewRequest, RequestFilter, Store, StoreError, StoreStats, ThreadChange, ThreadPost,
};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("there is no app {0:?}")]
    UnknownApp(String),
    #[error("there is no request {0}")]
    UnknownRequest(i64),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The idempotency key was used with another request within its lifetime.
    #[error("this idempotency key was used for a different request in the last 24 hours")]
    KeyUsedForAnotherBody,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long an idempotency key binds: within it the same key and body return the first
/// request and another body is refused; after it the key files anew.
pub const IDEMPOTENCY_KEY_LIFETIME: Duration = Duration::hours(24);

/// What a caller asks for when filing a request; defaults are filled in here.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestInput {
    pub app: String,
    pub target_user: String,
    pub requester: Option<String>,
    pub permission: Option<String>,
    pub groups: Vec<String>,
    pub comment: String,
    pub access_length: Option<String>,
}

impl RequestInput {
    /// SHA-256 (hex) of the request as asked, which an idempotency key is bound to. It is
    /// taken over the parsed fields rather than the raw bytes (Stripe's choice), so that a
    /// retry matches whatever its key order or whitespace, and a Slack form replayed with
    /// another view hash too; a field given or left out is a different request even where
    /// its default is the same.
    pub fn fingerprint(&self) -> String {
        // The fields in declaration order, as JSON: strings and lists only, so the text is
        // the same for the same request in every release that keeps these fields.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical))
    }
}

/// How a request was filed; a repeat of an idempotent filing is not filed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filing {
    Created(AccessRequest),
    /// The key was used with this body within its lifetime: the request it filed.
    Replayed(AccessRequest),
}

/// What became of a reply written in the thread of a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayOutcome {
    /// Kept and queued to the request's other threads (or it was before: Slack retried).
    Relayed,
    /// Not in the thread of any card of a request.
    NotOurs,
    /// Neither relayed nor kept; the author should hear why when `tell` (the first time).
    Refused {
        request_id: i64,
        why: RelayRefusal,
        tell: bool,
    },
}

#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Wakes the delivery worker when new Slack calls were stored.
    deliveries_waiting: Arc<Notify>,
    /// The relay's rate limits, in this process's memory: with several replicas each
    /// counts the events Slack sends it, so a request may relay up to that many times the
    /// limit when its events are spread over all of them.
    relay_limits: Arc<Mutex<RelayLimiter>>,
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        deliveries_waiting: Arc<Notify>,
    ) -> Self {
        Service {
            store,
            clock,
            deliveries_waiting,
            relay_limits: Arc::default(),
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Creates or replaces an app; true when it was created. Its open requests take the new
    /// approvers, admins and admin channel in the same transaction (`domain::reassign`):
    /// the new assignees get cards, and every card is updated.
    pub async fn put_app(&self, app: &App) -> Result<bool, ServiceError> {
        app.validate()?;
        let now = self.clock.now();
        let catalog = app.clone();
        let follow: Follow = Arc::new(move |request, cards| {
            let kind = CardKind::stage_card(request.status);
            let carded: Vec<String> = cards
                .iter()
                .filter(|card| Some(card.kind) == kind)
                .map(|card| card.recipient.clone())
                .collect();
            let decision = domain::reassign(request, &catalog, &carded, now)?;
            let mut change = plan(decision);
            // Those removed no longer see the request among their tasks.
            change
                .republish_homes
                .extend(request.approvers.iter().chain(&request.app_admins).cloned());
            change.republish_homes.sort();
            change.republish_homes.dedup();
            Some(change)
        });
        let put = self.store.put_app_following(app, now, follow).await?;
        if !put.followed.is_empty() {
            tracing::info!(app = %app.slug, requests = put.followed.len(), "open requests follow the app's new assignees");
            self.deliveries_waiting.notify_one();
        }
        Ok(put.created)
    }

    pub async fn app(&self, slug: &str) -> Result<App, ServiceError> {
        self.store
            .app(slug)
            .await?
            .ok_or_else(|| ServiceError::UnknownApp(slug.to_string()))
    }

    pub async fn request(&self, id: i64) -> Result<AccessRequest, ServiceError> {
        self.store
            .request(id)
            .await?
            .ok_or(ServiceError::UnknownRequest(id))
    }

    /// The catalog, by slug.
    pub async fn apps(&self) -> Result<Vec<App>, ServiceError> {
        Ok(self.store.apps().await?)
    }

    /// Requests matching `filter`, newest first.
    pub async fn requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<AccessRequest>, ServiceError> {
        Ok(self.store.requests(filter).await?)
    }

    /// The requests `user` asked for that still wait for somebody, newest first.
    pub async fn open_requests_of(&self, user: &str) -> Result<Vec<AccessRequest>, ServiceError> {
        let filter = RequestFilter {
            user: Some(user.to_string()),
            limit: 100,
            ..RequestFilter::default()
        };
        let mut requests = self.store.requests(&filter).await?;
        requests.retain(|r| r.requester == user && r.status.is_pending());
        Ok(requests)
    }

    /// The audit trail of request `id`, oldest first.
    pub async fn events(&self, id: i64) -> Result<Vec<AuditEvent>, ServiceError> {
        self.request(id).await?;
        Ok(self.store.events(id).await?)
    }

    /// Slack calls that failed for good, oldest first: up to `limit` after `after_id`.
    pub async fn failed_deliveries(
        &self,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<FailedDelivery>, ServiceError> {
        Ok(self.store.failed_deliveries(after_id, limit).await?)
    }

    /// Queues a failed Slack call again; false when there is no such failed call.
    pub async fn retry_delivery(&self, id: i64) -> Result<bool, ServiceError> {
        let retried = self.store.retry_delivery(id, self.clock.now()).await?;
        if retried {
            self.deliveries_waiting.notify_one();
        }
        Ok(retried)
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }

    /// Counts for `/metrics`.
    pub async fn stats(&self) -> Result<StoreStats, ServiceError> {
        Ok(self.store.stats().await?)
    }

    /// Slack calls stored and not yet made.
    pub async fn deliveries_waiting(&self) -> Result<i64, ServiceError> {
        Ok(self.store.deliveries_waiting().await?)
    }

    /// Records `key` (an event id, a replayed request) as processed at `now`; false when it
    /// was already.
    pub async fn first_time(&self, key: &str) -> Result<bool, ServiceError> {
        Ok(self.store.claim_key(key, self.clock.now()).await?)
    }

    /// Files a request; with an idempotency key (an API client's `Idempotency-Key`), a repeat
    /// with the same body returns the first request.
    pub async fn file_request(
        &self,
        input: RequestInput,
        idempotency_key: Option<String>,
    ) -> Result<Filing, ServiceError> {
        let key = idempotency_key.map(|key| IdempotencyKey {
            key: format!("api:{key}"),
            body_hash: input.fingerprint(),
            legacy_key: Some(key),
            live_after: self.clock.now() - IDEMPOTENCY_KEY_LIFETIME,
        });
        self.file_keyed(input, key).await
    }

    /// Files a request on behalf of a Slack user (the `/access` modal `view_id`). Keyed on
    /// the view, as clicks are on their `action_ts`: a submission Slack (or anyone holding
    /// a signed copy, within its five minutes) sends again files nothing twice, while each
    /// new modal has a view of its own.
    pub async fn file_request_from_slack(
        &self,
        input: RequestInput,
        view_id: &str,
    ) -> Result<Filing, ServiceError> {
        let key = IdempotencyKey {
            key: format!("slack-view:{view_id}"),
            body_hash: input.fingerprint(),
            legacy_key: None,
            live_after: self.clock.now() - IDEMPOTENCY_KEY_LIFETIME,
        };
        self.file_keyed(input, Some(key)).await
    }

    async fn file_keyed(
        &self,
        input: RequestInput,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Filing, ServiceError> {
        let app = self.app(&input.app).await?;
        let access_length = match input.access_length.as_deref() {
            None => AccessLength::Unlimited,
            Some(text) => text.parse().map_err(ValidationError::from)?,
        };
        let draft = RequestDraft {
            requester: input.requester.unwrap_or_else(|| input.target_user.clone()),
            target_user: input.target_user,
            permission: input.permission,
            groups: input.groups,
            comment: input.comment,
            access_length,
        };
        let decision = domain::file_request(&app, draft, self.clock.now())?;
        let change = plan(decision);
        let filed = self
            .store
            .file_request(NewRequest {
                request: change.request,
                event: change.event,
                new_cards: change.new_cards,
                deliveries: change.deliveries,
                republish_homes: change.republish_homes,
                idempotency,
            })
            .await?;
        match filed {
            Filed::Created(request) => {
                self.deliveries_waiting.notify_one();
                Ok(Filing::Created(request))
            }
            Filed::Existing(request) => Ok(Filing::Replayed(request)),
            Filed::KeyUsedForAnotherBody => Err(ServiceError::KeyUsedForAnotherBody),
        }
    }

    /// Lets `actor` do `command` to request `id`, exactly once even when others act at the
    /// same moment: a lost race is decided again on the fresh state.
    pub async fn act(
        &self,
        id: i64,
        actor: &Actor,
        command: Command,
    ) -> Result<AccessRequest, ServiceError> {
        self.act_once(id, actor, command, None)
            .await?
            .ok_or(ServiceError::Store(StoreError::Duplicate))
    }

    /// Like [`Service::act`], for a command that may be delivered more than once (a click
    /// Slack retries, a replayed request): `None` when `key` was applied before.
    pub async fn act_once(
        &self,
        id: i64,
        actor: &Actor,
        command: Command,
        key: Option<&str>,
    ) -> Result<Option<AccessRequest>, ServiceError> {
        let now = self.clock.now();
        let actor = actor.clone();
        let decide: Decide =
            Arc::new(move |request| domain::decide(&request, &actor, &command, now).map(plan));
        self.decide_once(id, key, decide).await
    }

    /// Lets the store apply `decide` to request `id` with the dedup key `key`: `None` when
    /// `key` was applied before.
    async fn decide_once(
        &self,
        id: i64,
        key: Option<&str>,
        decide: Decide,
    ) -> Result<Option<AccessRequest>, ServiceError> {
        match self.store.decide(id, key.map(str::to_string), decide).await {
            Ok(Decided::Applied(request)) => {
                self.deliveries_waiting.notify_one();
                Ok(Some(*request))
            }
            Ok(Decided::Refused(refusal)) => Err(refusal.into()),
            Ok(Decided::NotFound) => Err(ServiceError::UnknownRequest(id)),
            Err(StoreError::Duplicate) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Closes request `id` for an operator (SPEC §8.1): a pending request is canceled, a
    /// granted one expires with its removal unconfirmed. Returns the closed request and the
    /// status it was closed from.
    pub async fn close(
        &self,
        id: i64,
        operator: &str,
        reason: &str,
    ) -> Result<(AccessRequest, Status), ServiceError> {
        let command = Command::close(operator, reason)?;
        let now = self.clock.now();
        // The store may decide more than once (a lost race is decided again on the fresh
        // state); the last decision is the one applied, so the last status seen is its own.
        let closed_from = Arc::new(Mutex::new(None));
        let seen = closed_from.clone();
        let decide: Decide = Arc::new(move |request| {
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(request.status);
            domain::decide(&request, &Actor::Api, &command, now).map(plan)
        });
        let closed = self
            .decide_once(id, None, decide)
            .await?
            .ok_or(ServiceError::Store(StoreError::Duplicate))?;
        let from = closed_from
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| StoreError::Write("a close was applied without a decision".into()))?;
        Ok((closed, from))
    }

    /// Applies an edit whose values come from a form or the API.
    pub async fn edit(
        &self,
        id: i64,
        actor: &Actor,
        permission: &str,
        groups: Vec<String>,
        access_length: &str,
    ) -> Result<AccessRequest, ServiceError> {
        let request = self.request(id).await?;
        let app = self.app(&request.app).await?;
        let edit = Edit::new(
            &app,
            permission,
            groups,
            access_length.parse().map_err(ValidationError::from)?,
        )?;
        self.act(id, actor, Command::Edit(edit)).await
    }

    /// The request and its app, if `actor` may edit it now (checked before opening the modal).
    pub async fn editable(
        &self,
        id: i64,
        actor: &Actor,
    ) -> Result<(AccessRequest, App), ServiceError> {
        let request = self.request(id).await?;
        domain::permit(&request, actor, Action::Edit, self.clock.now())?;
        let app = self.app(&request.app).await?;
        Ok((request, app))
    }

    /// The request, if `actor` may send denial feedback on it now.
    pub async fn feedback_allowed(
        &self,
        id: i64,
        actor: &Actor,
    ) -> Result<AccessRequest, ServiceError> {
        let request = self.request(id).await?;
        domain::permit(&request, actor, Action::SendFeedback, self.clock.now())?;
        Ok(request)
    }

    /// Relays a reply written in the thread of one of a request's cards into the threads of
    /// all its other cards, and keeps it, if the relay policy lets it through: its author is
    /// one of the request's people (`domain::relays_from`) within the rate limits
    /// (`domain::RelayLimiter`). The kept and relayed text is cut to
    /// `domain::MAX_THREAD_TEXT` characters.
    pub async fn relay_thread_reply(
        &self,
        channel: &str,
        thread_ts: &str,
        ts: &str,
        user: &str,
        text: &str,
    ) -> Result<RelayOutcome, ServiceError> {
        let Some(card) = self.store.card_by_message(channel, thread_ts).await? else {
            return Ok(RelayOutcome::NotOurs);
        };
        let request = self.request(card.request_id).await?;
        if !domain::relays_from(&request, user, &card.recipient) {
            // Told once per person and request (for as long as processed keys are kept).
            let tell = self
                .first_time(&format!("relay-refused:{}:{user}", request.id))
                .await?;
            return Ok(RelayOutcome::Refused {
                request_id: request.id,
                why: RelayRefusal::NotOfTheRequest,
                tell,
            });
        }
        // A retried event of a reply kept already takes no place in the rate limits.
        if self.store.thread_message_at(channel, ts).await?.is_some() {
            return Ok(RelayOutcome::Relayed);
        }
        let now = self.clock.now();
        let limited = self
            .relay_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(user, request.id, now);
        if let Limited::Refused { why, tell } = limited {
            return Ok(RelayOutcome::Refused {
                request_id: request.id,
                why,
                tell,
            });
        }
        let text = domain::kept_thread_text(text);
        let post = ThreadPost {
            request_id: card.request_id,
            source_card_id: card.id,
            source_channel: channel.to_string(),
            source_ts: ts.to_string(),
            event: NewEvent {
                at: now,
                actor: user.to_string(),
                kind: EventKind::ThreadMessage,
                before: None,
                after: None,
                detail: Some(text.clone()),
            },
            message: ThreadMessage {
                at: now,
                user: user.to_string(),
                text,
            },
        };
        if self.store.add_thread_message(post).await? {
            self.deliveries_waiting.notify_one();
        }
        Ok(RelayOutcome::Relayed)
    }

    /// A message was edited in Slack: if it is a kept reply and its author edited it, the
    /// kept text and every relayed copy follow (cut as a reply is). False otherwise.
    pub async fn edit_thread_reply(
        &self,
        channel: &str,
        ts: &str,
        user: &str,
        text: &str,
    ) -> Result<bool, ServiceError> {
        let Some(kept) = self.store.thread_message_at(channel, ts).await? else {
            return Ok(false);
        };
        let text = domain::kept_thread_text(text);
        if kept.deleted || kept.user != user || kept.text == text {
            return Ok(false);
        }
        let change = ThreadChange {
            message_id: kept.id,
            request_id: kept.request_id,
            text: Some(text.clone()),
            event: NewEvent {
                at: self.clock.now(),
                actor: user.to_string(),
                kind: EventKind::ThreadMessageEdited,
                before: None,
                after: None,
                detail: Some(text),
            },
        };
        self.change_thread_message(change).await
    }

    /// A message was deleted in Slack: if it is a kept reply, the thread no longer shows it
    /// (its kept text is emptied) and every relayed copy is deleted. The audit trail keeps
    /// its entries. Slack does not say who deleted it; the entry names the author, who (or
    /// a workspace admin) is the only one who can.
    pub async fn delete_thread_reply(&self, channel: &str, ts: &str) -> Result<bool, ServiceError> {
        let Some(kept) = self.store.thread_message_at(channel, ts).await? else {
            return Ok(false);
        };
        if kept.deleted {
            return Ok(false);
        }
        let change = ThreadChange {
            message_id: kept.id,
            request_id: kept.request_id,
            text: None,
            event: NewEvent {
                at: self.clock.now(),
                actor: kept.user,
                kind: EventKind::ThreadMessageDeleted,
                before: None,
                after: None,
                detail: None,
            },
        };
        self.change_thread_message(change).await
    }

    async fn change_thread_message(&self, change: ThreadChange) -> Result<bool, ServiceError> {
        let changed = self.store.change_thread_message(change).await?;
        if changed {
            self.deliveries_waiting.notify_one();
        }
        Ok(changed)
    }

    /// The discussion of a request, oldest first.
    pub async fn thread(&self, id: i64) -> Result<Vec<ThreadMessage>, ServiceError> {
        self.request(id).await?;
        Ok(self.store.thread(id).await?)
    }

    /// A user opened the Home tab: publish it now, and again whenever it would change.
    pub async fn home_opened(&self, user: &str) -> Result<(), ServiceError> {
        let now = self.clock.now();
        self.store.home_opened(user, now).await?;
        let publish = Delivery::PublishHome {
            user: user.to_string(),
        };
        self.store.enqueue(None, &[publish], now).await?;
        self.deliveries_waiting.notify_one();
        Ok(())
    }

    /// Tells one user something only they see, in the conversation where they clicked.
    pub async fn tell(
        &self,
        request_id: Option<i64>,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), ServiceError> {
        self.tell_in(request_id, channel, None, user, text).await
    }

    /// Tells one user something only they see, in `channel` or in its thread `thread_ts`.
    pub async fn tell_in(
        &self,
        request_id: Option<i64>,
        channel: &str,
        thread_ts: Option<&str>,
        user: &str,
        text: &str,
    ) -> Result<(), ServiceError> {
        let delivery = Delivery::PostEphemeral {
            channel: channel.to_string(),
            user: user.to_string(),
            text: text.to_string(),
            thread_ts: thread_ts.map(str::to_string),
        };
        self.store
            .enqueue(request_id, &[delivery], self.clock.now())
            .await?;
        self.deliveries_waiting.notify_one();
        Ok(())
    }
}

/// Turns a decision's effects into the cards and Slack calls stored with it.
fn plan(decision: Decision) -> Change {
    let Decision {
        request,
        event,
        effects,
    } = decision;
    let mut change = Change {
        request,
        event,
        new_cards: Vec::new(),
        deliveries: Vec::new(),
        republish_homes: Vec::new(),
        dedup_key: None,
    };
    let request = &change.request;
    change.republish_homes = [&request.requester, &request.target_user]
        .into_iter()
        .chain(&request.approvers)
        .chain(&request.app_admins)
        .cloned()
        .collect();
    change.republish_homes.sort();
    change.republish_homes.dedup();
    for effect in effects {
        match effect {
            Effect::PostCards { kind, recipients } => change.new_cards.extend(
                recipients
                    .into_iter()
                    .map(|recipient| NewCard { kind, recipient }),
            ),
            Effect::RefreshCards => change.deliveries.push(Delivery::RefreshCards {
                request_id: change.request.id,
            }),
            Effect::Notify { to, notice } => change.deliveries.push(Delivery::Notify {
                request_id: change.request.id,
                to,
                notice,
            }),
        }
    }
    change
}
