//! The fake Slack answers like Slack, and slack-morphism's real client (what the bot uses)
//! accepts its answers.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::support::fake_slack::{
    check_block_kit, dm_channel_of, FakeSlack, Fault, Surface, BOT_ID, DEFAULT_BOT_TOKEN,
};
use crate::support::signer;

type Client = SlackClient<SlackClientHyperConnector<HttpConnector>>;

fn client_for(fake: &FakeSlack) -> Client {
    SlackClient::new(
        SlackClientHyperConnector::with_connector(HttpConnector::new())
            .with_slack_api_url(&fake.api_url()),
    )
}

fn token(value: &str) -> SlackApiToken {
    SlackApiToken::new(SlackApiTokenValue(value.into()))
}

fn text(text: &str) -> SlackMessageContent {
    SlackMessageContent::new().with_text(text.into())
}

fn section(text: &str) -> SlackBlock {
    SlackSectionBlock::new().with_text(md!(text)).into()
}

fn modal(title: &str) -> SlackView {
    SlackView::Modal(
        SlackModalView::new(title.into(), vec![section("Please confirm")])
            .with_private_metadata("{\"request\":1}".into())
            .with_callback_id("feedback".into()),
    )
}

fn api_error_code(result: Result<impl std::fmt::Debug, SlackClientError>) -> String {
    match result {
        Err(SlackClientError::ApiError(error)) => error.code,
        other => panic!("expected a Slack API error, got {other:?}"),
    }
}

#[tokio::test]
async fn posting_to_a_user_lands_in_their_dm_channel_and_satisfies_slack_morphism() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);

    let posted = session
        .chat_post_message(
            &SlackApiChatPostMessageRequest::new("U0ALICE".into(), text("Access request"))
                .with_blocks_metadata(),
        )
        .await
        .expect("chat.postMessage accepted");
    assert_eq!(posted.channel.value(), "D0ALICE");
    assert_eq!(posted.channel.value(), &dm_channel_of("U0ALICE"));
    assert_eq!(posted.message.origin.ts, posted.ts);

    let second = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ADMINS".into(),
            text("card"),
        ))
        .await
        .unwrap();
    assert!(second.ts.value() > posted.ts.value(), "ts are monotonic");

    let stored = fake.messages_in("D0ALICE");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["bot_id"], BOT_ID);
    assert_eq!(stored[0]["metadata"]["event_type"], "access_request");
    let call = &fake.calls_to("chat.postMessage")[0];
    assert_eq!(call.http_method, "POST");
    assert_eq!(call.arg("channel"), Some("U0ALICE"));
    assert!(call.ok());
}

trait WithMetadata {
    fn with_blocks_metadata(self) -> Self;
}

impl WithMetadata for SlackApiChatPostMessageRequest {
    fn with_blocks_metadata(mut self) -> Self {
        self.content = self
            .content
            .with_blocks(vec![section("*Figma* for <@U0ALICE>")])
            .with_metadata(
                SlackMessageMetadata::new("access_request".into()).with_event_payload(
                    [("request_id".to_string(), "42".to_string())]
                        .into_iter()
                        .collect(),
                ),
            );
        self
    }
}

#[tokio::test]
async fn replies_in_a_thread_are_kept_with_their_parent() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let parent = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ADMINS".into(),
            text("card"),
        ))
        .await
        .unwrap();
    let user_reply = fake.add_user_message("C0ADMINS", "U0BOB", "why?", Some(parent.ts.value()));
    session
        .chat_post_message(
            &SlackApiChatPostMessageRequest::new("C0ADMINS".into(), text("relayed"))
                .with_thread_ts(parent.ts.clone()),
        )
        .await
        .unwrap();

    let replies = session
        .conversations_replies(&SlackApiConversationsRepliesRequest::new(
            "C0ADMINS".into(),
            parent.ts.clone(),
        ))
        .await
        .expect("conversations.replies accepted");
    let texts: Vec<_> = replies
        .messages
        .iter()
        .map(|m| m.content.text.clone().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["card", "why?", "relayed"]);
    assert_eq!(fake.thread_replies("C0ADMINS", parent.ts.value()).len(), 2);
    assert_eq!(
        fake.thread_replies("C0ADMINS", parent.ts.value())[0]["ts"],
        user_reply
    );

    // Replying to a reply is refused, as Slack asks for the parent's ts.
    let code = api_error_code(
        session
            .chat_post_message(
                &SlackApiChatPostMessageRequest::new("C0ADMINS".into(), text("x"))
                    .with_thread_ts(user_reply.into()),
            )
            .await,
    );
    assert_eq!(code, "cannot_reply_to_message");
}

#[tokio::test]
async fn updating_a_message_replaces_it_and_unknown_messages_are_not_found() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let posted = session
        .chat_post_message(
            &SlackApiChatPostMessageRequest::new("U0ALICE".into(), text("pending"))
                .with_blocks_metadata(),
        )
        .await
        .unwrap();

    let updated = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            posted.channel.clone(),
            text("approved").with_blocks(vec![section("Approved by <@U0BOB>")]),
            posted.ts.clone(),
        ))
        .await
        .expect("chat.update accepted");
    assert_eq!(updated.ts, posted.ts);
    assert_eq!(updated.message.content.text.as_deref(), Some("approved"));
    let stored = fake.message("D0ALICE", posted.ts.value()).unwrap();
    assert_eq!(stored["text"], "approved");
    assert_eq!(stored["blocks"][0]["text"]["text"], "Approved by <@U0BOB>");
    assert_eq!(
        stored["metadata"]["event_type"], "access_request",
        "metadata is kept"
    );
    assert!(stored.get("edited").is_some());

    let code = api_error_code(
        session
            .chat_update(&SlackApiChatUpdateRequest::new(
                posted.channel.clone(),
                text("x"),
                "1699999999.000001".into(),
            ))
            .await,
    );
    assert_eq!(code, "message_not_found");
}

#[tokio::test]
async fn ephemerals_and_conversations_open_answer_like_slack() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    session
        .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
            "C0ADMINS".into(),
            "U0MALLORY".into(),
            text("You are not an approver of this request."),
        ))
        .await
        .expect("chat.postEphemeral accepted");
    assert_eq!(fake.ephemerals_for("U0MALLORY").len(), 1);
    assert!(fake.calls_to("chat.postEphemeral")[0].response["message_ts"].is_string());

    let opened = session
        .conversations_open(
            &SlackApiConversationsOpenRequest::new().with_users(vec!["U0ALICE".into()]),
        )
        .await
        .expect("conversations.open accepted");
    assert_eq!(opened.channel.id.value(), "D0ALICE");
}

#[tokio::test]
async fn history_lists_newest_first_with_metadata_only_when_asked() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    for n in 0..3 {
        session
            .chat_post_message(
                &SlackApiChatPostMessageRequest::new("C0ADMINS".into(), text(&format!("card {n}")))
                    .with_blocks_metadata(),
            )
            .await
            .unwrap();
    }
    let history = session
        .conversations_history(
            &SlackApiConversationsHistoryRequest::new()
                .with_channel("C0ADMINS".into())
                .with_limit(2)
                .with_include_all_metadata(true),
        )
        .await
        .expect("conversations.history accepted");
    assert_eq!(history.has_more, Some(true));
    let texts: Vec<_> = history
        .messages
        .iter()
        .map(|m| m.content.text.clone().unwrap())
        .collect();
    assert_eq!(texts, ["card 2", "card 1"]);
    let metadata = history.messages[0]
        .content
        .metadata
        .clone()
        .expect("metadata");
    assert_eq!(metadata.event_type, "access_request");
    assert_eq!(metadata.event_payload.unwrap()["request_id"], "42");
    assert_eq!(fake.calls_to("conversations.history")[0].http_method, "GET");

    let without = session
        .conversations_history(
            &SlackApiConversationsHistoryRequest::new().with_channel("C0ADMINS".into()),
        )
        .await
        .unwrap();
    assert_eq!(without.messages.len(), 3);
    assert!(without
        .messages
        .iter()
        .all(|m| m.content.metadata.is_none()));
}

#[tokio::test]
async fn a_trigger_id_opens_one_view_and_views_are_stateful() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let trigger: SlackTriggerId = signer::trigger_id().into();

    let opened = session
        .views_open(&SlackApiViewsOpenRequest::new(
            trigger.clone(),
            modal("Send feedback"),
        ))
        .await
        .expect("views.open accepted");
    let id = opened.view.state_params.id.clone();
    assert!(id.value().starts_with('V'));
    assert_eq!(
        fake.view(id.value()).unwrap()["private_metadata"],
        "{\"request\":1}"
    );

    let again = session
        .views_open(&SlackApiViewsOpenRequest::new(
            trigger,
            modal("Send feedback"),
        ))
        .await;
    assert_eq!(api_error_code(again), "exchanged_trigger_id");

    let updated = session
        .views_update(
            &SlackApiViewsUpdateRequest::new(modal("Sent"))
                .with_view_id(id.clone())
                .with_hash(opened.view.state_params.hash.clone()),
        )
        .await
        .expect("views.update accepted");
    assert_eq!(updated.view.state_params.id, id);
    assert_ne!(
        updated.view.state_params.hash,
        opened.view.state_params.hash
    );
    let stale = session
        .views_update(
            &SlackApiViewsUpdateRequest::new(modal("Late"))
                .with_view_id(id.clone())
                .with_hash(opened.view.state_params.hash.clone()),
        )
        .await;
    assert_eq!(api_error_code(stale), "hash_conflict");

    let pushed = session
        .views_push(&SlackApiViewsPushRequest::new(
            signer::trigger_id().into(),
            modal("Step 2"),
        ))
        .await
        .expect("views.push accepted");
    assert_eq!(pushed.view.state_params.previous_view_id, Some(id));

    // The fake's stateful view is what a view_submission payload is built from.
    let view = fake.last_modal().unwrap();
    let payload = signer::view_submission("U0ALICE", &view, json!({}));
    assert!(serde_json::from_value::<SlackInteractionEvent>(payload).is_ok());
}

#[tokio::test]
async fn publishing_a_home_view_keeps_the_latest_per_user() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let home = |text: &str| SlackView::Home(SlackHomeView::new(vec![section(text)]));
    let first = session
        .views_publish(&SlackApiViewsPublishRequest::new(
            "U0ALICE".into(),
            home("No tasks"),
        ))
        .await
        .expect("views.publish accepted");
    let second = session
        .views_publish(&SlackApiViewsPublishRequest::new(
            "U0ALICE".into(),
            home("1 task"),
        ))
        .await
        .unwrap();
    assert_eq!(first.view.state_params.id, second.view.state_params.id);
    let stored = fake.home_of("U0ALICE").unwrap();
    assert_eq!(stored["blocks"][0]["text"]["text"], "1 task");
    assert!(fake.home_of("U0BOB").is_none());
}

#[tokio::test]
async fn users_info_and_auth_test_are_served_over_get() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let user = session
        .users_info(&SlackApiUsersInfoRequest::new("U0ALICE".into()))
        .await
        .expect("users.info accepted");
    assert_eq!(user.user.id.value(), "U0ALICE");
    assert_eq!(fake.calls_to("users.info")[0].http_method, "GET");
    let auth = session.auth_test().await.expect("auth.test accepted");
    assert_eq!(
        auth.user_id.value(),
        crate::support::fake_slack::BOT_USER_ID
    );
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused_like_slack() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let wrong = token("xoxb-wrong");
    let code = api_error_code(client.open_session(&wrong).auth_test().await);
    assert_eq!(code, "invalid_auth");

    let http = reqwest::Client::new();
    let body: Value = http
        .post(format!("{}/chat.postMessage", fake.api_url()))
        .json(&json!({"channel": "C1", "text": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"ok": false, "error": "not_authed"}));
    let unknown: Value = http
        .post(format!("{}/chat.teleport", fake.api_url()))
        .bearer_auth(DEFAULT_BOT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unknown, json!({"ok": false, "error": "unknown_method"}));
}

#[tokio::test]
async fn form_posts_and_query_strings_are_understood() {
    let fake = FakeSlack::start().await;
    let http = reqwest::Client::new();
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]).to_string();
    let form = signer::form(&[
        ("token", DEFAULT_BOT_TOKEN),
        ("channel", "C0ADMINS"),
        ("text", "from a form"),
        ("blocks", &blocks),
    ]);
    let body: Value = http
        .post(format!("{}/chat.postMessage", fake.api_url()))
        .header("content-type", signer::FORM)
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(
        fake.messages_in("C0ADMINS")[0]["blocks"][0]["type"],
        "section"
    );
    let info: Value = http
        .get(format!("{}/users.info?user=U0BOB", fake.api_url()))
        .bearer_auth(DEFAULT_BOT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["user"]["id"], "U0BOB");
}

#[tokio::test]
async fn a_rate_limit_fault_surfaces_as_a_rate_limit_error_with_retry_after() {
    let fake = FakeSlack::start().await;
    fake.fail_next(
        "chat.postMessage",
        Fault::RateLimited {
            retry_after_secs: 7,
        },
    );
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let request = SlackApiChatPostMessageRequest::new("C0ADMINS".into(), text("card"));
    match session.chat_post_message(&request).await {
        Err(SlackClientError::RateLimitError(error)) => {
            assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
            assert_eq!(error.code.as_deref(), Some("ratelimited"));
        }
        other => panic!("expected a rate limit error, got {other:?}"),
    }
    assert!(
        fake.messages_in("C0ADMINS").is_empty(),
        "a refused call does nothing"
    );
    session
        .chat_post_message(&request)
        .await
        .expect("the fault is used once");
    assert_eq!(fake.calls_to("chat.postMessage")[0].status, 429);
}

#[tokio::test]
async fn a_server_error_fault_surfaces_as_an_http_error() {
    let fake = FakeSlack::start().await;
    fake.fail_next("chat.update", Fault::ServerError);
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let result = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            "C1".into(),
            text("x"),
            "1.2".into(),
        ))
        .await;
    match result {
        Err(SlackClientError::HttpError(error)) => assert_eq!(error.status_code.as_u16(), 500),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slack_error_fault_surfaces_as_an_api_error_with_its_code() {
    let fake = FakeSlack::start().await;
    fake.fail_next(
        "chat.postMessage",
        Fault::SlackError("channel_not_found".into()),
    );
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let code = api_error_code(
        session
            .chat_post_message(&SlackApiChatPostMessageRequest::new(
                "C0GONE".into(),
                text("x"),
            ))
            .await,
    );
    assert_eq!(code, "channel_not_found");
}

#[tokio::test]
async fn a_hanging_call_never_answers_but_does_not_block_other_calls() {
    let fake = FakeSlack::start().await;
    fake.fail_next("chat.postMessage", Fault::Hang);
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let request = SlackApiChatPostMessageRequest::new("C0ADMINS".into(), text("card"));
    let (hung, other) = tokio::join!(
        tokio::time::timeout(
            Duration::from_millis(500),
            session.chat_post_message(&request)
        ),
        async {
            fake.wait_until(|calls| calls.iter().any(|c| c.method == "chat.postMessage"))
                .await
                .unwrap();
            session.auth_test().await
        }
    );
    assert!(
        hung.is_err(),
        "the hanging call must time out on the client side"
    );
    other.expect("other calls are served meanwhile");
    assert!(fake.messages_in("C0ADMINS").is_empty());
}

#[tokio::test]
async fn a_dropped_answer_leaves_the_call_done_but_the_client_in_doubt() {
    let fake = FakeSlack::start().await;
    fake.fail_next("chat.postMessage", Fault::DropAfterProcessing);
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let result = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ADMINS".into(),
            text("card"),
        ))
        .await;
    assert!(
        result.is_err(),
        "the client must not see a success: {result:?}"
    );
    assert_eq!(
        fake.messages_in("C0ADMINS").len(),
        1,
        "the message was posted"
    );
    assert_eq!(
        fake.calls_to("chat.postMessage")[0].fault,
        Some(Fault::DropAfterProcessing)
    );
}

#[tokio::test]
async fn a_message_with_51_blocks_is_refused_as_invalid_blocks() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let blocks: Vec<SlackBlock> = (0..51).map(|n| section(&format!("line {n}"))).collect();
    let result = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ADMINS".into(),
            text("too much").with_blocks(blocks),
        ))
        .await;
    match result {
        Err(SlackClientError::ApiError(error)) => {
            assert_eq!(error.code, "invalid_blocks");
            let errors = error.errors.expect("errors listed");
            assert!(errors[0].contains("[json-pointer:/blocks]"), "{errors:?}");
        }
        other => panic!("expected invalid_blocks, got {other:?}"),
    }
    let response = &fake.calls_to("chat.postMessage")[0].response;
    assert!(response["response_metadata"]["messages"][0]
        .as_str()
        .unwrap()
        .starts_with("[ERROR] "));
    assert!(fake.messages_in("C0ADMINS").is_empty());
}

#[tokio::test]
async fn an_oversized_modal_is_refused_as_invalid_arguments() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let result = session
        .views_open(&SlackApiViewsOpenRequest::new(
            signer::trigger_id().into(),
            modal("A title that is far too long"),
        ))
        .await;
    assert_eq!(api_error_code(result), "invalid_arguments");
    let response = &fake.calls_to("views.open")[0].response;
    assert_eq!(
        response["response_metadata"]["messages"][0],
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    );
}

fn button(action_id: &str, text: &str, value: &str) -> Value {
    json!({"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": value})
}

fn rejected(surface: Surface, payload: Value) -> Vec<String> {
    match check_block_kit(surface, &payload) {
        Ok(()) => panic!("accepted: {payload}"),
        Err(rejection) => rejection.errors,
    }
}

#[test]
fn block_kit_limits_are_checked_like_slack() {
    let long = |n: usize| "x".repeat(n);
    let ok = json!({"text": "t", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": long(150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": long(3000)},
         "fields": (0..10).map(|_| json!({"type": "mrkdwn", "text": long(2000)})).collect::<Vec<_>>()},
        {"type": "actions", "block_id": long(255), "elements": [button(&long(255), &long(75), &long(2000))]},
    ]});
    check_block_kit(Surface::Message, &ok).expect("limits themselves are allowed");

    let cases = [
        (
            json!({"type": "section", "text": {"type": "mrkdwn", "text": long(3001)}}),
            "/blocks/0/text/text",
        ),
        (
            json!({"type": "section", "text": {"type": "mrkdwn", "text": ""}}),
            "/blocks/0/text/text",
        ),
        (
            json!({"type": "section", "fields": (0..11).map(|_| json!({"type": "mrkdwn", "text": "f"})).collect::<Vec<_>>()}),
            "/blocks/0/fields",
        ),
        (
            json!({"type": "section", "fields": [{"type": "mrkdwn", "text": long(2001)}]}),
            "/blocks/0/fields/0/text",
        ),
        (
            json!({"type": "header", "text": {"type": "plain_text", "text": long(151)}}),
            "/blocks/0/text/text",
        ),
        (
            json!({"type": "header", "text": {"type": "mrkdwn", "text": "h"}}),
            "/blocks/0/text/type",
        ),
        (
            json!({"type": "actions", "elements": [button("a", &long(76), "v")]}),
            "/blocks/0/elements/0/text/text",
        ),
        (
            json!({"type": "actions", "elements": [button("a", "t", &long(2001))]}),
            "/blocks/0/elements/0/value",
        ),
        (
            json!({"type": "actions", "elements": [button(&long(256), "t", "v")]}),
            "/blocks/0/elements/0/action_id",
        ),
        (
            json!({"type": "actions", "elements": [button("a", "t", "v"), button("a", "u", "v")]}),
            "/blocks/0/elements/1/action_id",
        ),
        (
            json!({"type": "actions", "block_id": long(256), "elements": [button("a", "t", "v")]}),
            "/blocks/0/block_id",
        ),
        (
            json!({"type": "actions", "elements": [{"type": "static_select", "action_id": "s", "options": [
            {"text": {"type": "plain_text", "text": long(76)}, "value": "v"}]}]}),
            "/blocks/0/elements/0/options/0/text/text",
        ),
        (
            json!({"type": "actions", "elements": [{"type": "static_select", "action_id": "s", "options": [
            {"text": {"type": "plain_text", "text": "t"}, "value": long(151)}]}]}),
            "/blocks/0/elements/0/options/0/value",
        ),
        (
            json!({"type": "actions", "elements": [{"type": "static_select", "action_id": "s", "options":
            (0..101).map(|n| json!({"text": {"type": "plain_text", "text": "t"}, "value": n.to_string()})).collect::<Vec<_>>()}]}),
            "/blocks/0/elements/0/options",
        ),
        (json!({"type": "carousel"}), "/blocks/0"),
    ];
    for (block, pointer) in cases {
        let errors = rejected(Surface::Message, json!({"text": "t", "blocks": [block]}));
        assert!(
            errors
                .iter()
                .any(|e| e.ends_with(&format!("[json-pointer:{pointer}]"))),
            "{block} should fail at {pointer}: {errors:?}"
        );
    }

    let no_text = check_block_kit(Surface::Message, &json!({"text": ""})).unwrap_err();
    assert_eq!(no_text.error, "no_text");
    let too_long = check_block_kit(Surface::Message, &json!({"text": long(40_001)})).unwrap_err();
    assert_eq!(too_long.error, "msg_too_long");
    check_block_kit(Surface::Message, &json!({"text": long(40_000)})).expect("40,000 is allowed");

    let view = |extra: Value| {
        let mut view = json!({"type": "modal", "title": {"type": "plain_text", "text": "Edit"},
            "submit": {"type": "plain_text", "text": "Save"},
            "blocks": [{"type": "input", "block_id": "b", "label": {"type": "plain_text", "text": "L"},
                        "element": {"type": "plain_text_input", "action_id": "a"}}]});
        for (key, value) in extra.as_object().unwrap() {
            view[key] = value.clone();
        }
        view
    };
    check_block_kit(Surface::Modal, &view(json!({}))).expect("a plain modal is fine");
    for (extra, pointer) in [
        (
            json!({"title": {"type": "plain_text", "text": long(25)}}),
            "/view/title/text",
        ),
        (
            json!({"submit": {"type": "plain_text", "text": long(25)}}),
            "/view/submit/text",
        ),
        (
            json!({"close": {"type": "plain_text", "text": long(25)}}),
            "/view/close/text",
        ),
        (json!({"submit": null}), "/view/submit"),
        (
            json!({"private_metadata": long(3001)}),
            "/view/private_metadata",
        ),
        (
            json!({"blocks": (0..101).map(|_| json!({"type": "divider"})).collect::<Vec<_>>()}),
            "/view/blocks",
        ),
    ] {
        let rejection = check_block_kit(Surface::Modal, &view(extra.clone())).unwrap_err();
        assert_eq!(rejection.error, "invalid_arguments");
        assert!(
            rejection
                .errors
                .iter()
                .any(|e| e.ends_with(&format!("[json-pointer:{pointer}]"))),
            "{extra} should fail at {pointer}: {:?}",
            rejection.errors
        );
    }
    let home_blocks: Vec<Value> = (0..100).map(|_| json!({"type": "divider"})).collect();
    check_block_kit(
        Surface::Home,
        &json!({"type": "home", "blocks": home_blocks}),
    )
    .expect("100 blocks fit a Home tab");
}

#[tokio::test]
async fn wait_for_reports_every_call_when_it_times_out() {
    let fake = FakeSlack::start().await;
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    client.open_session(&token).auth_test().await.unwrap();
    let error = fake
        .wait_for(|calls| calls.len() >= 2, Duration::from_millis(100))
        .await
        .unwrap_err();
    let dump = error.to_string();
    assert!(dump.contains("auth.test"), "{dump}");

    let waiter = {
        let fake = fake.clone();
        tokio::spawn(async move { fake.wait_for_ok_calls("chat.postMessage", 1).await })
    };
    client
        .open_session(&token)
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ADMINS".into(),
            text("x"),
        ))
        .await
        .unwrap();
    let calls = waiter.await.unwrap().expect("the waiter wakes on the call");
    assert_eq!(calls.len(), 1);
}

#[tokio::test]
async fn enforced_tiers_limit_posts_to_one_per_second_per_channel() {
    let fake = FakeSlack::start().await;
    fake.enforce_tiers(true);
    let client = client_for(&fake);
    let token = token(DEFAULT_BOT_TOKEN);
    let session = client.open_session(&token);
    let post = |channel: &str| SlackApiChatPostMessageRequest::new(channel.into(), text("card"));
    session.chat_post_message(&post("U0ALICE")).await.unwrap();
    session
        .chat_post_message(&post("U0BOB"))
        .await
        .expect("another channel has its own budget");
    match session.chat_post_message(&post("D0ALICE")).await {
        Err(SlackClientError::RateLimitError(error)) => {
            assert_eq!(error.retry_after, Some(Duration::from_secs(1)))
        }
        other => panic!("expected a rate limit error, got {other:?}"),
    }
    assert_eq!(fake.messages_in("U0ALICE").len(), 1);

    for _ in 0..50 {
        session
            .conversations_open(
                &SlackApiConversationsOpenRequest::new().with_users(vec!["U0ALICE".into()]),
            )
            .await
            .unwrap();
    }
    let over = session
        .conversations_open(
            &SlackApiConversationsOpenRequest::new().with_users(vec!["U0ALICE".into()]),
        )
        .await;
    assert!(
        matches!(over, Err(SlackClientError::RateLimitError(_))),
        "{over:?}"
    );
}
