//! The writes of the SQLite store, as functions of the writer's connection. Each runs
//! inside the writer's transaction (`writer.rs`) and writes nothing when it fails.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{execute, query, query_first, reads, with};
use crate::domain::{App, EventKind, NewEvent};
use crate::store::columns::{Write, APPS, REQUESTS};
use crate::store::rows::{self, millis, to_json, InOrder};
use crate::store::{
    sql, Change, Decide, Decided, Delivery, Filed, Follow, NewCard, NewRequest, Note, OutboxItem,
    PutApp, SlackUser, StoreError, StoreResult,
};

/// `Store::put_app_following`: the app, then each open request as `follow` changes it.
pub(super) fn put_app(
    conn: &Connection,
    app: &App,
    now: DateTime<Utc>,
    follow: &Follow,
) -> StoreResult<PutApp> {
    let at = millis(now);
    let params = APPS.params(app, Write::Insert)?;
    let created = execute(conn, &sql::INSERT_APP, &with(&params, &[&at]))? == 1;
    if !created {
        let params = APPS.params(app, Write::Change)?;
        execute(conn, &sql::UPDATE_APP, &with(&params, &[&at, &app.slug]))?;
    }
    let open = query(conn, &sql::OPEN_REQUESTS_OF_APP, &[&app.slug], |row| {
        REQUESTS.read(&InOrder::new(row))
    })?;
    let mut followed = Vec::new();
    for request in open {
        let cards = reads::cards(conn, request.id)?;
        if let Some(change) = follow(&request, &cards) {
            apply(conn, &change)?;
            let lists = REQUESTS.params(&change.request, Write::Assign)?;
            execute(conn, &sql::ASSIGN_REQUEST, &with(&lists, &[&request.id]))?;
            followed.push(request.id);
        }
    }
    Ok(PutApp { created, followed })
}

pub(super) fn file_request(conn: &Connection, new: &NewRequest) -> StoreResult<Filed> {
    // The writer is the only one: nobody can file with this key between the look-up and
    // the insert.
    if let Some(key) = &new.idempotency {
        if let Some(found) = reads::request_by_key(conn, key)? {
            return Ok(key.replay(found));
        }
    }
    let params = REQUESTS.params(&new.request, Write::Insert)?;
    let id = query_first(conn, &sql::INSERT_REQUEST, &with(&params, &[]), |row| {
        Ok(row.get::<_, i64>("id")?)
    })?
    .ok_or_else(|| StoreError::Write("a request insert returned no id".into()))?;
    let now = new.event.at;
    if let Some(key) = &new.idempotency {
        let recorded = execute(
            conn,
            sql::RECORD_KEY,
            &[
                &key.key,
                &key.body_hash,
                &id,
                &millis(now),
                &millis(key.live_after),
            ],
        )?;
        if recorded == 0 {
            return Err(StoreError::Write(
                "an idempotency key looked up as free was live".into(),
            ));
        }
    }
    insert_event(conn, id, &new.event)?;
    insert_cards(conn, id, &new.new_cards, now)?;
    queue_all(conn, Some(id), &new.deliveries, now)?;
    publish_homes(conn, &new.republish_homes, now)?;
    let mut request = new.request.clone();
    request.id = id;
    Ok(Filed::Created(request))
}

/// `Store::apply`: the change, its event, cards and outbox rows.
pub(super) fn apply(conn: &Connection, change: &Change) -> StoreResult<()> {
    let request = &change.request;
    let now = change.event.at;
    if let Some(key) = &change.dedup_key {
        if !claim_key(conn, key, now)? {
            return Err(StoreError::Duplicate);
        }
    }
    let params = REQUESTS.params(request, Write::Change)?;
    if execute(conn, &sql::UPDATE_REQUEST, &with(&params, &[&request.id]))? == 0 {
        // The key stays written: the writer rolls a failed job back (see `writer.rs`).
        return Err(StoreError::Conflict);
    }
    insert_event(conn, request.id, &change.event)?;
    insert_cards(conn, request.id, &change.new_cards, now)?;
    queue_all(conn, Some(request.id), &change.deliveries, now)?;
    publish_homes(conn, &change.republish_homes, now)
}

/// `Store::decide`: reads request `id`, decides, and applies the change.
pub(super) fn decide(
    conn: &Connection,
    id: i64,
    key: &Option<String>,
    decide: &Decide,
) -> StoreResult<Decided> {
    let Some(request) = reads::request(conn, id)? else {
        return Ok(Decided::NotFound);
    };
    let mut change = match super::super::decide_caught(decide, request)? {
        Ok(change) => change,
        Err(refusal) => return Ok(Decided::Refused(refusal)),
    };
    change.dedup_key.clone_from(key);
    apply(conn, &change)?;
    Ok(Decided::Applied(Box::new(change.request)))
}

pub(super) fn insert_event(
    conn: &Connection,
    request_id: i64,
    event: &NewEvent,
) -> StoreResult<()> {
    let before = event.before.as_ref().map(to_json).transpose()?;
    let after = event.after.as_ref().map(to_json).transpose()?;
    execute(
        conn,
        sql::INSERT_EVENT,
        &[
            &request_id,
            &millis(event.at),
            &event.actor,
            &event.kind.as_str(),
            &before,
            &after,
            &event.detail,
        ],
    )?;
    Ok(())
}

/// Inserts the cards and queues a post of each.
fn insert_cards(
    conn: &Connection,
    request_id: i64,
    cards: &[NewCard],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for card in cards {
        let card_id = query_first(
            conn,
            sql::INSERT_CARD,
            &[&request_id, &card.kind.as_str(), &card.recipient],
            |row| Ok(row.get::<_, i64>("id")?),
        )?
        .ok_or_else(|| StoreError::Write("a card insert returned no id".into()))?;
        queue(
            conn,
            Some(request_id),
            &Delivery::PostCard { card_id },
            millis(now),
        )?;
    }
    Ok(())
}

fn queue(
    conn: &Connection,
    request_id: Option<i64>,
    delivery: &Delivery,
    now: i64,
) -> StoreResult<()> {
    let payload = to_json(delivery)?;
    execute(
        conn,
        sql::INSERT_DELIVERY,
        &[&request_id, &delivery.method(), &payload, &now],
    )?;
    Ok(())
}

/// Queues `deliveries` in order.
pub(super) fn queue_all(
    conn: &Connection,
    request_id: Option<i64>,
    deliveries: &[Delivery],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let now = millis(now);
    deliveries
        .iter()
        .try_for_each(|delivery| queue(conn, request_id, delivery, now))
}

/// Queues a republish of the Home tab of each of `users` who uses it, unless one is
/// already waiting (it renders the latest state when sent).
fn publish_homes(conn: &Connection, users: &[String], now: DateTime<Utc>) -> StoreResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let now = millis(now);
    let viewers = query(conn, sql::HOME_VIEWERS_AMONG, &[&to_json(&users)?], |row| {
        Ok(row.get::<_, String>("user_id")?)
    })?;
    for user in viewers {
        let payload = to_json(&Delivery::PublishHome { user })?;
        execute(conn, sql::PUBLISH_HOME, &[&payload, &now])?;
    }
    Ok(())
}

pub(super) fn card_posted(
    conn: &Connection,
    card_id: i64,
    channel: &str,
    ts: &str,
    rendered_version: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let request_id = query_first(
        conn,
        sql::CARD_POSTED,
        &[&card_id, &channel, &ts, &rendered_version],
        |row| Ok(row.get::<_, i64>("request_id")?),
    )?;
    let Some(request_id) = request_id else {
        return Ok(());
    };
    // The writer is the only one: a thread reply is either relayed to this card (it was
    // posted first) or in its summary (the reply came first).
    let version = query_first(conn, sql::REQUEST_VERSION, &[&request_id], |row| {
        Ok(row.get::<_, i64>("version")?)
    })?;
    let mut follow_ups = Vec::new();
    if version.is_some_and(|version| version > rendered_version) {
        follow_ups.push(Delivery::UpdateCard { card_id });
    }
    let thread = reads::thread(conn, request_id)?;
    if !thread.is_empty() {
        follow_ups.push(Delivery::ThreadSummary {
            card_id,
            messages: thread.len(),
        });
    }
    queue_all(conn, Some(request_id), &follow_ups, now)
}

pub(super) fn claim_deliveries(
    conn: &Connection,
    owner: &str,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    limit: u32,
) -> StoreResult<Vec<OutboxItem>> {
    let now = millis(now);
    let until = now.saturating_add(lease.num_milliseconds());
    let mut claimed = query(
        conn,
        &sql::CLAIM,
        &[&owner, &until, &now, &i64::from(limit)],
        |row| rows::claimed(&InOrder::new(row)),
    )?;
    claimed.sort_by_key(|(id, _)| *id);
    let mut items = Vec::with_capacity(claimed.len());
    for (id, item) in claimed {
        match item {
            Ok(item) => items.push(item),
            // An unreadable payload can never be sent: dead-letter it rather than failing
            // every claim that picks it up.
            Err(err) => {
                execute(conn, sql::DEAD_LETTER, &[&id, &err.to_string()])?;
            }
        }
    }
    Ok(items)
}

pub(super) fn deliveries_done(
    conn: &Connection,
    ids: &[i64],
    cards: &[(i64, i64)],
) -> StoreResult<()> {
    for id in ids {
        execute(conn, sql::DELIVERY_DONE, &[id])?;
    }
    // Updates can finish out of order: a card takes the newest version shown, and never
    // goes back to an older one.
    for (card_id, version) in cards {
        execute(conn, sql::CARD_SHOWN, &[card_id, version])?;
    }
    Ok(())
}

pub(super) fn expand_refreshes(
    conn: &Connection,
    owner: &str,
    refreshes: &[(i64, i64)],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let now = millis(now);
    for (id, request_id) in refreshes {
        if execute(conn, sql::FINISH_REFRESH, &[id, &owner, &now])? == 1 {
            execute(conn, &sql::REFRESH_CARDS, &[request_id, &now])?;
        }
    }
    Ok(())
}

pub(super) fn release_claims(conn: &Connection, owner: &str) -> StoreResult<()> {
    execute(conn, sql::RELEASE_CLAIMS, &[&owner])?;
    Ok(())
}

pub(super) fn delivery_postponed(
    conn: &Connection,
    id: i64,
    not_before: DateTime<Utc>,
    error: &str,
    counts_as_attempt: bool,
) -> StoreResult<()> {
    let uncounted = i32::from(!counts_as_attempt);
    execute(
        conn,
        sql::POSTPONE,
        &[&id, &millis(not_before), &error, &uncounted],
    )?;
    Ok(())
}

pub(super) fn delivery_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let failed = query_first(conn, sql::FAIL, &[&id, &error, &millis(now)], |row| {
        Ok((
            row.get::<_, Option<i64>>("request_id")?,
            row.get::<_, String>("method")?,
        ))
    })?;
    if let Some((Some(request_id), method)) = failed {
        let event = NewEvent {
            at: now,
            actor: "system".to_string(),
            kind: EventKind::DeliveryFailed,
            before: None,
            after: None,
            detail: Some(format!("{method} failed: {error}")),
        };
        insert_event(conn, request_id, &event)?;
    }
    Ok(())
}

pub(super) fn retry_delivery(conn: &Connection, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
    Ok(execute(conn, sql::RETRY, &[&id, &millis(now)])? > 0)
}

/// Records `key`; false when it was recorded before.
pub(super) fn claim_key(conn: &Connection, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    Ok(execute(conn, sql::CLAIM_KEY, &[&key, &millis(now)])? == 1)
}

/// Records the note's key and, when it is new, its event and deliveries.
pub(super) fn note_once(conn: &Connection, note: &Note) -> StoreResult<bool> {
    if !claim_key(conn, &note.key, note.at)? {
        return Ok(false);
    }
    if let Some(event) = &note.event {
        insert_event(conn, note.request_id, event)?;
    }
    queue_all(conn, Some(note.request_id), &note.deliveries, note.at)?;
    Ok(true)
}

pub(super) fn save_slack_user(conn: &Connection, user: &SlackUser) -> StoreResult<()> {
    execute(
        conn,
        &sql::SAVE_SLACK_USER,
        &[
            &user.id,
            &user.display_name,
            &user.real_name,
            &user.deleted,
            &user.tz,
            &user.email,
            &millis(user.refreshed_at),
        ],
    )?;
    Ok(())
}

pub(super) fn prune(
    conn: &Connection,
    keys_before: DateTime<Utc>,
    done_before: DateTime<Utc>,
) -> StoreResult<()> {
    execute(conn, sql::FOLD_STATUS_CHANGES, &[])?;
    execute(conn, sql::CLEAR_STATUS_CHANGES, &[])?;
    execute(conn, sql::PRUNE_KEYS, &[&millis(keys_before)])?;
    execute(conn, sql::PRUNE_IDEMPOTENCY_KEYS, &[&millis(keys_before)])?;
    execute(conn, sql::PRUNE_DONE, &[&millis(done_before)])?;
    Ok(())
}

pub(super) fn home_opened(conn: &Connection, user: &str, now: DateTime<Utc>) -> StoreResult<()> {
    execute(conn, sql::HOME_OPENED, &[&user, &millis(now)])?;
    Ok(())
}
