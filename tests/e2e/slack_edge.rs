//! The Slack edge: only requests Slack signed get in, the documented example vector works
//! end to end, the URL handshake answers, nonsense is a 400, and user text never pings.

use std::sync::Arc;

use accessbot::clock::ManualClock;
use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::signer::{self, FORM, JSON, TEST_SIGNING_SECRET};
use crate::support::story::*;
use crate::support::test_app::TestApp;

/// Slack's documented signing example (api.slack.com/authentication/verifying-requests-from-slack).
const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const DOC_TIMESTAMP: i64 = 1531420618;
const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const DOC_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

story! {
    async fn unsigned_stale_or_forged_slack_requests_are_refused(app: &TestApp) {
        let slack = &app.slack;
        put_app(app, "github", github()).await;
        let (id, _) = file(app, "github", json!({})).await;
        let approval = card_with_button(slack, APPROVER, "approve").await;
        let click = signer::ButtonClick::find_in(&approval.message, "approve").expect("Approve");
        let payload = signer::block_actions_in_message(
            APPROVER,
            &approval.channel,
            &approval.ts,
            Some(&approval.message),
            &click,
        );
        let interaction = signer::interactivity_form(&payload);
        let command_fields = signer::slash_command(REQUESTER, "D1", signer::COMMAND, "help");
        let command_pairs: Vec<(&str, &str)> = command_fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let command = signer::form(&command_pairs);
        let event = signer::url_verification("handshake").to_string();
        let endpoints = [
            ("/slack/events", JSON, event.as_str()),
            ("/slack/interactivity", FORM, interaction.as_str()),
            ("/slack/commands", FORM, command.as_str()),
        ];

        let now = app.slack_timestamp();
        for (path, content_type, body) in endpoints {
            let zeros = format!("v0={}", "0".repeat(64));
            let other_secret = signer::sign("not-the-signing-secret", now, body);
            let other_body = signer::sign(TEST_SIGNING_SECRET, now, &format!("{body}&x=1"));
            let refusals: [(&str, Option<i64>, Option<&str>); 7] = [
                ("a wrong signature", None, Some(zeros.as_str())),
                ("another secret", None, Some(other_secret.as_str())),
                ("a signature of another body", None, Some(other_body.as_str())),
                ("not v0", None, Some("v1=abc")),
                ("no signature", None, Some("")),
                // The exact 300/301 s boundary is a unit test of `signature::verify`; here the
                // margin leaves room for the seconds the story itself takes.
                ("a timestamp 5.5 min old", Some(now - 330), None),
                ("a timestamp 5.5 min ahead", Some(now + 330), None),
            ];
            for (what, timestamp, signature) in refusals {
                let (status, answer) = app
                    .post_signed_raw(path, content_type, body, timestamp, signature)
                    .await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {what}: {answer}");
            }
            let (status, answer) = app.post_unsigned(path, content_type, body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} without headers: {answer}");
        }
        assert_eq!(app.request(&id).await["status"], "pending_approval");
        assert!(slack.ephemerals_for(REQUESTER).is_empty());

        // Within five minutes, a correctly signed request is in.
        let recent = app.slack_timestamp() - 270;
        let (status, answer) = app
            .post_signed_raw("/slack/interactivity", FORM, &interaction, Some(recent), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(app.request(&id).await["status"], "pending_provisioning");
    }
}

story! {
    async fn slacks_documented_signature_example_is_accepted(env: StoryEnv) {
        let clock = Arc::new(ManualClock::new(
            Utc.timestamp_opt(DOC_TIMESTAMP + 60, 0).unwrap(),
        ));
        let app = TestApp::spawn_with(
            env.db_url(),
            &env.slack,
            Some(clock),
            &[("SLACK_SIGNING_SECRET", DOC_SECRET)],
        )
        .await;
        let (status, answer) = app
            .post_signed_raw(
                "/slack/commands",
                FORM,
                DOC_BODY,
                Some(DOC_TIMESTAMP),
                Some(DOC_SIGNATURE),
            )
            .await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(status, StatusCode::OK, "{answer}");

        let (status, _) = app
            .post_signed_raw(
                "/slack/commands",
                FORM,
                DOC_BODY,
                Some(DOC_TIMESTAMP + 1),
                Some(DOC_SIGNATURE),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the timestamp is signed too");

        app.advance(chrono::Duration::seconds(241));
        let (status, _) = app
            .post_signed_raw(
                "/slack/commands",
                FORM,
                DOC_BODY,
                Some(DOC_TIMESTAMP),
                Some(DOC_SIGNATURE),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "stale after five minutes");
        app.stop().await;
    }
}

story! {
    async fn url_verification_echoes_the_challenge(app: &TestApp) {
        let challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P";
        let (status, body) = app.verify_url(challenge).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["challenge"], challenge, "{body}");
    }
}

story! {
    async fn malformed_slack_payloads_are_a_400_not_a_500(app: &TestApp) {
        let malformed = [
            ("/slack/events", JSON, "this is not JSON"),
            ("/slack/events", JSON, r#"{"type": "event_callback"}"#),
            ("/slack/events", JSON, r#"{"type": "url_verification"}"#),
            ("/slack/interactivity", FORM, "nothing=here"),
            ("/slack/interactivity", FORM, "payload=%7Bnot%20json"),
            ("/slack/interactivity", FORM, "payload=%5B1%2C2%5D"),
            ("/slack/commands", FORM, "text=no+user"),
            ("/slack/commands", FORM, "%%%"),
        ];
        for (path, content_type, body) in malformed {
            let (status, answer) = app.post_signed_raw(path, content_type, body, None, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body:?}: {answer}");
            assert!(answer["error"].is_string(), "{path} {body:?}: {answer}");
        }
        assert!(app.slack.calls().is_empty());
    }
}

story! {
    async fn hostile_comment_is_escaped(env: StoryEnv) {
        let stepped = env.spawn_stepped().await;
        let app = &stepped;
        let slack = &app.slack;
        let hostile = "<!channel> <https://evil.example|click> & co";
        let escaped = "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; co";
        put_app(app, "github", github()).await;
        let (id, request) = file(app, "github", json!({"comment": hostile})).await;
        assert_eq!(request["comment"], hostile, "stored as written");

        app.settle().await;
        let approval = card_with_button(slack, APPROVER, "approve").await;
        app.click(APPROVER, "approve", &id, &approval.channel, &approval.ts).await;
        app.settle().await;
        let mine = card_with_button(slack, ADMIN1, "deny").await;
        app.click(ADMIN1, "deny", &id, &mine.channel, &mine.ts).await;
        app.settle().await;
        let mine = card_with_button(slack, ADMIN1, "send_feedback").await;
        app.click(ADMIN1, "send_feedback", &id, &mine.channel, &mine.ts).await;
        let modal = opened_modal(slack, 1).await;
        let (status, body) = app
            .submit_view(
                ADMIN1,
                modal["id"].as_str().unwrap(),
                json!({"feedback": {"feedback": signer::text_value(Some(hostile))}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.settle().await;
        dm_containing(slack, REQUESTER, "feedback from").await;
        dm_containing(slack, REQUESTER, "denied").await;

        for call in slack.calls() {
            let sent = call.body.to_string();
            assert!(
                !sent.contains("<!channel>") && !sent.contains("<https://evil"),
                "{} sent user text unescaped: {sent}",
                call.method
            );
        }
        for recipient in [REQUESTER, APPROVER, ADMIN1, ADMIN2, ADMIN_CHANNEL] {
            for card in cards_in(slack, recipient) {
                let text = card.text();
                assert!(text.contains(escaped), "card to {recipient}: {text}");
                assert_eq!(text.matches(escaped).count(), 2, "comment and feedback: {text}");
            }
        }
        let feedback = dm_containing(slack, REQUESTER, "feedback from").await;
        assert!(all_text(&feedback).contains(escaped), "{feedback}");
        assert_eq!(app.request(&id).await["denial_feedback"], hostile);
        stepped.stop().await;
    }
}
