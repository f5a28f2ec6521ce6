//! The HTTP API of SPEC §4 from the outside: authentication, errors, idempotency,
//! filters and pagination, health.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::story::*;

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("errors are {{\"error\": …}}: {body}"))
}

story! {
    async fn api_needs_the_bearer_token(app: &TestApp) {
        for path in ["/api/v1/apps", "/api/v1/requests", "/api/v1/deliveries"] {
            let (status, body) = app.raw_get(path).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} without a token");
            error_of(&body);
            let (status, body) = app
                .request_with_token(Method::GET, path, None, Some("wrong-token"))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with a wrong token");
            error_of(&body);
            let (status, body) = app.api_get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
        let (status, _) = app.raw_put("/api/v1/apps/github", github()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = app
            .raw_post("/api/v1/requests", json!({"app": "github", "target_user": REQUESTER}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, apps) = app.api_get("/api/v1/apps").await;
        assert_eq!((status, apps), (StatusCode::OK, json!([])), "nothing was created");
    }
}

story! {
    async fn api_answers_503_without_a_configured_token(env: StoryEnv) {
        let app = env.spawn_with(&[("ACCESSBOT_API_TOKEN", "")]).await;
        let (status, body) = app.api_get("/api/v1/apps").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(error_of(&body).contains("ACCESSBOT_API_TOKEN"), "{body}");
        let (status, _) = app.raw_get("/api/v1/requests").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let (status, _) = app.raw_get("/healthz").await;
        assert_eq!(status, StatusCode::OK, "the rest of the server runs");
        app.stop().await;
    }
}

story! {
    async fn api_refuses_bad_input_with_fitting_statuses(app: &TestApp) {
        put_app(app, "github", github()).await;
        let base = json!({"app": "github", "target_user": REQUESTER});
        let with = |extra: Value| {
            let mut body = base.clone();
            for (key, value) in extra.as_object().unwrap() {
                body[key] = value.clone();
            }
            body
        };
        let cases = [
            ("unknown app", with(json!({"app": "nope"})), StatusCode::NOT_FOUND),
            ("permission not in catalog", with(json!({"permission": "Owner"})), StatusCode::UNPROCESSABLE_ENTITY),
            ("group not in catalog", with(json!({"groups": ["eng", "sales"]})), StatusCode::UNPROCESSABLE_ENTITY),
            ("bad access length", with(json!({"access_length": "forever"})), StatusCode::BAD_REQUEST),
            ("zero access length", with(json!({"access_length": "0d"})), StatusCode::BAD_REQUEST),
            ("not a user id", with(json!({"target_user": "bob"})), StatusCode::BAD_REQUEST),
            ("no target user", json!({"app": "github"}), StatusCode::BAD_REQUEST),
            ("a comment too long", with(json!({"comment": "x".repeat(10_001)})), StatusCode::BAD_REQUEST),
        ];
        for (what, body, expected) in cases {
            let (status, answer) = app.api_post("/api/v1/requests", body).await;
            assert_eq!(status, expected, "{what}: {answer}");
            error_of(&answer);
        }
        // Over ten years, or past what any clock could add: refused by field, never a 500.
        for length in ["3661d", "523w", "99999999999999w"] {
            let (status, answer) = app.api_post("/api/v1/requests", with(json!({"access_length": length}))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{length}: {answer}");
            let error = error_of(&answer);
            assert!(error.contains("access_length") && error.contains("10 years"), "{length}: {error}");
        }
        let (status, answer) = api_post_raw(app, "/api/v1/requests", b"{\"app\": ".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "invalid JSON: {answer}");
        error_of(&answer);
        let huge = format!(r#"{{"app": "github", "target_user": "{REQUESTER}", "comment": "{}"}}"#, "x".repeat(300 * 1024));
        let (status, answer) = api_post_raw(app, "/api/v1/requests", huge.into_bytes()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "oversized body: {answer}");

        for path in ["/api/v1/apps/nope", "/api/v1/requests/999999", "/api/v1/requests/abc", "/api/v1/requests/999999/events"] {
            let (status, answer) = app.api_get(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
            error_of(&answer);
        }
        let mut no_admins = github();
        no_admins["admins"] = json!([]);
        let (status, answer) = app.put_app("broken", no_admins).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "admins must not be empty: {answer}");
        let mut no_permissions = github();
        no_permissions["permissions"] = json!([]);
        let (status, _) = app.put_app("broken", no_permissions).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "permissions must not be empty");

        let (status, list) = app.api_get("/api/v1/requests").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["requests"], json!([]), "nothing was filed");
        assert!(app.slack.calls().is_empty(), "and nothing posted");
    }
}

story! {
    async fn cancel_is_refused_once_provisioned(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let (pending, _) = file(app, "github", json!({})).await;
        let live = card_with_button(slack, ADMIN1, "confirm_provisioning").await;
        let receipt = card_with_button(slack, REQUESTER, "cancel_request").await;
        let (status, canceled) = app
            .api_post(&format!("/api/v1/requests/{pending}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{canceled}");
        assert_eq!(canceled["status"], "canceled");
        let (status, body) = app
            .api_post(&format!("/api/v1/requests/{pending}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "twice: {body}");
        for card in [&live, &receipt] {
            let card = wait_no_actions(slack, card).await;
            assert!(card.text().contains("Canceled"), "{}", card.text());
        }

        let (id, _) = file(app, "github", json!({})).await;
        let card = wait_for_card(slack, ADMIN1, |c| {
            button(&c.message, "confirm_provisioning").is_some_and(|b| b["value"] == id.as_str())
        })
        .await;
        let (status, _) = app
            .click(ADMIN1, "confirm_provisioning", &id, &card.channel, &card.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.request(&id).await["status"], "provisioned");
        let (status, body) = app
            .api_post(&format!("/api/v1/requests/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        error_of(&body);
        assert_eq!(app.request(&id).await["status"], "provisioned");
        let (status, _) = app.api_post("/api/v1/requests/999999/cancel", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

story! {
    async fn idempotency_key_returns_the_same_request_once(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let body = json!({"app": "github", "target_user": REQUESTER, "comment": "once"});
        let key = [("Idempotency-Key", "order-4711")];
        let (status, first) = app
            .api_post_with_headers("/api/v1/requests", body.clone(), &key)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let (status, again) = app
            .api_post_with_headers("/api/v1/requests", body.clone(), &key)
            .await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again, first);
        let (status, other) = app
            .api_post_with_headers("/api/v1/requests", body, &[("Idempotency-Key", "order-4712")])
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_ne!(other["id"], first["id"]);

        app.settle().await;
        card_of(slack, APPROVER).await;
        assert_eq!(cards_posted_to(slack, REQUESTER), 2, "one receipt per request");
        assert_eq!(cards_posted_to(slack, APPROVER), 2, "one card per request");
        let (_, list) = app.api_get("/api/v1/requests").await;
        assert_eq!(list["requests"].as_array().unwrap().len(), 2);
        stepped.stop().await;
    }
}

story! {
    async fn idempotency_key_with_another_body_is_refused_and_files_nothing(app: &TestApp) {
        put_app(app, "github", github()).await;
        let key = [("Idempotency-Key", "order-4711")];
        let body = json!({"app": "github", "target_user": REQUESTER, "comment": "once"});
        let (status, first) = app
            .api_post_with_headers("/api/v1/requests", body.clone(), &key)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{first}");

        for other in [
            json!({"app": "github", "target_user": REQUESTER, "comment": "twice"}),
            json!({"app": "github", "target_user": REQUESTER, "comment": "once", "groups": ["eng"]}),
            json!({"app": "github", "target_user": OUTSIDER, "comment": "once"}),
        ] {
            let (status, answer) = app
                .api_post_with_headers("/api/v1/requests", other.clone(), &key)
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}: {answer}");
            let error = error_of(&answer);
            assert!(error.contains("Idempotency-Key \"order-4711\""), "{error}");
        }
        // The first body still gets its request.
        let (status, again) = app
            .api_post_with_headers("/api/v1/requests", body, &key)
            .await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["id"], first["id"]);
        let (_, list) = app.api_get("/api/v1/requests").await;
        assert_eq!(list["requests"].as_array().unwrap().len(), 1, "nothing else was filed");
    }
}

story! {
    async fn idempotency_key_files_anew_after_24_hours(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        put_app(app, "github", github()).await;
        let key = [("Idempotency-Key", "nightly-sync")];
        let body = json!({"app": "github", "target_user": REQUESTER, "comment": "nightly"});
        let post = |body: Value| app.api_post_with_headers("/api/v1/requests", body, &key);
        let (status, first) = post(body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");

        app.advance(chrono::Duration::hours(24) - chrono::Duration::seconds(1));
        let (status, again) = post(body.clone()).await;
        assert_eq!((status, &again["id"]), (StatusCode::OK, &first["id"]), "within the day");

        app.advance(chrono::Duration::seconds(1));
        let (status, next) = post(body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "a day later the key files anew: {next}");
        assert_ne!(next["id"], first["id"]);
        let (status, again) = post(body).await;
        assert_eq!((status, &again["id"]), (StatusCode::OK, &next["id"]));
        // Bound to its new body as it was to the first.
        let (status, answer) = post(json!({"app": "github", "target_user": REQUESTER})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

        let (_, list) = app.api_get("/api/v1/requests").await;
        assert_eq!(list["requests"].as_array().unwrap().len(), 2);
        stepped.stop().await;
    }
}

story! {
    async fn requests_are_listed_newest_first_with_filters_and_pages(app: &TestApp) {
        put_app(app, "github", github()).await;
        put_app(app, "figma", github_without_approvers()).await;
        let mut ids = Vec::new();
        for (slug, user) in [
            ("github", "UALICE"),
            ("figma", "UBOB"),
            ("github", "UBOB"),
            ("figma", "UALICE"),
            ("github", "UCAROL"),
        ] {
            let request = app
                .file_request(json!({"app": slug, "target_user": user}))
                .await;
            ids.push(request["id"].clone());
        }
        let newest_first: Vec<Value> = ids.iter().rev().cloned().collect();
        let page_ids = |body: &Value| -> Vec<Value> {
            body["requests"]
                .as_array()
                .unwrap_or_else(|| panic!("a page: {body}"))
                .iter()
                .map(|r| r["id"].clone())
                .collect()
        };

        let (status, all) = app.api_get("/api/v1/requests").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page_ids(&all), newest_first);
        assert!(all["next_cursor"].is_null());

        let mut seen = Vec::new();
        let mut path = "/api/v1/requests?limit=2".to_string();
        let mut pages = 0;
        loop {
            let (status, page) = app.api_get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {page}");
            let got = page_ids(&page);
            assert!(got.len() <= 2);
            seen.extend(got);
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/requests?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, newest_first, "pages cover everything once, in order");

        let (_, figma) = app.api_get("/api/v1/requests?app=figma").await;
        assert_eq!(page_ids(&figma), [ids[3].clone(), ids[1].clone()]);
        let (_, bob) = app.api_get("/api/v1/requests?user=UBOB").await;
        assert_eq!(page_ids(&bob), [ids[2].clone(), ids[1].clone()]);
        let (_, pending) = app
            .api_get("/api/v1/requests?status=pending_provisioning")
            .await;
        assert_eq!(page_ids(&pending), [ids[3].clone(), ids[1].clone()]);
        let (_, both) = app
            .api_get("/api/v1/requests?status=pending_approval&user=UALICE")
            .await;
        assert_eq!(page_ids(&both), [ids[0].clone()]);
        let (_, none) = app.api_get("/api/v1/requests?app=nope").await;
        assert_eq!(page_ids(&none), Vec::<Value>::new());

        for bad in ["limit=0", "limit=abc", "limit=100000", "cursor=xyz", "status=approved"] {
            let (status, body) = app.api_get(&format!("/api/v1/requests?{bad}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            error_of(&body);
        }

        let (status, request) = app.api_get(&format!("/api/v1/requests/{}", ids[0])).await;
        assert_eq!(status, StatusCode::OK);
        for field in [
            "id", "app", "app_name", "target_user", "requester", "permission", "groups",
            "comment", "access_length", "status", "approvers", "app_admins", "created_at",
            "updated_at", "provisioned_at", "expires_at", "decided_by", "denial_feedback",
        ] {
            assert!(request.get(field).is_some(), "{field} missing from {request}");
        }
        assert_eq!(request["requester"], "UALICE", "requester defaults to the target user");
        assert_eq!(request["permission"], "Member", "the app's first permission");
        assert_eq!(request["access_length"], "unlimited");
        assert_eq!(request["groups"], json!([]));
        assert!(request["created_at"].as_str().unwrap().ends_with('Z'));
    }
}

story! {
    async fn health_readiness_and_metrics_answer(app: &TestApp) {
        let (status, _) = app.raw_get("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.raw_get("/readyz").await;
        assert_eq!(status, StatusCode::OK);
        let (status, text) = app.get_text("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("accessbot_slack_calls_waiting"), "{text}");
        let (status, body) = app.raw_get("/no/such/endpoint").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
}
