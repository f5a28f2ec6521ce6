//! Faults Slack and the network cause: clicks that race across replicas, requests Slack
//! sends twice, answers lost after Slack did the work, and bodies tampered with on the way.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::db::Backend;
use crate::support::fake_slack::{Call, FakeSlack, Fault};
use crate::support::process::Peek;
use crate::support::signer::{self, ButtonClick, FORM};
use crate::support::story::*;
use crate::support::test_app::TestApp;

/// The admins of [`crowded`], `UADM00`…
fn crowd(size: usize) -> Vec<String> {
    (0..size).map(|i| format!("UADM{i:02}")).collect()
}

/// An app without approvers and with `size` admins.
fn crowded(size: usize) -> Value {
    json!({
        "name": "GitHub",
        "admins": crowd(size),
        "approvers": [],
        "permissions": ["Member", "Admin"],
        "groups": ["eng"],
        "admin_channel": null,
    })
}

/// The top-level messages in `user`'s DM that are not cards (notices such as "ready to go").
pub(crate) fn notices_to(slack: &FakeSlack, user: &str) -> Vec<Value> {
    slack
        .top_level_messages_in(user)
        .into_iter()
        .filter(|message| !is_card(message))
        .collect()
}

/// Whether a card shows a decision: no button is left but the denier's `Send feedback`.
pub(crate) fn is_decided(card: &Card) -> bool {
    card.buttons()
        .iter()
        .all(|(_, action, _)| action == "send_feedback")
}

/// The replies the bot posted in the thread of `card`.
fn bot_replies(slack: &FakeSlack, card: &Card) -> Vec<Value> {
    slack
        .thread_replies(&card.channel, &card.ts)
        .into_iter()
        .filter(|reply| reply.get("bot_id").is_some())
        .collect()
}

story! {
    async fn conflicting_clicks_end_with_one_decision(env: StoryEnv) {
        let slack = &env.slack;
        let one = env.spawn().await;
        // On PostgreSQL the clicks reach two replicas; SQLite serves one process.
        let two = match env.backend {
            Backend::Postgres => Some(env.spawn().await),
            Backend::Sqlite => None,
        };
        let apps: Vec<&TestApp> = [Some(&one), two.as_ref()].into_iter().flatten().collect();
        let admins = crowd(40);
        put_app(&one, "github", crowded(admins.len())).await;
        let (id, _) = file(&one, "github", json!({})).await;
        let mut cards = Vec::new();
        for admin in &admins {
            cards.push(card_with_button(slack, admin, "confirm_provisioning").await);
        }

        let action_of = |i: usize| if i.is_multiple_of(2) { "confirm_provisioning" } else { "deny" };
        let clicks = admins.iter().zip(&cards).enumerate().map(|(i, (admin, card))| {
            apps[i % apps.len()].click(admin, action_of(i), &id, &card.channel, &card.ts)
        });
        for (status, body) in join_all(clicks).await {
            assert_eq!(status, StatusCode::OK, "{body}");
        }

        let request = one.request(&id).await;
        let winner = request["decided_by"].as_str().expect("decided").to_string();
        let position = admins.iter().position(|a| *a == winner).expect("an admin won");
        let outcome = match action_of(position) {
            "deny" => "denied",
            _ => "provisioned",
        };
        assert_eq!(request["status"], outcome, "{request}");
        let decisions: Vec<_> = event_kinds(&one, &id)
            .await
            .into_iter()
            .filter(|(kind, _)| kind == "provisioned" || kind == "denied")
            .collect();
        assert_eq!(decisions, [(outcome.to_string(), winner.clone())]);

        let expected = format!("already {outcome} by <@{winner}>");
        for loser in admins.iter().filter(|a| **a != winner) {
            let refusal = ephemeral_for(slack, loser, 1).await;
            assert!(all_text(&refusal).contains(&expected), "{loser} was told {refusal}");
        }
        wait_until_idle(&one).await;
        for admin in &admins {
            let told = slack.ephemerals_for(admin).len();
            assert_eq!(told, usize::from(*admin != winner), "ephemerals for {admin}");
            assert_eq!(cards_posted_to(slack, admin), 1, "cards to {admin}");
        }
        let notices = notices_to(slack, REQUESTER);
        assert_eq!(notices.len(), 1, "one notice to the requester: {notices:#?}");
        for card in &cards {
            let card = card.reload(slack);
            assert!(is_decided(&card), "every card shows the decision: {}", card.message);
        }
        one.stop().await;
        if let Some(two) = two {
            two.stop().await;
        }
    }
}

story! {
    async fn the_same_click_delivered_twice_is_processed_once(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let approval = card_with_button(slack, APPROVER, "approve").await;
        let button = ButtonClick::find_in(&approval.message, "approve").expect("Approve");
        let payload = signer::block_actions_in_message(
            APPROVER,
            &approval.channel,
            &approval.ts,
            Some(&approval.message),
            &button,
        );
        let body = signer::interactivity_form(&payload);
        let timestamp = app.slack_timestamp();
        for attempt in ["first", "replay"] {
            let (status, answer) = app
                .post_signed_raw("/slack/interactivity", FORM, &body, Some(timestamp), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{attempt}: {answer}");
        }
        let approvals = event_kinds(app, &id)
            .await
            .into_iter()
            .filter(|(kind, _)| kind == "approved")
            .count();
        assert_eq!(approvals, 1);
        assert_eq!(app.request(&id).await["status"], "pending_provisioning");
        for admin in [ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            card_of(slack, admin).await;
        }
        // Every card is posted before the discussion starts (see the next story for why).
        wait_until_idle(app).await;

        // A thread reply whose event Slack retries (the first answer was "too slow").
        let receipt = card_of(slack, REQUESTER).await;
        let text = "Any news on this?";
        let ts = slack.add_user_message(&receipt.channel, REQUESTER, text, Some(&receipt.ts));
        let event =
            signer::user_message_event(&receipt.channel, "im", REQUESTER, text, &ts, Some(&receipt.ts));
        let envelope = signer::event_callback(event);
        let (status, _) = app.slack_event(&envelope).await;
        assert_eq!(status, StatusCode::OK);
        for retry in 1..=2 {
            let (status, answer) = app.slack_event_retry(&envelope, retry).await;
            assert_eq!(status, StatusCode::OK, "retry {retry}: {answer}");
        }
        wait_until_idle(app).await;
        assert!(slack.ephemerals_for(APPROVER).is_empty(), "the replay was silent");
        for recipient in [APPROVER, ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            assert_eq!(cards_posted_to(slack, recipient), 1, "cards to {recipient}");
            let card = card_of(slack, recipient).await;
            let relayed = bot_replies(slack, &card);
            assert_eq!(relayed.len(), 1, "relays to {recipient}: {relayed:#?}");
            assert!(all_text(&relayed[0]).contains(text), "{}", relayed[0]);
        }
        assert!(bot_replies(slack, &receipt).is_empty(), "nothing echoed to the writer");
        let (status, thread) = app.api_get(&format!("/api/v1/requests/{id}/thread")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(thread.as_array().map(Vec::len), Some(1), "{thread}");
    }
}

story! {
    async fn a_card_posted_after_a_thread_message_shows_it_once(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let receipt = card_of(slack, REQUESTER).await;
        let approval = card_with_button(slack, APPROVER, "approve").await;
        wait_until_idle(app).await;
        // Slack is down for the first provisioning card: it is posted after the message.
        slack.fail_next("chat.postMessage", Fault::Status(503));
        let (status, _) = app.click(APPROVER, "approve", &id, &approval.channel, &approval.ts).await;
        assert_eq!(status, StatusCode::OK);
        let failed = faulted_call(slack, "chat.postMessage", Fault::Status(503)).await;
        let late = failed.arg("channel").expect("a channel").to_string();
        let text = "Adding context while the cards go out";
        let (_, status) = app.reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, text).await;
        assert_eq!(status, StatusCode::OK);
        wait_until_idle(app).await;
        let card = card_of(slack, &late).await;
        let mentions: Vec<_> = bot_replies(slack, &card)
            .into_iter()
            .filter(|reply| all_text(reply).contains(text))
            .collect();
        assert_eq!(mentions.len(), 1, "the thread of the card to {late}: {mentions:#?}");
    }
}

/// Waits for the call that `fault` was injected into.
async fn faulted_call(slack: &FakeSlack, method: &str, fault: Fault) -> Call {
    slack
        .wait_for_call(method, |call| call.fault.as_ref() == Some(&fault))
        .await
        .unwrap_or_else(|timeout| panic!("{timeout}"))
}

story! {
    async fn a_post_whose_answer_was_lost_is_not_posted_twice(app: &TestApp) {
        let slack = &app.slack;
        let mut catalog = github_without_approvers();
        catalog["admins"] = json!([ADMIN1]);
        put_app(app, "github", catalog).await;
        slack.fail_next("chat.postMessage", Fault::DropAfterProcessing);
        let (id, _) = file(app, "github", json!({})).await;
        let lost = faulted_call(slack, "chat.postMessage", Fault::DropAfterProcessing).await;
        let recipient = lost.arg("channel").expect("a channel").to_string();
        let lost_ts = lost.response["ts"].as_str().expect("Slack posted it").to_string();
        slack
            .wait_for_call("conversations.history", Call::ok)
            .await
            .unwrap_or_else(|timeout| panic!("the post was not looked up: {timeout}"));
        wait_until_idle(app).await;

        let mut peek = Peek::connect(app.db_url.as_str()).await;
        for who in [REQUESTER, ADMIN1, ADMIN_CHANNEL] {
            let cards = cards_in(slack, who);
            assert_eq!(cards.len(), 1, "cards to {who}: {cards:#?}");
            let stored = peek.cards_of(who).await;
            assert_eq!(
                stored,
                [(Some(cards[0].channel.clone()), Some(cards[0].ts.clone()))],
                "the card of {who} in the database"
            );
        }
        let posts_to_recipient = slack
            .calls_to("chat.postMessage")
            .iter()
            .filter(|call| call.arg("channel") == Some(recipient.as_str()))
            .count();
        assert_eq!(posts_to_recipient, 1, "the lost post to {recipient} was not made again");
        assert_eq!(card_of(slack, &recipient).await.ts, lost_ts);

        let card = card_with_button(slack, ADMIN1, "confirm_provisioning").await;
        let (status, _) = app.click(ADMIN1, "confirm_provisioning", &id, &card.channel, &card.ts).await;
        assert_eq!(status, StatusCode::OK);
        wait_until_idle(app).await;
        for who in [REQUESTER, ADMIN1, ADMIN_CHANNEL] {
            let cards = cards_in(slack, who);
            assert_eq!(cards.len(), 1, "still one card to {who}");
            let live: Vec<String> = cards[0].buttons().into_iter().map(|b| b.0).collect();
            let expected: &[&str] = if who == REQUESTER { &["Release access"] } else { &[] };
            assert_eq!(live, expected, "the card of {who} shows the decision");
        }
        let receipt = card_of(slack, REQUESTER).await;
        assert!(receipt.text().to_lowercase().contains("ready to go"), "{}", receipt.text());
        assert!(failed_deliveries(app).await.is_empty());
    }
}

story! {
    async fn a_card_found_after_a_lost_answer_is_brought_up_to_date(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        // Both first posts (receipt and approval card) land, but their answers are lost.
        slack.fail_next_n("chat.postMessage", Fault::DropAfterProcessing, 2);
        let (id, _) = file(app, "github", json!({})).await;
        let approval = card_with_button(slack, APPROVER, "approve").await;
        // The approver acts on the card before the bot retried (and found) its post.
        let (status, _) = app.click(APPROVER, "approve", &id, &approval.channel, &approval.ts).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.request(&id).await["status"], "pending_provisioning");
        card_of(slack, ADMIN_CHANNEL).await;
        wait_until_idle(app).await;
        assert_eq!(cards_in(slack, APPROVER).len(), 1);
        let approval = approval.reload(slack);
        assert!(!approval.has_actions(), "the approval card still offers {:?}", approval.buttons());
        let receipt = card_of(slack, REQUESTER).await;
        assert!(
            receipt.text().to_lowercase().contains("pending provisioning"),
            "the receipt is stale: {}",
            receipt.text()
        );
    }
}

story! {
    async fn a_notice_whose_answer_was_lost_is_sent_once(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let card = card_with_button(slack, ADMIN1, "confirm_provisioning").await;
        wait_until_idle(app).await;
        // The notice is the only post a confirmation causes (cards are updated).
        slack.fail_next("chat.postMessage", Fault::DropAfterProcessing);
        let (status, _) = app.click(ADMIN1, "confirm_provisioning", &id, &card.channel, &card.ts).await;
        assert_eq!(status, StatusCode::OK);
        let lost = faulted_call(slack, "chat.postMessage", Fault::DropAfterProcessing).await;
        assert_eq!(lost.arg("channel"), Some(REQUESTER));
        wait_until_idle(app).await;
        let notices = notices_to(slack, REQUESTER);
        assert_eq!(notices.len(), 1, "{notices:#?}");
        assert!(all_text(&notices[0]).contains("ready to go"), "{}", notices[0]);
        assert!(!slack.calls_to("conversations.history").is_empty(), "it was looked up");
        assert_eq!(slack.calls_to("chat.postMessage").iter().filter(|c| c.seq > lost.seq).count(), 0);
        assert!(failed_deliveries(app).await.is_empty());
    }
}

story! {
    async fn a_relay_whose_answer_was_lost_is_relayed_once(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        file(app, "github", json!({})).await;
        let receipt = card_of(slack, REQUESTER).await;
        let approval = card_of(slack, APPROVER).await;
        wait_until_idle(app).await;
        slack.fail_next("chat.postMessage", Fault::DropAfterProcessing);
        let (_, status) = app
            .reply_in_thread(APPROVER, &approval.channel, &approval.ts, "Which team is this for?")
            .await;
        assert_eq!(status, StatusCode::OK);
        faulted_call(slack, "chat.postMessage", Fault::DropAfterProcessing).await;
        slack
            .wait_for_call("conversations.replies", Call::ok)
            .await
            .unwrap_or_else(|timeout| panic!("the relay was not looked up: {timeout}"));
        wait_until_idle(app).await;
        let relayed = bot_replies(slack, &receipt);
        assert_eq!(relayed.len(), 1, "{relayed:#?}");
        assert!(all_text(&relayed[0]).contains("Which team is this for?"));
    }
}

story! {
    async fn a_forged_user_on_a_replayed_body_fails_the_signature(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let approval = card_with_button(slack, APPROVER, "approve").await;
        let button = ButtonClick::find_in(&approval.message, "approve").expect("Approve");
        // An outsider's genuine click, which an attacker replays as the approver's.
        let mut payload = signer::block_actions_in_message(
            OUTSIDER,
            &approval.channel,
            &approval.ts,
            Some(&approval.message),
            &button,
        );
        let genuine = signer::interactivity_form(&payload);
        let timestamp = app.slack_timestamp();
        let signature = signer::sign(signer::TEST_SIGNING_SECRET, timestamp, &genuine);
        payload["user"]["id"] = json!(APPROVER);
        let forged = signer::interactivity_form(&payload);
        assert!(forged.contains(APPROVER) && forged != genuine);

        let (status, answer) = app
            .post_signed_raw("/slack/interactivity", FORM, &forged, Some(timestamp), Some(&signature))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(app.request(&id).await["status"], "pending_approval");
        assert_eq!(event_kinds(app, &id).await.len(), 1, "only the filing is recorded");

        // The genuine body with its signature still gets in, as the outsider it was.
        let (status, _) = app
            .post_signed_raw("/slack/interactivity", FORM, &genuine, Some(timestamp), Some(&signature))
            .await;
        assert_eq!(status, StatusCode::OK);
        ephemeral_for(slack, OUTSIDER, 1).await;
        assert_eq!(app.request(&id).await["status"], "pending_approval");
        wait_until_idle(app).await;
        assert!(slack.ephemerals_for(APPROVER).is_empty());
    }
}
