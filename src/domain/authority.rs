//! Authority follows the catalog: when an app's approvers, admins or admin channel change,
//! each of its open requests takes the new lists, so that who may decide is who is assigned
//! now. A decision reads only the request's own lists (`policy.rs`), never the app.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    AccessRequest, App, CardKind, Decision, Effect, EventKind, NewEvent, Notice, Status,
    Unreachable, Unreached,
};

/// Who rewrote the lists, in the audit trail: the catalog is changed through the API.
const CATALOG: &str = "api";

/// `request` with the assignees `app` lists now, or `None` when it is final or nothing
/// changed. `carded` are the recipients who already hold a card of the current stage (a
/// person removed and added again keeps the one card, which shows buttons again).
///
/// The new assignees of the current stage get its card; every card is refreshed, so that
/// those removed see they no longer need to act. A request waiting for approval whose app
/// has no approvers left keeps waiting: dropping the approval step from an app is not a
/// reason to let requests filed under it skip approval.
pub fn reassign(
    request: &AccessRequest,
    app: &App,
    carded: &[String],
    now: DateTime<Utc>,
) -> Option<Decision> {
    let open = request.status.is_pending() || request.status == Status::Provisioned;
    let same = request.approvers == app.approvers
        && request.app_admins == app.admins
        && request.admin_channel == app.admin_channel;
    if !open || same {
        return None;
    }
    let mut next = request.clone();
    next.approvers = app.approvers.clone();
    next.app_admins = app.admins.clone();
    next.admin_channel = app.admin_channel.clone();
    next.updated_at = now;
    next.version = request.version + 1;
    // The reminder of a stage goes to whoever is assigned now.
    if request.assignees() != next.assignees() {
        next.stage_reminded = false;
    }
    let mut effects = vec![Effect::RefreshCards];
    // Approval is the one stage an app may leave without anybody (admins cannot be empty):
    // the admin channel hears that the request waits for nobody.
    if next.status == Status::PendingApproval && next.approvers.is_empty() {
        let unreached: Vec<Unreached> = request
            .approvers
            .iter()
            .map(|id| Unreached {
                recipient: id.clone(),
                why: Unreachable::Removed,
            })
            .collect();
        effects.extend(next.admin_channel.iter().map(|channel| Effect::Notify {
            to: channel.clone(),
            notice: Notice::NobodyToAct {
                stage: CardKind::Approval,
                unreached: unreached.clone(),
            },
        }));
    }
    if let Some(kind) = CardKind::stage_card(next.status) {
        let recipients: Vec<String> = stage_recipients(&next, kind)
            .into_iter()
            .filter(|recipient| !carded.contains(recipient))
            .collect();
        if !recipients.is_empty() {
            effects.push(Effect::PostCards { kind, recipients });
        }
    }
    let event = NewEvent {
        at: now,
        actor: CATALOG.to_string(),
        kind: EventKind::AssigneesChanged,
        before: Some(assignees(request)),
        after: Some(assignees(&next)),
        detail: Some(summary(request, &next)),
    };
    Some(Decision {
        request: next,
        event,
        effects,
    })
}

/// Who gets a card of `kind` for `request`: its assignees, and for the admins' stages the
/// admin channel.
pub(super) fn stage_recipients(request: &AccessRequest, kind: CardKind) -> Vec<String> {
    let mut recipients = request.assignees().to_vec();
    if kind != CardKind::Approval {
        recipients.extend(request.admin_channel.clone());
    }
    recipients
}

/// Whether `recipient` (a person or the admin channel) is asked to act on `request` now.
pub fn is_assigned(request: &AccessRequest, recipient: &str) -> bool {
    let channel = request.status != Status::PendingApproval
        && request.admin_channel.as_deref() == Some(recipient);
    channel || request.assignees().iter().any(|id| id == recipient)
}

/// The lists the audit trail records before and after.
fn assignees(request: &AccessRequest) -> Value {
    json!({
        "approvers": request.approvers,
        "app_admins": request.app_admins,
        "admin_channel": request.admin_channel,
    })
}

/// "approvers: added U3, removed U1; admins: added U4": what changed, for people reading
/// the audit trail.
fn summary(before: &AccessRequest, after: &AccessRequest) -> String {
    let mut parts = Vec::new();
    for (name, old, new) in [
        ("approvers", &before.approvers, &after.approvers),
        ("admins", &before.app_admins, &after.app_admins),
    ] {
        let added: Vec<&str> = new
            .iter()
            .filter(|id| !old.contains(id))
            .map(String::as_str)
            .collect();
        let removed: Vec<&str> = old
            .iter()
            .filter(|id| !new.contains(id))
            .map(String::as_str)
            .collect();
        let mut changes = Vec::new();
        if !added.is_empty() {
            changes.push(format!("added {}", added.join(", ")));
        }
        if !removed.is_empty() {
            changes.push(format!("removed {}", removed.join(", ")));
        }
        if !changes.is_empty() {
            parts.push(format!("{name}: {}", changes.join(", ")));
        } else if old != new {
            parts.push(format!("{name}: reordered"));
        }
    }
    if before.admin_channel != after.admin_channel {
        let channel = |c: &Option<String>| c.clone().unwrap_or_else(|| "none".into());
        parts.push(format!(
            "admin channel: {} (was {})",
            channel(&after.admin_channel),
            channel(&before.admin_channel)
        ));
    }
    if after.assignees().is_empty() {
        parts.push(format!(
            "nobody is left to act on this {}",
            after.status.words()
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{decide, Actor, Command, Refusal, Role};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 8, 9, 0, 0).unwrap()
    }

    fn app(approvers: &[&str], admins: &[&str], channel: Option<&str>) -> App {
        App {
            slug: "figma".into(),
            name: "Figma".into(),
            admins: admins.iter().map(|s| s.to_string()).collect(),
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            permissions: vec!["Member".into()],
            groups: vec![],
            admin_channel: channel.map(str::to_string),
        }
    }

    fn request(status: Status) -> AccessRequest {
        AccessRequest {
            id: 7,
            app: "figma".into(),
            app_name: "Figma".into(),
            target_user: "UREQ".into(),
            requester: "UREQ".into(),
            permission: "Member".into(),
            status,
            approvers: vec!["UAPP1".into(), "UAPP2".into()],
            app_admins: vec!["UADM1".into()],
            admin_channel: Some("CADMINS".into()),
            created_at: now(),
            updated_at: now(),
            version: 3,
            stage_reminded: true,
            ..Default::default()
        }
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn posted(decision: &Decision) -> Vec<(CardKind, Vec<String>)> {
        decision
            .effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::PostCards { kind, recipients } => Some((*kind, recipients.clone())),
                _ => None,
            })
            .collect()
    }

    /// Each row: status, the app as PUT, who already holds a stage card, and the cards the
    /// rewrite posts (`None`: the request does not change).
    #[test]
    fn open_requests_take_the_new_lists_and_only_new_assignees_get_cards() {
        type Row = (
            Status,
            App,
            &'static [&'static str],
            Option<Vec<(CardKind, Vec<String>)>>,
        );
        let rows: Vec<Row> = vec![
            // An approver swapped while approval waits: the new one gets the approval card.
            (
                Status::PendingApproval,
                app(&["UAPP1", "UAPP3"], &["UADM1"], Some("CADMINS")),
                &["UAPP1", "UAPP2"],
                Some(vec![(CardKind::Approval, ids(&["UAPP3"]))]),
            ),
            // An approver removed: nobody new, every card refreshed, no card posted.
            (
                Status::PendingApproval,
                app(&["UAPP1"], &["UADM1"], Some("CADMINS")),
                &["UAPP1", "UAPP2"],
                Some(vec![]),
            ),
            // A new admin while approval waits gets nothing yet: approval is not theirs.
            (
                Status::PendingApproval,
                app(&["UAPP1", "UAPP2"], &["UADM1", "UADM2"], Some("CADMINS")),
                &["UAPP1", "UAPP2"],
                Some(vec![]),
            ),
            // A new admin and a new channel while provisioning waits get its card.
            (
                Status::PendingProvisioning,
                app(&["UAPP1"], &["UADM1", "UADM2"], Some("CNEW")),
                &["UADM1", "CADMINS"],
                Some(vec![(CardKind::Provisioning, ids(&["UADM2", "CNEW"]))]),
            ),
            // A removal waiting goes to the new admins.
            (
                Status::PendingDeprovisioning,
                app(&["UAPP1", "UAPP2"], &["UADM2"], Some("CADMINS")),
                &["UADM1", "CADMINS"],
                Some(vec![(CardKind::Removal, ids(&["UADM2"]))]),
            ),
            // Someone removed and added again keeps their card (refreshed), gets no second.
            (
                Status::PendingProvisioning,
                app(&["UAPP1", "UAPP2"], &["UADM1", "UADM2"], Some("CADMINS")),
                &["UADM1", "UADM2", "CADMINS"],
                Some(vec![]),
            ),
            // A provisioned grant takes the new admins for its removal, with no card now.
            (
                Status::Provisioned,
                app(&["UAPP1"], &["UADM2"], None),
                &[],
                Some(vec![]),
            ),
            // Final requests keep the lists they were decided with.
            (Status::Denied, app(&["UAPP3"], &["UADM2"], None), &[], None),
            (
                Status::Canceled,
                app(&["UAPP3"], &["UADM2"], None),
                &[],
                None,
            ),
            (
                Status::Expired,
                app(&["UAPP3"], &["UADM2"], None),
                &[],
                None,
            ),
            // The same lists: nothing to do.
            (
                Status::PendingApproval,
                app(&["UAPP1", "UAPP2"], &["UADM1"], Some("CADMINS")),
                &[],
                None,
            ),
        ];
        for (status, app, carded, expected) in rows {
            let before = request(status);
            let decision = reassign(&before, &app, &ids(carded), now());
            let label = format!("{status:?} with {app:?}");
            let Some(expected) = expected else {
                assert_eq!(decision, None, "{label}");
                continue;
            };
            let decision = decision.unwrap_or_else(|| panic!("{label}: no change"));
            assert_eq!(posted(&decision), expected, "{label}");
            assert!(decision.effects.contains(&Effect::RefreshCards), "{label}");
            let after = &decision.request;
            assert_eq!(
                (&after.approvers, &after.app_admins, &after.admin_channel),
                (&app.approvers, &app.admins, &app.admin_channel),
                "{label}"
            );
            assert_eq!(after.status, status, "{label}: the status stays");
            assert_eq!(after.version, before.version + 1, "{label}");
            assert_eq!(decision.event.kind, EventKind::AssigneesChanged, "{label}");
        }
    }

    #[test]
    fn a_removed_approver_can_no_longer_approve_and_a_new_one_can() {
        let before = request(Status::PendingApproval);
        let app = app(&["UAPP3"], &["UADM1"], Some("CADMINS"));
        let after = reassign(&before, &app, &[], now()).unwrap().request;

        let removed = decide(
            &after,
            &Actor::User("UAPP1".into()),
            &Command::Approve,
            now(),
        );
        assert_eq!(
            removed.unwrap_err(),
            Refusal::NotAssignee {
                who: Role::Approver,
                action: crate::domain::Action::Approve
            }
        );
        let added = decide(
            &after,
            &Actor::User("UAPP3".into()),
            &Command::Approve,
            now(),
        );
        assert_eq!(added.unwrap().request.status, Status::PendingProvisioning);
    }

    #[test]
    fn the_audit_entry_says_what_changed_in_words() {
        let before = request(Status::PendingProvisioning);
        let app = app(&["UAPP2"], &["UADM2", "UADM3"], None);
        let decision = reassign(&before, &app, &[], now()).unwrap();
        assert_eq!(decision.event.actor, "api");
        assert_eq!(
            decision.event.detail.as_deref(),
            Some(
                "approvers: removed UAPP1; admins: added UADM2, UADM3, removed UADM1; \
                 admin channel: none (was CADMINS)"
            )
        );
        assert_eq!(
            decision.event.after,
            Some(json!({
                "approvers": ["UAPP2"],
                "app_admins": ["UADM2", "UADM3"],
                "admin_channel": null,
            }))
        );
        assert!(
            !decision.request.stage_reminded,
            "the new admins are reminded anew"
        );
    }

    #[test]
    fn an_approval_left_without_approvers_waits_and_says_nobody_is_left() {
        let before = request(Status::PendingApproval);
        let decision = reassign(&before, &app(&[], &["UADM1"], Some("CADMINS")), &[], now());
        let decision = decision.unwrap();
        assert_eq!(decision.request.status, Status::PendingApproval);
        let removed = |id: &str| Unreached {
            recipient: id.into(),
            why: Unreachable::Removed,
        };
        assert!(decision.effects.contains(&Effect::Notify {
            to: "CADMINS".into(),
            notice: Notice::NobodyToAct {
                stage: CardKind::Approval,
                unreached: vec![removed("UAPP1"), removed("UAPP2")],
            },
        }));
        assert!(decision
            .event
            .detail
            .unwrap()
            .ends_with("nobody is left to act on this pending approval"));
    }

    #[test]
    fn only_the_current_assignees_and_the_admin_channel_of_admin_stages_are_assigned() {
        let approval = request(Status::PendingApproval);
        assert!(is_assigned(&approval, "UAPP1"));
        assert!(!is_assigned(&approval, "UADM1"));
        assert!(!is_assigned(&approval, "CADMINS"));
        let provisioning = request(Status::PendingProvisioning);
        assert!(is_assigned(&provisioning, "UADM1"));
        assert!(is_assigned(&provisioning, "CADMINS"));
        assert!(!is_assigned(&provisioning, "UAPP1"));
        assert!(!is_assigned(&request(Status::Provisioned), "UADM1"));
    }
}
