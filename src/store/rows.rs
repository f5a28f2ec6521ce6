//! What the SQLite and PostgreSQL stores share: rows as stored, their conversion to and
//! from the domain, and the [`Store`](super::Store) implementation itself.
//!
//! Both schemas have the same tables and column types (timestamps are unix milliseconds,
//! lists are JSON text) and every statement uses `$N` placeholders, which both sqlx
//! drivers understand. So one body of code serves both backends: [`impl_store!`] expands
//! it for a concrete `sqlx::Database`, and each backend only says how to connect and how
//! to lock the rows it claims.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Card, Delivery, FailedDelivery, OutboxItem, StoreError, StoreResult};
use crate::domain::{AccessRequest, App, AuditEvent, CardKind, NewEvent, Status};

/// The columns of `requests` that [`RequestRow`] reads.
macro_rules! request_columns {
    () => {
        "id, app, app_name, target_user, requester, permission, groups, comment, \
         access_length, status, approvers, app_admins, admin_channel, created_at, updated_at, \
         approved_by, approved_at, decided_by, decided_at, provisioned_at, expires_at, \
         removed_by, removed_at, denial_feedback, expiry_reminded, stage_reminded, version, \
         released_by, released_at"
    };
}
pub(super) use request_columns;

/// The columns of `requests` fixed when a request is filed: who asked, for whom, for which
/// app, and who decides. Decisions never change them (see [`request_changeable!`]).
macro_rules! request_fixed {
    () => {
        "app, app_name, target_user, requester, comment, approvers, app_admins, admin_channel, \
         created_at"
    };
}

/// The columns of `requests` that decisions change; the last is `version`. With a prefix
/// (`request_changeable!("c.")`), each name is qualified by it.
macro_rules! request_changeable {
    () => {
        $crate::store::rows::request_changeable!("")
    };
    ($p:literal) => {
        concat!(
            $p,
            "permission, ",
            $p,
            "groups, ",
            $p,
            "access_length, ",
            $p,
            "status, ",
            $p,
            "updated_at, ",
            $p,
            "approved_by, ",
            $p,
            "approved_at, ",
            $p,
            "decided_by, ",
            $p,
            "decided_at, ",
            $p,
            "provisioned_at, ",
            $p,
            "expires_at, ",
            $p,
            "removed_by, ",
            $p,
            "removed_at, ",
            $p,
            "denial_feedback, ",
            $p,
            "expiry_reminded, ",
            $p,
            "stage_reminded, ",
            $p,
            "released_by, ",
            $p,
            "released_at, ",
            $p,
            "version"
        )
    };
}

/// The columns of `requests` that [`RequestValues`] writes, as `$1`…`$28` in this order.
macro_rules! request_values {
    () => {
        concat!(
            $crate::store::rows::request_fixed!(),
            ", ",
            $crate::store::rows::request_changeable!()
        )
    };
}
pub(super) use {request_changeable, request_fixed, request_values};

/// SQL for the outbox payload of a `Delivery` about one card (`$kind` is its serde tag,
/// `update_card` or `post_card`), from the card id column `$id`: serde's exact shape, so
/// the worker reads these rows like any other.
macro_rules! card_payload {
    ($kind:literal, $id:literal) => {
        concat!(
            "'{\"type\":\"",
            $kind,
            "\",\"card_id\":' || ",
            $id,
            " || '}'"
        )
    };
}
pub(super) use card_payload;

/// Statements of a decision (see `Store::apply`), shared by the sqlx code below and the
/// SQLite group commit (`group_commit.rs`). Parameters are `$N`, bound by number.
pub(super) mod sql {
    /// Records a change's deduplication key (`$1`) at `$2`; no row when it was seen before.
    pub const DEDUP_KEY: &str =
        "INSERT INTO processed_keys (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

    /// Writes the columns a decision changes (`$1`…`$19`, see
    /// [`super::RequestValues::changeable`]) to request `$20`, if it still has the version
    /// the change was decided on. The fixed columns are left alone, and so are their
    /// indexes.
    pub const UPDATE_REQUEST: &str = concat!(
        "UPDATE requests SET (",
        super::request_changeable!(),
        ") = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19) WHERE id = $20 AND version = $19 - 1"
    );

    /// Queues an update of every card of request `$1`, at `$2`. The payload is
    /// `Delivery::UpdateCard { card_id }` as serde writes it.
    pub const REFRESH_CARDS: &str = concat!(
        "INSERT INTO outbox (request_id, method, payload, status, attempts, \
         not_before, created_at, updated_at) \
         SELECT $1, 'chat.update', ",
        super::card_payload!("update_card", "id"),
        ", 'pending', 0, $2, $2, $2 FROM cards WHERE request_id = $1 ORDER BY id"
    );

    pub const INSERT_EVENT: &str =
        "INSERT INTO events (request_id, at, actor, kind, before_json, after_json, \
         detail) VALUES ($1, $2, $3, $4, $5, $6, $7)";

    pub const INSERT_CARD: &str = "INSERT INTO cards (request_id, kind, recipient, \
         rendered_version) VALUES ($1, $2, $3, 0) RETURNING id";

    /// Queues one delivery: request `$1`, method `$2`, payload `$3`, at `$4`.
    pub const INSERT_DELIVERY: &str =
        "INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
         created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)";

    /// Queues a republish of a Home tab (payload `$1`, at `$2`) unless one is already
    /// waiting: it renders the latest state when it is sent.
    pub const PUBLISH_HOME: &str =
        "INSERT INTO outbox (request_id, method, payload, status, attempts, \
         not_before, created_at, updated_at) \
         SELECT NULL, 'views.publish', $1, 'pending', 0, $2, $2, $2 WHERE NOT EXISTS \
         (SELECT 1 FROM outbox WHERE status = 'pending' AND method = 'views.publish' \
         AND payload = $1 AND lease_owner IS NULL)";
}

/// One bound value, so that one list of a row's values serves both database drivers.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn opt_millis(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(millis)
}

pub(super) fn from_millis(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} is out of range")))
}

fn opt_from_millis(ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(from_millis).transpose()
}

pub(super) fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|err| StoreError::Corrupt(err.to_string()))
}

fn list(column: &str, text: &str) -> StoreResult<Vec<String>> {
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

#[derive(sqlx::FromRow)]
pub(super) struct AppRow {
    slug: String,
    name: String,
    admins: String,
    approvers: String,
    permissions: String,
    groups: String,
    admin_channel: Option<String>,
}

impl AppRow {
    pub(super) fn into_app(self) -> StoreResult<App> {
        Ok(App {
            admins: list("admins", &self.admins)?,
            approvers: list("approvers", &self.approvers)?,
            permissions: list("permissions", &self.permissions)?,
            groups: list("groups", &self.groups)?,
            slug: self.slug,
            name: self.name,
            admin_channel: self.admin_channel,
        })
    }
}

/// An app's lists as stored.
pub(super) struct AppValues {
    pub admins: String,
    pub approvers: String,
    pub permissions: String,
    pub groups: String,
}

impl AppValues {
    pub(super) fn new(app: &App) -> StoreResult<AppValues> {
        Ok(AppValues {
            admins: to_json(&app.admins)?,
            approvers: to_json(&app.approvers)?,
            permissions: to_json(&app.permissions)?,
            groups: to_json(&app.groups)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RequestRow {
    pub(super) id: i64,
    pub(super) app: String,
    pub(super) app_name: String,
    pub(super) target_user: String,
    pub(super) requester: String,
    pub(super) permission: String,
    pub(super) groups: String,
    pub(super) comment: String,
    pub(super) access_length: String,
    pub(super) status: String,
    pub(super) approvers: String,
    pub(super) app_admins: String,
    pub(super) admin_channel: Option<String>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
    pub(super) approved_by: Option<String>,
    pub(super) approved_at: Option<i64>,
    pub(super) decided_by: Option<String>,
    pub(super) decided_at: Option<i64>,
    pub(super) provisioned_at: Option<i64>,
    pub(super) expires_at: Option<i64>,
    pub(super) removed_by: Option<String>,
    pub(super) removed_at: Option<i64>,
    pub(super) denial_feedback: Option<String>,
    pub(super) expiry_reminded: bool,
    pub(super) stage_reminded: bool,
    pub(super) version: i64,
    pub(super) released_by: Option<String>,
    pub(super) released_at: Option<i64>,
}

impl RequestRow {
    pub(super) fn into_request(self) -> StoreResult<AccessRequest> {
        let id = self.id;
        let corrupt = |what: String| StoreError::Corrupt(format!("request {id}: {what}"));
        Ok(AccessRequest {
            id,
            groups: list("groups", &self.groups)?,
            access_length: self
                .access_length
                .parse()
                .map_err(|err| corrupt(format!("{err}")))?,
            status: self
                .status
                .parse()
                .map_err(|err| corrupt(format!("{err}")))?,
            approvers: list("approvers", &self.approvers)?,
            app_admins: list("app_admins", &self.app_admins)?,
            created_at: from_millis(self.created_at)?,
            updated_at: from_millis(self.updated_at)?,
            approved_at: opt_from_millis(self.approved_at)?,
            decided_at: opt_from_millis(self.decided_at)?,
            provisioned_at: opt_from_millis(self.provisioned_at)?,
            expires_at: opt_from_millis(self.expires_at)?,
            removed_at: opt_from_millis(self.removed_at)?,
            released_at: opt_from_millis(self.released_at)?,
            released_by: self.released_by,
            app: self.app,
            app_name: self.app_name,
            target_user: self.target_user,
            requester: self.requester,
            permission: self.permission,
            comment: self.comment,
            admin_channel: self.admin_channel,
            approved_by: self.approved_by,
            decided_by: self.decided_by,
            removed_by: self.removed_by,
            denial_feedback: self.denial_feedback,
            expiry_reminded: self.expiry_reminded,
            stage_reminded: self.stage_reminded,
            version: self.version,
        })
    }
}

/// A request's columns as written, in the order of [`request_values!`].
pub(super) struct RequestValues<'a> {
    pub request: &'a AccessRequest,
    pub groups: String,
    pub access_length: String,
    pub approvers: String,
    pub app_admins: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub approved_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub provisioned_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub removed_at: Option<i64>,
    pub released_at: Option<i64>,
}

impl<'a> RequestValues<'a> {
    pub(super) fn new(request: &'a AccessRequest) -> StoreResult<RequestValues<'a>> {
        Ok(RequestValues {
            request,
            groups: to_json(&request.groups)?,
            access_length: request.access_length.to_string(),
            approvers: to_json(&request.approvers)?,
            app_admins: to_json(&request.app_admins)?,
            created_at: millis(request.created_at),
            updated_at: millis(request.updated_at),
            approved_at: opt_millis(request.approved_at),
            decided_at: opt_millis(request.decided_at),
            provisioned_at: opt_millis(request.provisioned_at),
            expires_at: opt_millis(request.expires_at),
            removed_at: opt_millis(request.removed_at),
            released_at: opt_millis(request.released_at),
        })
    }
}

impl RequestValues<'_> {
    /// The values of [`request_values!`], in its order (`$1`…`$28`).
    pub(super) fn params(&self) -> [Param<'_>; 28] {
        let mut params = [Param::Int(0); 28];
        params[..9].copy_from_slice(&self.fixed());
        params[9..].copy_from_slice(&self.changeable());
        params
    }

    /// The values of [`request_fixed!`], in its order.
    fn fixed(&self) -> [Param<'_>; 9] {
        use Param::{Int, OptText, Text};
        let r = self.request;
        [
            Text(&r.app),
            Text(&r.app_name),
            Text(&r.target_user),
            Text(&r.requester),
            Text(&r.comment),
            Text(&self.approvers),
            Text(&self.app_admins),
            OptText(r.admin_channel.as_deref()),
            Int(self.created_at),
        ]
    }

    /// The values of [`request_changeable!`], in its order.
    pub(super) fn changeable(&self) -> [Param<'_>; 19] {
        use Param::{Bool, Int, OptInt, OptText, Text};
        let r = self.request;
        [
            Text(&r.permission),
            Text(&self.groups),
            Text(&self.access_length),
            Text(r.status.as_str()),
            Int(self.updated_at),
            OptText(r.approved_by.as_deref()),
            OptInt(self.approved_at),
            OptText(r.decided_by.as_deref()),
            OptInt(self.decided_at),
            OptInt(self.provisioned_at),
            OptInt(self.expires_at),
            OptText(r.removed_by.as_deref()),
            OptInt(self.removed_at),
            OptText(r.denial_feedback.as_deref()),
            Bool(r.expiry_reminded),
            Bool(r.stage_reminded),
            OptText(r.released_by.as_deref()),
            OptInt(self.released_at),
            Int(r.version),
        ]
    }
}

/// An event's columns as written.
pub(super) struct EventValues {
    pub at: i64,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl EventValues {
    pub(super) fn new(event: &NewEvent) -> StoreResult<EventValues> {
        Ok(EventValues {
            at: millis(event.at),
            before: event.before.as_ref().map(to_json).transpose()?,
            after: event.after.as_ref().map(to_json).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: i64,
    request_id: i64,
    at: i64,
    actor: String,
    kind: String,
    before_json: Option<String>,
    after_json: Option<String>,
    detail: Option<String>,
}

impl EventRow {
    pub(super) fn into_event(self) -> StoreResult<AuditEvent> {
        Ok(AuditEvent {
            id: self.id,
            request_id: self.request_id,
            at: from_millis(self.at)?,
            actor: self.actor,
            kind: self.kind,
            before: json_value("before_json", self.before_json)?,
            after: json_value("after_json", self.after_json)?,
            detail: self.detail,
        })
    }
}

/// A card with its request, read together.
#[derive(sqlx::FromRow)]
pub(super) struct CardWithRequestRow {
    card_id: i64,
    card_kind: String,
    card_recipient: String,
    card_channel: Option<String>,
    card_ts: Option<String>,
    card_version: i64,
    #[sqlx(flatten)]
    request: RequestRow,
}

impl CardWithRequestRow {
    pub(super) fn into_pair(self) -> StoreResult<(Card, AccessRequest)> {
        let request = self.request.into_request()?;
        let card = CardRow {
            id: self.card_id,
            request_id: request.id,
            kind: self.card_kind,
            recipient: self.card_recipient,
            channel: self.card_channel,
            ts: self.card_ts,
            rendered_version: self.card_version,
        }
        .into_card()?;
        Ok((card, request))
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CardRow {
    id: i64,
    request_id: i64,
    kind: String,
    recipient: String,
    channel: Option<String>,
    ts: Option<String>,
    rendered_version: i64,
}

impl CardRow {
    pub(super) fn into_card(self) -> StoreResult<Card> {
        let kind = CardKind::parse(&self.kind).ok_or_else(|| {
            StoreError::Corrupt(format!("card {}: unknown kind {:?}", self.id, self.kind))
        })?;
        Ok(Card {
            id: self.id,
            request_id: self.request_id,
            kind,
            recipient: self.recipient,
            channel: self.channel,
            ts: self.ts,
            rendered_version: self.rendered_version,
        })
    }
}

/// A row just claimed; `attempts` already counts this claim.
#[derive(sqlx::FromRow)]
pub(super) struct ClaimedRow {
    pub id: i64,
    request_id: Option<i64>,
    payload: String,
    attempts: i32,
    last_error: Option<String>,
}

impl ClaimedRow {
    pub(super) fn into_item(self) -> StoreResult<OutboxItem> {
        Ok(OutboxItem {
            id: self.id,
            request_id: self.request_id,
            delivery: delivery(&self.payload)?,
            attempts: self.attempts.saturating_sub(1),
            last_error: self.last_error,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct FailedRow {
    id: i64,
    request_id: Option<i64>,
    method: String,
    last_error: Option<String>,
    attempts: i32,
    created_at: i64,
    updated_at: i64,
}

impl FailedRow {
    pub(super) fn into_failed(self) -> StoreResult<FailedDelivery> {
        Ok(FailedDelivery {
            id: self.id,
            request_id: self.request_id,
            method: self.method,
            error: self.last_error.unwrap_or_default(),
            attempts: self.attempts,
            created_at: from_millis(self.created_at)?,
            failed_at: from_millis(self.updated_at)?,
        })
    }
}

/// Requests by status, with a zero for every status that has none.
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

/// Implements [`Store`](super::Store) for `$store`, a struct with a `read`
/// `sqlx::Pool<$db>`, a `begin_write` method that starts the transaction every write goes
/// through, and `apply_change` and `decide_change` methods behind `Store::apply` and
/// `Store::decide`. `$row_lock` locks a request's row for the rest of a transaction
/// (`FOR UPDATE` on PostgreSQL). `$claim_lock` is appended to the query that picks the
/// deliveries to claim (`FOR UPDATE SKIP LOCKED` on PostgreSQL, where several replicas
/// claim at once).
macro_rules! impl_store {
    ($store:ident, $db:ty, claim_lock = $claim_lock:literal, row_lock = $row_lock:literal) => {
        type Conn = <$db as sqlx::Database>::Connection;

        impl $store {
            async fn insert_event(
                conn: &mut Conn,
                request_id: i64,
                event: &$crate::domain::NewEvent,
            ) -> $crate::store::StoreResult<()> {
                let values = rows::EventValues::new(event)?;
                sqlx::query(rows::sql::INSERT_EVENT)
                .bind(request_id)
                .bind(values.at)
                .bind(&event.actor)
                .bind(event.kind.as_str())
                .bind(&values.before)
                .bind(&values.after)
                .bind(&event.detail)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn insert_deliveries(
                conn: &mut Conn,
                request_id: Option<i64>,
                deliveries: &[$crate::store::Delivery],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                if deliveries.is_empty() {
                    return Ok(());
                }
                let payloads = deliveries
                    .iter()
                    .map(rows::to_json)
                    .collect::<$crate::store::StoreResult<Vec<String>>>()?;
                // One statement for all of them: statements, not rows, are what cost here.
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO outbox (request_id, method, payload, status, attempts, \
                     not_before, created_at, updated_at) ",
                );
                query.push_values(
                    deliveries.iter().zip(&payloads),
                    |mut row, (delivery, payload)| {
                        row.push_bind(request_id)
                            .push_bind(delivery.method())
                            .push_bind(payload)
                            .push("'pending'")
                            .push("0")
                            .push_bind(now)
                            .push_bind(now)
                            .push_bind(now);
                    },
                );
                query.build().execute(&mut *conn).await?;
                Ok(())
            }

            /// Inserts the cards and queues a post of each.
            async fn insert_cards(
                conn: &mut Conn,
                request_id: i64,
                cards: &[$crate::store::NewCard],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                for card in cards {
                    let card_id: i64 = sqlx::query_scalar(rows::sql::INSERT_CARD)
                    .bind(request_id)
                    .bind(card.kind.as_str())
                    .bind(&card.recipient)
                    .fetch_one(&mut *conn)
                    .await?;
                    let post = $crate::store::Delivery::PostCard { card_id };
                    Self::insert_deliveries(conn, Some(request_id), &[post], now).await?;
                }
                Ok(())
            }

            /// Queues a republish of the Home tab of each of `users` who uses it, unless one
            /// is already waiting (it renders the latest state when sent).
            async fn insert_home_publishes(
                conn: &mut Conn,
                users: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                if users.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT user_id FROM home_viewers WHERE user_id IN (",
                );
                let mut separated = query.separated(", ");
                for user in users {
                    separated.push_bind(user);
                }
                query.push(")");
                let viewers: Vec<String> = query
                    .build_query_scalar()
                    .fetch_all(&mut *conn)
                    .await?;
                for user in viewers {
                    let delivery = $crate::store::Delivery::PublishHome { user };
                    let payload = rows::to_json(&delivery)?;
                    sqlx::query(rows::sql::PUBLISH_HOME)
                    .bind(&payload)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }

            async fn requests_where(
                &self,
                condition: &str,
                at: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AccessRequest>> {
                let sql = format!(
                    "SELECT {} FROM requests WHERE {condition} ORDER BY id LIMIT $2",
                    rows::request_columns!()
                );
                let rows: Vec<rows::RequestRow> = sqlx::query_as(&sql)
                    .bind(at)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                rows.into_iter().map(rows::RequestRow::into_request).collect()
            }

            async fn thread_in(
                conn: &mut Conn,
                request_id: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::ThreadMessage>> {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT at, user_id, text FROM thread_messages WHERE request_id = $1 \
                     ORDER BY id",
                )
                .bind(request_id)
                .fetch_all(&mut *conn)
                .await?;
                rows.into_iter()
                    .map(|(at, user, text)| {
                        Ok($crate::domain::ThreadMessage {
                            at: rows::from_millis(at)?,
                            user,
                            text,
                        })
                    })
                    .collect()
            }

            async fn request_by_key(
                &self,
                key: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::AccessRequest>> {
                let row: Option<rows::RequestRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    rows::request_columns!(),
                    " FROM requests WHERE idempotency_key = $1"
                ))
                .bind(key)
                .fetch_optional(&self.read)
                .await?;
                row.map(rows::RequestRow::into_request).transpose()
            }
        }

        /// Binds `params` as `$1`, `$2`, ….
        fn bind_params<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            params: &[rows::Param<'q>],
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            params.iter().fold(query, |query, param| match *param {
                rows::Param::Text(v) => query.bind(v),
                rows::Param::OptText(v) => query.bind(v),
                rows::Param::Int(v) => query.bind(v),
                rows::Param::OptInt(v) => query.bind(v),
                rows::Param::Bool(v) => query.bind(v),
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn ping(&self) -> $crate::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            async fn put_app(
                &self,
                app: &$crate::domain::App,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                let lists = rows::AppValues::new(app)?;
                let mut tx = self.begin_write().await?;
                let inserted = sqlx::query(
                    "INSERT INTO apps (slug, name, admins, approvers, permissions, groups, \
                     admin_channel, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (slug) DO NOTHING",
                )
                .bind(&app.slug)
                .bind(&app.name)
                .bind(&lists.admins)
                .bind(&lists.approvers)
                .bind(&lists.permissions)
                .bind(&lists.groups)
                .bind(&app.admin_channel)
                .bind(rows::millis(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    sqlx::query(
                        "UPDATE apps SET name = $2, admins = $3, approvers = $4, \
                         permissions = $5, groups = $6, admin_channel = $7, updated_at = $8 \
                         WHERE slug = $1",
                    )
                    .bind(&app.slug)
                    .bind(&app.name)
                    .bind(&lists.admins)
                    .bind(&lists.approvers)
                    .bind(&lists.permissions)
                    .bind(&lists.groups)
                    .bind(&app.admin_channel)
                    .bind(rows::millis(now))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(inserted > 0)
            }

            async fn app(
                &self,
                slug: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::App>> {
                let row: Option<rows::AppRow> = sqlx::query_as(
                    "SELECT slug, name, admins, approvers, permissions, groups, admin_channel \
                     FROM apps WHERE slug = $1",
                )
                .bind(slug)
                .fetch_optional(&self.read)
                .await?;
                row.map(rows::AppRow::into_app).transpose()
            }

            async fn apps(&self) -> $crate::store::StoreResult<Vec<$crate::domain::App>> {
                let rows: Vec<rows::AppRow> = sqlx::query_as(
                    "SELECT slug, name, admins, approvers, permissions, groups, admin_channel \
                     FROM apps ORDER BY slug",
                )
                .fetch_all(&self.read)
                .await?;
                rows.into_iter().map(rows::AppRow::into_app).collect()
            }

            async fn file_request(
                &self,
                new: $crate::store::NewRequest,
            ) -> $crate::store::StoreResult<$crate::store::Filed> {
                use $crate::store::Filed;
                let now = rows::millis(new.event.at);
                let mut tx = self.begin_write().await?;
                if let Some(key) = &new.idempotency_key {
                    let row: Option<rows::RequestRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        rows::request_columns!(),
                        " FROM requests WHERE idempotency_key = $1"
                    ))
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(row) = row {
                        return Ok(Filed::Existing(row.into_request()?));
                    }
                }
                let values = rows::RequestValues::new(&new.request)?;
                let params = values.params();
                let inserted = bind_params(
                    sqlx::query(concat!(
                        "INSERT INTO requests (",
                        rows::request_values!(),
                        ", idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                         $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, \
                         $25, $26, $27, $28, $29) RETURNING id"
                    )),
                    &params,
                )
                .bind(&new.idempotency_key)
                .fetch_one(&mut *tx)
                .await;
                let id: i64 = match inserted {
                    Ok(row) => sqlx::Row::try_get(&row, "id")?,
                    Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                        // Another filing with the same key committed first.
                        tx.rollback().await?;
                        if let Some(key) = &new.idempotency_key {
                            if let Some(existing) = self.request_by_key(key).await? {
                                return Ok(Filed::Existing(existing));
                            }
                        }
                        return Err(sqlx::Error::Database(err).into());
                    }
                    Err(err) => return Err(err.into()),
                };
                Self::insert_event(&mut tx, id, &new.event).await?;
                Self::insert_cards(&mut tx, id, &new.new_cards, now).await?;
                Self::insert_deliveries(&mut tx, Some(id), &new.deliveries, now).await?;
                Self::insert_home_publishes(&mut tx, &new.republish_homes, now).await?;
                tx.commit().await?;
                let mut request = new.request;
                request.id = id;
                Ok(Filed::Created(request))
            }

            async fn request(
                &self,
                id: i64,
            ) -> $crate::store::StoreResult<Option<$crate::domain::AccessRequest>> {
                let row: Option<rows::RequestRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    rows::request_columns!(),
                    " FROM requests WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
                row.map(rows::RequestRow::into_request).transpose()
            }

            async fn requests(
                &self,
                filter: &$crate::store::RequestFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AccessRequest>> {
                let limit = if filter.limit == 0 { 50 } else { filter.limit };
                let rows: Vec<rows::RequestRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    rows::request_columns!(),
                    " FROM requests WHERE ($1 IS NULL OR status = $1) \
                     AND ($2 IS NULL OR app = $2) \
                     AND ($3 IS NULL OR requester = $3 OR target_user = $3) \
                     AND ($4 IS NULL OR id < $4) \
                     ORDER BY id DESC LIMIT $5"
                ))
                .bind(filter.status.map(|s| s.as_str()))
                .bind(&filter.app)
                .bind(&filter.user)
                .bind(filter.before_id)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?;
                rows.into_iter().map(rows::RequestRow::into_request).collect()
            }

            async fn events(
                &self,
                request_id: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AuditEvent>> {
                let rows: Vec<rows::EventRow> = sqlx::query_as(
                    "SELECT id, request_id, at, actor, kind, before_json, after_json, detail \
                     FROM events WHERE request_id = $1 ORDER BY id",
                )
                .bind(request_id)
                .fetch_all(&self.read)
                .await?;
                rows.into_iter().map(rows::EventRow::into_event).collect()
            }

            async fn apply(
                &self,
                change: $crate::store::Change,
            ) -> $crate::store::StoreResult<()> {
                self.apply_change(change).await
            }

            async fn decide(
                &self,
                id: i64,
                key: Option<String>,
                decide: $crate::store::Decide,
            ) -> $crate::store::StoreResult<$crate::store::Decided> {
                self.decide_change(id, key, decide).await
            }

            async fn append_event(
                &self,
                request_id: i64,
                event: &$crate::domain::NewEvent,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                Self::insert_event(&mut tx, request_id, event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn card(
                &self,
                card_id: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::Card>> {
                let row: Option<rows::CardRow> = sqlx::query_as(
                    "SELECT id, request_id, kind, recipient, channel, ts, rendered_version \
                     FROM cards WHERE id = $1",
                )
                .bind(card_id)
                .fetch_optional(&self.read)
                .await?;
                row.map(rows::CardRow::into_card).transpose()
            }

            async fn card_with_request(
                &self,
                card_id: i64,
            ) -> $crate::store::StoreResult<
                Option<($crate::store::Card, $crate::domain::AccessRequest)>,
            > {
                let row: Option<rows::CardWithRequestRow> = sqlx::query_as(
                    "SELECT c.id AS card_id, c.kind AS card_kind, c.recipient AS card_recipient, \
                     c.channel AS card_channel, c.ts AS card_ts, \
                     c.rendered_version AS card_version, r.* \
                     FROM cards c JOIN requests r ON r.id = c.request_id WHERE c.id = $1",
                )
                .bind(card_id)
                .fetch_optional(&self.read)
                .await?;
                row.map(rows::CardWithRequestRow::into_pair).transpose()
            }

            async fn cards(
                &self,
                request_id: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::Card>> {
                let rows: Vec<rows::CardRow> = sqlx::query_as(
                    "SELECT id, request_id, kind, recipient, channel, ts, rendered_version \
                     FROM cards WHERE request_id = $1 ORDER BY id",
                )
                .bind(request_id)
                .fetch_all(&self.read)
                .await?;
                rows.into_iter().map(rows::CardRow::into_card).collect()
            }

            async fn card_posted(
                &self,
                card_id: i64,
                channel: &str,
                ts: &str,
                rendered_version: i64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let request_id: Option<i64> = sqlx::query_scalar(
                    "UPDATE cards SET channel = $2, ts = $3, rendered_version = $4 \
                     WHERE id = $1 RETURNING request_id",
                )
                .bind(card_id)
                .bind(channel)
                .bind(ts)
                .bind(rendered_version)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(request_id) = request_id else {
                    return Ok(());
                };
                // Locked against a concurrent thread reply: each reply is either relayed to
                // this card (it was posted first) or in its summary (the reply came first).
                let version: Option<i64> = sqlx::query_scalar(concat!(
                    "SELECT version FROM requests WHERE id = $1",
                    $row_lock
                ))
                .bind(request_id)
                .fetch_optional(&mut *tx)
                .await?;
                let mut follow_ups = Vec::new();
                if version.is_some_and(|version| version > rendered_version) {
                    follow_ups.push($crate::store::Delivery::UpdateCard { card_id });
                }
                let thread = Self::thread_in(&mut tx, request_id).await?;
                if !thread.is_empty() {
                    follow_ups.push($crate::store::Delivery::ThreadSummary {
                        card_id,
                        messages: thread.len(),
                    });
                }
                Self::insert_deliveries(&mut tx, Some(request_id), &follow_ups, rows::millis(now))
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn enqueue(
                &self,
                request_id: Option<i64>,
                deliveries: &[$crate::store::Delivery],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                Self::insert_deliveries(&mut tx, request_id, deliveries, rows::millis(now))
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_deliveries(
                &self,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                lease: chrono::Duration,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::OutboxItem>> {
                let now = rows::millis(now);
                let mut tx = self.begin_write().await?;
                let mut claimed: Vec<rows::ClaimedRow> = sqlx::query_as(concat!(
                    "UPDATE outbox SET lease_owner = $1, lease_until = $2, \
                     attempts = attempts + 1, updated_at = $3 \
                     WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' \
                     AND not_before <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                     ORDER BY id LIMIT $4",
                    $claim_lock,
                    ") RETURNING id, request_id, payload, attempts, last_error"
                ))
                .bind(owner)
                .bind(now.saturating_add(lease.num_milliseconds()))
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
                claimed.sort_by_key(|row| row.id);
                let mut items = Vec::with_capacity(claimed.len());
                for row in claimed {
                    let id = row.id;
                    match row.into_item() {
                        Ok(item) => items.push(item),
                        Err(err) => {
                            // An unreadable payload can never be sent: dead-letter it rather
                            // than failing every claim that picks it up.
                            sqlx::query(
                                "UPDATE outbox SET status = 'failed', last_error = $2, \
                                 lease_owner = NULL, lease_until = NULL WHERE id = $1",
                            )
                            .bind(id)
                            .bind(err.to_string())
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(items)
            }

            async fn deliveries_done(
                &self,
                ids: &[i64],
                cards: &[(i64, i64)],
            ) -> $crate::store::StoreResult<()> {
                if ids.is_empty() && cards.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                if !ids.is_empty() {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE outbox SET status = 'done', lease_owner = NULL, \
                         lease_until = NULL WHERE id IN (",
                    );
                    let mut list = query.separated(", ");
                    for id in ids {
                        list.push_bind(*id);
                    }
                    query.push(")");
                    query.build().execute(&mut *tx).await?;
                }
                if !cards.is_empty() {
                    // One statement for all cards. Updates can finish out of order: a card
                    // takes the newest version shown, and never goes back to an older one.
                    let mut newest = std::collections::BTreeMap::new();
                    for &(card_id, version) in cards {
                        let shown = newest.entry(card_id).or_insert(version);
                        *shown = (*shown).max(version);
                    }
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new("WITH shown (id, version) AS (");
                    query.push_values(newest, |mut row, (card_id, version)| {
                        row.push_bind(card_id).push_bind(version);
                    });
                    query.push(
                        ") UPDATE cards SET rendered_version = shown.version FROM shown \
                         WHERE cards.id = shown.id AND cards.rendered_version < shown.version",
                    );
                    query.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn expand_card_refreshes(
                &self,
                owner: &str,
                refreshes: &[(i64, i64)],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                if refreshes.is_empty() {
                    return Ok(());
                }
                self.expand_refreshes(owner, refreshes, rows::millis(now))
                    .await
            }

            async fn delivery_postponed(
                &self,
                id: i64,
                not_before: chrono::DateTime<chrono::Utc>,
                error: &str,
                counts_as_attempt: bool,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE outbox SET status = 'pending', not_before = $2, last_error = $3, \
                     lease_owner = NULL, lease_until = NULL, attempts = attempts - $4 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(rows::millis(not_before))
                .bind(error)
                .bind(i32::from(!counts_as_attempt))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delivery_failed(
                &self,
                id: i64,
                error: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let row: Option<(Option<i64>, String)> = sqlx::query_as(
                    "UPDATE outbox SET status = 'failed', last_error = $2, updated_at = $3, \
                     lease_owner = NULL, lease_until = NULL WHERE id = $1 \
                     RETURNING request_id, method",
                )
                .bind(id)
                .bind(error)
                .bind(rows::millis(now))
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((Some(request_id), method)) = row {
                    let event = $crate::domain::NewEvent {
                        at: now,
                        actor: "system".to_string(),
                        kind: $crate::domain::EventKind::DeliveryFailed,
                        before: None,
                        after: None,
                        detail: Some(format!("{method} failed: {error}")),
                    };
                    Self::insert_event(&mut tx, request_id, &event).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn failed_deliveries(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::FailedDelivery>> {
                let rows: Vec<rows::FailedRow> = sqlx::query_as(
                    "SELECT id, request_id, method, last_error, attempts, created_at, updated_at \
                     FROM outbox WHERE status = 'failed' ORDER BY id",
                )
                .fetch_all(&self.read)
                .await?;
                rows.into_iter().map(rows::FailedRow::into_failed).collect()
            }

            async fn retry_delivery(
                &self,
                id: i64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                // A retry asked for by a person starts afresh: its attempts count from zero.
                let mut tx = self.begin_write().await?;
                let retried = sqlx::query(
                    "UPDATE outbox SET status = 'pending', not_before = $2, updated_at = $2, \
                     attempts = 0, lease_owner = NULL, lease_until = NULL \
                     WHERE id = $1 AND status = 'failed'",
                )
                .bind(id)
                .bind(rows::millis(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(retried > 0)
            }

            async fn next_delivery_due(
                &self,
            ) -> $crate::store::StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
                // A leased delivery is due again when its lease runs out.
                let due: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > not_before \
                     THEN lease_until ELSE not_before END) FROM outbox WHERE status = 'pending'",
                )
                .fetch_one(&self.read)
                .await?;
                due.map(rows::from_millis).transpose()
            }

            async fn release_claims(&self, owner: &str) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
                     WHERE lease_owner = $1 AND status = 'pending'",
                )
                .bind(owner)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn prune(
                &self,
                keys_before: chrono::DateTime<chrono::Utc>,
                done_before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM processed_keys WHERE at < $1")
                    .bind(rows::millis(keys_before))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM outbox WHERE status = 'done' AND updated_at < $1")
                    .bind(rows::millis(done_before))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_key(
                &self,
                key: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let inserted = sqlx::query(
                    "INSERT INTO processed_keys (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(key)
                .bind(rows::millis(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(inserted == 1)
            }

            async fn card_by_message(
                &self,
                channel: &str,
                ts: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::Card>> {
                let row: Option<rows::CardRow> = sqlx::query_as(
                    "SELECT id, request_id, kind, recipient, channel, ts, rendered_version \
                     FROM cards WHERE channel = $1 AND ts = $2",
                )
                .bind(channel)
                .bind(ts)
                .fetch_optional(&self.read)
                .await?;
                row.map(rows::CardRow::into_card).transpose()
            }

            async fn add_thread_message(
                &self,
                post: $crate::store::ThreadPost,
            ) -> $crate::store::StoreResult<bool> {
                let now = rows::millis(post.message.at);
                let mut tx = self.begin_write().await?;
                // Locked against a card being recorded as posted (see `card_posted`).
                sqlx::query(concat!("SELECT version FROM requests WHERE id = $1", $row_lock))
                    .bind(post.request_id)
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO thread_messages (request_id, at, user_id, text, source_channel, \
                     source_ts) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (source_channel, source_ts) DO NOTHING",
                )
                .bind(post.request_id)
                .bind(now)
                .bind(&post.message.user)
                .bind(&post.message.text)
                .bind(&post.source_channel)
                .bind(&post.source_ts)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_event(&mut tx, post.request_id, &post.event).await?;
                // Cards not posted yet get the conversation as a summary when they are.
                let others: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM cards WHERE request_id = $1 AND id <> $2 \
                     AND ts IS NOT NULL ORDER BY id",
                )
                .bind(post.request_id)
                .bind(post.source_card_id)
                .fetch_all(&mut *tx)
                .await?;
                let relays: Vec<$crate::store::Delivery> = others
                    .into_iter()
                    .map(|card_id| $crate::store::Delivery::RelayReply {
                        card_id,
                        author: post.message.user.clone(),
                        text: post.message.text.clone(),
                    })
                    .collect();
                Self::insert_deliveries(&mut tx, Some(post.request_id), &relays, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn thread(
                &self,
                request_id: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::ThreadMessage>> {
                let mut conn = self.read.acquire().await?;
                Self::thread_in(&mut conn, request_id).await
            }

            async fn home_opened(
                &self,
                user: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO home_viewers (user_id, opened_at) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET opened_at = excluded.opened_at",
                )
                .bind(user)
                .bind(rows::millis(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn open_tasks(
                &self,
                user: &str,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AccessRequest>> {
                // Lists are JSON text; Slack ids are [A-Z0-9] only, so the quoted id is an
                // exact element match.
                let quoted = format!("%\"{user}\"%");
                let rows: Vec<rows::RequestRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    rows::request_columns!(),
                    " FROM requests WHERE \
                     (status = 'pending_approval' AND approvers LIKE $1) OR \
                     (status IN ('pending_provisioning', 'pending_deprovisioning') \
                      AND app_admins LIKE $1) \
                     ORDER BY id LIMIT $2"
                ))
                .bind(&quoted)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?;
                // Candidates only: which of them this user may act on is the policy's answer.
                rows.into_iter()
                    .map(rows::RequestRow::into_request)
                    .collect()
            }

            async fn due_expiries(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AccessRequest>> {
                self.requests_where(
                    "status = 'provisioned' AND expires_at <= $1",
                    rows::millis(now),
                    limit,
                )
                .await
            }

            async fn expiring_before(
                &self,
                at: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AccessRequest>> {
                self.requests_where(
                    "status = 'provisioned' AND NOT expiry_reminded AND expires_at <= $1",
                    rows::millis(at),
                    limit,
                )
                .await
            }

            async fn waiting_since(
                &self,
                since: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::AccessRequest>> {
                self.requests_where(
                    "NOT stage_reminded AND (\
                     (status = 'pending_approval' AND created_at <= $1) OR \
                     (status = 'pending_provisioning' AND COALESCE(approved_at, created_at) <= $1) \
                     OR (status = 'pending_deprovisioning' \
                     AND COALESCE(released_at, expires_at) <= $1))",
                    rows::millis(since),
                    limit,
                )
                .await
            }

            async fn deliveries_waiting(&self) -> $crate::store::StoreResult<i64> {
                Ok(
                    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                        .fetch_one(&self.read)
                        .await?,
                )
            }

            async fn stats(&self) -> $crate::store::StoreResult<$crate::store::StoreStats> {
                let by_status: Vec<(String, i64)> =
                    sqlx::query_as("SELECT status, COUNT(*) FROM requests GROUP BY status")
                        .fetch_all(&self.read)
                        .await?;
                // Literal statuses, so that each count uses its partial index.
                let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.read);
                Ok($crate::store::StoreStats {
                    requests_by_status: rows::status_counts(by_status)?,
                    deliveries_waiting: count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                        .await?,
                    deliveries_failed: count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")
                        .await?,
                })
            }
        }
    };
}
pub(super) use impl_store;
