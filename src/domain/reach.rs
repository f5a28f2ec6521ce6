//! Whether anybody is left to act on a request's current stage: the rule, on the cards of
//! the stage and how their posts went. No I/O: the worker reads the cards and asks.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AccessRequest, CardKind, EventKind, NewEvent};

/// Why a person could not be given their card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", content = "error", rename_all = "snake_case")]
pub enum Unreachable {
    /// Slack says the account is deactivated: the card was not posted.
    Deactivated,
    /// Slack refused the post, with this error (`channel_not_found`, `is_archived`…).
    Refused(String),
    /// Taken off the app's list for this stage (`PUT /api/v1/apps/{slug}`), with nobody
    /// put in their place.
    Removed,
}

/// A person (or the admin channel) who did not get their card, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreached {
    pub recipient: String,
    #[serde(flatten)]
    pub why: Unreachable,
}

impl fmt::Display for Unreached {
    /// `U1 is deactivated in Slack`, `C1: Slack answered is_archived`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            Unreachable::Deactivated => write!(f, "{} is deactivated in Slack", self.recipient),
            Unreachable::Refused(error) => write!(f, "{}: Slack answered {error}", self.recipient),
            Unreachable::Removed => write!(f, "{} was taken off the app's list", self.recipient),
        }
    }
}

/// How the post of one card went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Post {
    /// Not tried yet, or tried and to be tried again.
    Waiting,
    Posted,
    /// Failed for good (until somebody retries it).
    Failed(Unreachable),
}

/// A card of a request and how its post went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPost {
    pub kind: CardKind,
    /// A user id (a DM) or a channel id.
    pub recipient: String,
    pub post: Post,
}

/// Who can act on the current stage, as far as its cards tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Somebody got the card, or may yet; or the request waits for nobody.
    Reached,
    /// Every person's card failed for good, but the admin channel's card was posted: the
    /// channel is the only place left where anybody can act.
    ChannelOnly {
        stage: CardKind,
        channel: String,
        unreached: Vec<Unreached>,
    },
    /// Every person's card failed for good and no admin channel's card was posted (there
    /// is none, or it failed too): nobody is left to act.
    Nobody {
        stage: CardKind,
        unreached: Vec<Unreached>,
    },
}

/// A Slack user id (`U…`, or `W…` on Enterprise Grid): a card to it goes by DM. Anything
/// else (`C…`, `G…`) is a channel.
pub fn is_person(recipient: &str) -> bool {
    recipient.starts_with(['U', 'W'])
}

/// The rule: the cards of the request's current stage (approval cards while pending
/// approval, provisioning cards while pending provisioning, removal cards while pending
/// removal) decide. When each person's card has failed for good, the stage has nobody left
/// to act, unless (provisioning and removal) the admin channel's card was posted. A
/// channel card still waiting leaves the question open: its outcome asks again.
pub fn reach(request: &AccessRequest, cards: &[CardPost]) -> Reach {
    let Some(stage) = CardKind::stage_card(request.status) else {
        return Reach::Reached;
    };
    let stage_cards = || cards.iter().filter(|card| card.kind == stage);
    let mut unreached = Vec::new();
    for card in stage_cards().filter(|card| is_person(&card.recipient)) {
        match &card.post {
            Post::Failed(why) => unreached.push(Unreached {
                recipient: card.recipient.clone(),
                why: why.clone(),
            }),
            Post::Waiting | Post::Posted => return Reach::Reached,
        }
    }
    if unreached.is_empty() {
        return Reach::Reached;
    }
    let mut channel_failed = Vec::new();
    // Approval cards never go to the admin channel; anything there is not the stage's.
    if stage != CardKind::Approval {
        for card in stage_cards().filter(|card| !is_person(&card.recipient)) {
            match &card.post {
                Post::Posted => {
                    return Reach::ChannelOnly {
                        stage,
                        channel: card.recipient.clone(),
                        unreached,
                    }
                }
                Post::Waiting => return Reach::Reached,
                Post::Failed(why) => channel_failed.push(Unreached {
                    recipient: card.recipient.clone(),
                    why: why.clone(),
                }),
            }
        }
    }
    unreached.extend(channel_failed);
    Reach::Nobody { stage, unreached }
}

/// The audit entry of a `stage` with nobody left to act: who could not be reached, and why.
pub fn nobody_to_act_event(
    stage: CardKind,
    unreached: &[Unreached],
    now: DateTime<Utc>,
) -> NewEvent {
    let what = format!("nobody left to act on the {} stage", stage.as_str());
    stage_event(EventKind::NobodyToAct, what, unreached, now)
}

/// The audit entry that says none of the stage's people could be reached by DM, and the
/// admin channel's card is the one left.
pub fn nobody_reached_by_dm_event(
    stage: CardKind,
    unreached: &[Unreached],
    now: DateTime<Utc>,
) -> NewEvent {
    let what = format!(
        "nobody reached by DM on the {} stage, the admin channel's card is the one left",
        stage.as_str()
    );
    stage_event(EventKind::NobodyReachedByDm, what, unreached, now)
}

/// accessbot's entry of `kind`: `what`, then who was not reached and why.
fn stage_event(
    kind: EventKind,
    what: String,
    unreached: &[Unreached],
    now: DateTime<Utc>,
) -> NewEvent {
    let who: Vec<String> = unreached.iter().map(Unreached::to_string).collect();
    NewEvent {
        at: now,
        actor: "system".to_string(),
        kind,
        before: None,
        after: None,
        detail: Some(format!("{what}: {}", who.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    const A: &str = "UADMIN1";
    const B: &str = "WADMIN2";
    const CHANNEL: &str = "CADMINS";

    fn request(status: Status) -> AccessRequest {
        AccessRequest {
            status,
            ..AccessRequest::default()
        }
    }

    fn card(kind: CardKind, recipient: &str, post: &Post) -> CardPost {
        CardPost {
            kind,
            recipient: recipient.to_string(),
            post: post.clone(),
        }
    }

    fn gone(recipient: &str) -> Unreached {
        Unreached {
            recipient: recipient.to_string(),
            why: Unreachable::Deactivated,
        }
    }

    fn refused(recipient: &str, error: &str) -> Unreached {
        Unreached {
            recipient: recipient.to_string(),
            why: Unreachable::Refused(error.to_string()),
        }
    }

    #[test]
    fn nobody_is_left_only_when_every_way_to_the_stage_failed() {
        use CardKind::{Approval, Provisioning, Receipt, Removal};
        use Status::{PendingApproval, PendingDeprovisioning, PendingProvisioning, Provisioned};
        let deactivated = Post::Failed(Unreachable::Deactivated);
        let archived = Post::Failed(Unreachable::Refused("is_archived".into()));
        let (posted, waiting) = (Post::Posted, Post::Waiting);
        let nobody = |stage, unreached| Reach::Nobody { stage, unreached };
        let only_channel = |stage, unreached| Reach::ChannelOnly {
            stage,
            channel: CHANNEL.to_string(),
            unreached,
        };
        #[rustfmt::skip]
        let table: Vec<(&str, Status, Vec<CardPost>, Reach)> = vec![
            ("one approver left", PendingApproval,
                vec![card(Approval, A, &deactivated), card(Approval, B, &posted)], Reach::Reached),
            ("an approver's card still waits", PendingApproval,
                vec![card(Approval, A, &deactivated), card(Approval, B, &waiting)], Reach::Reached),
            ("every approver gone", PendingApproval,
                vec![card(Approval, A, &deactivated), card(Approval, B, &deactivated)],
                nobody(Approval, vec![gone(A), gone(B)])),
            ("the receipt does not act", PendingApproval,
                vec![card(Approval, A, &deactivated), card(Receipt, "UREQ", &posted)],
                nobody(Approval, vec![gone(A)])),
            ("earlier stages do not count", PendingProvisioning,
                vec![card(Approval, A, &deactivated), card(Provisioning, B, &posted)],
                Reach::Reached),
            ("admins gone, no admin channel", PendingProvisioning,
                vec![card(Provisioning, A, &deactivated)], nobody(Provisioning, vec![gone(A)])),
            ("admins gone, the channel has the card", PendingProvisioning,
                vec![card(Provisioning, A, &deactivated), card(Provisioning, CHANNEL, &posted)],
                only_channel(Provisioning, vec![gone(A)])),
            ("admins gone, the channel's card waits", PendingProvisioning,
                vec![card(Provisioning, A, &deactivated), card(Provisioning, CHANNEL, &waiting)],
                Reach::Reached),
            ("admins gone, the channel archived", PendingDeprovisioning,
                vec![card(Removal, A, &deactivated), card(Removal, B, &archived),
                     card(Removal, CHANNEL, &archived)],
                nobody(Removal, vec![gone(A), refused(B, "is_archived"),
                                     refused(CHANNEL, "is_archived")])),
            ("only the channel failed", PendingDeprovisioning,
                vec![card(Removal, A, &posted), card(Removal, CHANNEL, &archived)], Reach::Reached),
            ("no card of the stage yet", PendingDeprovisioning,
                vec![card(Provisioning, A, &deactivated)], Reach::Reached),
            ("nothing waits on a provisioned grant", Provisioned,
                vec![card(Provisioning, A, &deactivated)], Reach::Reached),
        ];
        for (case, status, cards, expected) in table {
            assert_eq!(reach(&request(status), &cards), expected, "{case}");
        }
    }

    #[test]
    fn the_event_names_the_stage_and_who_could_not_be_reached() {
        let event = nobody_to_act_event(
            CardKind::Removal,
            &[gone(A), refused(CHANNEL, "is_archived")],
            chrono::DateTime::UNIX_EPOCH,
        );
        assert_eq!(event.kind, EventKind::NobodyToAct);
        assert_eq!(
            event.detail.as_deref(),
            Some(
                "nobody left to act on the removal stage: UADMIN1 is deactivated in Slack; \
                 CADMINS: Slack answered is_archived"
            )
        );
    }

    #[test]
    fn people_are_user_ids_and_channels_are_not() {
        assert!(is_person("U024BE7LH"));
        assert!(is_person("W012A3CDE"));
        assert!(!is_person("C024BE91L"));
        assert!(!is_person("G024BE91L"));
    }
}
