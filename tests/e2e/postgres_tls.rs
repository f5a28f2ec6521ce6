//! PostgreSQL over TLS: `sslmode=require` encrypts, `sslmode=verify-full` with the operator's CA
//! (`sslrootcert`) checks the server's certificate and name, and a server that fails the check
//! stops start-up with a message naming `DATABASE_URL`, never a panic.
//!
//! They run against the server of `TEST_DATABASE_URL` (skipped when it is unset, like every
//! PostgreSQL test), which must serve TLS with the certificate `.ci/pg-tls.sh` makes (`.ci/run`
//! runs it): a server without it fails these tests, saying so.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use accessbot::clock::SystemClock;
use accessbot::{App, Config};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};

use crate::support::db::TestDb;
use crate::support::fake_slack::FakeSlack;
use crate::support::process::AppProcess;
use crate::support::test_app::{sample_app, test_vars, TestApp};

/// Where `.ci/pg-tls.sh` puts the test CA and the server's certificate.
const TLS_DIR: &str = "/etc/ssl/accessbot-test";

/// How long the binary may take to refuse to start.
const REFUSAL_WITHIN: Duration = Duration::from_secs(30);

/// A test database on a server that serves TLS with the test certificate.
struct TlsDb {
    db: TestDb,
    /// The test CA (`sslrootcert`).
    ca: String,
    /// A CA that signed nothing the server has.
    untrusted_ca: String,
}

impl TlsDb {
    /// `None` when `TEST_DATABASE_URL` is unset; panics, saying what to run, when its server
    /// does not serve TLS with the test certificate.
    async fn new() -> Option<TlsDb> {
        let db = TestDb::postgres().await?;
        let mut conn = sqlx::PgConnection::connect(db.url())
            .await
            .expect("connect to the test database");
        let show = |name: &'static str| sqlx::query_scalar::<_, String>(name);
        let ssl = show("SHOW ssl")
            .fetch_one(&mut conn)
            .await
            .expect("SHOW ssl");
        let cert = show("SHOW ssl_cert_file")
            .fetch_one(&mut conn)
            .await
            .expect("SHOW ssl_cert_file");
        conn.close().await.ok();
        let ca = format!("{TLS_DIR}/ca.pem");
        let untrusted_ca = format!("{TLS_DIR}/untrusted-ca.pem");
        let expected_cert = format!("{TLS_DIR}/server.pem");
        assert!(
            ssl == "on"
                && cert == expected_cert
                && Path::new(&ca).is_file()
                && Path::new(&untrusted_ca).is_file(),
            "the PostgreSQL of TEST_DATABASE_URL does not serve TLS with the test certificate \
             (ssl = {ssl}, ssl_cert_file = {cert}, want {expected_cert} and {ca}): run \
             `bash .ci/run` (or just `bash .ci/pg-tls.sh`) as root on this machine first"
        );
        Some(TlsDb {
            db,
            ca,
            untrusted_ca,
        })
    }

    /// The test database's URL with `host` (`None`: as it is), `port` and `params` instead
    /// of its own `sslmode`.
    fn url(&self, host: Option<&str>, port: Option<u16>, params: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(self.db.url()).expect("a URL");
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != "sslmode")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .extend_pairs(params);
        if let Some(host) = host {
            url.set_host(Some(host)).expect("a host");
        }
        if port.is_some() {
            url.set_port(port).expect("a port");
        }
        url.to_string()
    }

    /// Where the server listens, as `TEST_DATABASE_URL` names it.
    fn server_addr(&self) -> String {
        let url = url::Url::parse(self.db.url()).expect("a URL");
        let host = url.host_str().expect("a host");
        format!("{host}:{}", url.port().unwrap_or(5432))
    }

    /// (connections to the test database other than this one, how many of them use TLS), read
    /// over a plaintext connection that first checks that `pg_stat_ssl` tells the two apart.
    async fn encrypted_connections(&self) -> (i64, i64) {
        let plaintext = self.url(None, None, &[("sslmode", "disable")]);
        let mut conn = sqlx::PgConnection::connect(&plaintext)
            .await
            .expect("a plaintext connection");
        assert!(
            !own_connection_is_encrypted(&mut conn).await,
            "sslmode=disable must not encrypt"
        );
        let counted: (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE a.datname = current_database() AND s.pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("read pg_stat_ssl");
        conn.close().await.ok();
        counted
    }
}

async fn own_connection_is_encrypted(conn: &mut sqlx::PgConnection) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(conn)
        .await
        .expect("read pg_stat_ssl")
}

/// Builds the app on `database_url`; the error it stops with, as `main` prints it.
async fn start_up_error(database_url: &str, slack: &FakeSlack) -> String {
    let config = Config::from_vars(&test_vars(database_url, slack)).expect("test config");
    match App::build(config, Arc::new(SystemClock)).await {
        Ok(_) => panic!("accessbot started on {database_url}"),
        Err(error) => error.to_string(),
    }
}

/// Forwards every connection to `127.0.0.2:<port>` to `target`: the same server, reached by
/// an address its certificate does not name.
async fn forward_from_another_address(target: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.2:0")
        .await
        .expect("listen on 127.0.0.2 (loopback)");
    let port = listener.local_addr().expect("an address").port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_runs_on_sslmode_require_and_its_connections_are_encrypted() {
    let Some(tls) = TlsDb::new().await else {
        return;
    };
    let url = tls.url(None, None, &[("sslmode", "require")]);
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .expect("sslmode=require connects");
    assert!(own_connection_is_encrypted(&mut conn).await);
    conn.close().await.ok();

    let slack = FakeSlack::start().await;
    let app = TestApp::spawn(&url, &slack).await;
    let (status, body) = app.put_app("figma", sample_app("UADMIN", None)).await;
    assert!(status.is_success(), "{status} {body}");
    let (status, _) = app.raw_get("/readyz").await;
    assert_eq!(status, 200);
    let (connections, encrypted) = tls.encrypted_connections().await;
    assert!(
        connections > 0,
        "the bot holds no connection to its database"
    );
    assert_eq!(
        encrypted, connections,
        "every connection of the bot is encrypted"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_operators_ca_connects_to_the_name_in_the_certificate() {
    let Some(tls) = TlsDb::new().await else {
        return;
    };
    let params = [("sslmode", "verify-full"), ("sslrootcert", tls.ca.as_str())];
    let url = tls.url(Some("localhost"), None, &params);
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("verify-full to localhost: {e}"));
    assert!(own_connection_is_encrypted(&mut conn).await);
    conn.close().await.ok();

    let store = accessbot::store::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("the store on verify-full: {e}"));
    assert!(store.apps().await.expect("read the catalog").is_empty());
    let (connections, encrypted) = tls.encrypted_connections().await;
    assert!(connections > 0, "the store holds no connection");
    assert_eq!(
        encrypted, connections,
        "every connection of the store is encrypted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_server_whose_name_is_not_in_its_certificate() {
    let Some(tls) = TlsDb::new().await else {
        return;
    };
    let port = forward_from_another_address(tls.server_addr()).await;
    // The same server through the same forwarder, without checking its name: reachable.
    let unchecked = tls.url(Some("127.0.0.2"), Some(port), &[("sslmode", "require")]);
    let mut conn = sqlx::PgConnection::connect(&unchecked)
        .await
        .unwrap_or_else(|e| panic!("the forwarder reaches the server: {e}"));
    assert!(own_connection_is_encrypted(&mut conn).await);
    conn.close().await.ok();

    let params = [("sslmode", "verify-full"), ("sslrootcert", tls.ca.as_str())];
    let checked = tls.url(Some("127.0.0.2"), Some(port), &params);
    let slack = FakeSlack::start().await;
    let error = start_up_error(&checked, &slack).await;
    assert!(error.starts_with("DATABASE_URL: "), "{error}");
    assert!(error.contains("certificate"), "{error}");
    assert!(
        error.contains("127.0.0.2"),
        "the error names the host: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_certificate_of_an_unknown_ca_and_the_binary_says_why() {
    let Some(tls) = TlsDb::new().await else {
        return;
    };
    let params = [
        ("sslmode", "verify-full"),
        ("sslrootcert", tls.untrusted_ca.as_str()),
    ];
    let url = tls.url(Some("localhost"), None, &params);
    let slack = FakeSlack::start().await;
    let error = start_up_error(&url, &slack).await;
    assert!(error.starts_with("DATABASE_URL: "), "{error}");
    assert!(error.contains("certificate"), "{error}");

    let (status, output) = AppProcess::run_expecting_exit(&url, &slack, REFUSAL_WITHIN).await;
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("accessbot: cannot start: DATABASE_URL: "),
        "{output}"
    );
    assert!(output.contains("certificate"), "{output}");
    assert!(!output.contains("panicked"), "{output}");
}
