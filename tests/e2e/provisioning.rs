//! The lifecycle as people live it in Slack: approve, confirm provisioning, deny with
//! feedback, edit, and the clicks of people who may not act.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::signer::{multi_selected_value, selected_value, text_value};
use crate::support::story::*;

fn time(request: &Value, field: &str) -> DateTime<Utc> {
    request[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not set: {request}"))
        .parse()
        .unwrap_or_else(|e| panic!("{field} is not RFC 3339: {e}"))
}

fn assert_buttons(card: &Card, expected: &[(&str, &str, &str)]) {
    let got = card.buttons();
    let got: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(l, a, s)| (l.as_str(), a.as_str(), s.as_str()))
        .collect();
    assert_eq!(got, expected, "buttons of {}", card.message);
}

const PROVISIONING_BUTTONS: [(&str, &str, &str); 3] = [
    ("Confirm Provisioning", "confirm_provisioning", "primary"),
    ("Deny", "deny", "danger"),
    ("Edit", "edit", ""),
];

story! {
    async fn approve_then_confirm_provisioning(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, request) = file(app, "github", json!({"groups": ["eng"]})).await;
        app.settle().await;
        assert_eq!(request["status"], "pending_approval");
        assert_eq!(request["requester"], REQUESTER);

        let receipt = card_of(slack, REQUESTER).await;
        assert!(
            receipt.text().to_lowercase().contains("pending approval"),
            "receipt: {}",
            receipt.text()
        );
        let approval = card_of(slack, APPROVER).await;
        assert_buttons(
            &approval,
            &[("Approve", "approve", "primary"), ("Deny", "deny", "danger"), ("Edit", "edit", "")],
        );
        for field in ["GitHub", "Member", "eng", "For the release", REQUESTER] {
            assert!(approval.text().contains(field), "{field} missing: {}", approval.text());
        }

        let (status, _) = app
            .click(APPROVER, "approve", &id, &approval.channel, &approval.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        app.settle().await;
        let request = app.request(&id).await;
        assert_eq!(request["status"], "pending_provisioning");
        assert_eq!(request["approved_by"], APPROVER);

        let mut provisioning = Vec::new();
        for recipient in [ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            let card = card_with_button(slack, recipient, "confirm_provisioning").await;
            assert_buttons(&card, &PROVISIONING_BUTTONS);
            let deny = button(&card.message, "deny").expect("Deny button");
            assert!(deny["confirm"].is_object(), "Deny asks for confirmation: {deny}");
            assert!(card.text().contains("Approved by"), "{}", card.text());
            provisioning.push(card);
        }
        let approval = wait_no_actions(slack, &approval).await;
        assert!(approval.text().contains("Approved by"), "{}", approval.text());

        let by_admin2 = &provisioning[1];
        let (status, _) = app
            .click(ADMIN2, "confirm_provisioning", &id, &by_admin2.channel, &by_admin2.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        app.settle().await;
        let request = app.request(&id).await;
        assert_eq!(request["status"], "provisioned");
        assert_eq!(request["decided_by"], ADMIN2);
        assert!(request["provisioned_at"].is_string(), "{request}");
        assert!(request["expires_at"].is_null(), "unlimited access: {request}");

        let provisioned_by = format!("Provisioned by <@{ADMIN2}>");
        for card in provisioning.iter().chain([&approval]) {
            let card = wait_card_until(slack, card, "show the outcome", |c| {
                c.text().contains(&provisioned_by)
            })
            .await;
            assert!(!card.has_actions(), "{}", card.message);
        }
        let receipt = wait_card_until(slack, &receipt, "say ready to go", |c| {
            c.text().contains("Ready to go")
        })
        .await;
        let labels: Vec<String> = receipt.buttons().into_iter().map(|b| b.0).collect();
        assert_eq!(labels, ["Release access"], "{}", receipt.message);
        dm_containing(slack, REQUESTER, "ready to go").await;

        assert_eq!(
            event_kinds(app, &id).await,
            [
                ("created".to_string(), REQUESTER.to_string()),
                ("approved".to_string(), APPROVER.to_string()),
                ("provisioned".to_string(), ADMIN2.to_string()),
            ]
        );
        for recipient in [REQUESTER, APPROVER, ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            assert_eq!(cards_posted_to(slack, recipient), 1, "cards to {recipient}");
        }
        assert!(failed_deliveries(app).await.is_empty());
        stepped.stop().await;
    }
}

story! {
    async fn deny_then_send_feedback(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let (id, request) = file(app, "github", json!({})).await;
        app.settle().await;
        assert_eq!(request["status"], "pending_provisioning");
        let receipt = card_of(slack, REQUESTER).await;
        let mine = card_with_button(slack, ADMIN1, "deny").await;
        let theirs = card_with_button(slack, ADMIN2, "deny").await;
        let channel = card_with_button(slack, ADMIN_CHANNEL, "deny").await;

        let (status, _) = app.click(ADMIN1, "deny", &id, &mine.channel, &mine.ts).await;
        assert_eq!(status, StatusCode::OK);
        app.settle().await;
        let request = app.request(&id).await;
        assert_eq!(request["status"], "denied");
        assert_eq!(request["decided_by"], ADMIN1);
        dm_containing(slack, REQUESTER, "denied").await;

        let mine = wait_card_until(slack, &mine, "offer feedback", |c| {
            c.buttons().iter().any(|(_, a, _)| a == "send_feedback")
        })
        .await;
        assert_eq!(labels(&mine.message), ["Send feedback"]);
        for card in [&theirs, &channel, &receipt] {
            let card = wait_no_actions(slack, card).await;
            assert!(card.text().contains("Denied by"), "{}", card.text());
        }

        let (status, _) = app.click(ADMIN1, "send_feedback", &id, &mine.channel, &mine.ts).await;
        assert_eq!(status, StatusCode::OK);
        let modal = opened_modal(slack, 1).await;
        assert_eq!(modal["callback_id"], "deny_feedback");
        assert_eq!(modal["private_metadata"], id.as_str());
        let feedback = "Use the <read-only> role & ask <!here>";
        let (status, body) = app
            .submit_view(
                ADMIN1,
                modal["id"].as_str().unwrap(),
                json!({"feedback": {"feedback": text_value(Some(feedback))}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.get("response_action").is_none(), "accepted: {body}");
        app.settle().await;

        let dm = dm_containing(slack, REQUESTER, "Use the &lt;read-only&gt; role &amp; ask &lt;!here&gt;").await;
        assert!(!all_text(&dm).contains("<!here>"), "{dm}");
        let request = app.request(&id).await;
        assert_eq!(request["denial_feedback"], feedback);
        let kinds = event_kinds(app, &id).await;
        assert!(
            kinds.contains(&("feedback_sent".to_string(), ADMIN1.to_string())),
            "{kinds:?}"
        );
        wait_no_actions(slack, &mine).await;

        // Once is enough: the button is gone, and a stale click or a second submission is refused.
        // (The denier's own repeat reads as a double click: the app may stay silent.)
        let (status, _) = app.click(ADMIN1, "send_feedback", &id, &mine.channel, &mine.ts).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app
            .submit_view(
                ADMIN1,
                modal["id"].as_str().unwrap(),
                json!({"feedback": {"feedback": text_value(Some("again"))}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response_action"], "errors", "{body}");
        assert!(body["errors"]["feedback"].is_string(), "{body}");
        assert_eq!(app.request(&id).await["denial_feedback"], feedback);
        let sent = events(app, &id)
            .await
            .iter()
            .filter(|e| e["kind"] == "feedback_sent")
            .count();
        assert_eq!(sent, 1);
        app.settle().await;
        assert_eq!(slack.calls_to("views.open").len(), 1, "no second modal");
        for refusal in slack.ephemerals_for(ADMIN1) {
            assert!(all_text(&refusal).contains("already"), "{refusal}");
        }
        stepped.stop().await;
    }
}

story! {
    async fn edit_then_confirm(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let (id, _) = file(app, "github", json!({"groups": ["eng"]})).await;
        let receipt = card_of(slack, REQUESTER).await;
        let mine = card_with_button(slack, ADMIN1, "edit").await;
        let theirs = card_with_button(slack, ADMIN2, "edit").await;
        let channel = card_with_button(slack, ADMIN_CHANNEL, "edit").await;

        let (status, _) = app.click(ADMIN1, "edit", &id, &mine.channel, &mine.ts).await;
        assert_eq!(status, StatusCode::OK);
        let modal = opened_modal(slack, 1).await;
        let view_id = modal["id"].as_str().unwrap().to_string();
        assert_eq!(modal["callback_id"], "edit_request");
        assert_eq!(modal["private_metadata"], id.as_str());
        let input = |block: &str| {
            modal["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["block_id"] == block)
                .unwrap_or_else(|| panic!("no {block} input in {modal}"))["element"]
                .clone()
        };
        assert_eq!(input("permission")["initial_option"]["value"], "Member");
        assert_eq!(input("groups")["initial_options"][0]["value"], "eng");
        assert_eq!(input("access_length")["initial_value"], "unlimited");

        let before = app.request(&id).await;
        let submit = |permission: &str, groups: &[&str], length: &str| {
            let groups: Vec<(&str, &str)> = groups.iter().map(|g| (*g, *g)).collect();
            json!({
                "permission": {"permission": selected_value(permission, permission)},
                "groups": {"groups": multi_selected_value(&groups)},
                "access_length": {"access_length": text_value(Some(length))},
            })
        };
        let (status, body) = app
            .submit_view(ADMIN1, &view_id, submit("Admin", &["ops"], "forever"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response_action"], "errors", "{body}");
        assert!(body["errors"]["access_length"].is_string(), "{body}");
        let (status, body) = app
            .submit_view(ADMIN1, &view_id, submit("Owner", &["ops"], "7d"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response_action"], "errors", "{body}");
        assert!(body["errors"]["permission"].is_string(), "{body}");
        assert_eq!(app.request(&id).await, before, "a refused edit changes nothing");
        assert_eq!(event_kinds(app, &id).await.len(), 1);

        let (status, body) = app
            .submit_view(ADMIN1, &view_id, submit("Admin", &["ops", "design"], "7d"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.get("response_action").is_none(), "accepted: {body}");
        let request = app.request(&id).await;
        assert_eq!(request["permission"], "Admin");
        assert_eq!(request["groups"], json!(["ops", "design"]));
        assert_eq!(request["access_length"], "7d");
        assert_eq!(request["status"], "pending_provisioning");

        for card in [&mine, &theirs, &channel, &receipt] {
            let card = wait_card_until(slack, card, "show the edit", |c| {
                c.text().contains("*Groups*\nops, design")
            })
            .await;
            assert!(card.text().contains("Admin"), "{}", card.text());
            assert!(card.text().contains("7 days"), "{}", card.text());
        }
        let told = dm_containing(slack, REQUESTER, "edited your request").await;
        let told = all_text(&told);
        assert!(told.contains("Permission: Member → Admin"), "{told}");
        assert!(told.contains("Groups: eng → ops, design"), "{told}");
        assert!(told.contains("Access Length: Unlimited → 7 days"), "{told}");
        let events = events(app, &id).await;
        let edited = events.iter().find(|e| e["kind"] == "edited").expect("edited event");
        assert_eq!(edited["actor"], ADMIN1);
        assert_eq!(edited["before"]["permission"], "Member");
        assert_eq!(edited["after"]["permission"], "Admin");

        let theirs = theirs.reload(slack);
        let (status, _) = app
            .click(ADMIN2, "confirm_provisioning", &id, &theirs.channel, &theirs.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        let request = app.request(&id).await;
        assert_eq!(request["status"], "provisioned");
        assert_eq!(
            time(&request, "expires_at") - time(&request, "provisioned_at"),
            chrono::Duration::days(7)
        );
        for card in [&mine, &theirs, &channel] {
            wait_no_actions(slack, card).await;
        }
        wait_card_until(slack, &receipt, "offer only Release access", |c| {
            c.buttons().iter().map(|b| b.1.as_str()).eq(["release_access"])
        })
        .await;
    }
}

story! {
    async fn outsider_click_is_refused_with_an_ephemeral(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let approval = card_with_button(slack, APPROVER, "approve").await;

        // An outsider cannot approve.
        let (status, _) = app
            .click(OUTSIDER, "approve", &id, &approval.channel, &approval.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        let refusal = ephemeral_for(slack, OUTSIDER, 1).await;
        assert!(all_text(&refusal).contains("Only the approvers"), "{refusal}");
        assert_eq!(app.request(&id).await["status"], "pending_approval");

        let (status, _) = app
            .click(APPROVER, "approve", &id, &approval.channel, &approval.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        let in_channel = card_with_button(slack, ADMIN_CHANNEL, "confirm_provisioning").await;
        let before = app.request(&id).await;
        let events_before = events(app, &id).await;

        // Anyone in the admin channel sees the card, but only the app admins may confirm.
        let (status, _) = app
            .click(OUTSIDER, "confirm_provisioning", &id, &in_channel.channel, &in_channel.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        let refusal = ephemeral_for(slack, OUTSIDER, 2).await;
        assert_eq!(refusal["channel"], ADMIN_CHANNEL, "shown where they clicked");
        assert!(all_text(&refusal).contains("Only the app admins"), "{refusal}");

        // The approver's part is done: they cannot confirm provisioning either.
        let (status, _) = app
            .click(APPROVER, "confirm_provisioning", &id, &in_channel.channel, &in_channel.ts)
            .await;
        assert_eq!(status, StatusCode::OK);
        let refusal = ephemeral_for(slack, APPROVER, 1).await;
        assert!(all_text(&refusal).contains("Only the app admins"), "{refusal}");

        assert_eq!(app.request(&id).await, before);
        assert_eq!(events(app, &id).await, events_before, "no events added");
        let in_channel = in_channel.reload(slack);
        assert!(in_channel.has_actions(), "the card is still live");
        assert!(slack.ephemerals_for(ADMIN1).is_empty());
    }
}

story! {
    async fn requester_cannot_approve_own_request(app: &TestApp) {
        let slack = &app.slack;
        let mut catalog = github();
        catalog["approvers"] = json!([REQUESTER, APPROVER]);
        put_app(app, "github", catalog).await;
        let (id, _) = file(app, "github", json!({})).await;
        // Their approval card offers only Deny; a click on Approve from a forged or stale
        // payload is still refused.
        let own = card_with_button(slack, REQUESTER, "deny").await;
        let labels: Vec<String> = own.buttons().into_iter().map(|b| b.0).collect();
        assert_eq!(labels, ["Deny"]);

        let (status, _) = app.click(REQUESTER, "approve", &id, &own.channel, &own.ts).await;
        assert_eq!(status, StatusCode::OK);
        let refusal = ephemeral_for(slack, REQUESTER, 1).await;
        assert!(
            all_text(&refusal).contains("You can't approve your own request."),
            "{refusal}"
        );
        let request = app.request(&id).await;
        assert_eq!(request["status"], "pending_approval");
        assert!(request["approved_by"].is_null());
        assert_eq!(event_kinds(app, &id).await.len(), 1);
        assert!(own.reload(slack).has_actions());
    }
}
