//! The PostgreSQL store, for several replicas sharing one database.
//!
//! Row locks and `FOR UPDATE SKIP LOCKED` let the replicas work side by side: a change is
//! applied only on top of the version it was decided on, and each delivery is claimed by
//! one replica at a time.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

use super::pg_decisions::DecisionBatches;
use super::rows::{self, impl_store};
use sqlx::Row;

use super::{Change, Decide, Decided, Delivery, Store, StoreError, StoreResult};

/// Connections per replica.
const MAX_CONNECTIONS: u32 = 10;

pub struct PostgresStore {
    read: PgPool,
    write: PgPool,
    decisions: DecisionBatches,
}

/// Connects to the database at `url` and runs the migrations (one replica at a time:
/// sqlx holds an advisory lock while migrating).
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(PostgresStore::open(url).await?))
}

impl PostgresStore {
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PostgresStore {
            decisions: DecisionBatches::start(&pool),
            read: pool.clone(),
            write: pool,
        })
    }

    async fn begin_write(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.write.begin().await?)
    }

    async fn decide_change(
        &self,
        id: i64,
        key: Option<String>,
        decide: Decide,
    ) -> StoreResult<Decided> {
        self.decisions.decide(id, key, decide).await
    }

    async fn apply_change(&self, change: Change) -> StoreResult<()> {
        apply_on(&self.write, &change).await
    }
}

/// Applies a change in one statement: one round trip to the server instead of one per
/// statement of `apply_in_transaction`, with the same outcome.
pub(super) async fn apply_on<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    change: &Change,
) -> StoreResult<()> {
    let request = &change.request;
    let now = rows::millis(change.event.at);
    let values = rows::RequestValues::new(request)?;
    let event = rows::EventValues::new(&change.event)?;
    let methods: Vec<&str> = change.deliveries.iter().map(Delivery::method).collect();
    let payloads = change
        .deliveries
        .iter()
        .map(rows::to_json)
        .collect::<StoreResult<Vec<String>>>()?;
    let home_payloads = change
        .republish_homes
        .iter()
        .map(|user| rows::to_json(&Delivery::PublishHome { user: user.clone() }))
        .collect::<StoreResult<Vec<String>>>()?;
    let (card_kinds, card_recipients): (Vec<&str>, Vec<&str>) = change
        .new_cards
        .iter()
        .map(|card| (card.kind.as_str(), card.recipient.as_str()))
        .unzip();
    let (duplicate, applied): (bool, i64) = bind_params(sqlx::query(APPLY), &values.changeable())
        .bind(request.id)
        .bind(&change.dedup_key)
        .bind(now)
        .bind(event.at)
        .bind(&change.event.actor)
        .bind(change.event.kind.as_str())
        .bind(&event.before)
        .bind(&event.after)
        .bind(&change.event.detail)
        .bind(&methods)
        .bind(&payloads)
        .bind(&card_kinds)
        .bind(&card_recipients)
        .bind(&change.republish_homes)
        .bind(&home_payloads)
        .try_map(|row: sqlx::postgres::PgRow| {
            Ok((row.try_get("duplicate")?, row.try_get("applied")?))
        })
        .fetch_one(executor)
        .await?;
    if duplicate {
        Err(StoreError::Duplicate)
    } else if applied == 0 {
        Err(StoreError::Conflict)
    } else {
        Ok(())
    }
}

/// `Store::apply` as one statement. Data-modifying CTEs all run, once, on one snapshot and
/// in no set order, so each write is made conditional on `updated`, and the outbox rows are
/// inserted by one of them, in the order `apply_in_transaction` queues them: nothing is
/// written unless the key is new (`$19`) and the request still has the version the change
/// was decided on. A concurrent
/// change to the same request makes the `UPDATE` wait for its row lock and then find the
/// version moved on: a conflict, decided again by the caller.
///
/// `$1`…`$17` the changeable columns, `$18` the request, `$19` the key, `$20` now,
/// `$21`…`$26` the event, `$27`/`$28` deliveries (methods, payloads), `$29`/`$30` new
/// cards (kinds, recipients), `$31`/`$32` Home tabs to republish (users, payloads).
const APPLY: &str = concat!(
    "WITH seen AS ( \
         SELECT EXISTS (SELECT 1 FROM processed_keys WHERE key = $19) AS duplicate \
     ), updated AS ( \
         UPDATE requests SET (",
    rows::request_changeable!(),
    ") = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         WHERE id = $18 AND version = $17 - 1 AND NOT (SELECT duplicate FROM seen) \
         RETURNING id \
     ), dedup AS ( \
         INSERT INTO processed_keys (key, at) SELECT $19, $20 FROM updated \
         WHERE $19 IS NOT NULL ON CONFLICT DO NOTHING \
     ), event AS ( \
         INSERT INTO events (request_id, at, actor, kind, before_json, after_json, detail) \
         SELECT $18, $21, $22, $23, $24, $25, $26 FROM updated \
     ), new_cards AS ( \
         INSERT INTO cards (request_id, kind, recipient, rendered_version) \
         SELECT $18, c.kind, c.recipient, 0 \
         FROM updated, unnest($29::text[], $30::text[]) WITH ORDINALITY AS c(kind, recipient, n) \
         ORDER BY c.n RETURNING id \
     ), queued AS ( \
         INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
         created_at, updated_at) \
         SELECT q.request_id, q.method, q.payload, 'pending', 0, $20, $20, $20 FROM ( \
             SELECT 1 AS part, id AS n, $18::bigint AS request_id, \
             'chat.postMessage' AS method, ",
    rows::card_payload!("post_card", "id"),
    " AS payload FROM new_cards \
             UNION ALL \
             SELECT 2, d.n, $18, d.method, d.payload \
             FROM updated, unnest($27::text[], $28::text[]) WITH ORDINALITY AS d(method, payload, n) \
             UNION ALL \
             SELECT 3, h.n, NULL, 'views.publish', h.payload \
             FROM updated, unnest($31::text[], $32::text[]) WITH ORDINALITY AS h(user_id, payload, n) \
             JOIN home_viewers v ON v.user_id = h.user_id \
             WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.status = 'pending' \
             AND o.method = 'views.publish' AND o.payload = h.payload \
             AND o.lease_owner IS NULL) \
         ) q ORDER BY q.part, q.n \
     ) \
     SELECT (SELECT duplicate FROM seen) AS duplicate, \
     (SELECT COUNT(*) FROM updated) AS applied"
);

impl_store!(
    PostgresStore,
    Postgres,
    claim_lock = " FOR UPDATE SKIP LOCKED",
    row_lock = " FOR UPDATE"
);
