//! The two manifests create an app that has every scope and event the bot relies on:
//! `slack-manifest.yml` points Slack at the bot's endpoints, `slack-manifest.socket-mode.yml`
//! turns Socket Mode on and has no request URLs. Both validate against Slack's published
//! manifest schema (`data/slack-manifest.schema.1.0.0.json`, MIT, with its licence beside it).

use serde_json::Value;

const HTTP: &str = "slack-manifest.yml";
const SOCKET_MODE: &str = "slack-manifest.socket-mode.yml";

fn manifest(file: &str) -> Value {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{file} is at the top of the repository: {e}"));
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
    let manifest = manifest(HTTP);
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
fn the_socket_mode_manifest_turns_it_on_without_request_urls() {
    let manifest = manifest(SOCKET_MODE);
    let settings = &manifest["settings"];
    assert_eq!(settings["socket_mode_enabled"], true);
    assert_eq!(settings["interactivity"]["is_enabled"], true);
    assert!(settings["interactivity"].get("request_url").is_none());
    assert!(settings["event_subscriptions"].get("request_url").is_none());
    let command = &manifest["features"]["slash_commands"][0];
    assert_eq!(command["command"], "/access");
    assert!(command.get("url").is_none());
}

#[test]
fn both_manifests_have_every_scope_and_event_the_bot_needs() {
    for file in [HTTP, SOCKET_MODE] {
        let manifest = manifest(file);
        let scopes = strings(&manifest["oauth_config"]["scopes"]["bot"]);
        for scope in [
            "chat:write",
            "commands",
            "im:write",
            "im:history",
            "channels:history",
            "groups:history",
            // The users directory: users.info, and the email in its profile.
            "users:read",
            "users:read.email",
        ] {
            assert!(scopes.contains(&scope), "{file}: missing scope {scope}");
        }
        let events = strings(&manifest["settings"]["event_subscriptions"]["bot_events"]);
        for event in [
            "app_home_opened",
            "message.im",
            "message.channels",
            "message.groups",
        ] {
            assert!(events.contains(&event), "{file}: missing event {event}");
        }
        let home = &manifest["features"]["app_home"];
        assert_eq!(home["home_tab_enabled"], true, "{file}");
        assert_eq!(home["messages_tab_enabled"], true, "{file}");
        assert_eq!(home["messages_tab_read_only_enabled"], false, "{file}");
    }
}

#[test]
fn both_manifests_follow_slacks_schema() {
    let schema: Value = serde_json::from_str(include_str!("data/slack-manifest.schema.1.0.0.json"))
        .expect("the schema is JSON");
    for file in [HTTP, SOCKET_MODE] {
        let mut problems = Vec::new();
        check(&schema, &schema, &manifest(file), "", &mut problems);
        assert!(problems.is_empty(), "{file}: {problems:#?}");
    }
    // The checker does catch what the schema forbids.
    let mut wrong = manifest(SOCKET_MODE);
    wrong["settings"]["socket_mode"] = Value::Bool(true);
    wrong["display_information"]["name"] = Value::from(7);
    let mut problems = Vec::new();
    check(&schema, &schema, &wrong, "", &mut problems);
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

/// Checks `value` against `schema` for the keywords Slack's manifest schema uses: `$ref`,
/// `type`, `enum`, `properties`, `required`, `additionalProperties`, `patternProperties`
/// (its patterns all match any name), `items`, the length and count bounds, and `anyOf`.
/// (`pattern` is not checked: it would need a regex engine for a handful of string formats.)
fn check(root: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/definitions/");
        return check(root, &root["definitions"][name], value, at, problems);
    }
    if let Some(branches) = schema["anyOf"].as_array() {
        let fits = branches.iter().any(|branch| {
            let mut inner = Vec::new();
            check(root, branch, value, at, &mut inner);
            inner.is_empty()
        });
        if !fits {
            problems.push(format!("{at}: fits none of anyOf"));
        }
    }
    if let Some(kind) = schema["type"].as_str() {
        let fits = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => true,
        };
        if !fits {
            problems.push(format!("{at}: is not a {kind}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            problems.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    let bound = |name: &str| schema[name].as_u64().map(|n| n as usize);
    if let Some(text) = value.as_str() {
        let length = text.chars().count();
        if bound("maxLength").is_some_and(|max| length > max)
            || bound("minLength").is_some_and(|min| length < min)
        {
            problems.push(format!("{at}: length {length} out of bounds"));
        }
    }
    if let Some(items) = value.as_array() {
        if bound("maxItems").is_some_and(|max| items.len() > max)
            || bound("minItems").is_some_and(|min| items.len() < min)
        {
            problems.push(format!("{at}: {} items out of bounds", items.len()));
        }
        if schema.get("items").is_some() {
            for (i, item) in items.iter().enumerate() {
                check(
                    root,
                    &schema["items"],
                    item,
                    &format!("{at}[{i}]"),
                    problems,
                );
            }
        }
    }
    if let Some(object) = value.as_object() {
        for required in strings(&schema["required"]) {
            if !object.contains_key(required) {
                problems.push(format!("{at}: {required} is missing"));
            }
        }
        let pattern_schema = schema["patternProperties"]
            .as_object()
            .and_then(|patterns| patterns.values().next());
        for (key, item) in object {
            let path = format!("{at}.{key}");
            match (schema["properties"].get(key), pattern_schema) {
                (Some(property), _) => check(root, property, item, &path, problems),
                (None, Some(pattern)) => check(root, pattern, item, &path, problems),
                (None, None) if schema["additionalProperties"] == Value::Bool(false) => {
                    problems.push(format!("{path}: not allowed here"));
                }
                (None, None) => {}
            }
        }
    }
}
