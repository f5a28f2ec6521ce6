//! Identifiers shared by what the bot renders and what it handles when Slack calls back.
//! Buttons carry the request id (decimal) as their `value` (their `action_id`s are in the
//! table of actions, [`crate::domain::Action`]); modals carry it as `private_metadata`.

/// `callback_id`s of modals.
pub mod callback {
    pub const EDIT: &str = "edit_request";
    pub const FEEDBACK: &str = "deny_feedback";
    pub const NEW_REQUEST: &str = "new_request";
}

/// Input blocks of modals; each block's `block_id` equals its element's `action_id`,
/// so `response_action: errors` can name the field directly.
pub mod field {
    pub const APP: &str = "app";
    pub const PERMISSION: &str = "permission";
    pub const GROUPS: &str = "groups";
    pub const ACCESS_LENGTH: &str = "access_length";
    pub const COMMENT: &str = "comment";
    pub const TARGET_USER: &str = "target_user";
    pub const FEEDBACK: &str = "feedback";
}
