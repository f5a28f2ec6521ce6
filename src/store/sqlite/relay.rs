//! The thread relay's reads and writes on SQLite: kept messages, their edits and
//! deletions, and the copies the bot posted of them.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::writes::{insert_event, queue_all};
use super::{execute, query, query_first};
use crate::store::rows::{self, millis, InOrder, Row};
use crate::store::{
    relay_follow_up, sql, Delivery, KeptMessage, RelayCopy, StoreResult, ThreadChange, ThreadPost,
};

/// Keeps a reply and queues its relay to every other posted card; false if kept before.
pub(super) fn add_thread_message(conn: &Connection, post: &ThreadPost) -> StoreResult<bool> {
    let at = millis(post.message.at);
    let id = query_first(
        conn,
        sql::INSERT_THREAD_MESSAGE,
        &[
            &post.request_id,
            &at,
            &post.message.user,
            &post.message.text,
            &post.source_channel,
            &post.source_ts,
        ],
        |row| Ok(row.get::<_, i64>("id")?),
    )?;
    let Some(message_id) = id else {
        return Ok(false);
    };
    insert_event(conn, post.request_id, &post.event)?;
    // The writer is the only one: a card posted later gets the reply in its summary.
    let others = query(
        conn,
        sql::OTHER_POSTED_CARDS,
        &[&post.request_id, &post.source_card_id],
        |row| Ok(row.get::<_, i64>("id")?),
    )?;
    let relays: Vec<Delivery> = others
        .into_iter()
        .map(|card_id| Delivery::RelayMessage {
            card_id,
            message_id,
        })
        .collect();
    queue_all(conn, Some(post.request_id), &relays, post.message.at)?;
    Ok(true)
}

pub(super) fn thread_message(conn: &Connection, id: i64) -> StoreResult<Option<KeptMessage>> {
    query_first(conn, &sql::THREAD_MESSAGE, &[&id], |row| {
        rows::kept_message(&InOrder::new(row))
    })
}

pub(super) fn thread_message_at(
    conn: &Connection,
    channel: &str,
    ts: &str,
) -> StoreResult<Option<KeptMessage>> {
    query_first(conn, &sql::THREAD_MESSAGE_AT, &[&channel, &ts], |row| {
        rows::kept_message(&InOrder::new(row))
    })
}

pub(super) fn change_thread_message(conn: &Connection, change: &ThreadChange) -> StoreResult<bool> {
    let at = change.event.at;
    let deleted_at = change.text.is_none().then(|| millis(at));
    let text = change.text.as_deref().unwrap_or("");
    let changed = execute(
        conn,
        sql::CHANGE_THREAD_MESSAGE,
        &[&change.message_id, &text, &deleted_at],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    insert_event(conn, change.request_id, &change.event)?;
    let copies = query(conn, sql::RELAY_COPIES, &[&change.message_id], |row| {
        Ok(row.get::<_, i64>("card_id")?)
    })?;
    let follow_ups: Vec<Delivery> = copies
        .into_iter()
        .map(|card_id| relay_follow_up(change.message_id, card_id, change.text.is_none()))
        .collect();
    queue_all(conn, Some(change.request_id), &follow_ups, at)?;
    Ok(true)
}

pub(super) fn relay_copy(
    conn: &Connection,
    message_id: i64,
    card_id: i64,
) -> StoreResult<Option<RelayCopy>> {
    query_first(conn, sql::RELAY_COPY, &[&message_id, &card_id], |row| {
        let row = InOrder::new(row);
        Ok(RelayCopy {
            channel: row.text("channel")?,
            ts: row.text("ts")?,
        })
    })
}

pub(super) fn relay_copy_posted(
    conn: &Connection,
    message_id: i64,
    card_id: i64,
    copy: &RelayCopy,
    shown_version: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    execute(
        conn,
        sql::INSERT_RELAY_COPY,
        &[&message_id, &card_id, &copy.channel, &copy.ts],
    )?;
    // The writer is the only one: an edit made while the copy was being posted either
    // found the copy (and queued its update) or is seen here.
    let Some(message) = thread_message(conn, message_id)? else {
        return Ok(());
    };
    if message.deleted || message.version > shown_version {
        let delivery = relay_follow_up(message_id, card_id, message.deleted);
        queue_all(conn, Some(message.request_id), &[delivery], now)?;
    }
    Ok(())
}
