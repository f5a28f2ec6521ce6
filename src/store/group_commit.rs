//! Group commit of changes on SQLite: the path every click's decision takes.
//!
//! sqlx's SQLite driver runs each statement on its connection's own thread, so every
//! statement costs two cross-thread wake-ups, and a decision is eight of them; profiles
//! showed those hand-offs, not SQLite, setting the pace. Here one thread owns a
//! connection and applies every change queued meanwhile in one `BEGIN IMMEDIATE … COMMIT`.
//! Each change stays all-or-nothing, and a refused one (a duplicate key, a lost race) does
//! not disturb the others: refusals write nothing, and should a change fail halfway the
//! batch is run again with each change in a savepoint of its own. Each caller is answered
//! once the shared commit is done.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, Statement, ToSql, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::rows::{self, sql, Param};
use super::{Change, Decide, Decided, Delivery, StoreError, StoreResult};

/// The most changes one transaction takes; bounds how long other writers wait.
const MAX_BATCH: usize = 256;

/// Statements kept prepared: every statement a change runs, with room to spare.
const STATEMENT_CACHE: usize = 32;

pub(super) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

enum Job {
    Apply {
        change: Box<Change>,
        done: oneshot::Sender<StoreResult<()>>,
    },
    Decide {
        id: i64,
        key: Option<String>,
        decide: Decide,
        done: oneshot::Sender<StoreResult<Decided>>,
    },
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
        // Savepoints keep a statement journal; on disk it costs a temp file per statement.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The pages a decision touches stay cached instead of being read again from the
        // operating system (KiB). This cache fills as the data grows: it is most of the
        // process's memory on a large database.
        conn.pragma_update(None, "cache_size", -8_192)?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            super::checkpoint::WRITER_CHECKPOINT_PAGES,
        )?;
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
        let change = Box::new(change);
        super::ask(
            &self.jobs,
            |done| Job::Apply { change, done },
            writer_stopped,
        )
        .await
    }

    /// Does what `Store::decide` does, in the next group commit: the request is read on
    /// the committing connection, so nothing can change it between the read and the write.
    pub(super) async fn decide(
        &self,
        id: i64,
        key: Option<String>,
        decide: Decide,
    ) -> StoreResult<Decided> {
        let job = |done| Job::Decide {
            id,
            key,
            decide,
            done,
        };
        super::ask(&self.jobs, job, writer_stopped).await
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
        if let Err(err) = commit(&mut conn, &mut batch) {
            let message = err.to_string();
            tracing::error!(error = %message, "group commit failed");
            for job in batch.drain(..) {
                job.fail(&message);
            }
        }
    }
}

/// Runs every job of `batch`, commits them together, and then answers each (taking them
/// out of `batch`). On error `batch` keeps the unanswered jobs.
fn commit(conn: &mut Connection, batch: &mut Vec<Job>) -> rusqlite::Result<()> {
    let outcomes = match commit_unguarded(conn, batch)? {
        Some(outcomes) => outcomes,
        None => commit_in_savepoints(conn, batch)?,
    };
    for (job, outcome) in batch.drain(..).zip(outcomes) {
        job.answer(outcome);
    }
    Ok(())
}

/// Runs the jobs one after another in one transaction and commits it; `None`, with nothing
/// committed, when a job failed after writing part of its change.
///
/// This is the common path: a refused job (a duplicate key, a refusal, an unknown request)
/// fails before its first write, so no savepoints are needed. Savepoints are not free:
/// SQLite copies every page a savepoint changes into its statement journal.
fn commit_unguarded(
    conn: &mut Connection,
    batch: &[Job],
) -> rusqlite::Result<Option<Vec<Outcome>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let before = tx.total_changes();
        let outcome = job.run(&tx);
        if !outcome.wrote() && tx.total_changes() != before {
            // Dropping the transaction rolls it back.
            return Ok(None);
        }
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(Some(outcomes))
}

/// Runs each job in its own savepoint, so that one that fails halfway is undone alone, and
/// commits them together.
fn commit_in_savepoints(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<Vec<Outcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    // Savepoint statements are cached: rusqlite's `Savepoint` parses them anew each time.
    for job in batch {
        execute(&tx, "SAVEPOINT job", &[])?;
        let outcome = job.run(&tx);
        if !outcome.wrote() {
            execute(&tx, "ROLLBACK TO job", &[])?;
        }
        execute(&tx, "RELEASE job", &[])?;
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// What one job of a batch came to, before the commit.
enum Outcome {
    Applied(StoreResult<()>),
    Decided(StoreResult<Decided>),
}

impl Outcome {
    fn wrote(&self) -> bool {
        matches!(
            self,
            Outcome::Applied(Ok(())) | Outcome::Decided(Ok(Decided::Applied(_)))
        )
    }
}

impl Job {
    fn run(&self, conn: &Connection) -> Outcome {
        match self {
            Job::Apply { change, .. } => Outcome::Applied(apply(conn, change)),
            Job::Decide {
                id, key, decide, ..
            } => Outcome::Decided(decide_and_apply(conn, *id, key, decide)),
        }
    }

    /// Answers the caller. It may have gone away (its request was cancelled); the change
    /// stands regardless.
    fn answer(self, outcome: Outcome) {
        match (self, outcome) {
            (Job::Apply { done, .. }, Outcome::Applied(result)) => {
                let _ = done.send(result);
            }
            (Job::Decide { done, .. }, Outcome::Decided(result)) => {
                let _ = done.send(result);
            }
            // Each job's outcome is of its own kind (`Job::run`).
            _ => {}
        }
    }

    fn fail(self, message: &str) {
        let error = || StoreError::Write(message.to_string());
        match self {
            Job::Apply { done, .. } => {
                let _ = done.send(Err(error()));
            }
            Job::Decide { done, .. } => {
                let _ = done.send(Err(error()));
            }
        }
    }
}

/// Reads request `id`, decides, and applies the change (see `Store::decide`).
fn decide_and_apply(
    conn: &Connection,
    id: i64,
    key: &Option<String>,
    decide: &Decide,
) -> StoreResult<Decided> {
    let mut read = conn.prepare_cached(READ_REQUEST)?;
    bind(&mut read, &[&id])?;
    let mut rows = read.raw_query();
    let Some(row) = rows.next()? else {
        return Ok(Decided::NotFound);
    };
    let request = request_row(row)?.into_request()?;
    drop(rows);
    // A panic here would stop the thread every write goes through.
    let decided = super::decide_caught(decide, request)?;
    let mut change = match decided {
        Ok(change) => change,
        Err(refusal) => return Ok(Decided::Refused(refusal)),
    };
    change.dedup_key.clone_from(key);
    apply(conn, &change)?;
    Ok(Decided::Applied(Box::new(change.request)))
}

const READ_REQUEST: &str = concat!(
    "SELECT ",
    rows::request_columns!(),
    " FROM requests WHERE id = $1"
);

/// A `requests` row, in the order of `request_columns!`.
fn request_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<rows::RequestRow> {
    Ok(rows::RequestRow {
        id: row.get(0)?,
        app: row.get(1)?,
        app_name: row.get(2)?,
        target_user: row.get(3)?,
        requester: row.get(4)?,
        permission: row.get(5)?,
        groups: row.get(6)?,
        comment: row.get(7)?,
        access_length: row.get(8)?,
        status: row.get(9)?,
        approvers: row.get(10)?,
        app_admins: row.get(11)?,
        admin_channel: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        approved_by: row.get(15)?,
        approved_at: row.get(16)?,
        decided_by: row.get(17)?,
        decided_at: row.get(18)?,
        provisioned_at: row.get(19)?,
        expires_at: row.get(20)?,
        removed_by: row.get(21)?,
        removed_at: row.get(22)?,
        denial_feedback: row.get(23)?,
        expiry_reminded: row.get(24)?,
        stage_reminded: row.get(25)?,
        version: row.get(26)?,
        released_by: row.get(27)?,
        released_at: row.get(28)?,
    })
}

/// The statements of one change; the same as `SqliteStore::apply_in_transaction`.
fn apply(conn: &Connection, change: &Change) -> StoreResult<()> {
    let request = &change.request;
    let now = rows::millis(change.event.at);
    if let Some(key) = &change.dedup_key {
        if execute(conn, sql::DEDUP_KEY, &[&key.as_str(), &now])? == 0 {
            return Err(StoreError::Duplicate);
        }
    }
    let values = rows::RequestValues::new(request)?;
    let columns = values.changeable();
    let mut params: Vec<&dyn ToSql> = columns.iter().map(|param| param as &dyn ToSql).collect();
    params.push(&request.id);
    if execute(conn, sql::UPDATE_REQUEST, &params)? == 0 {
        return Err(StoreError::Conflict);
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
    if change.republish_homes.is_empty() {
        return Ok(());
    }
    let mut viewers = conn.prepare_cached(HOME_VIEWERS_AMONG)?;
    bind(&mut viewers, &[&rows::to_json(&change.republish_homes)?])?;
    let viewers: Vec<String> = viewers
        .raw_query()
        .mapped(|row| row.get(0))
        .collect::<rusqlite::Result<_>>()?;
    for user in viewers {
        let publish = Delivery::PublishHome { user };
        execute(conn, sql::PUBLISH_HOME, &[&rows::to_json(&publish)?, &now])?;
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

/// Which of the users in the JSON list `$1` use their Home tab; one statement for them all.
const HOME_VIEWERS_AMONG: &str = "SELECT user_id FROM home_viewers \
     WHERE user_id IN (SELECT value FROM json_each($1))";

/// Runs a cached statement; `params[i]` is bound to `$i+1`. Rows changed.
fn execute(conn: &Connection, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<usize> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, params)?;
    statement.raw_execute()
}

/// Binds `params[i]` to `$i+1`. SQLite numbers `$N` parameters in the order they first
/// appear, so this holds for statements whose `$N` first appear in order (checked for each
/// statement here by `parameters_are_numbered_in_order`).
fn bind(statement: &mut Statement<'_>, params: &[&dyn ToSql]) -> rusqlite::Result<()> {
    for (i, param) in params.iter().enumerate() {
        statement.raw_bind_parameter(i + 1, param)?;
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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{self, AccessLength, AccessRequest, Actor, App, Command, RequestDraft};

    /// The SQL that writes card payloads writes what serde writes (and the worker reads).
    #[test]
    fn card_payloads_written_in_sql_are_serde_deliveries() {
        let conn = Connection::open_in_memory().unwrap();
        let sql_payload = |sql: &str| -> String {
            conn.query_row(&format!("SELECT {sql}"), [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(
            sql_payload(rows::card_payload!("update_card", "7")),
            rows::to_json(&Delivery::UpdateCard { card_id: 7 }).unwrap()
        );
        assert_eq!(
            sql_payload(rows::card_payload!("post_card", "7")),
            rows::to_json(&Delivery::PostCard { card_id: 7 }).unwrap()
        );
    }

    /// A database with the schema, in memory.
    fn schema() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for migration in [
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/sqlite/0002_home_viewers.sql"),
            include_str!("../../migrations/sqlite/0003_outbox_indexes.sql"),
            include_str!("../../migrations/sqlite/0004_released.sql"),
        ] {
            conn.execute_batch(migration).unwrap();
        }
        conn
    }

    /// The first column of every row `sql` returns.
    fn column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// A pending request for an app without approvers, stored in `conn`.
    fn stored_request(conn: &Connection) -> AccessRequest {
        let app = App {
            slug: "figma".into(),
            name: "Figma".into(),
            admins: vec!["UADMIN1".into()],
            approvers: vec![],
            permissions: vec!["Editor".into()],
            groups: vec![],
            admin_channel: None,
        };
        let draft = RequestDraft {
            target_user: "UREQ".into(),
            requester: "UREQ".into(),
            permission: None,
            groups: vec![],
            comment: String::new(),
            access_length: AccessLength::Unlimited,
        };
        let mut request = domain::file_request(&app, draft, Utc::now())
            .unwrap()
            .request;
        let values = rows::RequestValues::new(&request).unwrap();
        let params = values.params();
        let params: Vec<&dyn ToSql> = params.iter().map(|param| param as &dyn ToSql).collect();
        let mut insert = conn
            .prepare(concat!(
                "INSERT INTO requests (",
                rows::request_values!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
            ))
            .unwrap();
        bind(&mut insert, &params).unwrap();
        insert.raw_execute().unwrap();
        request.id = conn.last_insert_rowid();
        request
    }

    /// Confirming `request`, keyed by `key`, as a job of a batch.
    fn confirm(request: &AccessRequest, key: &str) -> (Job, oneshot::Receiver<StoreResult<()>>) {
        let actor = Actor::User("UADMIN1".into());
        let decision =
            domain::decide(request, &actor, &Command::ConfirmProvisioning, Utc::now()).unwrap();
        let change = Change {
            request: decision.request,
            event: decision.event,
            new_cards: vec![],
            deliveries: vec![],
            republish_homes: vec![],
            dedup_key: Some(key.into()),
        };
        let (done, answer) = oneshot::channel();
        let job = Job::Apply {
            change: Box::new(change),
            done,
        };
        (job, answer)
    }

    /// A change that fails after its first write (its key is stored, then its version is
    /// stale) is undone alone: the batch is run again in savepoints and the rest commits.
    #[test]
    fn a_change_failing_halfway_is_undone_alone() {
        let mut conn = schema();
        let request = stored_request(&conn);
        let (first, first_answer) = confirm(&request, "click:1");
        let (stale, mut stale_answer) = confirm(&request, "click:2");
        let mut batch = vec![first, stale];

        commit(&mut conn, &mut batch).unwrap();

        assert!(batch.is_empty());
        let mut first_answer = first_answer;
        assert!(matches!(first_answer.try_recv(), Ok(Ok(()))));
        assert!(matches!(
            stale_answer.try_recv(),
            Ok(Err(StoreError::Conflict))
        ));
        assert_eq!(
            column::<String>(&conn, "SELECT key FROM processed_keys"),
            ["click:1"]
        );
        let (version, events): (i64, i64) = conn
            .query_row(
                "SELECT version, (SELECT count(*) FROM events) FROM requests",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((version, events), (request.version + 1, 1));
    }

    /// Refused changes write nothing, so a batch of them needs no savepoints; each still
    /// gets its own answer.
    #[test]
    fn a_batch_with_a_duplicate_key_commits_the_rest() {
        let mut conn = schema();
        let first = stored_request(&conn);
        let second = stored_request(&conn);
        let (job1, mut answer1) = confirm(&first, "click:1");
        let (job2, mut answer2) = confirm(&second, "click:1");
        let mut batch = vec![job1, job2];

        commit(&mut conn, &mut batch).unwrap();

        assert!(matches!(answer1.try_recv(), Ok(Ok(()))));
        assert!(matches!(answer2.try_recv(), Ok(Err(StoreError::Duplicate))));
        assert_eq!(
            column::<i64>(&conn, "SELECT version FROM requests ORDER BY id"),
            [first.version + 1, second.version]
        );
    }

    /// `bind` binds by position: each statement's `$N` must be SQLite's parameter N.
    #[test]
    fn parameters_are_numbered_in_order() {
        let conn = schema();
        let statements = [
            sql::DEDUP_KEY,
            sql::UPDATE_REQUEST,
            sql::REFRESH_CARDS,
            sql::INSERT_EVENT,
            READ_REQUEST,
            sql::INSERT_CARD,
            sql::INSERT_DELIVERY,
            sql::PUBLISH_HOME,
            HOME_VIEWERS_AMONG,
        ];
        for text in statements {
            let statement = conn.prepare(text).unwrap();
            for index in 1..=statement.parameter_count() {
                let expected = format!("${index}");
                assert_eq!(
                    statement.parameter_name(index),
                    Some(expected.as_str()),
                    "{text}"
                );
            }
        }
    }
}
