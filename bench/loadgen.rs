//! Load benchmark of accessbot (see bench/README.md): runs the release binary as a child
//! process against a fake Slack, on SQLite and on PostgreSQL (one and two replicas), fires
//! signed Confirm Provisioning clicks at a fixed number of keep-alive connections for a
//! fixed time, then measures how long the Slack calls take to drain and checks that every
//! Slack effect happened exactly once. A fan-out case measures one request with 100 admins
//! against the full fake Slack with Slack's rate tiers enforced.
#![allow(dead_code)]

mod common;
#[path = "../tests/e2e/support/fake_slack/mod.rs"]
mod fake_slack;
#[path = "../tests/e2e/support/signer.rs"]
mod signer;
mod sink;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use sqlx::Connection;

use common::{
    api, env_or, fail, metrics, pg_db_url, plaintext_unless_asked, sign_click, AnyError,
    RawConnection, Replica, Res, Signed,
};
use fake_slack::{dm_channel_of, FakeSlack};
use signer::{ButtonClick, FORM};
use sink::Sink;

const CONFIRM: &str = "confirm_provisioning";
const PG_DB: &str = "accessbot_bench";

#[derive(Debug, Clone)]
struct Opts {
    duration: Duration,
    connections: usize,
    admins: usize,
    /// Pending requests created per throughput case (the pool the clicks use).
    requests: usize,
    cases: Vec<String>,
    pg_url: String,
    bin: PathBuf,
    report: Option<PathBuf>,
    appendix: Option<PathBuf>,
    command: String,
    fanout_admins: usize,
    fanout_timeout: Duration,
    work_dir: PathBuf,
}

fn parse_opts() -> Res<Opts> {
    let mut opts = Opts {
        duration: Duration::from_secs(env_or("BENCH_DURATION", "10").parse()?),
        connections: env_or("BENCH_CONNECTIONS", "32").parse()?,
        admins: env_or("BENCH_ADMINS", "4").parse()?,
        requests: env_or("BENCH_REQUESTS", "0").parse()?,
        cases: env_or("BENCH_CASES", "sqlite,postgres,postgres-2-replicas,fanout")
            .split(',')
            .map(str::to_string)
            .collect(),
        pg_url: env_or("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/test"),
        bin: PathBuf::from(env_or("BENCH_BIN", "target/release/accessbot")),
        report: None,
        appendix: None,
        command: env_or("BENCH_COMMAND", "cargo run --release --example loadgen"),
        fanout_admins: 100,
        fanout_timeout: Duration::from_secs(300),
        work_dir: std::env::temp_dir().join(format!("accessbot-bench-{}", std::process::id())),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| fail(format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--duration" => opts.duration = Duration::from_secs_f64(value()?.parse()?),
            "--connections" => opts.connections = value()?.parse()?,
            "--admins" => opts.admins = value()?.parse()?,
            "--requests" => opts.requests = value()?.parse()?,
            "--cases" => opts.cases = value()?.split(',').map(str::to_string).collect(),
            "--pg-url" => opts.pg_url = value()?,
            "--bin" => opts.bin = PathBuf::from(value()?),
            "--report" => opts.report = Some(PathBuf::from(value()?)),
            "--appendix" => opts.appendix = Some(PathBuf::from(value()?)),
            "--fanout-admins" => opts.fanout_admins = value()?.parse()?,
            "--fanout-timeout" => {
                opts.fanout_timeout = Duration::from_secs(value()?.parse()?);
            }
            "-h" | "--help" => {
                println!(
                    "loadgen [--duration S] [--connections N] [--admins N] [--requests N] \
                     [--cases sqlite,postgres,postgres-2-replicas,fanout] [--pg-url URL] \
                     [--bin PATH] [--report FILE] [--appendix FILE] [--fanout-admins N]"
                );
                std::process::exit(0);
            }
            other => return Err(fail(format!("unknown argument {other:?}"))),
        }
    }
    opts.pg_url = plaintext_unless_asked(&opts.pg_url)?;
    if opts.duration > Duration::from_secs(240) {
        return Err(fail(
            "--duration must be at most 240 s: clicks are signed before the timed phase and \
             Slack signatures are valid for 5 minutes",
        ));
    }
    Ok(opts)
}

impl Opts {
    /// The pending requests to file for case `name`: `--requests`, or by default a pool a
    /// little above what the backend decides in `--duration` on a 2-core machine, so the
    /// load lasts the whole time (filing and posting the pool's cards costs more than
    /// deciding it, so the pool is not much bigger; when it runs out the timed phase ends
    /// early and the report says so).
    fn pool(&self, name: &str) -> usize {
        if self.requests > 0 {
            return self.requests;
        }
        let per_second = if name == "sqlite" { 18_000.0 } else { 8_000.0 };
        (self.duration.as_secs_f64() * per_second).ceil() as usize
    }
}

async fn put_app(base: &str, slug: &str, admins: &[String]) -> Res<()> {
    let client = reqwest::Client::new();
    let resp = api(
        &client,
        reqwest::Method::PUT,
        format!("{base}/api/v1/apps/{slug}"),
    )
    .json(&json!({
        "name": format!("Bench {slug}"),
        "admins": admins,
        "permissions": ["user", "admin"],
    }))
    .send()
    .await?;
    if !resp.status().is_success() {
        return Err(fail(format!(
            "PUT app: {} {}",
            resp.status(),
            resp.text().await?
        )));
    }
    Ok(())
}

fn requester(i: usize) -> String {
    format!("UBREQ{:05}", i % 1000)
}

fn admin(i: usize) -> String {
    format!("UBADM{i:04}")
}

/// Files `n` requests through the HTTP API at `connections` connections; their ids in order.
async fn create_requests(
    bases: &[String],
    slug: &str,
    n: usize,
    connections: usize,
) -> Res<Vec<i64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let base = bases[c % bases.len()].clone();
        let next = next.clone();
        let slug = slug.to_string();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, AnyError>(made);
                }
                let user = requester(i);
                let resp = api(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/api/v1/requests"),
                )
                .json(&json!({"app": slug, "target_user": user, "requester": user,
                                  "comment": "load benchmark"}))
                .send()
                .await?;
                if resp.status() != reqwest::StatusCode::CREATED {
                    return Err(fail(format!(
                        "POST request: {} {}",
                        resp.status(),
                        resp.text().await?
                    )));
                }
                let body: Value = resp.json().await?;
                let id = body["id"]
                    .as_i64()
                    .ok_or_else(|| fail("request without id"))?;
                made.push((i, id));
            }
        }));
    }
    let mut ids = vec![0; n];
    for task in tasks {
        for (i, id) in task.await?? {
            ids[i] = id;
        }
    }
    Ok(ids)
}

/// Polls `/metrics` until no Slack call waits; the time it took.
async fn wait_drained(base: &str, timeout: Duration) -> Res<Duration> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let m = metrics(&client, base).await?;
        if m.get("accessbot_slack_calls_waiting") == Some(&0.0) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(fail(format!(
                "Slack calls still waiting after {timeout:?}: {:?}",
                m.get("accessbot_slack_calls_waiting")
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `/metrics` with requests by status counted after now: the app reuses those counts for up
/// to 10 s, so the ones a scrape during the load cached would miss the last decisions.
async fn fresh_metrics(base: &str) -> Res<BTreeMap<String, f64>> {
    let client = reqwest::Client::new();
    let asked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| fail(e.to_string()))?
        .as_secs_f64();
    let started = Instant::now();
    loop {
        let m = metrics(&client, base).await?;
        let counted = m.get("accessbot_status_gauges_timestamp_seconds");
        // The app stamps the counts in whole milliseconds.
        if counted.is_some_and(|&at| at >= asked - 0.001) {
            return Ok(m);
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(fail(format!(
                "requests by status not counted again within 30 s: {counted:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Default)]
struct LoadResult {
    sent: usize,
    ok: usize,
    errors: BTreeMap<String, usize>,
    latencies_us: Vec<u32>,
    elapsed: Duration,
    pool_exhausted: bool,
}

impl LoadResult {
    fn error_count(&self) -> usize {
        self.errors.values().sum()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies_us.len() as f64).ceil() as usize;
        let idx = rank.clamp(1, self.latencies_us.len()) - 1;
        f64::from(self.latencies_us[idx]) / 1000.0
    }

    fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends the signed clicks at `connections` keep-alive connections (split round-robin over
/// `bases`) until `duration` has passed or every click was sent.
///
/// Each connection is a plain TCP stream that writes a request and reads its answer, like
/// `wrk`: the load generator shares the machine's two cores with accessbot, and an HTTP
/// client library spent several times more CPU per click than this does.
async fn fire(
    bases: &[String],
    clicks: Arc<Vec<Signed>>,
    connections: usize,
    duration: Duration,
) -> Res<LoadResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let base = &bases[c % bases.len()];
        let addr = base
            .strip_prefix("http://")
            .ok_or_else(|| fail(format!("not an http:// base: {base}")))?
            .to_string();
        let clicks = clicks.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = RawConnection::open(&addr).await?;
            let mut result = LoadResult::default();
            result.latencies_us.reserve(64 * 1024);
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(click) = clicks.get(i) else {
                    result.pool_exhausted = true;
                    break;
                };
                let sent = Instant::now();
                let outcome = match connection.exchange(&addr, &click.request(&addr)).await {
                    Ok((200, _)) => Ok(()),
                    Ok((status, body)) => Err(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                            .chars()
                            .take(120)
                            .collect::<String>()
                    )),
                    Err(err) => Err(format!("transport: {err}")),
                };
                let micros = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                result.sent += 1;
                result.latencies_us.push(micros);
                match outcome {
                    Ok(()) => result.ok += 1,
                    Err(kind) => *result.errors.entry(kind).or_default() += 1,
                }
            }
            Ok::<_, AnyError>(result)
        }));
    }
    let mut total = LoadResult::default();
    for task in tasks {
        let r = task.await??;
        total.sent += r.sent;
        total.ok += r.ok;
        total.pool_exhausted |= r.pool_exhausted;
        for (k, v) in r.errors {
            *total.errors.entry(k).or_default() += v;
        }
        total.latencies_us.extend(r.latencies_us);
    }
    // Until the last answer arrived (a little past the deadline, or when the pool ran out).
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    Ok(total)
}

/// The outcome of one throughput case.
struct CaseReport {
    name: String,
    replicas: usize,
    admins: usize,
    pool: usize,
    setup: Duration,
    setup_drain: Duration,
    load: LoadResult,
    drain: Duration,
    /// (VmHWM, VmRSS) per replica, kB.
    memory: Vec<(u64, u64)>,
    checks: Vec<(String, bool)>,
    provisioned: f64,
    slack_calls: u64,
}

async fn throughput_case(opts: &Opts, name: &str, replicas: usize) -> Res<CaseReport> {
    eprintln!("== {name}: preparing the database");
    let database_url = match name {
        "sqlite" => {
            let dir = opts.work_dir.join("sqlite");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            format!("sqlite://{}/bench.db", dir.display())
        }
        _ => recreate_pg(&opts.pg_url).await?,
    };
    let sink = Sink::start().await;
    let mut procs = Vec::new();
    for r in 0..replicas {
        procs.push(
            Replica::start(
                &opts.bin,
                &opts.work_dir,
                &database_url,
                &sink.api_url(),
                &format!("{name}-{r}"),
            )
            .await?,
        );
    }
    let bases: Vec<String> = procs.iter().map(|p| p.base.clone()).collect();
    let admins: Vec<String> = (0..opts.admins).map(admin).collect();
    put_app(&bases[0], "bench", &admins).await?;

    let pool = opts.pool(name);
    eprintln!(
        "== {name}: filing {pool} pending requests ({} admins each)",
        opts.admins
    );
    let setup_started = Instant::now();
    let ids = create_requests(&bases, "bench", pool, opts.connections).await?;
    let setup = setup_started.elapsed();
    eprintln!("   filed in {setup:.1?}; waiting for their cards to be posted");
    let setup_drain = wait_drained(&bases[0], Duration::from_secs(900)).await?;
    eprintln!("   cards posted after {setup_drain:.1?} more");
    if name != "sqlite" {
        settle_pg(&database_url).await?;
    }

    let clicks: Vec<Signed> = {
        let counts = sink.counts();
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let user = admin(i % opts.admins);
                let channel = dm_channel_of(&user);
                let ts = counts
                    .cards
                    .get(&(channel.clone(), *id))
                    .map(|c| c.ts.clone())
                    .unwrap_or_else(|| "1700000000.000001".into());
                let click = ButtonClick::new(
                    CONFIRM,
                    "bench_actions",
                    &id.to_string(),
                    "Confirm Provisioning",
                );
                sign_click(&user, &channel, &ts, None, &click)
            })
            .collect()
    };
    let (posts_before, notices_before) = {
        let c = sink.counts();
        (c.cards.len(), c.total_notices())
    };

    eprintln!(
        "== {name}: clicking for {:?} at {} connections",
        opts.duration, opts.connections
    );
    let load = fire(&bases, Arc::new(clicks), opts.connections, opts.duration).await?;
    eprintln!(
        "   {} ok, {} errors in {:.2?} ({:.0}/s, p50 {:.2} ms, p99 {:.2} ms)",
        load.ok,
        load.error_count(),
        load.elapsed,
        load.throughput(),
        load.percentile(50.0),
        load.percentile(99.0)
    );
    let drain = wait_drained(&bases[0], Duration::from_secs(900)).await?;
    eprintln!("   Slack calls delivered {drain:.2?} after the load stopped");
    // Give any duplicate a moment to show up before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let memory: Vec<(u64, u64)> = procs.iter().map(Replica::memory).collect();
    let m = fresh_metrics(&bases[0]).await?;
    let provisioned = m
        .get("accessbot_requests{status=\"provisioned\"}")
        .copied()
        .unwrap_or(0.0);

    let mut checks = Vec::new();
    {
        let c = sink.counts();
        let decided = &ids[..load.sent.min(ids.len())];
        let expected_posts = pool * (opts.admins + 1);
        checks.push((
            format!(
                "cards posted once each: {} cards for {expected_posts} expected",
                c.cards.len()
            ),
            c.cards.len() == expected_posts && c.cards.len() == posts_before,
        ));
        let dup_posts = c.cards.values().filter(|card| card.posts != 1).count();
        checks.push((
            format!("duplicate chat.postMessage per card recipient: {dup_posts}"),
            dup_posts == 0,
        ));
        let decided_set: std::collections::HashSet<i64> = decided.iter().copied().collect();
        let mut missing_updates = 0;
        let mut duplicate_updates = 0;
        let mut stray_updates = 0;
        for ((_, request), card) in &c.cards {
            let n = c.updates.get(&card.ts).copied().unwrap_or(0);
            if decided_set.contains(request) {
                match n {
                    0 => missing_updates += 1,
                    1 => {}
                    _ => duplicate_updates += 1,
                }
            } else if n > 0 {
                stray_updates += 1;
            }
        }
        checks.push((
            format!("duplicate chat.update per card: {duplicate_updates}"),
            duplicate_updates == 0,
        ));
        checks.push((
            format!("cards of decided requests never updated: {missing_updates}"),
            missing_updates == 0,
        ));
        checks.push((
            format!(
                "updates of undecided cards / unknown messages: {stray_updates} / {}",
                c.unknown_updates
            ),
            stray_updates == 0 && c.unknown_updates == 0,
        ));
        let notices = c.total_notices() - notices_before;
        checks.push((
            format!("requester notices: {notices} for {} decisions", load.ok),
            notices == load.ok as u64,
        ));
        checks.push((
            format!("ephemeral refusals: {}", c.ephemerals),
            c.ephemerals == 0,
        ));
        checks.push((
            format!("other Slack methods: {:?}", c.other),
            c.other.is_empty(),
        ));
        checks.push((
            format!(
                "requests provisioned per /metrics: {provisioned} for {} decisions",
                load.ok
            ),
            provisioned as usize == load.ok,
        ));
    }
    let slack_calls = sink.counts().calls;
    for p in procs {
        p.stop().await;
    }
    if name != "sqlite" {
        drop_pg(&opts.pg_url).await?;
    }
    Ok(CaseReport {
        name: name.to_string(),
        replicas,
        admins: opts.admins,
        pool,
        setup,
        setup_drain,
        load,
        drain,
        memory,
        checks,
        provisioned,
        slack_calls,
    })
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

/// Vacuums and checkpoints the filled database, so that every PostgreSQL case starts its
/// timed phase from the same state. Filing writes about half a gigabyte of WAL, and
/// otherwise the checkpoint it triggers (`max_wal_size`) or an autovacuum of the new rows
/// fell at a different point of each case's timed phase: the same binary measured
/// 1,600/s or 2,500/s depending on where.
async fn settle_pg(database_url: &str) -> Res<()> {
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    for statement in ["VACUUM ANALYZE", "CHECKPOINT"] {
        sqlx::query(statement).execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}

async fn drop_pg(admin_url: &str) -> Res<()> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

struct FanoutReport {
    admins: usize,
    ack_ms: f64,
    posted: Duration,
    updated: Duration,
    rate_limited: usize,
    checks: Vec<(String, bool)>,
    memory: (u64, u64),
}

async fn fanout_case(opts: &Opts) -> Res<FanoutReport> {
    let n = opts.fanout_admins;
    eprintln!("== fanout: one request, {n} admins, Slack rate tiers enforced");
    let dir = opts.work_dir.join("fanout");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let slack = FakeSlack::start().await;
    slack.enforce_tiers(true);
    let proc = Replica::start(
        &opts.bin,
        &opts.work_dir,
        &format!("sqlite://{}/bench.db", dir.display()),
        &slack.api_url(),
        "fanout",
    )
    .await?;
    let admins: Vec<String> = (0..n).map(|i| format!("UFANADM{i:04}")).collect();
    put_app(&proc.base, "fanout", &admins).await?;
    let requester = "UFANREQ0001";
    let client = reqwest::Client::new();
    let filed_at = Instant::now();
    let resp = api(
        &client,
        reqwest::Method::POST,
        format!("{}/api/v1/requests", proc.base),
    )
    .json(&json!({"app": "fanout", "target_user": requester, "requester": requester}))
    .send()
    .await?;
    if resp.status() != reqwest::StatusCode::CREATED {
        return Err(fail(format!("POST request: {}", resp.status())));
    }
    let admin_channels: std::collections::HashSet<String> =
        admins.iter().map(|a| dm_channel_of(a)).collect();
    let is_card_post = |c: &fake_slack::Call| {
        c.method == "chat.postMessage"
            && c.ok()
            && c.response["channel"]
                .as_str()
                .is_some_and(|ch| admin_channels.contains(ch))
    };
    let calls = slack
        .wait_for(
            |calls| calls.iter().filter(|c| is_card_post(c)).count() >= n,
            opts.fanout_timeout,
        )
        .await
        .map_err(|e| fail(format!("cards not all posted: {} calls", e.calls.len())))?;
    let posted = calls
        .iter()
        .filter(|c| is_card_post(c))
        .map(|c| c.at)
        .max()
        .expect("n posts")
        - filed_at;
    eprintln!("   {n} cards posted {posted:.2?} after filing");
    // Let the receipt be posted too before deciding.
    let _ = wait_drained(&proc.base, opts.fanout_timeout).await?;

    let clicker = &admins[0];
    let card = slack
        .dms_to(clicker)
        .into_iter()
        .next()
        .ok_or_else(|| fail("no card for the first admin"))?;
    let button = ButtonClick::find_in(&card, CONFIRM)
        .ok_or_else(|| fail("no Confirm Provisioning button"))?;
    let signed = sign_click(
        clicker,
        &dm_channel_of(clicker),
        card["ts"].as_str().unwrap_or(""),
        Some(&card),
        &button,
    );
    let clicked_at = Instant::now();
    let resp = client
        .post(format!("{}/slack/interactivity", proc.base))
        .header(CONTENT_TYPE, FORM)
        .header("x-slack-request-timestamp", signed.timestamp)
        .header("x-slack-signature", signed.signature)
        .body(signed.body)
        .send()
        .await?;
    let ack_ms = clicked_at.elapsed().as_secs_f64() * 1000.0;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(fail(format!("click: {}", resp.status())));
    }
    let cards_total = n + 1; // the admins' cards and the requester's receipt
    let calls = slack
        .wait_for(
            |calls| {
                calls
                    .iter()
                    .filter(|c| c.method == "chat.update" && c.ok())
                    .count()
                    >= cards_total
            },
            opts.fanout_timeout,
        )
        .await
        .map_err(|e| fail(format!("cards not all updated: {} calls", e.calls.len())))?;
    let updated = calls
        .iter()
        .filter(|c| c.method == "chat.update" && c.ok())
        .map(|c| c.at)
        .max()
        .expect("updates")
        - clicked_at;
    eprintln!("   {cards_total} cards updated {updated:.2?} after the click");
    let _ = wait_drained(&proc.base, opts.fanout_timeout).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = slack.calls();
    let memory = proc.memory();
    proc.stop().await;

    let mut posts: BTreeMap<String, usize> = BTreeMap::new();
    let mut updates: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut rate_limited = 0;
    let mut failed = 0;
    for c in &calls {
        if c.status == 429 {
            rate_limited += 1;
            continue;
        }
        if !c.ok() {
            failed += 1;
            continue;
        }
        match c.method.as_str() {
            "chat.postMessage" => {
                let ch = c.response["channel"].as_str().unwrap_or("").to_string();
                *posts.entry(ch).or_default() += 1;
            }
            "chat.update" => {
                let key = (
                    c.arg("channel").unwrap_or("").to_string(),
                    c.arg("ts").unwrap_or("").to_string(),
                );
                *updates.entry(key).or_default() += 1;
            }
            _ => {}
        }
    }
    let admin_posts: Vec<usize> = admin_channels
        .iter()
        .map(|ch| posts.get(ch).copied().unwrap_or(0))
        .collect();
    let requester_posts = posts.get(&dm_channel_of(requester)).copied().unwrap_or(0);
    let checks = vec![
        (
            format!(
                "each admin got exactly one card: {} of {n}",
                admin_posts.iter().filter(|p| **p == 1).count()
            ),
            admin_posts.iter().all(|p| *p == 1),
        ),
        (
            format!("requester got receipt + notice: {requester_posts} posts (2 expected)"),
            requester_posts == 2,
        ),
        (
            format!(
                "each card updated exactly once: {} cards, max {} updates",
                updates.len(),
                updates.values().max().copied().unwrap_or(0)
            ),
            updates.len() == cards_total && updates.values().all(|u| *u == 1),
        ),
        (
            format!("calls Slack refused (not 429): {failed}"),
            failed == 0,
        ),
    ];
    Ok(FanoutReport {
        admins: n,
        ack_ms,
        posted,
        updated,
        rate_limited,
        checks,
        memory,
    })
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn render(
    opts: &Opts,
    cases: &[CaseReport],
    fanout: Option<&FanoutReport>,
    started: &str,
    load_before: &str,
) -> String {
    let mut out = String::new();
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(out, "# accessbot load benchmark report\n");
    let _ = writeln!(
        out,
        "Generated by `bench/run.sh` (bench/loadgen.rs); do not edit the numbers by hand.\n"
    );
    let _ = writeln!(out, "- Command: `{}`", opts.command);
    let _ = writeln!(out, "- Started: {started}; accessbot commit `{commit}`");
    let _ = writeln!(out, "- Machine: `nproc` = {nproc} ({cpu})");
    let _ = writeln!(
        out,
        "- Load average before / after: {} / {}",
        load_before.trim(),
        load_after.trim()
    );
    let _ = writeln!(
        out,
        "- Settings: {:?} per case, {} connections, {} admins per app (each request has {} cards), pending requests per case: {}\n",
        opts.duration,
        opts.connections,
        opts.admins,
        opts.admins + 1,
        cases
            .iter()
            .map(|case| format!("{} {}", case.name, case.pool))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(out, "## Confirm Provisioning clicks\n");
    let _ = writeln!(
        out,
        "| | {} |",
        cases
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---|".repeat(cases.len()));
    let row = |out: &mut String, label: &str, f: &dyn Fn(&CaseReport) -> String| {
        let _ = writeln!(
            out,
            "| {label} | {} |",
            cases.iter().map(f).collect::<Vec<_>>().join(" | ")
        );
    };
    row(&mut out, "replicas", &|c| c.replicas.to_string());
    row(&mut out, "decisions/s (acknowledged 200)", &|c| {
        format!("{:.0}", c.load.throughput())
    });
    row(&mut out, "decisions", &|c| {
        format!(
            "{} in {:.2} s{}",
            c.load.ok,
            c.load.elapsed.as_secs_f64(),
            if c.load.pool_exhausted {
                " (pool used up)"
            } else {
                ""
            }
        )
    });
    row(&mut out, "ack latency p50", &|c| {
        format!("{:.2} ms", c.load.percentile(50.0))
    });
    row(&mut out, "ack latency p99", &|c| {
        format!("{:.2} ms", c.load.percentile(99.0))
    });
    row(&mut out, "ack latency max", &|c| {
        format!("{:.2} ms", c.load.percentile(100.0))
    });
    row(&mut out, "errors", &|c| {
        if c.load.errors.is_empty() {
            "0".into()
        } else {
            format!("{} {:?}", c.load.error_count(), c.load.errors)
        }
    });
    row(&mut out, "peak RSS (VmHWM) per replica", &|c| {
        c.memory
            .iter()
            .map(|(hwm, _)| format!("{:.1} MB", *hwm as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    });
    row(&mut out, "RSS at the end", &|c| {
        c.memory
            .iter()
            .map(|(_, rss)| format!("{:.1} MB", *rss as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    });
    row(
        &mut out,
        "Slack calls delivered, after load stopped",
        &|c| format!("{:.2} s", c.drain.as_secs_f64()),
    );
    row(&mut out, "Slack calls during the case", &|c| {
        c.slack_calls.to_string()
    });
    row(
        &mut out,
        "setup: filing the pool / posting its cards",
        &|c| {
            format!(
                "{:.1} s / {:.1} s",
                c.setup.as_secs_f64(),
                c.setup_drain.as_secs_f64()
            )
        },
    );
    row(&mut out, "exactly-once checks", &|c| {
        if c.checks.iter().all(|(_, ok)| *ok) {
            "PASS".into()
        } else {
            "FAIL".into()
        }
    });
    let _ = writeln!(
        out,
        "\nTargets (SQLite, {} connections):\n",
        opts.connections
    );
    if let Some(s) = cases.iter().find(|c| c.name == "sqlite") {
        let tput = s.load.throughput();
        let p99 = s.load.percentile(99.0);
        let rss = s.memory.first().map(|m| m.0 as f64 / 1024.0).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "- ≥ 8,000 decisions/s: {tput:.0}/s — {}",
            mark(tput >= 8000.0)
        );
        let _ = writeln!(out, "- p99 ≤ 15 ms: {p99:.2} ms — {}", mark(p99 <= 15.0));
        let _ = writeln!(
            out,
            "- peak RSS ≤ 50 MB: {rss:.1} MB — {}",
            mark(rss <= 50.0)
        );
        let _ = writeln!(
            out,
            "- zero errors: {} — {}",
            s.load.error_count(),
            mark(s.load.error_count() == 0)
        );
    }
    let _ = writeln!(out, "\nExactly-once checks (counted in the fake Slack):\n");
    for c in cases {
        for (text, ok) in &c.checks {
            let _ = writeln!(
                out,
                "- {}: {text} — {}",
                c.name,
                if *ok { "ok" } else { "FAILED" }
            );
        }
    }
    if let Some(f) = fanout {
        let _ = writeln!(
            out,
            "\n## Fan-out: one request, {} admins, Slack rate tiers enforced (SQLite)\n",
            f.admins
        );
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(
            out,
            "| all {} admin cards posted, after filing | {:.2} s |",
            f.admins,
            f.posted.as_secs_f64()
        );
        let _ = writeln!(out, "| click acknowledged | {:.1} ms |", f.ack_ms);
        let _ = writeln!(
            out,
            "| all {} cards updated, after the click | {:.2} s |",
            f.admins + 1,
            f.updated.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "| HTTP 429 answered by the fake | {} |",
            f.rate_limited
        );
        let _ = writeln!(
            out,
            "| peak RSS (VmHWM) | {:.1} MB |",
            f.memory.0 as f64 / 1024.0
        );
        let _ = writeln!(out);
        for (text, ok) in &f.checks {
            let _ = writeln!(out, "- {text} — {}", if *ok { "ok" } else { "FAILED" });
        }
    }
    out
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(err) => {
            eprintln!("loadgen: {err}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Res<bool> {
    let opts = parse_opts()?;
    let opts = Opts {
        bin: std::fs::canonicalize(&opts.bin).map_err(|_| {
            fail(format!(
                "{} not found: run `cargo build --release` first",
                opts.bin.display()
            ))
        })?,
        ..opts
    };
    let started = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut cases = Vec::new();
    for case in &opts.cases {
        match case.as_str() {
            "sqlite" => cases.push(throughput_case(&opts, "sqlite", 1).await?),
            "postgres" => cases.push(throughput_case(&opts, "postgres", 1).await?),
            "postgres-2-replicas" => {
                cases.push(throughput_case(&opts, "postgres-2-replicas", 2).await?)
            }
            "fanout" => {}
            other => return Err(fail(format!("unknown case {other:?}"))),
        }
    }
    let fanout = if opts.cases.iter().any(|c| c == "fanout") {
        Some(fanout_case(&opts).await?)
    } else {
        None
    };
    let mut report = render(&opts, &cases, fanout.as_ref(), &started, &load_before);
    println!("{report}");
    if let Some(path) = &opts.report {
        if let Some(appendix) = &opts.appendix {
            report.push('\n');
            report.push_str(&std::fs::read_to_string(appendix)?);
        }
        // The history benchmark's section (bench/history.rs) is kept: it is measured apart.
        let old = std::fs::read_to_string(path).unwrap_or_default();
        if let (Some(a), Some(b)) = (
            old.find("<!-- history:start -->"),
            old.find("<!-- history:end -->"),
        ) {
            report.push('\n');
            report.push_str(old[a..b].trim_end());
            report.push_str("\n<!-- history:end -->\n");
        }
        std::fs::write(path, report)?;
        eprintln!("report written to {}", path.display());
    }
    let _ = std::fs::remove_dir_all(opts.work_dir.join("sqlite"));
    let all_ok = cases
        .iter()
        .all(|c| c.load.error_count() == 0 && c.checks.iter().all(|(_, ok)| *ok))
        && fanout
            .as_ref()
            .is_none_or(|f| f.checks.iter().all(|(_, ok)| *ok));
    Ok(all_ok)
}
