//! Events API deliveries, parsed at the edge into the few the bot acts on.

use slack_morphism::prelude::*;

use super::payload::PayloadError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackEvent {
    /// Slack checking the request URL; answer with the challenge.
    UrlVerification { challenge: String },
    /// A person's reply in the thread of some message.
    ThreadReply {
        channel: String,
        thread_ts: String,
        ts: String,
        user: String,
        text: String,
    },
    /// A person edited message `ts` (`message_changed`); it matters if it is a kept reply.
    MessageEdited {
        channel: String,
        ts: String,
        user: String,
        text: String,
    },
    /// Message `ts` was deleted (`message_deleted`); it matters if it is a kept reply.
    MessageDeleted { channel: String, ts: String },
    /// A user opened the bot's Home tab.
    HomeOpened { event_id: String, user: String },
    /// Everything else: top-level messages, bot messages and their edits, other event types.
    Ignored,
}

/// Parses an Events API body (JSON). An event holding a NUL is ignored (Slack wants its 200,
/// or it retries), since its text could be kept on one database and not on the other.
pub fn parse_event(body: &[u8]) -> Result<SlackEvent, PayloadError> {
    if crate::nul::in_json(body) {
        tracing::warn!("ignored a Slack event holding a NUL character");
        return Ok(SlackEvent::Ignored);
    }
    let event: SlackPushEvent =
        serde_json::from_slice(body).map_err(|err| PayloadError::Malformed(err.to_string()))?;
    let callback = match event {
        SlackPushEvent::UrlVerification(verification) => {
            return Ok(SlackEvent::UrlVerification {
                challenge: verification.challenge,
            })
        }
        SlackPushEvent::EventCallback(callback) => callback,
        SlackPushEvent::AppRateLimited(_) => return Ok(SlackEvent::Ignored),
    };
    let event_id = callback.event_id.to_string();
    Ok(match callback.event {
        SlackEventCallbackBody::Message(message) => match message.subtype {
            Some(SlackMessageEventType::MessageChanged) => edit(message),
            Some(SlackMessageEventType::MessageDeleted) => deletion(message),
            _ => thread_reply(message),
        },
        SlackEventCallbackBody::AppHomeOpened(opened)
            if opened.tab.as_deref().unwrap_or("home") == "home" =>
        {
            SlackEvent::HomeOpened {
                event_id,
                user: opened.user.to_string(),
            }
        }
        _ => SlackEvent::Ignored,
    })
}

/// Only plain replies written by people count: bots (the bot itself included), edits,
/// deletions and other subtypes are ignored, so the bot can never relay in a loop.
fn thread_reply(message: SlackMessageEvent) -> SlackEvent {
    if message.subtype.is_some() || message.sender.bot_id.is_some() || message.hidden == Some(true)
    {
        return SlackEvent::Ignored;
    }
    let (Some(user), Some(channel), Some(thread_ts)) = (
        message.sender.user,
        message.origin.channel,
        message.origin.thread_ts,
    ) else {
        return SlackEvent::Ignored;
    };
    let ts = message.origin.ts.to_string();
    let text = message
        .content
        .and_then(|content| content.text)
        .unwrap_or_default();
    if thread_ts.to_string() == ts || text.trim().is_empty() {
        return SlackEvent::Ignored;
    }
    SlackEvent::ThreadReply {
        channel: channel.to_string(),
        thread_ts: thread_ts.to_string(),
        ts,
        user: user.to_string(),
        text,
    }
}

/// A person's edit of a message. Edits of bot messages (the bot's own card updates and
/// relayed copies among them) and changes that are not edits (a link unfurled: no `edited`)
/// are ignored.
fn edit(event: SlackMessageEvent) -> SlackEvent {
    let (Some(channel), Some(message)) = (event.origin.channel, event.message) else {
        return SlackEvent::Ignored;
    };
    let (Some(user), None, Some(_)) = (message.sender.user, message.sender.bot_id, message.edited)
    else {
        return SlackEvent::Ignored;
    };
    let text = message
        .content
        .and_then(|content| content.text)
        .unwrap_or_default();
    SlackEvent::MessageEdited {
        channel: channel.to_string(),
        ts: message.ts.to_string(),
        user: user.to_string(),
        text,
    }
}

/// A deletion: the deleted message's ts is `deleted_ts`.
fn deletion(event: SlackMessageEvent) -> SlackEvent {
    let (Some(channel), Some(ts)) = (event.origin.channel, event.deleted_ts) else {
        return SlackEvent::Ignored;
    };
    SlackEvent::MessageDeleted {
        channel: channel.to_string(),
        ts: ts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn callback(event: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "token": "t",
            "team_id": "T1",
            "api_app_id": "A1",
            "event": event,
            "type": "event_callback",
            "event_id": "Ev1",
            "event_time": 1_700_000_000,
        }))
        .unwrap()
    }

    /// Slack's `message_changed` shape (docs.slack.dev, message_changed), in a thread.
    fn changed(message: Value) -> Vec<u8> {
        callback(json!({
            "type": "message",
            "subtype": "message_changed",
            "hidden": true,
            "channel": "C1",
            "channel_type": "channel",
            "ts": "1700000100.000300",
            "event_ts": "1700000100.000300",
            "message": message,
            "previous_message": {
                "type": "message", "user": "U1", "text": "before",
                "ts": "1700000050.000200", "thread_ts": "1700000000.000100",
            },
        }))
    }

    #[test]
    fn a_persons_edit_is_an_edit_of_its_message() {
        let body = changed(json!({
            "type": "message", "user": "U1", "text": "after",
            "ts": "1700000050.000200", "thread_ts": "1700000000.000100",
            "edited": {"user": "U1", "ts": "1700000100.000000"},
        }));
        assert_eq!(
            parse_event(&body).unwrap(),
            SlackEvent::MessageEdited {
                channel: "C1".into(),
                ts: "1700000050.000200".into(),
                user: "U1".into(),
                text: "after".into(),
            }
        );
    }

    #[test]
    fn bot_edits_and_unfurls_are_ignored() {
        let by_bot = changed(json!({
            "type": "message", "user": "UBOT", "bot_id": "B1", "text": "card",
            "ts": "1700000050.000200",
            "edited": {"user": "UBOT", "ts": "1700000100.000000"},
        }));
        assert_eq!(parse_event(&by_bot).unwrap(), SlackEvent::Ignored);
        let unfurled = changed(json!({
            "type": "message", "user": "U1", "text": "see https://x.example",
            "ts": "1700000050.000200",
        }));
        assert_eq!(parse_event(&unfurled).unwrap(), SlackEvent::Ignored);
    }

    #[test]
    fn a_deletion_names_the_deleted_message() {
        let body = callback(json!({
            "type": "message",
            "subtype": "message_deleted",
            "hidden": true,
            "channel": "D1",
            "channel_type": "im",
            "ts": "1700000200.000400",
            "event_ts": "1700000200.000400",
            "deleted_ts": "1700000050.000200",
            "previous_message": {
                "type": "message", "user": "U1", "text": "oops",
                "ts": "1700000050.000200", "thread_ts": "1700000000.000100",
            },
        }));
        assert_eq!(
            parse_event(&body).unwrap(),
            SlackEvent::MessageDeleted {
                channel: "D1".into(),
                ts: "1700000050.000200".into(),
            }
        );
    }
}
