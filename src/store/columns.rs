//! The columns of the tables that hold domain values, one list per table, and the SQL text
//! generated from them.
//!
//! A [`Column`] names a column, says when it is written ([`Write`]) and how its domain
//! field is stored ([`Access`]). The SELECT lists, the INSERT and UPDATE statements with
//! their `$N` placeholders, PostgreSQL's `unnest` arrays, the values bound
//! ([`Table::params`]) and the reading of a row by column name ([`Table::read`]) all come
//! from the list. Adding a request field is: a migration per backend, one line in
//! [`REQUESTS`], and the field.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::rows::{from_millis, list, to_json, Row};
use super::{StoreError, StoreResult};
use crate::domain::{AccessRequest, App};

/// A table whose rows are values of `T`.
pub(super) struct Table<T: 'static> {
    pub name: &'static str,
    pub columns: &'static [Column<T>],
}

/// One column of a [`Table`].
pub(super) struct Column<T: 'static> {
    pub name: &'static str,
    pub write: Write,
    pub access: Access<T>,
}

/// When a column is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// Assigned by the database; only read.
    Key,
    /// When the row is inserted; never changed after.
    Insert,
    /// When the row is inserted and whenever it changes.
    Change,
    /// When the row is inserted, and when the catalog reassigns it (`Table::assign`): a
    /// decision never changes these, so its UPDATE leaves them out.
    Assign,
}

/// How a field of `T` is stored: the field's getter and setter, by the column's type.
pub(super) enum Access<T> {
    Text(fn(&T) -> &String, fn(&mut T) -> &mut String),
    OptText(fn(&T) -> &Option<String>, fn(&mut T) -> &mut Option<String>),
    Int(fn(&T) -> &i64, fn(&mut T) -> &mut i64),
    Flag(fn(&T) -> &bool, fn(&mut T) -> &mut bool),
    /// Unix milliseconds.
    Time(fn(&T) -> &DateTime<Utc>, fn(&mut T) -> &mut DateTime<Utc>),
    OptTime(
        fn(&T) -> &Option<DateTime<Utc>>,
        fn(&mut T) -> &mut Option<DateTime<Utc>>,
    ),
    /// A JSON list of strings.
    List(fn(&T) -> &Vec<String>, fn(&mut T) -> &mut Vec<String>),
    /// A domain value stored as its text (a status, an access length).
    Parsed(
        fn(&T) -> Cow<'_, str>,
        fn(&mut T, &str) -> Result<(), String>,
    ),
}

/// The SQL type of a column, for PostgreSQL's typed arrays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum SqlType {
    Text,
    BigInt,
    Boolean,
}

impl SqlType {
    pub(super) fn array(self) -> &'static str {
        match self {
            SqlType::Text => "text[]",
            SqlType::BigInt => "bigint[]",
            SqlType::Boolean => "boolean[]",
        }
    }
}

/// One value to bind, so that one list of a row's values serves both drivers.
#[derive(Debug, Clone)]
pub(super) enum Param<'a> {
    Text(Cow<'a, str>),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

impl<T> Access<T> {
    pub(super) fn sql_type(&self) -> SqlType {
        match self {
            Access::Text(..) | Access::OptText(..) | Access::List(..) | Access::Parsed(..) => {
                SqlType::Text
            }
            Access::Int(..) | Access::Time(..) | Access::OptTime(..) => SqlType::BigInt,
            Access::Flag(..) => SqlType::Boolean,
        }
    }

    /// The stored form of this field of `value`.
    fn param<'a>(&self, value: &'a T) -> StoreResult<Param<'a>> {
        Ok(match self {
            Access::Text(get, _) => Param::Text(Cow::Borrowed(get(value))),
            Access::OptText(get, _) => Param::OptText(get(value).as_deref()),
            Access::Int(get, _) => Param::Int(*get(value)),
            Access::Flag(get, _) => Param::Bool(*get(value)),
            Access::Time(get, _) => Param::Int(get(value).timestamp_millis()),
            Access::OptTime(get, _) => Param::OptInt(get(value).map(|at| at.timestamp_millis())),
            Access::List(get, _) => Param::Text(Cow::Owned(to_json(get(value))?)),
            Access::Parsed(get, _) => Param::Text(get(value)),
        })
    }

    /// Sets this field of `value` from column `name` of `row`.
    fn read(&self, name: &str, row: &impl Row, value: &mut T) -> StoreResult<()> {
        match self {
            Access::Text(_, set) => *set(value) = row.text(name)?,
            Access::OptText(_, set) => *set(value) = row.opt_text(name)?,
            Access::Int(_, set) => *set(value) = row.int(name)?,
            Access::Flag(_, set) => *set(value) = row.flag(name)?,
            Access::Time(_, set) => *set(value) = from_millis(row.int(name)?)?,
            Access::OptTime(_, set) => {
                *set(value) = row.opt_int(name)?.map(from_millis).transpose()?
            }
            Access::List(_, set) => *set(value) = list(name, &row.text(name)?)?,
            Access::Parsed(_, set) => set(value, &row.text(name)?)
                .map_err(|err| StoreError::Corrupt(format!("{name}: {err}")))?,
        }
        Ok(())
    }
}

impl<T: Default> Table<T> {
    /// Reads a value from `row`, every column by name.
    pub(super) fn read(&self, row: &impl Row) -> StoreResult<T> {
        let mut value = T::default();
        for column in self.columns {
            column.access.read(column.name, row, &mut value)?;
        }
        Ok(value)
    }
}

impl<T> Table<T> {
    /// The columns written when `write` happens: all but the key for an insert, the
    /// changing ones for a change.
    pub(super) fn written(&self, write: Write) -> impl Iterator<Item = &Column<T>> {
        self.columns.iter().filter(move |column| match write {
            Write::Key => column.write == Write::Key,
            Write::Insert => column.write != Write::Key,
            Write::Change => column.write == Write::Change,
            Write::Assign => column.write == Write::Assign,
        })
    }

    /// The values of the columns [`Table::written`] for `write`, in their order.
    pub(super) fn params<'a>(&self, value: &'a T, write: Write) -> StoreResult<Vec<Param<'a>>> {
        self.written(write)
            .map(|column| column.access.param(value))
            .collect()
    }

    /// `a, b, c`: every column, each name prefixed by `prefix` (`"r."`).
    pub(super) fn select_list(&self, prefix: &str) -> String {
        names(self.columns.iter(), prefix)
    }

    /// `INSERT INTO t (…, extra…) VALUES ($1, …)`: the columns written on insert in list
    /// order as `$1…`, then `extra` columns numbered on.
    pub(super) fn insert(&self, extra: &[&str]) -> String {
        let mut columns: Vec<&str> = self.written(Write::Insert).map(|c| c.name).collect();
        columns.extend_from_slice(extra);
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.name,
            columns.join(", "),
            placeholders(1, columns.len())
        )
    }

    /// `UPDATE t SET (…, extra…) = ($1, …) WHERE key = $n`: the changing columns in list
    /// order, then `extra` columns, then the key, numbered on.
    pub(super) fn update(&self, key: &str, extra: &[&str]) -> String {
        self.update_of(Write::Change, key, extra)
    }

    /// [`Table::update`] of the [`Write::Assign`] columns: the catalog's rewrite.
    pub(super) fn assign(&self, key: &str) -> String {
        self.update_of(Write::Assign, key, &[])
    }

    fn update_of(&self, write: Write, key: &str, extra: &[&str]) -> String {
        let mut columns: Vec<&str> = self.written(write).map(|c| c.name).collect();
        columns.extend_from_slice(extra);
        format!(
            "UPDATE {} SET ({}) = ({}) WHERE {key} = ${}",
            self.name,
            columns.join(", "),
            placeholders(1, columns.len()),
            columns.len() + 1
        )
    }

    /// The placeholder number of changing column `name` in [`Table::update`].
    pub(super) fn change_number(&self, name: &str) -> Option<usize> {
        self.written(Write::Change)
            .position(|column| column.name == name)
            .map(|at| at + 1)
    }

    /// PostgreSQL `unnest` arguments for the changing columns, one typed array each,
    /// numbered from `$first`: `$4::text[], $5::bigint[], …`.
    pub(super) fn unnest_changes(&self, first: usize) -> String {
        self.written(Write::Change)
            .enumerate()
            .map(|(at, column)| format!("${}::{}", first + at, column.access.sql_type().array()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `names(…)`, the changing columns only.
    pub(super) fn change_list(&self, prefix: &str) -> String {
        names(self.written(Write::Change), prefix)
    }
}

fn names<'a, T: 'static>(columns: impl Iterator<Item = &'a Column<T>>, prefix: &str) -> String {
    columns
        .map(|column| format!("{prefix}{}", column.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$first, $first+1, …`, `count` of them.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sets `slot` to `text` parsed: the setter of a [`Access::Parsed`] column.
fn parse_into<V>(slot: &mut V, text: &str) -> Result<(), String>
where
    V: std::str::FromStr,
    V::Err: std::fmt::Display,
{
    *slot = text.parse().map_err(|err: V::Err| err.to_string())?;
    Ok(())
}

const fn column<T>(name: &'static str, write: Write, access: Access<T>) -> Column<T> {
    Column {
        name,
        write,
        access,
    }
}

use Access::{Flag, Int, List, OptText, OptTime, Parsed, Text, Time};
use Write::{Assign, Change, Insert, Key};

/// `requests`: one access request a row. `version` guards every change.
pub(super) const REQUESTS: Table<AccessRequest> = Table {
    name: "requests",
    columns: &[
        column("id", Key, Int(|r| &r.id, |r| &mut r.id)),
        column("app", Insert, Text(|r| &r.app, |r| &mut r.app)),
        column(
            "app_name",
            Insert,
            Text(|r| &r.app_name, |r| &mut r.app_name),
        ),
        column(
            "target_user",
            Insert,
            Text(|r| &r.target_user, |r| &mut r.target_user),
        ),
        column(
            "requester",
            Insert,
            Text(|r| &r.requester, |r| &mut r.requester),
        ),
        column("comment", Insert, Text(|r| &r.comment, |r| &mut r.comment)),
        column(
            "approvers",
            Assign,
            List(|r| &r.approvers, |r| &mut r.approvers),
        ),
        column(
            "app_admins",
            Assign,
            List(|r| &r.app_admins, |r| &mut r.app_admins),
        ),
        column(
            "admin_channel",
            Assign,
            OptText(|r| &r.admin_channel, |r| &mut r.admin_channel),
        ),
        column(
            "created_at",
            Insert,
            Time(|r| &r.created_at, |r| &mut r.created_at),
        ),
        column(
            "permission",
            Change,
            Text(|r| &r.permission, |r| &mut r.permission),
        ),
        column("groups", Change, List(|r| &r.groups, |r| &mut r.groups)),
        column(
            "access_length",
            Change,
            Parsed(
                |r| Cow::Owned(r.access_length.to_string()),
                |r, text| parse_into(&mut r.access_length, text),
            ),
        ),
        column(
            "status",
            Change,
            Parsed(
                |r| Cow::Borrowed(r.status.as_str()),
                |r, text| parse_into(&mut r.status, text),
            ),
        ),
        column(
            "updated_at",
            Change,
            Time(|r| &r.updated_at, |r| &mut r.updated_at),
        ),
        column(
            "approved_by",
            Change,
            OptText(|r| &r.approved_by, |r| &mut r.approved_by),
        ),
        column(
            "approved_at",
            Change,
            OptTime(|r| &r.approved_at, |r| &mut r.approved_at),
        ),
        column(
            "decided_by",
            Change,
            OptText(|r| &r.decided_by, |r| &mut r.decided_by),
        ),
        column(
            "decided_at",
            Change,
            OptTime(|r| &r.decided_at, |r| &mut r.decided_at),
        ),
        column(
            "provisioned_at",
            Change,
            OptTime(|r| &r.provisioned_at, |r| &mut r.provisioned_at),
        ),
        column(
            "expires_at",
            Change,
            OptTime(|r| &r.expires_at, |r| &mut r.expires_at),
        ),
        column(
            "removed_by",
            Change,
            OptText(|r| &r.removed_by, |r| &mut r.removed_by),
        ),
        column(
            "removed_at",
            Change,
            OptTime(|r| &r.removed_at, |r| &mut r.removed_at),
        ),
        column(
            "denial_feedback",
            Change,
            OptText(|r| &r.denial_feedback, |r| &mut r.denial_feedback),
        ),
        column(
            "expiry_reminded",
            Change,
            Flag(|r| &r.expiry_reminded, |r| &mut r.expiry_reminded),
        ),
        column(
            "stage_reminded",
            Change,
            Flag(|r| &r.stage_reminded, |r| &mut r.stage_reminded),
        ),
        column(
            "released_by",
            Change,
            OptText(|r| &r.released_by, |r| &mut r.released_by),
        ),
        column(
            "released_at",
            Change,
            OptTime(|r| &r.released_at, |r| &mut r.released_at),
        ),
        column("version", Change, Int(|r| &r.version, |r| &mut r.version)),
        column(
            "claimed_by",
            Change,
            OptText(|r| &r.claimed_by, |r| &mut r.claimed_by),
        ),
        column(
            "closed_by",
            Change,
            OptText(|r| &r.closed_by, |r| &mut r.closed_by),
        ),
        column(
            "close_reason",
            Change,
            OptText(|r| &r.close_reason, |r| &mut r.close_reason),
        ),
    ],
};

/// `apps`: the catalog, one app a row, by slug. `updated_at` is written beside the list.
pub(super) const APPS: Table<App> = Table {
    name: "apps",
    columns: &[
        column("slug", Insert, Text(|a| &a.slug, |a| &mut a.slug)),
        column("name", Change, Text(|a| &a.name, |a| &mut a.name)),
        column("admins", Change, List(|a| &a.admins, |a| &mut a.admins)),
        column(
            "approvers",
            Change,
            List(|a| &a.approvers, |a| &mut a.approvers),
        ),
        column(
            "permissions",
            Change,
            List(|a| &a.permissions, |a| &mut a.permissions),
        ),
        column("groups", Change, List(|a| &a.groups, |a| &mut a.groups)),
        column(
            "admin_channel",
            Change,
            OptText(|a| &a.admin_channel, |a| &mut a.admin_channel),
        ),
    ],
};
