//! The names SPEC marks (contract) that scripts, deployments and tests outside the
//! repository rely on, written out literally (SPEC is not in the repository): the button
//! labels, the configuration variables and the HTTP endpoints.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use chrono::{TimeZone, Utc};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::clock::ManualClock;
use crate::domain::Action;
use crate::foreground::Foreground;
use crate::http::{router, AppState, SlackState};
use crate::metrics::Metrics;
use crate::service::Service;
use crate::slack::client::SlackApi;

/// SPEC §3 and §8.1: button labels (contract), built.
const BUTTON_LABELS: [&str; 7] = [
    "Confirm Provisioning",
    "Deny",
    "Edit",
    "Approve",
    "Confirm Removal",
    "Send feedback",
    "Release access",
];

/// SPEC §8: button labels (contract) not yet built (lapse, extensions, claims). They are
/// not required yet, but once a button comes near one of them it must be spelled exactly so.
const BUTTON_LABELS_NOT_YET_BUILT: [&str; 4] =
    ["Request again", "Request more time", "Claim", "Unclaim"];

/// SPEC §5: configuration variables (contract).
const VARIABLES: [&str; 8] = [
    "DATABASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
    "ACCESSBOT_API_TOKEN",
    "ACCESSBOT_ADDR",
    "ACCESSBOT_PUBLIC_URL",
    "ACCESSBOT_SCHEDULER_INTERVAL",
];

/// SPEC §8: configuration variables (contract) of what comes next; required in the docs
/// once the code reads them.
const NEXT_VARIABLES: [&str; 9] = [
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_AUTHORIZE_URL",
    "ACCESSBOT_SMTP_URL",
    "ACCESSBOT_EMAIL_FROM",
    "SLACK_APP_TOKEN",
    "ACCESSBOT_CATALOG",
    "ACCESSBOT_LOG_FORMAT",
    "ACCESSBOT_METRICS_TOKEN",
];

/// Where configuration is read.
const CONFIG_SOURCE: &str = include_str!("config.rs");
const ENV_EXAMPLE: &str = include_str!("../.env.example");
const README: &str = include_str!("../README.md");

/// Letters and digits only, lowercased: "Un-claim" and "unclaim" are the same word.
fn squashed(label: &str) -> String {
    label
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn labels() -> Vec<&'static str> {
    Action::ALL
        .into_iter()
        .filter_map(|action| action.button())
        .map(|button| button.label)
        .collect()
}

#[test]
fn every_contract_button_label_is_the_label_of_an_action() {
    let labels = labels();
    for label in BUTTON_LABELS {
        assert!(
            labels.contains(&label),
            "SPEC's button {label:?} is not in the table of actions: {labels:?}"
        );
    }
}

#[test]
fn a_button_not_yet_built_is_never_spelled_differently_from_the_spec() {
    for label in labels() {
        for spec in BUTTON_LABELS_NOT_YET_BUILT {
            assert!(
                label == spec || squashed(label) != squashed(spec),
                "the button {label:?} must be spelled {spec:?} as SPEC §8 says"
            );
        }
    }
}

/// `NAME` is set (or shown commented out) on a line of `.env.example`.
fn in_env_example(name: &str) -> bool {
    ENV_EXAMPLE.lines().any(|line| {
        line.trim_start_matches(['#', ' '])
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('='))
    })
}

/// `NAME` appears as a whole word in `text` (so `PORT` is not found in `SUPPORT`).
fn mentioned(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// The variables `Config::from_vars` reads: its `get("NAME")` calls.
fn variables_read() -> Vec<&'static str> {
    CONFIG_SOURCE
        .split("get(\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name))
        .collect()
}

#[test]
fn every_contract_variable_is_in_the_env_example_and_the_readme() {
    let read = variables_read();
    let next_read: Vec<&str> = NEXT_VARIABLES
        .into_iter()
        .filter(|name| read.contains(name))
        .collect();
    for name in VARIABLES.into_iter().chain(next_read) {
        assert!(read.contains(&name), "{name} is not read by src/config.rs");
        assert!(in_env_example(name), "{name} is not set in .env.example");
        assert!(
            README.contains(&format!("`{name}`")),
            "{name} is not in README.md"
        );
    }
}

#[test]
fn every_variable_the_code_reads_is_explained_in_the_env_example_and_the_readme() {
    let read = variables_read();
    assert!(read.len() >= VARIABLES.len(), "{read:?}");
    for name in read {
        assert!(
            mentioned(ENV_EXAMPLE, name),
            "{name} is not in .env.example"
        );
        assert!(mentioned(README, name), "{name} is not in README.md");
    }
}

/// The router of a whole application on an in-memory database, with Slack configured
/// (so unsigned Slack requests are refused, not unavailable) and an API token.
async fn app() -> axum::Router {
    let store = crate::store::connect("sqlite::memory:").await.unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap(),
    ));
    let deliveries_waiting = Arc::new(Notify::new());
    let metrics = Arc::new(Metrics::default());
    router(AppState {
        service: Service::new(store, clock, deliveries_waiting.clone()),
        slack: Some(SlackState {
            api: SlackApi::new("http://127.0.0.1:9/api", "xoxb-test", metrics.clone()),
            signing_secret: Some("signing-secret".into()),
        }),
        api_token: Some(TOKEN.into()),
        metrics_token: None,
        metrics,
        deliveries_waiting,
        foreground: Arc::new(Foreground::default()),
        supervisor: Default::default(),
        socket: None,
    })
}

const TOKEN: &str = "conformance-token";

/// The status and body of `method path`, with the API token when `token`.
async fn call(
    app: &axum::Router,
    method: &Method,
    path: &str,
    token: bool,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method.clone()).uri(path);
    if token {
        request = request.header("authorization", format!("Bearer {TOKEN}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// What the router answers for a path it does not know.
async fn unrouted(app: &axum::Router, method: &Method, path: &str) -> (StatusCode, String) {
    let answer = call(app, method, path, true).await;
    assert_eq!(
        answer.0,
        StatusCode::NOT_FOUND,
        "{method} {path}: {answer:?}"
    );
    answer
}

/// SPEC §4 and §8.1: endpoints (contract), with what they answer a caller without
/// credentials (no API token, no Slack signature).
const ENDPOINTS: [(&str, &str, u16); 18] = [
    ("PUT", "/api/v1/apps/github", 401),
    ("GET", "/api/v1/apps", 401),
    ("GET", "/api/v1/apps/github", 401),
    ("POST", "/api/v1/requests", 401),
    (
        "GET",
        "/api/v1/requests?status=pending_approval&limit=1",
        401,
    ),
    ("GET", "/api/v1/requests/1", 401),
    ("GET", "/api/v1/requests/1/events", 401),
    ("GET", "/api/v1/requests/1/thread", 401),
    ("POST", "/api/v1/requests/1/cancel", 401),
    ("POST", "/api/v1/requests/1/release", 401),
    ("GET", "/api/v1/deliveries?status=failed&limit=1", 401),
    ("POST", "/api/v1/deliveries/1/retry", 401),
    ("GET", "/healthz", 200),
    ("GET", "/readyz", 200),
    ("GET", "/metrics", 200),
    ("POST", "/slack/events", 401),
    ("POST", "/slack/interactivity", 401),
    ("POST", "/slack/commands", 401),
];

#[tokio::test]
async fn every_contract_endpoint_is_routed_and_refuses_callers_without_credentials() {
    let app = app().await;
    let (_, not_found) = unrouted(&app, &Method::GET, "/api/v1/no-such-endpoint").await;
    assert_eq!(
        unrouted(&app, &Method::POST, "/slack/no-such-endpoint")
            .await
            .1,
        not_found
    );
    for (method, path, status) in ENDPOINTS {
        let method: Method = method.parse().unwrap();
        let (got, body) = call(&app, &method, path, false).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {body}");
        // With the token the handler itself answers: whatever it says, it is neither the
        // router's "no such endpoint" nor a method the route does not take.
        let (got, body) = call(&app, &method, path, true).await;
        assert!(
            got != StatusCode::METHOD_NOT_ALLOWED && body != not_found,
            "{method} {path} is not routed: {got} {body}"
        );
    }
}

#[tokio::test]
async fn a_method_an_endpoint_does_not_take_is_not_mistaken_for_a_route() {
    // The check above is only as good as its power to tell routed from unrouted.
    let app = app().await;
    let (_, not_found) = unrouted(&app, &Method::GET, "/api/v1/no-such-endpoint").await;
    for (method, path) in [
        (Method::DELETE, "/api/v1/requests/1"),
        (Method::GET, "/api/v1/requests/1/release"),
        (Method::GET, "/slack/events"),
    ] {
        let (got, body) = call(&app, &method, path, true).await;
        assert!(
            got == StatusCode::METHOD_NOT_ALLOWED || body == not_found,
            "{method} {path}: {got} {body}"
        );
    }
}
