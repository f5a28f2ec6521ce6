//! Socket Mode frames from Slack, parsed at the edge with the same parsers as HTTP; and the
//! acknowledgements that go back.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::slack::SlashCommand;
use crate::metrics::SlackEndpoint;
use crate::slack::events::{parse_event, SlackEvent};
use crate::slack::payload::{parse_interaction_json, Interaction};

/// One text frame from Slack.
#[derive(Debug)]
pub enum Frame {
    /// The first frame of every connection: it is ready.
    Hello,
    /// Slack is about to close (or refuses) this connection.
    Disconnect(DisconnectReason),
    /// Something to acknowledge and handle.
    Envelope(Envelope),
    /// Anything the bot cannot read. It is logged and counted; when it has an id it is also
    /// acknowledged, since a redelivery would not parse any better.
    Unparsed {
        /// The frame's `type`, as one of a few fixed labels (the metric's label set stays small).
        kind: &'static str,
        envelope_id: Option<String>,
        problem: String,
    },
}

/// Why Slack sent `disconnect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// A refresh comes in about 10 s.
    Warning,
    /// Open a new connection now; this one closes soon.
    RefreshRequested,
    /// Socket Mode was turned off for the app: stop.
    LinkDisabled,
    /// The app holds Slack's limit of connections: back off.
    TooManyWebsockets,
    /// A reason this client does not know; treated as a refresh.
    Other(String),
}

/// An envelope the bot can handle.
#[derive(Debug)]
pub struct Envelope {
    pub id: String,
    pub delivery: Delivery,
    /// Slack takes a response in the ack (a view submission's `response_action`, a slash
    /// command's message): the handler's reply is awaited before acknowledging.
    pub accepts_response_payload: bool,
    /// 0 for a first delivery; Slack's retries count up.
    pub retry_attempt: u64,
}

/// What an envelope carries, parsed as the HTTP endpoints parse it.
#[derive(Debug)]
pub enum Delivery {
    Event(SlackEvent),
    Interaction(Interaction),
    Command(SlashCommand),
}

impl Delivery {
    /// The HTTP endpoint the same delivery would have come to (for the ack latency metric).
    pub fn endpoint(&self) -> SlackEndpoint {
        match self {
            Delivery::Event(_) => SlackEndpoint::Events,
            Delivery::Interaction(_) => SlackEndpoint::Interactivity,
            Delivery::Command(_) => SlackEndpoint::Commands,
        }
    }
}

/// The fields of a frame the client reads; serde skips the rest.
#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    envelope_id: Option<String>,
    payload: Option<Value>,
    #[serde(default)]
    accepts_response_payload: bool,
    retry_attempt: Option<u64>,
    reason: Option<String>,
}

/// The metric label of a frame type: the known ones, or `other`.
fn label(kind: Option<&str>) -> &'static str {
    match kind {
        Some("hello") => "hello",
        Some("disconnect") => "disconnect",
        Some("events_api") => "events_api",
        Some("interactive") => "interactive",
        Some("slash_commands") => "slash_commands",
        None => "none",
        Some(_) => "other",
    }
}

/// Parses one text frame.
pub fn parse_frame(text: &str) -> Frame {
    let raw: RawFrame = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            return Frame::Unparsed {
                kind: "not_json",
                envelope_id: None,
                problem: format!("not a JSON object: {err}"),
            }
        }
    };
    let kind = raw.kind.as_deref();
    let unparsed = |problem: String| Frame::Unparsed {
        kind: label(kind),
        envelope_id: raw.envelope_id.clone(),
        problem,
    };
    let delivery = match kind {
        Some("hello") => return Frame::Hello,
        Some("disconnect") => {
            return Frame::Disconnect(match raw.reason.as_deref() {
                Some("warning") => DisconnectReason::Warning,
                Some("refresh_requested") => DisconnectReason::RefreshRequested,
                Some("link_disabled") => DisconnectReason::LinkDisabled,
                Some("too_many_websockets") => DisconnectReason::TooManyWebsockets,
                other => {
                    DisconnectReason::Other(other.unwrap_or_default().chars().take(40).collect())
                }
            })
        }
        Some("events_api" | "interactive" | "slash_commands") => {
            let Some(payload) = &raw.payload else {
                return unparsed("no payload".into());
            };
            match parse_delivery(kind.unwrap_or_default(), payload) {
                Ok(delivery) => delivery,
                Err(problem) => return unparsed(problem),
            }
        }
        _ => return unparsed("not a type this client knows".into()),
    };
    let Some(id) = raw.envelope_id.clone() else {
        return unparsed("no envelope_id".into());
    };
    Frame::Envelope(Envelope {
        id,
        delivery,
        accepts_response_payload: raw.accepts_response_payload,
        retry_attempt: raw.retry_attempt.unwrap_or(0),
    })
}

/// The payload of an envelope of `kind`, through the parsers HTTP uses.
fn parse_delivery(kind: &str, payload: &Value) -> Result<Delivery, String> {
    match kind {
        "events_api" => {
            // The same `event_callback` body HTTP delivery posts.
            let body = serde_json::to_vec(payload).map_err(|err| err.to_string())?;
            parse_event(&body)
                .map(Delivery::Event)
                .map_err(|err| err.to_string())
        }
        "interactive" => parse_interaction_json(&payload.to_string())
            .map(Delivery::Interaction)
            .map_err(|err| err.to_string()),
        _ => SlashCommand::deserialize(payload)
            .map(Delivery::Command)
            .map_err(|_| "not a slash command".to_string()),
    }
}

/// The acknowledgement of envelope `id`, with a response when there is one.
pub fn ack(id: &str, payload: Option<Value>) -> String {
    match payload {
        Some(payload) => json!({ "envelope_id": id, "payload": payload }).to_string(),
        None => json!({ "envelope_id": id }).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_disconnects_are_read() {
        let hello = r#"{"type":"hello","num_connections":1,"debug_info":{"host":"h"},
            "connection_info":{"app_id":"A1"}}"#;
        assert!(matches!(parse_frame(hello), Frame::Hello));
        for (reason, expected) in [
            ("warning", DisconnectReason::Warning),
            ("refresh_requested", DisconnectReason::RefreshRequested),
            ("link_disabled", DisconnectReason::LinkDisabled),
            ("too_many_websockets", DisconnectReason::TooManyWebsockets),
            ("new_one", DisconnectReason::Other("new_one".into())),
        ] {
            let frame = json!({"type": "disconnect", "reason": reason}).to_string();
            match parse_frame(&frame) {
                Frame::Disconnect(got) => assert_eq!(got, expected),
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_slash_command_envelope_is_read_as_the_form_would_be() {
        let frame = json!({
            "envelope_id": "e1", "type": "slash_commands", "accepts_response_payload": true,
            "payload": {"user_id": "U1", "trigger_id": "t1", "text": "list", "command": "/access"}
        });
        match parse_frame(&frame.to_string()) {
            Frame::Envelope(envelope) => {
                assert_eq!(envelope.id, "e1");
                assert!(envelope.accepts_response_payload);
                assert!(matches!(envelope.delivery, Delivery::Command(_)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_cannot_be_read_keeps_its_id_and_a_bounded_label() {
        let frame = json!({"envelope_id": "e2", "type": "interactive", "payload": {"type": 5}});
        match parse_frame(&frame.to_string()) {
            Frame::Unparsed {
                kind, envelope_id, ..
            } => {
                assert_eq!(kind, "interactive");
                assert_eq!(envelope_id.as_deref(), Some("e2"));
            }
            other => panic!("{other:?}"),
        }
        let frame = json!({"envelope_id": "e3", "type": "x".repeat(500)});
        assert!(matches!(
            parse_frame(&frame.to_string()),
            Frame::Unparsed { kind: "other", .. }
        ));
        assert!(matches!(
            parse_frame("not json"),
            Frame::Unparsed {
                kind: "not_json",
                envelope_id: None,
                ..
            }
        ));
    }

    #[test]
    fn acks_carry_a_response_only_when_there_is_one() {
        assert_eq!(ack("e1", None), r#"{"envelope_id":"e1"}"#);
        let with = ack("e1", Some(json!({"response_action": "clear"})));
        let with: Value = serde_json::from_str(&with).unwrap();
        assert_eq!(with["payload"]["response_action"], "clear");
    }
}
