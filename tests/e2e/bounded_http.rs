//! The HTTP server's bounds (issue 15): a client trickling its headers or its body is cut off,
//! idle keep-alive connections are closed, a thousand idle sockets do not keep a click from
//! being answered, connections beyond the cap wait (with one warning), and a SIGTERM during an
//! upload that never finishes still ends the process within the shutdown's ten seconds.
//!
//! The tests of the timeouts lower them through `App::set_http_limits` (the defaults are
//! asserted in `http::server`'s unit tests); the cap and the shutdown run the real binary with
//! its real numbers.

use std::time::{Duration, Instant};

use accessbot::app::HttpLimits;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::db::TestDb;
use crate::support::fake_slack::FakeSlack;
use crate::support::process::AppProcess;
use crate::support::signer::FORM;
use crate::support::story::*;
use crate::support::test_app::TestApp;

/// How long a bound of a second may take to be enforced on a busy two-core machine: far below
/// the bounds that would apply without it (the 60 s idle timeout, the 30 s body timeout).
const ENFORCED_WITHIN: Duration = Duration::from_secs(20);

/// The shutdown takes at most 10 s (README); this leaves room for a busy machine, and stays
/// below the 30 s body timeout that would otherwise end a stuck upload.
const STOP_WITHIN: Duration = Duration::from_secs(25);

/// Real limits, except those given.
fn limits(change: impl FnOnce(&mut HttpLimits)) -> HttpLimits {
    let mut limits = HttpLimits::default();
    change(&mut limits);
    limits
}

async fn app_with(limits: HttpLimits) -> (TestApp, TestDb) {
    let db = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;
    let app = TestApp::spawn_with_http_limits(db.url(), &slack, limits).await;
    (app, db)
}

/// Reads until the peer closes the connection; everything it sent.
async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response with a body of `Content-Length` (no chunked bodies here).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut buf).await.expect("read a response");
        assert!(n > 0, "the connection closed mid-response: {text:?}");
        received.extend_from_slice(&buf[..n]);
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: accessbot\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickled_a_byte_at_a_time_are_cut_off() {
    let (app, _db) = app_with(limits(|l| l.header_read = Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"POST /slack/interactivity HTTP/1.1\r\n")
        .await
        .expect("the request line");
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        // One header byte every 100 ms: never complete, never silent.
        for byte in b"X-Slow: ".iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let closed = tokio::time::timeout(ENFORCED_WITHIN, read_until_closed(&mut reader)).await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "a trickle of headers was served for {ENFORCED_WITHIN:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_waits_longer_than_the_header_timeout() {
    // The header timeout runs from a request's first byte, not while a connection is idle.
    let (app, _db) = app_with(limits(|l| l.header_read = Duration::from_millis(500))).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(HEALTHZ).await.expect("a request");
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stream.write_all(HEALTHZ).await.expect("a second request");
    let second = read_response(&mut stream).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let (app, _db) = app_with(limits(|l| l.idle = Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(HEALTHZ).await.expect("a request");
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer.to_lowercase().contains("connection: close"),
        "kept alive: {answer}"
    );
    let closed = tokio::time::timeout(ENFORCED_WITHIN, read_until_closed(&mut stream)).await;
    assert_eq!(
        closed.ok(),
        Some(String::new()),
        "an idle connection stayed open"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_answered_408() {
    let (app, _db) = app_with(limits(|l| l.body = Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let head = "POST /slack/interactivity HTTP/1.1\r\nHost: accessbot\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("the head");
    stream
        .write_all(b"payload=")
        .await
        .expect("some of the body");
    let answer = tokio::time::timeout(ENFORCED_WITHIN, read_response(&mut stream))
        .await
        .unwrap_or_else(|_| panic!("no answer within {ENFORCED_WITHIN:?}"));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");
    app.stop().await;
}

story! {
    async fn a_thousand_idle_sockets_do_not_keep_a_click_from_being_answered(app: &TestApp) {
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let approval = card_of(&app.slack, APPROVER).await;

        let mut idle = Vec::with_capacity(1000);
        for n in 0..1000 {
            let mut socket = TcpStream::connect(app.addr)
                .await
                .unwrap_or_else(|e| panic!("idle socket {n}: {e}"));
            // Every other one starts a request and stops, as a slow client would.
            if n % 2 == 0 {
                let _ = socket.write_all(b"POST /slack/events HTTP/1.1\r\n").await;
            }
            idle.push(socket);
        }
        let (status, _) = app
            .click(APPROVER, "approve", &id, &approval.channel, &approval.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.request(&id).await["status"], "pending_provisioning");
        drop(idle);
    }
}

/// How the cap's warning starts (`http::server`).
const CAP_WARNING: &str = "connection limit reached";
const CAP_LIFTED: &str = "below the connection limit again";

/// Waits until the process's output holds `needle`.
async fn wait_for_log(bot: &AppProcess, needle: &str) {
    let started = Instant::now();
    while !bot.output().contains(needle) {
        assert!(
            started.elapsed() < PATIENCE,
            "no {needle:?} in the log within {PATIENCE:?}:\n{}",
            bot.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_one_to_close_with_one_warning() {
    let db = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;
    let bot = AppProcess::start_with(db.url(), &slack, Default::default(), &[]).await;
    let addr = bot.base_url.trim_start_matches("http://").to_string();

    let cap = HttpLimits::default().max_connections;
    let mut open = Vec::with_capacity(cap);
    for n in 0..cap {
        let socket = TcpStream::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("connection {n}: {e}"));
        open.push(socket);
    }
    let mut waiting = TcpStream::connect(&addr)
        .await
        .expect("one more connection");
    waiting.write_all(HEALTHZ).await.expect("a request");
    wait_for_log(&bot, CAP_WARNING).await;
    let early =
        tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut [0u8; 16])).await;
    assert!(early.is_err(), "answered beyond the cap: {early:?}");

    // The start-up's health check may still hold a pooled connection, so the last of ours
    // may wait in the backlog ahead of `waiting`: two that were served make room for both.
    drop(open.drain(..2));
    let answer = tokio::time::timeout(ENFORCED_WITHIN, read_response(&mut waiting))
        .await
        .unwrap_or_else(|_| panic!("not answered once a connection closed:\n{}", bot.output()));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    drop(open);
    drop(waiting);
    // The episode ends at the first connection accepted once a tenth of the slots are free
    // again; the server frees them as it sees the sockets close.
    let started = Instant::now();
    while !bot.output().contains(CAP_LIFTED) {
        assert!(
            started.elapsed() < PATIENCE,
            "no {CAP_LIFTED:?} in the log within {PATIENCE:?}:\n{}",
            bot.output()
        );
        let mut probe = TcpStream::connect(&addr).await.expect("connect");
        probe.write_all(HEALTHZ).await.expect("a request");
        let answer = read_response(&mut probe).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(
        bot.output().matches(CAP_WARNING).count(),
        1,
        "one warning per episode:\n{}",
        bot.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_upload_that_never_ends_still_exits_in_time() {
    let db = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;
    let mut bot = AppProcess::start(db.url(), &slack).await;
    let addr = bot.base_url.trim_start_matches("http://").to_string();
    let mut upload = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /slack/interactivity HTTP/1.1\r\nHost: accessbot\r\nContent-Type: {FORM}\r\n\
         Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
    );
    upload.write_all(head.as_bytes()).await.expect("the head");
    // hyper sends 100 Continue when the handler starts reading the body: the request is in
    // hand from here on.
    let mut continued = [0u8; 25];
    tokio::time::timeout(PATIENCE, upload.read_exact(&mut continued))
        .await
        .expect("100 Continue in time")
        .expect("100 Continue");
    assert!(continued.starts_with(b"HTTP/1.1 100"), "{continued:?}");
    upload
        .write_all(b"payload=%7B")
        .await
        .expect("a little of the body");

    let signalled = Instant::now();
    bot.terminate();
    let status = bot.wait_exit(STOP_WITHIN).await;
    let took = signalled.elapsed();
    let log = bot.output();
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(
        log.contains("connections still busy at the shutdown deadline are closed"),
        "the upload was cut by the deadline, not finished ({took:?}):\n{log}"
    );
    drop(upload);
}
