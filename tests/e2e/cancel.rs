//! Cancel: the requester withdraws a pending request from the receipt's `Cancel request`
//! button or through the API; every card then shows it, without buttons. Nobody else may,
//! and a decided request cannot be canceled.

use serde_json::json;

use crate::support::fake_slack::FakeSlack;
use crate::support::story::{
    asking_for, audit_kinds, figma, file, number_of, put_app, status_of, story, wait_card,
    wait_for_state, Card, ADMIN1, ADMIN_CHANNEL, APPROVER, OUTSIDER, REQUESTER,
};
use crate::support::test_app::TestApp;

/// Waits until every card in `cards` shows `text` and has no buttons left.
async fn wait_settled(slack: &FakeSlack, cards: &[&Card], text: &str) {
    for card in cards {
        wait_for_state(
            slack,
            &format!("{card:?} to show {text:?} without buttons"),
            |s| !card.has_buttons(s) && card.text_now(s).contains(text),
        )
        .await;
    }
}

/// Waits for an ephemeral message to `user` and returns its text.
async fn wait_ephemeral(slack: &FakeSlack, user: &str) -> String {
    wait_for_state(slack, &format!("an ephemeral for {user}"), |s| {
        !s.ephemerals_for(user).is_empty()
    })
    .await;
    slack.ephemerals_for(user)[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A Figma request with an approver: its receipt and approval card.
async fn pending(app: &TestApp) -> (i64, Card, Card) {
    put_app(app, "figma", figma(true, true)).await;
    let id = number_of(&file(app, "figma", asking_for("unlimited")).await.1);
    let receipt = wait_card(&app.slack, REQUESTER, "cancel_request", id).await;
    let approval = wait_card(&app.slack, APPROVER, "approve", id).await;
    (id, receipt, approval)
}

story! {
    async fn the_requester_cancels_from_the_receipt(env: StoryEnv) {
        let app = env.spawn().await;
        let (id, receipt, approval) = pending(&app).await;
        let (status, body) = app
            .click(
                REQUESTER,
                "cancel_request",
                &id.to_string(),
                &receipt.channel,
                &receipt.ts,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let request = app.request(&id.to_string()).await;
        assert_eq!(request["status"], "canceled");
        assert_eq!(request["decided_by"], REQUESTER);
        wait_settled(
            &app.slack,
            &[&receipt, &approval],
            "Canceled by the requester",
        )
        .await;
        let kinds = audit_kinds(&app, id).await;
        assert_eq!(
            kinds.last().map(String::as_str),
            Some("canceled"),
            "{kinds:?}"
        );
        // A second click (a stale copy of the receipt) changes nothing.
        app.click(
            REQUESTER,
            "cancel_request",
            &id.to_string(),
            &receipt.channel,
            &receipt.ts,
        )
        .await;
        assert_eq!(status_of(&app, id).await, "canceled");
        app.stop().await;
    }
}

story! {
    async fn nobody_else_may_cancel_the_requesters_request(env: StoryEnv) {
        let app = env.spawn().await;
        let (id, receipt, approval) = pending(&app).await;
        for someone in [OUTSIDER, APPROVER] {
            let (status, body) = app
                .click(
                    someone,
                    "cancel_request",
                    &id.to_string(),
                    &receipt.channel,
                    &receipt.ts,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let said = wait_ephemeral(&app.slack, someone).await;
            assert!(said.contains("requester"), "{someone} is told why: {said}");
            assert_eq!(status_of(&app, id).await, "pending_approval");
        }
        assert!(approval.has_buttons(&app.slack));
        assert!(receipt.has_buttons(&app.slack));
        assert!(!audit_kinds(&app, id)
            .await
            .contains(&"canceled".to_string()));
        app.stop().await;
    }
}

story! {
    async fn a_cancel_through_the_api_updates_every_card(env: StoryEnv) {
        let app = env.spawn().await;
        let (id, receipt, approval) = pending(&app).await;
        app.click(
            APPROVER,
            "approve",
            &id.to_string(),
            &approval.channel,
            &approval.ts,
        )
        .await;
        let admin_card = wait_card(&app.slack, ADMIN1, "confirm_provisioning", id).await;
        let channel_card = wait_card(&app.slack, ADMIN_CHANNEL, "confirm_provisioning", id).await;

        let (status, body) = app
            .api_post(&format!("/api/v1/requests/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "canceled");
        assert_eq!(body["id"], id);
        wait_settled(
            &app.slack,
            &[&receipt, &approval, &admin_card, &channel_card],
            "Canceled",
        )
        .await;

        let (status, body) = app
            .api_post(&format!("/api/v1/requests/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, 409, "{body}");
        assert!(body["error"].is_string(), "{body}");
        let (status, _) = app
            .api_post("/api/v1/requests/999999/cancel", json!({}))
            .await;
        assert_eq!(status, 404);
        app.stop().await;
    }
}

story! {
    async fn a_decided_request_cannot_be_canceled(env: StoryEnv) {
        let app = env.spawn().await;
        let (id, receipt, approval) = pending(&app).await;
        app.click(
            APPROVER,
            "deny",
            &id.to_string(),
            &approval.channel,
            &approval.ts,
        )
        .await;
        assert_eq!(status_of(&app, id).await, "denied");
        wait_settled(&app.slack, &[&receipt], "Denied by").await;

        let (status, body) = app
            .api_post(&format!("/api/v1/requests/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, 409, "{body}");
        // The button of a stale copy of the receipt: refused, privately.
        let (status, _) = app
            .click(
                REQUESTER,
                "cancel_request",
                &id.to_string(),
                &receipt.channel,
                &receipt.ts,
            )
            .await;
        assert_eq!(status, 200);
        let said = wait_ephemeral(&app.slack, REQUESTER).await;
        assert!(!said.is_empty());
        let ephemeral = &app.slack.ephemerals_for(REQUESTER)[0];
        assert_eq!(
            ephemeral["channel"],
            receipt.channel.as_str(),
            "{ephemeral}"
        );
        assert_eq!(status_of(&app, id).await, "denied");
        app.stop().await;
    }
}
