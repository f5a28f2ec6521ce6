//! WAL checkpoints of the SQLite file, on a thread of their own.
//!
//! By default SQLite checkpoints in the connection that commits once the WAL passes 1,000
//! pages: it copies those pages into the database file and waits for the disk (`fsync`)
//! in the middle of a commit. Under load that happened several times a second in the group
//! commit, and every click waiting on that commit waited for the disk too. Here a thread
//! checkpoints every [`INTERVAL`] instead, beside the writers (a passive checkpoint takes
//! no write lock); the writers only checkpoint themselves if it falls far behind
//! ([`WRITER_CHECKPOINT_PAGES`]).

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

use super::{StoreError, StoreResult};

const INTERVAL: Duration = Duration::from_millis(100);

/// WAL pages after which a writer checkpoints in its own commit (SQLite's default is
/// 1,000): a backstop that bounds the WAL (to ~64 MB) should this thread fall behind.
pub(super) const WRITER_CHECKPOINT_PAGES: &str = "16384";

/// Checkpoints until dropped.
pub(super) struct Checkpointer {
    _running: mpsc::Sender<()>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (running, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    checkpoint(&conn);
                }
            })
            .map_err(|err| StoreError::Write(format!("cannot start checkpoints: {err}")))?;
        Ok(Checkpointer { _running: running })
    }
}

fn checkpoint(conn: &Connection) {
    // Rows: busy (always 0 in passive mode), WAL pages, pages checkpointed.
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    if let Err(err) = result {
        tracing::warn!(error = %err, "SQLite checkpoint failed; the writers checkpoint instead");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Pages committed to the WAL reach the database file while no writer checkpoints.
    #[test]
    fn committed_pages_are_copied_into_the_database_file() {
        let dir = std::env::temp_dir().join(format!("accessbot-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("test.db");
        let writer = Connection::open(&path).unwrap();
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE t (x BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 INSERT INTO t SELECT randomblob(4000) FROM n;",
            )
            .unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        assert!(
            size() < 100_000,
            "before a checkpoint the rows are only in the WAL"
        );

        let _checkpoints = Checkpointer::start(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while size() < 800_000 {
            assert!(Instant::now() < deadline, "no checkpoint within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }

        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
