//! Keeps the background loops (the scheduler, the delivery worker) alive through panics,
//! and gives up when they keep panicking.
//!
//! A loop that panicked once, on one bad row or one surprise from Slack, is worth restarting:
//! everything it works on is in the database. A loop that panics again and again will not heal
//! by being restarted; the process had better stop and say so, so that it is noticed.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;
use tokio::time::Instant;

/// Panics (across every supervised loop) that make the supervisor give up …
const PANIC_LIMIT: usize = 5;
/// … when they all happen within this long.
const PANIC_WINDOW: Duration = Duration::from_secs(60);

/// The times of the latest panics, at most `limit` of them.
#[derive(Debug)]
struct PanicWindow {
    limit: usize,
    within: Duration,
    recent: VecDeque<Instant>,
}

impl PanicWindow {
    fn new(limit: usize, within: Duration) -> PanicWindow {
        PanicWindow {
            limit,
            within,
            recent: VecDeque::with_capacity(limit),
        }
    }

    /// Notes a panic at `at`; true when it makes `limit` panics within `within`.
    fn record(&mut self, at: Instant) -> bool {
        if self.recent.len() == self.limit {
            self.recent.pop_front();
        }
        self.recent.push_back(at);
        self.recent.len() == self.limit
            && self
                .recent
                .front()
                .is_some_and(|first| at.duration_since(*first) < self.within)
    }
}

/// Restarts loops that panic, counts their panics together, and gives up after too many.
pub struct Supervisor {
    panics: Mutex<PanicWindow>,
    /// Why the supervisor gave up, once it has.
    gave_up: watch::Sender<Option<String>>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor {
            panics: Mutex::new(PanicWindow::new(PANIC_LIMIT, PANIC_WINDOW)),
            gave_up: watch::Sender::new(None),
        }
    }
}

impl Supervisor {
    /// Runs the loop `start` makes until it returns; when it panics, logs the panic and
    /// starts it again, unless the supervisor has given up (then returns).
    pub async fn supervise<F, Fut>(&self, name: &str, mut start: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        while self.gave_up().is_none() {
            // Unwind safety: a loop keeps no state of its own worth trusting across a panic;
            // it is started afresh, and what it shares (the store, the clock) is built to be
            // used from many tasks at once.
            let Err(panic) = AssertUnwindSafe(async { start().await })
                .catch_unwind()
                .await
            else {
                return;
            };
            let message = panic_message(panic.as_ref());
            tracing::error!(task = name, panic = message, "a background loop panicked");
            if self.record_panic() {
                let reason = format!(
                    "{} panics in background loops within {} s, the last in the {name}: {message}",
                    PANIC_LIMIT,
                    PANIC_WINDOW.as_secs(),
                );
                tracing::error!("giving up: {reason}");
                self.gave_up.send_replace(Some(reason));
                return;
            }
            tracing::warn!(task = name, "restarting the background loop");
        }
    }

    /// Why the supervisor gave up; `None` while it has not.
    pub fn gave_up(&self) -> Option<String> {
        self.gave_up.borrow().clone()
    }

    /// Resolves once the supervisor has given up.
    pub async fn given_up(&self) {
        let mut gave_up = self.gave_up.subscribe();
        let _ = gave_up.wait_for(Option::is_some).await;
    }

    /// True when this panic is one too many.
    fn record_panic(&self) -> bool {
        self.panics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .record(Instant::now())
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(a panic without a message)"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A loop that panics its first `panics` runs, then returns; counts its runs.
    fn flaky(panics: usize, runs: &AtomicUsize) -> impl FnMut() -> futures::future::Ready<()> + '_ {
        move || {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            assert!(run >= panics, "panic number {} on purpose", run + 1);
            futures::future::ready(())
        }
    }

    #[tokio::test]
    async fn a_loop_that_panics_is_restarted_until_it_returns() {
        let supervisor = Supervisor::default();
        let runs = AtomicUsize::new(0);
        supervisor.supervise("flaky loop", flaky(3, &runs)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "three panics, then a run that returned"
        );
        assert_eq!(supervisor.gave_up(), None);
    }

    #[tokio::test]
    async fn a_loop_that_returns_is_not_restarted() {
        let supervisor = Supervisor::default();
        let runs = AtomicUsize::new(0);
        supervisor.supervise("quiet loop", flaky(0, &runs)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn five_quick_panics_make_the_supervisor_give_up_and_say_why() {
        let supervisor = Supervisor::default();
        let runs = AtomicUsize::new(0);
        supervisor
            .supervise("broken loop", flaky(usize::MAX, &runs))
            .await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            5,
            "not restarted after the fifth panic"
        );
        let reason = supervisor.gave_up().expect("the supervisor gave up");
        assert!(reason.contains("5 panics"), "{reason}");
        assert!(reason.contains("broken loop"), "{reason}");
        assert!(reason.contains("panic number 5 on purpose"), "{reason}");
        supervisor.given_up().await;
    }

    #[tokio::test]
    async fn panics_of_different_loops_count_together() {
        let supervisor = Arc::new(Supervisor::default());
        let (first, second) = (AtomicUsize::new(0), AtomicUsize::new(0));
        // Three panics here and two there: the fifth, in the second loop, is one too many.
        supervisor.supervise("first loop", flaky(3, &first)).await;
        supervisor
            .supervise("second loop", flaky(usize::MAX, &second))
            .await;
        assert_eq!(second.load(Ordering::SeqCst), 2);
        let reason = supervisor.gave_up().expect("the supervisor gave up");
        assert!(reason.contains("second loop"), "{reason}");
    }

    #[tokio::test]
    async fn a_supervisor_that_gave_up_starts_no_loop() {
        let supervisor = Supervisor::default();
        supervisor
            .supervise("broken loop", flaky(usize::MAX, &AtomicUsize::new(0)))
            .await;
        let runs = AtomicUsize::new(0);
        supervisor.supervise("late loop", flaky(0, &runs)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn five_panics_within_a_minute_are_too_many() {
        let start = Instant::now();
        let mut window = PanicWindow::new(5, Duration::from_secs(60));
        for second in [0, 10, 20, 30] {
            assert!(!window.record(start + Duration::from_secs(second)));
        }
        assert!(window.record(start + Duration::from_secs(59)));
    }

    #[test]
    fn panics_spread_over_more_than_a_minute_are_not_too_many() {
        let start = Instant::now();
        let mut window = PanicWindow::new(5, Duration::from_secs(60));
        // One every 15 s, for ten minutes: never five within 60 s.
        for n in 0..40 {
            assert!(
                !window.record(start + Duration::from_secs(15 * n)),
                "panic {n} made too many"
            );
        }
    }

    #[test]
    fn a_burst_after_a_quiet_spell_counts_only_the_burst() {
        let start = Instant::now();
        let mut window = PanicWindow::new(5, Duration::from_secs(60));
        assert!(!window.record(start));
        assert!(!window.record(start + Duration::from_secs(1)));
        let later = start + Duration::from_secs(600);
        for second in 0..4 {
            assert!(
                !window.record(later + Duration::from_secs(second)),
                "{second}"
            );
        }
        assert!(window.record(later + Duration::from_secs(4)));
    }
}
