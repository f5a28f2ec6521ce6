//! `users.*`: who a user is, by id or by email.

use serde_json::{json, Value};

use super::server::error;
use super::world::{str_arg, World};
use super::{BOT_USER_ID, TEAM_ID};

impl World {
    pub(super) fn user_object(&self, user: &str) -> Option<Value> {
        if let Some(custom) = self.users.get(user) {
            return Some(custom.clone());
        }
        if !(user.starts_with('U') || user.starts_with('W')) || user.len() < 2 {
            return None;
        }
        let name = user.to_lowercase();
        Some(json!({
            "id": user,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": false,
            "real_name": format!("User {user}"),
            "tz": "UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "is_admin": false,
            "is_owner": false,
            "is_bot": user == BOT_USER_ID,
            "is_app_user": false,
            "updated": 1_700_000_000,
            "profile": {
                "real_name": format!("User {user}"),
                "display_name": name,
                "email": format!("{name}@example.com"),
                "team": TEAM_ID,
            },
        }))
    }

    pub(super) fn user_info(&mut self, args: &Value) -> Value {
        match str_arg(args, "user").and_then(|u| self.user_object(u)) {
            Some(user) => json!({"ok": true, "user": user}),
            None => error("user_not_found"),
        }
    }

    pub(super) fn lookup_by_email(&mut self, args: &Value) -> Value {
        let Some(email) = str_arg(args, "email") else {
            return error("users_not_found");
        };
        let custom = self
            .users
            .values()
            .find(|u| u["profile"]["email"] == email)
            .cloned();
        let derived = email
            .strip_suffix("@example.com")
            .map(str::to_uppercase)
            .and_then(|id| self.user_object(&id));
        match custom.or(derived) {
            Some(user) => json!({"ok": true, "user": user}),
            None => error("users_not_found"),
        }
    }
}
