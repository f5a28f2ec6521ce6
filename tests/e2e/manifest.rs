//! `slack-manifest.yml` creates an app that reaches every endpoint and has every scope and
//! event the bot relies on. (The file also validates against Slack's published manifest
//! schema, `shared/reference/slack-manifest.schema.1.0.0.json`.)

use serde_json::Value;

fn manifest() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/slack-manifest.yml"))
        .expect("slack-manifest.yml is at the top of the repository");
    serde_yaml::from_str(&text).expect("the manifest is YAML")
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn the_manifest_points_slack_at_the_bots_endpoints() {
    let manifest = manifest();
    let settings = &manifest["settings"];
    let url = |value: &Value| value.as_str().unwrap_or_default().to_string();
    assert!(url(&settings["event_subscriptions"]["request_url"]).ends_with("/slack/events"));
    assert_eq!(settings["interactivity"]["is_enabled"], true);
    assert!(url(&settings["interactivity"]["request_url"]).ends_with("/slack/interactivity"));
    let command = &manifest["features"]["slash_commands"][0];
    assert_eq!(command["command"], "/access");
    assert!(url(&command["url"]).ends_with("/slack/commands"));
    assert_eq!(settings["socket_mode_enabled"], false);
}

#[test]
fn the_manifest_has_every_scope_and_event_the_bot_needs() {
    let manifest = manifest();
    let scopes = strings(&manifest["oauth_config"]["scopes"]["bot"]);
    for scope in [
        "chat:write",
        "commands",
        "im:write",
        "im:history",
        "channels:history",
        "groups:history",
    ] {
        assert!(scopes.contains(&scope), "missing scope {scope}");
    }
    let events = strings(&manifest["settings"]["event_subscriptions"]["bot_events"]);
    for event in [
        "app_home_opened",
        "message.im",
        "message.channels",
        "message.groups",
    ] {
        assert!(events.contains(&event), "missing event {event}");
    }
    let home = &manifest["features"]["app_home"];
    assert_eq!(home["home_tab_enabled"], true);
    assert_eq!(home["messages_tab_enabled"], true);
    assert_eq!(home["messages_tab_read_only_enabled"], false);
}
