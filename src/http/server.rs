//! The HTTP server: hyper's HTTP/1 connections, each bounded in time, at most
//! [`MAX_CONNECTIONS`] at once, and a shutdown that drains them within a deadline.
//!
//! A client that is slow on purpose (headers a byte at a time, a body that never ends, a
//! thousand sockets left open) costs a task and a socket each, for a bounded time, and never
//! holds up a click from Slack or the end of the process.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::Router;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How long a client may take to send a request's headers, from their first byte.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body, from the end of its headers.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may wait for its next request (keep-alive), or for its first.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once. Beyond it new connections wait in the kernel's backlog until
/// one closes; each connection costs a task and a few kilobytes, so this bounds memory.
pub const MAX_CONNECTIONS: usize = 4096;

/// The bounds of the HTTP server; [`HttpLimits::default`] is what the bot runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_read: Duration,
    pub body: Duration,
    pub idle: Duration,
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read: HEADER_READ_TIMEOUT,
            body: BODY_TIMEOUT,
            idle: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Serves `router` on `listener` until `stopping` resolves with a deadline; then stops
/// accepting, lets every connection finish the request in hand and closes idle ones, and
/// returns once they are all closed or, at the deadline, after closing those still open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stopping: impl Future<Output = Instant>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (draining_tx, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut saturated = false;
    let lifted_at = (limits.max_connections / 10).max(1);
    tokio::pin!(stopping);
    let deadline = loop {
        while connections.try_join_next().is_some() {}
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                // A server at its cap frees and takes slots all the time: the episode ends
                // (and the next one warns again) only once a tenth of the slots are free.
                if saturated && permits.available_permits() + 1 >= lifted_at {
                    saturated = false;
                    tracing::info!("below the connection limit again: accepting connections");
                }
                permit
            }
            Err(_) => {
                if !saturated {
                    saturated = true;
                    tracing::warn!(
                        limit = limits.max_connections,
                        "connection limit reached: {} connections are open, new ones wait \
                         until one closes",
                        limits.max_connections
                    );
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        // Never closed; were it, serving could not go on.
                        Err(_) => break Instant::now(),
                    },
                    deadline = &mut stopping => break deadline,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    wait_after_accept_error(error).await;
                    continue;
                }
            },
            deadline = &mut stopping => break deadline,
        };
        let connection = serve_connection(stream, router.clone(), limits, draining.clone());
        connections.spawn(with_permit(connection, permit));
    };
    drop(listener);
    let _ = draining_tx.send(true);
    let drained = tokio::time::timeout_at(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still busy at the shutdown deadline are closed"
        );
        connections.shutdown().await;
    }
}

async fn with_permit(connection: impl Future<Output = ()>, _permit: OwnedSemaphorePermit) {
    connection.await
}

/// Errors of one connection (reset, aborted) are that connection's; others, such as too many
/// open files, would repeat at once: wait a little, as hyper's and axum's servers do.
async fn wait_after_accept_error(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; trying again in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection, until the client closes it, a bound is passed, or the server drains.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: HttpLimits,
    mut draining: watch::Receiver<bool>,
) {
    let head = Arc::new(HeadClock::default());
    let io = TokioIo::new(Watched {
        stream,
        head: head.clone(),
    });
    let requests = head.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let in_hand = requests.request_started();
        let request = request.map(|body| axum::body::Body::new(Deadline::new(body, limits.body)));
        let answer = router.clone().oneshot(request);
        async move {
            let answer = answer.await;
            drop(in_hand);
            answer
        }
    });
    // hyper's header timer runs from the moment a connection waits for a request, so it is
    // the idle timeout; the header timeout proper runs from the first byte (`HeadClock`).
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let overdue = head.overdue(limits.header_read);
    tokio::pin!(overdue);
    let mut drain_asked = *draining.borrow();
    if drain_asked {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, "connection closed");
                }
                return;
            }
            () = &mut overdue => {
                tracing::debug!(
                    timeout = ?limits.header_read,
                    "request headers not received in time: connection closed"
                );
                return;
            }
            changed = draining.changed(), if !drain_asked => {
                drain_asked = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// When the headers of the request being received started to arrive, if one is.
#[derive(Debug)]
struct HeadClock {
    /// Requests whose headers were read and whose answer is not ready yet.
    in_hand: AtomicUsize,
    /// Set by the first byte read while no request is in hand, cleared by a request.
    since: watch::Sender<Option<Instant>>,
}

impl Default for HeadClock {
    fn default() -> Self {
        HeadClock {
            in_hand: AtomicUsize::new(0),
            since: watch::Sender::new(None),
        }
    }
}

impl HeadClock {
    fn bytes_arrived(&self) {
        if self.in_hand.load(Ordering::Acquire) > 0 {
            return;
        }
        self.since.send_if_modified(|since| {
            let starts = since.is_none();
            if starts {
                *since = Some(Instant::now());
            }
            starts
        });
    }

    fn request_started(self: &Arc<Self>) -> InHand {
        self.in_hand.fetch_add(1, Ordering::AcqRel);
        self.since.send_replace(None);
        InHand(self.clone())
    }

    /// Resolves when a request's headers have been arriving for longer than `limit`.
    async fn overdue(&self, limit: Duration) {
        let mut since = self.since.subscribe();
        loop {
            let started = *since.borrow_and_update();
            let changed = match started {
                None => since.changed().await,
                Some(started) => tokio::select! {
                    () = tokio::time::sleep_until(started + limit) => return,
                    changed = since.changed() => changed,
                },
            };
            if changed.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// A request being answered (see [`HeadClock::request_started`]).
struct InHand(Arc<HeadClock>);

impl Drop for InHand {
    fn drop(&mut self) {
        self.0.in_hand.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket, telling its [`HeadClock`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    head: Arc<HeadClock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.head.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A request body that must be complete within its time; tower-http's `TimeoutBody` bounds
/// the wait for each frame only, which a client sending a byte now and then never reaches.
struct Deadline<B> {
    body: B,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<B> Deadline<B> {
    fn new(body: B, limit: Duration) -> Self {
        Deadline {
            body,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

/// The request body did not arrive within [`BODY_TIMEOUT`]; handlers answer 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(Duration);

impl<B> Body for Deadline<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_are_those_of_issue_15() {
        let limits = HttpLimits::default();
        assert_eq!(limits.header_read, Duration::from_secs(10));
        assert_eq!(limits.body, Duration::from_secs(30));
        assert_eq!(limits.idle, Duration::from_secs(60));
        assert!(limits.max_connections >= 4096);
    }

    #[test]
    fn the_header_clock_runs_from_the_first_byte_until_a_request_starts() {
        let head = Arc::new(HeadClock::default());
        let since = || *head.since.borrow();
        assert_eq!(since(), None, "an idle connection has no header clock");
        head.bytes_arrived();
        let first = since().expect("the first byte starts the clock");
        head.bytes_arrived();
        assert_eq!(since(), Some(first), "later bytes do not restart it");
        let in_hand = head.request_started();
        assert_eq!(since(), None, "complete headers stop it");
        head.bytes_arrived();
        assert_eq!(since(), None, "a body's bytes are not headers");
        drop(in_hand);
        head.bytes_arrived();
        assert!(since().is_some(), "the next request's bytes start it again");
    }
}
