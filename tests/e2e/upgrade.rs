//! An upgrade keeps what was owed to Slack: outbox rows written by the release before
//! deliveries became facts (messages rendered when they were queued) are still sent.

use serde_json::{json, Value};

use crate::support::story::*;

/// Runs `sql` on the database at `url`, as an operator's script would.
async fn execute(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open SQLite");
        sqlx::raw_sql(sql).execute(&pool).await.expect("run SQL");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("open PostgreSQL");
        sqlx::raw_sql(sql).execute(&pool).await.expect("run SQL");
        pool.close().await;
    }
}

/// An outbox row exactly as the earlier release wrote it.
fn old_row(request_id: &str, payload: &Value) -> String {
    format!(
        "INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
         created_at, updated_at) VALUES ({request_id}, 'chat.postMessage', '{}', 'pending', 0, \
         0, 0, 0);",
        payload.to_string().replace('\'', "''")
    )
}

story! {
    async fn messages_rendered_by_the_earlier_release_are_still_delivered(env: StoryEnv) {
        let slack = &env.slack;
        let app = env.spawn().await;
        put_app(&app, "github", github()).await;
        let (id, _) = file(&app, "github", json!({})).await;
        let approver_card = card_of(slack, APPROVER).await;
        card_of(slack, REQUESTER).await;
        wait_until_idle(&app).await;
        app.stop().await;

        let store = env.db.store().await;
        let cards = store.cards(id.parse().unwrap()).await.unwrap();
        let card_id = cards
            .iter()
            .find(|card| card.recipient == APPROVER)
            .expect("the approver's card")
            .id;
        drop(store);
        let feedback = "💬 Feedback from <@UAPPROVER> on your request for *GitHub*:\n>Use the viewer role";
        let rows = [
            old_row(
                &id,
                &json!({
                    "type": "post_message",
                    "channel": REQUESTER,
                    "text": feedback,
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": feedback}}],
                }),
            ),
            old_row(
                &id,
                &json!({
                    "type": "post_in_card_thread",
                    "card_id": card_id,
                    "text": "<@UREQUESTER>: which repository?",
                }),
            ),
        ];
        execute(env.db_url(), &rows.concat()).await;

        let app = env.spawn().await;
        let dm = dm_containing(slack, REQUESTER, "Feedback from").await;
        assert_eq!(dm["blocks"][0]["text"]["text"], feedback, "sent with its blocks");
        let reply = |call: &crate::support::fake_slack::Call| {
            call.method == "chat.postMessage"
                && call.arg("thread_ts") == Some(approver_card.ts.as_str())
                && call.arg("text") == Some("<@UREQUESTER>: which repository?")
        };
        slack
            .wait_for(|calls| calls.iter().any(reply), PATIENCE)
            .await
            .unwrap_or_else(|timeout| panic!("the reply never reached the card's thread: {timeout}"));
        wait_until_idle(&app).await;
        assert!(failed_deliveries(&app).await.is_empty());
        let sent_once = |needle: &str| {
            slack
                .calls_to("chat.postMessage")
                .iter()
                .filter(|call| call.arg("text").is_some_and(|text| text.contains(needle)))
                .count()
        };
        assert_eq!(sent_once("Feedback from"), 1);
        assert_eq!(sent_once("which repository?"), 1);
        app.stop().await;
    }
}
