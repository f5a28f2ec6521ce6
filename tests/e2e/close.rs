//! Close (SPEC §8.1): an operator closes a stuck request through the API. Pending requests
//! become `canceled`, granted ones `expired` with their removal unconfirmed; every card says
//! so without buttons, the requester is told, and nothing acts on the request again.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::fake_slack::FakeSlack;
use crate::support::story::*;
use crate::support::test_app::TestApp;

const OPERATOR: &str = "ops-alice";
const REASON: &str = "The approvers left the company";
const REMOVAL_UNCONFIRMED: &str = "Closed by an operator: removal not confirmed";

/// `POST /api/v1/requests/{id}/close` with `body`.
async fn close(app: &TestApp, id: i64, body: Value) -> (StatusCode, Value) {
    app.api_post(&format!("/api/v1/requests/{id}/close"), body)
        .await
}

/// The usual close, which must succeed.
async fn close_ok(app: &TestApp, id: i64) -> Value {
    let (status, body) = close(app, id, json!({"reason": REASON, "operator": OPERATOR})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Waits until `card` has no buttons left and shows `text`.
async fn wait_closed_card(slack: &FakeSlack, card: &Card, text: &str) -> String {
    wait_for_state(
        slack,
        &format!("{card:?} to show {text:?} without buttons"),
        |s| !card.has_buttons(s) && card.text_now(s).contains(text),
    )
    .await;
    card.text_now(slack)
}

/// Files a request by [`REQUESTER`] for `slug` (an app without approvers, with the admin
/// channel) for `length` and confirms its provisioning; returns its id and its cards: the
/// receipt, [`ADMIN1`]'s and the admin channel's.
async fn provisioned(app: &TestApp, slug: &str, length: &str) -> (i64, Vec<Card>) {
    let slack = &app.slack;
    let id = number_of(&file(app, slug, asking_for(length)).await.1);
    let receipt = wait_card(slack, REQUESTER, "cancel_request", id).await;
    let admin = wait_card(slack, ADMIN1, "confirm_provisioning", id).await;
    let channel = wait_card(slack, ADMIN_CHANNEL, "confirm_provisioning", id).await;
    let (status, _) = app
        .click(
            ADMIN1,
            "confirm_provisioning",
            &id.to_string(),
            &admin.channel,
            &admin.ts,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(app, id).await, "provisioned");
    (id, vec![receipt, admin, channel])
}

/// The last audit entry of request `id`.
async fn last_event(app: &TestApp, id: i64) -> Value {
    events(app, &id.to_string()).await.pop().expect("an event")
}

story! {
    /// A request waiting for approval is canceled by the close: the event names the operator
    /// and the reason, every card says so without buttons, the requester hears why, and a
    /// stale button is refused with who closed it.
    async fn an_operator_closes_a_pending_request(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "figma", figma(true, true)).await;
        let id = number_of(&file(app, "figma", asking_for("unlimited")).await.1);
        let receipt = wait_card(slack, REQUESTER, "cancel_request", id).await;
        let approval = wait_card(slack, APPROVER, "approve", id).await;

        let body = close_ok(app, id).await;
        assert_eq!(body["id"], id);
        assert_eq!(body["status"], "canceled");
        assert_eq!(body["closed_by"], OPERATOR);
        assert_eq!(body["close_reason"], REASON);
        assert_eq!(body["decided_by"], Value::Null, "nobody decided it");
        assert_eq!(app.request(&id.to_string()).await, body, "the request as GET shows it");

        let event = last_event(app, id).await;
        assert_eq!(event["kind"], "closed");
        assert_eq!(event["actor"], OPERATOR);
        assert_eq!(event["detail"], REASON);
        assert_eq!(event["before"]["status"], "pending_approval");
        assert_eq!(event["after"]["status"], "canceled");

        for card in [&receipt, &approval] {
            let text = wait_closed_card(slack, card, "Closed by an operator").await;
            assert!(text.contains(REASON) && text.contains(OPERATOR), "{text}");
        }
        wait_dm_containing(slack, REQUESTER, "🚫 Your request for *Figma* was closed by an operator (ops-alice)").await;
        assert_eq!(
            metric(app, "accessbot_requests_closed_total{from=\"pending_approval\"}").await,
            1.0
        );

        // The approver's stale card: refused privately, with who closed it.
        let (status, _) = app
            .click(APPROVER, "approve", &id.to_string(), &approval.channel, &approval.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        let said = ephemeral_for(slack, APPROVER, 1).await;
        assert_eq!(
            said["text"],
            "This request was already closed by an operator (ops-alice).",
            "{said}"
        );
        assert_eq!(status_of(app, id).await, "canceled");

        // Closing it again: a conflict that says so, and nothing more happens.
        let (status, body) = close(app, id, json!({"reason": "again", "operator": "ops-bob"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "This request was already closed by an operator (ops-alice).");
        let kinds = audit_kinds(app, id).await;
        assert_eq!(kinds.iter().filter(|k| *k == "closed").count(), 1, "{kinds:?}");
        assert_eq!(
            metric(app, "accessbot_requests_closed_total{from=\"pending_approval\"}").await,
            1.0
        );
    }
}

story! {
    /// A provisioned grant and one waiting for removal are closed as `expired`: their cards say
    /// the removal was not confirmed (never that it was removed), the removal card loses its
    /// Confirm Removal button, and the expiry sweep never touches them again.
    async fn closing_granted_access_leaves_its_removal_unconfirmed(env: StoryEnv) {
        let app = env.spawn_at_t0(&[("ACCESSBOT_SCHEDULER_INTERVAL", "50ms")]).await;
        let slack = app.slack.clone();
        put_app(&app, "figma", figma(false, true)).await;
        put_app(&app, "github", github_without_approvers()).await;

        // Figma, 10 s: provisioned, then its time runs out and it waits for removal.
        let (at_removal, mut cards) = provisioned(&app, "figma", "10s").await;
        // GitHub, 30 days: provisioned, closed long before its end.
        let (granted, granted_cards) = provisioned(&app, "github", "30d").await;
        cards.extend(granted_cards);
        // A witness: GitHub for 30 days too, left alone; its removal card shows the sweep ran.
        let (witness, _) = provisioned(&app, "github", "30d").await;

        app.advance(Duration::seconds(11));
        let removal = wait_card(&slack, ADMIN1, "confirm_removal", at_removal).await;
        let removal_in_channel = wait_card(&slack, ADMIN_CHANNEL, "confirm_removal", at_removal).await;
        assert_eq!(status_of(&app, at_removal).await, "pending_deprovisioning");
        cards.extend([removal.clone(), removal_in_channel]);

        let body = close_ok(&app, at_removal).await;
        assert_eq!(body["status"], "expired");
        assert_eq!(body["closed_by"], OPERATOR);
        let body = close_ok(&app, granted).await;
        assert_eq!(body["status"], "expired");
        assert_eq!(body["close_reason"], REASON);
        for (id, from) in [(at_removal, "pending_deprovisioning"), (granted, "provisioned")] {
            let event = last_event(&app, id).await;
            assert_eq!(event["kind"], "closed");
            assert_eq!(event["actor"], OPERATOR);
            assert_eq!(event["before"]["status"], from);
            assert_eq!(event["after"]["status"], "expired");
            assert_eq!(
                metric(&app, &format!("accessbot_requests_closed_total{{from=\"{from}\"}}")).await,
                1.0
            );
        }

        for card in &cards {
            let text = wait_closed_card(&slack, card, REMOVAL_UNCONFIRMED).await;
            assert!(text.contains(REASON), "{text}");
            assert!(!text.contains("removal confirmed by"), "never says it was removed: {text}");
            assert!(!text.contains("Confirm Removal"), "{text}");
        }
        for app_name in ["Figma", "GitHub"] {
            wait_dm_containing(
                &slack,
                REQUESTER,
                &format!("⚠️ Your access to *{app_name}* was closed by an operator (ops-alice)"),
            )
            .await;
        }

        // The stale removal card: refused, the request stays as the operator left it.
        app.click(ADMIN1, "confirm_removal", &at_removal.to_string(), &removal.channel, &removal.ts)
            .await;
        let said = ephemeral_for(&slack, ADMIN1, 1).await;
        assert!(said["text"].as_str().unwrap_or_default().contains("closed by an operator"), "{said}");

        // Past the grants' end: the sweep expires the witness and leaves the closed one alone.
        app.advance(Duration::days(31));
        wait_card(&slack, ADMIN1, "confirm_removal", witness).await;
        assert_eq!(status_of(&app, granted).await, "expired");
        let kinds = audit_kinds(&app, granted).await;
        assert_eq!(kinds.last().map(String::as_str), Some("closed"), "{kinds:?}");
        assert!(!kinds.contains(&"expired".to_string()), "{kinds:?}");
        assert_eq!(
            cards_with_button(&slack, ADMIN1, "confirm_removal", granted).len(),
            0,
            "no removal card for the closed grant"
        );
        assert_eq!(dms_containing(&slack, REQUESTER, "⌛ Your access to *GitHub* has ended"), 1, "the witness only");
        app.stop().await;
    }
}

story! {
    /// Denied, canceled and removed requests are final: a close answers 409 with who got there
    /// first, and changes nothing.
    async fn a_final_request_cannot_be_closed(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "figma", figma(true, false)).await;
        let canceled = number_of(&file(app, "figma", asking_for("unlimited")).await.1);
        let (status, _) = app.api_post(&format!("/api/v1/requests/{canceled}/cancel"), json!({})).await;
        assert_eq!(status, StatusCode::OK);

        let denied = number_of(&file(app, "figma", asking_for("unlimited")).await.1);
        let approval = wait_card(slack, APPROVER, "approve", denied).await;
        app.click(APPROVER, "deny", &denied.to_string(), &approval.channel, &approval.ts).await;
        assert_eq!(status_of(app, denied).await, "denied");

        for (id, said) in [
            (canceled, "This request was already canceled by the access API."),
            (denied, "This request was already denied by UAPPROVER."),
        ] {
            let before = app.request(&id.to_string()).await;
            let (status, body) = close(app, id, json!({"reason": REASON, "operator": OPERATOR})).await;
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["error"], said);
            assert_eq!(app.request(&id.to_string()).await, before, "nothing changed");
            assert!(!audit_kinds(app, id).await.contains(&"closed".to_string()));
        }
        assert_eq!(
            metric(app, "accessbot_requests_closed_total{from=\"pending_approval\"}").await,
            0.0
        );
    }
}

story! {
    /// A body without a usable reason or operator is a 400 naming the field; an unknown
    /// request is a 404; no token is a 401. None of them changes the request.
    async fn bad_closes_are_refused_and_change_nothing(app: &TestApp) {
        put_app(app, "figma", figma(true, false)).await;
        let id = number_of(&file(app, "figma", asking_for("unlimited")).await.1);
        let long = "x".repeat(501);
        let cases = [
            (json!({"operator": OPERATOR}), "reason is required: say why the request is closed"),
            (json!({"reason": REASON}), "operator is required: name who closes the request"),
            (json!({"reason": null, "operator": OPERATOR}), "reason is required: say why the request is closed"),
            (json!({"reason": "", "operator": OPERATOR}), "reason must not be empty: say why the request is closed"),
            (json!({"reason": REASON, "operator": "   "}), "operator must not be empty: name who closes the request"),
            (json!({"reason": 42, "operator": OPERATOR}), "reason must be a string"),
            (json!({"reason": REASON, "operator": ["ops"]}), "operator must be a string"),
            (json!({"reason": long, "operator": OPERATOR}), "reason must be at most 500 characters"),
            (json!({"reason": REASON, "operator": long}), "operator must be at most 500 characters"),
            (json!([REASON, OPERATOR]), "the body must be a JSON object with \"reason\" and \"operator\""),
        ];
        for (body, said) in cases {
            let (status, answer) = close(app, id, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert_eq!(answer["error"], said, "{body}");
        }
        let path = format!("/api/v1/requests/{id}/close");
        let (status, answer) = api_post_raw(app, &path, b"{\"reason\": \"gone\",".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["error"].as_str().unwrap().starts_with("invalid JSON body"), "{answer}");

        let fine = json!({"reason": REASON, "operator": OPERATOR});
        for unknown in ["999999", "0", "nope"] {
            let (status, answer) = app.api_post(&format!("/api/v1/requests/{unknown}/close"), fine.clone()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
        }
        let (status, _) = app.raw_post(&path, fine.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = app
            .request_with_token(Method::POST, &path, Some(fine), Some("wrong-token"))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        assert_eq!(status_of(app, id).await, "pending_approval");
        assert_eq!(audit_kinds(app, id).await, ["created"]);
        // The last character that fits: accepted.
        let (status, body) = close(app, id, json!({"reason": "é".repeat(500), "operator": OPERATOR})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "canceled");
    }
}
