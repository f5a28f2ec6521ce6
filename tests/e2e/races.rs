//! Every transition is decided once and every card posted once, however the clicks and
//! the replicas race.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::db::Backend;
use crate::support::story::*;

story! {
    async fn confirm_and_deny_at_the_same_instant_end_with_one_outcome(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github_without_approvers()).await;
        let mut refused = std::collections::HashMap::new();
        for round in 0..4 {
            let (id, _) = file(app, "github", json!({"comment": format!("round {round}")})).await;
            let has_button_for = |action: &'static str| {
                let id = id.clone();
                move |c: &Card| button(&c.message, action).is_some_and(|b| b["value"] == id.as_str())
            };
            let confirm = wait_for_card(slack, ADMIN1, has_button_for("confirm_provisioning")).await;
            let deny = wait_for_card(slack, ADMIN2, has_button_for("deny")).await;
            let (confirmed, denied) = tokio::join!(
                app.click(ADMIN1, "confirm_provisioning", &id, &confirm.channel, &confirm.ts),
                app.click(ADMIN2, "deny", &id, &deny.channel, &deny.ts),
            );
            assert_eq!((confirmed.0, denied.0), (StatusCode::OK, StatusCode::OK));

            let request = app.request(&id).await;
            let (winner, loser, outcome) = match request["status"].as_str() {
                Some("provisioned") => (ADMIN1, ADMIN2, "provisioned"),
                Some("denied") => (ADMIN2, ADMIN1, "denied"),
                other => panic!("round {round}: neither outcome: {other:?} {request}"),
            };
            assert_eq!(request["decided_by"], winner);
            let kinds = event_kinds(app, &id).await;
            let decisions: Vec<_> = kinds
                .iter()
                .filter(|(kind, _)| kind == "provisioned" || kind == "denied")
                .collect();
            assert_eq!(decisions, [&(outcome.to_string(), winner.to_string())], "{kinds:?}");

            let count = refused.entry(loser).or_insert(0);
            *count += 1;
            let refusal = ephemeral_for(slack, loser, *count).await;
            let expected = format!("already {outcome} by <@{winner}>");
            assert!(all_text(&refusal).contains(&expected), "round {round}: {refusal}");
        }
    }
}

story! {
    async fn a_double_click_on_approve_approves_once(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let card = card_with_button(slack, APPROVER, "approve").await;
        let (first, second) = tokio::join!(
            app.click(APPROVER, "approve", &id, &card.channel, &card.ts),
            app.click(APPROVER, "approve", &id, &card.channel, &card.ts),
        );
        assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK));
        let approvals = event_kinds(app, &id)
            .await
            .into_iter()
            .filter(|(kind, _)| kind == "approved")
            .count();
        assert_eq!(approvals, 1);
        card_of(slack, ADMIN_CHANNEL).await;
        wait_until_idle(app).await;
        for recipient in [ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            assert_eq!(cards_posted_to(slack, recipient), 1, "provisioning card to {recipient}");
        }
    }
}

story! {
    async fn two_replicas_deliver_every_card_exactly_once(env: StoryEnv) {
        if env.backend == Backend::Sqlite {
            return; // SQLite serves one process (SPEC §6).
        }
        let slack = &env.slack;
        let one = env.spawn().await;
        let two = env.spawn().await;
        put_app(&one, "github", github()).await;
        let mut ids = Vec::new();
        for i in 0..10 {
            let app = if i % 2 == 0 { &one } else { &two };
            let (id, _) = file(app, "github", json!({"target_user": format!("UUSER{i:02}")})).await;
            ids.push(id);
        }
        slack
            .wait_for(
                |calls| calls.iter().filter(|c| c.method == "chat.postMessage" && c.ok()).count() >= 20,
                PATIENCE,
            )
            .await
            .unwrap_or_else(|timeout| panic!("{timeout}"));
        wait_until_idle(&one).await;
        for i in 0..10 {
            let user = format!("UUSER{i:02}");
            assert_eq!(cards_posted_to(slack, &user), 1, "receipt to {user}");
        }
        assert_eq!(cards_posted_to(slack, APPROVER), 10, "one approval card per request");
        assert_eq!(slack.calls_to("chat.postMessage").len(), 20, "no post made twice");
        one.stop().await;
        two.stop().await;
    }
}
