//! The reads of the SQLite store, as functions of a connection: a reader's, or the
//! writer's when a write needs to read first.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{query, query_first};
use crate::domain::{AccessRequest, App, AuditEvent, ThreadMessage};
use crate::store::columns::{APPS, REQUESTS};
use crate::store::rows::{self, InOrder, Row};
use crate::store::{
    sql, Card, CardState, FailedDelivery, IdempotencyKey, RequestFilter, SlackUser, StoreResult,
    StoreStats,
};

pub(super) fn ping(conn: &Connection) -> StoreResult<()> {
    query_first(conn, "SELECT 1", &[], |_| Ok(()))?;
    Ok(())
}

pub(super) fn app(conn: &Connection, slug: &str) -> StoreResult<Option<App>> {
    query_first(conn, &sql::APP, &[&slug], |row| {
        APPS.read(&InOrder::new(row))
    })
}

pub(super) fn apps(conn: &Connection) -> StoreResult<Vec<App>> {
    query(conn, &sql::APPS_BY_SLUG, &[], |row| {
        APPS.read(&InOrder::new(row))
    })
}

pub(super) fn request(conn: &Connection, id: i64) -> StoreResult<Option<AccessRequest>> {
    query_first(conn, &sql::REQUEST, &[&id], |row| {
        REQUESTS.read(&InOrder::new(row))
    })
}

/// What idempotency key `key` found while live: its body hash (`None` for a key of an
/// earlier release) and the request it filed.
pub(super) fn request_by_key(
    conn: &Connection,
    key: &IdempotencyKey,
) -> StoreResult<Option<(Option<String>, AccessRequest)>> {
    let live_after = rows::millis(key.live_after);
    let found = query_first(
        conn,
        &sql::REQUEST_BY_KEY,
        &[&key.key, &live_after],
        |row| {
            let row = InOrder::new(row);
            Ok((Some(row.text("body_hash")?), REQUESTS.read(&row)?))
        },
    )?;
    let Some(legacy) = key.legacy_key.as_ref().filter(|_| found.is_none()) else {
        return Ok(found);
    };
    query_first(
        conn,
        &sql::REQUEST_BY_LEGACY_KEY,
        &[legacy, &live_after],
        |row| Ok((None, REQUESTS.read(&InOrder::new(row))?)),
    )
}

pub(super) fn requests(
    conn: &Connection,
    filter: &RequestFilter,
) -> StoreResult<Vec<AccessRequest>> {
    let (sql, params) = sql::requests_page(filter);
    let params: Vec<&dyn rusqlite::ToSql> = params.iter().map(|p| p as _).collect();
    query(conn, sql, &params, |row| REQUESTS.read(&InOrder::new(row)))
}

/// The requests of `sql` (`$1` a time, `$2` a limit): expiries and reminders.
pub(super) fn requests_at(
    conn: &Connection,
    sql: &str,
    at: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<AccessRequest>> {
    let (at, limit) = (rows::millis(at), i64::from(limit));
    query(conn, sql, &[&at, &limit], |row| {
        REQUESTS.read(&InOrder::new(row))
    })
}

pub(super) fn open_tasks(
    conn: &Connection,
    user: &str,
    limit: u32,
) -> StoreResult<Vec<AccessRequest>> {
    let quoted = format!("%\"{user}\"%");
    // Candidates only: which of them this user may act on is the policy's answer.
    query(
        conn,
        &sql::OPEN_TASKS,
        &[&quoted, &i64::from(limit)],
        |row| REQUESTS.read(&InOrder::new(row)),
    )
}

pub(super) fn events(conn: &Connection, request_id: i64) -> StoreResult<Vec<AuditEvent>> {
    query(conn, sql::EVENTS, &[&request_id], |row| {
        rows::event(&InOrder::new(row))
    })
}

pub(super) fn card(conn: &Connection, card_id: i64) -> StoreResult<Option<Card>> {
    query_first(conn, &sql::CARD, &[&card_id], |row| {
        rows::card(&InOrder::new(row), "")
    })
}

pub(super) fn card_with_request(
    conn: &Connection,
    card_id: i64,
) -> StoreResult<Option<(Card, AccessRequest)>> {
    query_first(conn, &sql::CARD_WITH_REQUEST, &[&card_id], |row| {
        Ok((
            rows::card(&InOrder::new(row), sql::CARD_PREFIX)?,
            REQUESTS.read(&InOrder::new(row))?,
        ))
    })
}

pub(super) fn cards(conn: &Connection, request_id: i64) -> StoreResult<Vec<Card>> {
    query(conn, &sql::CARDS, &[&request_id], |row| {
        rows::card(&InOrder::new(row), "")
    })
}

pub(super) fn card_states(conn: &Connection, request_id: i64) -> StoreResult<Vec<CardState>> {
    query(conn, &sql::CARD_STATES, &[&request_id], |row| {
        rows::card_state(&InOrder::new(row))
    })
}

pub(super) fn slack_user(conn: &Connection, id: &str) -> StoreResult<Option<SlackUser>> {
    query_first(conn, &sql::SLACK_USER, &[&id], |row| {
        rows::slack_user(&InOrder::new(row))
    })
}

pub(super) fn card_by_message(
    conn: &Connection,
    channel: &str,
    ts: &str,
) -> StoreResult<Option<Card>> {
    query_first(conn, &sql::CARD_BY_MESSAGE, &[&channel, &ts], |row| {
        rows::card(&InOrder::new(row), "")
    })
}

pub(super) fn thread(conn: &Connection, request_id: i64) -> StoreResult<Vec<ThreadMessage>> {
    query(conn, sql::THREAD, &[&request_id], |row| {
        rows::thread_message(&InOrder::new(row))
    })
}

pub(super) fn failed_deliveries(
    conn: &Connection,
    after_id: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<FailedDelivery>> {
    let (after_id, limit) = (after_id.unwrap_or(0), i64::from(limit));
    query(conn, sql::FAILED_DELIVERIES, &[&after_id, &limit], |row| {
        rows::failed(&InOrder::new(row))
    })
}

pub(super) fn next_delivery_due(conn: &Connection) -> StoreResult<Option<DateTime<Utc>>> {
    let due = query_first(conn, sql::NEXT_DUE, &[], |row| {
        Ok(row.get::<_, Option<i64>>(0)?)
    })?;
    due.flatten().map(rows::from_millis).transpose()
}

fn count(conn: &Connection, sql: &str) -> StoreResult<i64> {
    Ok(query_first(conn, sql, &[], |row| Ok(row.get::<_, i64>(0)?))?.unwrap_or(0))
}

pub(super) fn deliveries_waiting(conn: &Connection) -> StoreResult<i64> {
    count(conn, sql::COUNT_PENDING)
}

pub(super) fn stats(conn: &Connection) -> StoreResult<StoreStats> {
    let by_status = query(conn, sql::COUNT_BY_STATUS, &[], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    Ok(StoreStats {
        requests_by_status: rows::status_counts(by_status)?,
        deliveries_waiting: count(conn, sql::COUNT_PENDING)?,
        deliveries_failed: count(conn, sql::COUNT_FAILED)?,
    })
}
