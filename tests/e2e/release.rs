//! Release access (SPEC §8.1): the requester or the target ends a provisioned grant early,
//! from their DM or through the API; the admins get the removal card.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::story::*;

/// Someone who gets access another person asked for.
const TARGET: &str = "UTARGET01";

story! {
    /// The target, who did not ask, gets a receipt of their own with `Release access`; their
    /// click ends the grant, keeps its end date and sends the admins a removal card that
    /// says who released it.
    async fn the_target_releases_a_grant_from_their_own_receipt(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let (id, _) = file(app, "github", json!({"target_user": TARGET, "requester": REQUESTER, "access_length": "30d"})).await;
        let card = card_with_button(slack, ADMIN1, "confirm_provisioning").await;
        let (status, _) = app.click(ADMIN1, "confirm_provisioning", &id, &card.channel, &card.ts).await;
        assert_eq!(status, StatusCode::OK);
        let provisioned = app.request(&id).await;
        assert_eq!(provisioned["status"], "provisioned");

        let receipt = card_with_button(slack, TARGET, "release_access").await;
        assert_eq!(cards_in(slack, TARGET).len(), 1, "one receipt for the target");
        let labels: Vec<String> = receipt.buttons().into_iter().map(|b| b.0).collect();
        assert_eq!(labels, ["Release access"]);
        let requester_receipt = card_with_button(slack, REQUESTER, "release_access").await;

        let (status, _) = app.click(TARGET, "release_access", &id, &receipt.channel, &receipt.ts).await;
        assert_eq!(status, StatusCode::OK);
        let released = app.request(&id).await;
        assert_eq!(released["status"], "pending_deprovisioning");
        assert_eq!(released["expires_at"], provisioned["expires_at"], "the end date stays");
        let kinds = event_kinds(app, &id).await;
        assert_eq!(kinds.last().unwrap(), &("released".to_string(), TARGET.to_string()));

        for admin in [ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            let removal = card_with_button(slack, admin, "confirm_removal").await;
            assert!(
                removal.text().contains(&format!("Released early by <@{TARGET}>")),
                "{}",
                removal.text()
            );
        }
        for card in [&receipt, &requester_receipt] {
            let card = wait_no_actions(slack, card).await;
            assert!(card.text().contains("Released early"), "{}", card.text());
        }

        // A second click, from the stale payload, changes nothing and says why.
        let (status, _) = app.click(TARGET, "release_access", &id, &receipt.channel, &receipt.ts).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(event_kinds(app, &id).await.len(), kinds.len());

        let removal = card_with_button(slack, ADMIN2, "confirm_removal").await;
        let (status, _) = app.click(ADMIN2, "confirm_removal", &id, &removal.channel, &removal.ts).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.request(&id).await["status"], "expired");
    }
}

story! {
    /// The API releases any provisioned grant, limited or not; anything else answers 409.
    async fn the_api_releases_provisioned_grants_only(app: &TestApp) {
        put_app(app, "github", github_without_approvers()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let release = format!("/api/v1/requests/{id}/release");

        let (status, body) = app.api_post(&release, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("pending provisioning"),
            "{body}"
        );

        let card = card_with_button(&app.slack, ADMIN1, "confirm_provisioning").await;
        app.click(ADMIN1, "confirm_provisioning", &id, &card.channel, &card.ts).await;
        let (status, body) = app.api_post(&release, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "pending_deprovisioning");
        assert_eq!(body["expires_at"], serde_json::Value::Null, "unlimited stays unlimited");
        assert_eq!(
            event_kinds(app, &id).await.last().unwrap(),
            &("released".to_string(), "api".to_string())
        );

        let (status, body) = app.api_post(&release, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "This request was already released by the access API.");
        let (status, _) = app.api_post("/api/v1/requests/999/release", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
