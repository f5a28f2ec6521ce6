//! `chat.*`: posting, updating and linking messages, and ephemerals.

use serde_json::{json, Value};

use super::block_kit::{check_block_kit, Surface};
use super::server::error;
use super::world::{str_arg, World};
use super::{APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID};

impl World {
    pub(super) fn post_message(&mut self, args: &Value) -> Value {
        let Some(channel) = str_arg(args, "channel") else {
            return error("channel_not_found");
        };
        if let Err(rejection) = check_block_kit(Surface::Message, args) {
            return rejection.to_response();
        }
        let channel = Self::resolve_channel(channel);
        if self.archived.contains(&channel) {
            return error("is_archived");
        }
        // A DM to a deactivated user is accepted, as real Slack accepts it (the DM's history
        // outlives the account; slackapi/python-slack-sdk#1156): nothing but asking
        // `users.info` first keeps a card from going to nobody.
        let thread_ts = str_arg(args, "thread_ts").map(str::to_string);
        if let Some(parent_ts) = &thread_ts {
            let Some(parent) = self.message_mut(&channel, parent_ts) else {
                return error("thread_not_found");
            };
            if parent
                .get("thread_ts")
                .is_some_and(|t| t != parent_ts.as_str())
            {
                return error("cannot_reply_to_message");
            }
        }
        let ts = self.next_ts();
        let mut message = bot_message(args, &ts);
        if let Some(parent_ts) = &thread_ts {
            message["thread_ts"] = json!(parent_ts);
            message["parent_user_id"] = json!(BOT_USER_ID);
            let parent = self
                .message_mut(&channel, parent_ts)
                .expect("parent checked above");
            parent["thread_ts"] = json!(parent_ts);
            let count = parent["reply_count"].as_u64().unwrap_or(0) + 1;
            parent["reply_count"] = json!(count);
            parent["latest_reply"] = json!(ts);
        }
        self.messages
            .entry(channel.clone())
            .or_default()
            .push(message.clone());
        json!({"ok": true, "channel": channel, "ts": ts, "message": message})
    }

    /// The bot's own message that `args` (`channel`, `ts`) names, for chat.update and
    /// chat.delete, or Slack's error: `refusal` when the message is someone else's.
    fn own_message(
        &mut self,
        args: &Value,
        refusal: &str,
    ) -> Result<(String, String, Value), Value> {
        let (Some(channel), Some(ts)) = (str_arg(args, "channel"), str_arg(args, "ts")) else {
            return Err(error("message_not_found"));
        };
        if channel.starts_with('U') || channel.starts_with('W') {
            return Err(error("channel_not_found"));
        }
        let Some(existing) = self.message_mut(channel, ts).cloned() else {
            return Err(error("message_not_found"));
        };
        if existing.get("bot_id").is_none() {
            return Err(error(refusal));
        }
        Ok((channel.to_string(), ts.to_string(), existing))
    }

    pub(super) fn update_message(&mut self, args: &Value) -> Value {
        let (channel, ts, existing) = match self.own_message(args, "cant_update_message") {
            Ok(found) => found,
            Err(refusal) => return refusal,
        };
        let (channel, ts) = (channel.as_str(), ts.as_str());
        let mut updated = existing.clone();
        for field in ["text", "blocks", "attachments", "metadata"] {
            if let Some(value) = args.get(field).filter(|v| !v.is_null()) {
                updated[field] = value.clone();
            }
        }
        if let Err(rejection) = check_block_kit(Surface::Message, &updated) {
            return rejection.to_response();
        }
        let edited_ts = self.next_ts();
        updated["edited"] = json!({"user": BOT_USER_ID, "ts": edited_ts});
        *self.message_mut(channel, ts).expect("message found above") = updated.clone();
        json!({
            "ok": true,
            "channel": channel,
            "ts": ts,
            "text": updated["text"],
            "message": updated,
        })
    }

    /// chat.delete: a bot deletes its own messages (`cant_delete_message` otherwise); a
    /// deleted reply no longer counts in its parent's `reply_count`.
    pub(super) fn delete_message(&mut self, args: &Value) -> Value {
        let (channel, ts, _) = match self.own_message(args, "cant_delete_message") {
            Ok(found) => found,
            Err(refusal) => return refusal,
        };
        let (channel, ts) = (channel.as_str(), ts.as_str());
        self.remove_message(channel, ts);
        json!({"ok": true, "channel": channel, "ts": ts})
    }

    /// Removes message `ts` from `channel`, as a deletion does.
    pub(super) fn remove_message(&mut self, channel: &str, ts: &str) {
        let Some(messages) = self.messages.get_mut(channel) else {
            return;
        };
        let Some(at) = messages.iter().position(|m| m["ts"] == ts) else {
            return;
        };
        let removed = messages.remove(at);
        let parent_ts = removed["thread_ts"].as_str().filter(|t| *t != ts);
        if let Some(parent) = parent_ts.and_then(|t| self.message_mut(channel, t)) {
            let count = parent["reply_count"]
                .as_u64()
                .unwrap_or(1)
                .saturating_sub(1);
            parent["reply_count"] = json!(count);
        }
    }

    pub(super) fn post_ephemeral(&mut self, args: &Value) -> Value {
        let (Some(channel), Some(user)) = (str_arg(args, "channel"), str_arg(args, "user")) else {
            return error("user_not_in_channel");
        };
        if let Err(rejection) = check_block_kit(Surface::Message, args) {
            return rejection.to_response();
        }
        let ts = self.next_ts();
        let mut message = bot_message(args, &ts);
        message["channel"] = json!(Self::resolve_channel(channel));
        message["ephemeral_for"] = json!(user);
        if let Some(thread_ts) = str_arg(args, "thread_ts") {
            message["thread_ts"] = json!(thread_ts);
        }
        self.ephemerals.push(message);
        json!({"ok": true, "message_ts": ts})
    }

    pub(super) fn permalink(&mut self, args: &Value) -> Value {
        let (Some(channel), Some(ts)) = (str_arg(args, "channel"), str_arg(args, "message_ts"))
        else {
            return error("channel_not_found");
        };
        if self.message_mut(channel, ts).is_none() {
            return error("message_not_found");
        }
        json!({
            "ok": true,
            "channel": channel,
            "permalink": format!("https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{}", ts.replace('.', "")),
        })
    }
}

/// The message object Slack stores for a bot post.
fn bot_message(args: &Value, ts: &str) -> Value {
    let mut message = json!({
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": args.get("text").and_then(Value::as_str).unwrap_or(""),
        "ts": ts,
    });
    for field in ["blocks", "attachments", "metadata"] {
        if let Some(value) = args.get(field).filter(|v| !v.is_null()) {
            message[field] = value.clone();
        }
    }
    message
}
