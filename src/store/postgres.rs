//! The PostgreSQL store, for several replicas sharing one database.
//!
//! Row locks and `FOR UPDATE SKIP LOCKED` let the replicas work side by side: a change is
//! applied only on top of the version it was decided on, and each delivery is claimed by
//! one replica at a time.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::pg_apply::apply_all;
use super::pg_decisions::DecisionBatches;
use super::rows::{self, impl_store};

use super::{Change, Decide, Decided, Store, StoreError, StoreResult};

/// Connections per replica.
const MAX_CONNECTIONS: u32 = 10;

/// How long a connection may take to open (or a pooled one to free up): requests wait for
/// it, and an unreachable server would otherwise hold them for minutes of TCP retries.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// `Store::expand_card_refreshes` for claimed refreshes `(delivery id, request id)`, in
    /// one statement: while clicks arrive, the worker's round trips take the server's time
    /// from the clicks.
    async fn expand_refreshes(
        &self,
        owner: &str,
        refreshes: &[(i64, i64)],
        now: i64,
    ) -> StoreResult<()> {
        let (ids, requests): (Vec<i64>, Vec<i64>) = refreshes.iter().copied().unzip();
        sqlx::query(EXPAND_REFRESHES)
            .bind(ids)
            .bind(requests)
            .bind(owner)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn apply_change(&self, change: Change) -> StoreResult<()> {
        // One statement, its own transaction: it fails as a whole on a conflict.
        apply_all(&self.write, std::slice::from_ref(&change))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Write("a change applied without outcome".into())))
    }
}

impl_store!(
    PostgresStore,
    Postgres,
    claim_lock = " FOR UPDATE SKIP LOCKED",
    row_lock = " FOR UPDATE"
);

/// Finishes the refreshes `$1` (of requests `$2`) still claimed by `$3` (a lease that ran
/// out may have let another worker expand one already) and queues an update of every card
/// of their requests, refresh by refresh, card by card. Written so that any cached plan
/// finds rows by index: `= ANY` on the key, and cards looked up per refresh (a join was
/// planned as a scan of every card).
const EXPAND_REFRESHES: &str = concat!(
    "WITH finished AS ( \
         UPDATE outbox SET status = 'done', lease_owner = NULL, lease_until = NULL, \
         updated_at = $4 WHERE id = ANY($1) AND status = 'pending' AND lease_owner = $3 \
         RETURNING id \
     ) \
     INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
     created_at, updated_at) \
     SELECT r.request_id, 'chat.update', ",
    rows::card_payload!("update_card", "c.id"),
    ", 'pending', 0, $4, $4, $4 \
     FROM unnest($1::bigint[], $2::bigint[]) AS r(id, request_id) \
     JOIN finished f ON f.id = r.id, \
     LATERAL (SELECT id FROM cards WHERE request_id = r.request_id ORDER BY id) c \
     ORDER BY r.id, c.id"
);
