//! Requesting from Slack: `/access` opens a modal on the catalog, choosing an app shows its
//! permissions and groups, and submitting files the request as the API would.

use serde_json::{json, Value};

use crate::support::fake_slack::FakeSlack;
use crate::support::signer::{
    self, multi_selected_value, selected_value, text_value, user_value, ButtonClick,
};
use crate::support::story::{
    asking_for, figma, file, number_of, put_app, story, wait_card, wait_for_state, APPROVER,
    OUTSIDER, REQUESTER,
};
use crate::support::test_app::TestApp;

const CHANNEL: &str = "CGENERAL1";

/// GitHub, a second app of the catalog.
fn github() -> Value {
    json!({
        "name": "GitHub",
        "admins": ["UADMGH01"],
        "approvers": [],
        "permissions": ["Read", "Write"],
        "groups": ["ops"],
        "admin_channel": null,
    })
}

/// The option values of the select with `action_id` in a view's blocks.
fn options_of(view: &Value, action_id: &str) -> Vec<String> {
    view["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("element"))
        .filter(|e| e["action_id"] == action_id)
        .flat_map(|e| e["options"].as_array().cloned().unwrap_or_default())
        .map(|o| o["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The block ids of a view.
fn block_ids(view: &Value) -> Vec<String> {
    view["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["block_id"].as_str().map(str::to_string))
        .collect()
}

/// `user` runs `/access` and the modal opens; returns its id.
async fn open_request_modal(app: &TestApp, user: &str) -> String {
    let (status, body) = app.slash_access(user, CHANNEL, "").await;
    assert_eq!(status, 200, "/access: {body}");
    assert!(
        body.is_null() || body.as_str() == Some(""),
        "/access answers nothing: {body}"
    );
    let opened = app
        .slack
        .wait_for_call("views.open", |c| c.ok())
        .await
        .expect("views.open");
    opened.response["view"]["id"]
        .as_str()
        .expect("the modal's id")
        .to_string()
}

/// `user` picks `slug` in the app select of the modal `view_id` and the bot updates the
/// modal; returns the updated view.
async fn choose_app(app: &TestApp, user: &str, view_id: &str, slug: &str, name: &str) -> Value {
    let slack: &FakeSlack = &app.slack;
    let updates = slack.ok_calls_to("views.update").len();
    let view = slack.view(view_id).expect("the modal");
    let mut payload =
        signer::block_actions_in_view(user, &view, &ButtonClick::new("app", "app", "", name));
    payload["actions"] = json!([{
        "type": "static_select",
        "action_id": "app",
        "block_id": "app",
        "selected_option": {"text": {"type": "plain_text", "text": name, "emoji": true}, "value": slug},
        "placeholder": {"type": "plain_text", "text": "Choose an app", "emoji": true},
        "action_ts": signer::action_ts(),
    }]);
    let (status, body) = app.slack_interactivity(&payload).await;
    assert_eq!(status, 200, "choosing {slug}: {body}");
    wait_for_state(slack, "views.update of the request modal", |s| {
        s.ok_calls_to("views.update").len() > updates
    })
    .await;
    let update = slack
        .ok_calls_to("views.update")
        .pop()
        .expect("views.update");
    assert_eq!(update.arg("view_id"), Some(view_id));
    slack.view(view_id).expect("the updated modal")
}

/// The requests of `user` through the API, newest first.
async fn requests_of(app: &TestApp, user: &str) -> Vec<Value> {
    let (status, body) = app.api_get(&format!("/api/v1/requests?user={user}")).await;
    assert_eq!(status, 200, "{body}");
    let list = body
        .get("requests")
        .or_else(|| body.get("items"))
        .unwrap_or(&body);
    list.as_array()
        .unwrap_or_else(|| panic!("a list of requests: {body}"))
        .clone()
}

story! {
    async fn slash_access_opens_the_catalog_and_files_the_request_like_the_api(env: StoryEnv) {
        let app = env.spawn().await;
        put_app(&app, "figma", figma(true, false)).await;
        put_app(&app, "github", github()).await;

        let view_id = open_request_modal(&app, REQUESTER).await;
        let modal = app.slack.view(&view_id).unwrap();
        assert_eq!(modal["type"], "modal");
        let mut apps = options_of(&modal, "app");
        apps.sort();
        assert_eq!(apps, ["figma", "github"]);
        assert!(
            !block_ids(&modal).contains(&"permission".to_string()),
            "no permissions before an app is chosen: {modal}"
        );

        let modal = choose_app(&app, REQUESTER, &view_id, "figma", "Figma").await;
        assert_eq!(options_of(&modal, "permission"), ["Member", "Admin"]);
        assert_eq!(options_of(&modal, "groups"), ["design", "eng"]);
        for field in ["access_length", "comment"] {
            assert!(block_ids(&modal).contains(&field.to_string()), "{modal}");
        }
        // Choosing another app shows that app's catalog instead.
        let other = choose_app(&app, REQUESTER, &view_id, "github", "GitHub").await;
        assert_eq!(options_of(&other, "permission"), ["Read", "Write"]);
        let modal = choose_app(&app, REQUESTER, &view_id, "figma", "Figma").await;

        let values = json!({
            "app": {"app": selected_value("Figma", "figma")},
            "permission": {"permission": selected_value("Admin", "Admin")},
            "groups": {"groups": multi_selected_value(&[("design", "design")])},
            "access_length": {"access_length": text_value(Some("7d"))},
            "comment": {"comment": text_value(Some("for the <launch>"))},
        });
        let (status, body) = app.submit_view(REQUESTER, &view_id, values).await;
        assert_eq!(status, 200);
        assert!(
            body.is_null() || body.get("response_action").is_none(),
            "the modal closes: {body}"
        );
        let _ = modal;

        let mine = requests_of(&app, REQUESTER).await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        let request = &mine[0];
        assert_eq!(request["app"], "figma");
        assert_eq!(
            request["target_user"], REQUESTER,
            "defaults to the submitter"
        );
        assert_eq!(request["requester"], REQUESTER);
        assert_eq!(request["permission"], "Admin");
        assert_eq!(request["groups"], json!(["design"]));
        assert_eq!(request["access_length"], "7d");
        assert_eq!(request["comment"], "for the <launch>");
        assert_eq!(request["status"], "pending_approval");
        assert_eq!(request["approvers"], json!([APPROVER]));
        let id = request["id"].as_i64().unwrap();

        // As the API would: a receipt for the requester, a card for the approver.
        wait_card(&app.slack, REQUESTER, "cancel_request", id).await;
        let card = wait_card(&app.slack, APPROVER, "approve", id).await;
        let text = card.text_now(&app.slack);
        assert!(text.contains("for the &lt;launch&gt;"), "{text}");
        assert!(text.contains("Admin"), "{text}");
        app.stop().await;
    }
}

story! {
    async fn the_request_modal_can_be_for_someone_else(env: StoryEnv) {
        let app = env.spawn().await;
        put_app(&app, "github", github()).await;
        let view_id = open_request_modal(&app, REQUESTER).await;
        choose_app(&app, REQUESTER, &view_id, "github", "GitHub").await;
        let values = json!({
            "app": {"app": selected_value("GitHub", "github")},
            "permission": {"permission": selected_value("Write", "Write")},
            "groups": {"groups": multi_selected_value(&[])},
            "access_length": {"access_length": text_value(None)},
            "comment": {"comment": text_value(Some("new hire"))},
            "target_user": {"target_user": user_value(OUTSIDER)},
        });
        let (status, body) = app.submit_view(REQUESTER, &view_id, values).await;
        assert_eq!(status, 200);
        assert!(body.is_null(), "{body}");
        let mine = requests_of(&app, OUTSIDER).await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["target_user"], OUTSIDER);
        assert_eq!(mine[0]["requester"], REQUESTER);
        assert_eq!(mine[0]["access_length"], "unlimited");
        // No approvers: straight to the app's admin.
        assert_eq!(mine[0]["status"], "pending_provisioning");
        let id = mine[0]["id"].as_i64().unwrap();
        wait_card(&app.slack, "UADMGH01", "confirm_provisioning", id).await;
        wait_card(&app.slack, REQUESTER, "cancel_request", id).await;
        app.stop().await;
    }
}

story! {
    async fn a_bad_submission_is_answered_with_field_errors(env: StoryEnv) {
        let app = env.spawn().await;
        put_app(&app, "figma", figma(true, false)).await;
        let view_id = open_request_modal(&app, REQUESTER).await;
        choose_app(&app, REQUESTER, &view_id, "figma", "Figma").await;
        let submit = |length: &str, permission: &str| {
            json!({
                "app": {"app": selected_value("Figma", "figma")},
                "permission": {"permission": selected_value(permission, permission)},
                "groups": {"groups": multi_selected_value(&[])},
                "access_length": {"access_length": text_value(Some(length))},
                "comment": {"comment": text_value(Some("please"))},
            })
        };

        let (status, body) = app
            .submit_view(REQUESTER, &view_id, submit("forever", "Member"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["response_action"], "errors", "{body}");
        let errors = body["errors"].as_object().expect("errors");
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["access_length"],
            "{body}"
        );
        assert!(errors["access_length"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));

        let (_, body) = app
            .submit_view(REQUESTER, &view_id, submit("7d", "Owner"))
            .await;
        assert_eq!(body["response_action"], "errors", "{body}");
        assert!(body["errors"].get("permission").is_some(), "{body}");

        assert!(requests_of(&app, REQUESTER).await.is_empty());
        assert!(app.slack.calls_to("chat.postMessage").is_empty());
        app.stop().await;
    }
}

story! {
    async fn access_help_and_list_answer_privately(env: StoryEnv) {
        let app = env.spawn().await;
        put_app(&app, "figma", figma(true, false)).await;
        put_app(&app, "github", github()).await;

        let (status, help) = app.slash_access(REQUESTER, CHANNEL, "help").await;
        assert_eq!(status, 200);
        assert_eq!(help["response_type"], "ephemeral", "{help}");
        let text = help["text"].as_str().unwrap();
        assert!(text.contains("/access list"), "{text}");
        assert!(text.contains("/access help"), "{text}");

        let (_, empty) = app.slash_access(REQUESTER, CHANNEL, "list").await;
        assert_eq!(empty["response_type"], "ephemeral", "{empty}");
        assert_eq!(empty["text"], "You have no open requests.");

        let open = number_of(&file(&app, "figma", asking_for("unlimited")).await.1);
        let canceled = number_of(&file(&app, "github", asking_for("unlimited")).await.1);
        let (status, _) = app
            .api_post(&format!("/api/v1/requests/{canceled}/cancel"), json!({}))
            .await;
        assert_eq!(status, 200);
        // Someone else's request is not in the requester's list.
        app.file_request(json!({"app": "figma", "target_user": OUTSIDER, "comment": "x"}))
            .await;

        let (_, list) = app.slash_access(REQUESTER, CHANNEL, "  LIST ").await;
        assert_eq!(list["response_type"], "ephemeral", "{list}");
        let text = list["text"].as_str().unwrap();
        assert!(
            text.contains(&format!(
                "#{open} *Figma* — Member — pending approval by <@{APPROVER}>"
            )),
            "{text}"
        );
        assert!(!text.contains(&format!("#{canceled} ")), "{text}");
        assert!(!text.contains("GitHub"), "{text}");
        assert_eq!(text.lines().count(), 2, "a heading and one request: {text}");
        // Nothing was opened for help or list.
        assert!(app.slack.calls_to("views.open").is_empty());
        app.stop().await;
    }
}

story! {
    /// A submission of the request form sent again (by Slack, or by anyone holding the
    /// signed copy within its five minutes) files nothing twice; a new modal is a new request.
    async fn a_replayed_request_form_files_once(env: StoryEnv) {
        let app = env.spawn().await;
        put_app(&app, "figma", figma(true, false)).await;
        let form = json!({
            "app": {"app": selected_value("Figma", "figma")},
            "permission": {"permission": selected_value("Member", "Member")},
            "groups": {"groups": multi_selected_value(&[])},
            "access_length": {"access_length": text_value(Some("7d"))},
            "comment": {"comment": text_value(Some("for the launch"))},
        });
        let view_id = open_request_modal(&app, REQUESTER).await;
        choose_app(&app, REQUESTER, &view_id, "figma", "Figma").await;
        let view = app.slack.view(&view_id).expect("the modal");
        let submission = signer::view_submission(REQUESTER, &view, form.clone());
        for _ in 0..3 {
            let (status, body) = app.slack_interactivity(&submission).await;
            assert_eq!(status, 200, "{body}");
            assert!(
                body.is_null() || body.get("response_action").is_none(),
                "the modal closes each time: {body}"
            );
        }
        let mine = requests_of(&app, REQUESTER).await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        wait_card(&app.slack, APPROVER, "approve", number_of(&mine[0])).await;

        // A second modal, with the same answers: a second request.
        let opened = app.slack.ok_calls_to("views.open").len();
        let (status, _) = app.slash_access(REQUESTER, CHANNEL, "").await;
        assert_eq!(status, 200);
        wait_for_state(&app.slack, "a second modal", |s| {
            s.ok_calls_to("views.open").len() > opened
        })
        .await;
        let second = app.slack.ok_calls_to("views.open").pop().expect("views.open").response
            ["view"]["id"]
            .as_str()
            .expect("the modal's id")
            .to_string();
        assert_ne!(second, view_id);
        choose_app(&app, REQUESTER, &second, "figma", "Figma").await;
        let (status, body) = app.submit_view(REQUESTER, &second, form).await;
        assert_eq!(status, 200, "{body}");
        let mine = requests_of(&app, REQUESTER).await;
        assert_eq!(mine.len(), 2, "{mine:?}");
        wait_card(&app.slack, APPROVER, "approve", number_of(&mine[0])).await;
        app.stop().await;
    }
}
