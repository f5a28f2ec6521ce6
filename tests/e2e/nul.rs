//! NUL (U+0000), which PostgreSQL refuses in text and SQLite stores, is refused at every door
//! on both databases alike: a clear 400 for the API and Slack's requests, Slack's 200 for an
//! event to ignore, and the database as it was.

use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::signer::{self, ButtonClick, FORM, JSON};
use crate::support::story::*;
use crate::support::test_app::{sample_app, TestApp, TEST_API_TOKEN};

/// Everything text from outside could have changed.
async fn snapshot(app: &TestApp, id: i64) -> Value {
    let (_, apps) = app.api_get("/api/v1/apps").await;
    let (_, requests) = app.api_get("/api/v1/requests?limit=200").await;
    json!({ "apps": apps, "requests": requests, "thread": thread_of(app, id).await })
}

async fn send_json(app: &TestApp, method: reqwest::Method, path: &str, body: &str) -> StatusCode {
    reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(TEST_API_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the app answers")
        .status()
}

fn assert_refused(what: &str, (status, body): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert!(
        body["error"].as_str().is_some_and(|m| m.contains("NUL")),
        "{what}: the error does not say why: {body}"
    );
}

/// A filed GitHub request and its requester's receipt.
async fn filed(app: &TestApp) -> (i64, Card) {
    put_app(app, "github", sample_app(ADMIN1, None)).await;
    let request = app
        .file_request(json!({"app": "github", "target_user": REQUESTER, "requester": REQUESTER}))
        .await;
    let id = number_of(&request);
    let receipt = wait_card(&app.slack, REQUESTER, "cancel_request", id).await;
    wait_for_worker(app).await;
    (id, receipt)
}

story! {
    async fn text_with_nul_is_refused_at_every_door_and_changes_nothing(env: StoryEnv) {
        let app = env.spawn().await;
        let (id, receipt) = filed(&app).await;
        let before = snapshot(&app, id).await;

        // The API: bodies, paths and query parameters.
        let mut with_nul = sample_app(ADMIN1, None);
        with_nul["name"] = json!("Git\u{0}Hub");
        assert_refused("an app name", app.api_put("/api/v1/apps/github", with_nul).await);
        assert_refused(
            "an admin",
            app.api_put("/api/v1/apps/new", sample_app("U\u{0}1", None)).await,
        );
        for body in [
            json!({"app": "github", "target_user": "U\u{0}T"}),
            json!({"app": "github", "target_user": REQUESTER, "comment": "for\u{0}work"}),
            json!({"app": "git\u{0}hub", "target_user": REQUESTER}),
        ] {
            assert_refused(&body.to_string(), app.api_post("/api/v1/requests", body.clone()).await);
        }
        for path in [
            "/api/v1/requests?user=U%001",
            "/api/v1/requests?status=provisioned%00",
            "/api/v1/apps/git%00hub",
            "/api/v1/requests/1%00",
            "/slack/events%00",
        ] {
            assert_refused(path, app.api_get(path).await);
        }

        // Slack: a slash command, a click and a form submission holding NUL get a 400...
        assert_refused(
            "a slash command's user",
            app.slash_access("U0\u{0}X", "D0REQUESTER", "list").await,
        );
        assert_refused(
            "a slash command's text",
            app.slash_access(REQUESTER, "D0REQUESTER", "li\u{0}st").await,
        );
        let click = ButtonClick::new("cancel_request", "actions", &id.to_string(), "Cancel");
        let mut payload =
            signer::block_actions_in_message(REQUESTER, &receipt.channel, &receipt.ts, None, &click);
        payload["user"]["id"] = json!("U0\u{0}REQUESTER");
        assert_refused("a click's user", app.slack_interactivity(&payload).await);

        // ...and a thread reply holding NUL is Slack's 200, ignored, relayed nowhere.
        let (_, status) = app
            .reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "hello\u{0}there")
            .await;
        assert_eq!(status, StatusCode::OK);
        wait_for_worker(&app).await;
        assert_eq!(snapshot(&app, id).await, before);
        assert_eq!(status_of(&app, id).await, "pending_provisioning");

        // The doors are not shut: the same reply without NUL is kept.
        let (_, status) = app
            .reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "hello there")
            .await;
        assert_eq!(status, StatusCode::OK);
        eventually("the reply is kept", || async {
            thread_of(&app, id).await.len() == 1
        })
        .await;
    }
}

/// Real payloads with NUL put into one of their strings, and raw text heavy in the characters
/// NUL is spelled with: none may reach the database or get a 5xx.
fn hostile_bodies(rng: &mut rand::rngs::StdRng, samples: &[String]) -> Vec<String> {
    const ALPHABET: &[char] = &[
        '\0', '%', '0', '\\', 'u', '{', '}', '"', ':', ',', '[', ']', '=', '&', 'a', 'U', '🦀',
    ];
    let mut bodies = Vec::new();
    for _ in 0..60 {
        let sample = &samples[rng.gen_range(0..samples.len())];
        let quotes: Vec<usize> = sample.match_indices('"').map(|(at, _)| at + 1).collect();
        let at = quotes[rng.gen_range(0..quotes.len())];
        bodies.push(format!("{}\\u0000{}", &sample[..at], &sample[at..]));
        let len = rng.gen_range(0..200);
        bodies.push(
            (0..len)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
                .collect(),
        );
    }
    bodies
}

story! {
    async fn random_nul_on_every_door_never_gets_a_5xx_or_reaches_the_database(env: StoryEnv) {
        let app = env.spawn().await;
        let (id, receipt) = filed(&app).await;
        let before = snapshot(&app, id).await;
        let click = ButtonClick::new("cancel_request", "actions", &id.to_string(), "Cancel");
        let samples = [
            signer::block_actions_in_message(REQUESTER, &receipt.channel, &receipt.ts, None, &click)
                .to_string(),
            signer::event_callback(signer::user_message_event(
                &receipt.channel,
                "im",
                REQUESTER,
                "hello",
                "1700000000.000100",
                Some(&receipt.ts),
            ))
            .to_string(),
            json!({"app": "github", "target_user": REQUESTER, "comment": "needed"}).to_string(),
            sample_app(ADMIN1, None).to_string(),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        for body in hostile_bodies(&mut rng, &samples) {
            let form = format!("payload={}", urlencode(&body));
            let command = signer::form(&[("user_id", &body), ("trigger_id", "1.2.3"), ("text", "list")]);
            for (path, content_type, sent) in [
                ("/slack/interactivity", FORM, &form),
                ("/slack/events", JSON, &body),
                ("/slack/commands", FORM, &command),
            ] {
                let (status, answer) = app.post_signed_raw(path, content_type, sent, None, None).await;
                assert!(
                    status.is_client_error() || status == StatusCode::OK,
                    "{path} with {sent:.80}: {status} {answer}"
                );
            }
            for (method, path) in [
                (reqwest::Method::PUT, "/api/v1/apps/github"),
                (reqwest::Method::POST, "/api/v1/requests"),
            ] {
                let status = send_json(&app, method, path, &body).await;
                assert!(status.is_client_error(), "{path} with {body:.80}: {status}");
            }
        }
        wait_for_worker(&app).await;
        assert_eq!(snapshot(&app, id).await, before);
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
