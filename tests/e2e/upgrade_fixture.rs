//! Writes `tests/e2e/fixtures/upgrade-e9f3a20/`: what the release at commit e9f3a20 leaves
//! under way when it is stopped (see that folder's README). The fixture is history: it was
//! written once by that release, and the upgrade test reads it with every later one. Never
//! regenerate it with a later release; CI never runs this.
//!
//! ```text
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo test --test e2e generate_upgrade_fixture -- --ignored
//! ```

use std::path::Path;
use std::sync::Arc;

use accessbot::clock::ManualClock;
use serde_json::json;

use crate::support::db::Backend;
use crate::support::fake_slack::Fault;
use crate::support::story::*;
use crate::support::test_app::TestApp;
use crate::upgrade_e9f3a20::{
    fixture_path, slack_file, written_at, APPROVED_UNANNOUNCED, ENDED_UNANNOUNCED, FILED_UNPOSTED,
    POSTGRES_FILE, PROVISIONED_ENDING_SOON, SQLITE_FILE, STOPPED_AFTER, WAITING_FOR_APPROVAL,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "writes the committed upgrade fixture; run by hand, never by CI"]
async fn generate_upgrade_fixture() {
    assert!(
        std::env::var("TEST_DATABASE_URL").is_ok(),
        "the fixture needs both databases: set TEST_DATABASE_URL"
    );
    std::fs::create_dir_all(fixture_path("")).expect("create the fixture folder");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = StoryEnv::new(backend)
            .await
            .expect("the backend is configured");
        leave_work_under_way(&env).await;
        let slack = serde_json::to_string_pretty(&env.slack.saved_messages()).unwrap();
        std::fs::write(fixture_path(slack_file(backend)), slack + "\n").expect("write slack");
        match backend {
            Backend::Sqlite => save_sqlite(env.db_url(), &fixture_path(SQLITE_FILE)).await,
            Backend::Postgres => dump_postgres(env.db_url(), &fixture_path(POSTGRES_FILE)),
        }
    }
}

/// Runs the release on a manual clock, stepping its worker by hand, and stops it with every
/// kind of work under way: see the README of the fixture for the list.
async fn leave_work_under_way(env: &StoryEnv) {
    let clock = Arc::new(ManualClock::new(written_at()));
    let app = TestApp::spawn_stepped(env.db_url(), &env.slack, clock, &[]).await;
    let slack = &env.slack;
    put_app(&app, "github", github()).await;
    put_app(&app, "figma", figma(false, true)).await;

    assert_eq!(file_github(&app).await, WAITING_FOR_APPROVAL);
    assert_eq!(file_github(&app).await, APPROVED_UNANNOUNCED);
    let ending_soon = number_of(&file(&app, "figma", asking_for("1h")).await.1);
    assert_eq!(ending_soon, PROVISIONED_ENDING_SOON);
    let ended = number_of(&file(&app, "figma", asking_for("10m")).await.1);
    assert_eq!(ended, ENDED_UNANNOUNCED);
    app.settle().await;

    // Ends in ten minutes; provisioned with every call made.
    let card = wait_card(slack, ADMIN1, "confirm_provisioning", ended).await;
    confirm(&app, ADMIN1, "confirm_provisioning", ended, &card).await;
    app.settle().await;

    // The ten minutes are over: the removal cards and the notice meet Slack errors.
    slack.fail_next_n("chat.postMessage", Fault::ServerError, 20);
    slack.fail_next_n("chat.update", Fault::Status(503), 20);
    app.step(written_at() + STOPPED_AFTER).await;
    slack.clear_faults();
    assert_eq!(status_of(&app, ended).await, "pending_deprovisioning");

    // Provisioned for an hour: the DM reaches Slack but its answer is lost, and Slack
    // rate-limits the card updates. (The retries above are not due yet.)
    let card = wait_card(slack, ADMIN1, "confirm_provisioning", ending_soon).await;
    confirm(&app, ADMIN1, "confirm_provisioning", ending_soon, &card).await;
    slack.fail_next("chat.postMessage", Fault::DropAfterProcessing);
    slack.fail_next_n(
        "chat.update",
        Fault::RateLimited {
            retry_after_secs: 60,
        },
        20,
    );
    app.settle().await;
    slack.clear_faults();
    assert_eq!(status_of(&app, ending_soon).await, "provisioned");

    // Approved, and a new request filed, just before the stop: the worker never ran.
    let card = wait_card(slack, APPROVER, "approve", APPROVED_UNANNOUNCED).await;
    confirm(&app, APPROVER, "approve", APPROVED_UNANNOUNCED, &card).await;
    assert_eq!(file_github(&app).await, FILED_UNPOSTED);
    assert!(
        metric(&app, "accessbot_slack_calls_waiting").await > 0.0,
        "Slack calls are owed"
    );
    assert!(failed_deliveries(&app).await.is_empty());
    app.stop().await;
}

/// Files a request for GitHub; returns its id.
async fn file_github(app: &TestApp) -> i64 {
    number_of(&file(app, "github", json!({})).await.1)
}

/// `user` clicks `action_id` on `card` of request `id`; Slack gets its 200.
async fn confirm(app: &TestApp, user: &str, action_id: &str, id: i64, card: &Card) {
    let (status, body) = app
        .click(user, action_id, &id.to_string(), &card.channel, &card.ts)
        .await;
    assert_eq!(status, 200, "{action_id} on {id}: {body}");
}

/// The SQLite database as one file, its WAL folded in (`VACUUM INTO` writes a clean copy).
async fn save_sqlite(url: &str, to: &Path) {
    let _ = std::fs::remove_file(to);
    let pool = sqlx::SqlitePool::connect(url).await.expect("open SQLite");
    sqlx::query("VACUUM INTO ?")
        .bind(to.display().to_string())
        .execute(&pool)
        .await
        .expect("VACUUM INTO the fixture");
    pool.close().await;
}

/// `pg_dump` of the database as plain SQL with one INSERT per row, without owners or grants,
/// less the `\restrict` lines of psql (so any SQL client can load it).
fn dump_postgres(url: &str, to: &Path) {
    let output = std::process::Command::new("pg_dump")
        .args([
            "--column-inserts",
            "--no-owner",
            "--no-privileges",
            "--dbname",
            url,
        ])
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = String::from_utf8(output.stdout).expect("the dump is UTF-8");
    let sql: String = dump
        .lines()
        .filter(|line| !line.starts_with('\\'))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(to, sql).expect("write the dump");
}
