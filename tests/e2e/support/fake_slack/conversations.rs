//! `conversations.*`: opening DMs, reading history and threads.

use serde_json::{json, Value};

use super::server::error;
use super::world::{dm_channel_of, flag, num_arg, str_arg, ts_key, World};

impl World {
    pub(super) fn open_conversation(&mut self, args: &Value) -> Value {
        let users: Vec<String> = match args.get("users") {
            Some(Value::String(list)) => list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => vec![],
        };
        let channel = match (str_arg(args, "channel"), users.as_slice()) {
            (Some(channel), _) => channel.to_string(),
            (None, []) => return error("users_list_not_supplied"),
            (None, [user]) => {
                if !(user.starts_with('U') || user.starts_with('W')) {
                    return error("user_not_found");
                }
                dm_channel_of(user)
            }
            (None, many) if many.len() > 8 => return error("too_many_users"),
            (None, many) => format!(
                "G{}",
                many.iter()
                    .map(|u| u.trim_start_matches(['U', 'W']))
                    .collect::<Vec<_>>()
                    .join("")
            ),
        };
        let already_open = self.messages.contains_key(&channel);
        self.messages.entry(channel.clone()).or_default();
        let mut info = json!({"id": channel});
        if args
            .get("return_im")
            .is_some_and(|v| v == true || v == "true")
        {
            info = json!({
                "id": channel,
                "created": 1_700_000_000,
                "is_im": true,
                "is_org_shared": false,
                "user": users.first(),
                "is_user_deleted": false,
                "priority": 0,
            });
        }
        json!({"ok": true, "channel": info, "already_open": already_open, "no_op": already_open})
    }

    pub(super) fn listed(message: &Value, with_metadata: bool) -> Value {
        let mut message = message.clone();
        if !with_metadata {
            if let Some(object) = message.as_object_mut() {
                object.remove("metadata");
            }
        }
        message
    }

    pub(super) fn history(&mut self, args: &Value) -> Value {
        let Some(channel) = str_arg(args, "channel") else {
            return error("channel_not_found");
        };
        if channel.starts_with('U') || channel.starts_with('W') {
            return error("channel_not_found");
        }
        let with_metadata = flag(args, "include_all_metadata");
        let inclusive = flag(args, "inclusive");
        let limit = num_arg(args, "limit").unwrap_or(100).clamp(1, 999) as usize;
        let oldest = str_arg(args, "oldest").map(ts_key);
        let mut latest = str_arg(args, "latest").map(ts_key);
        let mut inclusive_latest = inclusive;
        if let Some(cursor) = str_arg(args, "cursor").and_then(|c| c.strip_prefix("next_ts:")) {
            latest = Some(ts_key(cursor));
            inclusive_latest = false;
        }
        let mut top_level: Vec<&Value> = self
            .messages
            .get(channel)
            .map(|list| {
                list.iter()
                    .filter(|m| match m["thread_ts"].as_str() {
                        None => true,
                        Some(thread) => thread == m["ts"] || m["subtype"] == "thread_broadcast",
                    })
                    .filter(|m| {
                        let key = ts_key(m["ts"].as_str().unwrap_or(""));
                        oldest.is_none_or(|o| if inclusive { key >= o } else { key > o })
                            && latest
                                .is_none_or(|l| if inclusive_latest { key <= l } else { key < l })
                    })
                    .collect()
            })
            .unwrap_or_default();
        top_level.sort_by_key(|m| std::cmp::Reverse(ts_key(m["ts"].as_str().unwrap_or(""))));
        let has_more = top_level.len() > limit;
        top_level.truncate(limit);
        let messages: Vec<Value> = top_level
            .iter()
            .map(|m| Self::listed(m, with_metadata))
            .collect();
        let mut body = json!({
            "ok": true,
            "messages": messages,
            "has_more": has_more,
            "pin_count": 0,
        });
        if has_more {
            let last = messages.last().map(|m| m["ts"].clone()).unwrap_or_default();
            body["response_metadata"] =
                json!({"next_cursor": format!("next_ts:{}", last.as_str().unwrap_or(""))});
        }
        body
    }

    pub(super) fn replies(&mut self, args: &Value) -> Value {
        let (Some(channel), Some(ts)) = (str_arg(args, "channel"), str_arg(args, "ts")) else {
            return error("thread_not_found");
        };
        let with_metadata = flag(args, "include_all_metadata");
        let Some(list) = self.messages.get(channel) else {
            return error("channel_not_found");
        };
        let Some(parent) = list.iter().find(|m| m["ts"] == ts) else {
            return error("thread_not_found");
        };
        let root = parent["thread_ts"].as_str().unwrap_or(ts).to_string();
        let mut thread: Vec<&Value> = list
            .iter()
            .filter(|m| m["ts"] == root.as_str() || m["thread_ts"] == root.as_str())
            .collect();
        thread.sort_by_key(|m| ts_key(m["ts"].as_str().unwrap_or("")));
        let limit = num_arg(args, "limit").unwrap_or(1000) as usize;
        let has_more = thread.len() > limit;
        thread.truncate(limit.max(1));
        json!({
            "ok": true,
            "messages": thread.iter().map(|m| Self::listed(m, with_metadata)).collect::<Vec<_>>(),
            "has_more": has_more,
        })
    }
}
