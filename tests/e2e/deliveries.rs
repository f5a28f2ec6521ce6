//! What must reach Slack does, once: rate limits, an outage of credentials across a
//! restart, permanent errors in the dead-letter list, and the largest cards there are.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::fake_slack::Fault;
use crate::support::signer;
use crate::support::story::*;

story! {
    async fn rate_limited_post_is_retried_after_retry_after(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        slack.fail_next("chat.postMessage", Fault::RateLimited { retry_after_secs: 1 });
        let (_, _) = file(app, "github", json!({})).await;

        card_of(slack, REQUESTER).await;
        card_of(slack, APPROVER).await;
        let posts = slack.calls_to("chat.postMessage");
        let limited = posts
            .iter()
            .find(|c| c.status == 429)
            .unwrap_or_else(|| panic!("no 429 among {posts:#?}"));
        let channel = limited.arg("channel").expect("channel").to_string();
        let retried = posts
            .iter()
            .find(|c| c.seq > limited.seq && c.ok() && c.arg("channel") == Some(channel.as_str()))
            .expect("the limited post was made again");
        let waited = retried.at.duration_since(limited.at);
        assert!(
            waited >= Duration::from_millis(950),
            "retried after {waited:?}, before Retry-After (1 s)"
        );
        let sample = r#"accessbot_slack_calls_total{method="chat.postMessage",outcome="rate_limited"}"#;
        assert_eq!(metric(app, sample).await, 1.0);
        wait_until_idle(app).await;
        assert_eq!(cards_posted_to(slack, REQUESTER), 1);
        assert_eq!(cards_posted_to(slack, APPROVER), 1);
        assert!(failed_deliveries(app).await.is_empty());
    }
}

story! {
    async fn waiting_calls_survive_a_restart(env: StoryEnv) {
        let slack = &env.slack;
        let offline = env.spawn_with(&[("SLACK_BOT_TOKEN", "")]).await;
        put_app(&offline, "github", github()).await;
        let (id, _) = file(&offline, "github", json!({})).await;
        assert!(
            metric(&offline, "accessbot_slack_calls_waiting").await > 0.0,
            "the cards wait in the outbox"
        );
        let (status, _) = offline.verify_url("challenge").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "/slack/events");
        let (status, _) = offline.slash_access(REQUESTER, "D1", "").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "/slack/commands");
        let click = signer::block_actions_in_message(
            APPROVER,
            "D1",
            "1.000100",
            None,
            &signer::ButtonClick::new("approve", "actions", &id, "Approve"),
        );
        let (status, _) = offline.slack_interactivity(&click).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "/slack/interactivity");
        offline.stop().await;
        assert!(slack.calls().is_empty(), "nothing reached Slack without credentials");

        let online = env.spawn().await;
        card_of(slack, REQUESTER).await;
        card_of(slack, APPROVER).await;
        wait_until_idle(&online).await;
        assert_eq!(cards_posted_to(slack, REQUESTER), 1);
        assert_eq!(cards_posted_to(slack, APPROVER), 1);
        assert_eq!(slack.calls_to("chat.postMessage").len(), 2, "each card posted once");
        assert_eq!(online.request(&id).await["status"], "pending_approval");
        online.stop().await;
    }
}

story! {
    async fn permanent_slack_error_is_dead_lettered_and_retryable(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        let slack = &app.slack;
        let mut catalog = github_without_approvers();
        catalog["admins"] = json!([ADMIN1]);
        catalog["admin_channel"] = Value::Null;
        put_app(app, "github", catalog).await;
        slack.fail_next("chat.postMessage", Fault::SlackError("channel_not_found".into()));
        let (id, _) = file(app, "github", json!({})).await;
        app.settle().await;

        let refused = slack
            .wait_for_call("chat.postMessage", |c| c.error() == Some("channel_not_found"))
            .await
            .unwrap_or_else(|timeout| panic!("{timeout}"));
        let lost = refused.arg("channel").expect("channel").to_string();
        let delivered = if lost == REQUESTER { ADMIN1 } else { REQUESTER };
        card_of(slack, delivered).await;

        eventually("the failed delivery to be listed", || async {
            !failed_deliveries(app).await.is_empty()
        })
        .await;
        let failed = failed_deliveries(app).await;
        assert_eq!(failed.len(), 1, "{failed:#?}");
        let delivery = &failed[0];
        assert_eq!(delivery["method"], "chat.postMessage");
        assert_eq!(delivery["request_id"].to_string(), id);
        assert!(
            delivery["error"].as_str().unwrap_or_default().contains("channel_not_found"),
            "{delivery}"
        );
        let kinds = event_kinds(app, &id).await;
        assert!(kinds.iter().any(|(kind, _)| kind == "delivery_failed"), "{kinds:?}");
        assert_eq!(metric(app, "accessbot_slack_calls_failed").await, 1.0);
        let sample = r#"accessbot_slack_calls_total{method="chat.postMessage",outcome="failed"}"#;
        assert_eq!(metric(app, sample).await, 1.0);

        let (status, body) = app
            .api_post(&format!("/api/v1/deliveries/{}/retry", delivery["id"]), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.settle().await;
        card_of(slack, &lost).await;
        assert!(failed_deliveries(app).await.is_empty());
        // The failed count is reused for 10 s of the app's clock.
        app.advance(chrono::Duration::seconds(10));
        assert_eq!(metric(app, "accessbot_slack_calls_failed").await, 0.0);
        assert_eq!(cards_posted_to(slack, REQUESTER), 1);
        assert_eq!(cards_posted_to(slack, ADMIN1), 1);

        let (status, body) = app
            .api_post(&format!("/api/v1/deliveries/{}/retry", delivery["id"]), json!({}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "only failed deliveries retry: {body}");
        let (status, _) = app.api_post("/api/v1/deliveries/abc/retry", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        stepped.stop().await;
    }
}

story! {
    async fn longest_inputs_stay_within_block_kit_limits(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        let slack = &app.slack;
        let admins: Vec<String> = (0..100).map(|i| format!("UADMIN{i:03}")).collect();
        let groups: Vec<String> = (0..100)
            .map(|i| format!("{i:03}-{}", "<g&>".repeat(20))[..80].to_string())
            .collect();
        put_app(
            app,
            "huge",
            json!({
                "name": "W".repeat(80),
                "admins": admins,
                "approvers": [],
                "permissions": ["P".repeat(80)],
                "groups": groups,
                "admin_channel": ADMIN_CHANNEL,
            }),
        )
        .await;
        let comment = "<!channel> & ".repeat(770)[..10_000].to_string();
        let (id, _) = file(app, "huge", json!({"groups": groups, "comment": comment})).await;
        app.settle().await;

        let cards = admins.len() + 2;
        slack
            .wait_for(
                |calls| {
                    calls.iter().filter(|c| c.method == "chat.postMessage").count() >= cards
                },
                PATIENCE,
            )
            .await
            .unwrap_or_else(|timeout| panic!("{timeout}"));
        let first = card_with_button(slack, &admins[0], "confirm_provisioning").await;
        let (status, _) = app
            .click(&admins[0], "confirm_provisioning", &id, &first.channel, &first.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.request(&id).await["status"], "provisioned");
        app.settle().await;
        slack
            .wait_for(
                |calls| calls.iter().filter(|c| c.method == "chat.update").count() >= cards,
                PATIENCE,
            )
            .await
            .unwrap_or_else(|timeout| panic!("{timeout}"));

        for call in slack.calls() {
            assert!(call.ok(), "{} refused: {} for {}", call.method, call.response, call.body);
        }
        assert!(failed_deliveries(app).await.is_empty());
        for recipient in admins.iter().map(String::as_str).chain([ADMIN_CHANNEL, REQUESTER]) {
            assert_eq!(cards_posted_to(slack, recipient), 1, "card to {recipient}");
            let card = card_of(slack, recipient).await;
            // Only the requester's receipt keeps a button: the one to give the access back.
            let live: Vec<String> = card.buttons().into_iter().map(|b| b.0).collect();
            let expected: &[&str] = if recipient == REQUESTER { &["Release access"] } else { &[] };
            assert_eq!(live, expected, "{recipient}'s card is decided");
            let text = card.text();
            assert!(!text.contains("<!channel>"), "unescaped comment for {recipient}");
            assert!(text.contains('…'), "the comment is cut for {recipient}");
        }
        stepped.stop().await;
    }
}

story! {
    async fn failed_deliveries_are_paged_with_limit_and_cursor(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        let slack = &app.slack;
        let mut catalog = github_without_approvers();
        catalog["admins"] = json!([ADMIN1]);
        catalog["admin_channel"] = Value::Null;
        put_app(app, "github", catalog).await;
        // Four requests, two cards each: every post is refused for good.
        slack.fail_next_n(
            "chat.postMessage",
            Fault::SlackError("channel_not_found".into()),
            8,
        );
        for _ in 0..4 {
            file(app, "github", json!({})).await;
        }
        app.settle().await;
        eventually("the 8 failed deliveries to be listed", || async {
            failed_deliveries(app).await.len() == 8
        })
        .await;

        // Today's call, without parameters: the same bare list, with no next page.
        let (status, headers, all) = app.api_get_with_headers("/api/v1/deliveries").await;
        assert_eq!(status, StatusCode::OK, "{all}");
        let all = all.as_array().cloned().expect("a bare list, as before");
        assert_eq!(all.len(), 8);
        assert!(headers.get("link").is_none() && headers.get("x-next-cursor").is_none());
        assert_eq!(all, failed_deliveries(app).await);

        // Pages of 3 by the cursor each page names, in the header and in its Link.
        let mut seen = Vec::new();
        let mut path = "/api/v1/deliveries?status=failed&limit=3".to_string();
        let mut pages = 0;
        loop {
            let (status, headers, page) = app.api_get_with_headers(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {page}");
            let page = page.as_array().cloned().expect("a bare list");
            assert!(page.len() <= 3, "{path}: {page:?}");
            seen.extend(page.iter().cloned());
            pages += 1;
            let Some(next) = headers.get("x-next-cursor") else {
                assert!(headers.get("link").is_none());
                break;
            };
            let next = next.to_str().expect("ASCII");
            assert_eq!(next, page.last().unwrap()["id"].to_string());
            let link = headers["link"].to_str().expect("ASCII");
            let expected = format!("/api/v1/deliveries?status=failed&limit=3&cursor={next}");
            assert_eq!(link, format!("<{expected}>; rel=\"next\""));
            path = expected;
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, all, "every failed delivery once, in order");

        for (query, what) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=ten", "limit"),
            ("limit=-1", "limit"),
            ("cursor=abc", "cursor"),
            ("cursor=1.5", "cursor"),
        ] {
            let (status, body) = app.api_get(&format!("/api/v1/deliveries?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(what), "{query}: {body}");
        }
        stepped.stop().await;
    }
}
