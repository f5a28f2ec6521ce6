//! Rows as both drivers return them, read by column name, and their conversion to the
//! domain. Requests and apps are read through their column lists (`columns.rs`); the
//! other tables here.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    Card, CardState, Delivery, FailedDelivery, KeptMessage, OutboxItem, SlackUser, StoreError,
    StoreResult,
};
use crate::domain::{AuditEvent, CardKind, Status, ThreadMessage};

/// A row of a result, read by column name: implemented for both drivers' rows.
pub(super) trait Row {
    fn text(&self, name: &str) -> StoreResult<String>;
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>>;
    fn int(&self, name: &str) -> StoreResult<i64>;
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>>;
    /// A PostgreSQL `INTEGER` (`attempts`).
    fn int32(&self, name: &str) -> StoreResult<i32>;
    fn flag(&self, name: &str) -> StoreResult<bool>;
}

/// A rusqlite row read by name. Columns are mostly read in the order they are selected, so
/// each name is looked for first just after the previous one was found: a request's 30
/// columns cost 30 comparisons, not a scan of the row for each.
pub(super) struct InOrder<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    next: std::cell::Cell<usize>,
}

impl<'r, 's> InOrder<'r, 's> {
    pub(super) fn new(row: &'r rusqlite::Row<'s>) -> InOrder<'r, 's> {
        InOrder {
            row,
            next: std::cell::Cell::new(0),
        }
    }

    fn get<T: rusqlite::types::FromSql>(&self, name: &str) -> StoreResult<T> {
        let statement = self.row.as_ref();
        let next = self.next.get();
        let at = match statement.column_name(next) {
            Ok(found) if found == name => next,
            _ => statement.column_index(name)?,
        };
        self.next.set(at + 1);
        Ok(self.row.get(at)?)
    }
}

impl Row for InOrder<'_, '_> {
    fn text(&self, name: &str) -> StoreResult<String> {
        self.get(name)
    }
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        self.get(name)
    }
    fn int(&self, name: &str) -> StoreResult<i64> {
        self.get(name)
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.get(name)
    }
    fn int32(&self, name: &str) -> StoreResult<i32> {
        self.get(name)
    }
    fn flag(&self, name: &str) -> StoreResult<bool> {
        self.get(name)
    }
}

impl Row for sqlx::postgres::PgRow {
    fn text(&self, name: &str) -> StoreResult<String> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
    fn int(&self, name: &str) -> StoreResult<i64> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
    fn int32(&self, name: &str) -> StoreResult<i32> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
    fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
}

pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(super) fn from_millis(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} is out of range")))
}

pub(super) fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|err| StoreError::Corrupt(err.to_string()))
}

/// A JSON list of strings, as lists are stored.
pub(super) fn list(column: &str, text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|err| StoreError::Corrupt(format!("{column} is not a JSON list: {err}")))
}

fn json_value(column: &str, text: Option<String>) -> StoreResult<Option<serde_json::Value>> {
    text.map(|text| {
        serde_json::from_str(&text)
            .map_err(|err| StoreError::Corrupt(format!("{column} is not JSON: {err}")))
    })
    .transpose()
}

pub(super) fn delivery(payload: &str) -> StoreResult<Delivery> {
    serde_json::from_str(payload)
        .map_err(|err| StoreError::Corrupt(format!("outbox payload is not a delivery: {err}")))
}

/// An `events` row (`sql::EVENT_COLUMNS`).
pub(super) fn event(row: &impl Row) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: row.int("id")?,
        request_id: row.int("request_id")?,
        at: from_millis(row.int("at")?)?,
        actor: row.text("actor")?,
        kind: row.text("kind")?,
        before: json_value("before_json", row.opt_text("before_json")?)?,
        after: json_value("after_json", row.opt_text("after_json")?)?,
        detail: row.opt_text("detail")?,
    })
}

/// A `cards` row whose columns are named `{prefix}id`, `{prefix}kind`, … (`sql::card_columns`).
pub(super) fn card(row: &impl Row, prefix: &str) -> StoreResult<Card> {
    let name = |column: &str| format!("{prefix}{column}");
    let id = row.int(&name("id"))?;
    let kind = row.text(&name("kind"))?;
    let kind = CardKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("card {id}: unknown kind {kind:?}")))?;
    Ok(Card {
        id,
        request_id: row.int(&name("request_id"))?,
        kind,
        recipient: row.text(&name("recipient"))?,
        channel: row.opt_text(&name("channel"))?,
        ts: row.opt_text(&name("ts"))?,
        rendered_version: row.int(&name("rendered_version"))?,
    })
}

/// A card with the error of its failed post (`sql::CARD_STATES`).
pub(super) fn card_state(row: &impl Row) -> StoreResult<CardState> {
    Ok(CardState {
        card: card(row, "")?,
        failed: row.opt_text("failed")?,
    })
}

/// A `slack_users` row (`sql::SLACK_USER`).
pub(super) fn slack_user(row: &impl Row) -> StoreResult<SlackUser> {
    Ok(SlackUser {
        id: row.text("id")?,
        display_name: row.text("display_name")?,
        real_name: row.text("real_name")?,
        deleted: row.flag("deleted")?,
        tz: row.opt_text("tz")?,
        email: row.opt_text("email")?,
        refreshed_at: from_millis(row.int("refreshed_at")?)?,
    })
}

/// An outbox row just claimed (`sql::CLAIMED_COLUMNS`): its id, and the item unless its
/// payload is unreadable. `attempts` already counts this claim.
pub(super) fn claimed(row: &impl Row) -> StoreResult<(i64, StoreResult<OutboxItem>)> {
    let id = row.int("id")?;
    let request_id = row.opt_int("request_id")?;
    let attempts = row.int32("attempts")?;
    let last_error = row.opt_text("last_error")?;
    let item = delivery(&row.text("payload")?).map(|delivery| OutboxItem {
        id,
        request_id,
        delivery,
        attempts: attempts.saturating_sub(1),
        last_error,
    });
    Ok((id, item))
}

/// A dead-lettered outbox row (`sql::FAILED_DELIVERIES`).
pub(super) fn failed(row: &impl Row) -> StoreResult<FailedDelivery> {
    Ok(FailedDelivery {
        id: row.int("id")?,
        request_id: row.opt_int("request_id")?,
        method: row.text("method")?,
        error: row.opt_text("last_error")?.unwrap_or_default(),
        attempts: row.int32("attempts")?,
        created_at: from_millis(row.int("created_at")?)?,
        failed_at: from_millis(row.int("updated_at")?)?,
    })
}

/// A `thread_messages` row (`sql::THREAD`).
pub(super) fn thread_message(row: &impl Row) -> StoreResult<ThreadMessage> {
    Ok(ThreadMessage {
        at: from_millis(row.int("at")?)?,
        user: row.text("user_id")?,
        text: row.text("text")?,
    })
}

/// A kept thread message (`sql::THREAD_MESSAGE` and the like).
pub(super) fn kept_message(row: &impl Row) -> StoreResult<KeptMessage> {
    Ok(KeptMessage {
        id: row.int("id")?,
        request_id: row.int("request_id")?,
        user: row.text("user_id")?,
        text: row.text("text")?,
        version: row.int("version")?,
        deleted: row.opt_int("deleted_at")?.is_some(),
    })
}

/// Requests by status (`sql::COUNT_BY_STATUS`), with a zero for every status that has none.
pub(super) fn status_counts(rows: Vec<(String, i64)>) -> StoreResult<Vec<(Status, i64)>> {
    let mut counts: Vec<(Status, i64)> = Status::ALL.iter().map(|&s| (s, 0)).collect();
    for (status, count) in rows {
        let status: Status = status
            .parse()
            .map_err(|err| StoreError::Corrupt(format!("requests: {err}")))?;
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
            slot.1 = count;
        }
    }
    Ok(counts)
}
