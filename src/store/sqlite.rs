//! The SQLite store: the embedded default, for one process.
//!
//! SQLite allows one writer at a time. Decisions are written by the group commit
//! (`group_commit.rs`); every other write goes through a pool of one connection. The two
//! take turns through one lock in the process, so writers queue instead of meeting
//! "database is locked" or SQLite's sleeping busy handler; reads use a few more connections
//! (WAL lets them run beside the writer).

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::checkpoint::{self, Checkpointer};
use super::group_commit::GroupCommit;
use super::rows::{self, impl_store};
use super::{Change, Decide, Decided, Store, StoreError, StoreResult};

/// Connections for reads beside the single writer.
const READ_CONNECTIONS: u32 = 4;

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// The write turn, shared by `write` and `commits`.
    turn: Arc<Mutex<()>>,
    /// Absent for an in-memory database, which only `write`'s connection can see.
    commits: Option<GroupCommit>,
    /// Absent for an in-memory database, which has no WAL.
    _checkpoints: Option<Checkpointer>,
    /// Held while the store is open: a second process on the same file is refused.
    _lock: Option<std::fs::File>,
}

/// Opens (creating it if missing) the database at `url` and runs the migrations.
/// `sqlite::memory:` gives a private in-memory database.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(SqliteStore::open(url).await?))
}

impl SqliteStore {
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("wal_autocheckpoint", checkpoint::WRITER_CHECKPOINT_PAGES);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let lock = if in_memory {
            None
        } else {
            let lock = lock_database(options.get_filename())?;
            create_private(options.get_filename())?;
            Some(lock)
        };
        // A local file cannot go away like a network peer: no ping before each use.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .min_connections(if in_memory { 1 } else { 0 })
            // An in-memory database lives only as long as its connection.
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        // The file lock makes this the only process: claims left by a process that died are
        // free now, not when their leases run out.
        sqlx::query(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
             WHERE status = 'pending' AND lease_owner IS NOT NULL",
        )
        .execute(&write)
        .await?;
        let read = if in_memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await?
        };
        let turn = Arc::new(Mutex::new(()));
        let (commits, checkpoints) = if in_memory {
            (None, None)
        } else {
            let path = options.get_filename();
            (
                Some(GroupCommit::start(path, Arc::clone(&turn))?),
                Some(Checkpointer::start(path)?),
            )
        };
        Ok(SqliteStore {
            read,
            write,
            turn,
            commits,
            _checkpoints: checkpoints,
            _lock: lock,
        })
    }

    /// Starts a transaction that writes, in the process's write turn. It takes SQLite's
    /// write lock at once, so it never has to upgrade a read snapshot (which fails when
    /// another process wrote meanwhile).
    async fn begin_write(&self) -> StoreResult<WriteTransaction> {
        let turn = Arc::clone(&self.turn).lock_owned().await;
        let tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTransaction { tx, _turn: turn })
    }

    /// Applies a change in a transaction of its own, for an in-memory database, which the
    /// group commit cannot see.
    async fn apply_in_transaction(&self, change: Change) -> StoreResult<()> {
        let request = &change.request;
        let now = rows::millis(change.event.at);
        let values = rows::RequestValues::new(request)?;
        let mut tx = self.begin_write().await?;
        if let Some(key) = &change.dedup_key {
            let fresh = sqlx::query(rows::sql::DEDUP_KEY)
                .bind(key)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if fresh == 0 {
                tx.rollback().await?;
                return Err(StoreError::Duplicate);
            }
        }
        let updated = bind_params(sqlx::query(rows::sql::UPDATE_REQUEST), &values.changeable())
            .bind(request.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Err(StoreError::Conflict);
        }
        Self::insert_event(&mut tx, request.id, &change.event).await?;
        Self::insert_cards(&mut tx, request.id, &change.new_cards, now).await?;
        Self::insert_deliveries(&mut tx, Some(request.id), &change.deliveries, now).await?;
        Self::insert_home_publishes(&mut tx, &change.republish_homes, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn apply_change(&self, change: Change) -> StoreResult<()> {
        match &self.commits {
            Some(commits) => commits.apply(change).await,
            None => self.apply_in_transaction(change).await,
        }
    }

    async fn decide_change(
        &self,
        id: i64,
        key: Option<String>,
        decide: Decide,
    ) -> StoreResult<Decided> {
        match &self.commits {
            Some(commits) => commits.decide(id, key, decide).await,
            None => super::decide_with_retries(self, id, key, decide).await,
        }
    }

    /// `Store::expand_card_refreshes` for claimed refreshes `(delivery id, request id)`.
    async fn expand_refreshes(
        &self,
        owner: &str,
        refreshes: &[(i64, i64)],
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for (id, request_id) in refreshes {
            // Only while the claim is still ours: a lease that ran out may have let
            // another worker expand it already.
            let finished = sqlx::query(
                "UPDATE outbox SET status = 'done', lease_owner = NULL, \
                 lease_until = NULL, updated_at = $3 \
                 WHERE id = $1 AND status = 'pending' AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if finished == 1 {
                sqlx::query(rows::sql::REFRESH_CARDS)
                    .bind(request_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A write transaction that holds the write turn until it ends.
struct WriteTransaction {
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl WriteTransaction {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for WriteTransaction {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// Takes an exclusive lock on `<database>.lock`; the OS drops it when the process dies.
/// Options that create a missing file readable and writable by its owner only (0600): the
/// database holds every request and audit event. The mode applies only when the file is
/// created; an existing file keeps the mode its owner gave it.
fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates the database file, empty and owner-only, when it is missing. SQLite takes an
/// empty file for a new database, and creates its `-wal` and `-shm` files with the
/// database file's mode, so they are owner-only too.
fn create_private(path: &std::path::Path) -> StoreResult<()> {
    match owner_only().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(super::StoreError::Database(sqlx::Error::Io(err))),
    }
}

fn lock_database(path: &std::path::Path) -> StoreResult<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = owner_only()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|err| super::StoreError::Database(sqlx::Error::Io(err)))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(super::StoreError::InUse(path.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(err)) => {
            Err(super::StoreError::Database(sqlx::Error::Io(err)))
        }
    }
}

// SQLite's single writer already serializes every write transaction.
impl_store!(SqliteStore, Sqlite, claim_lock = "", row_lock = "");
