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
