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

use crate::store::columns::{Param, SqlType, Write, REQUESTS};
use crate::store::rows::{self, to_json};
use crate::store::sql::{CHANGED_MEANWHILE, PG_APPLY_ALL};
use crate::store::{Change, Delivery, StoreError, StoreResult};

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
    let events = changes
        .iter()
        .map(|change| {
            let event = &change.event;
            Ok((
                event.before.as_ref().map(to_json).transpose()?,
                event.after.as_ref().map(to_json).transpose()?,
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let lists = Lists::new(changes)?;

    // One array per changing column of `requests`, in list order, as the statement
    // `unnest`s them.
    let mut columns: Vec<Column> = REQUESTS
        .written(Write::Change)
        .map(|column| Column::new(column.access.sql_type(), changes.len()))
        .collect();
    for change in changes {
        let params = REQUESTS.params(&change.request, Write::Change)?;
        for (column, param) in columns.iter_mut().zip(params) {
            column.push(param)?;
        }
    }
    let query = sqlx::query(&PG_APPLY_ALL)
        .bind(changes.iter().map(|c| c.request.id).collect::<Vec<i64>>())
        .bind(
            changes
                .iter()
                .map(|c| c.dedup_key.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            changes
                .iter()
                .map(|c| rows::millis(c.event.at))
                .collect::<Vec<i64>>(),
        );
    let query = columns
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
                .map(|(before, _)| before.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|(_, after)| after.as_deref())
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
                lists.delivery_payloads.push(to_json(delivery)?);
            }
            for user in &change.republish_homes {
                lists.home_of.push(k);
                lists.home_users.push(user);
                lists
                    .home_payloads
                    .push(to_json(&Delivery::PublishHome { user: user.clone() })?);
            }
        }
        Ok(lists)
    }
}

/// One changing column of the changes' requests, as the array bound for it.
enum Column<'a> {
    Text(Vec<Option<std::borrow::Cow<'a, str>>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

impl<'a> Column<'a> {
    fn new(sql_type: SqlType, capacity: usize) -> Column<'a> {
        match sql_type {
            SqlType::Text => Column::Text(Vec::with_capacity(capacity)),
            SqlType::BigInt => Column::Int(Vec::with_capacity(capacity)),
            SqlType::Boolean => Column::Bool(Vec::with_capacity(capacity)),
        }
    }

    fn push(&mut self, param: Param<'a>) -> StoreResult<()> {
        match (self, param) {
            (Column::Text(values), Param::Text(value)) => values.push(Some(value)),
            (Column::Text(values), Param::OptText(value)) => {
                values.push(value.map(std::borrow::Cow::Borrowed))
            }
            (Column::Int(values), Param::Int(value)) => values.push(Some(value)),
            (Column::Int(values), Param::OptInt(value)) => values.push(value),
            (Column::Bool(values), Param::Bool(value)) => values.push(value),
            _ => {
                return Err(StoreError::Write(
                    "a request column's value is not of the column's type".into(),
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

/// `Conflict` for the error raised when a request changed since it was read.
fn conflict_or(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(CHANGED_MEANWHILE) => {
            StoreError::Conflict
        }
        _ => StoreError::Database(err),
    }
}
