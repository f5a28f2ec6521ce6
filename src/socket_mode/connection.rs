//! One Socket Mode WebSocket: reads frames, hands envelopes to the dispatcher the moment
//! they arrive (it acknowledges and handles each in a task of its own, so one slow handler
//! delays nothing), writes the acks, pings, and reports hello, disconnects and its end.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

use super::dispatch::Dispatcher;
use super::envelope::{parse_frame, DisconnectReason, Frame};

/// Slack's hello must come this soon after the handshake, or the connection is given up.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The client pings this often …
const PING_EVERY: Duration = Duration::from_secs(10);
/// … and a connection that sent nothing at all (not even a pong) for this long is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// How long the TCP and WebSocket handshakes may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After our close frame, how long the server gets to close: Slack may never close the TCP
/// connection after the close handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest frame accepted; Slack's envelopes (a modal's whole state at most) are far
/// smaller, and tungstenite's default of 64 MiB is too generous a buffer for a peer.
const MAX_FRAME: usize = 4 << 20;

/// What a connection tells the loop that owns it.
#[derive(Debug)]
pub enum ConnEvent {
    Hello(u64),
    Disconnect(u64, DisconnectReason),
    Closed(u64, String),
}

#[derive(Debug, thiserror::Error)]
#[error("the WebSocket handshake failed: {0}")]
pub struct ConnectError(String);

/// A live connection; dropping it tears it down at once, [`Connection::close`] politely.
pub struct Connection {
    pub id: u64,
    writer: mpsc::UnboundedSender<Message>,
    tasks: Option<[AbortHandle; 2]>,
}

impl Connection {
    /// Connects to `url` and starts reading and writing; events go to `events`.
    pub async fn open(
        id: u64,
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        events: mpsc::UnboundedSender<ConnEvent>,
        dispatcher: Dispatcher,
    ) -> Result<Connection, ConnectError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        let connector = tls.map_or(Connector::Plain, Connector::Rustls);
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            url,
            Some(config),
            true,
            Some(connector),
        );
        let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| ConnectError("timed out".into()))?
            .map_err(|err| ConnectError(err.to_string()))?;
        let (mut sink, mut stream) = socket.split();
        let (writer, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let write = tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || closing {
                    break;
                }
            }
        });
        let acks = writer.clone();
        let read = tokio::spawn(async move {
            let opened = Instant::now();
            let mut greeted = false;
            let mut last_heard = Instant::now();
            let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
            let why = loop {
                let hello_by = opened + HELLO_TIMEOUT;
                let message = tokio::select! {
                    message = stream.next() => message,
                    _ = ping.tick() => {
                        if last_heard.elapsed() > SILENCE_LIMIT {
                            break "no frame or pong for 30 s".to_string();
                        }
                        let _ = acks.send(Message::Ping(Default::default()));
                        continue;
                    }
                    _ = tokio::time::sleep_until(hello_by), if !greeted => {
                        break "no hello within 10 s".to_string();
                    }
                };
                last_heard = Instant::now();
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        break format!("closed by Slack ({frame:?})");
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => break format!("broken: {err}"),
                    None => break "ended".to_string(),
                };
                match parse_frame(text.as_str()) {
                    Frame::Hello => {
                        greeted = true;
                        let _ = events.send(ConnEvent::Hello(id));
                    }
                    Frame::Disconnect(reason) => {
                        let _ = events.send(ConnEvent::Disconnect(id, reason));
                    }
                    Frame::Envelope(envelope) => dispatcher.dispatch(envelope, &acks, last_heard),
                    Frame::Unparsed {
                        kind,
                        envelope_id,
                        problem,
                    } => dispatcher.unparsed(kind, envelope_id, &problem, &acks),
                }
            };
            let _ = events.send(ConnEvent::Closed(id, why));
        });
        Ok(Connection {
            id,
            writer,
            tasks: Some([read.abort_handle(), write.abort_handle()]),
        })
    }

    /// Sends a close frame, and tears the connection down if the server has not closed it
    /// within [`CLOSE_TIMEOUT`]. Envelopes that arrive meanwhile are still handled.
    pub fn close(mut self) {
        let _ = self.writer.send(Message::Close(None));
        if let Some(tasks) = self.tasks.take() {
            tokio::spawn(async move {
                tokio::time::sleep(CLOSE_TIMEOUT).await;
                for task in tasks {
                    task.abort();
                }
            });
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in self.tasks.iter().flatten() {
            task.abort();
        }
    }
}
