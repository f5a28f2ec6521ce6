//! Decisions on PostgreSQL, several to a transaction.
//!
//! Each commit waits for its WAL flush, and concurrent commits queue for the WAL lock; one
//! flush per decision set the pace of a replica. Here a few tasks per replica each take the
//! decisions queued meanwhile, lock their requests (in id order, so that batches of
//! different replicas cannot deadlock), decide each on the locked state and apply it, and
//! commit them together. Should the transaction fail, each decision of the batch is made
//! again in a transaction of its own, so one bad change cannot fail the others.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::postgres::apply_on;
use super::rows::{self, RequestRow};
use super::{Decide, Decided, StoreError, StoreResult};

/// Batches in flight per replica, each on a connection of its own.
const BATCHERS: usize = 4;

/// The most decisions one transaction takes; bounds how long their requests stay locked.
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
    /// Starts the batching tasks on the current runtime; they stop when this is dropped.
    pub(super) fn start(pool: &PgPool) -> DecisionBatches {
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..BATCHERS {
            tokio::spawn(run(pool.clone(), Arc::clone(&queue)));
        }
        DecisionBatches { jobs }
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
        super::ask(&self.jobs, job, stopped).await
    }
}

fn stopped() -> StoreError {
    StoreError::Write("the decision batches stopped".into())
}

async fn run(pool: PgPool, queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        {
            // One task gathers at a time, so that a batch takes everything waiting.
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        match decide_batch(&pool, &batch).await {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.done.send(outcome);
                }
            }
            Err(err) if batch.len() == 1 => {
                if let Some(job) = batch.pop() {
                    let _ = job.done.send(Err(err));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "a batch of decisions failed; deciding each alone");
                for job in batch {
                    let outcome = decide_batch(&pool, std::slice::from_ref(&job))
                        .await
                        .and_then(|mut outcomes| outcomes.pop().ok_or_else(stopped)?);
                    let _ = job.done.send(outcome);
                }
            }
        }
    }
}

/// Decides and applies every job of `batch` in one transaction; the outcome of each, or an
/// error when the transaction failed (then nothing was committed).
async fn decide_batch(pool: &PgPool, batch: &[Job]) -> StoreResult<Vec<StoreResult<Decided>>> {
    let mut ids: Vec<i64> = batch.iter().map(|job| job.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut tx = pool.begin().await?;
    let rows: Vec<RequestRow> = sqlx::query_as(LOCK_REQUESTS)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    let mut requests = HashMap::with_capacity(rows.len());
    for row in rows {
        let request = row.into_request()?;
        requests.insert(request.id, request);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let Some(request) = requests.get(&job.id) else {
            outcomes.push(Ok(Decided::NotFound));
            continue;
        };
        let decided = std::panic::catch_unwind(AssertUnwindSafe(|| (job.decide)(request.clone())))
            .map_err(|_| StoreError::Write("deciding a change panicked".into()));
        let mut change = match decided {
            Ok(Ok(change)) => change,
            Ok(Err(refusal)) => {
                outcomes.push(Ok(Decided::Refused(refusal)));
                continue;
            }
            Err(err) => {
                outcomes.push(Err(err));
                continue;
            }
        };
        change.dedup_key.clone_from(&job.key);
        match apply_on(&mut *tx, &change).await {
            Ok(()) => {
                // A later job of this batch on the same request decides on this state.
                requests.insert(job.id, change.request.clone());
                outcomes.push(Ok(Decided::Applied(Box::new(change.request))));
            }
            // Nothing was written: the key was seen before, or the version moved on.
            Err(err @ (StoreError::Duplicate | StoreError::Conflict)) => outcomes.push(Err(err)),
            Err(err) => return Err(err),
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// The requests `$1`, locked in id order until the batch commits.
const LOCK_REQUESTS: &str = concat!(
    "SELECT ",
    rows::request_columns!(),
    " FROM requests WHERE id = ANY($1) ORDER BY id FOR UPDATE"
);
