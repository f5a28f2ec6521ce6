//! Socket Mode (SPEC §8.3) against the fake Socket Mode server on a loopback `ws://`: the
//! bot runs with `SLACK_APP_TOKEN` and no signing secret, acknowledges each envelope at
//! once, handles it with the HTTP handlers, and keeps a connection through drops, refreshes
//! and refusals.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accessbot::clock::SystemClock;
use accessbot::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

use crate::support::db::Backend;
use crate::support::fake_slack::{FakeSlack, Greeting, SocketModeFake, APP_TOKEN};
use crate::support::signer::{self, ButtonClick, COMMAND};
use crate::support::story::*;
use crate::support::test_app::{test_vars, TestApp};

/// Socket Mode on, HTTP's signing secret off, reconnections after a few milliseconds.
const SOCKET_VARS: &[(&str, &str)] = &[
    ("SLACK_APP_TOKEN", APP_TOKEN),
    ("SLACK_SIGNING_SECRET", ""),
    ("ACCESSBOT_SOCKET_BACKOFF", "10ms"),
];

/// How soon an ack must arrive: Slack allows 3 s, the bot answers in far less.
const PROMPT: Duration = Duration::from_millis(1500);

async fn spawn_socket(env: &StoryEnv) -> (TestApp, SocketModeFake, usize) {
    let app = env.spawn_with(SOCKET_VARS).await;
    let socket = env.slack.socket_mode();
    let conn = socket.wait_greeted(1).await;
    (app, socket, conn)
}

/// The `block_actions` payload of `user` clicking `action_id` on `card`.
fn click_payload(user: &str, action_id: &str, card: &Card) -> Value {
    let button = ButtonClick::find_in(&card.message, action_id)
        .unwrap_or_else(|| panic!("no {action_id} on {}", card.message));
    signer::block_actions_in_message(user, &card.channel, &card.ts, Some(&card.message), &button)
}

/// An Events API body of `user` opening the Home tab, with a fresh event id.
fn home_opened(user: &str) -> Value {
    signer::event_callback(signer::app_home_opened_event(user, "home", None))
}

fn homes_published_for(slack: &FakeSlack, user: &str) -> usize {
    slack
        .ok_calls_to("views.publish")
        .iter()
        .filter(|c| c.arg("user_id") == Some(user))
        .count()
}

/// A request for GitHub waiting for [`APPROVER`], and the approver's card.
async fn pending_request(app: &TestApp) -> (String, Card) {
    put_app(app, "github", github()).await;
    let (id, _) = file(app, "github", json!({})).await;
    let card = card_with_button(&app.slack, APPROVER, "approve").await;
    (id, card)
}

async fn approvals(app: &TestApp, id: &str) -> usize {
    event_kinds(app, id)
        .await
        .iter()
        .filter(|(kind, _)| kind == "approved")
        .count()
}

story! {
    /// The connection drops right after Slack sent a click, before any ack could be read:
    /// the click comes again on the new connection, and the request is approved once.
    async fn a_click_dropped_mid_delivery_is_redelivered_and_decided_once(env: StoryEnv) {
        let (app, socket, conn) = spawn_socket(&env).await;
        let (id, card) = pending_request(&app).await;

        let envelope = socket.push_then_drop(conn, "interactive", click_payload(APPROVER, "approve", &card));
        let again = socket.wait_greeted(2).await;
        assert_ne!(again, conn);
        let ack = socket.wait_ack(&envelope).await;
        assert_eq!(ack.connection, again, "acknowledged on the new connection");

        eventually("the approval", || async { app.request(&id).await["status"] != "pending_approval" }).await;
        wait_card_until(&app.slack, &card, "the card to lose its buttons", |c| !c.has_actions()).await;
        assert_eq!(approvals(&app, &id).await, 1, "{:?}", event_kinds(&app, &id).await);
        assert!(metric(&app, "accessbot_socket_reconnects_total").await >= 1.0);
        app.stop().await;
    }
}

story! {
    /// On `refresh_requested` the bot opens a new connection and closes the old one only
    /// after the new one said hello; what Slack sent on either is handled.
    async fn a_refresh_opens_the_new_connection_before_closing_the_old(env: StoryEnv) {
        let (app, socket, old) = spawn_socket(&env).await;
        socket.disconnect(old, "refresh_requested");
        // Slack may still deliver on the old connection until it is closed.
        let before = socket.push(old, "events_api", home_opened(REQUESTER));
        let new = socket.wait_greeted(2).await;
        socket.wait(&format!("connection {old} to be closed"), |conns, _| conns[old].closed.is_some()).await;
        let after = socket.push(new, "events_api", home_opened(APPROVER));

        let conns = socket.connections();
        let (old_conn, new_conn) = (&conns[old], &conns[new]);
        assert!(old_conn.closed_by_client, "the bot closed the old connection: {old_conn:?}");
        let greeted = new_conn.greeted.expect("the new connection said hello");
        assert!(greeted <= old_conn.closed.unwrap(), "new {new_conn:?} before old closed {old_conn:?}");
        assert_eq!(conns.len(), 2, "one replacement: {conns:?}");

        assert_eq!(socket.wait_ack(&before).await.connection, old);
        assert_eq!(socket.wait_ack(&after).await.connection, new);
        wait_for_state(&app.slack, "both Homes", |s| {
            homes_published_for(s, REQUESTER) == 1 && homes_published_for(s, APPROVER) == 1
        })
        .await;
        app.stop().await;
    }
}

/// Holds the database's write lock (SQLite) or the requests table (PostgreSQL) until
/// dropped, so that a click's handler waits.
enum Lock {
    Sqlite(rusqlite::Connection),
    Postgres(sqlx::PgConnection),
}

impl Lock {
    async fn take(backend: Backend, db_url: &str) -> Lock {
        match backend {
            Backend::Sqlite => {
                let path = db_url.trim_start_matches("sqlite://");
                let path = path.split('?').next().unwrap();
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                conn.execute_batch("BEGIN EXCLUSIVE")
                    .expect("take the write lock");
                Lock::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(db_url).await.expect("connect");
                sqlx::query("BEGIN")
                    .execute(&mut conn)
                    .await
                    .expect("begin");
                sqlx::query("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .expect("lock the requests");
                Lock::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Lock::Sqlite(conn) => conn.execute_batch("COMMIT").expect("commit"),
            Lock::Postgres(mut conn) => {
                sqlx::query("COMMIT")
                    .execute(&mut conn)
                    .await
                    .expect("commit");
            }
        }
    }
}

story! {
    /// A click whose handler waits on the database does not hold back the acks of the
    /// envelopes after it, nor its own.
    async fn a_slow_handler_does_not_delay_other_acks(env: StoryEnv) {
        let (app, socket, conn) = spawn_socket(&env).await;
        let (id, card) = pending_request(&app).await;

        let lock = Lock::take(env.backend, env.db_url()).await;
        let sent = Instant::now();
        let slow = socket.push(conn, "interactive", click_payload(APPROVER, "approve", &card));
        let others: Vec<String> = [OUTSIDER, ADMIN1, ADMIN2]
            .iter()
            .map(|user| socket.push(conn, "events_api", home_opened(user)))
            .collect();
        for envelope in std::iter::once(&slow).chain(&others) {
            let ack = socket.wait_ack(envelope).await;
            assert!(ack.at.duration_since(sent) < PROMPT, "{envelope} acked after {:?}", ack.at.duration_since(sent));
        }
        let released = Instant::now();
        lock.release().await;

        eventually("the approval", || async { app.request(&id).await["status"] != "pending_approval" }).await;
        assert_eq!(approvals(&app, &id).await, 1);
        for ack in socket.acks() {
            assert!(ack.at < released, "every ack came while the handler waited: {ack:?}");
        }
        app.stop().await;
    }
}

story! {
    /// `/access` opens the modal; its submission without an app is refused with
    /// `response_action: errors` in the ack; `/access help` answers in the ack too.
    async fn responses_travel_in_the_ack(env: StoryEnv) {
        let (app, socket, conn) = spawn_socket(&env).await;
        put_app(&app, "github", github()).await;

        let command = |text: &str| -> Value {
            let fields = signer::slash_command(REQUESTER, "CGENERAL", COMMAND, text);
            Value::Object(fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
        };
        let help = socket.push(conn, "slash_commands", command("help"));
        let ack = socket.wait_ack(&help).await;
        let payload = ack.payload.expect("help answers in the ack");
        assert_eq!(payload["response_type"], "ephemeral");
        assert!(payload["text"].as_str().unwrap_or_default().contains("/access"), "{payload}");

        let open = socket.push(conn, "slash_commands", command(""));
        assert!(socket.wait_ack(&open).await.payload.is_none());
        let modal = opened_modal(&app.slack, 1).await;

        let submission = signer::view_submission(REQUESTER, &modal, json!({}));
        let submitted = socket.push(conn, "interactive", submission);
        let ack = socket.wait_ack(&submitted).await;
        let payload = ack.payload.expect("a response_action in the ack");
        assert_eq!(payload["response_action"], "errors", "{payload}");
        assert!(payload["errors"]["app"].is_string(), "{payload}");
        app.stop().await;
    }
}

story! {
    /// Frames the bot cannot read are acknowledged when they have an id, and counted by type.
    async fn an_unparseable_envelope_is_counted(env: StoryEnv) {
        let (app, socket, conn) = spawn_socket(&env).await;
        let broken = json!({"envelope_id": "bad-1", "type": "interactive", "payload": {"type": 42}});
        socket.send_raw(conn, broken.to_string());
        socket.send_raw(conn, "not json at all".into());
        let unknown = json!({"envelope_id": "bad-2", "type": "future_kind", "payload": {}});
        socket.send_raw(conn, unknown.to_string());
        socket.wait_ack("bad-1").await;
        socket.wait_ack("bad-2").await;

        let sample = |kind: &str| format!("accessbot_socket_envelopes_unparsed_total{{type=\"{kind}\"}}");
        eventually("the counts", || async {
            let (_, text) = app.get_text("/metrics").await;
            sample_value(&text, &sample("interactive")) == 1.0
                && sample_value(&text, &sample("not_json")) == 1.0
                && sample_value(&text, &sample("other")) == 1.0
        })
        .await;
        // The connection keeps working.
        let fine = socket.push(conn, "events_api", home_opened(OUTSIDER));
        socket.wait_ack(&fine).await;
        app.stop().await;
    }
}

story! {
    /// Slack's retry of an event (`retry_attempt` 1, same `event_id`) is acknowledged and
    /// not handled again.
    async fn a_retried_event_is_handled_once(env: StoryEnv) {
        let (app, socket, conn) = spawn_socket(&env).await;
        let first = socket.push(conn, "events_api", home_opened(REQUESTER));
        socket.wait_ack(&first).await;
        wait_for_state(&app.slack, "the Home", |s| homes_published_for(s, REQUESTER) == 1).await;

        socket.redeliver(conn, &first, 1);
        socket.wait("the retry's ack", |_, acks| acks.iter().filter(|a| a.envelope_id == first).count() == 2).await;
        // A later event is handled after the retry was (both go through the store in order
        // of arrival): once its Home is out, the retry has had its chance.
        let later = socket.push(conn, "events_api", home_opened(OUTSIDER));
        socket.wait_ack(&later).await;
        wait_for_state(&app.slack, "the later Home", |s| homes_published_for(s, OUTSIDER) == 1).await;
        assert_eq!(homes_published_for(&app.slack, REQUESTER), 1, "the retry was handled again");
        app.stop().await;
    }
}

story! {
    /// `too_many_websockets` backs off and tries again; `link_disabled` stops Socket Mode
    /// for good while HTTP keeps serving, and `/readyz` says Slack cannot reach the bot.
    async fn refusals_back_off_and_link_disabled_stops(env: StoryEnv) {
        let socket = env.slack.socket_mode();
        socket.greet_next(Greeting::Refuse("too_many_websockets"));
        let app = env.spawn_with(SOCKET_VARS).await;
        let conn = socket.wait_greeted(1).await;
        assert_eq!(socket.connections().len(), 2, "refused, then connected");
        assert!(metric(&app, "accessbot_socket_reconnects_total").await >= 1.0);
        assert_eq!(metric(&app, "accessbot_socket_connections_opened_total").await, 1.0);
        let (status, _) = app.raw_get("/readyz").await;
        assert_eq!(status, StatusCode::OK);

        socket.disconnect(conn, "link_disabled");
        eventually("/readyz to say Socket Mode stopped", || async {
            app.raw_get("/readyz").await.0 == StatusCode::SERVICE_UNAVAILABLE
        })
        .await;
        let (_, body) = app.get_text("/readyz").await;
        assert!(body.contains("link_disabled"), "{body}");
        let (status, _) = app.raw_get("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.api_get("/api/v1/apps").await;
        assert_eq!(status, StatusCode::OK, "the API keeps serving");
        let opened = app.slack.calls_to("apps.connections.open").len();
        assert_eq!(socket.connections().len(), 2, "no new connection after link_disabled");
        assert_eq!(opened, 2);
        app.stop().await;
    }
}

story! {
    /// Without a signing secret the HTTP Slack endpoints are closed, and everything else
    /// works; a click over Socket Mode decides.
    async fn socket_mode_runs_without_a_signing_secret(env: StoryEnv) {
        let (app, socket, conn) = spawn_socket(&env).await;
        assert!(!app.vars.contains_key("SLACK_SIGNING_SECRET"));
        let (id, card) = pending_request(&app).await;
        let (status, body) = app.post_unsigned("/slack/interactivity", "application/x-www-form-urlencoded", "payload=%7B%7D").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.to_string().contains("Socket Mode"), "{body}");

        let click = socket.push(conn, "interactive", click_payload(APPROVER, "approve", &card));
        socket.wait_ack(&click).await;
        eventually("the approval", || async { app.request(&id).await["status"] != "pending_approval" }).await;
        let (status, _) = app.raw_get("/readyz").await;
        assert_eq!(status, StatusCode::OK);
        app.stop().await;
    }
}

/// Start-up with Socket Mode against `slack`, with `extra` variables; the error if it fails.
async fn start_up(db_url: &str, slack: &FakeSlack, extra: &[(&str, &str)]) -> Option<String> {
    let mut vars: HashMap<String, String> = test_vars(db_url, slack);
    for (name, value) in SOCKET_VARS.iter().chain(extra) {
        if value.is_empty() {
            vars.remove(*name);
        } else {
            vars.insert(name.to_string(), value.to_string());
        }
    }
    let config = Config::from_vars(&vars).expect("the configuration is valid");
    accessbot::App::build(config, Arc::new(SystemClock))
        .await
        .err()
        .map(|err| err.to_string())
}

story! {
    /// A `ws://` URL to a host that is not loopback, and an app token Slack refuses, stop
    /// start-up with a message that says what to fix (and never the ticket).
    async fn insecure_urls_and_refused_tokens_stop_start_up(db_url: String) {
        let slack = FakeSlack::start().await;
        slack.socket_mode().hand_out("ws://192.0.2.10:8080/link/?ticket=secret-ticket");
        let err = start_up(&db_url, &slack, &[]).await.expect("start-up is refused");
        assert!(err.contains("ws://") && err.contains("wss://"), "{err}");
        assert!(!err.contains("secret-ticket"), "{err}");

        let slack = FakeSlack::start().await;
        let err = start_up(&db_url, &slack, &[("SLACK_APP_TOKEN", "xapp-wrong")])
            .await
            .expect("start-up is refused");
        assert!(err.contains("SLACK_APP_TOKEN") && err.contains("invalid_auth"), "{err}");
        assert!(!err.contains("xapp-wrong"), "{err}");
    }
}
