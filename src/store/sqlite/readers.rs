//! Read-only connections to SQLite, used on tokio's blocking threads.
//!
//! In WAL mode readers never wait for the writer, nor it for them. A read is short and
//! blocks its thread, so it runs under `spawn_blocking`; at most [`READ_CONNECTIONS`] run
//! at once, each on a connection kept open between reads (with its prepared statements).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::store::{StoreError, StoreResult};

/// Connections for reads beside the writer.
const READ_CONNECTIONS: usize = 4;

pub(super) struct Readers {
    path: PathBuf,
    permits: Semaphore,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            permits: Semaphore::new(READ_CONNECTIONS),
            idle: Mutex::new(Vec::with_capacity(READ_CONNECTIONS)),
        }
    }

    /// Runs `work` on a read-only connection.
    pub(super) async fn read<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Write("the SQLite readers are closed".into()))?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = match readers.take() {
                Some(conn) => conn,
                None => readers.open()?,
            };
            let result = work(&conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|err| StoreError::Write(format!("a read stopped: {err}")))?
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().ok()?.pop()
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    fn open(&self) -> StoreResult<Connection> {
        let conn = super::connection(&self.path)?;
        // A bug that writes through a reader fails instead of racing the writer.
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(conn)
    }
}
