//! Time-limited access ends on time: one reminder in the last tenth, a removal card to the
//! app's admins when it is over, and `expired` once they confirm. Requests left waiting
//! remind their assignees once. The app runs on a manual clock and checks every 50 ms.

use chrono::Duration;

use crate::support::story::{
    asking_for, audit_kinds, cards_with_button, dms_containing, figma, file, number_of, put_app,
    status_of, story, t0, wait_card, wait_dm_containing, wait_for_state, Card, ADMIN1,
    ADMIN_CHANNEL, APPROVER, REQUESTER,
};

const SOON: &str = "⏰ Your access to *Figma* ends";
const ENDED: &str = "⌛ Your access to *Figma* has ended";

story! {
    async fn access_ends_on_time_after_one_reminder_and_a_confirmed_removal(env: StoryEnv) {
        let app = env.spawn_at_t0(&[("ACCESSBOT_SCHEDULER_INTERVAL", "50ms")]).await;
        let slack = app.slack.clone();
        put_app(&app, "figma", figma(false, true)).await;
        let id = number_of(&file(&app, "figma", asking_for("10s")).await.1);
        let receipt = wait_card(&slack, REQUESTER, "cancel_request", id).await;
        let admin_card = wait_card(&slack, ADMIN1, "confirm_provisioning", id).await;
        let channel_card = wait_card(&slack, ADMIN_CHANNEL, "confirm_provisioning", id).await;

        app.advance(Duration::seconds(1));
        app.click(
            ADMIN1,
            "confirm_provisioning",
            &id.to_string(),
            &admin_card.channel,
            &admin_card.ts,
        )
        .await;
        let request = app.request(&id.to_string()).await;
        assert_eq!(request["status"], "provisioned");
        let expires = t0() + Duration::seconds(11);
        assert_eq!(
            request["expires_at"],
            expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );

        // Into the last tenth (the last second): one reminder.
        app.advance(Duration::milliseconds(9_200));
        wait_dm_containing(&slack, REQUESTER, SOON).await;
        assert_eq!(status_of(&app, id).await, "provisioned");

        // Past the end: pending removal, a removal card for the admins, a word to the requester.
        app.advance(Duration::seconds(1));
        let removal = wait_card(&slack, ADMIN1, "confirm_removal", id).await;
        wait_dm_containing(&slack, REQUESTER, ENDED).await;
        assert_eq!(status_of(&app, id).await, "pending_deprovisioning");
        let removal_text = removal.text_now(&slack);
        assert!(removal_text.contains("Confirm Removal"), "{removal_text}");
        // Time goes on; the scheduler keeps ticking but says nothing more.
        app.advance(Duration::seconds(30));
        wait_for_state(&slack, "the receipt to show the end", |_| {
            receipt.text_now(&slack).contains("Access ended")
        })
        .await;

        let in_channel = cards_with_button(&slack, ADMIN_CHANNEL, "confirm_removal", id);
        app.click(
            ADMIN1,
            "confirm_removal",
            &id.to_string(),
            &removal.channel,
            &removal.ts,
        )
        .await;
        let request = app.request(&id.to_string()).await;
        assert_eq!(request["status"], "expired");
        let mut cards = vec![
            receipt.clone(),
            admin_card.clone(),
            channel_card.clone(),
            removal.clone(),
        ];
        for card in &in_channel {
            cards.push(Card {
                channel: ADMIN_CHANNEL.to_string(),
                ts: card["ts"].as_str().unwrap().to_string(),
                message: card.clone(),
            });
        }
        let confirmed = format!("removal confirmed by <@{ADMIN1}>");
        for card in &cards {
            wait_for_state(
                &slack,
                &format!("{card:?} to show the confirmed removal"),
                |s| !card.has_buttons(s) && card.text_now(s).contains(&confirmed),
            )
            .await;
        }

        assert_eq!(dms_containing(&slack, REQUESTER, SOON), 1, "one reminder");
        assert_eq!(dms_containing(&slack, REQUESTER, ENDED), 1, "one notice");
        assert_eq!(
            slack.top_level_messages_in(ADMIN1).len(),
            2,
            "the admin got a provisioning card and one removal card"
        );
        let kinds = audit_kinds(&app, id).await;
        for kind in [
            "provisioned",
            "reminder_sent",
            "expired",
            "removal_confirmed",
        ] {
            assert_eq!(
                kinds.iter().filter(|k| *k == kind).count(),
                1,
                "{kind} in {kinds:?}"
            );
        }
        app.stop().await;
    }
}

story! {
    async fn requests_left_waiting_remind_their_assignees_once(env: StoryEnv) {
        let app = env.spawn_at_t0(&[("ACCESSBOT_REMINDER_AFTER", "1h")]).await;
        let slack = app.slack.clone();
        put_app(&app, "figma", figma(true, false)).await;
        let mut linear = figma(true, false);
        linear["name"] = "Linear".into();
        put_app(&app, "linear", linear).await;
        let figma_id = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        wait_card(&slack, APPROVER, "approve", figma_id).await;

        app.advance(Duration::minutes(61));
        let figma_nudge = "⏰ Still waiting for you: <@UREQUESTER>'s request for *Figma*";
        wait_dm_containing(&slack, APPROVER, figma_nudge).await;

        // A second request, reminded an hour later: the first one was not reminded again.
        let linear_id = number_of(&file(&app, "linear", asking_for("unlimited")).await.1);
        wait_card(&slack, APPROVER, "approve", linear_id).await;
        app.advance(Duration::minutes(61));
        wait_dm_containing(
            &slack,
            APPROVER,
            "⏰ Still waiting for you: <@UREQUESTER>'s request for *Linear*",
        )
        .await;
        assert_eq!(dms_containing(&slack, APPROVER, figma_nudge), 1);
        assert_eq!(dms_containing(&slack, REQUESTER, "Still waiting"), 0);
        assert_eq!(status_of(&app, figma_id).await, "pending_approval");
        let kinds = audit_kinds(&app, figma_id).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "reminder_sent").count(),
            1,
            "{kinds:?}"
        );
        app.stop().await;
    }
}
