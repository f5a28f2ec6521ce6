//! The scheduler and the delivery worker survive a panic: it is logged and the loop starts
//! again. Five panics within a minute are one bug too many: `/readyz` says so with a 503 and
//! the app stops, for `main` to exit with 70.
//!
//! The panics come from the one thing every loop asks and the test may hand in: the clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use accessbot::app::Stopped;
use accessbot::clock::Clock;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Notify;

use crate::support::story::*;
use crate::support::test_app::TestApp;

/// The system clock, except that its first `panics` readings on the thread `on_thread` (any
/// thread when `None`) panic, the way a bug in a loop would.
struct PanickingClock {
    on_thread: Option<&'static str>,
    panics_left: AtomicUsize,
    /// Notified when the last planned panic happens.
    spent: Notify,
}

impl PanickingClock {
    fn new(on_thread: Option<&'static str>, panics: usize) -> Arc<PanickingClock> {
        Arc::new(PanickingClock {
            on_thread,
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
        let here = std::thread::current();
        let targeted = self.on_thread.is_none_or(|name| here.name() == Some(name));
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
        Utc::now()
    }
}

story! {
    async fn a_delivery_worker_that_panicked_is_restarted_and_delivers(env: StoryEnv) {
        // Four panics: one short of giving up.
        let clock = PanickingClock::new(Some("accessbot-worker"), 4);
        let app = TestApp::spawn_on_clock(env.db_url(), &env.slack, clock.clone()).await;
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
    async fn five_panics_within_a_minute_make_readyz_503_and_the_app_stop(env: StoryEnv) {
        let clock = PanickingClock::new(None, 5);
        let app = TestApp::spawn_on_clock(env.db_url(), &env.slack, clock.clone()).await;
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
