//! Builds and runs the whole application; used by `main` and by every test.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::config::is_loopback_url;
use crate::config::Config;
use crate::foreground::Foreground;
use crate::http::server;
pub use crate::http::server::HttpLimits;
use crate::http::{self, AppState, SlackState};
use crate::metrics::Metrics;
use crate::scheduler::Scheduler;
use crate::service::{Service, ServiceError};
use crate::slack::client::SlackApi;
use crate::socket_mode::{SocketMode, SocketModeError, SocketStatus};
use crate::store::{self, StoreError};
use crate::supervisor::Supervisor;
use crate::worker::Worker;

/// How long the shutdown may take, from the signal: HTTP requests in hand and the Slack calls
/// the worker holds finish meanwhile; whatever is still going at the end is dropped (claimed
/// calls then wait for their lease to expire).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Of [`SHUTDOWN_TIMEOUT`], what HTTP's drain leaves to the worker. The worker stops after
/// HTTP: the database connections it opened live on its runtime and may be serving the last
/// requests; and a slow upload must not leave it no time to give back its claims.
const WORKER_SHUTDOWN_SHARE: Duration = Duration::from_secs(2);
/// How long `/readyz` answers 503 once the background loops kept panicking, before the
/// shutdown starts: so a load balancer's probe sees it and stops sending traffic here
/// before the port closes.
const UNREADY_BEFORE_EXIT: Duration = Duration::from_secs(5);

/// Why [`App::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The shutdown future resolved.
    OnRequest,
    /// The scheduler or the delivery worker panicked too often (5 times within 60 s);
    /// restarting them again would not help. `main` exits with 70 (EX_SOFTWARE).
    TooManyPanics,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("DATABASE_URL: {0}")]
    Database(#[from] StoreError),
    #[error("Socket Mode: {0}")]
    SocketMode(#[from] SocketModeError),
    #[error("ACCESSBOT_ADDR: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct App {
    listener: TcpListener,
    state: AppState,
    /// `None` once a [`Stepper`] drives the timed work instead of `run`'s background loops.
    worker: Option<Worker>,
    scheduler: Arc<Scheduler>,
    scheduler_interval: Duration,
    http_limits: HttpLimits,
    /// Set when `SLACK_APP_TOKEN` is: the Socket Mode client, run beside HTTP.
    socket_mode: Option<Arc<SocketMode>>,
}

/// Drives the scheduler and the delivery worker of an [`App`] that runs without its
/// background loops, one step at a time, so a simulation knows when timed work is over.
pub struct Stepper {
    scheduler: Arc<Scheduler>,
    worker: Worker,
    /// Never set: a step stops when nothing is due, not on shutdown.
    stop: watch::Receiver<bool>,
    _stop: watch::Sender<bool>,
}

/// What one [`Stepper::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stepped {
    /// Requests the scheduler changed.
    pub changed: usize,
    /// Deliveries attempted (made, postponed or failed).
    pub attempted: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("scheduled work failed: {0}")]
    Scheduler(#[from] ServiceError),
    #[error("delivering Slack calls failed: {0}")]
    Delivery(#[from] StoreError),
}

impl Stepper {
    /// Does everything due at the clock's now: the scheduler's work once, then every due
    /// Slack call (and the calls those make due, such as card updates) until none is due.
    /// Calls postponed past now wait for a later step.
    pub async fn step(&self) -> Result<Stepped, StepError> {
        let changed = self.scheduler.run_once().await?;
        let attempted = self.worker.deliver_due(&self.stop).await?;
        Ok(Stepped { changed, attempted })
    }
}

impl App {
    /// Opens the database (running migrations), binds the listener and wires everything.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<App, StartupError> {
        let store = store::connect(&config.database_url).await?;
        let metrics = Arc::new(Metrics::default());
        let slack = config.slack.as_ref().map(|credentials| SlackState {
            api: SlackApi::new(
                &config.slack_api_url,
                &credentials.bot_token,
                metrics.clone(),
            ),
            signing_secret: credentials.signing_secret.as_deref().map(Arc::from),
        });
        if slack.is_none() {
            tracing::warn!(
                "SLACK_BOT_TOKEN, or both SLACK_SIGNING_SECRET and SLACK_APP_TOKEN, are not set: \
                 the Slack endpoints answer 503 and Slack calls wait until they are set"
            );
        }
        let deliveries_waiting = Arc::new(Notify::new());
        let service = Service::new(store.clone(), clock.clone(), deliveries_waiting.clone());
        let foreground = Arc::new(Foreground::default());
        let user_refresh = chrono::Duration::from_std(config.user_refresh)
            .unwrap_or_else(|_| chrono::Duration::days(1));
        let worker = Worker::new(
            store.clone(),
            slack.as_ref().map(|s| s.api.clone()),
            clock.clone(),
            foreground.clone(),
            metrics.clone(),
            user_refresh,
        );
        let remind_after = chrono::Duration::from_std(config.remind_after)
            .unwrap_or_else(|_| chrono::Duration::days(1));
        let scheduler = Arc::new(Scheduler::new(
            service.clone(),
            store.clone(),
            clock.clone(),
            remind_after,
        ));
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let state = AppState {
            service,
            slack,
            api_token: config.api_token.as_deref().map(Arc::from),
            metrics_token: config.metrics_token.as_deref().map(Arc::from),
            metrics,
            deliveries_waiting,
            foreground,
            supervisor: Arc::new(Supervisor::default()),
            socket: None,
        };
        let api = state.slack.as_ref().map(|slack| slack.api.clone());
        let (state, socket_mode) = match (&config.socket_mode, api) {
            (Some(socket), Some(api)) => {
                let status = Arc::new(SocketStatus::default());
                let state = AppState {
                    socket: Some(status.clone()),
                    ..state
                };
                let client = SocketMode::start(
                    api.with_token(&socket.app_token),
                    is_loopback_url(&config.slack_api_url),
                    socket.backoff,
                    state.clone(),
                    status,
                )
                .await?;
                (state, Some(Arc::new(client)))
            }
            _ => (state, None),
        };
        Ok(App {
            listener,
            state,
            worker: Some(worker),
            scheduler,
            scheduler_interval: config.scheduler_interval,
            http_limits: HttpLimits::default(),
            socket_mode,
        })
    }

    /// Serves with other bounds than [`HttpLimits::default`]: for tests that would otherwise
    /// wait out the real timeouts.
    #[doc(hidden)]
    pub fn set_http_limits(&mut self, limits: HttpLimits) {
        self.http_limits = limits;
    }

    /// Hands the scheduler and the delivery worker to the caller: `run` then serves without
    /// its background loops, and nothing timed happens until [`Stepper::step`].
    pub fn stepper(&mut self) -> Option<Stepper> {
        let worker = self.worker.take()?;
        let (stop_tx, stop) = watch::channel(false);
        Some(Stepper {
            scheduler: self.scheduler.clone(),
            worker,
            stop,
            _stop: stop_tx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` resolves, then stops accepting, finishes in-flight requests
    /// and lets the worker finish what it holds, all within [`SHUTDOWN_TIMEOUT`]. The
    /// scheduler and the worker are restarted when they panic; when they panic too often,
    /// `/readyz` answers 503 and the app stops as if `shutdown` had resolved.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<Stopped> {
        let supervisor = self.state.supervisor.clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        let background = match self.worker {
            Some(worker) => {
                let interval = self.scheduler_interval;
                let wake = self.state.deliveries_waiting.clone();
                let worker =
                    supervise_worker(supervisor.clone(), worker, wake, interval, stop_rx.clone());
                let scheduler = supervise_scheduler(
                    supervisor.clone(),
                    self.scheduler,
                    interval,
                    stop_rx.clone(),
                );
                Some((
                    run_aside("accessbot-worker", worker)?,
                    tokio::spawn(scheduler),
                ))
            }
            None => None,
        };
        let socket_mode = self.socket_mode.map(|socket| {
            tokio::spawn(supervise_socket_mode(
                supervisor.clone(),
                socket,
                stop_rx.clone(),
            ))
        });
        let router = http::router(self.state);
        tracing::info!(addr = %self.listener.local_addr()?, "accessbot is listening");
        let gave_up = supervisor.clone();
        let (deadline_tx, deadline) = watch::channel(None);
        let stopping = async {
            tokio::select! {
                _ = shutdown => {}
                _ = async {
                    gave_up.given_up().await;
                    tokio::time::sleep(UNREADY_BEFORE_EXIT).await;
                } => {}
            }
            tracing::info!("shutting down");
            let deadline = tokio::time::Instant::now() + SHUTDOWN_TIMEOUT;
            deadline_tx.send_replace(Some(deadline));
            deadline - WORKER_SHUTDOWN_SHARE
        };
        server::serve(self.listener, router, self.http_limits, stopping).await;
        let deadline = deadline
            .borrow()
            .unwrap_or_else(|| tokio::time::Instant::now() + SHUTDOWN_TIMEOUT);
        let _ = stop_tx.send(true);
        if let Some(socket_mode) = socket_mode {
            // It stops at once on the signal: its connections are dropped, and Slack
            // redelivers what was not acknowledged to another replica or after a restart.
            let _ = tokio::time::timeout_at(deadline, socket_mode).await;
        }
        if let Some((worker, scheduler)) = background {
            let stopped = tokio::time::timeout_at(deadline, async {
                let _ = scheduler.await;
                let _ = worker.await;
            })
            .await;
            if stopped.is_err() {
                tracing::warn!(
                    "the delivery worker or the scheduler did not stop in time; claimed Slack \
                     calls wait for their lease to expire"
                );
            }
        }
        Ok(match supervisor.gave_up() {
            Some(_) => Stopped::TooManyPanics,
            None => Stopped::OnRequest,
        })
    }
}

/// The delivery worker's loop, started again whenever it panics (see `supervisor`).
async fn supervise_worker(
    supervisor: Arc<Supervisor>,
    worker: Worker,
    wake: Arc<Notify>,
    interval: Duration,
    stop: watch::Receiver<bool>,
) {
    let run = || worker.run(wake.clone(), interval, stop.clone());
    supervisor.supervise("delivery worker", run).await;
}

/// The Socket Mode client's loop, started again whenever it panics (see `supervisor`).
async fn supervise_socket_mode(
    supervisor: Arc<Supervisor>,
    socket: Arc<SocketMode>,
    stop: watch::Receiver<bool>,
) {
    let run = || socket.clone().run(stop.clone());
    supervisor.supervise("Socket Mode client", run).await;
}

/// The scheduler's loop, started again whenever it panics (see `supervisor`).
async fn supervise_scheduler(
    supervisor: Arc<Supervisor>,
    scheduler: Arc<Scheduler>,
    interval: Duration,
    stop: watch::Receiver<bool>,
) {
    let run = || scheduler.clone().run(interval, stop.clone());
    supervisor.supervise("scheduler", run).await;
}

/// Runs `task` on a runtime of its own, on a thread of its own; the receiver answers when it
/// is done. The delivery worker runs so: its SQLite transactions hold the process's write
/// turn from `BEGIN` to `COMMIT`, and on the shared runtime each step of one waited behind
/// every Slack request in hand, which stalled the group commit of clicks for milliseconds.
fn run_aside(
    name: &str,
    task: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            runtime.block_on(task);
            let _ = done.send(());
        })?;
    Ok(finished)
}
