//! Identifiers shared by what the bot renders and what it handles when Slack calls back.
//! Buttons carry the request id (decimal) as their `value`; modals carry it as
//! `private_metadata`.

/// `action_id`s of buttons.
pub mod action {
    pub const APPROVE: &str = "approve";
    pub const DENY: &str = "deny";
    pub const CONFIRM_PROVISIONING: &str = "confirm_provisioning";
    pub const EDIT: &str = "edit";
    pub const SEND_FEEDBACK: &str = "send_feedback";
    pub const CONFIRM_REMOVAL: &str = "confirm_removal";
    pub const CANCEL_REQUEST: &str = "cancel_request";
}

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
