//! An access request and its status.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AccessLength;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The default only so that a stored request can be read field by field.
    #[default]
    PendingApproval,
    PendingProvisioning,
    Provisioned,
    Denied,
    Canceled,
    PendingDeprovisioning,
    Expired,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::PendingApproval,
        Status::PendingProvisioning,
        Status::Provisioned,
        Status::Denied,
        Status::Canceled,
        Status::PendingDeprovisioning,
        Status::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingApproval => "pending_approval",
            Status::PendingProvisioning => "pending_provisioning",
            Status::Provisioned => "provisioned",
            Status::Denied => "denied",
            Status::Canceled => "canceled",
            Status::PendingDeprovisioning => "pending_deprovisioning",
            Status::Expired => "expired",
        }
    }

    /// How the status reads in a sentence: "pending approval".
    pub fn words(self) -> &'static str {
        match self {
            Status::PendingApproval => "pending approval",
            Status::PendingProvisioning => "pending provisioning",
            Status::Provisioned => "provisioned",
            Status::Denied => "denied",
            Status::Canceled => "canceled",
            Status::PendingDeprovisioning => "pending removal",
            Status::Expired => "removed",
        }
    }

    /// Waiting for somebody to act.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Status::PendingApproval | Status::PendingProvisioning | Status::PendingDeprovisioning
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.chars().take(40).collect()))
    }
}

/// The stage a card asks its recipient to act on, or the requester's receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    Approval,
    Provisioning,
    Removal,
    Receipt,
}

impl CardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CardKind::Approval => "approval",
            CardKind::Provisioning => "provisioning",
            CardKind::Removal => "removal",
            CardKind::Receipt => "receipt",
        }
    }

    pub fn parse(s: &str) -> Option<CardKind> {
        [
            CardKind::Approval,
            CardKind::Provisioning,
            CardKind::Removal,
            CardKind::Receipt,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == s)
    }
}

/// An access request as stored. Assignees are copied from the app when the request is
/// filed, and an open request takes the app's new lists when they change (`reassign`), so
/// a decision reads only the request.
///
/// `Default` lets the store read a request column by column (`store/columns.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessRequest {
    pub id: i64,
    pub app: String,
    pub app_name: String,
    pub target_user: String,
    pub requester: String,
    pub permission: String,
    pub groups: Vec<String>,
    pub comment: String,
    pub access_length: AccessLength,
    pub status: Status,
    pub approvers: Vec<String>,
    pub app_admins: Vec<String>,
    pub admin_channel: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub provisioned_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub removed_by: Option<String>,
    pub removed_at: Option<DateTime<Utc>>,
    /// Who ended a provisioned grant before its time, and when.
    pub released_by: Option<String>,
    pub released_at: Option<DateTime<Utc>>,
    pub denial_feedback: Option<String>,
    /// The requester was told their access ends soon.
    pub expiry_reminded: bool,
    /// The assignees of the current stage were reminded that it waits for them.
    pub stage_reminded: bool,
    /// Grows by one with every change; guards against lost updates.
    pub version: i64,
    /// The Slack user id of who claimed the current task (SPEC §8.1 "Claim"); nothing sets
    /// it yet.
    pub claimed_by: Option<String>,
    /// The operator who closed a stuck request through the API, as they named themselves
    /// (free text, not a Slack user id), and why (SPEC §8.1 "close").
    pub closed_by: Option<String>,
    pub close_reason: Option<String>,
}

impl AccessRequest {
    /// Closed by an operator while its access may still be in place: nobody confirmed its
    /// removal, so no surface may say it was removed.
    pub fn removal_unconfirmed(&self) -> bool {
        self.closed_by.is_some() && self.status == Status::Expired
    }

    /// Who must act now, by status.
    pub fn assignees(&self) -> &[String] {
        match self.status {
            Status::PendingApproval => &self.approvers,
            Status::PendingProvisioning | Status::PendingDeprovisioning => &self.app_admins,
            _ => &[],
        }
    }

    /// When the current stage began; used for reminders about requests left waiting.
    pub fn stage_started_at(&self) -> DateTime<Utc> {
        match self.status {
            Status::PendingProvisioning => self.approved_at.unwrap_or(self.created_at),
            Status::PendingDeprovisioning => self
                .released_at
                .or(self.expires_at)
                .unwrap_or(self.updated_at),
            _ => self.created_at,
        }
    }
}
