//! The PostgreSQL store, for several replicas sharing one database.
//!
//! Row locks and `FOR UPDATE SKIP LOCKED` let the replicas work side by side: a change is
//! applied only on top of the version it was decided on, and each delivery is claimed by
//! one replica at a time.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

use super::pg_apply::apply_all;
use super::pg_decisions::DecisionBatches;
use super::rows::{self, impl_store};

use super::{Change, Decide, Decided, Store, StoreError, StoreResult};

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
