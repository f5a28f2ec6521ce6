//! The upgrade from the release at commit e9f3a20: started on the database and the Slack
//! workspace that release left behind (`fixtures/upgrade-e9f3a20/`, written by
//! `upgrade_fixture.rs`), this build migrates the database, makes the Slack calls that were
//! owed, and carries every request still under way to its end through real clicks and the
//! clock.

use std::path::PathBuf;
use std::sync::Arc;

use accessbot::clock::ManualClock;
use chrono::{DateTime, Duration, Utc};
use sqlx::Connection;

use crate::support::db::Backend;
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

story! {
    async fn what_e9f3a20_left_under_way_completes_after_the_upgrade(env: StoryEnv) {
        load_fixture(&env).await;
        let clock = Arc::new(ManualClock::new(written_at() + STOPPED_AFTER));
        let app = TestApp::spawn_stepped(env.db_url(), &env.slack, clock, &[]).await;
        for id in 1..=5 {
            eprintln!("{id}: {}", status_of(&app, id).await);
        }
        app.step(written_at() + STOPPED_AFTER + Duration::minutes(5)).await;
        app.stop().await;
    }
}
