//! Socket Mode (SPEC §8.3): with `SLACK_APP_TOKEN`, the bot opens WebSockets to Slack
//! through `apps.connections.open` instead of taking Slack's HTTP requests, so it needs no
//! inbound port and no signing secret.
//!
//! - `envelope.rs` parses frames (with the HTTP parsers) and writes acks;
//! - `dispatch.rs` acknowledges each envelope and runs the HTTP handlers on it;
//! - `connection.rs` is one WebSocket;
//! - `backoff.rs` spaces reconnections;
//! - this file keeps a connection open: it replaces a connection that Slack is about to
//!   refresh *before* closing it, reconnects after losses, and stops on `link_disabled`.

mod backoff;
mod connection;
mod dispatch;
mod envelope;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use url::{Host, Url};

use crate::http::AppState;
use crate::slack::client::{CallError, SlackApi};
use backoff::Backoff;
use connection::{ConnEvent, Connection};
use dispatch::Dispatcher;
use envelope::DisconnectReason;

/// Why Socket Mode cannot run; refused at start-up, or stopping it later.
#[derive(Debug, thiserror::Error)]
pub enum SocketModeError {
    #[error("SLACK_APP_TOKEN: Slack refused apps.connections.open: {0}")]
    Refused(String),
    #[error(
        "Slack handed out {0:?}: ws:// (no TLS) is accepted only when SLACK_API_URL is a \
         loopback address and so is the WebSocket's host; otherwise it must be wss://"
    )]
    Insecure(String),
    #[error("Slack handed out {0:?}, which is not a ws:// or wss:// URL")]
    NotWebSocket(String),
    #[error("cannot set up TLS for Socket Mode: {0}")]
    Tls(String),
}

/// Whether Socket Mode is still listening; `/readyz` reads it.
#[derive(Default)]
pub struct SocketStatus {
    stopped: watch::Sender<Option<String>>,
}

impl SocketStatus {
    /// Why Socket Mode stopped for good (`link_disabled`, a refused token); `None` while it
    /// runs or reconnects.
    pub fn stopped(&self) -> Option<String> {
        self.stopped.borrow().clone()
    }
}

/// The Socket Mode client. Its [`SocketMode::run`] loop is supervised like the worker's.
pub struct SocketMode {
    /// The Web API with the app-level token.
    api: SlackApi,
    /// `ws://` is allowed only towards a local fake: when `SLACK_API_URL` is loopback.
    api_is_loopback: bool,
    backoff: Duration,
    tls: Arc<rustls::ClientConfig>,
    dispatcher: Dispatcher,
    status: Arc<SocketStatus>,
    /// The URL opened at start-up, used by the first connection (it is good only briefly).
    first_url: Mutex<Option<String>>,
}

/// Why a connection could not be opened.
enum OpenError {
    /// Worth trying again after a wait.
    Failed(String),
    /// Never worth trying again: Socket Mode stops.
    Fatal(SocketModeError),
}

impl SocketMode {
    /// Checks the app token and the connection URL once, now, so that a wrong token or an
    /// unencrypted URL stops start-up with a clear message; a Slack that cannot be reached
    /// just now is only logged (the loop keeps trying).
    pub async fn start(
        api: SlackApi,
        api_is_loopback: bool,
        backoff: Duration,
        state: AppState,
        status: Arc<SocketStatus>,
    ) -> Result<SocketMode, SocketModeError> {
        let socket = SocketMode {
            api,
            api_is_loopback,
            backoff,
            tls: Arc::new(tls_config()?),
            dispatcher: Dispatcher { state },
            status,
            first_url: Mutex::new(None),
        };
        match socket.connection_url().await {
            Ok(url) => *socket.lock_first_url() = Some(url),
            Err(OpenError::Fatal(err)) => return Err(err),
            Err(OpenError::Failed(why)) => {
                tracing::warn!(error = %why, "Socket Mode: Slack cannot be reached yet; retrying");
            }
        }
        Ok(socket)
    }

    fn lock_first_url(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.first_url
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A fresh connection URL from `apps.connections.open`, checked.
    async fn connection_url(&self) -> Result<String, OpenError> {
        let url = match self.api.open_socket_connection().await {
            Ok(url) => url,
            Err(CallError::Permanent(code)) => {
                return Err(OpenError::Fatal(SocketModeError::Refused(code)))
            }
            Err(err) => return Err(OpenError::Failed(err.to_string())),
        };
        check_url(&url, self.api_is_loopback).map_err(OpenError::Fatal)?;
        Ok(url)
    }

    /// Opens connection `id`: the URL from start-up if still unused, or a fresh one.
    async fn open(
        &self,
        id: u64,
        events: &mpsc::UnboundedSender<ConnEvent>,
    ) -> Result<Connection, OpenError> {
        let first = self.lock_first_url().take();
        let url = match first {
            Some(url) => url,
            None => self.connection_url().await?,
        };
        let tls = url.starts_with("wss:").then(|| self.tls.clone());
        Connection::open(id, &url, tls, events.clone(), self.dispatcher.clone())
            .await
            .map_err(|err| OpenError::Failed(err.to_string()))
    }

    /// Keeps one connection open until `stop` is set or Slack disables Socket Mode.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.status.stopped().is_some() {
            return;
        }
        let metrics = self.dispatcher.state.metrics.clone();
        let mut backoff = Backoff::new(self.backoff);
        let (events_tx, mut events) = mpsc::unbounded_channel();
        // The connection in use, and the one replacing it (until its hello).
        let mut current: Option<Connection> = None;
        let mut next: Option<Connection> = None;
        let mut next_id = 0u64;
        // Set when the next attempt must wait first (after a failure or a refusal).
        let mut wait = false;
        loop {
            if *stop.borrow() {
                return;
            }
            if current.is_none() && next.is_none() {
                if wait {
                    metrics.socket_reconnect();
                    let pause = backoff.next_wait();
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return,
                    }
                }
                next_id += 1;
                match self.open(next_id, &events_tx).await {
                    Ok(connection) => next = Some(connection),
                    Err(OpenError::Failed(why)) => {
                        tracing::warn!(error = %why, "Socket Mode: cannot connect; retrying");
                        wait = true;
                        continue;
                    }
                    Err(OpenError::Fatal(err)) => return self.give_up(err.to_string()),
                }
            }
            let event = tokio::select! {
                event = events.recv() => event,
                _ = stop.changed() => return,
            };
            let Some(event) = event else { return };
            let is = |conn: &Option<Connection>, id: u64| conn.as_ref().is_some_and(|c| c.id == id);
            match event {
                ConnEvent::Hello(id) if is(&next, id) => {
                    backoff.reset();
                    wait = false;
                    metrics.socket_connected();
                    tracing::info!(connection = id, "Socket Mode: connected");
                    // The new connection is ready; only now does the old one close.
                    if let Some(old) = current.take() {
                        old.close();
                    }
                    current = next.take();
                }
                ConnEvent::Disconnect(id, reason) if is(&current, id) || is(&next, id) => {
                    match reason {
                        DisconnectReason::LinkDisabled => {
                            return self.give_up(
                                "Slack disabled Socket Mode for the app (link_disabled)".into(),
                            );
                        }
                        DisconnectReason::TooManyWebsockets => {
                            tracing::warn!(
                                connection = id,
                                "Socket Mode: the app holds too many connections; backing off"
                            );
                            if is(&next, id) {
                                next = None;
                            } else {
                                current = None;
                            }
                            wait = true;
                        }
                        DisconnectReason::Warning
                        | DisconnectReason::RefreshRequested
                        | DisconnectReason::Other(_) => {
                            tracing::info!(connection = id, ?reason, "Socket Mode: refreshing");
                            if next.is_none() {
                                next_id += 1;
                                match self.open(next_id, &events_tx).await {
                                    Ok(connection) => next = Some(connection),
                                    // The old connection still works until Slack closes it.
                                    Err(OpenError::Failed(why)) => {
                                        tracing::warn!(error = %why, "Socket Mode: cannot open a replacement yet");
                                    }
                                    Err(OpenError::Fatal(err)) => {
                                        return self.give_up(err.to_string())
                                    }
                                }
                            }
                        }
                    }
                }
                ConnEvent::Closed(id, why) => {
                    if is(&current, id) {
                        tracing::warn!(connection = id, reason = %why, "Socket Mode: connection lost");
                        current = None;
                        wait = next.is_none();
                    } else if is(&next, id) {
                        tracing::warn!(connection = id, reason = %why, "Socket Mode: new connection lost");
                        next = None;
                        wait = current.is_none();
                    }
                }
                // Events of connections already replaced.
                ConnEvent::Hello(_) | ConnEvent::Disconnect(..) => {}
            }
        }
    }

    /// Stops Socket Mode for good; HTTP keeps serving.
    fn give_up(&self, reason: String) {
        tracing::error!(
            reason = %reason,
            "Socket Mode stopped: the bot no longer hears Slack over Socket Mode; HTTP keeps serving"
        );
        self.status.stopped.send_replace(Some(reason));
    }
}

/// `wss://` always; `ws://` only to a loopback host while `SLACK_API_URL` is loopback too
/// (a local fake): an unencrypted WebSocket would carry every envelope in the clear.
fn check_url(url: &str, api_is_loopback: bool) -> Result<(), SocketModeError> {
    let parsed = Url::parse(url).map_err(|_| SocketModeError::NotWebSocket(url.into()))?;
    match parsed.scheme() {
        "wss" => Ok(()),
        "ws" if api_is_loopback && is_loopback_host(&parsed) => Ok(()),
        "ws" => Err(SocketModeError::Insecure(without_query(&parsed))),
        _ => Err(SocketModeError::NotWebSocket(without_query(&parsed))),
    }
}

/// The URL without its query: Slack's carries a ticket, which is a credential.
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// rustls on ring with the webpki roots, as the Web API client uses.
fn tls_config() -> Result<rustls::ClientConfig, SocketModeError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| SocketModeError::Tls(err.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_is_accepted_only_between_loopback_hosts() {
        assert!(check_url("wss://wss-primary.slack.com/link/?ticket=t", false).is_ok());
        assert!(check_url("ws://127.0.0.1:9/link", true).is_ok());
        assert!(check_url("ws://localhost:9/link", true).is_ok());
        let err = check_url("ws://127.0.0.1:9/link?ticket=secret", false).unwrap_err();
        assert!(err.to_string().contains("ws://"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(check_url("ws://192.0.2.1:9/link", true).is_err());
        assert!(check_url("https://slack.com/link", true).is_err());
    }

    #[test]
    fn the_tls_config_builds() {
        tls_config().unwrap();
    }
}
