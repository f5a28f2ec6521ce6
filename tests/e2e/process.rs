//! The real binary as an orchestrator runs it: stopped with SIGTERM, killed with SIGKILL
//! mid-flight and restarted, started twice on one SQLite file, run as two replicas on one
//! PostgreSQL, and logging at its most verbose without leaking a secret.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::faults::{is_decided, notices_to};
use crate::support::db::{Backend, TestDb};
use crate::support::fake_slack::{FakeSlack, Fault};
use crate::support::process::{AppProcess, Peek, Secrets};
use crate::support::signer::FORM;
use crate::support::story::*;

/// How long a SIGTERM may take to stop the process (in-flight work is bounded by 10 s).
const STOP_WITHIN: Duration = Duration::from_secs(12);

/// Asserts that no outbox delivery left two messages in the conversations of `recipients`:
/// every message the bot posts names its delivery in its metadata.
fn assert_no_delivery_posted_twice(slack: &FakeSlack, recipients: &[&str]) {
    let mut seen: HashMap<String, Value> = HashMap::new();
    for recipient in recipients {
        for message in slack.messages_in(recipient) {
            let metadata = &message["metadata"];
            if metadata["event_type"] != "accessbot_delivery" {
                continue;
            }
            let delivery = metadata["event_payload"]["delivery_id"].to_string();
            if let Some(earlier) = seen.insert(delivery.clone(), message.clone()) {
                panic!("delivery {delivery} was posted twice:\n{earlier}\n{message}");
            }
        }
    }
}

/// The cards of `recipient` that show `needle` (a request's unique comment).
fn cards_showing(slack: &FakeSlack, recipient: &str, needle: &str) -> Vec<Card> {
    cards_in(slack, recipient)
        .into_iter()
        .filter(|card| card.text().contains(needle))
        .collect()
}

/// Waits for the card of `recipient` about the request whose comment is `needle`.
async fn card_showing(slack: &FakeSlack, recipient: &str, needle: &str) -> Card {
    wait_for_card(slack, recipient, |card| card.text().contains(needle)).await
}

/// Files requests for new target users until `bot` stops answering; returns the targets of
/// the requests it accepted.
async fn file_until_stopped(bot: &AppProcess, next: &AtomicUsize) -> Vec<String> {
    let mut filed = Vec::new();
    // Bounded, should the process never stop.
    while filed.len() < 100 {
        let target = format!("UFILER{:03}", next.fetch_add(1, Ordering::Relaxed));
        let body = json!({"app": "github", "target_user": target, "comment": "filed"});
        match bot
            .try_api(Method::POST, "/api/v1/requests", Some(body))
            .await
        {
            Ok((StatusCode::CREATED, _)) => filed.push(target),
            Ok((status, answer)) => panic!("filing answered {status} {answer}"),
            Err(_) => break,
        }
    }
    filed
}

story! {
    async fn sigterm_stops_gracefully_and_exits_zero(env: StoryEnv) {
        let slack = &env.slack;
        let mut bot = AppProcess::start(env.db_url(), slack).await;
        bot.put_app("github", github()).await;
        // Slack is briefly down: some posts wait for their retry when the signal comes.
        slack.fail_next_n("chat.postMessage", Fault::Status(503), 4);

        let next = AtomicUsize::new(0);
        let signal = async {
            slack
                .wait_for(
                    |calls| calls.iter().filter(|c| c.method == "chat.postMessage").count() >= 6,
                    PATIENCE,
                )
                .await
                .unwrap_or_else(|timeout| panic!("{timeout}"));
            bot.terminate();
        };
        let (one, two, three, ()) = tokio::join!(
            file_until_stopped(&bot, &next),
            file_until_stopped(&bot, &next),
            file_until_stopped(&bot, &next),
            signal,
        );
        let filed: Vec<String> = [one, two, three].concat();
        let status = bot.wait_exit(STOP_WITHIN).await;
        let log = bot.output();
        assert!(status.success(), "exit status {status}:\n{log}");
        assert!(log.contains("shutting down"), "{log}");

        let mut peek = Peek::connect(env.db_url()).await;
        assert_eq!(peek.leased_deliveries().await, 0, "a stopped process holds no claims");
        let stored = peek.count("SELECT count(*) FROM requests").await;
        assert_eq!(stored, filed.len() as i64, "every request answered 201 was kept, no other");

        let bot = AppProcess::start(env.db_url(), slack).await;
        bot.wait_idle().await;
        for target in &filed {
            assert_eq!(cards_in(slack, target).len(), 1, "receipt to {target}");
        }
        assert_eq!(cards_in(slack, APPROVER).len(), filed.len(), "one approval card each");
        let mut recipients: Vec<&str> = filed.iter().map(String::as_str).collect();
        recipients.push(APPROVER);
        assert_no_delivery_posted_twice(slack, &recipients);
        assert_eq!(bot.metric("accessbot_slack_calls_failed").await, 0.0);
    }
}

story! {
    async fn kill_9_loses_nothing_and_duplicates_nothing(env: StoryEnv) {
        let slack = &env.slack;
        let db_url = env.db_url();
        let mut bot = AppProcess::start(db_url, slack).await;
        bot.put_app("github", github_without_approvers()).await;
        // The first post takes effect but its answer is lost; the second never returns.
        slack.fail_next("chat.postMessage", Fault::DropAfterProcessing);
        slack.fail_next("chat.postMessage", Fault::Hang);
        let targets = ["UTARGET0", "UTARGET1", "UTARGET2"];
        let comments = targets.map(|target| format!("kill-9 story for {target}"));
        let mut ids = Vec::new();
        for (target, comment) in targets.iter().zip(&comments) {
            ids.push(bot.file("github", target, comment).await);
        }
        slack
            .wait_for(|calls| calls.iter().any(|c| c.fault == Some(Fault::Hang)), PATIENCE)
            .await
            .unwrap_or_else(|timeout| panic!("{timeout}"));
        bot.kill().await;
        // The killed process's claims run out (their 60 s are skipped).
        Peek::connect(db_url).await.expire_leases().await;

        let mut bot = AppProcess::start(db_url, slack).await;
        // Every card is recorded as posted before anyone acts: a card found again while its
        // request changes is another story (faults::a_card_found_after_a_lost_answer…).
        bot.wait_idle().await;
        let admins = [ADMIN1, ADMIN2, ADMIN_CHANNEL];
        let confirm = card_showing(slack, ADMIN1, &comments[0]).await;
        let deny = card_showing(slack, ADMIN2, &comments[1]).await;
        bot.click(slack, ADMIN1, "confirm_provisioning", &confirm).await;
        bot.click(slack, ADMIN2, "deny", &deny).await;
        // The decisions are stored with their Slack calls; the process dies making them.
        bot.kill().await;
        Peek::connect(db_url).await.expire_leases().await;

        let bot = AppProcess::start(db_url, slack).await;
        let last = card_showing(slack, ADMIN_CHANNEL, &comments[2]).await;
        bot.click(slack, ADMIN2, "confirm_provisioning", &last).await;
        bot.wait_idle().await;

        for (k, target) in targets.iter().enumerate() {
            assert_eq!(cards_in(slack, target).len(), 1, "receipt to {target}");
            let notices = notices_to(slack, target);
            assert_eq!(notices.len(), 1, "notices to {target}: {notices:#?}");
            for admin in admins {
                let cards = cards_showing(slack, admin, &comments[k]);
                assert_eq!(cards.len(), 1, "cards of request {k} to {admin}");
                assert!(is_decided(&cards[0]), "request {k} to {admin}: {}", cards[0].message);
            }
        }
        for admin in admins {
            assert_eq!(cards_in(slack, admin).len(), targets.len(), "cards to {admin}");
        }
        let mut recipients = targets.to_vec();
        recipients.extend(admins);
        assert_no_delivery_posted_twice(slack, &recipients);

        let expected = ["provisioned", "denied", "provisioned"];
        for (id, outcome) in ids.iter().zip(expected) {
            assert_eq!(bot.request(id).await["status"], outcome, "request {id}");
            let kinds = bot.event_kinds(id).await;
            let decisions = kinds.iter().filter(|k| *k == "provisioned" || *k == "denied");
            assert_eq!(decisions.count(), 1, "{kinds:?}");
        }
        assert_eq!(bot.metric("accessbot_slack_calls_waiting").await, 0.0);
        let (status, failed) = bot
            .api(Method::GET, "/api/v1/deliveries?status=failed", None)
            .await;
        assert_eq!((status, failed), (StatusCode::OK, json!([])));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_process_on_one_sqlite_file_is_refused() {
    let db = TestDb::sqlite().await;
    let slack = FakeSlack::start().await;
    let first = AppProcess::start(db.url(), &slack).await;
    let (status, output) =
        AppProcess::run_expecting_exit(db.url(), &slack, Duration::from_secs(5)).await;
    assert!(
        !status.success(),
        "the second process must not run: {output}"
    );
    assert!(
        output.contains("DATABASE_URL"),
        "names the variable: {output}"
    );
    assert!(
        output.contains("PostgreSQL"),
        "says what to use instead: {output}"
    );

    first.put_app("github", github()).await;
    first.file("github", REQUESTER, "still working").await;
    card_of(&slack, APPROVER).await;
    first.wait_idle().await;
}

story! {
    async fn two_replicas_share_one_postgres(env: StoryEnv) {
        if env.backend == Backend::Sqlite {
            return; // SQLite serves one process (SPEC §6).
        }
        let slack = &env.slack;
        let one = AppProcess::start(env.db_url(), slack).await;
        let two = AppProcess::start(env.db_url(), slack).await;
        let replicas = [&one, &two];
        one.put_app("github", github()).await;
        let targets: Vec<String> = (0..6).map(|i| format!("UREPLICA{i}")).collect();
        let comments: Vec<String> = targets.iter().map(|t| format!("replicas for {t}")).collect();
        let mut ids = Vec::new();
        for (i, (target, comment)) in targets.iter().zip(&comments).enumerate() {
            ids.push(replicas[i % 2].file("github", target, comment).await);
        }
        for (i, comment) in comments.iter().enumerate() {
            let card = card_showing(slack, APPROVER, comment).await;
            replicas[(i + 1) % 2].click(slack, APPROVER, "approve", &card).await;
        }
        for comment in &comments {
            let confirm = card_showing(slack, ADMIN1, comment).await;
            let deny = card_showing(slack, ADMIN2, comment).await;
            tokio::join!(
                one.click(slack, ADMIN1, "confirm_provisioning", &confirm),
                two.click(slack, ADMIN2, "deny", &deny),
            );
        }
        one.wait_idle().await;
        two.wait_idle().await;

        let mut recipients: Vec<&str> = targets.iter().map(String::as_str).collect();
        recipients.extend([APPROVER, ADMIN1, ADMIN2, ADMIN_CHANNEL]);
        assert_no_delivery_posted_twice(slack, &recipients);
        for (k, (target, comment)) in targets.iter().zip(&comments).enumerate() {
            assert_eq!(cards_in(slack, target).len(), 1, "receipt to {target}");
            assert_eq!(notices_to(slack, target).len(), 1, "notice to {target}");
            for recipient in [APPROVER, ADMIN1, ADMIN2, ADMIN_CHANNEL] {
                let cards = cards_showing(slack, recipient, comment);
                assert_eq!(cards.len(), 1, "card of request {k} to {recipient}");
                assert!(is_decided(&cards[0]), "request {k} to {recipient}: {}", cards[0].message);
            }
            let kinds = one.event_kinds(&ids[k]).await;
            let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
            assert_eq!(count("approved"), 1, "{kinds:?}");
            assert_eq!(count("provisioned") + count("denied"), 1, "{kinds:?}");
        }
        let refused = slack.ephemerals_for(ADMIN1).len() + slack.ephemerals_for(ADMIN2).len();
        assert_eq!(refused, targets.len(), "one loser told per race");
    }
}

story! {
    async fn secrets_never_appear_in_logs(env: StoryEnv) {
        let slack = &env.slack;
        let secrets = Secrets {
            bot_token: "xoxb-4242-LEAKCHECK-bot-token-7f3a".into(),
            signing_secret: "LEAKCHECK0signing0secret0c0ffee".into(),
            api_token: "LEAKCHECK-api-token-9d8c".into(),
        };
        slack.set_token(&secrets.bot_token);
        let mut bot = AppProcess::start_with(
            env.db_url(),
            slack,
            secrets.clone(),
            &[("RUST_LOG", "trace")],
        )
        .await;
        bot.put_app("github", github()).await;
        slack.fail_next("chat.postMessage", Fault::RateLimited { retry_after_secs: 1 });
        let id = bot.file("github", REQUESTER, "secrets story").await;
        let approval = card_of(slack, APPROVER).await;
        slack.fail_next("chat.postMessage", Fault::SlackError("channel_not_found".into()));
        bot.click(slack, APPROVER, "approve", &approval).await;
        let lost = slack
            .wait_for_call("chat.postMessage", |c| c.error() == Some("channel_not_found"))
            .await
            .unwrap_or_else(|timeout| panic!("{timeout}"));
        // One provisioning card is dead-lettered; an admin confirms on another.
        let (admin, recipient) = match lost.arg("channel") {
            Some(ADMIN1) => (ADMIN2, ADMIN2),
            _ => (ADMIN1, ADMIN1),
        };
        let card = card_with_button(slack, recipient, "confirm_provisioning").await;
        bot.click(slack, admin, "confirm_provisioning", &card).await;
        let forged = bot
            .post_signed("/slack/interactivity", FORM, "payload=%7B%7D", Some("v0=00"))
            .await;
        assert_eq!(forged, StatusCode::UNAUTHORIZED);
        bot.wait_idle().await;
        assert_eq!(bot.request(&id).await["status"], "provisioned");
        bot.terminate();
        assert!(bot.wait_exit(STOP_WITHIN).await.success());

        let log = bot.output();
        for (name, secret) in [
            ("SLACK_BOT_TOKEN", &secrets.bot_token),
            ("SLACK_SIGNING_SECRET", &secrets.signing_secret),
            ("ACCESSBOT_API_TOKEN", &secrets.api_token),
        ] {
            if let Some(at) = log.find(secret.as_str()) {
                let line_start = log[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = log[at..].find('\n').map_or(log.len(), |i| at + i);
                panic!("{name} appears in the log: {}", &log[line_start..line_end]);
            }
        }
        for expected in [
            "TRACE",
            "accessbot is listening",
            "rate limited",
            "channel_not_found",
            "shutting down",
        ] {
            assert!(log.contains(expected), "the log lacks {expected:?}");
        }
    }
}
