//! Configuration as an operator meets it: `.env` only from the working directory, the
//! environment winning over it, a malformed line stopping start-up by its number, a plain
//! http:// Slack API refused, durations capped at ten years, and the SQLite files created
//! owner-only (0600).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::db::TestDb;
use crate::support::fake_slack::FakeSlack;
use crate::support::process::AppProcess;
use crate::support::story::*;

/// How long a refused start may take to exit.
const REFUSED_WITHIN: Duration = Duration::from_secs(10);

/// A folder of the test's own under the temp directory, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let path = std::env::temp_dir().join(format!(
            "accessbot_config_{}_{:016x}_{name}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path).expect("create the test folder");
        Folder(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the folder");
        }
        std::fs::write(&path, text).expect("write the test file");
        path
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{} should exist: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_sqlite_database_its_wal_and_its_lock_are_owner_only() {
    let folder = Folder::new("modes");
    let db = folder.path().join("accessbot.db");
    let slack = FakeSlack::start().await;
    let bot = AppProcess::start_in(
        folder.path(),
        &format!("sqlite://{}", db.display()),
        &slack,
        &[],
    )
    .await;
    bot.put_app("github", github()).await;
    for file in [
        db.clone(),
        with_suffix(&db, "-wal"),
        with_suffix(&db, "-shm"),
        with_suffix(&db, ".lock"),
    ] {
        assert_eq!(format!("{:o}", mode_of(&file)), "600", "{}", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_existing_database_keeps_the_mode_its_owner_gave_it() {
    let db = TestDb::sqlite().await;
    let path = PathBuf::from(db.url().trim_start_matches("sqlite://"));
    std::fs::write(&path, b"").expect("create an empty database");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640))
        .expect("set the database's mode");
    let store = db.store().await;
    store.ping().await.expect("the store answers");
    assert_eq!(mode_of(&path), 0o640);
    assert_eq!(
        mode_of(&with_suffix(&path, "-wal")),
        0o640,
        "SQLite copies the mode"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_env_line_stops_start_up_naming_its_line() {
    let folder = Folder::new("malformed");
    folder.write(
        ".env",
        "ACCESSBOT_PUBLIC_URL=http://accessbot.test\n# a comment\nthis line has-a-secret\n",
    );
    let db = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;
    let (status, output) =
        AppProcess::run_in_expecting_exit(folder.path(), db.url(), &slack, &[], REFUSED_WITHIN)
            .await;
    assert!(
        !status.success(),
        "a malformed .env must stop start-up: {output}"
    );
    assert!(output.contains(".env line 3: "), "names the line: {output}");
    assert!(
        !output.contains("has-a-secret"),
        "never repeats the line: {output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_env_in_a_parent_folder_is_ignored() {
    let folder = Folder::new("parent");
    // Were this read, start-up would stop on its first line.
    folder.write(".env", "not a setting at all\n");
    let working = folder.path().join("work");
    std::fs::create_dir_all(&working).expect("create the working folder");
    let db = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;
    let bot = AppProcess::start_in(&working, db.url(), &slack, &[]).await;
    bot.put_app("github", github()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_env_in_the_working_directory_is_read_and_the_environment_wins_over_it() {
    let folder = Folder::new("read");
    let db = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;

    // Read: its over-long reminder stops start-up, named.
    folder.write(".env", "ACCESSBOT_REMINDER_AFTER=4000d\n");
    let (status, output) =
        AppProcess::run_in_expecting_exit(folder.path(), db.url(), &slack, &[], REFUSED_WITHIN)
            .await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("ACCESSBOT_REMINDER_AFTER") && output.contains("10 years"),
        "names the variable and the limit: {output}"
    );

    // The environment's API token wins over the file's.
    folder.write(
        ".env",
        "ACCESSBOT_REMINDER_AFTER=1h\nACCESSBOT_API_TOKEN=token-from-the-file\n",
    );
    let bot = AppProcess::start_in(folder.path(), db.url(), &slack, &[]).await;
    bot.put_app("github", github()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plain_http_slack_api_off_this_machine_stops_start_up() {
    let folder = Folder::new("http");
    let db = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;
    let (status, output) = AppProcess::run_in_expecting_exit(
        folder.path(),
        db.url(),
        &slack,
        &[("SLACK_API_URL", "http://slack.example/api")],
        REFUSED_WITHIN,
    )
    .await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("SLACK_API_URL"),
        "names the variable: {output}"
    );
}
