//! History benchmark of accessbot (see bench/README.md, "History"): does any cost grow with
//! the number of requests kept? For each database size (1,000 and 1,000,000 requests by
//! default) and backend, it fills a database with SQL (requests, 5 events per request, 2
//! cards per request, apps, Home viewers; no API call), starts the release binary against
//! it and measures the paths a user or an operator waits on: start-up, a click's ack, App
//! Home, `/access list`, the API's list pages, a `/metrics` scrape that counts, peak RSS,
//! and (in process, on the same database) one scheduler sweep that expires due grants.
//! It prints a table of each figure at each size with the ratio, and can write it into a
//! section of bench/REPORT.md.
#![allow(dead_code)]

mod common;
#[path = "../tests/e2e/support/fake_slack/mod.rs"]
mod fake_slack;
#[path = "../tests/e2e/support/signer.rs"]
mod signer;
mod sink;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use accessbot::clock::SystemClock;
use accessbot::config::SlackCredentials;
use accessbot::{App, Config};
use sqlx::Connection;

use common::{
    api, env_or, fail, metrics, pg_db_url, plaintext_unless_asked, sign_click, RawConnection,
    Replica, Res, Signed,
};
use fake_slack::DEFAULT_BOT_TOKEN;
use signer::{ButtonClick, FORM, JSON, TEST_SIGNING_SECRET};
use sink::Sink;

/// The PostgreSQL database this benchmark creates and drops (not the load benchmark's).
const PG_DB: &str = "accessbot_history";
/// Open requests, the newest ids at every size: a queue people work through does not grow
/// with the history behind it. 300 wait for provisioning (the clicks use 100 of them).
const PENDING_PROVISIONING: i64 = 300;
const PENDING_APPROVAL: i64 = 50;
const PENDING_DEPROVISIONING: i64 = 20;
const PENDING: i64 = PENDING_PROVISIONING + PENDING_APPROVAL + PENDING_DEPROVISIONING;
/// Requests per user (as requester), at every size: users grow with the history.
const REQUESTS_PER_USER: i64 = 40;
/// The user whose Home, `/access list` and API list are measured (a Home viewer).
const USER: &str = "UH1";
/// The admin of every app, who clicks.
const ADMIN: &str = "UHADM0";
const APPS: i64 = 50;
/// Provisioned grants made due just before the sweep.
const DUE: usize = 5;
const CLICKS: usize = 100;
/// The history spans three years.
const SPAN_MS: i64 = 3 * 365 * 24 * 3_600_000;
const DAY_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone)]
struct Opts {
    sizes: Vec<i64>,
    backends: Vec<String>,
    pg_url: String,
    bin: PathBuf,
    samples: usize,
    report: Option<PathBuf>,
    /// Hand-written analysis put after the table in the report's section.
    appendix: Option<PathBuf>,
    command: String,
    work_dir: PathBuf,
}

fn parse_opts() -> Res<Opts> {
    let list = |text: String| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut opts = Opts {
        sizes: vec![],
        backends: list(env_or("BENCH_BACKENDS", "sqlite,postgres")),
        pg_url: env_or("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/test"),
        bin: PathBuf::from(env_or("BENCH_BIN", "target/release/accessbot")),
        samples: env_or("BENCH_SAMPLES", "20").parse()?,
        report: None,
        appendix: None,
        command: env_or("BENCH_COMMAND", "cargo run --release --example history"),
        work_dir: std::env::temp_dir().join(format!("accessbot-history-{}", std::process::id())),
    };
    let mut sizes = env_or("BENCH_SIZES", "1000,1000000");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| fail(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--sizes" => sizes = value()?,
            "--backends" => opts.backends = list(value()?),
            "--pg-url" => opts.pg_url = value()?,
            "--bin" => opts.bin = PathBuf::from(value()?),
            "--samples" => opts.samples = value()?.parse()?,
            "--report" => opts.report = Some(PathBuf::from(value()?)),
            "--appendix" => opts.appendix = Some(PathBuf::from(value()?)),
            other => return Err(fail(format!("unknown flag {other}; see bench/README.md"))),
        }
    }
    opts.sizes = list(sizes)
        .iter()
        .map(|s| s.replace('_', "").parse::<i64>())
        .collect::<Result<_, _>>()?;
    if opts.sizes.iter().any(|&n| n < 2 * PENDING) {
        return Err(fail(format!("each size must be at least {}", 2 * PENDING)));
    }
    opts.pg_url = plaintext_unless_asked(&opts.pg_url)?;
    // accessbot runs in the work directory: a relative path would be looked up there.
    opts.bin = std::fs::canonicalize(&opts.bin)
        .map_err(|e| fail(format!("{}: {e}", opts.bin.display())))?;
    Ok(opts)
}

fn now_ms() -> Res<i64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64)
}

/// How a backend spells a series of integers `1..=n` named `s(i)`: the text before the
/// statement and the `FROM` item.
fn series(backend: &str, n: i64) -> (String, String) {
    if backend == "sqlite" {
        (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "
            ),
            "s".into(),
        )
    } else {
        (
            String::new(),
            format!("generate_series(1::bigint, {n}::bigint) AS s(i)"),
        )
    }
}

/// The statements that fill a migrated, empty database with `n` requests, each a single
/// `INSERT … SELECT` over a generated series (see the module comment for the mix).
fn fill_statements(backend: &str, n: i64, now: i64) -> Vec<String> {
    let history = n - PENDING;
    let users = (n / REQUESTS_PER_USER).max(25);
    let step = SPAN_MS / n;
    let status = format!(
        "CASE WHEN i > {history} THEN CASE \
             WHEN i - {history} <= {PENDING_PROVISIONING} THEN 'pending_provisioning' \
             WHEN i - {history} <= {pp} THEN 'pending_approval' \
             ELSE 'pending_deprovisioning' END \
         WHEN i % 20 < 2 THEN 'provisioned' WHEN i % 20 < 5 THEN 'denied' \
         WHEN i % 20 < 7 THEN 'canceled' ELSE 'expired' END",
        pp = PENDING_PROVISIONING + PENDING_APPROVAL
    );
    let decided = "status IN ('provisioned', 'expired', 'pending_deprovisioning', 'denied')";
    let granted = "status IN ('provisioned', 'expired', 'pending_deprovisioning')";
    let (with_n, from_n) = series(backend, n);
    // Grants end 30 to 330 days from now: none is due, or in the reminder window, before
    // the sweep makes a few due. (Computed here: PostgreSQL multiplies literals as int4.)
    let ends = now + 30 * DAY_MS;
    let requests = format!(
        "{with_n}INSERT INTO requests (id, app, app_name, target_user, requester, permission, \
         groups, comment, access_length, status, approvers, app_admins, admin_channel, \
         created_at, updated_at, approved_by, approved_at, decided_by, decided_at, \
         provisioned_at, expires_at, removed_by, removed_at, denial_feedback, expiry_reminded, \
         stage_reminded, version, idempotency_key) \
         SELECT i, 'app' || (i % {APPS}), 'App ' || (i % {APPS}), \
         CASE WHEN i % 10 = 0 THEN 'UH' || ((i / 10) % {users}) ELSE 'UH' || (i % {users}) END, \
         'UH' || (i % {users}), 'user', '[]', 'history benchmark', '90d', status, \
         CASE WHEN status = 'pending_approval' THEN '[\"UHAPPROVER\"]' ELSE '[]' END, \
         '[\"{ADMIN}\",\"UHADM1\"]', NULL, created, created + 3600000, NULL, NULL, \
         CASE WHEN {decided} THEN '{ADMIN}' END, CASE WHEN {decided} THEN created + 3600000 END, \
         CASE WHEN {granted} THEN created + 3600000 END, \
         CASE WHEN status = 'provisioned' THEN {ends} + (i % 300) * {DAY_MS} \
              WHEN status = 'expired' THEN created + 7200000 \
              WHEN status = 'pending_deprovisioning' THEN {now} - 3600000 END, \
         CASE WHEN status = 'expired' THEN 'system' END, \
         CASE WHEN status = 'expired' THEN created + 10800000 END, NULL, FALSE, \
         CASE WHEN status LIKE 'pending%' THEN TRUE ELSE FALSE END, \
         CASE WHEN status LIKE 'pending%' THEN 1 ELSE 3 END, NULL \
         FROM (SELECT i, {status} AS status, {now} - ({n} - i + 1) * {step} - 3600000 AS created \
         FROM {from_n}) AS g"
    );
    let (with_e, from_e) = series(backend, 5 * n);
    let events = format!(
        "{with_e}INSERT INTO events (id, request_id, at, actor, kind, before_json, after_json, \
         detail) \
         SELECT i, (i - 1) / 5 + 1, {now} - ({n} - (i - 1) / 5) * {step} + ((i - 1) % 5) * 60000, \
         'system', CASE (i - 1) % 5 WHEN 0 THEN 'created' WHEN 1 THEN 'approved' \
         WHEN 2 THEN 'provisioned' WHEN 3 THEN 'reminder_sent' ELSE 'expired' END, \
         NULL, '{{\"status\":\"expired\"}}', NULL FROM {from_e}"
    );
    let (with_c, from_c) = series(backend, 2 * n);
    // Card 2r - 1 is request r's receipt (to its requester), card 2r its provisioning card
    // in the admin's DM; ts is derived from the card id, so the clicks can name it.
    let cards = format!(
        "{with_c}INSERT INTO cards (id, request_id, kind, recipient, channel, ts, \
         rendered_version) \
         SELECT i, (i + 1) / 2, \
         CASE WHEN i % 2 = 1 THEN 'receipt' ELSE 'provisioning' END, \
         CASE WHEN i % 2 = 1 THEN 'UH' || (((i + 1) / 2) % {users}) ELSE '{ADMIN}' END, \
         CASE WHEN i % 2 = 1 THEN 'DH' || (((i + 1) / 2) % {users}) ELSE 'DHADM0' END, \
         (1600000000 + i) || '.000100', 1 FROM {from_c}"
    );
    let (with_a, from_a) = series(backend, APPS);
    let apps = format!(
        "{with_a}INSERT INTO apps (slug, name, admins, approvers, permissions, groups, \
         admin_channel, updated_at) \
         SELECT 'app' || (i - 1), 'App ' || (i - 1), '[\"{ADMIN}\",\"UHADM1\"]', '[]', \
         '[\"user\",\"admin\"]', '[]', NULL, {now} FROM {from_a}"
    );
    let (with_h, from_h) = series(backend, (users / 10).max(2));
    let homes = format!(
        "{with_h}INSERT INTO home_viewers (user_id, opened_at) \
         SELECT 'UH' || i, {now} FROM {from_h}"
    );
    let mut statements = vec![apps, requests, events, cards, homes];
    // Filing by SQL went through the status-change trigger row by row (SQLite); the counts
    // are what the migration would have computed on this data, and nothing waits to fold.
    statements.extend(
        [
            "DELETE FROM request_status_changes",
            "DELETE FROM request_status_counts",
            "INSERT INTO request_status_counts (status, requests) \
             SELECT status, COUNT(*) FROM requests GROUP BY status",
        ]
        .map(String::from),
    );
    if backend != "sqlite" {
        for (table, last) in [("requests", n), ("events", 5 * n), ("cards", 2 * n)] {
            statements.push(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})"
            ));
        }
    }
    statements
}

/// The id of the `k`-th provisioned grant (ids below the open queue with `i % 20 < 2`).
fn provisioned_id(k: usize) -> i64 {
    20 * (k as i64 + 1)
}

/// Ids of the requests waiting for provisioning.
fn pending_provisioning(n: i64) -> impl Iterator<Item = i64> {
    (n - PENDING + 1)..=(n - PENDING + PENDING_PROVISIONING)
}

async fn execute_all(database_url: &str, statements: &[String]) -> Res<()> {
    if database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await?;
        sqlx::query("PRAGMA synchronous = OFF")
            .execute(&mut conn)
            .await?;
        let mut tx = conn.begin().await?;
        for statement in statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    } else {
        let mut conn = sqlx::PgConnection::connect(database_url).await?;
        let mut tx = conn.begin().await?;
        for statement in statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        // As a running deployment would be: statistics gathered, visibility map set.
        for statement in ["VACUUM ANALYZE", "CHECKPOINT"] {
            sqlx::query(statement).execute(&mut conn).await?;
        }
        conn.close().await?;
    }
    Ok(())
}

async fn recreate_pg(admin_url: &str) -> Res<String> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {PG_DB}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    pg_db_url(admin_url, PG_DB)
}

async fn drop_pg(admin_url: &str) -> Res<()> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Milliseconds, per figure.
type Samples = BTreeMap<&'static str, Vec<f64>>;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        len => sorted[len / 2],
    }
}

/// `/metrics`, remembering when accessbot last counted the requests by status.
struct Scraper {
    client: reqwest::Client,
    base: String,
    counted_at: f64,
}

impl Scraper {
    async fn scrape(&mut self) -> Res<(Duration, BTreeMap<String, f64>, bool)> {
        let started = Instant::now();
        let m = metrics(&self.client, &self.base).await?;
        let took = started.elapsed();
        let at = m
            .get("accessbot_status_gauges_timestamp_seconds")
            .copied()
            .unwrap_or(0.0);
        let counted = at > self.counted_at;
        self.counted_at = at;
        Ok((took, m, counted))
    }

    /// A scrape that counts: waits until the counts of the last one are stale (10 s).
    async fn counting_scrape(&mut self) -> Res<Duration> {
        loop {
            let stale_at = self.counted_at + 10.05;
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
            if stale_at > now {
                tokio::time::sleep(Duration::from_secs_f64(stale_at - now)).await;
            }
            let (took, _, counted) = self.scrape().await?;
            if counted {
                return Ok(took);
            }
        }
    }

    /// Waits until no Slack call is waiting.
    async fn drained(&mut self) -> Res<()> {
        let started = Instant::now();
        loop {
            let (_, m, _) = self.scrape().await?;
            if m.get("accessbot_slack_calls_waiting") == Some(&0.0) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(fail("Slack calls still waiting after 120 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One signed request to a Slack endpoint on `conn`; its time, after checking it got 200.
async fn slack_call(conn: &mut RawConnection, host: &str, signed: &Signed) -> Res<Duration> {
    let started = Instant::now();
    let (status, body) = conn.exchange(host, &signed.request(host)).await?;
    let took = started.elapsed();
    if status != 200 {
        return Err(fail(format!(
            "Slack endpoint answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(took)
}

/// Every figure measured on the running process (all but the sweep).
/// `replica`, its start-up time recorded in `samples`.
fn timed(replica: Replica, samples: &mut Samples) -> Replica {
    samples
        .entry("start-up (spawn to /readyz 200)")
        .or_default()
        .push(ms(replica.ready_after));
    replica
}

async fn measure_running(
    opts: &Opts,
    replica: &Replica,
    sink: &Sink,
    n: i64,
    samples: &mut Samples,
) -> Res<()> {
    let host = replica.base.trim_start_matches("http://").to_string();
    let mut scraper = Scraper {
        client: reqwest::Client::new(),
        base: replica.base.clone(),
        counted_at: 0.0,
    };
    let (first, _, counted) = scraper.scrape().await?;
    if !counted {
        return Err(fail("the first /metrics scrape did not count"));
    }
    samples
        .entry("/metrics (a scrape that counts)")
        .or_default()
        .push(ms(first));

    // Clicks, one at a time, each on another request waiting for provisioning.
    let mut conn = RawConnection::open(&host).await?;
    for id in pending_provisioning(n).take(CLICKS) {
        let ts = format!("{}.000100", 1_600_000_000 + 2 * id);
        let click = ButtonClick::new(
            "confirm_provisioning",
            "history_actions",
            &id.to_string(),
            "Confirm Provisioning",
        );
        let signed = sign_click(ADMIN, "DHADM0", &ts, None, &click);
        let took = slack_call(&mut conn, &host, &signed).await?;
        samples
            .entry("click ack (Confirm Provisioning)")
            .or_default()
            .push(ms(took));
        // Lets the worker deliver the click's Slack calls, so each ack is measured alone.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    scraper.drained().await?;

    // App Home: from sending app_home_opened to views.publish reaching the fake.
    let published = || sink.counts().home_publishes.get(USER).map_or(0, Vec::len);
    for _ in 0..opts.samples {
        let before = published();
        let event = signer::event_callback(signer::app_home_opened_event(USER, "home", None));
        let signed = Signed::new("/slack/events", JSON, event.to_string());
        let started = Instant::now();
        slack_call(&mut conn, &host, &signed).await?;
        loop {
            if published() > before {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(fail("App Home not published within 10 s"));
            }
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        let took = {
            let counts = sink.counts();
            let at = counts.home_publishes[USER][before];
            at.duration_since(started)
        };
        samples
            .entry("App Home publish")
            .or_default()
            .push(ms(took));
    }

    for _ in 0..opts.samples {
        let fields = signer::slash_command(USER, "DH1", "/access", "list");
        let signed = Signed::new(
            "/slack/commands",
            FORM,
            serde_urlencoded::to_string(&fields)?,
        );
        let took = slack_call(&mut conn, &host, &signed).await?;
        samples.entry("/access list").or_default().push(ms(took));
    }

    let client = reqwest::Client::new();
    let filters: [(&'static str, &'static str, String); 4] = [
        (
            "API list, no filter",
            "API list, no filter, next page",
            String::new(),
        ),
        (
            "API list ?user=",
            "API list ?user=, next page",
            format!("&user={USER}"),
        ),
        (
            "API list ?status=provisioned",
            "API list ?status=provisioned, next page",
            "&status=provisioned".into(),
        ),
        (
            "API list ?app=",
            "API list ?app=, next page",
            "&app=app7".into(),
        ),
    ];
    for (first_page, next_page, filter) in &filters {
        for _ in 0..opts.samples {
            let url = format!("{}/api/v1/requests?limit=10{filter}", replica.base);
            let started = Instant::now();
            let page: serde_json::Value = api(&client, reqwest::Method::GET, url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            samples
                .entry(*first_page)
                .or_default()
                .push(ms(started.elapsed()));
            let cursor = page["next_cursor"]
                .as_str()
                .ok_or_else(|| fail(format!("no second page for {filter:?}")))?;
            let url = format!(
                "{}/api/v1/requests?limit=10{filter}&cursor={cursor}",
                replica.base
            );
            let started = Instant::now();
            api(&client, reqwest::Method::GET, url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            samples
                .entry(*next_page)
                .or_default()
                .push(ms(started.elapsed()));
        }
    }

    for _ in 0..2 {
        let took = scraper.counting_scrape().await?;
        samples
            .entry("/metrics (a scrape that counts)")
            .or_default()
            .push(ms(took));
    }
    let (peak_kb, _) = replica.memory();
    samples
        .entry("peak RSS (VmHWM), MB")
        .or_default()
        .push(peak_kb as f64 / 1024.0);
    Ok(())
}

/// One scheduler sweep, in process on `database_url` with the real clock, after making
/// [`DUE`] provisioned grants due; then a second one, with nothing due.
async fn measure_sweep(database_url: &str, sink: &Sink, samples: &mut Samples) -> Res<()> {
    let due_at = now_ms()? - 60_000;
    let ids: Vec<String> = (0..DUE).map(|k| provisioned_id(k).to_string()).collect();
    execute_all(
        database_url,
        &[format!(
            "UPDATE requests SET expires_at = {due_at} WHERE id IN ({})",
            ids.join(", ")
        )],
    )
    .await?;
    let config = Config {
        database_url: database_url.to_string(),
        slack: Some(SlackCredentials {
            bot_token: DEFAULT_BOT_TOKEN.into(),
            signing_secret: Some(TEST_SIGNING_SECRET.into()),
        }),
        socket_mode: None,
        slack_api_url: sink.api_url(),
        api_token: None,
        metrics_token: None,
        addr: "127.0.0.1:0".parse()?,
        public_url: url::Url::parse("http://127.0.0.1/")?,
        scheduler_interval: Duration::from_secs(30),
        remind_after: Duration::from_secs(24 * 3600),
        user_refresh: Duration::from_secs(24 * 3600),
    };
    let mut app = App::build(config, Arc::new(SystemClock)).await?;
    let stepper = app
        .stepper()
        .ok_or_else(|| fail("the app has no stepper"))?;
    let started = Instant::now();
    let stepped = stepper.step().await?;
    let took = started.elapsed();
    if stepped.changed != DUE {
        return Err(fail(format!(
            "the sweep expired {} grants, not {DUE}",
            stepped.changed
        )));
    }
    samples
        .entry("expiry sweep (5 due of the provisioned)")
        .or_default()
        .push(ms(took));
    let started = Instant::now();
    stepper.step().await?;
    samples
        .entry("sweep, nothing due")
        .or_default()
        .push(ms(started.elapsed()));
    drop(app);
    Ok(())
}

/// Everything for one backend and size.
async fn case(opts: &Opts, backend: &str, n: i64) -> Res<(Samples, Duration)> {
    eprintln!("== {backend}, {n} requests: preparing the database");
    let database_url = if backend == "sqlite" {
        let dir = opts.work_dir.join(format!("sqlite-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        format!("sqlite://{}/history.db", dir.display())
    } else {
        recreate_pg(&opts.pg_url).await?
    };
    let sink = Sink::start().await;
    let name = format!("{backend}-{n}");
    // The first start migrates the empty database.
    Replica::start(
        &opts.bin,
        &opts.work_dir,
        &database_url,
        &sink.api_url(),
        &name,
    )
    .await?
    .stop()
    .await;
    let filling = Instant::now();
    execute_all(&database_url, &fill_statements(backend, n, now_ms()?)).await?;
    let filled_in = filling.elapsed();
    eprintln!("   filled in {filled_in:.1?}");

    let mut samples = Samples::new();
    // Three start-ups are timed; the first replica also serves the measurements.
    let sink_url = sink.api_url();
    let start = || Replica::start(&opts.bin, &opts.work_dir, &database_url, &sink_url, &name);
    let replica = timed(start().await?, &mut samples);
    let measured = measure_running(opts, &replica, &sink, n, &mut samples).await;
    replica.stop().await;
    measured?;
    for _ in 0..2 {
        timed(start().await?, &mut samples).stop().await;
    }
    measure_sweep(&database_url, &sink, &mut samples).await?;
    if std::env::var_os("BENCH_KEEP_DATABASE").is_some() {
        eprintln!("   kept {database_url} (BENCH_KEEP_DATABASE)");
    } else if backend != "sqlite" {
        drop_pg(&opts.pg_url).await?;
    } else if let Some(path) = database_url.strip_prefix("sqlite://") {
        let _ = std::fs::remove_dir_all(Path::new(path).parent().unwrap_or(Path::new(path)));
    }
    Ok((samples, filled_in))
}

/// The figures in report order.
const FIGURES: [&str; 16] = [
    "click ack (Confirm Provisioning)",
    "App Home publish",
    "/access list",
    "API list, no filter",
    "API list, no filter, next page",
    "API list ?user=",
    "API list ?user=, next page",
    "API list ?status=provisioned",
    "API list ?status=provisioned, next page",
    "API list ?app=",
    "API list ?app=, next page",
    "/metrics (a scrape that counts)",
    "expiry sweep (5 due of the provisioned)",
    "sweep, nothing due",
    "start-up (spawn to /readyz 200)",
    "peak RSS (VmHWM), MB",
];

fn render(
    opts: &Opts,
    results: &BTreeMap<(String, i64), (Samples, Duration)>,
    load: (&str, &str),
) -> (String, bool) {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (small, large) = (opts.sizes[0], *opts.sizes.last().unwrap_or(&opts.sizes[0]));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## History: cost at {small} and at {large} requests\n\n\
         Generated by `bench/history.sh` (bench/history.rs); do not edit the numbers by hand.\n\n\
         - Command: `{}`\n- accessbot commit `{commit}`; machine: {cores} cores ({cpu})\n\
         - Load average before / after: {} / {}\n\
         - Data (made with SQL): per size n, n requests ({} open, the rest 10% provisioned \
         with an end date, 15% denied, 10% canceled, 65% expired), 5n events, 2n cards, {APPS} \
         apps, a user per {REQUESTS_PER_USER} requests, a tenth of them Home viewers\n\
         - Each figure is the median of its samples (clicks: {CLICKS}; Home, list, API: {}; \
         `/metrics`: 3 scrapes that count; start-up: 3; sweep: 1). Goal: at {large} within 2× \
         of {small}.\n",
        opts.command, load.0, load.1, PENDING, opts.samples
    );
    let mut header = String::from("| figure (ms unless stated) |");
    let mut rule = String::from("|---|");
    for backend in &opts.backends {
        let _ = write!(header, " {backend} {small} | {backend} {large} | ratio |");
        rule.push_str("---|---|---|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let mut all_pass = true;
    for figure in FIGURES {
        let mut line = format!("| {figure} |");
        for backend in &opts.backends {
            let value = |n: i64| {
                results
                    .get(&(backend.clone(), n))
                    .and_then(|(s, _)| s.get(figure))
                    .map(|v| median(v))
            };
            match (value(small), value(large)) {
                (Some(a), Some(b)) => {
                    let ratio = b / a;
                    let pass = ratio <= 2.0;
                    all_pass &= pass;
                    let _ = write!(
                        line,
                        " {a:.2} | {b:.2} | {ratio:.2} {} |",
                        if pass { "PASS" } else { "**FAIL**" }
                    );
                }
                _ => line.push_str(" – | – | – |"),
            }
        }
        let _ = writeln!(out, "{line}");
    }
    let mut filled = String::from("| filling the database with SQL (s, not a goal) |");
    for backend in &opts.backends {
        for n in [small, large] {
            let _ = write!(
                filled,
                " {} |",
                results
                    .get(&(backend.clone(), n))
                    .map_or("–".into(), |(_, d)| format!("{:.1}", d.as_secs_f64()))
            );
        }
        filled.push_str(" |");
    }
    let _ = writeln!(out, "{filled}");
    (out, all_pass)
}

/// Puts `section` into the report at `path` between the history markers, replacing the
/// section there, or at the end.
fn write_section(path: &Path, section: &str) -> Res<()> {
    const START: &str = "<!-- history:start -->";
    const END: &str = "<!-- history:end -->";
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{START}\n{section}{END}\n");
    let new = match (old.find(START), old.find(END)) {
        (Some(a), Some(b)) if b > a => {
            format!(
                "{}{block}{}",
                &old[..a],
                old[b + END.len()..].trim_start_matches('\n')
            )
        }
        _ => format!("{}\n{block}", old.trim_end()),
    };
    std::fs::write(path, new)?;
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(err) => {
            eprintln!("history benchmark failed: {err}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Res<bool> {
    let opts = parse_opts()?;
    let load_before = loadavg();
    let mut results = BTreeMap::new();
    for backend in &opts.backends {
        for &n in &opts.sizes {
            let result = case(&opts, backend, n).await?;
            for (figure, values) in &result.0 {
                eprintln!("   {figure}: {:.2}", median(values));
            }
            results.insert((backend.clone(), n), result);
        }
    }
    let load_after = loadavg();
    let (mut section, pass) = render(&opts, &results, (&load_before, &load_after));
    println!("{section}");
    if let Some(path) = &opts.report {
        if let Some(appendix) = &opts.appendix {
            section.push('\n');
            section.push_str(&std::fs::read_to_string(appendix)?);
        }
        write_section(path, &section)?;
        eprintln!("wrote the section into {}", path.display());
    }
    Ok(pass)
}
