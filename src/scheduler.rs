//! Timed work: access that has run out, reminders before it does, and reminders about
//! requests left waiting. Each step goes through the same once-only decision as a click,
//! so replicas running it at the same moment still act once.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::domain::{self, AccessRequest, Actor, Command};
use crate::service::{Service, ServiceError};
use crate::store::Store;

/// Slack retries an event for about an hour at most and a signed request is valid for five
/// minutes; keys of processed ones are kept well beyond that. Idempotency keys are swept
/// with them: they are ignored after `IDEMPOTENCY_KEY_LIFETIME` (a day) already, so
/// sweeping later changes no answer and keeps the table bounded.
const KEEP_PROCESSED_KEYS: Duration = Duration::days(2);
/// Finished deliveries are kept a while for inspection.
const KEEP_DONE_DELIVERIES: Duration = Duration::days(7);
/// Requests handled per kind and tick; the next tick continues.
const BATCH: u32 = 200;

pub struct Scheduler {
    service: Service,
    /// Where due work is found; every change still goes through the service.
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Assignees are reminded once a stage has waited this long.
    remind_after: Duration,
}

impl Scheduler {
    pub fn new(
        service: Service,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        remind_after: Duration,
    ) -> Scheduler {
        Scheduler {
            service,
            store,
            clock,
            remind_after,
        }
    }

    /// Ticks every `interval` until shut down.
    pub async fn run(self: Arc<Self>, interval: StdDuration, mut shutdown: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            if let Err(err) = self.run_once().await {
                tracing::error!(error = %err, "scheduled work failed");
            }
        }
    }

    /// Does everything due at the clock's `now`; returns how many requests changed.
    pub async fn run_once(&self) -> Result<usize, ServiceError> {
        let store = &self.store;
        let now = self.clock.now();
        let mut changed = 0;
        for request in store.due_expiries(now, BATCH).await? {
            changed += self.act(&request, Command::Expire, now).await?;
        }
        for request in store
            .expiring_before(now + Duration::days(1), BATCH)
            .await?
        {
            changed += self.act(&request, Command::RemindExpiry, now).await?;
        }
        for request in store.waiting_since(now - self.remind_after, BATCH).await? {
            changed += self.act(&request, Command::RemindAssignees, now).await?;
        }
        store
            .prune(now - KEEP_PROCESSED_KEYS, now - KEEP_DONE_DELIVERIES)
            .await?;
        Ok(changed)
    }

    /// 1 when the request changed; 0 when it is not due (the policy says so) or another
    /// replica or a click got there first.
    async fn act(
        &self,
        request: &AccessRequest,
        command: Command,
        now: DateTime<Utc>,
    ) -> Result<usize, ServiceError> {
        // Asked before the store is, so requests that are not due cost no decision.
        if !domain::allowed(request, &Actor::System, now).contains(command.action()) {
            return Ok(0);
        }
        match self.service.act(request.id, &Actor::System, command).await {
            Ok(_) => Ok(1),
            Err(ServiceError::Refused(_)) => Ok(0),
            Err(err) => Err(err),
        }
    }
}
