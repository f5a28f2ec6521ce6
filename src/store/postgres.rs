//! PostgreSQL store (being written by the store work; temporary scaffold).
use std::sync::Arc;
pub struct PostgresStore;
pub async fn open(_url: &str) -> super::StoreResult<Arc<dyn super::Store>> {
    unimplemented!("scaffold")
}
