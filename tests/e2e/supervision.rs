//! The scheduler and the delivery worker survive a panic: it is logged and the loop starts
//! again. Five panics within a minute are one bug too many: `/readyz` says so with a 503 and
//! the app stops, for `main` to exit with 70.
//!
//! The panics come from the one thing every loop asks and the test may hand in: the clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use accessbot::app::Stopped;
use accessbot::clock::{Clock, ManualClock};
use chrono::{DateTime, Duration as Minutes, Utc};
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Notify;

use crate::support::story::*;
use crate::support::test_app::TestApp;

/// Which threads' readings of the clock panic, by the thread's name.
type Targets = fn(Option<&str>) -> bool;

/// The delivery worker: it runs on a thread of its own.
const WORKER: Targets = |thread| thread == Some("accessbot-worker");
/// The scheduler: it runs on the test's runtime (so do HTTP handlers, which the stories call
/// only once the planned panics are over).
const SCHEDULER: Targets = |thread| thread != Some("accessbot-worker");
const ANY_LOOP: Targets = |_| true;

/// A manual clock, except that its first `panics` readings on the `targets` threads panic,
/// the way a bug in a loop would.
struct PanickingClock {
    time: ManualClock,
    targets: Targets,
    panics_left: AtomicUsize,
    /// Notified when the last planned panic happens.
    spent: Notify,
}

impl PanickingClock {
    fn new(targets: Targets, panics: usize) -> Arc<PanickingClock> {
        Arc::new(PanickingClock {
            time: ManualClock::new(t0()),
            targets,
            panics_left: AtomicUsize::new(panics),
            spent: Notify::new(),
        })
    }

    /// Returns once every planned panic has happened.
    async fn spent(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.spent.notified())
            .await
            .expect("the app's loops read the clock within 30 s");
    }
}

impl Clock for PanickingClock {
    fn now(&self) -> DateTime<Utc> {
        let targeted = (self.targets)(std::thread::current().name());
        let left = || {
            self.panics_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        };
        if targeted {
            if let Ok(before) = left() {
                if before == 1 {
                    self.spent.notify_one();
                }
                panic!("the test clock panics on purpose ({before} planned panics left)");
            }
        }
        self.time.now()
    }
}

story! {
    async fn a_delivery_worker_that_panicked_is_restarted_and_delivers(env: StoryEnv) {
        // Four panics: one short of giving up.
        let clock = PanickingClock::new(WORKER, 4);
        let app = TestApp::spawn_on_clock(env.db_url(), &env.slack, clock.clone(), &[]).await;
        clock.spent().await;

        put_app(&app, "github", github()).await;
        file(&app, "github", json!({})).await;
        card_of(&app.slack, REQUESTER).await;
        card_of(&app.slack, APPROVER).await;
        let (status, body) = app.get_text("/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.stop().await;
    }
}

story! {
    async fn a_scheduler_that_panicked_is_restarted_and_reminds(env: StoryEnv) {
        let clock = PanickingClock::new(SCHEDULER, 4);
        let vars = [("ACCESSBOT_REMINDER_AFTER", "1h")];
        let app = TestApp::spawn_on_clock(env.db_url(), &env.slack, clock.clone(), &vars).await;
        clock.spent().await;

        put_app(&app, "figma", figma(true, false)).await;
        let id = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        wait_card(&app.slack, APPROVER, "approve", id).await;
        clock.time.advance(Minutes::minutes(61));
        let nudge = "⏰ Still waiting for you: <@UREQUESTER>'s request for *Figma*";
        wait_dm_containing(&app.slack, APPROVER, nudge).await;
        app.stop().await;
    }
}

story! {
    async fn five_panics_within_a_minute_make_readyz_503_and_the_app_stop(env: StoryEnv) {
        let clock = PanickingClock::new(ANY_LOOP, 5);
        let app = TestApp::spawn_on_clock(env.db_url(), &env.slack, clock.clone(), &[]).await;
        clock.spent().await;

        // The fifth panic is counted just after it happens.
        eventually("/readyz to answer 503", || async {
            app.get_text("/readyz").await.0 == StatusCode::SERVICE_UNAVAILABLE
        })
        .await;
        let (status, body) = app.get_text("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("5 panics in background loops within 60 s"), "{body}");
        assert!(body.contains("the test clock panics on purpose"), "{body}");
        let (status, _) = app.get_text("/healthz").await;
        assert_eq!(status, StatusCode::OK, "the server still answers until it stops");
        assert_eq!(app.stops_by_itself().await, Stopped::TooManyPanics);
    }
}
