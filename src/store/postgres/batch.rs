//! Decisions on PostgreSQL, several to a statement.
//!
//! Each commit waits for its WAL flush, and every round trip for two busy cores to wake its
//! ends; one transaction per decision set the pace of a replica. Here one thread per
//! replica takes the decisions queued meanwhile, reads their requests without locks, decides
//! each, and applies the changes in one statement that commits by itself (see `apply.rs`):
//! two round trips a batch. The statement applies a change only on the version it was
//! decided on and fails as a whole otherwise; the jobs left undecided are then made again
//! one by one, each under a row lock, so a click that lost a race is decided on the state
//! that won.
//!
//! The thread has its own connection and runtime: every click waits for its batch, so the
//! batch's answers from the server must not queue behind the HTTP tasks of the shared
//! runtime (measured in bench/analysis.md).

use std::collections::{HashMap, HashSet};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};

use super::apply::apply_all;
use super::CONNECT_TIMEOUT;
use crate::domain::AccessRequest;
use crate::store::columns::REQUESTS;
use crate::store::{sql, Change, Decide, Decided, StoreError, StoreResult};

/// How the batching thread's connection shows in `pg_stat_activity`.
const APPLICATION_NAME: &str = "accessbot-decisions";

/// The most decisions one batch takes; bounds one statement's arrays and a click's wait.
const MAX_BATCH: usize = 32;

pub(super) struct DecisionBatches {
    jobs: mpsc::UnboundedSender<Job>,
}

struct Job {
    id: i64,
    key: Option<String>,
    decide: Decide,
    done: oneshot::Sender<StoreResult<Decided>>,
}

impl DecisionBatches {
    /// Starts the batching thread, which connects to the database with `options` when the
    /// first decision comes; it stops when this is dropped.
    ///
    /// One batch is in flight per replica: the decisions that arrive while it commits form
    /// the next, bigger one. Each statement and commit costs the server more than the rows
    /// it writes, so more batches in flight decided fewer per second (bench/analysis.md).
    pub(super) fn start(options: PgConnectOptions) -> StoreResult<DecisionBatches> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| StoreError::Write(format!("cannot start the decisions: {err}")))?;
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("pg-decisions".into())
            .spawn(move || runtime.block_on(run(options, queue)))
            .map_err(|err| StoreError::Write(format!("cannot start the decisions: {err}")))?;
        Ok(DecisionBatches { jobs })
    }

    /// Does what `Store::decide` does, in the next batch.
    pub(super) async fn decide(
        &self,
        id: i64,
        key: Option<String>,
        decide: Decide,
    ) -> StoreResult<Decided> {
        let job = |done| Job {
            id,
            key,
            decide,
            done,
        };
        crate::store::ask(&self.jobs, job, stopped).await
    }
}

fn stopped() -> StoreError {
    StoreError::Write("the decision batches stopped".into())
}

async fn run(options: PgConnectOptions, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut conn = Reconnecting::new(options);
    while let Some(first) = queue.recv().await {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        decide_batch(&mut conn, batch).await;
    }
    conn.close().await;
}

/// Decides every job of `batch` and answers it: all together, and the jobs left undecided
/// one by one. When the database cannot be reached the jobs not decided yet fail at once,
/// rather than each waiting up to `CONNECT_TIMEOUT` for a connection of its own.
async fn decide_batch(conn: &mut Reconnecting, batch: Vec<Job>) {
    let mut outcomes: Vec<Option<StoreResult<Decided>>> = batch.iter().map(|_| None).collect();
    let mut unreachable = match decide_unlocked(conn, &batch, &mut outcomes).await {
        Ok(()) | Err(StoreError::Conflict) => None,
        Err(StoreError::Unavailable(reason)) => Some(reason),
        Err(err) => {
            tracing::warn!(error = %err, "a batch of decisions failed; deciding the rest one by one");
            None
        }
    };
    for (job, outcome) in batch.into_iter().zip(outcomes) {
        let outcome = match (outcome, &unreachable) {
            (Some(outcome), _) => outcome,
            (None, Some(reason)) => Err(StoreError::Unavailable(reason.clone())),
            (None, None) => {
                let outcome = decide_locked(conn, &job).await;
                if let Err(StoreError::Unavailable(reason)) = &outcome {
                    unreachable = Some(reason.clone());
                }
                outcome
            }
        };
        let _ = job.done.send(outcome);
    }
}

/// The batching thread's connection, opened when first needed and again after an error
/// that may have broken it.
struct Reconnecting {
    options: PgConnectOptions,
    conn: Option<PgConnection>,
}

impl Reconnecting {
    fn new(options: PgConnectOptions) -> Reconnecting {
        Reconnecting {
            // This connection runs the same two statements over and over, with arrays of
            // any length: left to choose, the server planned the read afresh for most
            // batches.
            options: options
                .application_name(APPLICATION_NAME)
                .options([("plan_cache_mode", "force_generic_plan")]),
            conn: None,
        }
    }

    /// Runs `work` on the connection; after any error but a decision's conflict the
    /// connection is closed, so the next work starts on a fresh one.
    async fn with<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut PgConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let connect = tokio::time::timeout(CONNECT_TIMEOUT, self.options.connect());
                let conn = match connect.await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(err)) => return Err(StoreError::Unavailable(err.to_string())),
                    Err(_) => return Err(StoreError::Unavailable("no answer in time".into())),
                };
                self.conn.insert(conn)
            }
        };
        let result = work(conn).await;
        if result
            .as_ref()
            .is_err_and(|err| !matches!(err, StoreError::Conflict))
        {
            self.close().await;
        }
        result
    }

    async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}

/// Decides the jobs of `batch` on their requests as read, without locks; each round's
/// statement commits by itself, and fails as a whole if one of its requests changed since
/// it was read. Stops at the first round that fails, leaving its jobs and those of later
/// rounds undecided.
async fn decide_unlocked(
    conn: &mut Reconnecting,
    batch: &[Job],
    outcomes: &mut [Option<StoreResult<Decided>>],
) -> StoreResult<()> {
    conn.with(async |conn| decide_rounds(conn, &sql::PG_READ_REQUESTS, batch, outcomes).await)
        .await
}

/// Decides `job` on its request locked until the decision commits, so nothing can change
/// under it; for a job whose batch met a change made meanwhile, or failed.
async fn decide_locked(conn: &mut Reconnecting, job: &Job) -> StoreResult<Decided> {
    let mut outcome = [None];
    conn.with(async |conn| {
        let mut tx = conn.begin().await?;
        decide_rounds(
            &mut tx,
            &sql::PG_LOCK_REQUESTS,
            std::slice::from_ref(job),
            &mut outcome,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    })
    .await?;
    let [outcome] = outcome;
    outcome.unwrap_or_else(|| Err(stopped()))
}

/// Reads the requests of `batch` with `read`, decides each job and applies the changes,
/// in rounds: a request changes at most once a round (one statement, see `apply.rs`), so a
/// later job on it waits for the next round and decides on the state the earlier one left.
/// Changes go in request id order, so that statements of different replicas take their
/// row locks in one order.
async fn decide_rounds(
    conn: &mut PgConnection,
    read: &str,
    batch: &[Job],
    outcomes: &mut [Option<StoreResult<Decided>>],
) -> StoreResult<()> {
    let mut ids: Vec<i64> = batch.iter().map(|job| job.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = sqlx::query(read).bind(&ids).fetch_all(&mut *conn).await?;
    let mut requests = HashMap::with_capacity(rows.len());
    for row in rows {
        let request = REQUESTS.read(&row)?;
        requests.insert(request.id, request);
    }
    let mut waiting: Vec<usize> = (0..batch.len()).collect();
    waiting.sort_by_key(|&at| batch[at].id);
    while !waiting.is_empty() {
        let mut later = Vec::new();
        let mut changed = HashSet::new();
        let mut deciders = Vec::new();
        let mut changes = Vec::new();
        for at in waiting {
            let job = &batch[at];
            if changed.contains(&job.id) {
                later.push(at);
                continue;
            }
            let Some(request) = requests.get(&job.id) else {
                outcomes[at] = Some(Ok(Decided::NotFound));
                continue;
            };
            match decide(job, request.clone()) {
                Ok(mut change) => {
                    change.dedup_key.clone_from(&job.key);
                    changed.insert(job.id);
                    deciders.push(at);
                    changes.push(change);
                }
                Err(outcome) => outcomes[at] = Some(outcome),
            }
        }
        let applied = apply_all(&mut *conn, &changes).await?;
        for ((at, change), result) in deciders.into_iter().zip(changes).zip(applied) {
            outcomes[at] = Some(result.map(|()| {
                requests.insert(change.request.id, change.request.clone());
                Decided::Applied(Box::new(change.request))
            }));
        }
        waiting = later;
    }
    Ok(())
}

/// The job's change to `request`, or what became of the job when there is none.
fn decide(job: &Job, request: AccessRequest) -> Result<Change, StoreResult<Decided>> {
    match crate::store::decide_caught(&job.decide, request) {
        Ok(Ok(change)) => Ok(change),
        Ok(Err(refusal)) => Err(Ok(Decided::Refused(refusal))),
        Err(err) => Err(Err(err)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use sqlx::postgres::PgSslMode;
    use tokio::net::TcpListener;

    use super::*;
    use crate::domain::Refusal;

    /// A server that hangs up on every connection; counts the connections.
    async fn hanging_up() -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        (port, connections)
    }

    #[tokio::test]
    async fn a_batch_fails_at_once_when_the_database_cannot_be_reached() {
        let (port, connections) = hanging_up().await;
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .ssl_mode(PgSslMode::Disable);
        let mut conn = Reconnecting::new(options);
        let decide: Decide = Arc::new(|_| Err(Refusal::NothingChanged));
        let (batch, answers): (Vec<Job>, Vec<_>) = (1..=3)
            .map(|id| {
                let (done, answer) = oneshot::channel();
                let job = Job {
                    id,
                    key: None,
                    decide: Arc::clone(&decide),
                    done,
                };
                (job, answer)
            })
            .unzip();

        decide_batch(&mut conn, batch).await;

        for answer in answers {
            assert!(matches!(answer.await, Ok(Err(StoreError::Unavailable(_)))));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }
}
