//! The App Home: a user's open tasks with live buttons and their own requests, published
//! when the tab opens and again whenever a request they are part of changes.

use serde_json::Value;

use crate::support::fake_slack::FakeSlack;
use crate::support::story::{
    asking_for, figma, file, has_button, number_of, put_app, status_of, story, wait_card,
    wait_for_state, ADMIN1, APPROVER, REQUESTER,
};

/// How many times a Home was published for `user`.
fn publishes(slack: &FakeSlack, user: &str) -> usize {
    slack
        .ok_calls_to("views.publish")
        .iter()
        .filter(|c| c.arg("user_id") == Some(user))
        .count()
}

/// The Home of `user` as last published.
fn home(slack: &FakeSlack, user: &str) -> Value {
    slack
        .home_of(user)
        .unwrap_or_else(|| panic!("no Home for {user}"))
}

/// `user` opens the Home tab; waits for the publish it causes.
async fn open_home(app: &crate::support::test_app::TestApp, user: &str) -> Value {
    let before = publishes(&app.slack, user);
    let (status, body) = app.open_home(user).await;
    assert_eq!(status, 200, "{body}");
    wait_for_state(&app.slack, "the Home to be published", |s| {
        publishes(s, user) > before
    })
    .await;
    home(&app.slack, user)
}

story! {
    async fn the_home_shows_tasks_with_live_buttons_and_own_requests(env: StoryEnv) {
        let app = env.spawn().await;
        let slack = app.slack.clone();
        put_app(&app, "figma", figma(true, false)).await;

        let before_any = open_home(&app, REQUESTER).await;
        assert_eq!(before_any["type"], "home");
        assert!(before_any
            .to_string()
            .contains("You have not requested anything yet"));

        let id = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        // The requester had opened the Home: it is republished with the new request.
        wait_for_state(&slack, "the requester's Home to show the request", |s| {
            s.home_of(REQUESTER)
                .is_some_and(|h| has_button(&h, "cancel_request", id))
        })
        .await;
        let mine = home(&slack, REQUESTER).to_string();
        assert!(mine.contains("Figma"), "{mine}");
        assert!(mine.contains("Pending approval by"), "{mine}");

        let tasks = open_home(&app, APPROVER).await;
        assert!(has_button(&tasks, "approve", id), "{tasks}");
        assert!(has_button(&tasks, "deny", id), "{tasks}");
        assert!(
            !has_button(&tasks, "cancel_request", id),
            "not the approver's request"
        );
        let card = wait_card(&slack, APPROVER, "approve", id).await;

        // Approve from the Home works like the card.
        let (status, body) = app.click_in_home(APPROVER, "approve").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(status_of(&app, id).await, "pending_provisioning");
        wait_for_state(&slack, "the approver's card to lose its buttons", |_| {
            !card.has_buttons(&slack)
        })
        .await;
        wait_for_state(&slack, "the approver's Home without the task", |s| {
            s.home_of(APPROVER)
                .is_some_and(|h| !has_button(&h, "approve", id))
        })
        .await;
        assert!(
            home(&slack, APPROVER)
                .to_string()
                .contains("Nothing waits for you."),
            "{}",
            home(&slack, APPROVER)
        );
        wait_for_state(&slack, "the requester's Home to show provisioning", |s| {
            s.home_of(REQUESTER)
                .is_some_and(|h| h.to_string().contains("Pending provisioning by"))
        })
        .await;

        // The admin's Home holds the provisioning task.
        let admin = open_home(&app, ADMIN1).await;
        assert!(has_button(&admin, "confirm_provisioning", id), "{admin}");
        app.click_in_home(ADMIN1, "confirm_provisioning").await;
        assert_eq!(status_of(&app, id).await, "provisioned");
        wait_for_state(&slack, "the requester's Home to show the access", |s| {
            s.home_of(REQUESTER).is_some_and(|h| {
                h.to_string().contains("Ready to go") && !has_button(&h, "cancel_request", id)
            })
        })
        .await;
        app.stop().await;
    }
}

story! {
    async fn a_busy_home_stays_within_100_blocks(env: StoryEnv) {
        let app = env.spawn().await;
        put_app(&app, "figma", figma(true, false)).await;
        const TASKS: usize = 30;
        for _ in 0..TASKS {
            number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        }
        let tasks = open_home(&app, APPROVER).await;
        let blocks = tasks["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= 100, "{} blocks", blocks.len());
        let text = tasks.to_string();
        let more = text
            .split("…and ")
            .nth(1)
            .and_then(|rest| rest.split(" more tasks").next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no \"…and N more tasks\" in {text}"));
        let shown = blocks
            .iter()
            .filter(|b| {
                b["elements"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["action_id"] == "approve"))
            })
            .count();
        assert!(shown > 0);
        assert_eq!(shown + more, TASKS, "shown {shown}, more {more}");
        app.stop().await;
    }
}
