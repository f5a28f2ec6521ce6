//! A stateful fake of the Slack Web API on loopback, in the manner of rust-lang/bors'
//! fake GitHub: it keeps channels, messages and views, answers with the bodies slack-morphism
//! requires, validates Block Kit limits as Slack does, records every call, and can be told to
//! fail the next call of a method in any of the ways Slack (or the network) fails.
//!
//! This file is the handle tests hold; `world.rs` is the workspace's state, `server.rs` the
//! HTTP side (auth, faults, rate limits, and which method goes where), `block_kit.rs` the
//! limits checker, and each family of Slack methods has a file of its own (`chat.rs`,
//! `conversations.rs`, `views.rs`, `users.rs`): a new method goes in its family's file, in
//! `KNOWN_METHODS` and in `World::dispatch`.
#![allow(dead_code)]

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod block_kit;
mod chat;
mod conversations;
mod server;
mod socket_mode;
mod users;
mod views;
mod world;

// Part of the fake's API for tests even where no test uses them yet.
#[allow(unused_imports)]
pub use block_kit::{check_block_kit, Rejection, Surface};
#[allow(unused_imports)]
pub use server::{rate_budget, RateBudget, KNOWN_METHODS};
#[allow(unused_imports)]
pub use socket_mode::{Ack, Greeting, SocketConn, SocketModeFake, APP_TOKEN};
pub use world::dm_channel_of;

use server::{Running, Shared};
use world::World;

/// The bot token the fake accepts unless told otherwise.
pub const DEFAULT_BOT_TOKEN: &str = "xoxb-test-token";
/// The workspace every fake object lives in.
pub const TEAM_ID: &str = "T0ACCESS01";
pub const TEAM_DOMAIN: &str = "accessbot-test";
/// The Slack app the bot is, as Slack would name it in payloads.
pub const APP_ID: &str = "A0ACCESS01";
/// The bot's own user id and bot id: its messages carry these.
pub const BOT_USER_ID: &str = "U0ACCESSBOT";
pub const BOT_ID: &str = "B0ACCESSBOT";
/// How long `wait_for_default` waits.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// How long a trigger_id stays usable, when expiry is enforced.
pub const TRIGGER_LIFETIME: Duration = Duration::from_secs(3);

/// One way to make the next call of a method fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After` and `{"ok":false,"error":"ratelimited"}`; nothing happens.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 500; nothing happens.
    ServerError,
    /// Any other HTTP status (502, 503…); nothing happens.
    Status(u16),
    /// HTTP 200 `{"ok":false,"error":<code>}`; nothing happens.
    SlackError(String),
    /// The request is never answered (until the fake is dropped); the client's timeout must fire.
    Hang,
    /// The call takes effect and is recorded, but the connection breaks before the answer
    /// arrives: the caller cannot know whether it worked.
    DropAfterProcessing,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// Position among all calls, from 0.
    pub seq: usize,
    /// The Web API method, e.g. `chat.postMessage`.
    pub method: String,
    /// GET or POST.
    pub http_method: String,
    /// The arguments as a JSON object (a form or query string becomes an object of strings;
    /// form fields holding JSON, such as `blocks` or `view`, are decoded).
    pub body: Value,
    /// The HTTP status answered; 0 when the call hung.
    pub status: u16,
    /// The JSON answered (or that would have been answered, for `DropAfterProcessing`);
    /// `Null` when the call hung.
    pub response: Value,
    /// The fault injected into this call, if any.
    pub fault: Option<Fault>,
    /// When the call arrived.
    pub at: Instant,
}

impl Call {
    /// Whether Slack answered `ok:true` to it.
    pub fn ok(&self) -> bool {
        self.status == 200 && self.response["ok"] == json!(true)
    }

    /// A string argument of the call.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    /// The error code Slack answered, if any.
    pub fn error(&self) -> Option<&str> {
        self.response.get("error").and_then(Value::as_str)
    }
}

/// Why `wait_for` gave up; its `Display` lists every call received.
#[derive(Debug)]
pub struct WaitTimeout {
    pub waited: Duration,
    pub calls: Vec<Call>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fake Slack: condition not met after {:?}; {} calls received:",
            self.waited,
            self.calls.len()
        )?;
        for call in &self.calls {
            writeln!(
                f,
                "  #{} {} {} -> {} {}{}",
                call.seq,
                call.method,
                call.body,
                call.status,
                call.response,
                call.fault
                    .as_ref()
                    .map(|fault| format!(" (fault: {fault:?})"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for WaitTimeout {}

/// A handle on a running fake Slack; clones share the same fake, which stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct FakeSlack {
    running: Arc<Running>,
}

impl FakeSlack {
    /// Starts a fake Slack on `127.0.0.1:0` that accepts [`DEFAULT_BOT_TOKEN`].
    pub async fn start() -> FakeSlack {
        Self::start_with_token(DEFAULT_BOT_TOKEN).await
    }

    /// Starts a fake Slack that accepts `token`.
    pub async fn start_with_token(token: &str) -> FakeSlack {
        let world = World {
            token: token.to_string(),
            socket_mode: Some(SocketModeFake::start().await),
            ..World::default()
        };
        FakeSlack {
            running: Arc::new(server::start(world).await),
        }
    }

    fn shared(&self) -> &Shared {
        &self.running.shared
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// `http://127.0.0.1:<port>/api`: what `SLACK_API_URL` should be.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// The fake Socket Mode server that `apps.connections.open` points at.
    pub fn socket_mode(&self) -> SocketModeFake {
        self.shared()
            .world()
            .socket_mode
            .clone()
            .expect("the fake has a Socket Mode server")
    }

    /// Makes the fake accept another bot token from now on.
    pub fn set_token(&self, token: &str) {
        self.shared().world().token = token.to_string();
    }

    /// Queues a fault for the next call of `method` (faults of a method are used in order).
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.shared()
            .world()
            .faults
            .entry(method.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Queues a fault for the next call of `method` in `channel` (a user id means the bot's
    /// DM with them); calls elsewhere are not affected.
    pub fn fail_next_in(&self, method: &str, channel: &str, fault: Fault) {
        let key = server::fault_key(method, &World::resolve_channel(channel));
        self.shared()
            .world()
            .faults
            .entry(key)
            .or_default()
            .push_back(fault);
    }

    /// Queues `fault` for each of the next `times` calls of `method`.
    pub fn fail_next_n(&self, method: &str, fault: Fault, times: usize) {
        for _ in 0..times {
            self.fail_next(method, fault.clone());
        }
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared().world().faults.clear();
    }

    /// Makes trigger_ids older than [`TRIGGER_LIFETIME`] fail with `expired_trigger_id`
    /// (their age is read from the signer's trigger id format).
    pub fn enforce_trigger_expiry(&self, enforce: bool) {
        self.shared().world().enforce_trigger_expiry = enforce;
    }

    /// Enforces Slack's rate tiers ([`rate_budget`]): a call over its method's budget gets
    /// HTTP 429 with `Retry-After` and does nothing. Off by default.
    pub fn enforce_tiers(&self, enforce: bool) {
        let mut world = self.shared().world();
        world.enforce_tiers = enforce;
        world.budget_use.clear();
    }

    /// Overrides what `users.info` answers for `user` (an object with at least `id`).
    pub fn set_user(&self, user: Value) {
        let id = user["id"].as_str().expect("user needs an id").to_string();
        self.shared().world().users.insert(id, user);
    }

    /// Deactivates `user`: `users.info` answers `deleted: true` from now on (their name and
    /// profile stay, as in Slack). DMs to them are still accepted, as Slack accepts them.
    pub fn deactivate_user(&self, user: &str) {
        let mut world = self.shared().world();
        let mut object = world
            .user_object(user)
            .unwrap_or_else(|| panic!("{user} is not a user id"));
        object["deleted"] = json!(true);
        world.users.insert(user.to_string(), object);
    }

    /// Reactivates `user`: `users.info` answers as for any active user again.
    pub fn reactivate_user(&self, user: &str) {
        self.shared().world().users.remove(user);
    }

    /// Archives `channel`: `chat.postMessage` there answers `is_archived`, as Slack does.
    pub fn archive_channel(&self, channel: &str) {
        self.shared().world().archived.insert(channel.to_string());
    }

    /// The `users.info` calls asking about `user`.
    pub fn user_info_calls(&self, user: &str) -> Vec<Call> {
        self.calls_to("users.info")
            .into_iter()
            .filter(|call| call.arg("user") == Some(user))
            .collect()
    }

    /// A fresh, unique `ts` from the fake's clock.
    pub fn next_ts(&self) -> String {
        self.shared().world().next_ts()
    }

    /// Stores a message a human wrote (as Slack would before sending the event), returning its
    /// `ts`; `thread_ts` makes it a reply.
    pub fn add_user_message(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        let mut world = self.shared().world();
        let ts = world.next_ts();
        let mut message = json!({
            "type": "message",
            "user": user,
            "team": TEAM_ID,
            "text": text,
            "ts": ts,
        });
        if let Some(parent_ts) = thread_ts {
            message["thread_ts"] = json!(parent_ts);
            if let Some(parent) = world.message_mut(channel, parent_ts) {
                parent["thread_ts"] = json!(parent_ts);
                let count = parent["reply_count"].as_u64().unwrap_or(0) + 1;
                parent["reply_count"] = json!(count);
                parent["latest_reply"] = json!(ts);
            }
        }
        world
            .messages
            .entry(channel.to_string())
            .or_default()
            .push(message);
        ts
    }

    /// A person edits their message `ts` in `channel`, as Slack keeps it (with `edited`);
    /// returns the edit's `ts`.
    pub fn edit_user_message(&self, channel: &str, ts: &str, text: &str) -> String {
        let mut world = self.shared().world();
        let edit_ts = world.next_ts();
        let message = world
            .message_mut(channel, ts)
            .expect("the edited message exists");
        let user = message["user"].clone();
        message["text"] = json!(text);
        message["edited"] = json!({"user": user, "ts": edit_ts});
        edit_ts
    }

    /// A person deletes their message `ts` in `channel`.
    pub fn delete_user_message(&self, channel: &str, ts: &str) {
        self.shared().world().remove_message(channel, ts);
    }

    /// The workspace as Slack would keep it across a restart of the bot: messages (with their
    /// metadata and edits), ephemerals, views, Homes, and the counters `ts` and ids come from,
    /// as JSON. Calls, faults and rate budgets are not part of it.
    pub fn saved_messages(&self) -> Value {
        self.shared().world().saved()
    }

    /// Replaces the workspace with one [`FakeSlack::saved_messages`] wrote, so the bot can
    /// update, reply to and look up the messages it posted in an earlier life; new `ts` and
    /// ids follow the saved ones.
    pub fn restore_messages(&self, saved: &Value) {
        self.shared().world().restore(saved);
    }

    /// Every call received, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared().world().calls.clone()
    }

    /// The calls of one method, oldest first.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.shared()
            .world()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The calls of one method that Slack answered `ok:true`.
    pub fn ok_calls_to(&self, method: &str) -> Vec<Call> {
        self.calls_to(method).into_iter().filter(Call::ok).collect()
    }

    /// Forgets the recorded calls (the world — messages, views — stays).
    pub fn clear_calls(&self) {
        self.shared().world().calls.clear();
    }

    /// The messages of a channel (a user id means the bot's DM with them), in posting order,
    /// replies included, as Slack stores them (with `metadata`, `edited`, `thread_ts`…).
    pub fn messages_in(&self, channel: &str) -> Vec<Value> {
        let channel = World::resolve_channel(channel);
        self.shared()
            .world()
            .messages
            .get(&channel)
            .cloned()
            .unwrap_or_default()
    }

    /// The top-level messages of a channel, in posting order.
    pub fn top_level_messages_in(&self, channel: &str) -> Vec<Value> {
        self.messages_in(channel)
            .into_iter()
            .filter(|m| m.get("thread_ts").is_none_or(|t| *t == m["ts"]))
            .collect()
    }

    /// The replies in the thread of `thread_ts`, oldest first.
    pub fn thread_replies(&self, channel: &str, thread_ts: &str) -> Vec<Value> {
        self.messages_in(channel)
            .into_iter()
            .filter(|m| m["thread_ts"] == thread_ts && m["ts"] != thread_ts)
            .collect()
    }

    /// One message by channel and ts.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.shared()
            .world()
            .message_mut(&World::resolve_channel(channel), ts)
            .cloned()
    }

    /// The bot's DM channel with `user`.
    pub fn dm_channel_of(&self, user: &str) -> String {
        dm_channel_of(user)
    }

    /// The messages in the bot's DM with `user`.
    pub fn dms_to(&self, user: &str) -> Vec<Value> {
        self.messages_in(&dm_channel_of(user))
    }

    /// Ephemeral messages shown to `user`, oldest first (each has `channel` and `ephemeral_for`).
    pub fn ephemerals_for(&self, user: &str) -> Vec<Value> {
        self.shared()
            .world()
            .ephemerals
            .iter()
            .filter(|m| m["ephemeral_for"] == user)
            .cloned()
            .collect()
    }

    /// The Home view last published for `user`, as the stateful view Slack keeps.
    pub fn home_of(&self, user: &str) -> Option<Value> {
        let world = self.shared().world();
        let id = world.homes.get(user)?;
        world.views.get(id).cloned()
    }

    /// A view by id.
    pub fn view(&self, id: &str) -> Option<Value> {
        self.shared().world().views.get(id).cloned()
    }

    /// The modal opened, pushed or updated last.
    pub fn last_modal(&self) -> Option<Value> {
        let world = self.shared().world();
        let id = world.last_modal.as_ref()?;
        world.views.get(id).cloned()
    }

    /// Waits, without sleeping, until `condition` holds for the calls received so far; returns
    /// them. On timeout the error lists every call.
    pub async fn wait_for<F>(
        &self,
        condition: F,
        timeout: Duration,
    ) -> Result<Vec<Call>, WaitTimeout>
    where
        F: Fn(&[Call]) -> bool,
    {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared().changes.subscribe();
        loop {
            changes.borrow_and_update();
            let calls = self.calls();
            if condition(&calls) {
                return Ok(calls);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    let calls = self.calls();
                    if condition(&calls) {
                        return Ok(calls);
                    }
                    return Err(WaitTimeout {
                        waited: started.elapsed(),
                        calls,
                    });
                }
            }
        }
    }

    /// [`FakeSlack::wait_for`] with [`DEFAULT_WAIT`].
    pub async fn wait_until<F>(&self, condition: F) -> Result<Vec<Call>, WaitTimeout>
    where
        F: Fn(&[Call]) -> bool,
    {
        self.wait_for(condition, DEFAULT_WAIT).await
    }

    /// Waits until at least `count` calls of `method` were answered `ok:true`; returns them.
    pub async fn wait_for_ok_calls(
        &self,
        method: &str,
        count: usize,
    ) -> Result<Vec<Call>, WaitTimeout> {
        self.wait_until(|calls| {
            calls
                .iter()
                .filter(|c| c.method == method && c.ok())
                .count()
                >= count
        })
        .await?;
        Ok(self.ok_calls_to(method))
    }

    /// Waits for the first call of `method` matching `condition`.
    pub async fn wait_for_call<F>(&self, method: &str, condition: F) -> Result<Call, WaitTimeout>
    where
        F: Fn(&Call) -> bool,
    {
        let calls = self
            .wait_until(|calls| calls.iter().any(|c| c.method == method && condition(c)))
            .await?;
        Ok(calls
            .into_iter()
            .find(|c| c.method == method && condition(c))
            .expect("condition held"))
    }
}
