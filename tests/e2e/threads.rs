//! Discussion threads: a reply under any card of a request, or under the requester's
//! receipt, reaches every other thread of that request, once, and is kept.

use chrono::Duration;

use crate::support::fake_slack::{Fault, BOT_ID};
use crate::support::signer::{bot_message_event, event_callback, user_message_event};
use crate::support::story::{
    asking_for, audit_kinds, ephemeral_for, events, figma, file, number_of, put_app, story,
    thread_of, wait_card, wait_for_state, wait_for_worker, wait_reply, Card, ADMIN1, ADMIN_CHANNEL,
    APPROVER, OUTSIDER, REQUESTER,
};
use crate::support::test_app::TestApp;

/// The requester's receipt and the approver's card of a new Figma request.
async fn receipt_and_approval_card(app: &TestApp) -> (i64, Card, Card) {
    put_app(app, "figma", figma(true, true)).await;
    let id = number_of(&file(app, "figma", asking_for("unlimited")).await.1);
    let receipt = wait_card(&app.slack, REQUESTER, "cancel_request", id).await;
    let approval = wait_card(&app.slack, APPROVER, "approve", id).await;
    wait_for_worker(app).await;
    (id, receipt, approval)
}

story! {
    async fn a_reply_in_any_thread_reaches_every_other_thread_of_the_request(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        let (id, receipt, approval) = receipt_and_approval_card(&app).await;

        // The requester asks under the receipt; mentions in the text are defused.
        let (_, status) = app
            .reply_in_thread(
                REQUESTER,
                &receipt.channel,
                &receipt.ts,
                "Which repo? <!channel>",
            )
            .await;
        assert_eq!(status, 200);
        let asked = format!("<@{REQUESTER}>: Which repo? &lt;!channel&gt;");
        wait_reply(&slack, &approval, &asked).await;
        assert_eq!(receipt.replies(&slack), ["Which repo? <!channel>"]);

        // Approval brings the provisioning stage: its cards start with the conversation so far.
        let (status, _) = app
            .click(
                APPROVER,
                "approve",
                &id.to_string(),
                &approval.channel,
                &approval.ts,
            )
            .await;
        assert_eq!(status, 200);
        let admin_dm = wait_card(&slack, ADMIN1, "confirm_provisioning", id).await;
        let channel_card = wait_card(&slack, ADMIN_CHANNEL, "confirm_provisioning", id).await;
        let summary = format!("Conversation so far:\n{asked}");
        wait_reply(&slack, &admin_dm, &summary).await;
        wait_reply(&slack, &channel_card, &summary).await;

        // An admin answers in the admin channel's thread: everyone else hears it.
        app.reply_in_thread(
            ADMIN1,
            &channel_card.channel,
            &channel_card.ts,
            "The design one",
        )
        .await;
        let answered = format!("<@{ADMIN1}>: The design one");
        for card in [&receipt, &approval, &admin_dm] {
            wait_reply(&slack, card, &answered).await;
        }

        // The approver chimes in under their (decided) card.
        app.reply_in_thread(APPROVER, &approval.channel, &approval.ts, "Thanks & go")
            .await;
        let chimed = format!("<@{APPROVER}>: Thanks &amp; go");
        for card in [&receipt, &admin_dm, &channel_card] {
            wait_reply(&slack, card, &chimed).await;
        }

        // Each thread holds each message once: the author's own or the bot's relay.
        assert_eq!(
            receipt.replies(&slack),
            [
                "Which repo? <!channel>".to_string(),
                answered.clone(),
                chimed.clone()
            ]
        );
        assert_eq!(
            approval.replies(&slack),
            [asked.clone(), answered.clone(), "Thanks & go".to_string()]
        );
        assert_eq!(
            admin_dm.replies(&slack),
            [summary.clone(), answered.clone(), chimed.clone()]
        );
        assert_eq!(
            channel_card.replies(&slack),
            [
                summary.clone(),
                "The design one".to_string(),
                chimed.clone()
            ]
        );

        // Stored, listed by the API oldest first, and in the audit trail.
        let thread = thread_of(&app, id).await;
        let said: Vec<(String, String)> = thread
            .iter()
            .map(|m| {
                assert!(m["at"].is_string(), "{m}");
                (
                    m["user"].as_str().unwrap().to_string(),
                    m["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            said,
            [
                (REQUESTER.to_string(), "Which repo? <!channel>".to_string()),
                (ADMIN1.to_string(), "The design one".to_string()),
                (APPROVER.to_string(), "Thanks & go".to_string()),
            ]
        );
        let kinds = audit_kinds(&app, id).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "thread_message").count(),
            3,
            "{kinds:?}"
        );
        app.stop().await;
    }
}

story! {
    async fn the_bot_ignores_its_own_messages_and_other_bots(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        let (id, receipt, approval) = receipt_and_approval_card(&app).await;

        // The bot's own relay coming back as an event.
        let ts = slack.next_ts();
        let own = bot_message_event(
            &approval.channel,
            "im",
            BOT_ID,
            "<@UREQUESTER>: echo",
            &ts,
            Some(&approval.ts),
        );
        assert_eq!(app.slack_event(&event_callback(own)).await.0, 200);
        // Another app's bot writing in the thread.
        let ts = slack.next_ts();
        let other = bot_message_event(
            &approval.channel,
            "im",
            "B0OTHERBOT",
            "beep",
            &ts,
            Some(&approval.ts),
        );
        assert_eq!(app.slack_event(&event_callback(other)).await.0, 200);
        app.reply_in_thread(APPROVER, &approval.channel, &approval.ts, "first words")
            .await;
        // A last plain reply; once it is relayed, anything relayed before it would be there too.
        app.reply_in_thread(APPROVER, &approval.channel, &approval.ts, "last words")
            .await;
        let last = format!("<@{APPROVER}>: last words");
        wait_reply(&slack, &receipt, &last).await;

        assert_eq!(
            receipt.replies(&slack),
            [format!("<@{APPROVER}>: first words"), last]
        );
        let texts: Vec<String> = thread_of(&app, id)
            .await
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts, ["first words", "last words"]);
        let relayed_by_bot = slack
            .ok_calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| c.body.get("thread_ts").is_some())
            .count();
        assert_eq!(relayed_by_bot, 2, "one relay per human message");
        assert_eq!(approval.replies(&slack), ["first words", "last words"]);
        app.stop().await;
    }
}

story! {
    async fn a_retried_event_is_relayed_once(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        let (id, receipt, approval) = receipt_and_approval_card(&app).await;

        let ts = slack.add_user_message(&receipt.channel, REQUESTER, "anyone?", Some(&receipt.ts));
        let envelope = event_callback(user_message_event(
            &receipt.channel,
            "im",
            REQUESTER,
            "anyone?",
            &ts,
            Some(&receipt.ts),
        ));
        assert_eq!(app.slack_event(&envelope).await.0, 200);
        assert_eq!(app.slack_event_retry(&envelope, 1).await.0, 200);
        assert_eq!(app.slack_event_retry(&envelope, 2).await.0, 200);
        // The same message again under a new event id (Slack can do that too): still once.
        let again = event_callback(user_message_event(
            &receipt.channel,
            "im",
            REQUESTER,
            "anyone?",
            &ts,
            Some(&receipt.ts),
        ));
        assert_eq!(app.slack_event(&again).await.0, 200);

        app.reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "hello?")
            .await;
        wait_reply(&slack, &approval, &format!("<@{REQUESTER}>: hello?")).await;
        assert_eq!(
            approval.replies(&slack),
            [
                format!("<@{REQUESTER}>: anyone?"),
                format!("<@{REQUESTER}>: hello?")
            ]
        );
        assert_eq!(thread_of(&app, id).await.len(), 2);
        let kinds = audit_kinds(&app, id).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "thread_message").count(),
            2,
            "{kinds:?}"
        );
        app.stop().await;
    }
}

story! {
    async fn replies_outside_request_threads_are_ignored(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        let (id, receipt, approval) = receipt_and_approval_card(&app).await;

        // A thread under someone's message in a channel: no request of ours.
        let parent = slack.add_user_message("CGENERAL1", APPROVER, "lunch?", None);
        let (_, status) = app
            .reply_in_thread(REQUESTER, "CGENERAL1", &parent, "sure")
            .await;
        assert_eq!(status, 200);
        // A reply in the DM, but under a message that is not a card.
        let loose = slack.add_user_message(&receipt.channel, REQUESTER, "note to self", None);
        app.reply_in_thread(REQUESTER, &receipt.channel, &loose, "still a note")
            .await;
        // A top-level message next to the card (not in its thread).
        let ts = slack.add_user_message(&approval.channel, APPROVER, "hi bot", None);
        let top = event_callback(user_message_event(
            &approval.channel,
            "im",
            APPROVER,
            "hi bot",
            &ts,
            None,
        ));
        assert_eq!(app.slack_event(&top).await.0, 200);

        app.reply_in_thread(APPROVER, &approval.channel, &approval.ts, "on it")
            .await;
        wait_reply(&slack, &receipt, &format!("<@{APPROVER}>: on it")).await;
        assert_eq!(slack.thread_replies("CGENERAL1", &parent).len(), 1);
        assert_eq!(receipt.replies(&slack), [format!("<@{APPROVER}>: on it")]);
        let in_threads = slack
            .ok_calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| c.body.get("thread_ts").is_some())
            .count();
        assert_eq!(in_threads, 1);
        assert_eq!(thread_of(&app, id).await.len(), 1);
        wait_for_state(&slack, "nothing posted in #general", |s| {
            s.messages_in("CGENERAL1").len() == 2
        })
        .await;
        app.stop().await;
    }
}

story! {
    /// The provisioning card is stored at the approval but reaches Slack a little later (here:
    /// Slack rate-limits chat.postMessage for 2 s). A reply written in between is relayed to the
    /// card's thread *and* summed up in its "Conversation so far:": the admin reads it twice.
    async fn a_card_posted_while_someone_writes_gets_each_message_once(env: StoryEnv) {
        let app = env.spawn_stepped().await;
        let slack = app.slack.clone();
        let t = app.now();
        put_app(&app, "figma", figma(true, false)).await;
        let id = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        app.step(t).await;
        let receipt = wait_card(&slack, REQUESTER, "cancel_request", id).await;
        let approval = wait_card(&slack, APPROVER, "approve", id).await;

        slack.fail_next(
            "chat.postMessage",
            Fault::RateLimited {
                retry_after_secs: 2,
            },
        );
        app.click(
            APPROVER,
            "approve",
            &id.to_string(),
            &approval.channel,
            &approval.ts,
        )
        .await;
        app.step(t).await;
        slack
            .wait_for_call("chat.postMessage", |c| c.status == 429)
            .await
            .expect("the provisioning card is rate-limited");
        app.reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "any news?")
            .await;
        // Past the Retry-After, then past the backoff of anything that had to wait for the card.
        app.step(t + chrono::Duration::seconds(2)).await;
        app.step(t + chrono::Duration::minutes(1)).await;

        let admin_card = wait_card(&slack, ADMIN1, "confirm_provisioning", id).await;
        let said = format!("<@{REQUESTER}>: any news?");
        wait_reply(&slack, &approval, &said).await;
        wait_for_state(&slack, "the admin's card to hear of the reply", |s| {
            !admin_card.replies(s).is_empty()
        })
        .await;
        let heard = admin_card
            .replies(&slack)
            .iter()
            .filter(|r| r.contains("any news?"))
            .count();
        assert_eq!(heard, 1, "{:?}", admin_card.replies(&slack));
        app.stop().await;
    }
}

/// The texts of the kept thread of request `id`, oldest first.
async fn kept_texts(app: &TestApp, id: i64) -> Vec<String> {
    thread_of(app, id)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

story! {
    async fn a_stranger_is_not_relayed_nor_kept_and_hears_why_once(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        let (id, receipt, approval) = receipt_and_approval_card(&app).await;

        // Someone who is none of the request's people writes in a card's thread (as someone
        // removed from the approvers could, in their old card's thread), twice.
        for text in ["let me in on this", "hello?"] {
            let (_, status) = app
                .reply_in_thread(OUTSIDER, &approval.channel, &approval.ts, text)
                .await;
            assert_eq!(status, 200);
        }
        let note = ephemeral_for(&slack, OUTSIDER, 1).await;
        assert_eq!(note["thread_ts"], approval.ts.as_str(), "{note}");
        let text = note["text"].as_str().unwrap_or_default();
        assert!(text.contains("Your reply stays in this thread only"), "{text}");

        // A request's person is relayed as ever; the stranger's words went nowhere.
        app.reply_in_thread(APPROVER, &approval.channel, &approval.ts, "on it")
            .await;
        wait_reply(&slack, &receipt, &format!("<@{APPROVER}>: on it")).await;
        wait_for_worker(&app).await;
        assert_eq!(receipt.replies(&slack), [format!("<@{APPROVER}>: on it")]);
        assert_eq!(kept_texts(&app, id).await, ["on it"]);
        assert_eq!(slack.ephemerals_for(OUTSIDER).len(), 1, "told once");
        app.stop().await;
    }
}

story! {
    async fn in_the_admin_channel_anyone_who_can_post_is_relayed(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        put_app(&app, "figma", figma(false, true)).await;
        let id = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        let receipt = wait_card(&slack, REQUESTER, "cancel_request", id).await;
        let channel_card = wait_card(&slack, ADMIN_CHANNEL, "confirm_provisioning", id).await;
        wait_for_worker(&app).await;

        app.reply_in_thread(OUTSIDER, &channel_card.channel, &channel_card.ts, "I can help")
            .await;
        wait_reply(&slack, &receipt, &format!("<@{OUTSIDER}>: I can help")).await;
        assert_eq!(kept_texts(&app, id).await, ["I can help"]);
        assert!(slack.ephemerals_for(OUTSIDER).is_empty());
        app.stop().await;
    }
}

story! {
    async fn a_long_reply_is_cut_to_three_thousand_characters_with_a_visible_mark(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        let (id, receipt, approval) = receipt_and_approval_card(&app).await;

        let long = "All the logs: ".to_string() + &"0123456789".repeat(4_000);
        app.reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, &long)
            .await;
        wait_for_state(&slack, "the long reply relayed", |s| {
            !approval.replies(s).is_empty()
        })
        .await;
        let relayed = approval.replies(&slack).remove(0);
        let prefix = format!("<@{REQUESTER}>: ");
        assert!(relayed.starts_with(&format!("{prefix}All the logs: 0123")), "{relayed:.80}");
        assert!(relayed.ends_with("… (truncated)"), "{}", &relayed[relayed.len() - 40..]);
        assert_eq!(relayed.chars().count(), 3_000, "the whole relayed message");

        // What is kept is what was relayed: 3,000 characters, in the thread and the trail.
        let kept = kept_texts(&app, id).await;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].chars().count(), 3_000);
        assert!(kept[0].ends_with("… (truncated)"));
        let details: Vec<usize> = events(&app, &id.to_string())
            .await
            .iter()
            .filter(|e| e["kind"] == "thread_message")
            .map(|e| e["detail"].as_str().unwrap_or_default().chars().count())
            .collect();
        assert_eq!(details, [3_000]);
        app.stop().await;
    }
}

story! {
    async fn replies_over_the_rate_limit_are_not_relayed_and_the_author_hears_once(
        env: StoryEnv
    ) {
        // The clock stands still unless the story moves it.
        let app = env.spawn_at_t0(&[]).await;
        let slack = app.slack.clone();
        let (id, receipt, approval) = receipt_and_approval_card(&app).await;

        for n in 1..=7 {
            app.reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, &format!("ping {n}"))
                .await;
        }
        let note = ephemeral_for(&slack, REQUESTER, 1).await;
        let text = note["text"].as_str().unwrap_or_default();
        assert!(text.contains("at most 5 replies a minute from one person"), "{text}");
        assert!(text.contains("Try again in 12 seconds"), "{text}");
        assert_eq!(note["thread_ts"], receipt.ts.as_str());

        // A token comes back every 12 seconds.
        app.advance(Duration::seconds(12));
        app.reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "ping 8")
            .await;
        wait_reply(&slack, &approval, &format!("<@{REQUESTER}>: ping 8")).await;
        wait_for_worker(&app).await;
        let relayed: Vec<String> = [1, 2, 3, 4, 5, 8]
            .iter()
            .map(|n| format!("<@{REQUESTER}>: ping {n}"))
            .collect();
        assert_eq!(approval.replies(&slack), relayed);
        assert_eq!(
            kept_texts(&app, id).await,
            ["ping 1", "ping 2", "ping 3", "ping 4", "ping 5", "ping 8"]
        );
        assert_eq!(slack.ephemerals_for(REQUESTER).len(), 1, "told once");
        app.stop().await;
    }
}

story! {
    async fn a_busy_request_relays_a_bounded_number_of_replies_whoever_writes(env: StoryEnv) {
        let app = env.spawn_at_t0(&[]).await;
        let slack = app.slack.clone();
        put_app(&app, "figma", figma(false, true)).await;
        let id = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        let receipt = wait_card(&slack, REQUESTER, "cancel_request", id).await;
        let admin_dm = wait_card(&slack, ADMIN1, "confirm_provisioning", id).await;
        let channel_card = wait_card(&slack, ADMIN_CHANNEL, "confirm_provisioning", id).await;
        wait_for_worker(&app).await;

        // Three people write five replies each within the minute: the request's fifteen.
        for (author, card) in [
            (REQUESTER, &receipt),
            (ADMIN1, &admin_dm),
            (OUTSIDER, &channel_card),
        ] {
            for n in 1..=5 {
                app.reply_in_thread(author, &card.channel, &card.ts, &format!("{author} {n}"))
                    .await;
            }
        }
        // A fourth person's first reply is one too many for the request.
        app.reply_in_thread("UHELPER", &channel_card.channel, &channel_card.ts, "me too")
            .await;
        let note = ephemeral_for(&slack, "UHELPER", 1).await;
        let text = note["text"].as_str().unwrap_or_default();
        assert!(text.contains("at most 15 replies a minute in one request"), "{text}");
        assert_eq!(thread_of(&app, id).await.len(), 15);
        app.stop().await;
    }
}

story! {
    async fn an_edit_and_a_deletion_reach_every_copy_and_the_kept_thread(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        let (id, receipt, approval) = receipt_and_approval_card(&app).await;

        let (ts, _) = app
            .reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "Which repo?")
            .await;
        wait_reply(&slack, &approval, &format!("<@{REQUESTER}>: Which repo?")).await;

        let status = app
            .edit_reply(
                REQUESTER,
                &receipt.channel,
                (&receipt.ts, &ts),
                "Which repo? The mobile one",
            )
            .await;
        assert_eq!(status, 200);
        let edited = format!("<@{REQUESTER}>: Which repo? The mobile one");
        wait_for_state(&slack, "the copy edited", |s| approval.replies(s) == [edited.clone()])
            .await;
        assert_eq!(kept_texts(&app, id).await, ["Which repo? The mobile one"]);

        assert_eq!(
            app.delete_reply(REQUESTER, &receipt.channel, (&receipt.ts, &ts))
                .await,
            200
        );
        wait_for_state(&slack, "the copy deleted", |s| approval.replies(s).is_empty()).await;
        assert!(kept_texts(&app, id).await.is_empty());
        assert_eq!(slack.ok_calls_to("chat.delete").len(), 1);
        let kinds = audit_kinds(&app, id).await;
        let thread_kinds: Vec<&str> = kinds
            .iter()
            .map(String::as_str)
            .filter(|k| k.starts_with("thread_message"))
            .collect();
        assert_eq!(
            thread_kinds,
            [
                "thread_message",
                "thread_message_edited",
                "thread_message_deleted"
            ]
        );
        app.stop().await;
    }
}

story! {
    /// A copy still waiting to be posted when its message is edited shows the edit; one
    /// waiting when its message is deleted is never posted.
    async fn a_copy_posted_late_shows_the_message_as_it_is_then(env: StoryEnv) {
        let app = env.spawn_stepped().await;
        let slack = app.slack.clone();
        let t = app.now();
        put_app(&app, "figma", figma(true, false)).await;
        let id = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        app.step(t).await;
        let receipt = wait_card(&slack, REQUESTER, "cancel_request", id).await;
        let approval = wait_card(&slack, APPROVER, "approve", id).await;

        let (edited_ts, _) = app
            .reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "typo")
            .await;
        app.edit_reply(REQUESTER, &receipt.channel, (&receipt.ts, &edited_ts), "fixed")
            .await;
        let (deleted_ts, _) = app
            .reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "oops")
            .await;
        app.delete_reply(REQUESTER, &receipt.channel, (&receipt.ts, &deleted_ts))
            .await;
        app.step(t).await;
        assert_eq!(
            approval.replies(&slack),
            [format!("<@{REQUESTER}>: fixed")]
        );
        assert_eq!(kept_texts(&app, id).await, ["fixed"]);
        assert!(slack.calls_to("chat.delete").is_empty());
        app.stop().await;
    }
}

story! {
    /// Slack limits chat.postMessage per channel: a 429 for the approver's DM holds back
    /// the relay into it, and only it.
    async fn a_rate_limited_channel_does_not_delay_posts_to_another(env: StoryEnv) {
        let app = env.spawn_stepped().await;
        let slack = app.slack.clone();
        let t = app.now();
        put_app(&app, "figma", figma(true, false)).await;
        let id = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        app.step(t).await;
        let receipt = wait_card(&slack, REQUESTER, "cancel_request", id).await;
        let approval = wait_card(&slack, APPROVER, "approve", id).await;

        slack.fail_next_in(
            "chat.postMessage",
            &approval.channel,
            Fault::RateLimited {
                retry_after_secs: 30,
            },
        );
        app.reply_in_thread(REQUESTER, &receipt.channel, &receipt.ts, "any news?")
            .await;
        app.step(t).await;
        let limited = slack
            .wait_for_call("chat.postMessage", |c| c.status == 429)
            .await
            .expect("the relay into the approver's DM is rate-limited");
        assert_eq!(limited.arg("channel"), Some(approval.channel.as_str()));

        // Within the Retry-After, a post to the requester's DM goes out at once.
        app.reply_in_thread(APPROVER, &approval.channel, &approval.ts, "looking")
            .await;
        app.step(t + Duration::seconds(1)).await;
        assert_eq!(
            receipt.replies(&slack),
            ["any news?".to_string(), format!("<@{APPROVER}>: looking")]
        );
        assert_eq!(approval.replies(&slack), ["looking"], "still waiting");

        // After it, the waiting relay is posted.
        app.step(t + Duration::seconds(30)).await;
        assert_eq!(
            approval.replies(&slack),
            ["looking".to_string(), format!("<@{REQUESTER}>: any news?")]
        );
        app.stop().await;
    }
}
