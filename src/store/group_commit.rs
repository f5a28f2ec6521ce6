//! Group commit of changes on SQLite: the path every click's decision takes.
//!
//! sqlx's SQLite driver runs each statement on its connection's own thread, so every
//! statement costs two cross-thread wake-ups, and a decision is eight of them; profiles
//! showed those hand-offs, not SQLite, setting the pace. Here one thread owns a
//! connection and applies every change queued meanwhile in one `BEGIN IMMEDIATE … COMMIT`,
//! each in a savepoint of its own so that each stays all-or-nothing and a refused change
//! (a duplicate key, a lost race) does not disturb the others. Each caller is answered
//! once the shared commit is done.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, Statement, ToSql, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::rows::{self, sql, Param};
use super::{Change, Delivery, StoreError, StoreResult};

/// The most changes one transaction takes; bounds how long other writers wait.
const MAX_BATCH: usize = 256;

/// Statements kept prepared: every statement a change runs, with room to spare.
const STATEMENT_CACHE: usize = 32;

pub(super) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

struct Job {
    change: Change,
    done: oneshot::Sender<StoreResult<()>>,
}

impl GroupCommit {
    /// Starts the committing thread on the database file at `path`. `turn` is the
    /// process's write turn: held for each transaction, so that this connection and the
    /// store's other writer never wait on SQLite's lock (whose busy handler sleeps).
    pub(super) fn start(path: &Path, turn: Arc<Mutex<()>>) -> StoreResult<GroupCommit> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-commit".into())
            .spawn(move || run(conn, queue, &turn))
            .map_err(|err| StoreError::Write(format!("cannot start the writer: {err}")))?;
        Ok(GroupCommit { jobs })
    }

    /// Applies `change` as `Store::apply` does, in the next group commit.
    pub(super) async fn apply(&self, change: Change) -> StoreResult<()> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { change, done })
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }
}

fn writer_stopped() -> StoreError {
    StoreError::Write("the SQLite writer stopped".into())
}

/// Commits batches until the store is dropped (every sender is gone).
fn run(mut conn: Connection, mut queue: mpsc::UnboundedReceiver<Job>, turn: &Mutex<()>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        let _turn = turn.blocking_lock();
        // Whatever arrived while waiting for the turn joins this commit.
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit(&mut conn, &batch) {
            Ok(outcomes) => {
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    // The caller may have gone away (its request was cancelled); the change
                    // stands regardless.
                    let _ = job.done.send(outcome);
                }
            }
            Err(err) => {
                let message = err.to_string();
                tracing::error!(error = %message, "group commit failed");
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(StoreError::Write(message.clone())));
                }
            }
        }
    }
}

/// Applies each change of `batch` in its own savepoint, then commits them together.
fn commit(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<Vec<StoreResult<()>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = tx.savepoint()?;
        let outcome = apply(&savepoint, &job.change);
        if outcome.is_ok() {
            savepoint.commit()?;
        }
        // A savepoint dropped without commit rolls back to where it began.
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// The statements of one change; the same as `apply_in_transaction` in `rows.rs`.
fn apply(conn: &Connection, change: &Change) -> StoreResult<()> {
    let request = &change.request;
    let now = rows::millis(change.event.at);
    if let Some(key) = &change.dedup_key {
        if execute(conn, sql::DEDUP_KEY, &[&key.as_str(), &now])? == 0 {
            return Err(StoreError::Duplicate);
        }
    }
    let values = rows::RequestValues::new(request)?;
    let mut params: Vec<&dyn ToSql> = Vec::with_capacity(27);
    let columns = values.params();
    params.extend(columns.iter().map(|param| param as &dyn ToSql));
    params.push(&request.id);
    if execute(conn, sql::UPDATE_REQUEST, &params)? == 0 {
        return Err(StoreError::Conflict);
    }
    if change.refresh_cards {
        execute(conn, sql::REFRESH_CARDS, &[&request.id, &now])?;
    }
    let event = rows::EventValues::new(&change.event)?;
    execute(
        conn,
        sql::INSERT_EVENT,
        &[
            &request.id,
            &event.at,
            &change.event.actor,
            &change.event.kind.as_str(),
            &event.before,
            &event.after,
            &change.event.detail,
        ],
    )?;
    for card in &change.new_cards {
        let mut insert = conn.prepare_cached(sql::INSERT_CARD)?;
        bind(
            &mut insert,
            &[&request.id, &card.kind.as_str(), &card.recipient],
        )?;
        let card_id: i64 = match insert.raw_query().next()? {
            Some(row) => row.get(0)?,
            None => return Err(StoreError::Write("a card insert returned no id".into())),
        };
        queue(conn, Some(request.id), &Delivery::PostCard { card_id }, now)?;
    }
    for delivery in &change.deliveries {
        queue(conn, Some(request.id), delivery, now)?;
    }
    for user in &change.republish_homes {
        let mut viewer = conn.prepare_cached(sql::IS_HOME_VIEWER)?;
        bind(&mut viewer, &[user])?;
        if viewer.raw_query().next()?.is_none() {
            continue;
        }
        let publish = Delivery::PublishHome { user: user.clone() };
        let payload = rows::to_json(&publish)?;
        execute(
            conn,
            sql::PUBLISH_HOME,
            &[&publish.method(), &payload.as_str(), &now],
        )?;
    }
    Ok(())
}

fn queue(
    conn: &Connection,
    request_id: Option<i64>,
    delivery: &Delivery,
    now: i64,
) -> StoreResult<()> {
    let payload = rows::to_json(delivery)?;
    execute(
        conn,
        sql::INSERT_DELIVERY,
        &[&request_id, &delivery.method(), &payload.as_str(), &now],
    )?;
    Ok(())
}

/// Runs a cached statement; `params[i]` is bound to `$i+1`. Rows changed.
fn execute(conn: &Connection, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<usize> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, params)?;
    statement.raw_execute()
}

/// Binds by name, as sqlx does, so a statement may use `$N` in any order and more than once.
fn bind(statement: &mut Statement<'_>, params: &[&dyn ToSql]) -> rusqlite::Result<()> {
    for (i, param) in params.iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = statement
            .parameter_index(&name)?
            .ok_or(rusqlite::Error::InvalidParameterName(name))?;
        statement.raw_bind_parameter(index, param)?;
    }
    Ok(())
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Text(text) => ToSqlOutput::from(text),
            Param::OptText(Some(text)) => ToSqlOutput::from(text),
            Param::OptText(None) | Param::OptInt(None) => ToSqlOutput::Owned(Value::Null),
            Param::Int(n) | Param::OptInt(Some(n)) => ToSqlOutput::from(n),
            Param::Bool(b) => ToSqlOutput::from(b),
        })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Write(err.to_string())
    }
}
