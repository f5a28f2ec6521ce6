//! A JSON body extractor whose every rejection is a clear `{"error"}` with a 4xx status.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::server::BodyTimedOut;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if crate::nul::in_json(&bytes) {
            return Err(ApiError::BadRequest(crate::nul::REFUSAL.into()));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|err| ApiError::BadRequest(format!("invalid JSON body: {err}")))
    }
}

/// Reads a raw body, turning an oversized one into a 413 and one that came too slowly into a
/// 408.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if let Some(timed_out) = cause_of::<BodyTimedOut>(&rejection) {
            ApiError::TimedOut(timed_out)
        } else if rejection.into_response().status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge("the body is too large".into())
        } else {
            ApiError::BadRequest("the body could not be read".into())
        }
    })
}

/// The message of the `E` in the chain of causes of `error`, if one is there.
fn cause_of<E: std::error::Error + 'static>(
    error: &(dyn std::error::Error + 'static),
) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<E>() {
            return Some(error.to_string());
        }
        cause = error.source();
    }
    None
}
