//! PostgreSQL store (being written).
pub struct PostgresStore;
