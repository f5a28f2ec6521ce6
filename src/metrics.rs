//! What `/metrics` shows, on `prometheus-client`. Counters and histograms live in process
//! and are updated where things happen; the gauges of what the database holds are read at
//! scrape time, through [`Cached`] so that however often (and however many) scrapers ask,
//! the database computes them at most once per [`STATUS_TTL`].

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use crate::clock::Clock;
use crate::domain::Status;
use crate::store::StoreStats;

/// How long the database-derived gauges may be reused. Counting requests by status scans
/// the whole table, so a scraper polling every second must not cost a scan every second.
pub const STATUS_TTL: chrono::Duration = chrono::Duration::seconds(10);

/// The media type of what [`Metrics::render`] writes (OpenMetrics, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How one Slack Web API call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallOutcome {
    Ok,
    RateLimited,
    Transient,
    Failed,
}

impl CallOutcome {
    fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::RateLimited => "rate_limited",
            CallOutcome::Transient => "retryable_error",
            CallOutcome::Failed => "failed",
        }
    }
}

/// Which Slack endpoint of the bot a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackEndpoint {
    Events,
    Interactivity,
    Commands,
}

impl SlackEndpoint {
    /// The endpoint of a path under `/slack` (nested routers see the path with or without
    /// the prefix, so only the last segment counts).
    pub fn of_path(path: &str) -> Option<SlackEndpoint> {
        match path.rsplit('/').next()? {
            "events" => Some(SlackEndpoint::Events),
            "interactivity" => Some(SlackEndpoint::Interactivity),
            "commands" => Some(SlackEndpoint::Commands),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SlackEndpoint::Events => "events",
            SlackEndpoint::Interactivity => "interactivity",
            SlackEndpoint::Commands => "commands",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvelopeLabels {
    r#type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FromLabels {
    from: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Slack wants an answer within 3 s; 1 ms to about 4 s in doublings shows how close we are.
fn ack_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

/// A Web API call may take up to the client's 10 s timeout; 5 ms to about 10 s.
fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

pub struct Metrics {
    registry: Registry,
    slack_calls: Family<CallLabels, Counter>,
    slack_call_seconds: HistogramFamily<MethodLabels>,
    ack_seconds: HistogramFamily<EndpointLabels>,
    socket_unparsed: Family<EnvelopeLabels, Counter>,
    socket_connections: Counter,
    socket_reconnects: Counter,
    requests_closed: Family<FromLabels, Counter>,
    stages_unattended: Family<StageLabels, Counter>,
    removals_undeliverable: Counter,
    requests: Family<StatusLabels, Gauge>,
    calls_waiting: Gauge,
    calls_failed: Gauge,
    status_at: Gauge<f64, AtomicU64>,
    /// Held while one scrape sets the gauges and encodes, so that concurrent scrapes each
    /// show the values they read rather than a mix (nothing awaits under it).
    scrape: Mutex<()>,
    /// The database-derived gauges, shared by the scrapes of up to [`STATUS_TTL`].
    pub status: Cached<StoreStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "accessbot_requests",
            "Access requests by status",
            requests.clone(),
        );
        let slack_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "accessbot_slack_calls",
            "Slack Web API calls by method and outcome",
            slack_calls.clone(),
        );
        let slack_call_seconds: HistogramFamily<MethodLabels> =
            Family::new_with_constructor(call_histogram);
        registry.register_with_unit(
            "accessbot_slack_call_duration",
            "How long each Slack Web API call took, by method",
            Unit::Seconds,
            slack_call_seconds.clone(),
        );
        let ack_seconds: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(ack_histogram);
        registry.register_with_unit(
            "accessbot_slack_ack_duration",
            "How long the bot took to answer a request from Slack, by endpoint",
            Unit::Seconds,
            ack_seconds.clone(),
        );
        let socket_unparsed = Family::<EnvelopeLabels, Counter>::default();
        registry.register(
            "accessbot_socket_envelopes_unparsed",
            "Socket Mode frames the bot could not parse (acknowledged when they had an id, \
             not handled), by type",
            socket_unparsed.clone(),
        );
        let socket_connections = Counter::default();
        registry.register(
            "accessbot_socket_connections_opened",
            "Socket Mode connections opened (Slack said hello)",
            socket_connections.clone(),
        );
        let socket_reconnects = Counter::default();
        registry.register(
            "accessbot_socket_reconnects",
            "Socket Mode connections lost or refused and tried again after a backoff",
            socket_reconnects.clone(),
        );
        let requests_closed = Family::<FromLabels, Counter>::default();
        registry.register(
            "accessbot_requests_closed",
            "Requests an operator closed through the API, by the status they were closed from",
            requests_closed.clone(),
        );
        let stages_unattended = Family::<StageLabels, Counter>::default();
        registry.register(
            "accessbot_stages_unattended",
            "Stages of requests with nobody left to act: every card failed for good (people \
             deactivated or refused by Slack, no admin channel card posted), by stage",
            stages_unattended.clone(),
        );
        let removals_undeliverable = Counter::default();
        registry.register(
            "accessbot_removals_undeliverable",
            "Removals that reached nobody: every admin's card and the admin channel's (if any) \
             failed for good, so the access may stay until an operator acts",
            removals_undeliverable.clone(),
        );
        let calls_waiting = Gauge::default();
        registry.register(
            "accessbot_slack_calls_waiting",
            "Slack calls stored and not yet made (counted at every scrape)",
            calls_waiting.clone(),
        );
        let calls_failed = Gauge::default();
        registry.register(
            "accessbot_slack_calls_failed",
            "Slack calls that failed for good",
            calls_failed.clone(),
        );
        let status_at = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "accessbot_status_gauges_timestamp",
            "When accessbot_requests and accessbot_slack_calls_failed were counted, as Unix \
             time; they are reused for up to 10 s",
            Unit::Seconds,
            status_at.clone(),
        );
        Metrics {
            registry,
            slack_calls,
            slack_call_seconds,
            ack_seconds,
            socket_unparsed,
            socket_connections,
            socket_reconnects,
            requests_closed,
            stages_unattended,
            removals_undeliverable,
            requests,
            calls_waiting,
            calls_failed,
            status_at,
            scrape: Mutex::new(()),
            status: Cached::new(STATUS_TTL),
        }
    }

    /// Counts one Slack Web API call and how long it took.
    pub fn slack_call(&self, method: &'static str, outcome: CallOutcome, took: Duration) {
        self.slack_calls
            .get_or_create(&CallLabels {
                method,
                outcome: outcome.as_str(),
            })
            .inc();
        self.slack_call_seconds
            .get_or_create(&MethodLabels { method })
            .observe(took.as_secs_f64());
    }

    /// Records how long a request from Slack took to answer. On the click path: a read lock
    /// on the family's map and a short write to one histogram, nothing held across an await.
    pub fn slack_ack(&self, endpoint: SlackEndpoint, took: Duration) {
        self.ack_seconds
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a Socket Mode frame that could not be parsed; `kind` is its `type` as sent (cut
    /// short, so that a hostile server cannot grow the label set's memory without bound).
    pub fn socket_unparsed(&self, kind: &str) {
        let kind: String = kind.chars().take(40).collect();
        self.socket_unparsed
            .get_or_create(&EnvelopeLabels { r#type: kind })
            .inc();
    }

    /// Counts a Socket Mode connection that Slack greeted.
    pub fn socket_connected(&self) {
        self.socket_connections.inc();
    }

    /// Counts a Socket Mode reconnection after a loss or a refusal.
    pub fn socket_reconnect(&self) {
        self.socket_reconnects.inc();
    }

    /// Counts a request an operator closed, by the status it was closed from.
    pub fn request_closed(&self, from: Status) {
        self.requests_closed
            .get_or_create(&FromLabels {
                from: from.as_str(),
            })
            .inc();
    }

    /// Counts a stage with nobody left to act (`stage`: approval, provisioning, removal).
    pub fn stage_unattended(&self, stage: &'static str) {
        self.stages_unattended
            .get_or_create(&StageLabels { stage })
            .inc();
    }

    /// Counts a removal that could be delivered to nobody.
    pub fn removal_undeliverable(&self) {
        self.removals_undeliverable.inc();
    }

    /// The exposition of every metric, with the database's counts `status` (counted at
    /// `status_at`) and the `waiting` count read for this scrape.
    pub fn render(&self, status: &Timed<StoreStats>, waiting: i64) -> String {
        let _one_scrape = self
            .scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (request_status, count) in &status.value.requests_by_status {
            self.requests
                .get_or_create(&StatusLabels {
                    status: request_status.as_str(),
                })
                .set(*count);
        }
        self.calls_failed.set(status.value.deliveries_failed);
        self.status_at
            .set(status.at.timestamp_millis() as f64 / 1000.0);
        self.calls_waiting.set(waiting);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A value and when it was computed.
#[derive(Debug)]
pub struct Timed<T> {
    pub value: T,
    pub at: DateTime<Utc>,
}

/// A value recomputed at most once per `ttl` of the app's clock. Callers that arrive while
/// it is being computed wait for that computation and share its result, so however many
/// ask at once, one computation runs at a time. Errors are not kept: the next caller tries
/// again.
pub struct Cached<T> {
    // A tokio mutex because it is held across the computation's await; only scrapes take it.
    slot: tokio::sync::Mutex<Option<Arc<Timed<T>>>>,
    ttl: chrono::Duration,
}

impl<T> Cached<T> {
    pub fn new(ttl: chrono::Duration) -> Cached<T> {
        Cached {
            slot: tokio::sync::Mutex::new(None),
            ttl,
        }
    }

    /// The value computed less than `ttl` ago by `clock`, or a new one from `compute`.
    pub async fn get<E, F, Fut>(&self, clock: &dyn Clock, compute: F) -> Result<Arc<Timed<T>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut slot = self.slot.lock().await;
        // Read after the lock: a caller that waited for another's computation finds it fresh.
        let now = clock.now();
        if let Some(cached) = slot.as_ref() {
            let age = now.signed_duration_since(cached.at);
            // A clock set backwards makes the age negative; recompute rather than trust it.
            if age >= chrono::Duration::zero() && age < self.ttl {
                return Ok(cached.clone());
            }
        }
        // Stamped with the time before computing: the counts are at least that fresh.
        let fresh = Arc::new(Timed {
            value: compute().await?,
            at: now,
        });
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::TimeZone;
    use tokio::sync::Notify;

    use super::*;
    use crate::clock::ManualClock;

    fn clock() -> ManualClock {
        ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap())
    }

    /// A computation that counts its runs and answers the run's number.
    async fn counted(runs: &AtomicUsize) -> Result<usize, ()> {
        Ok(runs.fetch_add(1, Ordering::SeqCst) + 1)
    }

    #[tokio::test]
    async fn a_value_is_reused_until_ten_seconds_of_the_clock_have_passed() {
        let clock = clock();
        let runs = AtomicUsize::new(0);
        let cached = Cached::new(STATUS_TTL);
        assert_eq!(
            cached.get(&clock, || counted(&runs)).await.unwrap().value,
            1
        );
        clock.advance(chrono::Duration::milliseconds(9_999));
        assert_eq!(
            cached.get(&clock, || counted(&runs)).await.unwrap().value,
            1
        );
        clock.advance(chrono::Duration::milliseconds(1));
        assert_eq!(
            cached.get(&clock, || counted(&runs)).await.unwrap().value,
            2
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_clock_set_backwards_recomputes() {
        let clock = clock();
        let runs = AtomicUsize::new(0);
        let cached = Cached::new(STATUS_TTL);
        cached.get(&clock, || counted(&runs)).await.unwrap();
        clock.advance(chrono::Duration::seconds(-1));
        assert_eq!(
            cached.get(&clock, || counted(&runs)).await.unwrap().value,
            2
        );
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let clock = clock();
        let cached = Cached::<usize>::new(STATUS_TTL);
        let failed: Result<_, &str> = cached.get(&clock, || async { Err("down") }).await;
        assert!(failed.is_err());
        let runs = AtomicUsize::new(0);
        assert_eq!(
            cached.get(&clock, || counted(&runs)).await.unwrap().value,
            1
        );
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_computation() {
        let clock = clock();
        let runs = AtomicUsize::new(0);
        let release = Notify::new();
        let cached = Cached::new(STATUS_TTL);
        // The first caller's computation waits for `release`; join_all polls every caller
        // once before the releasing future runs again, so all of them are waiting by then.
        let slow = || async {
            let run = counted(&runs).await;
            release.notified().await;
            run
        };
        let callers = (0..10).map(|_| cached.get(&clock, slow));
        let releaser = async {
            tokio::task::yield_now().await;
            release.notify_one();
        };
        let (answers, ()) = tokio::join!(futures::future::join_all(callers), releaser);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| a.as_ref().unwrap().value == 1));
    }

    #[test]
    fn the_exposition_keeps_the_names_tests_and_dashboards_read() {
        let metrics = Metrics::new();
        metrics.slack_call(
            "chat.postMessage",
            CallOutcome::Ok,
            Duration::from_millis(30),
        );
        metrics.slack_ack(SlackEndpoint::Interactivity, Duration::from_millis(2));
        metrics.request_closed(crate::domain::Status::PendingDeprovisioning);
        metrics.request_closed(crate::domain::Status::PendingDeprovisioning);
        metrics.stage_unattended("removal");
        metrics.removal_undeliverable();
        let status = Timed {
            value: StoreStats {
                requests_by_status: vec![(crate::domain::Status::Provisioned, 3)],
                deliveries_waiting: 0,
                deliveries_failed: 2,
            },
            at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap(),
        };
        let text = metrics.render(&status, 5);
        for line in [
            "accessbot_requests{status=\"provisioned\"} 3",
            "accessbot_slack_calls_total{method=\"chat.postMessage\",outcome=\"ok\"} 1",
            "accessbot_slack_calls_waiting 5",
            "accessbot_slack_calls_failed 2",
            "accessbot_slack_call_duration_seconds_count{method=\"chat.postMessage\"} 1",
            "accessbot_slack_ack_duration_seconds_count{endpoint=\"interactivity\"} 1",
            "accessbot_slack_ack_duration_seconds_bucket{le=\"0.002\",endpoint=\"interactivity\"} 1",
            "accessbot_status_gauges_timestamp_seconds 1795770000.0",
            "accessbot_requests_closed_total{from=\"pending_deprovisioning\"} 2",
            "accessbot_stages_unattended_total{stage=\"removal\"} 1",
            "accessbot_removals_undeliverable_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
