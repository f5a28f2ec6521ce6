//! The PostgreSQL store, for several replicas sharing one database.
//!
//! Decisions go through one batch module (`batch.rs`, applying with `apply.rs`): each
//! replica's thread decides the clicks queued meanwhile and applies them in one statement.
//! Every other write is a transaction of its own on the pool, so replicas write side by
//! side. Row locks and `FOR UPDATE SKIP LOCKED` keep them apart: a change is applied only
//! on top of the version it was decided on, and each delivery is claimed by one replica at
//! a time.

mod apply;
mod batch;
mod relay;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Row as _};

use self::apply::apply_all;
use self::batch::DecisionBatches;
use super::columns::{Param, Write, APPS, REQUESTS};
use super::rows::{self, millis, to_json};
use super::{
    sql, Card, CardState, Change, Decide, Decided, Delivery, FailedDelivery, Filed, Follow,
    IdempotencyKey, KeptMessage, NewCard, NewRequest, Note, OutboxItem, PutApp, RelayCopy,
    RequestFilter, SlackUser, Store, StoreError, StoreResult, StoreStats, ThreadChange, ThreadPost,
};
use crate::domain::{AccessRequest, App, AuditEvent, EventKind, NewEvent, ThreadMessage};

/// Connections per replica.
const MAX_CONNECTIONS: u32 = 10;

/// How long a connection may take to open (or a pooled one to free up): requests wait for
/// it, and an unreachable server would otherwise hold them for minutes of TCP retries.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PostgresStore {
    pool: PgPool,
    decisions: DecisionBatches,
}

/// Connects to the database at `url` and runs the migrations (one replica at a time:
/// sqlx holds an advisory lock while migrating).
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(PostgresStore::open(url).await?))
}

impl PostgresStore {
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // A ping before every use is a round trip more for every batch of decisions;
            // a connection that died is found out by the statement that uses it instead.
            .test_before_acquire(false)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PostgresStore {
            decisions: DecisionBatches::start(options)?,
            pool,
        })
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds `params` in order.
fn bind<'q>(query: Query<'q>, params: Vec<Param<'q>>) -> Query<'q> {
    params.into_iter().fold(query, |query, param| match param {
        Param::Text(v) => query.bind(v),
        Param::OptText(v) => query.bind(v),
        Param::Int(v) => query.bind(v),
        Param::OptInt(v) => query.bind(v),
        Param::Bool(v) => query.bind(v),
    })
}

async fn insert_event(
    conn: &mut PgConnection,
    request_id: i64,
    event: &NewEvent,
) -> StoreResult<()> {
    let before = event.before.as_ref().map(to_json).transpose()?;
    let after = event.after.as_ref().map(to_json).transpose()?;
    sqlx::query(sql::INSERT_EVENT)
        .bind(request_id)
        .bind(millis(event.at))
        .bind(&event.actor)
        .bind(event.kind.as_str())
        .bind(before)
        .bind(after)
        .bind(&event.detail)
        .execute(conn)
        .await?;
    Ok(())
}

/// Queues `deliveries` in order, in one statement: statements, not rows, are what cost.
async fn insert_deliveries(
    conn: &mut PgConnection,
    request_id: Option<i64>,
    deliveries: &[Delivery],
    now: i64,
) -> StoreResult<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let methods: Vec<&str> = deliveries.iter().map(Delivery::method).collect();
    let payloads = deliveries
        .iter()
        .map(to_json)
        .collect::<StoreResult<Vec<String>>>()?;
    sqlx::query(sql::PG_INSERT_DELIVERIES)
        .bind(request_id)
        .bind(methods)
        .bind(payloads)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts the cards and queues a post of each.
async fn insert_cards(
    conn: &mut PgConnection,
    request_id: i64,
    cards: &[NewCard],
    now: i64,
) -> StoreResult<()> {
    for card in cards {
        let card_id: i64 = sqlx::query_scalar(sql::INSERT_CARD)
            .bind(request_id)
            .bind(card.kind.as_str())
            .bind(&card.recipient)
            .fetch_one(&mut *conn)
            .await?;
        let post = Delivery::PostCard { card_id };
        insert_deliveries(conn, Some(request_id), &[post], now).await?;
    }
    Ok(())
}

/// Queues a republish of the Home tab of each of `users` who uses it, unless one is
/// already waiting (it renders the latest state when sent).
async fn publish_homes(conn: &mut PgConnection, users: &[String], now: i64) -> StoreResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let viewers: Vec<String> = sqlx::query_scalar(sql::PG_HOME_VIEWERS_AMONG)
        .bind(users)
        .fetch_all(&mut *conn)
        .await?;
    for user in viewers {
        let payload = to_json(&Delivery::PublishHome { user })?;
        sqlx::query(sql::PUBLISH_HOME)
            .bind(payload)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn thread_in(conn: &mut PgConnection, request_id: i64) -> StoreResult<Vec<ThreadMessage>> {
    let found = sqlx::query(sql::THREAD)
        .bind(request_id)
        .fetch_all(conn)
        .await?;
    found.iter().map(rows::thread_message).collect()
}

impl PostgresStore {
    /// What idempotency key `key` found while live: its body hash (`None` for a key of an
    /// earlier release) and the request it filed.
    async fn request_by_key(
        &self,
        key: &IdempotencyKey,
    ) -> StoreResult<Option<(Option<String>, AccessRequest)>> {
        let live_after = millis(key.live_after);
        let row = sqlx::query(&sql::REQUEST_BY_KEY)
            .bind(&key.key)
            .bind(live_after)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return Ok(Some((
                Some(row.try_get("body_hash")?),
                REQUESTS.read(&row)?,
            )));
        }
        let Some(legacy) = &key.legacy_key else {
            return Ok(None);
        };
        let row = sqlx::query(&sql::REQUEST_BY_LEGACY_KEY)
            .bind(legacy)
            .bind(live_after)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some((None, REQUESTS.read(&row)?))),
            None => Ok(None),
        }
    }

    /// The requests of `sql` (`$1` a time, `$2` a limit).
    async fn requests_at(
        &self,
        sql: &str,
        at: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>> {
        let found = sqlx::query(sql)
            .bind(millis(at))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(|row| REQUESTS.read(row)).collect()
    }

    async fn count(&self, sql: &'static str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn put_app_following(
        &self,
        app: &App,
        now: DateTime<Utc>,
        follow: Follow,
    ) -> StoreResult<PutApp> {
        let now = millis(now);
        let mut tx = self.pool.begin().await?;
        let inserted = bind(
            sqlx::query(&sql::INSERT_APP),
            APPS.params(app, Write::Insert)?,
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            bind(
                sqlx::query(&sql::UPDATE_APP),
                APPS.params(app, Write::Change)?,
            )
            .bind(now)
            .bind(&app.slug)
            .execute(&mut *tx)
            .await?;
        }
        // Locked until the commit: a decision on one of them waits, then finds it changed
        // and is decided again on the new lists.
        let open = sqlx::query(&sql::PG_OPEN_REQUESTS_OF_APP_LOCKED)
            .bind(&app.slug)
            .fetch_all(&mut *tx)
            .await?;
        let open = open
            .iter()
            .map(|row| REQUESTS.read(row))
            .collect::<StoreResult<Vec<_>>>()?;
        // Every open request's cards in one round trip: the rows stay locked meanwhile.
        let ids: Vec<i64> = open.iter().map(|request| request.id).collect();
        let mut cards: HashMap<i64, Vec<Card>> = HashMap::new();
        for row in sqlx::query(&sql::PG_CARDS_OF_REQUESTS)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
        {
            let card = rows::card(&row, "")?;
            cards.entry(card.request_id).or_default().push(card);
        }
        let changes: Vec<Change> = open
            .iter()
            .filter_map(|request| {
                let held = cards.get(&request.id).map_or(&[][..], Vec::as_slice);
                follow(request, held)
            })
            .collect();
        for outcome in apply_all(&mut *tx, &changes).await? {
            outcome?;
        }
        for change in &changes {
            bind(
                sqlx::query(&sql::ASSIGN_REQUEST),
                REQUESTS.params(&change.request, Write::Assign)?,
            )
            .bind(change.request.id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(PutApp {
            created: inserted > 0,
            followed: changes.iter().map(|change| change.request.id).collect(),
        })
    }

    async fn app(&self, slug: &str) -> StoreResult<Option<App>> {
        let row = sqlx::query(&sql::APP)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|row| APPS.read(row)).transpose()
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        let found = sqlx::query(&sql::APPS_BY_SLUG)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(|row| APPS.read(row)).collect()
    }

    async fn file_request(&self, new: NewRequest) -> StoreResult<Filed> {
        let now = millis(new.event.at);
        if let Some(key) = &new.idempotency {
            if let Some(found) = self.request_by_key(key).await? {
                return Ok(key.replay(found));
            }
        }
        let mut tx = self.pool.begin().await?;
        let row = bind(
            sqlx::query(&sql::INSERT_REQUEST),
            REQUESTS.params(&new.request, Write::Insert)?,
        )
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        if let Some(key) = &new.idempotency {
            // A filing with the same key that committed meanwhile holds it: this one waits
            // for that commit on the key's unique index, then records nothing.
            let recorded = sqlx::query(sql::RECORD_KEY)
                .bind(&key.key)
                .bind(&key.body_hash)
                .bind(id)
                .bind(now)
                .bind(millis(key.live_after))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if recorded == 0 {
                tx.rollback().await?;
                let found = self.request_by_key(key).await?;
                return found
                    .map(|found| key.replay(found))
                    .ok_or(StoreError::Conflict);
            }
        }
        insert_event(&mut tx, id, &new.event).await?;
        insert_cards(&mut tx, id, &new.new_cards, now).await?;
        insert_deliveries(&mut tx, Some(id), &new.deliveries, now).await?;
        publish_homes(&mut tx, &new.republish_homes, now).await?;
        tx.commit().await?;
        let mut request = new.request;
        request.id = id;
        Ok(Filed::Created(request))
    }

    async fn request(&self, id: i64) -> StoreResult<Option<AccessRequest>> {
        let row = sqlx::query(&sql::REQUEST)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|row| REQUESTS.read(row)).transpose()
    }

    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<AccessRequest>> {
        let (sql, params) = sql::requests_page(filter);
        let found = bind(sqlx::query(sql), params).fetch_all(&self.pool).await?;
        found.iter().map(|row| REQUESTS.read(row)).collect()
    }

    async fn events(&self, request_id: i64) -> StoreResult<Vec<AuditEvent>> {
        let found = sqlx::query(sql::EVENTS)
            .bind(request_id)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::event).collect()
    }

    async fn apply(&self, change: Change) -> StoreResult<()> {
        // One statement, its own transaction: it fails as a whole on a conflict.
        apply_all(&self.pool, std::slice::from_ref(&change))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Write("a change applied without outcome".into())))
    }

    async fn decide(&self, id: i64, key: Option<String>, decide: Decide) -> StoreResult<Decided> {
        self.decisions.decide(id, key, decide).await
    }

    async fn append_event(&self, request_id: i64, event: &NewEvent) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, request_id, event).await
    }

    async fn card(&self, card_id: i64) -> StoreResult<Option<Card>> {
        let row = sqlx::query(&sql::CARD)
            .bind(card_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|row| rows::card(row, "")).transpose()
    }

    async fn card_with_request(&self, card_id: i64) -> StoreResult<Option<(Card, AccessRequest)>> {
        let row = sqlx::query(&sql::CARD_WITH_REQUEST)
            .bind(card_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|row| Ok((rows::card(row, sql::CARD_PREFIX)?, REQUESTS.read(row)?)))
            .transpose()
    }

    async fn cards(&self, request_id: i64) -> StoreResult<Vec<Card>> {
        let found = sqlx::query(&sql::CARDS)
            .bind(request_id)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(|row| rows::card(row, "")).collect()
    }

    async fn card_posted(
        &self,
        card_id: i64,
        channel: &str,
        ts: &str,
        rendered_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let request_id: Option<i64> = sqlx::query_scalar(sql::CARD_POSTED)
            .bind(card_id)
            .bind(channel)
            .bind(ts)
            .bind(rendered_version)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(request_id) = request_id else {
            return Ok(());
        };
        // Locked against a concurrent thread reply: each reply is either relayed to this
        // card (it was posted first) or in its summary (the reply came first).
        let version: Option<i64> = sqlx::query_scalar(sql::PG_LOCK_REQUEST_VERSION)
            .bind(request_id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut follow_ups = Vec::new();
        if version.is_some_and(|version| version > rendered_version) {
            follow_ups.push(Delivery::UpdateCard { card_id });
        }
        let thread = thread_in(&mut tx, request_id).await?;
        if !thread.is_empty() {
            follow_ups.push(Delivery::ThreadSummary {
                card_id,
                messages: thread.len(),
            });
        }
        insert_deliveries(&mut tx, Some(request_id), &follow_ups, millis(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn enqueue(
        &self,
        request_id: Option<i64>,
        deliveries: &[Delivery],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_deliveries(&mut conn, request_id, deliveries, millis(now)).await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        let now = millis(now);
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query(&sql::PG_CLAIM)
            .bind(owner)
            .bind(now.saturating_add(lease.num_milliseconds()))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed = found
            .iter()
            .map(rows::claimed)
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|(id, _)| *id);
        let mut items = Vec::with_capacity(claimed.len());
        for (id, item) in claimed {
            match item {
                Ok(item) => items.push(item),
                // An unreadable payload can never be sent: dead-letter it rather than
                // failing every claim that picks it up.
                Err(err) => {
                    sqlx::query(sql::DEAD_LETTER)
                        .bind(id)
                        .bind(err.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(items)
    }

    async fn deliveries_done(&self, ids: &[i64], cards: &[(i64, i64)]) -> StoreResult<()> {
        if ids.is_empty() && cards.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if !ids.is_empty() {
            sqlx::query(sql::PG_DELIVERIES_DONE)
                .bind(ids)
                .execute(&mut *tx)
                .await?;
        }
        if !cards.is_empty() {
            // Updates can finish out of order: a card takes the newest version shown, and
            // never goes back to an older one. One row per card in one statement.
            let mut newest = std::collections::BTreeMap::new();
            for &(card_id, version) in cards {
                let shown = newest.entry(card_id).or_insert(version);
                *shown = (*shown).max(version);
            }
            let (card_ids, versions): (Vec<i64>, Vec<i64>) = newest.into_iter().unzip();
            sqlx::query(sql::PG_CARDS_SHOWN)
                .bind(card_ids)
                .bind(versions)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn expand_card_refreshes(
        &self,
        owner: &str,
        refreshes: &[(i64, i64)],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if refreshes.is_empty() {
            return Ok(());
        }
        // One statement: while clicks arrive, the worker's round trips take the server's
        // time from the clicks.
        let (ids, requests): (Vec<i64>, Vec<i64>) = refreshes.iter().copied().unzip();
        sqlx::query(&sql::PG_EXPAND_REFRESHES)
            .bind(ids)
            .bind(requests)
            .bind(owner)
            .bind(millis(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_claims(&self, owner: &str) -> StoreResult<()> {
        sqlx::query(sql::RELEASE_CLAIMS)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delivery_postponed(
        &self,
        id: i64,
        not_before: DateTime<Utc>,
        error: &str,
        counts_as_attempt: bool,
    ) -> StoreResult<()> {
        sqlx::query(sql::POSTPONE)
            .bind(id)
            .bind(millis(not_before))
            .bind(error)
            .bind(i32::from(!counts_as_attempt))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delivery_failed(&self, id: i64, error: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let failed = sqlx::query(sql::FAIL)
            .bind(id)
            .bind(error)
            .bind(millis(now))
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = failed {
            let request_id: Option<i64> = row.try_get("request_id")?;
            let method: String = row.try_get("method")?;
            if let Some(request_id) = request_id {
                let event = NewEvent {
                    at: now,
                    actor: "system".to_string(),
                    kind: EventKind::DeliveryFailed,
                    before: None,
                    after: None,
                    detail: Some(format!("{method} failed: {error}")),
                };
                insert_event(&mut tx, request_id, &event).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn failed_deliveries(
        &self,
        after_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<FailedDelivery>> {
        let found = sqlx::query(sql::FAILED_DELIVERIES)
            .bind(after_id.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::failed).collect()
    }

    async fn retry_delivery(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        let retried = sqlx::query(sql::RETRY)
            .bind(id)
            .bind(millis(now))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(retried > 0)
    }

    async fn next_delivery_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let due: Option<i64> = sqlx::query_scalar(sql::NEXT_DUE)
            .fetch_one(&self.pool)
            .await?;
        due.map(rows::from_millis).transpose()
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        let by_status: Vec<(String, i64)> = sqlx::query_as(sql::COUNT_BY_STATUS)
            .fetch_all(&self.pool)
            .await?;
        Ok(StoreStats {
            requests_by_status: rows::status_counts(by_status)?,
            deliveries_waiting: self.count(sql::COUNT_PENDING).await?,
            deliveries_failed: self.count(sql::COUNT_FAILED).await?,
        })
    }

    async fn deliveries_waiting(&self) -> StoreResult<i64> {
        self.count(sql::COUNT_PENDING).await
    }

    async fn claim_key(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let inserted = sqlx::query(sql::CLAIM_KEY)
            .bind(key)
            .bind(millis(now))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(inserted == 1)
    }

    async fn note_once(&self, note: Note) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let fresh = sqlx::query(sql::CLAIM_KEY)
            .bind(&note.key)
            .bind(millis(note.at))
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if !fresh {
            return Ok(false);
        }
        if let Some(event) = &note.event {
            insert_event(&mut tx, note.request_id, event).await?;
        }
        insert_deliveries(
            &mut tx,
            Some(note.request_id),
            &note.deliveries,
            millis(note.at),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn card_states(&self, request_id: i64) -> StoreResult<Vec<CardState>> {
        let found = sqlx::query(&sql::CARD_STATES)
            .bind(request_id)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::card_state).collect()
    }

    async fn slack_user(&self, id: &str) -> StoreResult<Option<SlackUser>> {
        let row = sqlx::query(&sql::SLACK_USER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::slack_user).transpose()
    }

    async fn save_slack_user(&self, user: &SlackUser) -> StoreResult<()> {
        sqlx::query(&sql::SAVE_SLACK_USER)
            .bind(&user.id)
            .bind(&user.display_name)
            .bind(&user.real_name)
            .bind(user.deleted)
            .bind(&user.tz)
            .bind(&user.email)
            .bind(millis(user.refreshed_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune(
        &self,
        keys_before: DateTime<Utc>,
        done_before: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let folding: bool = sqlx::query_scalar(sql::PG_TRY_FOLD_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if folding {
            sqlx::query(sql::PG_FOLD_STATUS_CHANGES)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(sql::PRUNE_KEYS)
            .bind(millis(keys_before))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::PRUNE_IDEMPOTENCY_KEYS)
            .bind(millis(keys_before))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::PRUNE_DONE)
            .bind(millis(done_before))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn card_by_message(&self, channel: &str, ts: &str) -> StoreResult<Option<Card>> {
        let row = sqlx::query(&sql::CARD_BY_MESSAGE)
            .bind(channel)
            .bind(ts)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|row| rows::card(row, "")).transpose()
    }

    async fn add_thread_message(&self, post: ThreadPost) -> StoreResult<bool> {
        relay::add_thread_message(&self.pool, post).await
    }

    async fn thread(&self, request_id: i64) -> StoreResult<Vec<ThreadMessage>> {
        let mut conn = self.pool.acquire().await?;
        thread_in(&mut conn, request_id).await
    }

    async fn thread_message_at(&self, channel: &str, ts: &str) -> StoreResult<Option<KeptMessage>> {
        relay::thread_message_at(&self.pool, channel, ts).await
    }

    async fn thread_message(&self, id: i64) -> StoreResult<Option<KeptMessage>> {
        relay::thread_message(&self.pool, id).await
    }

    async fn change_thread_message(&self, change: ThreadChange) -> StoreResult<bool> {
        relay::change_thread_message(&self.pool, change).await
    }

    async fn relay_copy(&self, message_id: i64, card_id: i64) -> StoreResult<Option<RelayCopy>> {
        relay::relay_copy(&self.pool, message_id, card_id).await
    }

    async fn relay_copy_posted(
        &self,
        message_id: i64,
        card_id: i64,
        copy: RelayCopy,
        shown_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        relay::relay_copy_posted(&self.pool, message_id, card_id, copy, shown_version, now).await
    }

    async fn home_opened(&self, user: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(sql::HOME_OPENED)
            .bind(user)
            .bind(millis(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn open_tasks(&self, user: &str, limit: u32) -> StoreResult<Vec<AccessRequest>> {
        let quoted = format!("%\"{user}\"%");
        let found = sqlx::query(&sql::OPEN_TASKS)
            .bind(&quoted)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        // Candidates only: which of them this user may act on is the policy's answer.
        found.iter().map(|row| REQUESTS.read(row)).collect()
    }

    async fn due_expiries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>> {
        self.requests_at(&sql::DUE_EXPIRIES, now, limit).await
    }

    async fn expiring_before(
        &self,
        at: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>> {
        self.requests_at(&sql::EXPIRING_BEFORE, at, limit).await
    }

    async fn waiting_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>> {
        self.requests_at(&sql::WAITING_SINCE, since, limit).await
    }
}
