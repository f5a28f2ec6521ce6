//! A fresh database per test: a SQLite file in the temp directory, or a PostgreSQL
//! database created on the server named by `TEST_DATABASE_URL`. Both go away when the
//! `TestDb` is dropped.

use std::path::PathBuf;
use std::sync::Arc;

use accessbot::store::{self, Store};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Files(PathBuf),
    Database { admin_url: String, name: String },
}

fn unique_name() -> String {
    format!(
        "accessbot_test_{}_{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )
}

/// `TEST_DATABASE_URL` with `sslmode=disable` unless it names a mode: accessbot is built with
/// TLS, and sqlx's default (`prefer`) would encrypt every test connection to a server that
/// offers TLS, which changes what the tests and the benchmark measure. The TLS tests ask for
/// it (`tests/e2e/postgres_tls.rs`).
pub fn admin_url() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok()?;
    Some(with_sslmode_unless_set(&url, "disable"))
}

/// `url` with `sslmode=<mode>` added, unless its query already has an `sslmode`.
pub fn with_sslmode_unless_set(url: &str, mode: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("TEST_DATABASE_URL is a URL");
    if !parsed.query_pairs().any(|(name, _)| name == "sslmode") {
        parsed.query_pairs_mut().append_pair("sslmode", mode);
    }
    parsed.to_string()
}

impl TestDb {
    /// A database of `backend`; `None` when PostgreSQL is not configured (the test skips).
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite().await),
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// A new SQLite file under the temp directory.
    pub async fn sqlite() -> TestDb {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name()));
        TestDb {
            url: format!("sqlite://{}", path.display()),
            cleanup: Cleanup::Files(path),
        }
    }

    /// A new database on the server of `TEST_DATABASE_URL`, or `None` when it is unset.
    pub async fn postgres() -> Option<TestDb> {
        let Some(admin_url) = admin_url() else {
            eprintln!("skipped: TEST_DATABASE_URL is not set");
            return None;
        };
        let name = unique_name();
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to TEST_DATABASE_URL: {err}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        admin.close().await.ok();
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(TestDb {
            url: url.to_string(),
            cleanup: Cleanup::Database { admin_url, name },
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens the store (running the migrations).
    pub async fn store(&self) -> Arc<dyn Store> {
        store::connect(&self.url).await.expect("open the store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Files(path) => {
                for suffix in ["", "-wal", "-shm", ".lock"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Database { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop is synchronous and may run inside a runtime: drop from a thread of its own.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin)
                            .await?;
                        admin.close().await?;
                        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                    })
                })
                .join();
                match dropped {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => eprintln!("could not drop test database {}: {err}", self.url),
                    Err(_) => eprintln!("could not drop test database {}", self.url),
                }
            }
        }
    }
}
