//! The thread relay's reads and writes on PostgreSQL: kept messages, their edits and
//! deletions, and the copies the bot posted of them. The request's row lock orders a reply
//! against a card being recorded as posted; the message's row lock orders a change of the
//! message against a copy being recorded.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row as _};

use super::{insert_deliveries, insert_event};
use crate::store::rows::{self, millis};
use crate::store::{
    relay_follow_up, sql, Delivery, KeptMessage, RelayCopy, StoreResult, ThreadChange, ThreadPost,
};

/// Keeps a reply and queues its relay to every other posted card; false if kept before.
pub(super) async fn add_thread_message(pool: &PgPool, post: ThreadPost) -> StoreResult<bool> {
    let now = millis(post.message.at);
    let mut tx = pool.begin().await?;
    // Locked against a card being recorded as posted (see `card_posted`).
    sqlx::query(sql::PG_LOCK_REQUEST_VERSION)
        .bind(post.request_id)
        .execute(&mut *tx)
        .await?;
    let id: Option<i64> = sqlx::query_scalar(sql::INSERT_THREAD_MESSAGE)
        .bind(post.request_id)
        .bind(now)
        .bind(&post.message.user)
        .bind(&post.message.text)
        .bind(&post.source_channel)
        .bind(&post.source_ts)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(message_id) = id else {
        tx.rollback().await?;
        return Ok(false);
    };
    insert_event(&mut tx, post.request_id, &post.event).await?;
    // Cards not posted yet get the conversation as a summary when they are.
    let others: Vec<i64> = sqlx::query_scalar(sql::OTHER_POSTED_CARDS)
        .bind(post.request_id)
        .bind(post.source_card_id)
        .fetch_all(&mut *tx)
        .await?;
    let relays: Vec<Delivery> = others
        .into_iter()
        .map(|card_id| Delivery::RelayMessage {
            card_id,
            message_id,
        })
        .collect();
    insert_deliveries(&mut tx, Some(post.request_id), &relays, now).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn thread_message(pool: &PgPool, id: i64) -> StoreResult<Option<KeptMessage>> {
    let row = sqlx::query(&sql::THREAD_MESSAGE)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(rows::kept_message).transpose()
}

pub(super) async fn thread_message_at(
    pool: &PgPool,
    channel: &str,
    ts: &str,
) -> StoreResult<Option<KeptMessage>> {
    let row = sqlx::query(&sql::THREAD_MESSAGE_AT)
        .bind(channel)
        .bind(ts)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(rows::kept_message).transpose()
}

pub(super) async fn change_thread_message(
    pool: &PgPool,
    change: ThreadChange,
) -> StoreResult<bool> {
    let at = millis(change.event.at);
    let mut tx = pool.begin().await?;
    // Locked against a copy being recorded meanwhile (see `relay_copy_posted`).
    let locked = sqlx::query(&sql::PG_LOCK_THREAD_MESSAGE)
        .bind(change.message_id)
        .fetch_optional(&mut *tx)
        .await?;
    if locked.is_none() {
        tx.rollback().await?;
        return Ok(false);
    }
    let deleted_at = change.text.is_none().then_some(at);
    let changed = sqlx::query(sql::CHANGE_THREAD_MESSAGE)
        .bind(change.message_id)
        .bind(change.text.as_deref().unwrap_or(""))
        .bind(deleted_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    insert_event(&mut tx, change.request_id, &change.event).await?;
    let copies: Vec<i64> = sqlx::query_scalar(sql::RELAY_COPIES)
        .bind(change.message_id)
        .fetch_all(&mut *tx)
        .await?;
    let follow_ups: Vec<Delivery> = copies
        .into_iter()
        .map(|card_id| relay_follow_up(change.message_id, card_id, change.text.is_none()))
        .collect();
    insert_deliveries(&mut tx, Some(change.request_id), &follow_ups, at).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn relay_copy(
    pool: &PgPool,
    message_id: i64,
    card_id: i64,
) -> StoreResult<Option<RelayCopy>> {
    let row = sqlx::query(sql::RELAY_COPY)
        .bind(message_id)
        .bind(card_id)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(row) => Some(RelayCopy {
            channel: row.try_get("channel")?,
            ts: row.try_get("ts")?,
        }),
        None => None,
    })
}

pub(super) async fn relay_copy_posted(
    pool: &PgPool,
    message_id: i64,
    card_id: i64,
    copy: RelayCopy,
    shown_version: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    let locked = sqlx::query(&sql::PG_LOCK_THREAD_MESSAGE)
        .bind(message_id)
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query(sql::INSERT_RELAY_COPY)
        .bind(message_id)
        .bind(card_id)
        .bind(&copy.channel)
        .bind(&copy.ts)
        .execute(&mut *tx)
        .await?;
    // A change made while the copy was being posted either found the copy (and queued its
    // update) or is seen here.
    if let Some(message) = locked.as_ref().map(rows::kept_message).transpose()? {
        if message.deleted || message.version > shown_version {
            let delivery = relay_follow_up(message_id, card_id, message.deleted);
            insert_deliveries(&mut tx, Some(message.request_id), &[delivery], millis(now)).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
