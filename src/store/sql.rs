//! Every statement of both stores, in one place.
//!
//! Statements about requests and apps are generated once from their column lists
//! (`columns.rs`), placeholders included; the rest are short enough to read. Placeholders
//! are `$N` everywhere, bound by number: on PostgreSQL sqlx binds the N-th value to `$N`;
//! on SQLite `sqlite::bind` binds `params[N-1]` to the parameter named `$N` (looked up with
//! `parameter_index`), after checking the statement has exactly as many parameters. Where
//! the two databases differ (row locks, lists of ids) a statement exists once per backend,
//! named for it.

use std::sync::LazyLock;

use super::columns::{Param, Write, APPS, REQUESTS};
use super::RequestFilter;

/// SQL for the outbox payload of a `Delivery` about one card (`kind` is its serde tag,
/// `update_card` or `post_card`), from the card id expression `id`: serde's exact shape,
/// so the worker reads these rows like any other.
pub(super) fn card_payload(kind: &str, id: &str) -> String {
    format!("'{{\"type\":\"{kind}\",\"card_id\":' || {id} || '}}'")
}

/// Every column of `requests`, for a SELECT; `prefix` qualifies them (`"r."`).
fn request_columns(prefix: &str) -> String {
    REQUESTS.select_list(prefix)
}

/// `SELECT` of every request column `FROM requests WHERE {condition}`.
fn select_requests(condition: &str) -> String {
    format!(
        "SELECT {} FROM requests WHERE {condition}",
        request_columns("")
    )
}

// ---- requests ----

pub(super) static REQUEST: LazyLock<String> = LazyLock::new(|| select_requests("id = $1"));

/// The assignee lists of request `$n` (after the lists' `$1…`), as the catalog sets them.
pub(super) static ASSIGN_REQUEST: LazyLock<String> = LazyLock::new(|| REQUESTS.assign("id"));

/// `$1` the app's slug: its requests that are not final, which follow the app's lists.
const OPEN_OF_APP: &str = "app = $1 AND status IN ('pending_approval', 'pending_provisioning', \
     'provisioned', 'pending_deprovisioning') ORDER BY id";

pub(super) static OPEN_REQUESTS_OF_APP: LazyLock<String> =
    LazyLock::new(|| select_requests(OPEN_OF_APP));

/// [`OPEN_REQUESTS_OF_APP`], locked until the transaction ends: no decision changes them
/// between the read and the rewrite.
pub(super) static PG_OPEN_REQUESTS_OF_APP_LOCKED: LazyLock<String> =
    LazyLock::new(|| format!("{} FOR UPDATE", select_requests(OPEN_OF_APP)));

/// The request an earlier release filed with idempotency key `$1`, if filed after `$2`:
/// those releases kept the key on the request, without its body.
pub(super) static REQUEST_BY_LEGACY_KEY: LazyLock<String> =
    LazyLock::new(|| select_requests("idempotency_key = $1 AND created_at > $2"));

/// The body hash of idempotency key `$1` recorded after `$2`, with the request it filed.
pub(super) static REQUEST_BY_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.body_hash, {} FROM idempotency_keys k JOIN requests r ON r.id = k.request_id \
         WHERE k.key = $1 AND k.at > $2",
        request_columns("r.")
    )
});

/// Records idempotency key `$1` with body hash `$2` for request `$3` at `$4`, taking over a
/// key recorded at or before `$5` (forgotten, if not swept yet); no row when the key is live.
pub(super) const RECORD_KEY: &str =
    "INSERT INTO idempotency_keys (key, body_hash, request_id, at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (key) DO UPDATE SET body_hash = excluded.body_hash, \
     request_id = excluded.request_id, at = excluded.at WHERE idempotency_keys.at <= $5";

pub(super) const PRUNE_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE at < $1";

/// Files a request: the columns written on insert (its idempotency key goes to
/// `idempotency_keys`).
pub(super) static INSERT_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("{} RETURNING id", REQUESTS.insert(&[])));

/// Writes the columns a decision changes (in list order) to the request whose id follows
/// them, if it still has the version the change was decided on. The columns fixed at
/// filing are left alone, and so are their indexes.
pub(super) static UPDATE_REQUEST: LazyLock<String> = LazyLock::new(|| {
    let version = REQUESTS
        .change_number("version")
        .expect("requests has a version column");
    format!(
        "{} AND version = ${version} - 1",
        REQUESTS.update("id", &[])
    )
});

/// A page of [`RequestFilter`], as its statement and values: see [`list_requests`].
pub(super) fn requests_page(filter: &RequestFilter) -> (&'static str, Vec<Param<'_>>) {
    let shape = usize::from(filter.status.is_some())
        | usize::from(filter.app.is_some()) << 1
        | usize::from(filter.user.is_some()) << 2;
    let mut params = Vec::with_capacity(5);
    params.extend(filter.status.map(|s| Param::Text(s.as_str().into())));
    params.extend(filter.app.as_deref().map(|a| Param::Text(a.into())));
    params.extend(filter.user.as_deref().map(|u| Param::Text(u.into())));
    // No cursor is a cursor past every id, so that one statement serves both pages.
    params.push(Param::Int(filter.before_id.unwrap_or(i64::MAX)));
    let limit = if filter.limit == 0 { 50 } else { filter.limit };
    params.push(Param::Int(i64::from(limit)));
    (&LIST_REQUESTS[shape], params)
}

/// One statement per combination of filters (bit 0 status, 1 app, 2 user), each written
/// so that an index finds the page without reading the rows of other pages: a single
/// statement with `($1 IS NULL OR status = $1)` terms was planned as a walk of every
/// request from the newest, which for a user with few requests meant the whole table.
pub(super) static LIST_REQUESTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..8)
        .map(|shape| list_requests(shape & 1 != 0, shape & 2 != 0, shape & 4 != 0))
        .collect()
});

/// Newest first, below the cursor: the filters present, in the order status, app, user,
/// then the cursor and the limit, numbered `$1`… in that order. A user's requests (as
/// requester or target) are the union of the newest page on each of the two user indexes.
fn list_requests(status: bool, app: bool, user: bool) -> String {
    let mut numbered = 0;
    let mut next = || {
        numbered += 1;
        format!("${numbered}")
    };
    let mut conditions = Vec::new();
    if status {
        conditions.push(format!("status = {}", next()));
    }
    if app {
        conditions.push(format!("app = {}", next()));
    }
    let user = user.then(&mut next);
    conditions.push(format!("id < {}", next()));
    let limit = next();
    let conditions = conditions.join(" AND ");
    match user {
        None => select_requests(&format!("{conditions} ORDER BY id DESC LIMIT {limit}")),
        Some(user) => {
            let newest = |column: &str| {
                format!(
                    "SELECT id FROM (SELECT id FROM requests WHERE {column} = {user} \
                     AND {conditions} ORDER BY id DESC LIMIT {limit}) AS {column}_page"
                )
            };
            select_requests(&format!(
                "id IN ({} UNION {}) ORDER BY id DESC LIMIT {limit}",
                newest("requester"),
                newest("target_user")
            ))
        }
    }
}

/// Lists are JSON text; Slack ids are [A-Z0-9] only, so the quoted id `$1` (`%"U1"%`) is an
/// exact element match. `$2` limit.
pub(super) static OPEN_TASKS: LazyLock<String> = LazyLock::new(|| {
    select_requests(
        "(status = 'pending_approval' AND approvers LIKE $1) OR \
         (status IN ('pending_provisioning', 'pending_deprovisioning') \
         AND app_admins LIKE $1) ORDER BY id LIMIT $2",
    )
});

/// `$1` now, `$2` limit. Soonest ended first, in the order of the index on
/// `(status, expires_at)`: ordered by id, PostgreSQL walked every request by id looking for
/// the few due (it took the end dates of expired requests as a sign that many are).
pub(super) static DUE_EXPIRIES: LazyLock<String> = LazyLock::new(|| {
    select_requests("status = 'provisioned' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2")
});

/// `$1` the end of the window, `$2` limit; in index order, like [`DUE_EXPIRIES`].
pub(super) static EXPIRING_BEFORE: LazyLock<String> = LazyLock::new(|| {
    select_requests(
        "status = 'provisioned' AND NOT expiry_reminded AND expires_at <= $1 \
         ORDER BY expires_at, id LIMIT $2",
    )
});

/// `$1` since, `$2` limit.
pub(super) static WAITING_SINCE: LazyLock<String> = LazyLock::new(|| {
    select_requests(
        "NOT stage_reminded AND (\
         (status = 'pending_approval' AND created_at <= $1) OR \
         (status = 'pending_provisioning' AND COALESCE(approved_at, created_at) <= $1) \
         OR (status = 'pending_deprovisioning' \
         AND COALESCE(released_at, expires_at) <= $1)) ORDER BY id LIMIT $2",
    )
});

/// PostgreSQL: the requests `$1` as they are now.
pub(super) static PG_READ_REQUESTS: LazyLock<String> =
    LazyLock::new(|| select_requests("id = ANY($1)"));

/// PostgreSQL: the requests `$1`, locked in id order until the transaction ends.
pub(super) static PG_LOCK_REQUESTS: LazyLock<String> =
    LazyLock::new(|| select_requests("id = ANY($1) ORDER BY id FOR UPDATE"));

pub(super) const REQUEST_VERSION: &str = "SELECT version FROM requests WHERE id = $1";

/// PostgreSQL: a request's version, its row locked against a concurrent card post or
/// thread reply until the transaction ends.
pub(super) const PG_LOCK_REQUEST_VERSION: &str =
    "SELECT version FROM requests WHERE id = $1 FOR UPDATE";

/// Requests by status: the folded counts plus the changes recorded since (migrations
/// sqlite 0007, postgres 0008), read in one statement so that a fold running meanwhile is
/// seen either whole or not at all. Counting the requests themselves read every row.
pub(super) const COUNT_BY_STATUS: &str = "SELECT status, CAST(SUM(requests) AS BIGINT) FROM ( \
     SELECT status, requests FROM request_status_counts UNION ALL \
     SELECT status, delta FROM request_status_changes) AS counted GROUP BY status";

/// SQLite: adds the recorded status changes to the counts; [`CLEAR_STATUS_CHANGES`]
/// follows in the same transaction (the single writer makes the pair atomic). `WHERE true`
/// tells SQLite's parser that `ON CONFLICT` belongs to the `INSERT`.
pub(super) const FOLD_STATUS_CHANGES: &str =
    "INSERT INTO request_status_counts (status, requests) \
     SELECT status, SUM(delta) FROM request_status_changes WHERE true GROUP BY status \
     ON CONFLICT (status) DO UPDATE \
     SET requests = request_status_counts.requests + excluded.requests";

pub(super) const CLEAR_STATUS_CHANGES: &str = "DELETE FROM request_status_changes";

/// PostgreSQL: whether this transaction is the one folding status changes; another
/// replica folding at the same moment skips it (they would wait on each other's rows).
pub(super) const PG_TRY_FOLD_LOCK: &str = "SELECT pg_try_advisory_xact_lock(7413260017)";

/// PostgreSQL: moves the status changes committed so far into the counts, in one
/// statement; changes committed meanwhile stay for the next fold. Counts are upserted in
/// status order, like any other writer of them would.
pub(super) const PG_FOLD_STATUS_CHANGES: &str =
    "WITH moved AS (DELETE FROM request_status_changes RETURNING status, delta) \
     INSERT INTO request_status_counts (status, requests) \
     SELECT status, SUM(delta) FROM moved GROUP BY status ORDER BY status \
     ON CONFLICT (status) DO UPDATE \
     SET requests = request_status_counts.requests + excluded.requests";

// ---- apps ----

pub(super) static APP: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM apps WHERE slug = $1", APPS.select_list("")));

pub(super) static APPS_BY_SLUG: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM apps ORDER BY slug", APPS.select_list("")));

/// The app's columns, then `updated_at`; nothing when the slug exists.
pub(super) static INSERT_APP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} ON CONFLICT (slug) DO NOTHING",
        APPS.insert(&["updated_at"])
    )
});

/// The app's changing columns, then `updated_at`, then the slug.
pub(super) static UPDATE_APP: LazyLock<String> =
    LazyLock::new(|| APPS.update("slug", &["updated_at"]));

// ---- events ----

pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (request_id, at, actor, kind, before_json, after_json, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(super) const EVENTS: &str =
    "SELECT id, request_id, at, actor, kind, before_json, after_json, detail \
     FROM events WHERE request_id = $1 ORDER BY id";

// ---- cards ----

const CARD_COLUMNS: &str = "id, request_id, kind, recipient, channel, ts, rendered_version";

pub(super) static CARD: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1"));

pub(super) static CARDS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {CARD_COLUMNS} FROM cards WHERE request_id = $1 ORDER BY id"));

/// PostgreSQL: the cards of the requests whose ids are in `$1` (a `bigint[]`), by request.
pub(super) static PG_CARDS_OF_REQUESTS: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {CARD_COLUMNS} FROM cards WHERE request_id = ANY($1) ORDER BY request_id, id")
});

pub(super) static CARD_BY_MESSAGE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {CARD_COLUMNS} FROM cards WHERE channel = $1 AND ts = $2"));

/// The prefix of the card's columns in [`CARD_WITH_REQUEST`].
pub(super) const CARD_PREFIX: &str = "card_";

/// Card `$1` with its request: the card's columns named `card_…`, the request's by their
/// own names.
pub(super) static CARD_WITH_REQUEST: LazyLock<String> = LazyLock::new(|| {
    let card = CARD_COLUMNS
        .split(", ")
        .map(|name| format!("c.{name} AS {CARD_PREFIX}{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {card}, {} FROM cards c JOIN requests r ON r.id = c.request_id WHERE c.id = $1",
        request_columns("r.")
    )
});

pub(super) const INSERT_CARD: &str =
    "INSERT INTO cards (request_id, kind, recipient, rendered_version) VALUES ($1, $2, $3, 0) \
     RETURNING id";

/// Records where card `$1` was posted (`$2` channel, `$3` ts) showing version `$4`.
pub(super) const CARD_POSTED: &str =
    "UPDATE cards SET channel = $2, ts = $3, rendered_version = $4 WHERE id = $1 \
     RETURNING request_id";

/// SQLite: card `$1` shows version `$2`, unless it already shows a newer one (updates can
/// finish out of order).
pub(super) const CARD_SHOWN: &str =
    "UPDATE cards SET rendered_version = $2 WHERE id = $1 AND rendered_version < $2";

/// PostgreSQL: [`CARD_SHOWN`] for the cards `$1` and versions `$2`, in one statement.
pub(super) const PG_CARDS_SHOWN: &str = "UPDATE cards SET rendered_version = shown.version \
     FROM unnest($1::bigint[], $2::bigint[]) AS shown (id, version) \
     WHERE cards.id = shown.id AND cards.rendered_version < shown.version";

// ---- outbox ----

/// Queues one delivery: request `$1`, method `$2`, payload `$3`, at `$4`.
pub(super) const INSERT_DELIVERY: &str =
    "INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
     created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)";

/// PostgreSQL: queues deliveries of request `$1` (methods `$2`, payloads `$3`) at `$4`,
/// in order, in one statement.
pub(super) const PG_INSERT_DELIVERIES: &str =
    "INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
     created_at, updated_at) \
     SELECT $1, d.method, d.payload, 'pending', 0, $4, $4, $4 \
     FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS d(method, payload, i) ORDER BY d.i";

/// Queues a republish of a Home tab (payload `$1`, at `$2`) unless one is already
/// waiting: it renders the latest state when it is sent.
pub(super) const PUBLISH_HOME: &str =
    "INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
     created_at, updated_at) \
     SELECT NULL, 'views.publish', $1, 'pending', 0, $2, $2, $2 WHERE NOT EXISTS \
     (SELECT 1 FROM outbox WHERE status = 'pending' AND method = 'views.publish' \
     AND payload = $1 AND lease_owner IS NULL)";

/// SQLite: which of the users in the JSON list `$1` use their Home tab.
pub(super) const HOME_VIEWERS_AMONG: &str =
    "SELECT user_id FROM home_viewers WHERE user_id IN (SELECT value FROM json_each($1))";

/// PostgreSQL: which of the users `$1` use their Home tab.
pub(super) const PG_HOME_VIEWERS_AMONG: &str =
    "SELECT user_id FROM home_viewers WHERE user_id = ANY($1)";

/// Queues an update of every card of request `$1`, at `$2`.
pub(super) static REFRESH_CARDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
         created_at, updated_at) \
         SELECT $1, 'chat.update', {}, 'pending', 0, $2, $2, $2 \
         FROM cards WHERE request_id = $1 ORDER BY id",
        card_payload("update_card", "id")
    )
});

/// Finishes refresh `$1` if `$2` still holds it (a lease that ran out may have let
/// another worker expand it already), at `$3`.
pub(super) const FINISH_REFRESH: &str =
    "UPDATE outbox SET status = 'done', lease_owner = NULL, lease_until = NULL, \
     updated_at = $3 WHERE id = $1 AND status = 'pending' AND lease_owner = $2";

/// PostgreSQL: [`FINISH_REFRESH`] for the refreshes `$1` (of requests `$2`) held by `$3`,
/// and [`REFRESH_CARDS`] for each, refresh by refresh, card by card, at `$4`, in one
/// statement. Written so that any cached plan finds rows by index: `= ANY` on the key,
/// and cards looked up per refresh (a join was planned as a scan of every card).
pub(super) static PG_EXPAND_REFRESHES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH finished AS ( \
             UPDATE outbox SET status = 'done', lease_owner = NULL, lease_until = NULL, \
             updated_at = $4 WHERE id = ANY($1) AND status = 'pending' AND lease_owner = $3 \
             RETURNING id \
         ) \
         INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
         created_at, updated_at) \
         SELECT r.request_id, 'chat.update', {}, 'pending', 0, $4, $4, $4 \
         FROM unnest($1::bigint[], $2::bigint[]) AS r(id, request_id) \
         JOIN finished f ON f.id = r.id, \
         LATERAL (SELECT id FROM cards WHERE request_id = r.request_id ORDER BY id) c \
         ORDER BY r.id, c.id",
        card_payload("update_card", "c.id")
    )
});

/// Claims for `$1` until `$2` up to `$4` deliveries due at `$3`, followed by `lock` (the
/// row lock of the picking query).
fn claim(lock: &str) -> String {
    format!(
        "UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
         updated_at = $3 \
         WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND not_before <= $3 \
         AND (lease_until IS NULL OR lease_until <= $3) ORDER BY id LIMIT $4{lock}) \
         RETURNING id, request_id, payload, attempts, last_error"
    )
}

/// SQLite's single writer already serializes every claim.
pub(super) static CLAIM: LazyLock<String> = LazyLock::new(|| claim(""));

/// PostgreSQL: replicas claim side by side, each skipping the rows another is claiming.
pub(super) static PG_CLAIM: LazyLock<String> = LazyLock::new(|| claim(" FOR UPDATE SKIP LOCKED"));

/// Dead-letters claimed delivery `$1` whose payload cannot be read, with error `$2`.
pub(super) const DEAD_LETTER: &str =
    "UPDATE outbox SET status = 'failed', last_error = $2, lease_owner = NULL, \
     lease_until = NULL WHERE id = $1";

/// SQLite: delivery `$1` is done.
pub(super) const DELIVERY_DONE: &str =
    "UPDATE outbox SET status = 'done', lease_owner = NULL, lease_until = NULL WHERE id = $1";

/// PostgreSQL: the deliveries `$1` are done.
pub(super) const PG_DELIVERIES_DONE: &str =
    "UPDATE outbox SET status = 'done', lease_owner = NULL, lease_until = NULL \
     WHERE id = ANY($1)";

/// Delivery `$1` waits until `$2` after error `$3`; `$4` is 1 when the attempt does not
/// count.
pub(super) const POSTPONE: &str =
    "UPDATE outbox SET status = 'pending', not_before = $2, last_error = $3, \
     lease_owner = NULL, lease_until = NULL, attempts = attempts - $4 WHERE id = $1";

/// Dead-letters delivery `$1` with error `$2` at `$3`.
pub(super) const FAIL: &str =
    "UPDATE outbox SET status = 'failed', last_error = $2, updated_at = $3, \
     lease_owner = NULL, lease_until = NULL WHERE id = $1 RETURNING request_id, method";

/// A page of failed deliveries: ids above `$1`, at most `$2` (the partial index
/// `outbox_failed` walks them in order).
pub(super) const FAILED_DELIVERIES: &str =
    "SELECT id, request_id, method, last_error, attempts, created_at, updated_at \
     FROM outbox WHERE status = 'failed' AND id > $1 ORDER BY id LIMIT $2";

/// A retry asked for by a person starts afresh: its attempts count from zero.
pub(super) const RETRY: &str =
    "UPDATE outbox SET status = 'pending', not_before = $2, updated_at = $2, attempts = 0, \
     lease_owner = NULL, lease_until = NULL WHERE id = $1 AND status = 'failed'";

/// A leased delivery is due again when its lease runs out.
pub(super) const NEXT_DUE: &str =
    "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > not_before \
     THEN lease_until ELSE not_before END) FROM outbox WHERE status = 'pending'";

pub(super) const RELEASE_CLAIMS: &str = "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
     WHERE lease_owner = $1 AND status = 'pending'";

/// SQLite, at open: the file lock makes this the only process, so claims left by one that
/// died are free now, not when their leases run out.
pub(super) const RELEASE_ALL_CLAIMS: &str =
    "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
     WHERE status = 'pending' AND lease_owner IS NOT NULL";

pub(super) const PRUNE_KEYS: &str = "DELETE FROM processed_keys WHERE at < $1";

pub(super) const PRUNE_DONE: &str = "DELETE FROM outbox WHERE status = 'done' AND updated_at < $1";

/// Literal statuses, so that each count uses its partial index.
pub(super) const COUNT_PENDING: &str = "SELECT COUNT(*) FROM outbox WHERE status = 'pending'";

pub(super) const COUNT_FAILED: &str = "SELECT COUNT(*) FROM outbox WHERE status = 'failed'";

// ---- keys, threads, homes ----

/// Records key `$1` at `$2`; no row when it was seen before.
pub(super) const CLAIM_KEY: &str =
    "INSERT INTO processed_keys (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Keeps a thread message; its id, or no row when it was kept before.
pub(super) const INSERT_THREAD_MESSAGE: &str =
    "INSERT INTO thread_messages (request_id, at, user_id, text, source_channel, source_ts) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source_channel, source_ts) DO NOTHING \
     RETURNING id";

pub(super) const THREAD: &str = "SELECT at, user_id, text FROM thread_messages \
     WHERE request_id = $1 AND deleted_at IS NULL ORDER BY id";

/// The columns of a kept thread message (`rows::kept_message`).
const KEPT_COLUMNS: &str = "id, request_id, user_id, text, version, deleted_at";

/// Thread message `$1`.
pub(super) static THREAD_MESSAGE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {KEPT_COLUMNS} FROM thread_messages WHERE id = $1"));

/// PostgreSQL: thread message `$1`, locked against a copy being recorded (or the message
/// changed) until the transaction ends.
pub(super) static PG_LOCK_THREAD_MESSAGE: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {KEPT_COLUMNS} FROM thread_messages WHERE id = $1 FOR UPDATE")
});

/// The thread message written as message `$2` in channel `$1`.
pub(super) static THREAD_MESSAGE_AT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {KEPT_COLUMNS} FROM thread_messages WHERE source_channel = $1 AND source_ts = $2"
    )
});

/// Edits thread message `$1` to text `$2`, or deletes it when `$3` (the time) is set.
pub(super) const CHANGE_THREAD_MESSAGE: &str =
    "UPDATE thread_messages SET text = $2, version = version + 1, deleted_at = $3 \
     WHERE id = $1 AND deleted_at IS NULL";

/// The cards holding a copy of thread message `$1`.
pub(super) const RELAY_COPIES: &str =
    "SELECT card_id FROM thread_copies WHERE message_id = $1 ORDER BY card_id";

/// The copy of thread message `$1` in the thread of card `$2`.
pub(super) const RELAY_COPY: &str =
    "SELECT channel, ts FROM thread_copies WHERE message_id = $1 AND card_id = $2";

/// Remembers the copy of thread message `$1` in card `$2`'s thread: channel `$3`, ts `$4`.
pub(super) const INSERT_RELAY_COPY: &str =
    "INSERT INTO thread_copies (message_id, card_id, channel, ts) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (message_id, card_id) DO NOTHING";

/// The posted cards of request `$1` other than `$2`: cards not posted yet get the
/// conversation as a summary when they are.
pub(super) const OTHER_POSTED_CARDS: &str =
    "SELECT id FROM cards WHERE request_id = $1 AND id <> $2 AND ts IS NOT NULL ORDER BY id";

/// The cards of request `$1` with the error of each one's failed post, if it failed (the
/// partial index `outbox_failed_by_payload` finds it).
pub(super) static CARD_STATES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {CARD_COLUMNS}, (SELECT o.last_error FROM outbox o WHERE o.status = 'failed' \
         AND o.payload = {} ORDER BY o.id DESC LIMIT 1) AS failed \
         FROM cards c WHERE c.request_id = $1 ORDER BY c.id",
        card_payload("post_card", "c.id")
    )
});

// ---- the users directory ----

const SLACK_USER_COLUMNS: &str = "id, display_name, real_name, deleted, tz, email, refreshed_at";

/// The directory's row for user `$1`.
pub(super) static SLACK_USER: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {SLACK_USER_COLUMNS} FROM slack_users WHERE id = $1"));

/// Keeps user `$1`'s row: `$2` display name, `$3` real name, `$4` deleted, `$5` tz,
/// `$6` email, `$7` refreshed at.
pub(super) static SAVE_SLACK_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO slack_users ({SLACK_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, \
         real_name = excluded.real_name, deleted = excluded.deleted, tz = excluded.tz, \
         email = excluded.email, refreshed_at = excluded.refreshed_at"
    )
});

pub(super) const HOME_OPENED: &str =
    "INSERT INTO home_viewers (user_id, opened_at) VALUES ($1, $2) \
     ON CONFLICT (user_id) DO UPDATE SET opened_at = excluded.opened_at";

// ---- PostgreSQL: a batch of decisions in one statement ----

/// The SQLSTATE `accessbot_changed_meanwhile()` raises (PostgreSQL migration 0004).
pub(super) const CHANGED_MEANWHILE: &str = "AB409";

/// `Store::apply` for many changes, as one statement (see `postgres/batch.rs`).
///
/// Data-modifying CTEs all run, once, on one snapshot and in no set order, so every write
/// but the key's is made conditional on `updated`: a change is applied only if its key is
/// new and its request still has the version it was decided on. Outbox rows are queued
/// change by change, in the order the SQLite writer queues them.
///
/// The key is looked up by inserting it: the unique index decides, whatever plan the
/// server has cached. A plan with a join instead, cached while `processed_keys` was nearly
/// empty, scanned the whole table for every statement after. So the key of a change whose
/// request moved on is recorded all the same, and the statement must not stand: the last
/// `SELECT` raises `accessbot_changed_meanwhile()` for such a change.
///
/// Arrays, numbered in this order: request ids, keys, times; the changing columns of
/// `requests` in list order; the events (actor, kind, before, after, detail); then the
/// flattened lists, each as (change number, …): new cards (kind, recipient), deliveries
/// (method, payload), Home tabs to republish (user, payload).
pub(super) static PG_APPLY_ALL: LazyLock<String> = LazyLock::new(|| {
    let changes = REQUESTS.written(Write::Change).count();
    let event = 4 + changes;
    let cards = event + 5;
    let deliveries = cards + 3;
    let homes = deliveries + 3;
    let typed = |first: usize, types: &[&str]| {
        types
            .iter()
            .enumerate()
            .map(|(at, ty)| format!("${}::{ty}", first + at))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "WITH c AS ( \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], {columns}, {events}) \
             WITH ORDINALITY \
             AS c(id, key, at, {change_list}, actor, kind, before_json, after_json, detail, k) \
         ), fresh AS ( \
             INSERT INTO processed_keys (key, at) SELECT c.key, c.at FROM c \
             WHERE c.key IS NOT NULL ON CONFLICT DO NOTHING RETURNING key \
         ), updated AS ( \
             UPDATE requests r SET ({change_list}) = ({change_values}) \
             FROM c WHERE r.id = c.id AND r.version = c.version - 1 \
             AND (c.key IS NULL OR c.key IN (SELECT key FROM fresh)) \
             RETURNING c.k, c.id, c.at \
         ), event AS ( \
             INSERT INTO events (request_id, at, actor, kind, before_json, after_json, detail) \
             SELECT c.id, c.at, c.actor, c.kind, c.before_json, c.after_json, c.detail \
             FROM c JOIN updated u ON u.k = c.k ORDER BY c.k \
         ), new_cards AS ( \
             INSERT INTO cards (request_id, kind, recipient, rendered_version) \
             SELECT u.id, n.kind, n.recipient, 0 \
             FROM unnest({cards}) WITH ORDINALITY \
             AS n(k, kind, recipient, i) JOIN updated u ON u.k = n.k \
             ORDER BY n.k, n.i RETURNING id, request_id \
         ), queued AS ( \
             INSERT INTO outbox (request_id, method, payload, status, attempts, not_before, \
             created_at, updated_at) \
             SELECT q.request_id, q.method, q.payload, 'pending', 0, q.at, q.at, q.at FROM ( \
                 SELECT u.k, 1 AS part, n.id AS i, n.request_id, \
                 'chat.postMessage' AS method, {post_card} AS payload, u.at \
                 FROM new_cards n JOIN updated u ON u.id = n.request_id \
                 UNION ALL \
                 SELECT u.k, 2, d.i, u.id, d.method, d.payload, u.at \
                 FROM unnest({deliveries}) WITH ORDINALITY \
                 AS d(k, method, payload, i) JOIN updated u ON u.k = d.k \
                 UNION ALL \
                 SELECT h.k, 3, h.i, NULL, 'views.publish', h.payload, h.at FROM ( \
                     SELECT DISTINCT ON (h.payload) u.k, h.i, h.payload, u.at \
                     FROM unnest({homes}) WITH ORDINALITY \
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
             SELECT c.k, c.key IS NOT NULL AND c.key NOT IN (SELECT key FROM fresh) \
             AS duplicate, EXISTS (SELECT 1 FROM updated u WHERE u.k = c.k) AS applied FROM c \
         ) o ORDER BY o.k",
        columns = REQUESTS.unnest_changes(4),
        events = typed(event, &["text[]"; 5]),
        change_list = REQUESTS.change_list(""),
        change_values = REQUESTS.change_list("c."),
        cards = typed(cards, &["bigint[]", "text[]", "text[]"]),
        deliveries = typed(deliveries, &["bigint[]", "text[]", "text[]"]),
        homes = typed(homes, &["bigint[]", "text[]", "text[]"]),
        post_card = card_payload("post_card", "n.id"),
    )
});

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::store::rows::to_json;
    use crate::store::Delivery;

    /// The SQL that writes card payloads writes what serde writes (and the worker reads).
    #[test]
    fn card_payloads_written_in_sql_are_serde_deliveries() {
        let conn = Connection::open_in_memory().unwrap();
        let sql_payload = |sql: String| -> String {
            conn.query_row(&format!("SELECT {sql}"), [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(
            sql_payload(card_payload("update_card", "7")),
            to_json(&Delivery::UpdateCard { card_id: 7 }).unwrap()
        );
        assert_eq!(
            sql_payload(card_payload("post_card", "7")),
            to_json(&Delivery::PostCard { card_id: 7 }).unwrap()
        );
    }

    /// Each list statement has exactly the placeholders `requests_page` binds values for,
    /// whatever the filters (a gap or an extra one fails at run time, on one backend only).
    #[test]
    fn each_request_list_has_a_placeholder_per_value() {
        for shape in 0..8 {
            let filter = RequestFilter {
                status: (shape & 1 != 0).then_some(crate::domain::Status::Denied),
                app: (shape & 2 != 0).then(|| "github".into()),
                user: (shape & 4 != 0).then(|| "U1".into()),
                before_id: None,
                limit: 0,
            };
            let (sql, params) = requests_page(&filter);
            for n in 1..=params.len() {
                assert!(sql.contains(&format!("${n}")), "{sql} lacks ${n}");
            }
            assert!(!sql.contains(&format!("${}", params.len() + 1)), "{sql}");
        }
    }

    /// The generated statements number their placeholders from the column list: the
    /// changing columns, then the key; the version guard points at `version`.
    #[test]
    fn generated_statements_number_placeholders_from_the_column_list() {
        let changes = REQUESTS.written(Write::Change).count();
        let inserted = REQUESTS.written(Write::Insert).count();
        assert!(UPDATE_REQUEST.contains(&format!("WHERE id = ${}", changes + 1)));
        let version = REQUESTS.change_number("version").unwrap();
        assert!(UPDATE_REQUEST.ends_with(&format!("AND version = ${version} - 1")));
        assert!(INSERT_REQUEST.contains(&format!("${inserted}) RETURNING id")));
        // PostgreSQL: ids, keys, times, the changing columns, 5 event arrays, 9 list arrays.
        let last = 3 + changes + 5 + 9;
        assert!(PG_APPLY_ALL.contains(&format!("${last}::text[]")));
        assert!(!PG_APPLY_ALL.contains(&format!("${}", last + 1)));
    }

    /// A click's UPDATE leaves the assignee lists alone; the catalog's rewrite sets them.
    #[test]
    fn the_assignee_lists_are_written_by_the_catalog_only() {
        for column in ["approvers", "app_admins", "admin_channel"] {
            assert!(
                !UPDATE_REQUEST.contains(column),
                "{column} in {}",
                *UPDATE_REQUEST
            );
            assert!(INSERT_REQUEST.contains(column), "{column} not filed");
        }
        assert_eq!(
            *ASSIGN_REQUEST,
            "UPDATE requests SET (approvers, app_admins, admin_channel) = ($1, $2, $3) \
             WHERE id = $4"
        );
    }
}
