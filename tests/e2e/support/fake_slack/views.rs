//! `views.*`: modals (open, push, update) and the Home tab (publish), with trigger_ids.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::block_kit::{check_block_kit, Surface};
use super::server::error;
use super::world::{str_arg, World};
use super::{APP_ID, BOT_ID, TEAM_ID, TRIGGER_LIFETIME};

impl World {
    pub(super) fn take_trigger(&mut self, trigger_id: Option<&str>) -> Result<(), Value> {
        let Some(trigger_id) = trigger_id else {
            return Err(error("invalid_trigger_id"));
        };
        let parts: Vec<&str> = trigger_id.split('.').collect();
        let well_formed = parts.len() == 3
            && parts[0].chars().all(|c| c.is_ascii_digit())
            && parts[1].chars().all(|c| c.is_ascii_digit())
            && !parts[0].is_empty()
            && parts[2].chars().all(|c| c.is_ascii_alphanumeric());
        if !well_formed {
            return Err(error("invalid_trigger_id"));
        }
        if self.used_triggers.contains(trigger_id) {
            return Err(error("exchanged_trigger_id"));
        }
        if self.enforce_trigger_expiry {
            // The signer's trigger ids start with the Unix time in milliseconds they were made.
            if let Ok(issued_ms) = parts[0].parse::<u128>() {
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                if issued_ms > 1_000_000_000_000
                    && now_ms.saturating_sub(issued_ms) > TRIGGER_LIFETIME.as_millis()
                {
                    return Err(error("expired_trigger_id"));
                }
            }
        }
        self.used_triggers.insert(trigger_id.to_string());
        Ok(())
    }

    pub(super) fn stateful_view(
        &mut self,
        id: &str,
        view: &Value,
        root: &str,
        previous: Option<&str>,
    ) -> Value {
        let mut full = view.as_object().cloned().unwrap_or_default();
        let hash = self.next_hash();
        let defaults = [
            ("private_metadata", json!("")),
            ("callback_id", json!("")),
            ("external_id", json!("")),
            ("clear_on_close", json!(false)),
            ("notify_on_close", json!(false)),
        ];
        for (key, value) in defaults {
            if full.get(key).is_none_or(Value::is_null) {
                full.insert(key.to_string(), value);
            }
        }
        full.insert("id".into(), json!(id));
        full.insert("team_id".into(), json!(TEAM_ID));
        full.insert("state".into(), json!({"values": {}}));
        full.insert("hash".into(), json!(hash));
        full.insert("previous_view_id".into(), json!(previous));
        full.insert("root_view_id".into(), json!(root));
        full.insert("app_id".into(), json!(APP_ID));
        full.insert("app_installed_team_id".into(), json!(TEAM_ID));
        full.insert("bot_id".into(), json!(BOT_ID));
        Value::Object(full)
    }

    pub(super) fn open_view(&mut self, args: &Value, push: bool) -> Value {
        let Some(view) = args.get("view").filter(|v| v.is_object()) else {
            return error("invalid_arguments");
        };
        if let Err(rejection) = check_block_kit(Surface::Modal, view) {
            return rejection.to_response();
        }
        let trigger =
            str_arg(args, "trigger_id").or_else(|| str_arg(args, "interactivity_pointer"));
        if let Err(refusal) = self.take_trigger(trigger) {
            return refusal;
        }
        if let Some(external_id) = str_arg(view, "external_id").filter(|e| !e.is_empty()) {
            if self.views.values().any(|v| v["external_id"] == external_id) {
                return error("duplicate_external_id");
            }
        }
        let id = format!("V{:010}", self.next_id());
        let (root, previous) = match (push, self.last_modal.clone()) {
            (true, Some(previous)) => {
                let root = self.views[&previous]["root_view_id"]
                    .as_str()
                    .unwrap_or(&previous)
                    .to_string();
                let depth = self
                    .views
                    .values()
                    .filter(|v| v["root_view_id"] == root.as_str())
                    .count();
                if depth >= 3 {
                    return error("push_limit_reached");
                }
                (root, Some(previous))
            }
            _ => (id.clone(), None),
        };
        let full = self.stateful_view(&id, view, &root, previous.as_deref());
        self.views.insert(id.clone(), full.clone());
        self.last_modal = Some(id);
        json!({"ok": true, "view": full})
    }

    pub(super) fn update_view(&mut self, args: &Value) -> Value {
        let Some(view) = args.get("view").filter(|v| v.is_object()) else {
            return error("invalid_arguments");
        };
        let id = match (str_arg(args, "view_id"), str_arg(args, "external_id")) {
            (Some(id), _) => self.views.contains_key(id).then(|| id.to_string()),
            (None, Some(external)) => self
                .views
                .iter()
                .find(|(_, v)| v["external_id"] == external)
                .map(|(id, _)| id.clone()),
            (None, None) => return error("invalid_arguments"),
        };
        let Some(id) = id else {
            return error("not_found");
        };
        let surface = if self.views[&id]["type"] == "home" {
            Surface::Home
        } else {
            Surface::Modal
        };
        if let Err(rejection) = check_block_kit(surface, view) {
            return rejection.to_response();
        }
        if let Some(hash) = str_arg(args, "hash") {
            if self.views[&id]["hash"] != hash {
                return error("hash_conflict");
            }
        }
        let old = self.views[&id].clone();
        let root = old["root_view_id"].as_str().unwrap_or(&id).to_string();
        let previous = old["previous_view_id"].as_str().map(str::to_string);
        let full = self.stateful_view(&id, view, &root, previous.as_deref());
        self.views.insert(id, full.clone());
        json!({"ok": true, "view": full})
    }

    pub(super) fn publish_view(&mut self, args: &Value) -> Value {
        let Some(user) = str_arg(args, "user_id") else {
            return error("invalid_arguments");
        };
        let Some(view) = args.get("view").filter(|v| v.is_object()) else {
            return error("invalid_arguments");
        };
        if let Err(rejection) = check_block_kit(Surface::Home, view) {
            return rejection.to_response();
        }
        let id = match self.homes.get(user) {
            Some(id) => id.clone(),
            None => format!("V{:010}", self.next_id()),
        };
        if let (Some(hash), Some(current)) = (str_arg(args, "hash"), self.views.get(&id)) {
            if current["hash"] != hash {
                return error("hash_conflict");
            }
        }
        let full = self.stateful_view(&id, view, &id, None);
        self.views.insert(id.clone(), full.clone());
        self.homes.insert(user.to_string(), id);
        json!({"ok": true, "view": full})
    }
}
