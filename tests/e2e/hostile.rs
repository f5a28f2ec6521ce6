//! Hostile input: malformed, truncated, oversized, deeply nested, wrongly typed and
//! unicode-heavy bodies on every endpoint get a clear 4xx (or Slack's 200 for payloads that
//! may be ignored), never a 5xx, and leave the database as it was.

use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::signer::{FORM, JSON};
use crate::support::story::*;
use crate::support::test_app::{sample_app, TestApp, TEST_API_TOKEN};

/// A body over the server's limit (256 KiB).
fn oversized() -> String {
    "x".repeat(300 * 1024)
}

fn deeply_nested() -> String {
    format!("{}{}", "[".repeat(20_000), "]".repeat(20_000))
}

/// Bodies no endpoint should accept.
fn bad_bodies() -> Vec<String> {
    vec![
        String::new(),
        "{".into(),
        "null".into(),
        "[]".into(),
        "\"text\"".into(),
        r#"{"name": 1, "admins": "U1", "permissions": {}}"#.into(),
        r#"{"app": ["github"], "target_user": 7}"#.into(),
        r#"{"app":"github","target_user":"U0TARGET","access_length":"1d","comment":"#.into(),
        format!(
            r#"{{"name": "{}", "admins": ["U1"], "permissions": ["A"]}}"#,
            "🦀".repeat(500)
        ),
        format!(
            r#"{{"app": "github", "target_user": "{}"}}"#,
            "Ü".repeat(100)
        ),
        deeply_nested(),
        "\u{0}\u{1}\u{fffd}".into(),
    ]
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: String,
) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(TEST_API_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the app answers");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Everything a rejected input could have changed.
async fn snapshot(app: &TestApp) -> Value {
    let (_, apps) = app.api_get("/api/v1/apps").await;
    let (_, requests) = app.api_get("/api/v1/requests?limit=200").await;
    let (_, failed) = app.api_get("/api/v1/deliveries?status=failed").await;
    json!({ "apps": apps, "requests": requests, "failed": failed })
}

fn assert_clear_4xx(what: &str, status: StatusCode, body: &str) {
    assert!(
        status.is_client_error(),
        "{what}: expected a 4xx, got {status}: {body:.200}"
    );
    let error: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("{what}: the error is not JSON: {body:.200}"));
    assert!(
        error["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no error message in {body:.200}"
    );
}

story! {
    /// The HTTP API refuses every bad body with a clear 4xx and changes nothing.
    async fn bad_api_input_gets_a_clear_4xx_and_changes_nothing(app: &TestApp) {
        app.put_app("github", sample_app("U0ADMIN1", Some("U0APPROVER"))).await;
        let before = snapshot(app).await;
        let mut bodies = bad_bodies();
        bodies.push(oversized());
        for body in &bodies {
            for (method, path) in [
                (reqwest::Method::PUT, "/api/v1/apps/github"),
                (reqwest::Method::PUT, "/api/v1/apps/new-app"),
                (reqwest::Method::POST, "/api/v1/requests"),
            ] {
                let (status, text) = send(app, method.clone(), path, body.clone()).await;
                assert_clear_4xx(&format!("{method} {path} with {:.40}", body), status, &text);
            }
        }
        for path in [
            "/api/v1/requests/abc",
            "/api/v1/requests/-1",
            "/api/v1/requests/99999999999999999999999",
            "/api/v1/requests/1%00/events",
            "/api/v1/requests?status=bogus",
            "/api/v1/requests?limit=-1",
            "/api/v1/requests?limit=100000",
            "/api/v1/requests?cursor=%F0%9F%A6%80",
            "/api/v1/deliveries?status=done",
            "/api/v1/apps/%F0%9F%A6%80",
        ] {
            let (status, text) = send(app, reqwest::Method::GET, path, String::new()).await;
            assert_clear_4xx(path, status, &text);
        }
        for path in ["/api/v1/requests/abc/cancel", "/api/v1/deliveries/x/retry"] {
            let (status, text) = send(app, reqwest::Method::POST, path, String::new()).await;
            assert_clear_4xx(path, status, &text);
        }
        assert_eq!(snapshot(app).await, before);
    }
}

story! {
    /// Signed Slack requests with broken payloads get a 4xx (or 200 when Slack's payload may
    /// be ignored), never a 5xx, and change nothing; oversized ones get 413.
    async fn bad_slack_payloads_never_get_a_5xx(app: &TestApp) {
        app.put_app("github", sample_app("U0ADMIN1", None)).await;
        let filed = app
            .file_request(json!({"app": "github", "target_user": "U0TARGET"}))
            .await;
        let before = snapshot(app).await;
        let mut bodies = bad_bodies();
        bodies.extend([
            "payload=".to_string(),
            "payload=%7B".to_string(),
            "payload=%5B%5D".to_string(),
            format!("payload={}", urlencode(&deeply_nested())),
            format!(
                "payload={}",
                urlencode(r#"{"type":"block_actions","user":{"id":7},"actions":"x"}"#)
            ),
            format!(
                "payload={}",
                urlencode(&json!({"type": "view_submission", "view": {"id": 1}}).to_string())
            ),
            format!(
                "payload={}",
                urlencode(r#"{"type":"block_actions","team":{"id":"T1"},"api_app_id":"A1","trigger_id":"1.2.a","container":{"type":"message","message_ts":"1.1","channel_id":"D1"},"user":{"id":"U0ADMIN1","team_id":"T1"},"actions":[{"type":"button","action_id":"confirm_provisioning","value":"🦀99999999999999999999"}]}"#)
            ),
            r#"{"type":"event_callback","event":{"type":"message"}}"#.to_string(),
            r#"{"type":"url_verification"}"#.to_string(),
            "user_id=U1&command=%2Faccess".to_string(),
        ]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..40 {
            let len = rng.gen_range(0..600);
            let text: String = (0..len).map(|_| rng.gen_range(' '..='\u{2FFF}')).collect();
            bodies.push(text);
        }
        for body in &bodies {
            for (path, content_type) in [
                ("/slack/interactivity", FORM),
                ("/slack/events", JSON),
                ("/slack/commands", FORM),
            ] {
                let (status, answer) = app.post_signed_raw(path, content_type, body, None, None).await;
                assert!(
                    status.is_client_error() || status == StatusCode::OK,
                    "{path} with {:.60}: got {status} {answer}",
                    body
                );
            }
        }
        let (status, _) = app
            .post_signed_raw("/slack/interactivity", FORM, &oversized(), None, None)
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(snapshot(app).await, before);
        assert_eq!(app.request(&filed["id"].to_string()).await["status"], "pending_provisioning");
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
