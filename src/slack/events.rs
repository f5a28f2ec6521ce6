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
    /// A user opened the bot's Home tab.
    HomeOpened { event_id: String, user: String },
    /// Everything else: top-level messages, bot messages, edits, other event types.
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
        SlackEventCallbackBody::Message(message) => thread_reply(message),
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
