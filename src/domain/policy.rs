//! Who may do what to a request, now: the one policy every surface asks (the decision
//! itself, the buttons of a card, the Edit and feedback forms, the App Home).

use chrono::{DateTime, Duration, Utc};

use super::{AccessRequest, Action, Actions, Actor, Status};

/// A part someone plays in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Requester,
    Target,
    Approver,
    Admin,
    /// The person who denied it.
    Denier,
    /// A caller of the HTTP API, acting for the operators.
    Api,
    /// accessbot itself.
    System,
}

/// The parts one actor plays in one request; none for an outsider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles(u8);

impl Roles {
    pub fn of(roles: &[Role]) -> Roles {
        Roles(roles.iter().fold(0, |bits, role| bits | 1 << *role as u8))
    }

    pub fn has(self, role: Role) -> bool {
        self.0 & 1 << role as u8 != 0
    }

    /// The roles of `actor` in `request`.
    pub fn in_request(request: &AccessRequest, actor: &Actor) -> Roles {
        let user = match actor {
            Actor::Api => return Roles::of(&[Role::Api]),
            Actor::System => return Roles::of(&[Role::System]),
            Actor::User(user) => user,
        };
        let denier = request.status == Status::Denied && request.decided_by.as_ref() == Some(user);
        [
            (Role::Requester, *user == request.requester),
            (Role::Target, *user == request.target_user),
            (Role::Approver, request.approvers.contains(user)),
            (Role::Admin, request.app_admins.contains(user)),
            (Role::Denier, denier),
        ]
        .into_iter()
        .filter(|(_, plays)| *plays)
        .fold(Roles::default(), |roles, (role, _)| {
            Roles(roles.0 | 1 << role as u8)
        })
    }
}

/// What `actor` may do to `request` at `now`.
pub fn allowed(request: &AccessRequest, actor: &Actor, now: DateTime<Utc>) -> Actions {
    allowed_to(request, Roles::in_request(request, actor), now)
}

/// What someone with `roles` may do to `request` at `now`.
///
/// Assignees decide their stage, but never approve, provision, edit or remove their own
/// request (denying it is always allowed to them); the requester cancels while it is pending;
/// the requester and the target release a grant; the API acts for the operators, and alone
/// closes a request that is not final.
pub fn allowed_to(request: &AccessRequest, roles: Roles, now: DateTime<Utc>) -> Actions {
    use Action::*;
    let own = roles.has(Role::Requester) || roles.has(Role::Target);
    let api = roles.has(Role::Api);
    let system = roles.has(Role::System);
    let may = |actions: &[Action], when: bool| -> Actions {
        if when {
            actions.iter().copied().collect()
        } else {
            Actions::NONE
        }
    };
    let stage = |assigned: bool, decide: Action| {
        may(&[decide, Edit], api || (assigned && !own))
            | may(&[Deny], api || assigned)
            | may(&[Cancel], api || roles.has(Role::Requester))
    };
    let by_status = match request.status {
        Status::PendingApproval => stage(roles.has(Role::Approver), Approve),
        Status::PendingProvisioning => stage(roles.has(Role::Admin), ConfirmProvisioning),
        Status::Provisioned => {
            let due = request.expires_at.is_some_and(|at| at <= now);
            let remind = !request.expiry_reminded && expiry_reminder_due(request, now);
            may(&[Release], api || own)
                | may(&[Expire], system && due)
                | may(&[RemindExpiry], system && remind)
        }
        Status::PendingDeprovisioning => {
            may(&[ConfirmRemoval], api || (roles.has(Role::Admin) && !own))
        }
        Status::Denied => may(
            &[SendFeedback],
            roles.has(Role::Denier) && request.denial_feedback.is_none(),
        ),
        Status::Canceled | Status::Expired => Actions::NONE,
    };
    let waiting = request.status.is_pending() && !request.stage_reminded;
    let open = Close.applies_in().contains(&request.status);
    by_status | may(&[RemindAssignees], system && waiting) | may(&[Close], api && open)
}

/// The requester hears a day before their access ends, or with a tenth of a shorter length
/// left.
fn expiry_reminder_due(request: &AccessRequest, now: DateTime<Utc>) -> bool {
    let (Some(expires_at), Some(length)) = (request.expires_at, request.access_length.duration())
    else {
        return false;
    };
    let lead = Duration::days(1).min(length / 10);
    now >= expires_at - lead && now < expires_at
}

/// Why `action` is not allowed to `actor`: shown to the person who tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Somebody got there first. `by` is who: a user id, `api` or `system`.
    #[error("This request was already {outcome} by {}.", plain_name(by))]
    AlreadyDecided { outcome: &'static str, by: String },
    #[error("Only {} can {} this request.", who.plural(), action.verb())]
    NotAssignee { who: Role, action: Action },
    #[error("You can't {} your own request.", action.verb())]
    OwnRequest { action: Action },
    #[error("This request is {}, so it can't be {}.", status.words(), action.past())]
    WrongStatus { status: Status, action: Action },
    #[error("Feedback on this denial was already sent by {}.", plain_name(by))]
    FeedbackAlreadySent { by: String },
    /// An operator closed it; `by` is the operator as they named themselves (free text).
    #[error("This request was already closed by an operator ({by}).")]
    Closed { by: String },
    #[error("Nothing changed.")]
    NothingChanged,
    #[error("{0}")]
    Invalid(super::ValidationError),
}

impl Refusal {
    /// Refusals that mean "somebody else got there first": an illegal transition (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Refusal::AlreadyDecided { .. }
                | Refusal::WrongStatus { .. }
                | Refusal::FeedbackAlreadySent { .. }
                | Refusal::Closed { .. }
        )
    }
}

/// How an actor's audit name reads in plain text.
pub fn plain_name(name: &str) -> &str {
    match name {
        "api" => "the access API",
        "system" => "accessbot",
        user => user,
    }
}

impl Role {
    /// "the approvers" in "Only the approvers can approve this request."
    pub fn plural(self) -> &'static str {
        match self {
            Role::Requester => "the requester",
            Role::Target => "the person who has the access or asked for it",
            Role::Approver => "the approvers",
            Role::Admin => "the app admins",
            Role::Denier => "the person who denied it",
            Role::Api => "the access API",
            Role::System => "accessbot",
        }
    }
}

/// `Ok` when `actor` may do `action` to `request` at `now`, otherwise why not.
pub fn permit(
    request: &AccessRequest,
    actor: &Actor,
    action: Action,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let roles = Roles::in_request(request, actor);
    if allowed_to(request, roles, now).contains(action) {
        return Ok(());
    }
    Err(refusal(request, roles, action))
}

/// Explains a refusal the policy made; decides nothing itself.
fn refusal(request: &AccessRequest, roles: Roles, action: Action) -> Refusal {
    let accessbot = roles.has(Role::System) || action.by_accessbot();
    if accessbot {
        return Refusal::NothingChanged;
    }
    if let Some(by) = &request.closed_by {
        return Refusal::Closed { by: by.clone() };
    }
    if !action.applies_in().contains(&request.status) {
        // "Already …" only when somebody moved the request past where the action applies
        // (closing applies until a request is final: then it always has moved on).
        let moved_on = action == Action::Close
            || action
                .applies_in()
                .iter()
                .all(|status| progress(*status) < progress(request.status));
        let already = if moved_on {
            already_decided(request, action)
        } else {
            None
        };
        return already.unwrap_or(Refusal::WrongStatus {
            status: request.status,
            action,
        });
    }
    let who = match action {
        Action::Approve => Role::Approver,
        Action::Cancel => Role::Requester,
        Action::Release => Role::Target,
        Action::Close => Role::Api,
        Action::SendFeedback if request.denial_feedback.is_some() => {
            return Refusal::FeedbackAlreadySent {
                by: request.decided_by.clone().unwrap_or_default(),
            }
        }
        Action::SendFeedback => Role::Denier,
        Action::Deny | Action::Edit if request.status == Status::PendingApproval => Role::Approver,
        _ => Role::Admin,
    };
    let own = roles.has(Role::Requester) || roles.has(Role::Target);
    if own && roles.has(who) {
        Refusal::OwnRequest { action }
    } else {
        Refusal::NotAssignee { who, action }
    }
}

/// How far along the lifecycle a status is: a request only ever moves forward.
fn progress(status: Status) -> u8 {
    match status {
        Status::PendingApproval => 0,
        Status::PendingProvisioning => 1,
        Status::Provisioned | Status::Denied | Status::Canceled => 2,
        Status::PendingDeprovisioning => 3,
        Status::Expired => 4,
    }
}

/// "Already approved by U1" when the request has moved on from where the actor thought.
fn already_decided(request: &AccessRequest, action: Action) -> Option<Refusal> {
    let (outcome, by) = match request.status {
        Status::PendingProvisioning => ("approved", request.approved_by.as_ref()?),
        Status::Provisioned => ("provisioned", request.decided_by.as_ref()?),
        Status::Denied => ("denied", request.decided_by.as_ref()?),
        Status::Canceled => ("canceled", request.decided_by.as_ref()?),
        Status::PendingDeprovisioning => match &request.released_by {
            Some(by) => ("released", by),
            // Its time ran out: nobody decided that, and a grant's own actions are over.
            None if action.applies_in().contains(&Status::Provisioned) => return None,
            None => ("provisioned", request.decided_by.as_ref()?),
        },
        Status::Expired => ("removed", request.removed_by.as_ref()?),
        Status::PendingApproval => return None,
    };
    Some(Refusal::AlreadyDecided {
        outcome,
        by: by.clone(),
    })
}
