//! The upgrade from the release at commit e9f3a20: started on the database and the Slack
//! workspace that release left behind (`fixtures/upgrade-e9f3a20/`, written by
//! `upgrade_fixture.rs`), this build migrates the database, makes the Slack calls that were
//! owed, and carries every request still under way to its end through real clicks and the
//! clock.

use std::path::PathBuf;
use std::sync::Arc;

use accessbot::clock::ManualClock;
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

use crate::support::db::Backend;
use crate::support::fake_slack::FakeSlack;
use crate::support::story::*;
use crate::support::test_app::TestApp;

/// Pending approval; its cards are posted.
pub const WAITING_FOR_APPROVAL: i64 = 1;
/// Approved just before the stop: its provisioning cards and card updates are owed.
pub const APPROVED_UNANNOUNCED: i64 = 2;
/// Provisioned for an hour: its DM reached Slack but the answer was lost, its card updates
/// were rate-limited.
pub const PROVISIONED_ENDING_SOON: i64 = 3;
/// Its ten minutes are over (pending deprovisioning): its removal cards, its notice and its
/// card updates met Slack errors and wait for a retry.
pub const ENDED_UNANNOUNCED: i64 = 4;
/// Filed just before the stop: none of its cards is posted.
pub const FILED_UNPOSTED: i64 = 5;

/// The database file of the SQLite run, in the fixture folder.
pub const SQLITE_FILE: &str = "accessbot.sqlite3";
/// The `pg_dump` of the PostgreSQL run, in the fixture folder.
pub const POSTGRES_FILE: &str = "postgres.sql";
/// How long after [`written_at`] the release was stopped.
pub const STOPPED_AFTER: Duration = Duration::minutes(11);

/// Where the release's clock started when it wrote the fixture.
pub fn written_at() -> DateTime<Utc> {
    t0()
}

/// The fake Slack's workspace after the run on `backend`, in the fixture folder.
pub fn slack_file(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "slack-sqlite.json",
        Backend::Postgres => "slack-postgres.json",
    }
}

/// `name` in the fixture folder.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/fixtures/upgrade-e9f3a20")
        .join(name)
}

/// Puts the fixture of the story's backend into its fresh database and fake Slack.
async fn load_fixture(env: &StoryEnv) {
    match env.backend {
        Backend::Sqlite => {
            let path = env
                .db_url()
                .strip_prefix("sqlite://")
                .expect("a SQLite file URL");
            std::fs::copy(fixture_path(SQLITE_FILE), path).expect("copy the SQLite fixture");
        }
        Backend::Postgres => {
            let dump = std::fs::read_to_string(fixture_path(POSTGRES_FILE)).expect("the dump");
            let mut db = sqlx::PgConnection::connect(env.db_url())
                .await
                .expect("open the test database");
            sqlx::raw_sql(&dump)
                .execute(&mut db)
                .await
                .expect("load the dump");
            db.close().await.expect("close");
        }
    }
    let saved = std::fs::read_to_string(fixture_path(slack_file(env.backend))).expect("slack");
    env.slack
        .restore_messages(&serde_json::from_str(&saved).expect("slack JSON"));
}

/// The DM that says access to Figma ended.
const ENDED: &str = "⌛ Your access to *Figma* has ended";

story! {
    async fn what_e9f3a20_left_under_way_completes_after_the_upgrade(env: StoryEnv) {
        load_fixture(&env).await;
        let slack = &env.slack;
        let stopped_at = written_at() + STOPPED_AFTER;
        let clock = Arc::new(ManualClock::new(stopped_at));
        let app = TestApp::spawn_stepped(env.db_url(), slack, clock, &[]).await;

        // What the release left, read by this build (after its migrations).
        for (id, status) in [
            (WAITING_FOR_APPROVAL, "pending_approval"),
            (APPROVED_UNANNOUNCED, "pending_provisioning"),
            (PROVISIONED_ENDING_SOON, "provisioned"),
            (ENDED_UNANNOUNCED, "pending_deprovisioning"),
            (FILED_UNPOSTED, "pending_approval"),
        ] {
            assert_eq!(status_of(&app, id).await, status, "request {id}");
        }
        assert!(metric(&app, "accessbot_slack_calls_waiting").await > 0.0);
        // Cards posted before the upgrade, as Slack shows them.
        let first_approval = wait_card(slack, APPROVER, "approve", WAITING_FOR_APPROVAL).await;
        let approved_card = wait_card(slack, APPROVER, "approve", APPROVED_UNANNOUNCED).await;
        let soon_receipt =
            wait_card(slack, REQUESTER, "cancel_request", PROVISIONED_ENDING_SOON).await;
        let mut soon_admin_cards = Vec::new();
        for to in [ADMIN1, ADMIN_CHANNEL] {
            soon_admin_cards
                .push(wait_card(slack, to, "confirm_provisioning", PROVISIONED_ENDING_SOON).await);
        }
        let ended_receipt = wait_card(slack, REQUESTER, "release_access", ENDED_UNANNOUNCED).await;
        let request = app.request(&PROVISIONED_ENDING_SOON.to_string()).await;
        let expires: DateTime<Utc> = request["expires_at"]
            .as_str()
            .and_then(|at| at.parse().ok())
            .unwrap_or_else(|| panic!("an end date: {request}"));
        let soon = |s: &FakeSlack| ready_to_go_dms(s, expires);
        assert_eq!(soon(slack), 1, "the DM whose answer was lost is in Slack");

        // Past the backoffs and the minute Slack asked for: every owed call is made, once.
        app.step(stopped_at + Duration::minutes(2)).await;
        assert_eq!(metric(&app, "accessbot_slack_calls_waiting").await, 0.0);
        assert!(failed_deliveries(&app).await.is_empty());
        let approved_card = wait_card_until(slack, &approved_card, "show the approval", |c| {
            !c.has_actions() && c.text().contains("Approved by")
        })
        .await;
        for to in [ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            wait_card(slack, to, "confirm_provisioning", APPROVED_UNANNOUNCED).await;
        }
        assert_eq!(soon(slack), 1, "the lost answer's DM is not sent twice");
        wait_card_until(slack, &soon_receipt, "say ready to go", |c| {
            c.text().contains("Ready to go") && c.has_buttons(slack)
        })
        .await;
        for card in &soon_admin_cards {
            wait_card_until(slack, card, "show who provisioned", |c| {
                !c.has_actions() && c.text().contains(&format!("Provisioned by <@{ADMIN1}>"))
            })
            .await;
        }
        let ended_removal = wait_card(slack, ADMIN1, "confirm_removal", ENDED_UNANNOUNCED).await;
        wait_card(slack, ADMIN_CHANNEL, "confirm_removal", ENDED_UNANNOUNCED).await;
        assert_eq!(dms_containing(slack, REQUESTER, ENDED), 1);
        wait_card_until(slack, &ended_receipt, "show the end", |c| {
            c.text().contains("Access ended")
        })
        .await;
        let unposted_approval = wait_card(slack, APPROVER, "approve", FILED_UNPOSTED).await;
        wait_card(slack, REQUESTER, "cancel_request", FILED_UNPOSTED).await;

        // Each request is carried to its end by clicks on the cards, old and new.
        approve_and_provision(&app, WAITING_FOR_APPROVAL, &first_approval, ADMIN1).await;
        approve_and_provision(&app, FILED_UNPOSTED, &unposted_approval, ADMIN2).await;
        let card = wait_card(slack, ADMIN2, "confirm_provisioning", APPROVED_UNANNOUNCED).await;
        click(&app, ADMIN2, "confirm_provisioning", APPROVED_UNANNOUNCED, &card).await;
        shows_provisioned(&app, APPROVED_UNANNOUNCED, &approved_card, ADMIN2).await;
        confirm_removal(&app, ENDED_UNANNOUNCED, &ended_removal, &ended_receipt).await;

        // The hour of the last grant runs out on the clock; its removal is confirmed.
        app.step(expires + Duration::seconds(1)).await;
        assert_eq!(
            status_of(&app, PROVISIONED_ENDING_SOON).await,
            "pending_deprovisioning"
        );
        assert_eq!(dms_containing(slack, REQUESTER, ENDED), 2);
        let removal = wait_card(slack, ADMIN1, "confirm_removal", PROVISIONED_ENDING_SOON).await;
        confirm_removal(&app, PROVISIONED_ENDING_SOON, &removal, &soon_receipt).await;
        for card in &soon_admin_cards {
            wait_card_until(slack, card, "show the confirmed removal", |c| {
                c.text().contains(&format!("removal confirmed by <@{ADMIN1}>"))
            })
            .await;
        }

        assert_eq!(metric(&app, "accessbot_slack_calls_waiting").await, 0.0);
        assert!(failed_deliveries(&app).await.is_empty());
        app.stop().await;
    }
}

story! {
    /// e9f3a20 kept an `Idempotency-Key` on the request it filed, with no body to compare:
    /// after the upgrade the key still returns that request, as it did, until its day is
    /// over; then it files anew and is bound to its body.
    async fn an_idempotency_key_of_e9f3a20_replays_after_the_upgrade(env: StoryEnv) {
        load_fixture(&env).await;
        keep_key_as_e9f3a20_did(&env, FILED_UNPOSTED, "order-e9f3a20").await;
        let stopped_at = written_at() + STOPPED_AFTER;
        let clock = Arc::new(ManualClock::new(stopped_at));
        let app = TestApp::spawn_stepped(env.db_url(), &env.slack, clock, &[]).await;
        let key = [("Idempotency-Key", "order-e9f3a20")];
        let body = json!({"app": "github", "target_user": REQUESTER, "comment": "For the release"});
        let post = |body: Value| app.api_post_with_headers("/api/v1/requests", body, &key);

        let (status, replayed) = post(body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{replayed}");
        assert_eq!(replayed["id"], FILED_UNPOSTED);
        let (status, replayed) = post(json!({"app": "github", "target_user": ADMIN1})).await;
        assert_eq!((status, &replayed["id"]), (StatusCode::OK, &json!(FILED_UNPOSTED)), "no body was kept to compare");

        // Request 5 was filed when the release stopped: a day later its key is over.
        app.advance(Duration::hours(24));
        let (status, fresh) = post(body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{fresh}");
        assert_ne!(fresh["id"], FILED_UNPOSTED);
        let (status, again) = post(body).await;
        assert_eq!((status, &again["id"]), (StatusCode::OK, &fresh["id"]));
        let (status, other) = post(json!({"app": "github", "target_user": ADMIN1})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
        app.stop().await;
    }
}

/// Keeps `key` on request `id` the way e9f3a20 kept an `Idempotency-Key`: in
/// `requests.idempotency_key`, before this build migrates the database.
async fn keep_key_as_e9f3a20_did(env: &StoryEnv, id: i64, key: &str) {
    const KEEP: &str = "UPDATE requests SET idempotency_key = $1 WHERE id = $2";
    let updated = match env.backend {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(env.db_url())
                .await
                .expect("open");
            let done = sqlx::query(KEEP).bind(key).bind(id).execute(&mut db).await;
            db.close().await.expect("close");
            done.map(|done| done.rows_affected())
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(env.db_url())
                .await
                .expect("open");
            let done = sqlx::query(KEEP).bind(key).bind(id).execute(&mut db).await;
            db.close().await.expect("close");
            done.map(|done| done.rows_affected())
        }
    };
    assert_eq!(updated.expect("keep the key"), 1);
}

/// The "ready to go" DMs to the requester about the grant that ends at `expires`.
fn ready_to_go_dms(slack: &FakeSlack, expires: DateTime<Utc>) -> usize {
    let until = format!("<!date^{}^", expires.timestamp());
    slack
        .top_level_messages_in(REQUESTER)
        .iter()
        .filter_map(|m| m["text"].as_str())
        .filter(|text| text.contains("You're ready to go") && text.contains(&until))
        .count()
}

/// `user` clicks `action_id` on `card` of request `id`, and the app does what follows.
async fn click(app: &TestApp, user: &str, action_id: &str, id: i64, card: &Card) {
    let (status, body) = app
        .click(user, action_id, &id.to_string(), &card.channel, &card.ts)
        .await;
    assert_eq!(status, 200, "{action_id} by {user} on {id}: {body}");
    app.settle().await;
}

/// The approver approves on `approval`, then `admin` confirms provisioning on their new card.
async fn approve_and_provision(app: &TestApp, id: i64, approval: &Card, admin: &str) {
    click(app, APPROVER, "approve", id, approval).await;
    assert_eq!(status_of(app, id).await, "pending_provisioning");
    let card = wait_card(&app.slack, admin, "confirm_provisioning", id).await;
    click(app, admin, "confirm_provisioning", id, &card).await;
    shows_provisioned(app, id, approval, admin).await;
}

/// Request `id` is provisioned, and its approval card says by whom.
async fn shows_provisioned(app: &TestApp, id: i64, approval: &Card, admin: &str) {
    assert_eq!(status_of(app, id).await, "provisioned");
    let provisioned_by = format!("Provisioned by <@{admin}>");
    wait_card_until(&app.slack, approval, "show who provisioned", |c| {
        !c.has_actions() && c.text().contains(&provisioned_by)
    })
    .await;
}

/// [`ADMIN1`] confirms the removal on `removal`; the request has expired and its cards say so.
async fn confirm_removal(app: &TestApp, id: i64, removal: &Card, receipt: &Card) {
    click(app, ADMIN1, "confirm_removal", id, removal).await;
    assert_eq!(status_of(app, id).await, "expired");
    let confirmed = format!("removal confirmed by <@{ADMIN1}>");
    for card in [removal, receipt] {
        wait_card_until(&app.slack, card, "show the confirmed removal", |c| {
            !c.has_actions() && c.text().contains(&confirmed)
        })
        .await;
    }
}

story! {
    /// Requests open at the upgrade keep the lists they were filed with: nothing is
    /// rewritten at start. The first `PUT` that changes the app fans out to them (and to
    /// no final request); one that changes nothing rewrites nothing.
    async fn requests_open_at_the_upgrade_keep_their_lists_until_the_app_changes(env: StoryEnv) {
        load_fixture(&env).await;
        let clock = Arc::new(ManualClock::new(written_at() + STOPPED_AFTER));
        let app = TestApp::spawn_stepped(env.db_url(), &env.slack, clock, &[]).await;
        let open = [WAITING_FOR_APPROVAL, APPROVED_UNANNOUNCED, FILED_UNPOSTED];
        let before = trails(&app, &open).await;
        for id in open {
            let request = app.request(&id.to_string()).await;
            assert_eq!(request["approvers"], json!([APPROVER]), "request {id}");
            assert_eq!(request["app_admins"], json!([ADMIN1, ADMIN2]), "request {id}");
        }
        put_app(&app, "github", github()).await;
        assert_eq!(trails(&app, &open).await, before, "the same lists rewrite nothing");

        let mut changed = github();
        changed["approvers"] = json!(["UAPPROVER2"]);
        put_app(&app, "github", changed).await;
        for id in open {
            let request = app.request(&id.to_string()).await;
            assert_eq!(request["approvers"], json!(["UAPPROVER2"]), "request {id}");
            let kinds = event_kinds(&app, &id.to_string()).await;
            assert_eq!(kinds.last().map(|(k, _)| k.as_str()), Some("assignees_changed"));
        }
        // Past the backoffs of what the release left owed, every call is made.
        app.step(written_at() + STOPPED_AFTER + Duration::minutes(2)).await;
        for id in [WAITING_FOR_APPROVAL, FILED_UNPOSTED] {
            wait_card(&env.slack, "UAPPROVER2", "approve", id).await;
        }
        app.stop().await;
    }
}

/// The audit trail (kind, actor) of each request of `ids`.
async fn trails(app: &TestApp, ids: &[i64]) -> Vec<Vec<(String, String)>> {
    let mut trails = Vec::new();
    for id in ids {
        trails.push(event_kinds(app, &id.to_string()).await);
    }
    trails
}
