//! The one thread that writes to SQLite: every write of the store is a job here.
//!
//! sqlx's SQLite driver ran each statement on its connection's own thread, so every
//! statement cost two cross-thread wake-ups, and a decision is eight of them; profiles
//! showed those hand-offs, not SQLite, setting the pace. Here one thread owns a connection
//! and runs every job queued meanwhile in one `BEGIN IMMEDIATE … COMMIT`. Each job stays
//! all-or-nothing, and one that fails (a duplicate key, a lost race) does not disturb the
//! others: most fail before their first write, and should one fail halfway the batch is
//! run again with each job in a savepoint of its own. Each caller is answered once the
//! shared commit is done.

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::execute;
use crate::store::{StoreError, StoreResult};

/// The most jobs one transaction takes; bounds how long the jobs queued behind it wait.
const MAX_BATCH: usize = 256;

/// Runs write jobs on the writing thread; it stops when this is dropped.
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writing thread on `conn`.
    pub(super) fn start(conn: Connection) -> StoreResult<Writer> {
        // The pages a decision touches stay cached instead of being read again from the
        // operating system (KiB). This cache fills as the data grows: it is most of the
        // process's memory on a large database.
        conn.pragma_update(None, "cache_size", -8_192)?;
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-commit".into())
            .spawn(move || run(conn, queue))
            .map_err(|err| StoreError::Write(format!("cannot start the writer: {err}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `work` in the next group commit and returns its result once that commit is
    /// done. `work` must write nothing when it fails; it may be run twice (the second time
    /// in a savepoint, when a neighbour failed halfway), so it only reads what it captured.
    pub(super) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let job = Box::new(Work {
            work,
            outcome: None,
            done,
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Write("the SQLite writer stopped".into())
}

/// A job of a batch, whatever its result type.
trait Job: Send {
    /// Runs the job and keeps its outcome; true when it succeeded (its writes stand).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller with the kept outcome.
    fn answer(self: Box<Self>);
    /// Answers the caller with an error: the batch could not be committed.
    fn fail(self: Box<Self>, message: &str);
}

struct Work<T, F> {
    work: F,
    outcome: Option<StoreResult<T>>,
    done: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Work<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        // A panic here would stop the thread every write goes through.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.work)(conn)))
            .unwrap_or_else(|_| Err(StoreError::Write("a write panicked".into())));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>) {
        let outcome = self
            .outcome
            .unwrap_or_else(|| Err(StoreError::Write("a write was not run".into())));
        // The caller may have gone away (its request was cancelled); the write stands.
        let _ = self.done.send(outcome);
    }

    fn fail(self: Box<Self>, message: &str) {
        let _ = self.done.send(Err(StoreError::Write(message.to_string())));
    }
}

/// Commits batches until the store is dropped (every sender is gone).
fn run(mut conn: Connection, mut queue: mpsc::UnboundedReceiver<Box<dyn Job>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        // Whatever arrived meanwhile joins this commit.
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
fn commit(conn: &mut Connection, batch: &mut Vec<Box<dyn Job>>) -> StoreResult<()> {
    if !commit_unguarded(conn, batch)? {
        commit_in_savepoints(conn, batch)?;
    }
    for job in batch.drain(..) {
        job.answer();
    }
    Ok(())
}

/// Runs the jobs one after another in one transaction and commits it; false, with nothing
/// committed, when a job failed after writing part of its work.
///
/// This is the common path: a failing job (a duplicate key, a lost race) fails before its
/// first write, so no savepoints are needed. Savepoints are not free: SQLite copies every
/// page a savepoint changes into its statement journal.
fn commit_unguarded(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> StoreResult<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in batch.iter_mut() {
        let before = tx.total_changes();
        if !job.run(&tx) && tx.total_changes() != before {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
    }
    tx.commit()?;
    Ok(true)
}

/// Runs each job in its own savepoint, so that one that fails halfway is undone alone, and
/// commits them together.
fn commit_in_savepoints(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Savepoint statements are cached: rusqlite's `Savepoint` parses them anew each time.
    for job in batch.iter_mut() {
        execute(&tx, "SAVEPOINT job", &[])?;
        if !job.run(&tx) {
            execute(&tx, "ROLLBACK TO job", &[])?;
        }
        execute(&tx, "RELEASE job", &[])?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::Utc;

    use super::super::writes;
    use super::*;
    use crate::domain::{self, AccessLength, AccessRequest, Actor, App, Command, RequestDraft};
    use crate::store::columns::{Write, REQUESTS};
    use crate::store::{sql, Change};

    /// A database with the schema, in memory: every migration, in order.
    pub(crate) fn schema() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut migrations: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        migrations.sort();
        for migration in migrations {
            conn.execute_batch(&std::fs::read_to_string(migration).unwrap())
                .unwrap();
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
            permissions: vec!["Editor".into()],
            ..App::default()
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
        let params = REQUESTS.params(&request, Write::Insert).unwrap();
        request.id = super::super::query_first(
            conn,
            &sql::INSERT_REQUEST,
            &super::super::with(&params, &[]),
            |row| Ok(row.get::<_, i64>("id")?),
        )
        .unwrap()
        .unwrap();
        request
    }

    /// Confirming `request`, keyed by `key`, as a job of a batch.
    fn confirm(
        request: &AccessRequest,
        key: &str,
    ) -> (Box<dyn Job>, oneshot::Receiver<StoreResult<()>>) {
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
        let job = Box::new(Work {
            work: move |conn: &Connection| writes::apply(conn, &change),
            outcome: None,
            done,
        });
        (job, answer)
    }

    /// A change that fails after its first write (its key is stored, then its version is
    /// stale) is undone alone: the batch is run again in savepoints and the rest commits.
    #[test]
    fn a_change_failing_halfway_is_undone_alone() {
        let mut conn = schema();
        let request = stored_request(&conn);
        let (first, mut first_answer) = confirm(&request, "click:1");
        let (stale, mut stale_answer) = confirm(&request, "click:2");
        let mut batch = vec![first, stale];

        commit(&mut conn, &mut batch).unwrap();

        assert!(batch.is_empty());
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

    /// A write that panics is answered with an error; the others of its batch commit.
    #[test]
    fn a_panicking_write_fails_alone() {
        let mut conn = schema();
        let request = stored_request(&conn);
        let (job, mut answer) = confirm(&request, "click:1");
        let (done, mut panicked) = oneshot::channel::<StoreResult<()>>();
        let panicking: Box<dyn Job> = Box::new(Work {
            work: |_: &Connection| -> StoreResult<()> { panic!("a bug") },
            outcome: None,
            done,
        });
        let mut batch = vec![panicking, job];

        commit(&mut conn, &mut batch).unwrap();

        assert!(matches!(panicked.try_recv(), Ok(Err(StoreError::Write(_)))));
        assert!(matches!(answer.try_recv(), Ok(Ok(()))));
    }
}
