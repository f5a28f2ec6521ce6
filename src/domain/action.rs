//! The table of actions: everything that can be done to a request, with the button that
//! offers it (when people click it) and the command a click runs. A new action is a variant
//! here, a row in [`super::policy`] and a transition in [`super::lifecycle`].

use super::{CardKind, Command, Status};

/// Something that can be done to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Approve,
    ConfirmProvisioning,
    ConfirmRemoval,
    Deny,
    Edit,
    SendFeedback,
    Cancel,
    Release,
    /// The access length has elapsed (accessbot only).
    Expire,
    /// Tell the requester their access ends soon (accessbot only).
    RemindExpiry,
    /// Tell the assignees the request waits for them (accessbot only).
    RemindAssignees,
    /// An operator closes a stuck request (the API only, no button).
    Close,
}

/// How a button looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonStyle {
    Plain,
    Primary,
    /// Red, and Slack asks "are you sure?" before the click counts.
    Danger,
}

/// The button that offers an action. `label`s marked (contract) in SPEC are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Button {
    /// Slack's `action_id`; what comes back when the button is clicked.
    pub action_id: &'static str,
    pub label: &'static str,
    pub style: ButtonStyle,
}

/// What clicking an action's button does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Click {
    /// Run this command at once.
    Run(Command),
    /// Ask for the new permission, groups and access length first.
    AskForEdit,
    /// Ask for the feedback text first.
    AskForFeedback,
}

const fn button(action_id: &'static str, label: &'static str, style: ButtonStyle) -> Button {
    Button {
        action_id,
        label,
        style,
    }
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::Approve,
        Action::ConfirmProvisioning,
        Action::ConfirmRemoval,
        Action::Deny,
        Action::Edit,
        Action::SendFeedback,
        Action::Cancel,
        Action::Release,
        Action::Expire,
        Action::RemindExpiry,
        Action::RemindAssignees,
        Action::Close,
    ];

    /// The button that offers this action; `None` for what only accessbot does.
    pub const fn button(self) -> Option<Button> {
        use ButtonStyle::{Danger, Plain, Primary};
        Some(match self {
            Action::Approve => button("approve", "Approve", Primary),
            Action::ConfirmProvisioning => {
                button("confirm_provisioning", "Confirm Provisioning", Primary)
            }
            Action::ConfirmRemoval => button("confirm_removal", "Confirm Removal", Primary),
            Action::Deny => button("deny", "Deny", Danger),
            Action::Edit => button("edit", "Edit", Plain),
            Action::SendFeedback => button("send_feedback", "Send feedback", Plain),
            Action::Cancel => button("cancel_request", "Cancel request", Danger),
            Action::Release => button("release_access", "Release access", Danger),
            Action::Expire | Action::RemindExpiry | Action::RemindAssignees | Action::Close => {
                return None
            }
        })
    }

    /// What accessbot alone does, on its own schedule: refused to it quietly
    /// ([`super::Refusal::NothingChanged`]) when there is nothing to do.
    pub fn by_accessbot(self) -> bool {
        matches!(
            self,
            Action::Expire | Action::RemindExpiry | Action::RemindAssignees
        )
    }

    /// The action whose button has this `action_id`.
    pub fn from_action_id(action_id: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| action.button().is_some_and(|b| b.action_id == action_id))
    }

    /// What a click on this action's button does; `None` for what has no button.
    pub fn on_click(self) -> Option<Click> {
        Some(match self {
            Action::Approve => Click::Run(Command::Approve),
            Action::ConfirmProvisioning => Click::Run(Command::ConfirmProvisioning),
            Action::ConfirmRemoval => Click::Run(Command::ConfirmRemoval),
            Action::Deny => Click::Run(Command::Deny),
            Action::Cancel => Click::Run(Command::Cancel),
            Action::Release => Click::Run(Command::Release),
            Action::Edit => Click::AskForEdit,
            Action::SendFeedback => Click::AskForFeedback,
            Action::Expire | Action::RemindExpiry | Action::RemindAssignees | Action::Close => {
                return None
            }
        })
    }

    /// The statuses in which this action can apply at all.
    pub fn applies_in(self) -> &'static [Status] {
        use Status::*;
        match self {
            Action::Approve => &[PendingApproval],
            Action::ConfirmProvisioning => &[PendingProvisioning],
            Action::ConfirmRemoval => &[PendingDeprovisioning],
            Action::Deny | Action::Edit | Action::Cancel => &[PendingApproval, PendingProvisioning],
            Action::SendFeedback => &[Denied],
            Action::Release | Action::Expire | Action::RemindExpiry => &[Provisioned],
            Action::RemindAssignees => {
                &[PendingApproval, PendingProvisioning, PendingDeprovisioning]
            }
            Action::Close => &[
                PendingApproval,
                PendingProvisioning,
                Provisioned,
                PendingDeprovisioning,
            ],
        }
    }

    /// "approve" in "Only the approvers can approve this request."
    pub fn verb(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::ConfirmProvisioning => "confirm provisioning of",
            Action::ConfirmRemoval => "confirm the removal of",
            Action::Deny => "deny",
            Action::Edit => "edit",
            Action::SendFeedback => "send feedback on",
            Action::Cancel => "cancel",
            Action::Release => "release",
            Action::Expire => "expire",
            Action::RemindExpiry | Action::RemindAssignees => "send a reminder about",
            Action::Close => "close",
        }
    }

    /// "approved" in "This request is denied, so it can't be approved."
    pub fn past(self) -> &'static str {
        match self {
            Action::Approve => "approved",
            Action::ConfirmProvisioning => "provisioned",
            Action::ConfirmRemoval => "removed",
            Action::Deny => "denied",
            Action::Edit => "edited",
            Action::SendFeedback => "given denial feedback",
            Action::Cancel => "canceled",
            Action::Release => "released",
            Action::Expire => "expired",
            Action::RemindExpiry | Action::RemindAssignees => "reminded about",
            Action::Close => "closed",
        }
    }
}

impl Command {
    /// The action this command carries out.
    pub fn action(&self) -> Action {
        match self {
            Command::Approve => Action::Approve,
            Command::Deny => Action::Deny,
            Command::ConfirmProvisioning => Action::ConfirmProvisioning,
            Command::ConfirmRemoval => Action::ConfirmRemoval,
            Command::Cancel => Action::Cancel,
            Command::Release => Action::Release,
            Command::Edit(_) => Action::Edit,
            Command::SendFeedback(_) => Action::SendFeedback,
            Command::Expire => Action::Expire,
            Command::RemindExpiry => Action::RemindExpiry,
            Command::RemindAssignees => Action::RemindAssignees,
            Command::Close { .. } => Action::Close,
        }
    }
}

impl CardKind {
    /// The actions whose buttons a card of this kind carries while the request is in
    /// `status`, in the order shown; each is shown only to whom the policy allows it.
    pub fn actions(self, status: Status) -> &'static [Action] {
        match (self, status) {
            (CardKind::Approval, Status::PendingApproval) => {
                &[Action::Approve, Action::Deny, Action::Edit]
            }
            (CardKind::Provisioning, Status::PendingProvisioning) => {
                &[Action::ConfirmProvisioning, Action::Deny, Action::Edit]
            }
            (CardKind::Removal, Status::PendingDeprovisioning) => &[Action::ConfirmRemoval],
            (CardKind::Approval | CardKind::Provisioning, Status::Denied) => {
                &[Action::SendFeedback]
            }
            (CardKind::Receipt, _) => &[Action::Cancel, Action::Release],
            _ => &[],
        }
    }

    /// The card that asks its recipient to act on a request in `status`, if any.
    pub fn stage_card(status: Status) -> Option<CardKind> {
        match status {
            Status::PendingApproval => Some(CardKind::Approval),
            Status::PendingProvisioning => Some(CardKind::Provisioning),
            Status::PendingDeprovisioning => Some(CardKind::Removal),
            _ => None,
        }
    }
}

/// A set of actions (what one person may do to one request now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actions(u16);

impl Actions {
    pub const NONE: Actions = Actions(0);

    fn bit(action: Action) -> u16 {
        1 << action as u16
    }

    pub fn with(self, action: Action) -> Actions {
        Actions(self.0 | Self::bit(action))
    }

    pub fn contains(self, action: Action) -> bool {
        self.0 & Self::bit(action) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions of the set, in the order of [`Action::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl std::ops::BitOr for Actions {
    type Output = Actions;

    fn bitor(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }
}

impl FromIterator<Action> for Actions {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        iter.into_iter().fold(Actions::NONE, Actions::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_button_has_its_own_action_id_and_comes_back_to_its_action() {
        for action in Action::ALL {
            if let Some(button) = action.button() {
                assert_eq!(Action::from_action_id(button.action_id), Some(action));
                assert!(action.on_click().is_some(), "{action:?} has a button");
            } else {
                assert_eq!(action.on_click(), None, "{action:?} has no button");
            }
        }
        assert_eq!(Action::from_action_id("no_such_action"), None);
    }

    #[test]
    fn a_set_of_actions_holds_exactly_what_was_put_in() {
        let set: Actions = [Action::Deny, Action::RemindAssignees]
            .into_iter()
            .collect();
        assert!(set.contains(Action::Deny) && set.contains(Action::RemindAssignees));
        assert!(!set.contains(Action::Approve));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Action::Deny, Action::RemindAssignees]
        );
        assert!(Actions::NONE.is_empty() && !set.is_empty());
    }
}
