//! The SQLite store: the embedded default, for one process.
//!
//! SQLite allows one writer at a time, so one thread writes: every write of the store is a
//! job of the [`Writer`], which commits the jobs queued meanwhile together (`writer.rs`).
//! Reads run on a few read-only connections beside it (WAL lets them), on tokio's blocking
//! threads (`readers.rs`). The statements are `reads.rs` and `writes.rs`, plain functions
//! of a connection. rusqlite runs them all; sqlx only runs the migrations, which both
//! backends share with sqlx's migration table.

mod checkpoint;
mod readers;
mod reads;
mod relay;
mod writer;
mod writes;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, Statement, ToSql};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::ConnectOptions;

use self::checkpoint::Checkpointer;
use self::readers::Readers;
use self::writer::Writer;
use super::columns::Param;
use super::{
    Card, CardState, Change, Decide, Decided, Delivery, FailedDelivery, Filed, Follow, KeptMessage,
    NewRequest, Note, OutboxItem, PutApp, RelayCopy, RequestFilter, SlackUser, Store, StoreError,
    StoreResult, StoreStats, ThreadChange, ThreadPost,
};
use crate::domain::{AccessRequest, App, AuditEvent, NewEvent, ThreadMessage};

pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    _checkpoints: Checkpointer,
    /// Held while the store is open: a second process on the same file is refused.
    _lock: Option<std::fs::File>,
    /// For `sqlite::memory:`, the scratch file that stands in for memory.
    _scratch: Option<Scratch>,
}

/// Opens (creating it if missing) the database at `url` and runs the migrations.
/// `sqlite::memory:` gives a private database in a scratch file, removed when the store is
/// dropped: the writer and the readers are separate connections, which one in-memory
/// database cannot have.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(SqliteStore::open(url).await?))
}

impl SqliteStore {
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (path, scratch, lock) = if in_memory {
            let scratch = Scratch::new();
            create_private(&scratch.0)?;
            (scratch.0.clone(), Some(scratch), None)
        } else {
            let path = SqliteConnectOptions::from_str(url)?
                .get_filename()
                .to_path_buf();
            let lock = lock_database(&path)?;
            create_private(&path)?;
            (path, None, Some(lock))
        };
        migrate(&path).await?;
        let conn = connection(&path)?;
        // The file lock makes this the only process: claims left by a process that died are
        // free now, not when their leases run out.
        execute(&conn, super::sql::RELEASE_ALL_CLAIMS, &[])?;
        let writer = Writer::start(conn)?;
        Ok(SqliteStore {
            writer,
            readers: Arc::new(Readers::new(path.clone())),
            _checkpoints: Checkpointer::start(&path)?,
            _lock: lock,
            _scratch: scratch,
        })
    }
}

/// Runs the migrations with sqlx, whose table of applied migrations every release keeps.
async fn migrate(path: &Path) -> StoreResult<()> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .connect()
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
    sqlx::Connection::close(conn).await?;
    Ok(())
}

/// Statements kept prepared per connection: every statement the store has, with room.
const STATEMENT_CACHE: usize = 64;

/// A connection to the database at `path`, set up as every connection of the store is.
fn connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoints keep a statement journal; on disk it costs a temp file per statement.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        checkpoint::WRITER_CHECKPOINT_PAGES,
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// `$1`, `$2`, …: the names of the parameters `bind` binds.
static PARAMETER_NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (1..=64).map(|n| format!("${n}")).collect());

/// Binds `params[i]` to the parameter named `$i+1` of `statement`, which must have exactly
/// `params.len()` parameters.
fn bind(statement: &mut Statement<'_>, params: &[&dyn ToSql]) -> StoreResult<()> {
    if statement.parameter_count() != params.len() {
        return Err(StoreError::Write(format!(
            "a statement with {} parameters was given {}",
            statement.parameter_count(),
            params.len()
        )));
    }
    for (at, (name, param)) in PARAMETER_NAMES.iter().zip(params).enumerate() {
        // SQLite numbers `$N` parameters in the order they first appear, which is mostly N:
        // that is checked first, by name, before looking the name up.
        let index = match statement.parameter_name(at + 1) {
            Some(found) if found == name => at + 1,
            _ => statement
                .parameter_index(name)?
                .ok_or_else(|| StoreError::Write(format!("a statement has no parameter {name}")))?,
        };
        statement.raw_bind_parameter(index, param)?;
    }
    Ok(())
}

/// Runs cached statement `sql` with `params` (see [`bind`]); the rows it changed.
fn execute(conn: &Connection, sql: &str, params: &[&dyn ToSql]) -> StoreResult<usize> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, params)?;
    Ok(statement.raw_execute()?)
}

/// Every row of cached statement `sql` with `params`, each turned into a `T` by `read`.
fn query<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    mut read: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, params)?;
    let mut rows = statement.raw_query();
    let mut values = Vec::new();
    while let Some(row) = rows.next()? {
        values.push(read(row)?);
    }
    Ok(values)
}

/// The first row of cached statement `sql` with `params`, if any, read by `read`.
fn query_first<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    read: impl FnOnce(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, params)?;
    let mut rows = statement.raw_query();
    rows.next()?.map(read).transpose()
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Text(text) => ToSqlOutput::from(text.as_ref()),
            Param::OptText(Some(text)) => ToSqlOutput::from(*text),
            Param::OptText(None) | Param::OptInt(None) => ToSqlOutput::Owned(Value::Null),
            Param::Int(n) | Param::OptInt(Some(n)) => ToSqlOutput::from(*n),
            Param::Bool(b) => ToSqlOutput::from(*b),
        })
    }
}

/// `params` as rusqlite takes them, followed by `more`.
fn with<'a>(params: &'a [Param<'a>], more: &[&'a dyn ToSql]) -> Vec<&'a dyn ToSql> {
    let mut all: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
    all.extend_from_slice(more);
    all
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.readers.read(reads::ping).await
    }

    async fn put_app_following(
        &self,
        app: &App,
        now: DateTime<Utc>,
        follow: Follow,
    ) -> StoreResult<PutApp> {
        let app = app.clone();
        self.writer
            .write(move |conn| writes::put_app(conn, &app, now, &follow))
            .await
    }

    async fn app(&self, slug: &str) -> StoreResult<Option<App>> {
        let slug = slug.to_string();
        self.readers.read(move |conn| reads::app(conn, &slug)).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        self.readers.read(reads::apps).await
    }

    async fn file_request(&self, new: NewRequest) -> StoreResult<Filed> {
        self.writer
            .write(move |conn| writes::file_request(conn, &new))
            .await
    }

    async fn request(&self, id: i64) -> StoreResult<Option<AccessRequest>> {
        self.readers
            .read(move |conn| reads::request(conn, id))
            .await
    }

    async fn requests(&self, filter: &RequestFilter) -> StoreResult<Vec<AccessRequest>> {
        let filter = filter.clone();
        self.readers
            .read(move |conn| reads::requests(conn, &filter))
            .await
    }

    async fn events(&self, request_id: i64) -> StoreResult<Vec<AuditEvent>> {
        self.readers
            .read(move |conn| reads::events(conn, request_id))
            .await
    }

    async fn apply(&self, change: Change) -> StoreResult<()> {
        self.writer
            .write(move |conn| writes::apply(conn, &change))
            .await
    }

    async fn decide(&self, id: i64, key: Option<String>, decide: Decide) -> StoreResult<Decided> {
        // Read on the writer's connection: nothing can change the request between the read
        // and the write.
        self.writer
            .write(move |conn| writes::decide(conn, id, &key, &decide))
            .await
    }

    async fn append_event(&self, request_id: i64, event: &NewEvent) -> StoreResult<()> {
        let event = event.clone();
        self.writer
            .write(move |conn| writes::insert_event(conn, request_id, &event))
            .await
    }

    async fn card(&self, card_id: i64) -> StoreResult<Option<Card>> {
        self.readers
            .read(move |conn| reads::card(conn, card_id))
            .await
    }

    async fn card_with_request(&self, card_id: i64) -> StoreResult<Option<(Card, AccessRequest)>> {
        self.readers
            .read(move |conn| reads::card_with_request(conn, card_id))
            .await
    }

    async fn cards(&self, request_id: i64) -> StoreResult<Vec<Card>> {
        self.readers
            .read(move |conn| reads::cards(conn, request_id))
            .await
    }

    async fn card_posted(
        &self,
        card_id: i64,
        channel: &str,
        ts: &str,
        rendered_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (channel, ts) = (channel.to_string(), ts.to_string());
        self.writer
            .write(move |conn| {
                writes::card_posted(conn, card_id, &channel, &ts, rendered_version, now)
            })
            .await
    }

    async fn enqueue(
        &self,
        request_id: Option<i64>,
        deliveries: &[Delivery],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let deliveries = deliveries.to_vec();
        self.writer
            .write(move |conn| writes::queue_all(conn, request_id, &deliveries, now))
            .await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        let owner = owner.to_string();
        self.writer
            .write(move |conn| writes::claim_deliveries(conn, &owner, now, lease, limit))
            .await
    }

    async fn deliveries_done(&self, ids: &[i64], cards: &[(i64, i64)]) -> StoreResult<()> {
        if ids.is_empty() && cards.is_empty() {
            return Ok(());
        }
        let (ids, cards) = (ids.to_vec(), cards.to_vec());
        self.writer
            .write(move |conn| writes::deliveries_done(conn, &ids, &cards))
            .await
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
        let (owner, refreshes) = (owner.to_string(), refreshes.to_vec());
        self.writer
            .write(move |conn| writes::expand_refreshes(conn, &owner, &refreshes, now))
            .await
    }

    async fn release_claims(&self, owner: &str) -> StoreResult<()> {
        let owner = owner.to_string();
        self.writer
            .write(move |conn| writes::release_claims(conn, &owner))
            .await
    }

    async fn delivery_postponed(
        &self,
        id: i64,
        not_before: DateTime<Utc>,
        error: &str,
        counts_as_attempt: bool,
    ) -> StoreResult<()> {
        let error = error.to_string();
        self.writer
            .write(move |conn| {
                writes::delivery_postponed(conn, id, not_before, &error, counts_as_attempt)
            })
            .await
    }

    async fn delivery_failed(&self, id: i64, error: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let error = error.to_string();
        self.writer
            .write(move |conn| writes::delivery_failed(conn, id, &error, now))
            .await
    }

    async fn failed_deliveries(
        &self,
        after_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<FailedDelivery>> {
        self.readers
            .read(move |conn| reads::failed_deliveries(conn, after_id, limit))
            .await
    }

    async fn retry_delivery(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        self.writer
            .write(move |conn| writes::retry_delivery(conn, id, now))
            .await
    }

    async fn next_delivery_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.readers.read(reads::next_delivery_due).await
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        self.readers.read(reads::stats).await
    }

    async fn deliveries_waiting(&self) -> StoreResult<i64> {
        self.readers.read(reads::deliveries_waiting).await
    }

    async fn claim_key(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let key = key.to_string();
        self.writer
            .write(move |conn| writes::claim_key(conn, &key, now))
            .await
    }

    async fn note_once(&self, note: Note) -> StoreResult<bool> {
        self.writer
            .write(move |conn| writes::note_once(conn, &note))
            .await
    }

    async fn card_states(&self, request_id: i64) -> StoreResult<Vec<CardState>> {
        self.readers
            .read(move |conn| reads::card_states(conn, request_id))
            .await
    }

    async fn slack_user(&self, id: &str) -> StoreResult<Option<SlackUser>> {
        let id = id.to_string();
        self.readers
            .read(move |conn| reads::slack_user(conn, &id))
            .await
    }

    async fn save_slack_user(&self, user: &SlackUser) -> StoreResult<()> {
        let user = user.clone();
        self.writer
            .write(move |conn| writes::save_slack_user(conn, &user))
            .await
    }

    async fn prune(
        &self,
        keys_before: DateTime<Utc>,
        done_before: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.writer
            .write(move |conn| writes::prune(conn, keys_before, done_before))
            .await
    }

    async fn card_by_message(&self, channel: &str, ts: &str) -> StoreResult<Option<Card>> {
        let (channel, ts) = (channel.to_string(), ts.to_string());
        self.readers
            .read(move |conn| reads::card_by_message(conn, &channel, &ts))
            .await
    }

    async fn add_thread_message(&self, post: ThreadPost) -> StoreResult<bool> {
        self.writer
            .write(move |conn| relay::add_thread_message(conn, &post))
            .await
    }

    async fn thread(&self, request_id: i64) -> StoreResult<Vec<ThreadMessage>> {
        self.readers
            .read(move |conn| reads::thread(conn, request_id))
            .await
    }

    async fn thread_message_at(&self, channel: &str, ts: &str) -> StoreResult<Option<KeptMessage>> {
        let (channel, ts) = (channel.to_string(), ts.to_string());
        self.readers
            .read(move |conn| relay::thread_message_at(conn, &channel, &ts))
            .await
    }

    async fn thread_message(&self, id: i64) -> StoreResult<Option<KeptMessage>> {
        self.readers
            .read(move |conn| relay::thread_message(conn, id))
            .await
    }

    async fn change_thread_message(&self, change: ThreadChange) -> StoreResult<bool> {
        self.writer
            .write(move |conn| relay::change_thread_message(conn, &change))
            .await
    }

    async fn relay_copy(&self, message_id: i64, card_id: i64) -> StoreResult<Option<RelayCopy>> {
        self.readers
            .read(move |conn| relay::relay_copy(conn, message_id, card_id))
            .await
    }

    async fn relay_copy_posted(
        &self,
        message_id: i64,
        card_id: i64,
        copy: RelayCopy,
        shown_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.writer
            .write(move |conn| {
                relay::relay_copy_posted(conn, message_id, card_id, &copy, shown_version, now)
            })
            .await
    }

    async fn home_opened(&self, user: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let user = user.to_string();
        self.writer
            .write(move |conn| writes::home_opened(conn, &user, now))
            .await
    }

    async fn open_tasks(&self, user: &str, limit: u32) -> StoreResult<Vec<AccessRequest>> {
        let user = user.to_string();
        self.readers
            .read(move |conn| reads::open_tasks(conn, &user, limit))
            .await
    }

    async fn due_expiries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>> {
        self.readers
            .read(move |conn| reads::requests_at(conn, &super::sql::DUE_EXPIRIES, now, limit))
            .await
    }

    async fn expiring_before(
        &self,
        at: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>> {
        self.readers
            .read(move |conn| reads::requests_at(conn, &super::sql::EXPIRING_BEFORE, at, limit))
            .await
    }

    async fn waiting_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<AccessRequest>> {
        self.readers
            .read(move |conn| reads::requests_at(conn, &super::sql::WAITING_SINCE, since, limit))
            .await
    }
}

/// A scratch database file for `sqlite::memory:`, removed with its WAL when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "accessbot-memory-{}-{}-{}.db",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        Scratch(std::env::temp_dir().join(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

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
fn create_private(path: &Path) -> StoreResult<()> {
    match owner_only().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(StoreError::Database(sqlx::Error::Io(err))),
    }
}

/// Takes an exclusive lock on `<database>.lock`; the OS drops it when the process dies.
fn lock_database(path: &Path) -> StoreResult<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = owner_only()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|err| StoreError::Database(sqlx::Error::Io(err)))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::InUse(path.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(err)) => Err(StoreError::Database(sqlx::Error::Io(err))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::sql;
    use super::writer::tests::schema;

    /// `bind` binds `$1…$n` by name: every SQLite statement prepares, and its parameters
    /// are exactly `$1…$n`.
    #[test]
    fn every_statement_prepares_with_parameters_one_to_n() {
        let conn = schema();
        let statements: &[&str] = &[
            &sql::REQUEST,
            &sql::REQUEST_BY_KEY,
            &sql::REQUEST_BY_LEGACY_KEY,
            sql::RECORD_KEY,
            sql::PRUNE_IDEMPOTENCY_KEYS,
            &sql::INSERT_REQUEST,
            &sql::UPDATE_REQUEST,
            &sql::OPEN_TASKS,
            &sql::DUE_EXPIRIES,
            &sql::EXPIRING_BEFORE,
            &sql::WAITING_SINCE,
            sql::REQUEST_VERSION,
            sql::COUNT_BY_STATUS,
            &sql::APP,
            &sql::APPS_BY_SLUG,
            &sql::INSERT_APP,
            &sql::UPDATE_APP,
            sql::INSERT_EVENT,
            sql::EVENTS,
            &sql::CARD,
            &sql::CARDS,
            &sql::CARD_BY_MESSAGE,
            &sql::CARD_WITH_REQUEST,
            sql::INSERT_CARD,
            sql::CARD_POSTED,
            sql::CARD_SHOWN,
            sql::INSERT_DELIVERY,
            sql::PUBLISH_HOME,
            sql::HOME_VIEWERS_AMONG,
            &sql::REFRESH_CARDS,
            sql::FINISH_REFRESH,
            &sql::CLAIM,
            sql::DEAD_LETTER,
            sql::DELIVERY_DONE,
            sql::POSTPONE,
            sql::FAIL,
            sql::FAILED_DELIVERIES,
            sql::RETRY,
            sql::NEXT_DUE,
            sql::RELEASE_CLAIMS,
            sql::RELEASE_ALL_CLAIMS,
            sql::PRUNE_KEYS,
            sql::PRUNE_DONE,
            sql::COUNT_PENDING,
            sql::COUNT_FAILED,
            sql::CLAIM_KEY,
            sql::INSERT_THREAD_MESSAGE,
            sql::THREAD,
            &sql::THREAD_MESSAGE,
            &sql::THREAD_MESSAGE_AT,
            sql::CHANGE_THREAD_MESSAGE,
            sql::RELAY_COPIES,
            sql::RELAY_COPY,
            sql::INSERT_RELAY_COPY,
            sql::OTHER_POSTED_CARDS,
            sql::HOME_OPENED,
            sql::FOLD_STATUS_CHANGES,
            sql::CLEAR_STATUS_CHANGES,
        ];
        let lists = sql::LIST_REQUESTS.iter().map(String::as_str);
        for text in statements.iter().copied().chain(lists) {
            let statement = conn
                .prepare(text)
                .unwrap_or_else(|err| panic!("{err}: {text}"));
            let count = statement.parameter_count();
            let names: BTreeSet<String> = (1..=count)
                .map(|i| statement.parameter_name(i).unwrap_or("?").to_string())
                .collect();
            let expected: BTreeSet<String> = (1..=count).map(|n| format!("${n}")).collect();
            assert_eq!(names, expected, "{text}");
        }
    }
}
