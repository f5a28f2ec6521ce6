//! Acknowledges each envelope and runs it through the same handlers as HTTP, each in a task
//! of its own.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::envelope::{ack, Delivery, Envelope};
use crate::http::slack::{on_command, on_event, on_interaction, Reply};
use crate::http::AppState;

/// How long an ack waits for a handler's response (view submissions, slash commands): Slack
/// gives 3 s for the ack, and the frame still has to travel. A handler slower than this
/// still finishes; its response is lost and the envelope is acknowledged bare.
const REPLY_DEADLINE: Duration = Duration::from_millis(2500);

#[derive(Clone)]
pub struct Dispatcher {
    pub(super) state: AppState,
}

impl Dispatcher {
    /// Acknowledges `envelope` on the connection it came from (`acks`) and handles it. The
    /// handler's reply goes in the ack only when Slack accepts one; otherwise the ack goes at
    /// once and the handler runs after it. `received` is when the frame arrived.
    pub fn dispatch(
        &self,
        envelope: Envelope,
        acks: &mpsc::UnboundedSender<Message>,
        received: Instant,
    ) {
        let Envelope {
            id,
            delivery,
            accepts_response_payload,
            retry_attempt,
        } = envelope;
        if retry_attempt > 0 {
            // Handled like the first delivery: the handlers' dedup keys make it a no-op when
            // the first was handled.
            tracing::debug!(envelope_id = %id, retry_attempt, "Slack redelivered an envelope");
        }
        let endpoint = delivery.endpoint();
        let state = self.state.clone();
        let acks = acks.clone();
        if !accepts_response_payload {
            let _ = acks.send(Message::text(ack(&id, None)));
            state.metrics.slack_ack(endpoint, received.elapsed());
            tokio::spawn(handle(state, delivery));
            return;
        }
        tokio::spawn(async move {
            let handling = tokio::spawn(handle(state.clone(), delivery));
            let reply = match tokio::time::timeout(REPLY_DEADLINE, handling).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => None,
                Err(_) => {
                    tracing::warn!(
                        envelope_id = %id,
                        "a handler took too long to answer in the ack; acknowledged without it"
                    );
                    None
                }
            };
            let _ = acks.send(Message::text(ack(&id, reply)));
            state.metrics.slack_ack(endpoint, received.elapsed());
        });
    }

    /// A frame that could not be parsed: logged (its type, never its content, which may hold
    /// user data), counted, and acknowledged when it has an id, since a redelivery would not
    /// parse any better.
    pub fn unparsed(
        &self,
        kind: &'static str,
        envelope_id: Option<String>,
        problem: &str,
        acks: &mpsc::UnboundedSender<Message>,
    ) {
        tracing::warn!(
            r#type = kind,
            envelope_id = envelope_id.as_deref().unwrap_or(""),
            problem,
            "a Socket Mode frame could not be parsed; it is not handled"
        );
        self.state.metrics.socket_unparsed(kind);
        if let Some(id) = envelope_id {
            let _ = acks.send(Message::text(ack(&id, None)));
        }
    }
}

/// Runs one delivery through the HTTP handlers, counting as a Slack request in hand (the
/// delivery worker yields to it). Errors are logged: the envelope is acknowledged already.
async fn handle(state: AppState, delivery: Delivery) -> Reply {
    let _in_hand = state.foreground.enter();
    let result = match delivery {
        Delivery::Event(event) => on_event(&state, event).await,
        Delivery::Interaction(interaction) => on_interaction(&state, interaction).await,
        Delivery::Command(command) => on_command(&state, command).await,
    };
    result.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "handling a Socket Mode envelope failed");
        None
    })
}
