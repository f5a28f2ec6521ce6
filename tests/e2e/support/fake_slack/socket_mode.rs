//! A fake Socket Mode server on loopback `ws://`. `apps.connections.open` (with
//! [`APP_TOKEN`]) hands out its URL; each connection gets `hello`, then whatever the test
//! pushes, shaped like Slack's envelopes. It records every connection (when it opened, said
//! hello and closed, and who closed it) and every ack with its time; it can send
//! `disconnect` (refresh, `too_many_websockets`, `link_disabled`), drop a connection without
//! a close, and redeliver envelopes that were never acknowledged on the next connection,
//! with `retry_attempt` counted up, as Slack does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// The app-level token `apps.connections.open` accepts.
pub const APP_TOKEN: &str = "xapp-1-test-app-token";

/// What the fake does with the next connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    /// `hello`, then envelopes.
    Hello,
    /// `disconnect` with this reason instead of `hello`, then a close.
    Refuse(&'static str),
}

/// One connection as the fake saw it.
#[derive(Debug, Clone)]
pub struct SocketConn {
    pub id: usize,
    pub opened: Instant,
    /// When `hello` was sent (`None` when the connection was refused).
    pub greeted: Option<Instant>,
    pub closed: Option<Instant>,
    /// The client sent a close frame (rather than the fake closing or dropping it).
    pub closed_by_client: bool,
}

/// An acknowledgement received.
#[derive(Debug, Clone)]
pub struct Ack {
    pub envelope_id: String,
    pub payload: Option<Value>,
    pub connection: usize,
    pub at: Instant,
}

enum Command {
    Send(String),
    /// Ends the connection without a close frame: the TCP connection just goes.
    Drop,
    /// Sends the frame and drops the connection before reading anything more.
    SendThenDrop(String),
}

#[derive(Default)]
struct State {
    conns: Vec<SocketConn>,
    senders: Vec<mpsc::UnboundedSender<Command>>,
    acks: Vec<Ack>,
    /// Envelopes sent and not acknowledged yet, in order, with their connection.
    unacked: Vec<(Value, usize)>,
    /// Every envelope sent, as first sent.
    sent: Vec<Value>,
    /// What the next connections get instead of `hello`.
    greetings: VecDeque<Greeting>,
    next_envelope: u64,
    tickets: u64,
}

struct Inner {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    addr: SocketAddr,
    /// Handed out instead of the fake's own URL when set (to test refusals).
    url_override: Mutex<Option<String>>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

/// The handle tests hold; the server stops when the last clone goes.
#[derive(Clone)]
pub struct SocketModeFake {
    inner: Arc<Inner>,
    _server: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SocketModeFake {
    pub(super) async fn start() -> SocketModeFake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Socket Mode server");
        let addr = listener.local_addr().expect("its address");
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changes: watch::channel(0).0,
            addr,
            url_override: Mutex::new(None),
        });
        let accepting = inner.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(accepting.clone(), stream));
            }
        });
        SocketModeFake {
            inner,
            _server: Arc::new(AbortOnDrop(server)),
        }
    }

    /// The URL `apps.connections.open` answers now: a fresh ticket each time.
    pub(super) fn connection_url(&self) -> String {
        if let Some(url) = self.inner.url_override.lock().unwrap().clone() {
            return url;
        }
        let ticket = {
            let mut state = self.inner.state();
            state.tickets += 1;
            state.tickets
        };
        format!(
            "ws://{}/link/?ticket=t{ticket}&app_id=A0ACCESS01",
            self.inner.addr
        )
    }

    /// Makes `apps.connections.open` hand out `url` instead.
    pub fn hand_out(&self, url: &str) {
        *self.inner.url_override.lock().unwrap() = Some(url.to_string());
    }

    /// What the next connection gets instead of a plain `hello`.
    pub fn greet_next(&self, greeting: Greeting) {
        self.inner.state().greetings.push_back(greeting);
    }

    pub fn connections(&self) -> Vec<SocketConn> {
        self.inner.state().conns.clone()
    }

    pub fn acks(&self) -> Vec<Ack> {
        self.inner.state().acks.clone()
    }

    /// The id of the newest connection that said hello and is still open.
    pub fn live(&self) -> Option<usize> {
        self.inner
            .state()
            .conns
            .iter()
            .rev()
            .find(|c| c.greeted.is_some() && c.closed.is_none())
            .map(|c| c.id)
    }

    /// Waits until `condition` holds on the fake's state.
    pub async fn wait<F>(&self, what: &str, condition: F)
    where
        F: Fn(&[SocketConn], &[Ack]) -> bool,
    {
        let mut changes = self.inner.changes.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            changes.borrow_and_update();
            {
                let state = self.inner.state();
                if condition(&state.conns, &state.acks) {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                let state = self.inner.state();
                panic!(
                    "fake Socket Mode: {what} did not happen; connections {:?}, acks {:?}",
                    state.conns, state.acks
                );
            }
        }
    }

    /// Waits until `count` connections in all have said hello; returns the newest open one.
    pub async fn wait_greeted(&self, count: usize) -> usize {
        self.wait(&format!("{count} greeted connections"), |conns, _| {
            conns.iter().filter(|c| c.greeted.is_some()).count() >= count
        })
        .await;
        self.live().expect("a live connection")
    }

    /// Waits for the ack of `envelope_id`.
    pub async fn wait_ack(&self, envelope_id: &str) -> Ack {
        self.wait(&format!("the ack of {envelope_id}"), |_, acks| {
            acks.iter().any(|a| a.envelope_id == envelope_id)
        })
        .await;
        self.acks()
            .into_iter()
            .find(|a| a.envelope_id == envelope_id)
            .expect("acked")
    }

    /// Sends `frame` as it is (any JSON or text) on connection `conn`.
    pub fn send_raw(&self, conn: usize, frame: String) {
        let state = self.inner.state();
        let _ = state.senders[conn].send(Command::Send(frame));
    }

    /// Sends an envelope of `kind` with `payload` on connection `conn`; returns its id.
    pub fn push(&self, conn: usize, kind: &str, payload: Value) -> String {
        let envelope = self.envelope(conn, kind, payload);
        self.send_raw(conn, envelope.to_string());
        envelope["envelope_id"].as_str().unwrap().to_string()
    }

    /// Sends an envelope on `conn` and drops the connection at once, before any ack can be
    /// read: the envelope is redelivered on the next connection.
    pub fn push_then_drop(&self, conn: usize, kind: &str, payload: Value) -> String {
        let envelope = self.envelope(conn, kind, payload);
        let state = self.inner.state();
        let _ = state.senders[conn].send(Command::SendThenDrop(envelope.to_string()));
        envelope["envelope_id"].as_str().unwrap().to_string()
    }

    fn envelope(&self, conn: usize, kind: &str, payload: Value) -> Value {
        {
            let mut state = self.inner.state();
            state.next_envelope += 1;
            let id = format!("env-{:04}-57d6a792", state.next_envelope);
            // Slack takes a response in the ack for modal submissions and slash commands.
            let accepts = kind == "slash_commands" || payload["type"] == "view_submission";
            let mut envelope = json!({
                "envelope_id": id,
                "payload": payload,
                "type": kind,
                "accepts_response_payload": accepts,
            });
            if kind == "events_api" {
                envelope["retry_attempt"] = json!(0);
                envelope["retry_reason"] = json!("");
            }
            state.unacked.push((envelope.clone(), conn));
            state.sent.push(envelope.clone());
            envelope
        }
    }

    /// Sends the same envelope again on `conn` as Slack's retry `attempt` would.
    pub fn redeliver(&self, conn: usize, envelope_id: &str, attempt: u64) {
        let frame = {
            let state = self.inner.state();
            let mut frame = state
                .sent
                .iter()
                .find(|e| e["envelope_id"] == envelope_id)
                .cloned()
                .unwrap_or_else(|| panic!("no envelope {envelope_id}"));
            frame["retry_attempt"] = json!(attempt);
            frame["retry_reason"] = json!("timeout");
            frame
        };
        self.send_raw(conn, frame.to_string());
    }

    /// Sends `disconnect` with `reason` on `conn` (the connection stays open).
    pub fn disconnect(&self, conn: usize, reason: &str) {
        let frame = json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "applink-fake"},
        });
        self.send_raw(conn, frame.to_string());
    }

    /// Drops `conn` abruptly: no close frame, no more reads (acks in flight are lost).
    pub fn drop_connection(&self, conn: usize) {
        let state = self.inner.state();
        let _ = state.senders[conn].send(Command::Drop);
    }
}

/// One connection: handshake, greeting, then frames both ways until either side ends it.
async fn serve(inner: Arc<Inner>, stream: tokio::net::TcpStream) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (tx, mut commands) = mpsc::unbounded_channel();
    let (id, greeting) = {
        let mut state = inner.state();
        let id = state.conns.len();
        state.conns.push(SocketConn {
            id,
            opened: Instant::now(),
            greeted: None,
            closed: None,
            closed_by_client: false,
        });
        state.senders.push(tx);
        (id, state.greetings.pop_front().unwrap_or(Greeting::Hello))
    };
    inner.changed();
    if let Greeting::Refuse(reason) = greeting {
        let frame =
            json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}});
        let _ = socket.send(Message::text(frame.to_string())).await;
        let _ = socket.close(None).await;
        inner.state().conns[id].closed = Some(Instant::now());
        inner.changed();
        return;
    }
    let hello = json!({
        "type": "hello",
        "num_connections": 1,
        "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": "A0ACCESS01"},
    });
    // Taken before the send: once `hello` is on the wire the bot may close its old
    // connection, and the fake must not record that close as earlier than this hello.
    let hello_sent = Instant::now();
    if socket.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    // Envelopes never acknowledged on earlier connections come again, as Slack's retries.
    let redeliver: Vec<Value> = {
        let mut state = inner.state();
        state.conns[id].greeted = Some(hello_sent);
        let mut again = Vec::new();
        let state = &mut *state;
        for (envelope, conn) in state.unacked.iter_mut() {
            if *conn != id && state.conns[*conn].closed.is_some() {
                let attempt = envelope["retry_attempt"].as_u64().unwrap_or(0) + 1;
                envelope["retry_attempt"] = json!(attempt);
                envelope["retry_reason"] = json!("timeout");
                *conn = id;
                again.push(envelope.clone());
            }
        }
        again
    };
    inner.changed();
    for envelope in redeliver {
        let _ = socket.send(Message::text(envelope.to_string())).await;
    }
    let mut closed_by_client = false;
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send(frame)) => {
                    if socket.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                }
                Some(Command::SendThenDrop(frame)) => {
                    let _ = socket.send(Message::text(frame)).await;
                    break;
                }
                Some(Command::Drop) | None => break,
            },
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let Ok(ack) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                    let Some(envelope_id) = ack["envelope_id"].as_str() else { continue };
                    let mut state = inner.state();
                    state.unacked.retain(|(e, _)| e["envelope_id"] != envelope_id);
                    state.acks.push(Ack {
                        envelope_id: envelope_id.to_string(),
                        payload: ack.get("payload").cloned(),
                        connection: id,
                        at: Instant::now(),
                    });
                    drop(state);
                    inner.changed();
                }
                Some(Ok(Message::Close(_))) => {
                    closed_by_client = true;
                    // Answer the close as a polite server does.
                    let _ = socket.close(None).await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    let mut state = inner.state();
    state.conns[id].closed = Some(Instant::now());
    state.conns[id].closed_by_client = closed_by_client;
    drop(state);
    inner.changed();
}
