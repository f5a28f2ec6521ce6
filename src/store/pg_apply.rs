//! Changes applied on PostgreSQL in one statement, however many there are.
//!
//! Each statement costs the server an executor set-up for its many parts, and the client a
//! round trip with its parameters; profiled, setting up statements that each applied one
//! decision took much of the server's time (bench/analysis.md). Here a batch of
//! decisions is one statement: every list a change carries goes in as a column of arrays.

use std::collections::HashSet;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use super::rows::{self, Param};
use super::{Change, Delivery, StoreError, StoreResult};

/// Applies `changes`, each as `Store::apply` would, and says for each whether it was
/// applied or a `Duplicate`. Their requests must be distinct: one statement cannot apply
/// two changes to one row in turn. Should any request have changed since its change was
/// decided, the statement fails as a whole with `Conflict` and writes nothing (in a
/// transaction, roll it back); outside a transaction it commits by itself, so reading,
/// deciding and applying need no locks and two round trips.
pub(super) async fn apply_all<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    changes: &[Change],
) -> StoreResult<Vec<StoreResult<()>>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut requests = HashSet::with_capacity(changes.len());
    if !changes
        .iter()
        .all(|change| requests.insert(change.request.id))
    {
        return Err(StoreError::Write(
            "one statement cannot apply two changes to one request".into(),
        ));
    }
    let values = changes
        .iter()
        .map(|change| rows::RequestValues::new(&change.request))
        .collect::<StoreResult<Vec<_>>>()?;
    let events = changes
        .iter()
        .map(|change| rows::EventValues::new(&change.event))
        .collect::<StoreResult<Vec<_>>>()?;
    let lists = Lists::new(changes)?;

    let mut changeable: Vec<Column> = Vec::new();
    for request in &values {
        for (at, param) in request.changeable().into_iter().enumerate() {
            if changeable.len() == at {
                changeable.push(Column::for_param(param));
            }
            changeable[at].push(param)?;
        }
    }
    let query = sqlx::query(APPLY_ALL)
        .bind(changes.iter().map(|c| c.request.id).collect::<Vec<i64>>())
        .bind(
            changes
                .iter()
                .map(|c| c.dedup_key.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.at).collect::<Vec<i64>>());
    let query = changeable
        .into_iter()
        .fold(query, |query, column| column.bind_to(query));
    let outcomes: Vec<(i64, bool)> = query
        .bind(
            changes
                .iter()
                .map(|c| c.event.actor.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|c| c.event.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| e.before.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| e.after.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|c| c.event.detail.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(&lists.card_of)
        .bind(&lists.card_kinds)
        .bind(&lists.card_recipients)
        .bind(&lists.delivery_of)
        .bind(&lists.delivery_methods)
        .bind(&lists.delivery_payloads)
        .bind(&lists.home_of)
        .bind(&lists.home_users)
        .bind(&lists.home_payloads)
        .try_map(|row: PgRow| Ok((row.try_get("k")?, row.try_get("duplicate")?)))
        .fetch_all(executor)
        .await
        .map_err(conflict_or)?;
    let numbered = (1_i64..).zip(&outcomes).all(|(k, (at, _))| k == *at);
    if outcomes.len() != changes.len() || !numbered {
        return Err(StoreError::Write(format!(
            "{} changes applied in one statement, outcomes out of order or missing",
            changes.len()
        )));
    }
    Ok(outcomes
        .into_iter()
        .map(|(_, duplicate)| match duplicate {
            true => Err(StoreError::Duplicate),
            false => Ok(()),
        })
        .collect())
}

/// The lists the changes carry, flattened: entry `i` of each list belongs to the change
/// numbered `…_of[i]` (from 1, the statement's `WITH ORDINALITY`).
struct Lists<'a> {
    card_of: Vec<i64>,
    card_kinds: Vec<&'a str>,
    card_recipients: Vec<&'a str>,
    delivery_of: Vec<i64>,
    delivery_methods: Vec<&'a str>,
    delivery_payloads: Vec<String>,
    home_of: Vec<i64>,
    home_users: Vec<&'a str>,
    home_payloads: Vec<String>,
}

impl<'a> Lists<'a> {
    fn new(changes: &'a [Change]) -> StoreResult<Lists<'a>> {
        let mut lists = Lists {
            card_of: Vec::new(),
            card_kinds: Vec::new(),
            card_recipients: Vec::new(),
            delivery_of: Vec::new(),
            delivery_methods: Vec::new(),
            delivery_payloads: Vec::new(),
            home_of: Vec::new(),
            home_users: Vec::new(),
            home_payloads: Vec::new(),
        };
        for (k, change) in (1_i64..).zip(changes) {
            for card in &change.new_cards {
                lists.card_of.push(k);
                lists.card_kinds.push(card.kind.as_str());
                lists.card_recipients.push(&card.recipient);
            }
            for delivery in &change.deliveries {
                lists.delivery_of.push(k);
                lists.delivery_methods.push(delivery.method());
                lists.delivery_payloads.push(rows::to_json(delivery)?);
            }
            for user in &change.republish_homes {
                lists.home_of.push(k);
                lists.home_users.push(user);
                lists
                    .home_payloads
                    .push(rows::to_json(&Delivery::PublishHome {
                        user: user.clone(),
                    })?);
            }
        }
        Ok(lists)
    }
}

/// One changeable column of the changes' requests, as the array bound for it.
enum Column<'a> {
    Text(Vec<Option<&'a str>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

impl<'a> Column<'a> {
    fn for_param(param: Param<'a>) -> Column<'a> {
        match param {
            Param::Text(_) | Param::OptText(_) => Column::Text(Vec::new()),
            Param::Int(_) | Param::OptInt(_) => Column::Int(Vec::new()),
            Param::Bool(_) => Column::Bool(Vec::new()),
        }
    }

    fn push(&mut self, param: Param<'a>) -> StoreResult<()> {
        match (self, param) {
            (Column::Text(values), Param::Text(value)) => values.push(Some(value)),
            (Column::Text(values), Param::OptText(value)) => values.push(value),
            (Column::Int(values), Param::Int(value)) => values.push(Some(value)),
            (Column::Int(values), Param::OptInt(value)) => values.push(value),
            (Column::Bool(values), Param::Bool(value)) => values.push(value),
            _ => {
                return Err(StoreError::Write(
                    "a request column changed type between changes".into(),
                ))
            }
        }
        Ok(())
    }

    fn bind_to(self, query: Query<'a, Postgres, PgArguments>) -> Query<'a, Postgres, PgArguments> {
        match self {
            Column::Text(values) => query.bind(values),
            Column::Int(values) => query.bind(values),
            Column::Bool(values) => query.bind(values),
        }
    }
}

/// `Store::apply` for many changes, as one statement. Data-modifying CTEs all run, once,
/// on one snapshot and in no set order, so every write but the key's is made conditional on
/// `updated`: a change is applied only if its key is new and its request still has the
/// version it was decided on. Outbox rows are queued change by change, in the order
/// `apply_in_transaction` queues them.
///
/// The key is looked up by inserting it: the unique index decides, whatever plan the
/// server has cached. A plan with a join instead, cached while `processed_keys` was
/// nearly empty, scanned the whole table for every statement after. So the key of a
/// change whose request moved on is recorded all the same, and the statement must not
/// stand: the last `SELECT` raises `accessbot_changed_meanwhile()` for such a change.
///
/// `$1` request ids, `$2` keys, `$3` times, `$4`…`$22` the changeable columns, `$23`…`$27`
/// the events; then the flattened lists, each as (change number, …): `$28`…`$30` new
/// cards (kind, recipient), `$31`…`$33` deliveries (method, payload), `$34`…`$36` Home
/// tabs to republish (user, payload).
const APPLY_ALL: &str = concat!(
    "WITH c AS ( \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], \
         $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
         $21, $22, $23::text[], $24::text[], $25::text[], $26::text[], $27::text[]) \
         WITH ORDINALITY \
         AS c(id, key, at, ",
    rows::request_changeable!(),
    ", actor, kind, before_json, after_json, detail, k) \
     ), fresh AS ( \
         INSERT INTO processed_keys (key, at) SELECT c.key, c.at FROM c \
         WHERE c.key IS NOT NULL ON CONFLICT DO NOTHING RETURNING key \
     ), updated AS ( \
         UPDATE requests r SET (",
    rows::request_changeable!(),
    ") = (",
    rows::request_changeable!("c."),
    ") FROM c WHERE r.id = c.id AND r.version = c.version - 1 \
         AND (c.key IS NULL OR c.key IN (SELECT key FROM fresh)) \
         RETURNING c.k, c.id, c.at \
     ), event AS ( \
         INSERT INTO events (request_id, at, actor, kind, before_json, after_json, detail) \
         SELECT c.id, c.at, c.actor, c.kind, c.before_json, c.after_json, c.detail \
         FROM c JOIN updated u ON u.k = c.k ORDER BY c.k \
     ), new_cards AS ( \
         INSERT INTO cards (request_id, kind, recipient, rendered_version) \
         SELECT u.id, n.kind, n.recipient, 0 \
         FROM unnest($28::bigint[], $29::text[], $30::text[]) WITH ORDINALITY \
         AS n(k, kind, recipient, i) JOIN updated u ON u.k = n.k \
         ORDER BY n.k, n.i RETURNING id, request_id \
     ), queued AS ( \
         INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
         created_at, updated_at) \
         SELECT q.request_id, q.method, q.payload, 'pending', 0, q.at, q.at, q.at FROM ( \
             SELECT u.k, 1 AS part, n.id AS i, n.request_id, \
             'chat.postMessage' AS method, ",
    rows::card_payload!("post_card", "n.id"),
    " AS payload, u.at \
             FROM new_cards n JOIN updated u ON u.id = n.request_id \
             UNION ALL \
             SELECT u.k, 2, d.i, u.id, d.method, d.payload, u.at \
             FROM unnest($31::bigint[], $32::text[], $33::text[]) WITH ORDINALITY \
             AS d(k, method, payload, i) JOIN updated u ON u.k = d.k \
             UNION ALL \
             SELECT h.k, 3, h.i, NULL, 'views.publish', h.payload, h.at FROM ( \
                 SELECT DISTINCT ON (h.payload) u.k, h.i, h.payload, u.at \
                 FROM unnest($34::bigint[], $35::text[], $36::text[]) WITH ORDINALITY \
                 AS h(k, user_id, payload, i) JOIN updated u ON u.k = h.k \
                 JOIN home_viewers v ON v.user_id = h.user_id \
                 WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.status = 'pending' \
                 AND o.method = 'views.publish' AND o.payload = h.payload \
                 AND o.lease_owner IS NULL) \
                 ORDER BY h.payload, u.k, h.i \
             ) h \
         ) q ORDER BY q.k, q.part, q.i \
     ) \
     SELECT o.k, o.duplicate, \
     CASE WHEN o.applied OR o.duplicate THEN o.applied \
     ELSE accessbot_changed_meanwhile() END AS applied FROM ( \
         SELECT c.k, c.key IS NOT NULL AND c.key NOT IN (SELECT key FROM fresh) AS duplicate, \
         EXISTS (SELECT 1 FROM updated u WHERE u.k = c.k) AS applied FROM c \
     ) o ORDER BY o.k"
);

/// The SQLSTATE `accessbot_changed_meanwhile()` raises (migration 0004).
const CHANGED_MEANWHILE: &str = "AB409";

/// `Conflict` for the error raised when a request changed since it was read.
fn conflict_or(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(CHANGED_MEANWHILE) => {
            StoreError::Conflict
        }
        _ => StoreError::Database(err),
    }
}
