//! `/metrics`: its bearer token, the latency histograms of Slack's requests and of the
//! bot's Slack calls, and the database's counts reused for 10 s of the app's clock.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::story::*;
use crate::support::test_app::TestApp;

const METRICS_TOKEN: &str = "metrics-secret";

/// The status of `GET /metrics` with `token` as the bearer token, if any.
async fn scrape_status(app: &TestApp, token: Option<&str>) -> StatusCode {
    let mut request = reqwest::Client::new().get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
        .status()
}

story! {
    async fn metrics_want_the_bearer_token_when_one_is_set_and_are_open_otherwise(env: StoryEnv) {
        let guarded = env.spawn_with(&[("ACCESSBOT_METRICS_TOKEN", METRICS_TOKEN)]).await;
        assert_eq!(scrape_status(&guarded, None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(scrape_status(&guarded, Some("wrong")).await, StatusCode::UNAUTHORIZED);
        let api_token = crate::support::test_app::TEST_API_TOKEN;
        assert_eq!(
            scrape_status(&guarded, Some(api_token)).await,
            StatusCode::UNAUTHORIZED,
            "the API's token is not the metrics token"
        );
        assert_eq!(scrape_status(&guarded, Some(METRICS_TOKEN)).await, StatusCode::OK);
        guarded.stop().await;

        let open = env.spawn().await;
        assert_eq!(scrape_status(&open, None).await, StatusCode::OK);
        open.stop().await;
    }
}

story! {
    async fn a_click_and_a_slack_call_are_timed_in_the_latency_histograms(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let approval = card_of(slack, APPROVER).await;
        let (status, _) = app
            .click(APPROVER, "approve", &id, &approval.channel, &approval.ts)
            .await;
        assert_eq!(status, StatusCode::OK);

        let acks = r#"accessbot_slack_ack_duration_seconds_count{endpoint="interactivity"}"#;
        assert_eq!(metric(app, acks).await, 1.0, "one click, one acknowledgement");
        // Slack gives up after 3 s; the bucket just above it holds the click.
        let within_4s =
            r#"accessbot_slack_ack_duration_seconds_bucket{le="4.096",endpoint="interactivity"}"#;
        assert_eq!(metric(app, within_4s).await, 1.0);
        // The fake holds a card a moment before the client has timed its call.
        let posts = r#"accessbot_slack_call_duration_seconds_count{method="chat.postMessage"}"#;
        eventually("chat.postMessage to be timed", || async {
            metric(app, posts).await >= 2.0
        })
        .await;
        let took = r#"accessbot_slack_call_duration_seconds_sum{method="chat.postMessage"}"#;
        assert!(metric(app, took).await > 0.0);
    }
}

story! {
    async fn requests_by_status_are_counted_again_only_once_ten_seconds_have_passed(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        let pending = r#"accessbot_requests{status="pending_approval"}"#;
        put_app(app, "github", github()).await;
        assert_eq!(metric(app, pending).await, 0.0);
        let counted_at = metric(app, "accessbot_status_gauges_timestamp_seconds").await;
        assert_eq!(counted_at, app.now().timestamp_millis() as f64 / 1000.0);

        file(app, "github", json!({})).await;
        assert!(
            metric(app, "accessbot_slack_calls_waiting").await > 0.0,
            "the calls waiting are counted at every scrape"
        );
        assert_eq!(metric(app, pending).await, 0.0, "counted before the request was filed");
        app.advance(Duration::milliseconds(9_999));
        assert_eq!(metric(app, pending).await, 0.0, "still within 10 s");
        app.advance(Duration::milliseconds(1));
        assert_eq!(metric(app, pending).await, 1.0, "counted again after 10 s");
        assert!(metric(app, "accessbot_status_gauges_timestamp_seconds").await > counted_at);
        stepped.stop().await;
    }
}
