//! The users directory (issue 18): deactivated Slack users get no cards, what Slack said
//! about a person is kept for `ACCESSBOT_USER_REFRESH`, a stage with nobody left to act is
//! flagged in its events, told to the admin channel and counted, and a removal nobody can
//! receive is never silent.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::fake_slack::{FakeSlack, Fault};
use crate::support::story::*;
use crate::support::test_app::TestApp;

/// The messages in `channel` that are not cards (notices), oldest first.
fn notices_in(slack: &FakeSlack, channel: &str) -> Vec<String> {
    slack
        .top_level_messages_in(channel)
        .into_iter()
        .filter(|message| !is_card(message))
        .map(|message| all_text(&message))
        .collect()
}

/// The `chat.postMessage` calls made to `channel` (a user id: their DM).
fn posts_to(slack: &FakeSlack, channel: &str) -> usize {
    slack
        .calls_to("chat.postMessage")
        .iter()
        .filter(|call| call.arg("channel") == Some(channel))
        .count()
}

/// The errors of the failed deliveries, in order.
async fn failed_errors(app: &TestApp) -> Vec<String> {
    failed_deliveries(app)
        .await
        .iter()
        .map(|failed| failed["error"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The `detail` of each `nobody_to_act` entry of request `id`'s audit trail.
async fn nobody_events(app: &TestApp, id: &str) -> Vec<String> {
    events(app, id)
        .await
        .iter()
        .filter(|event| event["kind"] == "nobody_to_act")
        .map(|event| event["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

const UNATTENDED_APPROVAL: &str = r#"accessbot_stages_unattended_total{stage="approval"}"#;
const UNATTENDED_PROVISIONING: &str = r#"accessbot_stages_unattended_total{stage="provisioning"}"#;
const UNATTENDED_REMOVAL: &str = r#"accessbot_stages_unattended_total{stage="removal"}"#;
const REMOVALS_UNDELIVERABLE: &str = "accessbot_removals_undeliverable_total";

story! {
    /// A deactivated admin is asked about (users.info) and gets nothing; the other admin and
    /// the admin channel get the card. The held-back card is a failed delivery that says
    /// why, and its retry asks Slack again: once the person is back, it is posted.
    async fn a_deactivated_admin_gets_no_card_and_the_other_admin_does(env: StoryEnv) {
        let app = &env.spawn_stepped().await;
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        slack.deactivate_user(ADMIN1);
        let (id, _) = file(app, "github", json!({})).await;
        app.settle().await;

        card_with_button(slack, ADMIN2, "confirm_provisioning").await;
        card_with_button(slack, ADMIN_CHANNEL, "confirm_provisioning").await;
        assert!(cards_in(slack, ADMIN1).is_empty());
        assert_eq!(posts_to(slack, ADMIN1), 0, "nothing is sent to a deactivated user");
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 1);

        let failed = failed_deliveries(app).await;
        assert_eq!(failed.len(), 1, "{failed:#?}");
        assert_eq!(failed[0]["method"], "chat.postMessage");
        assert_eq!(failed[0]["request_id"].to_string(), id);
        assert_eq!(failed[0]["error"], "UADMIN1 is deactivated in Slack");
        let kinds = event_kinds(app, &id).await;
        assert!(kinds.contains(&("delivery_failed".into(), "system".into())), "{kinds:?}");
        assert!(nobody_events(app, &id).await.is_empty(), "the others can act");
        assert_eq!(metric(app, UNATTENDED_PROVISIONING).await, 0.0);
        assert_eq!(app.request(&id).await["app_admins"], json!([ADMIN1, ADMIN2]), "lists unchanged");

        // Retried while still deactivated: Slack is asked again, and it fails again.
        let retry = format!("/api/v1/deliveries/{}/retry", failed[0]["id"]);
        let (status, body) = app.api_post(&retry, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.settle().await;
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 2);
        assert_eq!(failed_errors(app).await, ["UADMIN1 is deactivated in Slack"]);

        // Back in Slack: the retry posts the card, well within the refresh age.
        slack.reactivate_user(ADMIN1);
        let (status, body) = app.api_post(&retry, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.settle().await;
        card_with_button(slack, ADMIN1, "confirm_provisioning").await;
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 3);
        assert!(failed_deliveries(app).await.is_empty());
    }
}

story! {
    /// What users.info said is kept: a second card to the same person within
    /// `ACCESSBOT_USER_REFRESH` (24 h by default) asks Slack nothing, so a deactivation is
    /// seen once the row is that old, and not before.
    async fn the_directory_is_asked_once_per_refresh_age(env: StoryEnv) {
        let app = &env.spawn_stepped().await;
        let slack = &app.slack;
        put_app(app, "figma", figma(false, true)).await;
        let (first, _) = file(app, "figma", json!({})).await;
        app.settle().await;
        card_with_button(slack, ADMIN1, "confirm_provisioning").await;
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 1);
        assert_eq!(slack.user_info_calls(REQUESTER).len(), 1, "the receipt asks too");

        let (_, _) = file(app, "figma", json!({})).await;
        app.settle().await;
        assert_eq!(cards_in(slack, ADMIN1).len(), 2);
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 1, "kept, not asked again");
        assert!(slack.user_info_calls(ADMIN_CHANNEL).is_empty(), "channels are not people");

        // Deactivated in Slack an hour later: the kept row is still trusted.
        slack.deactivate_user(ADMIN1);
        app.step(app.now() + Duration::hours(1)).await;
        let (_, _) = file(app, "figma", json!({})).await;
        app.settle().await;
        assert_eq!(cards_in(slack, ADMIN1).len(), 3);
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 1);

        // A day after it was kept, Slack is asked again and the card is held back.
        app.step(app.now() + Duration::hours(23)).await;
        let (fourth, _) = file(app, "figma", json!({})).await;
        app.settle().await;
        assert_eq!(cards_in(slack, ADMIN1).len(), 3, "no card for a deactivated admin");
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 2);
        assert_eq!(failed_errors(app).await, ["UADMIN1 is deactivated in Slack"]);
        // The channel's card was posted: someone there can act, and is told nobody was
        // reached by DM.
        card_with_button(slack, ADMIN_CHANNEL, "confirm_provisioning").await;
        assert!(nobody_events(app, &fourth).await.is_empty());
        assert!(nobody_events(app, &first).await.is_empty());
    }
}

story! {
    /// A DM that Slack refuses because the person is gone (`user_disabled`) marks them
    /// deactivated in the directory: their next card is held back without asking Slack.
    async fn a_dm_refused_as_user_disabled_marks_the_person_deactivated(env: StoryEnv) {
        let app = &env.spawn_stepped().await;
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        slack.fail_next_in("chat.postMessage", ADMIN1, Fault::SlackError("user_disabled".into()));
        let (_, _) = file(app, "github", json!({})).await;
        app.settle().await;
        assert_eq!(failed_errors(app).await, ["chat.postMessage failed: user_disabled"]);
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 1);

        let (_, _) = file(app, "github", json!({})).await;
        app.settle().await;
        assert!(cards_in(slack, ADMIN1).is_empty());
        assert_eq!(slack.user_info_calls(ADMIN1).len(), 1, "the mark is kept, Slack not asked");
        assert_eq!(
            failed_errors(app).await,
            ["chat.postMessage failed: user_disabled", "UADMIN1 is deactivated in Slack"]
        );
        assert_eq!(cards_in(slack, ADMIN2).len(), 2);
    }
}

story! {
    /// Every approver deactivated: the approval stage has nobody left to act. Its audit
    /// trail says so once, the app's admin channel is told who could not be reached and
    /// what to do, and `/metrics` counts it.
    async fn with_every_approver_deactivated_the_admin_channel_and_the_events_say_so(env: StoryEnv) {
        let app = &env.spawn_stepped().await;
        let slack = &app.slack;
        let mut catalog = github();
        catalog["approvers"] = json!([APPROVER, "UAPPROVER2"]);
        put_app(app, "github", catalog).await;
        slack.deactivate_user(APPROVER);
        slack.deactivate_user("UAPPROVER2");
        let (id, _) = file(app, "github", json!({})).await;
        app.settle().await;

        let details = nobody_events(app, &id).await;
        assert_eq!(
            details,
            ["nobody left to act on the approval stage: UAPPROVER is deactivated in Slack; \
              UAPPROVER2 is deactivated in Slack"]
        );
        let told = notices_in(slack, ADMIN_CHANNEL);
        assert_eq!(told.len(), 1, "{told:#?}");
        for needle in [
            &format!("request #{id}"),
            "pending approval",
            "<@UAPPROVER> is deactivated in Slack",
            "<@UAPPROVER2> is deactivated in Slack",
            "PUT /api/v1/apps/github",
            &format!("POST /api/v1/requests/{id}/close"),
        ] {
            assert!(told[0].contains(needle), "no {needle:?} in {}", told[0]);
        }
        assert_eq!(metric(app, UNATTENDED_APPROVAL).await, 1.0);
        assert_eq!(metric(app, REMOVALS_UNDELIVERABLE).await, 0.0);
        assert_eq!(app.request(&id).await["status"], "pending_approval", "nothing decided");

        // A retry that fails again in the same stage is not told twice.
        let failed = failed_deliveries(app).await;
        assert_eq!(failed.len(), 2, "{failed:#?}");
        let retry = format!("/api/v1/deliveries/{}/retry", failed[0]["id"]);
        let (status, body) = app.api_post(&retry, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.settle().await;
        assert_eq!(nobody_events(app, &id).await.len(), 1);
        assert_eq!(notices_in(slack, ADMIN_CHANNEL).len(), 1);
        assert_eq!(metric(app, UNATTENDED_APPROVAL).await, 1.0);
    }
}

story! {
    /// Every admin deactivated, the admin channel working: the channel's card is the one
    /// left, and the channel is told that nobody could be reached by DM. Somebody can still
    /// act, so the stage is not flagged as unattended.
    async fn with_every_admin_deactivated_the_channel_is_told_it_is_the_last_one(env: StoryEnv) {
        let app = &env.spawn_stepped().await;
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        slack.deactivate_user(ADMIN1);
        slack.deactivate_user(ADMIN2);
        let (id, _) = file(app, "github", json!({})).await;
        app.settle().await;

        let card = card_with_button(slack, ADMIN_CHANNEL, "confirm_provisioning").await;
        let told = notices_in(slack, ADMIN_CHANNEL);
        assert_eq!(told.len(), 1, "{told:#?}");
        for needle in [
            "Nobody could be reached by DM",
            &format!("request #{id}"),
            "<@UADMIN1> is deactivated in Slack",
            "<@UADMIN2> is deactivated in Slack",
            "only one left",
        ] {
            assert!(told[0].contains(needle), "no {needle:?} in {}", told[0]);
        }
        assert!(nobody_events(app, &id).await.is_empty());
        let flagged = events(app, &id).await.into_iter().filter(|e| e["kind"] == "nobody_reached_by_dm").count();
        assert_eq!(flagged, 1, "the audit trail says the channel is the one left");
        assert_eq!(metric(app, UNATTENDED_PROVISIONING).await, 0.0);

        // Someone in the channel acts on its card.
        let (status, _) = app.click(ADMIN2, "confirm_provisioning", &id, &card.channel, &card.ts).await;
        assert_eq!(status, StatusCode::OK);
    }
}

story! {
    /// Every admin gone and no admin channel: the events flag the stage and `/metrics`
    /// counts it; an operator closes the request, and its cards and the requester say so.
    async fn with_every_admin_gone_the_events_say_so_and_an_operator_closes_it(env: StoryEnv) {
        let app = &env.spawn_stepped().await;
        let slack = &app.slack;
        let mut catalog = github_without_approvers();
        catalog["admin_channel"] = Value::Null;
        put_app(app, "github", catalog).await;
        slack.deactivate_user(ADMIN1);
        slack.deactivate_user(ADMIN2);
        let (id, _) = file(app, "github", json!({})).await;
        app.settle().await;

        let flagged = nobody_events(app, &id).await;
        assert_eq!(flagged.len(), 1, "{flagged:?}");
        assert!(flagged[0].contains("provisioning"), "{}", flagged[0]);
        assert_eq!(metric(app, UNATTENDED_PROVISIONING).await, 1.0);
        let receipt = card_with_button(slack, REQUESTER, "cancel_request").await;

        let (status, body) = app
            .api_post(
                &format!("/api/v1/requests/{id}/close"),
                json!({"reason": "Both GitHub admins left; re-filed under the new team", "operator": "it-oncall"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "canceled");
        app.settle().await;
        let receipt = wait_no_actions(slack, &receipt).await;
        assert!(receipt.text().contains("Closed by an operator"), "{}", receipt.text());
        let kinds: Vec<String> = event_kinds(app, &id)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != "delivery_failed")
            .collect();
        assert_eq!(kinds, ["created", "nobody_to_act", "closed"]);
    }
}

story! {
    /// A removal nobody can receive: both admins deactivated and the admin channel
    /// archived. Every removal card is a failed delivery with Slack's error (and the
    /// channel's notice too), the audit trail flags the stage, and `/metrics` counts the
    /// removal as undeliverable.
    async fn a_removal_card_nobody_can_receive_is_listed_and_counted(env: StoryEnv) {
        let app = &env.spawn_stepped().await;
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let (id, _) = file(app, "github", json!({})).await;
        app.settle().await;
        let card = card_with_button(slack, ADMIN1, "confirm_provisioning").await;
        let (status, _) = app.click(ADMIN1, "confirm_provisioning", &id, &card.channel, &card.ts).await;
        assert_eq!(status, StatusCode::OK);
        app.settle().await;
        assert_eq!(app.request(&id).await["status"], "provisioned");

        // A day later both admins have left and the channel is archived.
        slack.deactivate_user(ADMIN1);
        slack.deactivate_user(ADMIN2);
        slack.archive_channel(ADMIN_CHANNEL);
        app.step(app.now() + Duration::hours(25)).await;
        let (status, body) = app
            .api_post(&format!("/api/v1/requests/{id}/release"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.settle().await;

        for admin in [ADMIN1, ADMIN2] {
            let removal_cards = cards_in(slack, admin)
                .iter()
                .filter(|c| c.buttons().iter().any(|(_, action, _)| action == "confirm_removal"))
                .count();
            assert_eq!(removal_cards, 0, "{admin} got a removal card");
        }
        let mut errors = failed_errors(app).await;
        errors.sort();
        assert_eq!(
            errors,
            [
                "UADMIN1 is deactivated in Slack",
                "UADMIN2 is deactivated in Slack",
                "chat.postMessage failed: is_archived",
                "chat.postMessage failed: is_archived",
            ],
            "the three removal cards and the channel's notice"
        );
        let failed: Vec<Value> = failed_deliveries(app).await;
        let number: i64 = id.parse().expect("a numeric id");
        assert!(failed.iter().all(|f| f["request_id"] == number), "{failed:#?}");
        assert_eq!(
            nobody_events(app, &id).await,
            ["nobody left to act on the removal stage: UADMIN1 is deactivated in Slack; \
              UADMIN2 is deactivated in Slack; CADMINS: Slack answered is_archived"]
        );
        assert_eq!(metric(app, REMOVALS_UNDELIVERABLE).await, 1.0);
        assert_eq!(metric(app, UNATTENDED_REMOVAL).await, 1.0);
        assert_eq!(app.request(&id).await["status"], "pending_deprovisioning");
    }
}
