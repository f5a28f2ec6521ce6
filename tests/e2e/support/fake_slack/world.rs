//! The stateful workspace behind the fake: channels and their messages, ephemerals, views
//! and Homes, users, the calls received and the faults queued; `ts` and ids come from its
//! counters, so they are unique and ordered.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use serde_json::{json, Value};

use super::{Call, Fault};

/// The DM channel between the bot and `user`, derived deterministically (`U123` → `D123`).
pub fn dm_channel_of(user: &str) -> String {
    let rest = user
        .strip_prefix('U')
        .or_else(|| user.strip_prefix('W'))
        .unwrap_or(user);
    format!("D{rest}")
}

/// Orders two `ts` strings as Slack does: seconds, then the fraction (never as floats).
pub(super) fn ts_key(ts: &str) -> (u64, u64) {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    (secs.parse().unwrap_or(0), frac.parse().unwrap_or(0))
}

#[derive(Default)]
pub(super) struct World {
    pub(super) token: String,
    pub(super) calls: Vec<Call>,
    pub(super) faults: HashMap<String, VecDeque<Fault>>,
    /// Messages per channel, in posting order (top-level and replies together).
    pub(super) messages: BTreeMap<String, Vec<Value>>,
    pub(super) ephemerals: Vec<Value>,
    /// Views by id, in creation order of their ids.
    pub(super) views: BTreeMap<String, Value>,
    /// The Home view id of each user.
    pub(super) homes: HashMap<String, String>,
    /// Custom `users.info` answers.
    pub(super) users: HashMap<String, Value>,
    /// Archived channels: posting there answers `is_archived`.
    pub(super) archived: HashSet<String>,
    pub(super) used_triggers: HashSet<String>,
    pub(super) enforce_trigger_expiry: bool,
    pub(super) enforce_tiers: bool,
    /// When the calls counted against each rate budget were made.
    pub(super) budget_use: HashMap<String, VecDeque<Instant>>,
    pub(super) ts_counter: u64,
    pub(super) id_counter: u64,
    pub(super) last_modal: Option<String>,
    /// The Socket Mode server `apps.connections.open` points at.
    pub(super) socket_mode: Option<super::socket_mode::SocketModeFake>,
}

impl World {
    pub(super) fn next_ts(&mut self) -> String {
        self.ts_counter += 100;
        format!(
            "{}.{:06}",
            1_700_000_000 + self.ts_counter / 1_000_000,
            self.ts_counter % 1_000_000
        )
    }

    pub(super) fn next_id(&mut self) -> u64 {
        self.id_counter += 1;
        self.id_counter
    }

    pub(super) fn next_hash(&mut self) -> String {
        let n = self.next_id();
        format!(
            "{}.{:08x}",
            1_700_000_000 + n,
            n.wrapping_mul(2_654_435_761) as u32
        )
    }

    /// What the workspace holds that outlives a process of the bot: messages, ephemerals,
    /// views, Homes and the counters their ids come from (not calls, faults or budgets).
    pub(super) fn saved(&self) -> Value {
        json!({
            "messages": self.messages,
            "ephemerals": self.ephemerals,
            "views": self.views,
            "homes": self.homes,
            "ts_counter": self.ts_counter,
            "id_counter": self.id_counter,
        })
    }

    /// Puts back what [`World::saved`] wrote, replacing what the workspace held.
    pub(super) fn restore(&mut self, saved: &Value) {
        fn field<T: serde::de::DeserializeOwned>(saved: &Value, name: &str) -> T {
            serde_json::from_value(saved[name].clone())
                .unwrap_or_else(|e| panic!("saved fake Slack state: {name}: {e}"))
        }
        self.messages = field(saved, "messages");
        self.ephemerals = field(saved, "ephemerals");
        self.views = field(saved, "views");
        self.homes = field(saved, "homes");
        self.ts_counter = field(saved, "ts_counter");
        self.id_counter = field(saved, "id_counter");
    }

    pub(super) fn message_mut(&mut self, channel: &str, ts: &str) -> Option<&mut Value> {
        self.messages
            .get_mut(channel)?
            .iter_mut()
            .find(|m| m["ts"] == ts)
    }

    /// Where a message for `channel` lands: a user id means the bot's DM with that user.
    pub(super) fn resolve_channel(channel: &str) -> String {
        if channel.starts_with('U') || channel.starts_with('W') {
            dm_channel_of(channel)
        } else {
            channel.to_string()
        }
    }
}

pub(super) fn str_arg<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(super) fn num_arg(args: &Value, name: &str) -> Option<u64> {
    match args.get(name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(super) fn flag(args: &Value, name: &str) -> bool {
    matches!(args.get(name), Some(Value::Bool(true)))
        || matches!(args.get(name).and_then(Value::as_str), Some("true" | "1"))
}
