//! The policy as a table: every status × role × command, decided by [`decide`], checked
//! against outcomes written out by hand below (never computed from the policy itself).

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;

const REQUESTER: &str = "UREQ";
const TARGET: &str = "UTGT";
const APPROVER: &str = "UAPPR";
const ADMIN: &str = "UADM";
const OUTSIDER: &str = "UOUT";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn filed() -> AccessRequest {
    let hours = |h| now() - Duration::hours(h);
    AccessRequest {
        id: 7,
        app: "github".into(),
        app_name: "GitHub".into(),
        target_user: TARGET.into(),
        requester: REQUESTER.into(),
        permission: "Member".into(),
        groups: vec!["eng".into()],
        comment: "For the release".into(),
        access_length: "30d".parse().unwrap(),
        status: Status::PendingApproval,
        approvers: vec![APPROVER.into()],
        app_admins: vec![ADMIN.into()],
        admin_channel: Some("CADMINS".into()),
        created_at: hours(100),
        updated_at: hours(100),
        version: 1,
        ..Default::default()
    }
}

/// The request in each situation of the table, by name.
fn situation(name: &str) -> AccessRequest {
    let mut r = filed();
    let approved = |r: &mut AccessRequest| {
        r.approved_by = Some(APPROVER.into());
        r.approved_at = Some(now() - Duration::hours(90));
    };
    let provisioned = |r: &mut AccessRequest, ends: DateTime<Utc>| {
        r.status = Status::Provisioned;
        r.decided_by = Some(ADMIN.into());
        r.provisioned_at = Some(ends - Duration::days(30));
        r.expires_at = Some(ends);
    };
    match name {
        "pending_approval" => {}
        "pending_provisioning" => {
            approved(&mut r);
            r.status = Status::PendingProvisioning;
        }
        // Its access length has just run out.
        "provisioned, due" => {
            approved(&mut r);
            provisioned(&mut r, now());
        }
        // An hour left: time to remind the requester.
        "provisioned, ending soon" => {
            approved(&mut r);
            provisioned(&mut r, now() + Duration::hours(1));
        }
        // Ten days left: nothing for accessbot to do.
        "provisioned, ten days left" => {
            approved(&mut r);
            provisioned(&mut r, now() + Duration::days(10));
        }
        "denied" => {
            approved(&mut r);
            r.status = Status::Denied;
            r.decided_by = Some(ADMIN.into());
        }
        "canceled" => {
            r.status = Status::Canceled;
            r.decided_by = Some(REQUESTER.into());
        }
        "pending_deprovisioning" => {
            approved(&mut r);
            provisioned(&mut r, now() - Duration::hours(2));
            r.status = Status::PendingDeprovisioning;
        }
        "expired" => {
            approved(&mut r);
            provisioned(&mut r, now() - Duration::hours(2));
            r.status = Status::Expired;
            r.removed_by = Some(ADMIN.into());
        }
        other => panic!("no situation {other:?}"),
    }
    r
}

fn actor(role: &str) -> Actor {
    match role {
        "requester" => Actor::User(REQUESTER.into()),
        "target" => Actor::User(TARGET.into()),
        "approver" => Actor::User(APPROVER.into()),
        "admin" => Actor::User(ADMIN.into()),
        "outsider" => Actor::User(OUTSIDER.into()),
        "system" => Actor::System,
        "api" => Actor::Api,
        other => panic!("no role {other:?}"),
    }
}

/// Every command, by the name the table uses.
fn commands() -> Vec<(&'static str, Command)> {
    let edit = Edit {
        permission: "Admin".into(),
        groups: vec!["eng".into()],
        access_length: "30d".parse().unwrap(),
    };
    vec![
        ("approve", Command::Approve),
        ("deny", Command::Deny),
        ("confirm_provisioning", Command::ConfirmProvisioning),
        ("confirm_removal", Command::ConfirmRemoval),
        ("cancel", Command::Cancel),
        ("release", Command::Release),
        ("edit", Command::Edit(edit)),
        (
            "send_feedback",
            Command::SendFeedback("Use the viewer role".into()),
        ),
        ("expire", Command::Expire),
        ("remind_expiry", Command::RemindExpiry),
        ("remind_assignees", Command::RemindAssignees),
        ("close", close_command()),
    ]
}

/// An operator's close, as the API gives it.
fn close_command() -> Command {
    Command::Close {
        reason: "The approvers left the company".into(),
        operator: "ops-alice".into(),
    }
}

/// Situation, role, and the only commands that role may give there.
const TABLE: &[(&str, &str, &[&str])] = &[
    ("pending_approval", "requester", &["cancel"]),
    ("pending_approval", "target", &[]),
    ("pending_approval", "approver", &["approve", "deny", "edit"]),
    ("pending_approval", "admin", &[]),
    ("pending_approval", "outsider", &[]),
    ("pending_approval", "system", &["remind_assignees"]),
    (
        "pending_approval",
        "api",
        &["approve", "deny", "cancel", "edit", "close"],
    ),
    ("pending_provisioning", "requester", &["cancel"]),
    ("pending_provisioning", "target", &[]),
    ("pending_provisioning", "approver", &[]),
    (
        "pending_provisioning",
        "admin",
        &["deny", "confirm_provisioning", "edit"],
    ),
    ("pending_provisioning", "outsider", &[]),
    ("pending_provisioning", "system", &["remind_assignees"]),
    (
        "pending_provisioning",
        "api",
        &["deny", "confirm_provisioning", "cancel", "edit", "close"],
    ),
    ("provisioned, due", "requester", &["release"]),
    ("provisioned, due", "target", &["release"]),
    ("provisioned, due", "approver", &[]),
    ("provisioned, due", "admin", &[]),
    ("provisioned, due", "outsider", &[]),
    ("provisioned, due", "system", &["expire"]),
    ("provisioned, due", "api", &["release", "close"]),
    ("provisioned, ending soon", "requester", &["release"]),
    ("provisioned, ending soon", "target", &["release"]),
    ("provisioned, ending soon", "approver", &[]),
    ("provisioned, ending soon", "admin", &[]),
    ("provisioned, ending soon", "outsider", &[]),
    ("provisioned, ending soon", "system", &["remind_expiry"]),
    ("provisioned, ending soon", "api", &["release", "close"]),
    ("provisioned, ten days left", "requester", &["release"]),
    ("provisioned, ten days left", "target", &["release"]),
    ("provisioned, ten days left", "approver", &[]),
    ("provisioned, ten days left", "admin", &[]),
    ("provisioned, ten days left", "outsider", &[]),
    ("provisioned, ten days left", "system", &[]),
    ("provisioned, ten days left", "api", &["release", "close"]),
    ("denied", "requester", &[]),
    ("denied", "target", &[]),
    ("denied", "approver", &[]),
    ("denied", "admin", &["send_feedback"]),
    ("denied", "outsider", &[]),
    ("denied", "system", &[]),
    ("denied", "api", &[]),
    ("canceled", "requester", &[]),
    ("canceled", "target", &[]),
    ("canceled", "approver", &[]),
    ("canceled", "admin", &[]),
    ("canceled", "outsider", &[]),
    ("canceled", "system", &[]),
    ("canceled", "api", &[]),
    ("pending_deprovisioning", "requester", &[]),
    ("pending_deprovisioning", "target", &[]),
    ("pending_deprovisioning", "approver", &[]),
    ("pending_deprovisioning", "admin", &["confirm_removal"]),
    ("pending_deprovisioning", "outsider", &[]),
    ("pending_deprovisioning", "system", &["remind_assignees"]),
    (
        "pending_deprovisioning",
        "api",
        &["confirm_removal", "close"],
    ),
    ("expired", "requester", &[]),
    ("expired", "target", &[]),
    ("expired", "approver", &[]),
    ("expired", "admin", &[]),
    ("expired", "outsider", &[]),
    ("expired", "system", &[]),
    ("expired", "api", &[]),
];

/// The commands `decide` accepts from `actor` in `request`, by name.
fn accepted(request: &AccessRequest, actor: &Actor) -> Vec<&'static str> {
    commands()
        .into_iter()
        .filter(|(_, command)| decide(request, actor, command, now()).is_ok())
        .map(|(name, _)| name)
        .collect()
}

fn sorted(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names
}

#[test]
fn every_status_role_and_command_is_decided_as_the_table_says() {
    let situations = [
        "pending_approval",
        "pending_provisioning",
        "provisioned, due",
        "provisioned, ending soon",
        "provisioned, ten days left",
        "denied",
        "canceled",
        "pending_deprovisioning",
        "expired",
    ];
    let roles = [
        "requester",
        "target",
        "approver",
        "admin",
        "outsider",
        "system",
        "api",
    ];
    assert_eq!(
        TABLE.len(),
        situations.len() * roles.len(),
        "a row per pair"
    );
    for situation_name in situations {
        for role in roles {
            let row = TABLE
                .iter()
                .find(|(s, r, _)| *s == situation_name && *r == role)
                .unwrap_or_else(|| panic!("no row for {situation_name} × {role}"));
            let request = situation(situation_name);
            assert_eq!(
                sorted(accepted(&request, &actor(role))),
                sorted(row.2.to_vec()),
                "{situation_name} × {role}"
            );
        }
    }
}

#[test]
fn what_the_policy_allows_is_exactly_what_decide_accepts() {
    for (situation_name, role, _) in TABLE {
        let request = situation(situation_name);
        let actor = actor(role);
        let allowed = allowed(&request, &actor, now());
        for (name, command) in commands() {
            assert_eq!(
                allowed.contains(command.action()),
                decide(&request, &actor, &command, now()).is_ok(),
                "{situation_name} × {role} × {name}"
            );
        }
    }
}

/// People with two parts in one request.
#[test]
fn nobody_approves_provisions_edits_or_removes_their_own_request_but_may_deny_it() {
    let both = |situation_name: &str, change: fn(&mut AccessRequest)| {
        let mut request = situation(situation_name);
        change(&mut request);
        request
    };
    let cases: [(&str, AccessRequest, &str, &[&str]); 5] = [
        (
            "an approver who asked",
            both("pending_approval", |r| r.approvers.push(REQUESTER.into())),
            REQUESTER,
            &["cancel", "deny"],
        ),
        (
            "an approver who is the target",
            both("pending_approval", |r| r.approvers.push(TARGET.into())),
            TARGET,
            &["deny"],
        ),
        (
            "an admin who asked",
            both("pending_provisioning", |r| {
                r.app_admins.push(REQUESTER.into())
            }),
            REQUESTER,
            &["cancel", "deny"],
        ),
        (
            "an admin who is the target, at removal",
            both("pending_deprovisioning", |r| {
                r.app_admins.push(TARGET.into())
            }),
            TARGET,
            &[],
        ),
        (
            "an admin who is the target, once provisioned",
            both("provisioned, ten days left", |r| {
                r.app_admins.push(TARGET.into())
            }),
            TARGET,
            &["release"],
        ),
    ];
    for (who, request, user, expected) in cases {
        let actor = Actor::User(user.into());
        assert_eq!(
            sorted(accepted(&request, &actor)),
            sorted(expected.to_vec()),
            "{who}"
        );
    }
}

#[test]
fn refusals_say_why_with_user_ids_not_mentions() {
    let mut feedback_given = situation("denied");
    feedback_given.denial_feedback = Some("Use the viewer role".into());
    let mut own = situation("pending_approval");
    own.approvers.push(REQUESTER.into());
    let cases: [(AccessRequest, &str, Command, &str); 9] = [
        (
            situation("pending_provisioning"),
            APPROVER,
            Command::Approve,
            "This request was already approved by UAPPR.",
        ),
        (
            situation("pending_approval"),
            ADMIN,
            Command::Approve,
            "Only the approvers can approve this request.",
        ),
        (
            own,
            REQUESTER,
            Command::Approve,
            "You can't approve your own request.",
        ),
        (
            situation("pending_provisioning"),
            APPROVER,
            Command::Deny,
            "Only the app admins can deny this request.",
        ),
        (
            situation("pending_deprovisioning"),
            OUTSIDER,
            Command::ConfirmRemoval,
            "Only the app admins can confirm the removal of this request.",
        ),
        (
            situation("provisioned, ten days left"),
            OUTSIDER,
            Command::Release,
            "Only the person who has the access or asked for it can release this request.",
        ),
        (
            situation("denied"),
            APPROVER,
            Command::SendFeedback("x".into()),
            "Only the person who denied it can send feedback on this request.",
        ),
        (
            feedback_given,
            ADMIN,
            Command::SendFeedback("x".into()),
            "Feedback on this denial was already sent by UADM.",
        ),
        (
            situation("canceled"),
            REQUESTER,
            Command::Cancel,
            "This request was already canceled by UREQ.",
        ),
    ];
    for (request, user, command, expected) in cases {
        let refusal = decide(&request, &Actor::User(user.into()), &command, now()).unwrap_err();
        assert_eq!(refusal.to_string(), expected);
    }
    let refusal = decide(
        &situation("pending_approval"),
        &Actor::Api,
        &Command::Release,
        now(),
    )
    .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::WrongStatus {
            status: Status::PendingApproval,
            action: Action::Release
        }
    );
    assert_eq!(
        refusal.to_string(),
        "This request is pending approval, so it can't be released."
    );
    assert!(refusal.is_conflict());
}

#[test]
fn release_ends_a_grant_early_and_asks_the_admins_to_remove_it() {
    for (situation_name, user) in [
        ("provisioned, ten days left", TARGET),
        ("provisioned, due", REQUESTER),
    ] {
        let request = situation(situation_name);
        let decision = decide(
            &request,
            &Actor::User(user.into()),
            &Command::Release,
            now(),
        )
        .unwrap();
        let released = &decision.request;
        assert_eq!(released.status, Status::PendingDeprovisioning);
        assert_eq!(released.expires_at, request.expires_at, "kept as it was");
        assert_eq!(released.released_by.as_deref(), Some(user));
        assert_eq!(released.released_at, Some(now()));
        assert_eq!(released.stage_started_at(), now());
        assert_eq!(decision.event.kind, EventKind::Released);
        assert_eq!(decision.event.actor, user);
        assert_eq!(
            decision.effects,
            [
                Effect::RefreshCards,
                Effect::PostCards {
                    kind: CardKind::Removal,
                    recipients: vec![ADMIN.into(), "CADMINS".into()],
                },
            ]
        );
    }
    let mut unlimited = situation("provisioned, ten days left");
    unlimited.access_length = AccessLength::Unlimited;
    unlimited.expires_at = None;
    let released = decide(&unlimited, &Actor::Api, &Command::Release, now()).unwrap();
    assert_eq!(released.request.expires_at, None);
    assert_eq!(released.request.released_by.as_deref(), Some("api"));
}

#[test]
fn a_target_who_did_not_ask_gets_a_receipt_of_their_own_when_provisioned() {
    let request = situation("pending_provisioning");
    let decision = decide(
        &request,
        &Actor::User(ADMIN.into()),
        &Command::ConfirmProvisioning,
        now(),
    )
    .unwrap();
    assert_eq!(
        decision.effects,
        [
            Effect::RefreshCards,
            Effect::Notify {
                to: REQUESTER.into(),
                notice: Notice::ReadyToGo { by: ADMIN.into() },
            },
            Effect::PostCards {
                kind: CardKind::Receipt,
                recipients: vec![TARGET.into()],
            },
        ]
    );
}

#[test]
fn reminders_go_to_whoever_must_act_now() {
    let request = situation("pending_deprovisioning");
    let decision = decide(&request, &Actor::System, &Command::RemindAssignees, now()).unwrap();
    assert!(decision.request.stage_reminded);
    assert_eq!(
        decision.effects,
        [Effect::Notify {
            to: ADMIN.into(),
            notice: Notice::StillWaiting,
        }]
    );
    let again = decide(
        &decision.request,
        &Actor::System,
        &Command::RemindAssignees,
        now(),
    );
    assert_eq!(again.unwrap_err(), Refusal::NothingChanged);
}

/// Closing, from each status it applies in: what the request becomes, its event, and what
/// the requester is told.
#[test]
fn an_operator_closes_pending_requests_as_canceled_and_granted_ones_as_expired_unremoved() {
    let cases = [
        ("pending_approval", Status::Canceled, false),
        ("pending_provisioning", Status::Canceled, false),
        ("provisioned, ten days left", Status::Expired, true),
        ("provisioned, due", Status::Expired, true),
        ("pending_deprovisioning", Status::Expired, true),
    ];
    for (situation_name, becomes, removal_unconfirmed) in cases {
        let request = situation(situation_name);
        let decision = decide(&request, &Actor::Api, &close_command(), now()).unwrap();
        let closed = &decision.request;
        assert_eq!(closed.status, becomes, "{situation_name}");
        assert_eq!(closed.closed_by.as_deref(), Some("ops-alice"));
        assert_eq!(
            closed.close_reason.as_deref(),
            Some("The approvers left the company")
        );
        assert_eq!(closed.removal_unconfirmed(), removal_unconfirmed);
        // Nobody removed it, and nobody decided it: those stay as they were.
        assert_eq!(closed.removed_by, request.removed_by, "{situation_name}");
        assert_eq!(closed.removed_at, None, "{situation_name}");
        assert_eq!(closed.decided_by, request.decided_by, "{situation_name}");
        assert_eq!(closed.expires_at, request.expires_at, "{situation_name}");
        assert_eq!(closed.version, request.version + 1);
        assert_eq!(decision.event.kind, EventKind::Closed);
        assert_eq!(decision.event.actor, "ops-alice", "the operator as given");
        assert_eq!(
            decision.event.detail.as_deref(),
            Some("The approvers left the company")
        );
        assert_eq!(
            decision.event.before.as_ref().unwrap()["status"],
            request.status.as_str()
        );
        assert_eq!(
            decision.event.after.as_ref().unwrap()["status"],
            becomes.as_str()
        );
        assert_eq!(
            decision.effects,
            [
                Effect::RefreshCards,
                Effect::Notify {
                    to: REQUESTER.into(),
                    notice: Notice::Closed {
                        by: "ops-alice".into(),
                        reason: "The approvers left the company".into(),
                        removal_unconfirmed,
                    },
                },
            ],
            "{situation_name}"
        );
        // Closed is final: nothing is allowed to anyone, and accessbot leaves it alone.
        for role in ["requester", "approver", "admin", "api", "system"] {
            assert!(
                allowed(closed, &actor(role), now() + Duration::days(60)).is_empty(),
                "{situation_name} × {role}"
            );
        }
    }
}

#[test]
fn a_closed_or_final_request_refuses_a_close_as_a_conflict_that_says_who_got_there_first() {
    let closed = decide(
        &situation("pending_deprovisioning"),
        &Actor::Api,
        &close_command(),
        now(),
    )
    .unwrap()
    .request;
    let cases = [
        (
            closed.clone(),
            "This request was already closed by an operator (ops-alice).",
        ),
        (
            situation("canceled"),
            "This request was already canceled by UREQ.",
        ),
        (
            situation("denied"),
            "This request was already denied by UADM.",
        ),
        (
            situation("expired"),
            "This request was already removed by UADM.",
        ),
    ];
    for (request, expected) in cases {
        let refusal = decide(&request, &Actor::Api, &close_command(), now()).unwrap_err();
        assert_eq!(refusal.to_string(), expected);
        assert!(refusal.is_conflict(), "{expected}");
    }
    // A click on a stale card of a closed request says so, whatever the button.
    for (user, command) in [
        (ADMIN, Command::ConfirmRemoval),
        (REQUESTER, Command::Release),
        (APPROVER, Command::Approve),
    ] {
        let refusal = decide(&closed, &Actor::User(user.into()), &command, now()).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Closed {
                by: "ops-alice".into()
            }
        );
    }
    // Accessbot's own work on it is quietly nothing.
    let sweep = decide(&closed, &Actor::System, &Command::Expire, now()).unwrap_err();
    assert_eq!(sweep, Refusal::NothingChanged);
}

#[test]
fn only_the_api_closes_and_only_with_an_operator_and_a_reason() {
    let request = situation("pending_approval");
    for role in ["requester", "approver", "admin", "outsider"] {
        let refusal = decide(&request, &actor(role), &close_command(), now()).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "Only the access API can close this request.",
            "{role}"
        );
    }
    let refusal = decide(&request, &Actor::System, &close_command(), now()).unwrap_err();
    assert_eq!(refusal, Refusal::NothingChanged);

    let long = "x".repeat(MAX_CLOSE_CHARS + 1);
    let just_fits = "x".repeat(MAX_CLOSE_CHARS);
    let bad = [
        (
            "",
            "gone",
            "operator must not be empty: name who closes the request",
        ),
        (
            "ops",
            " \n ",
            "reason must not be empty: say why the request is closed",
        ),
        (
            long.as_str(),
            "gone",
            "operator must be at most 500 characters",
        ),
        (
            "ops",
            long.as_str(),
            "reason must be at most 500 characters",
        ),
    ];
    for (operator, reason, expected) in bad {
        assert_eq!(
            Command::close(operator, reason).unwrap_err().to_string(),
            expected
        );
        let command = Command::Close {
            reason: reason.into(),
            operator: operator.into(),
        };
        let refusal = decide(&request, &Actor::Api, &command, now()).unwrap_err();
        assert_eq!(refusal.to_string(), expected, "decide checks it too");
        assert!(matches!(refusal, Refusal::Invalid(_)));
    }
    let fits = Command::close(&just_fits, "é".repeat(MAX_CLOSE_CHARS).as_str()).unwrap();
    assert!(decide(&request, &Actor::Api, &fits, now()).is_ok());
}
