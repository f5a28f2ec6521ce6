//! Authority follows the organisation (SPEC §8.1): when `PUT /api/v1/apps/{slug}` changes an
//! app's approvers, admins or admin channel, its open requests take the new lists in the
//! same transaction. New assignees get cards; those removed see on their cards that they no
//! longer need to act, and can no longer decide.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::story::*;
use crate::support::test_app::TestApp;

/// An approver who joins GitHub's approvers.
const NEW_APPROVER: &str = "UAPPROVER2";
/// An admin who joins GitHub's admins.
const NEW_ADMIN: &str = "UADMIN3";

/// GitHub with `approvers` and `admins` instead of its own.
fn github_with(approvers: &[&str], admins: &[&str]) -> Value {
    let mut app = github();
    app["approvers"] = json!(approvers);
    app["admins"] = json!(admins);
    app
}

/// The `detail` of the last `assignees_changed` entry of request `id`.
async fn reassignment(app: &TestApp, id: &str) -> Value {
    events(app, id)
        .await
        .into_iter()
        .rfind(|e| e["kind"] == "assignees_changed")
        .unwrap_or_else(|| panic!("request {id} has no assignees_changed entry"))
}

story! {
    /// An approver removed while a request waits for them can no longer approve it: their
    /// card loses its buttons and says why, a click from the old card is refused, and the
    /// approver who replaced them gets the card and approves.
    async fn an_approver_removed_mid_flight_cannot_approve_and_their_card_says_so(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let old_card = card_with_button(slack, APPROVER, "approve").await;

        put_app(app, "github", github_with(&[NEW_APPROVER], &[ADMIN1, ADMIN2])).await;

        let request = app.request(&id).await;
        assert_eq!(request["approvers"], json!([NEW_APPROVER]));
        assert_eq!(request["status"], "pending_approval");
        let entry = reassignment(app, &id).await;
        assert_eq!(entry["actor"], "api");
        assert_eq!(
            entry["detail"],
            format!("approvers: added {NEW_APPROVER}, removed {APPROVER}")
        );
        let updated = wait_no_actions(slack, &old_card).await;
        assert!(
            updated.text().contains("You are no longer one of GitHub's approvers"),
            "{}",
            updated.text()
        );

        let (status, _) = app.click(APPROVER, "approve", &id, &old_card.channel, &old_card.ts).await;
        assert_eq!(status, StatusCode::OK);
        let refusal = ephemeral_for(slack, APPROVER, 1).await;
        assert_eq!(refusal["text"], "Only the approvers can approve this request.");
        assert_eq!(app.request(&id).await["status"], "pending_approval");

        let new_card = card_with_button(slack, NEW_APPROVER, "approve").await;
        let (status, _) = app.click(NEW_APPROVER, "approve", &id, &new_card.channel, &new_card.ts).await;
        assert_eq!(status, StatusCode::OK);
        let approved = app.request(&id).await;
        assert_eq!(approved["status"], "pending_provisioning");
        for admin in [ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            card_with_button(slack, admin, "confirm_provisioning").await;
        }
    }
}

story! {
    /// An admin added while requests wait for provisioning gets a card for each and can
    /// confirm; the admin who left sees theirs say so and is refused. Putting the same app
    /// again changes nothing more.
    async fn a_new_admin_gets_the_open_cards_and_can_confirm(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let (first, _) = file(app, "github", json!({})).await;
        let (second, _) = file(app, "github", json!({"permission": "Admin"})).await;
        let (provisioned, _) = file(app, "github", json!({"comment": "already done"})).await;
        let done = wait_card(slack, ADMIN1, "confirm_provisioning", provisioned.parse().unwrap()).await;
        app.click(ADMIN1, "confirm_provisioning", &provisioned, &done.channel, &done.ts).await;
        assert_eq!(app.request(&provisioned).await["status"], "provisioned");
        let mut leaving = Vec::new();
        for id in [&first, &second] {
            leaving.push(wait_card(slack, ADMIN2, "confirm_provisioning", id.parse().unwrap()).await);
        }

        let new_lists = github_with(&[], &[ADMIN1, NEW_ADMIN]);
        put_app(app, "github", new_lists.clone()).await;

        for id in [&first, &second] {
            let card = wait_card(slack, NEW_ADMIN, "confirm_provisioning", id.parse().unwrap()).await;
            assert!(card.text().contains("Please confirm provisioning"), "{}", card.text());
            assert_eq!(app.request(id).await["app_admins"], json!([ADMIN1, NEW_ADMIN]));
        }
        // The provisioned grant takes the new admins for its removal, with no card now.
        assert_eq!(app.request(&provisioned).await["app_admins"], json!([ADMIN1, NEW_ADMIN]));
        assert_eq!(cards_in(slack, NEW_ADMIN).len(), 2, "a card per waiting request");
        for card in &leaving {
            let card = wait_no_actions(slack, card).await;
            assert!(
                card.text().contains("You are no longer one of GitHub's admins"),
                "{}",
                card.text()
            );
        }
        let kept = card_with_button(slack, ADMIN1, "confirm_provisioning").await;
        assert!(kept.text().contains("Please confirm provisioning"), "{}", kept.text());

        let (status, _) = app
            .click(ADMIN2, "confirm_provisioning", &first, &leaving[0].channel, &leaving[0].ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        let refusal = ephemeral_for(slack, ADMIN2, 1).await;
        assert_eq!(
            refusal["text"],
            "Only the app admins can confirm provisioning of this request."
        );
        let card = wait_card(slack, NEW_ADMIN, "confirm_provisioning", first.parse().unwrap()).await;
        app.click(NEW_ADMIN, "confirm_provisioning", &first, &card.channel, &card.ts).await;
        let confirmed = app.request(&first).await;
        assert_eq!(confirmed["status"], "provisioned");
        assert_eq!(confirmed["decided_by"], NEW_ADMIN);

        // The same lists again: no entry, no card.
        let entries = events(app, &second).await.len();
        put_app(app, "github", new_lists).await;
        wait_until_idle(app).await;
        assert_eq!(events(app, &second).await.len(), entries);
        assert_eq!(cards_in(slack, NEW_ADMIN).len(), 2);
    }
}

story! {
    /// Someone removed and put back keeps their one card, which shows its buttons again; a
    /// new admin channel gets the card and the old one's says it is no longer needed there.
    async fn an_admin_put_back_keeps_one_card_and_a_new_channel_gets_one(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let number: i64 = id.parse().unwrap();
        let card = wait_card(slack, ADMIN2, "confirm_provisioning", number).await;
        let channel_card = wait_card(slack, ADMIN_CHANNEL, "confirm_provisioning", number).await;

        let mut moved = github_with(&[], &[ADMIN1]);
        moved["admin_channel"] = json!("CNEWADMINS");
        put_app(app, "github", moved).await;
        wait_no_actions(slack, &card).await;
        let old_channel = wait_no_actions(slack, &channel_card).await;
        assert!(
            old_channel.text().contains("This channel is no longer GitHub's admin channel"),
            "{}",
            old_channel.text()
        );
        wait_card(slack, "CNEWADMINS", "confirm_provisioning", number).await;

        put_app(app, "github", github_with(&[], &[ADMIN1, ADMIN2])).await;
        wait_card_until(slack, &card, "show its buttons again", |c| c.has_actions()).await;
        wait_until_idle(app).await;
        assert_eq!(cards_in(slack, ADMIN2).len(), 1, "no second card");
        let kinds: Vec<String> = event_kinds(app, &id).await.into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["created", "assignees_changed", "assignees_changed"]);
    }
}

story! {
    /// An app whose approvers are all taken away leaves its requests waiting for approval
    /// (dropping the step is no reason to skip it for what was filed under it): the admin
    /// channel hears that nobody is left to approve, and an operator can close them.
    async fn approvals_left_without_approvers_wait_and_the_admin_channel_is_told(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let card = card_with_button(slack, APPROVER, "approve").await;

        put_app(app, "github", github_with(&[], &[ADMIN1, ADMIN2])).await;
        assert_eq!(app.request(&id).await["status"], "pending_approval");
        let told = |s: &crate::support::fake_slack::FakeSlack| {
            s.top_level_messages_in(ADMIN_CHANNEL)
                .iter()
                .map(all_text)
                .find(|text| text.contains("Nobody is left to act"))
        };
        wait_for_state(slack, "the admin channel to be told", |s| told(s).is_some()).await;
        let text = told(slack).unwrap_or_default();
        assert!(text.contains(&format!("<@{APPROVER}> was taken off the app's list")), "{text}");
        wait_no_actions(slack, &card).await;

        let (status, body) = app
            .api_post(
                &format!("/api/v1/requests/{id}/close"),
                json!({"reason": "GitHub no longer needs approval; please file again", "operator": "it-oncall"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "canceled");
    }
}
