//! The one place where errors become HTTP answers: `{"error": "<message>"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::{Refusal, ValidationError};
use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or wrong credentials or signature.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown id or app.
    #[error("{0}")]
    NotFound(String),
    /// 408: the request's body did not arrive in time.
    #[error("{0}")]
    TimedOut(String),
    /// 409: the request is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than accepted.
    #[error("{0}")]
    TooLarge(String),
    /// 422: a value outside the app's catalog.
    #[error("{0}")]
    Unprocessable(String),
    /// 503: a feature is not configured, or the database is not answering.
    #[error("{0}")]
    Unavailable(String),
    /// 500: our fault; the cause is logged, never returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        match err {
            ValidationError::BadInput { message, .. } => ApiError::BadRequest(message),
            ValidationError::NotInCatalog { message, .. } => ApiError::Unprocessable(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict => {
                ApiError::Conflict("the request is changing too fast right now; try again".into())
            }
            StoreError::Unavailable(_)
            | StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                tracing::warn!(error = %err, "the database is not answering");
                ApiError::Unavailable("the database is not answering; try again shortly".into())
            }
            // SQLite stayed locked past its busy timeout (another process holds it).
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(ref failure, _))
                if matches!(
                    failure.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                tracing::warn!(error = %err, "the database is not answering");
                ApiError::Unavailable("the database is not answering; try again shortly".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::UnknownApp(_) | ServiceError::UnknownRequest(_) => {
                ApiError::NotFound(err.to_string())
            }
            ServiceError::Invalid(invalid) => invalid.into(),
            ServiceError::Refused(Refusal::Invalid(invalid)) => invalid.into(),
            ServiceError::Refused(refusal) if refusal.is_conflict() => {
                ApiError::Conflict(refusal.to_string())
            }
            ServiceError::Refused(Refusal::NothingChanged) => {
                ApiError::Conflict("nothing changed".into())
            }
            ServiceError::Refused(refusal) => ApiError::Forbidden(refusal.to_string()),
            ServiceError::KeyUsedForAnotherBody => ApiError::Unprocessable(err.to_string()),
            ServiceError::Store(store) => store.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_is_not_answering_is_a_503() {
        for err in [
            StoreError::Unavailable("connection refused".into()),
            StoreError::Database(sqlx::Error::PoolTimedOut),
            StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            )),
        ] {
            assert_eq!(
                ApiError::from(err).status(),
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        let broken = StoreError::Write("disk I/O error".into());
        assert_eq!(
            ApiError::from(broken).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        // Never the SQL or the driver's words to a user.
        let bad_sql = StoreError::Sqlite(rusqlite::Error::InvalidColumnName("secret".into()));
        let answer = ApiError::from(bad_sql);
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.to_string(), "internal error");
    }
}
