//! Extractors whose rejections render as [`AppError`], never as axum's
//! plain-text defaults.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;

use crate::error::AppError;
use crate::session::{Key, SessionId};

async fn path_param<S: Send + Sync>(parts: &mut Parts, state: &S, name: &str) -> Result<String, AppError> {
    let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|_| AppError::NotFound)?;
    params.remove(name).ok_or(AppError::NotFound)
}

/// The `{sid}` of a session route; malformed ids are unknown sessions.
pub struct Sid(pub SessionId);

impl<S: Send + Sync> FromRequestParts<S> for Sid {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let text = path_param(parts, state, "sid").await?;
        SessionId::parse(&text).map(Sid).ok_or(AppError::UnknownSession)
    }
}

/// The `{key}` of a widget route.
pub struct WidgetKey(pub Key);

impl<S: Send + Sync> FromRequestParts<S> for WidgetKey {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let text = path_param(parts, state, "key").await?;
        text.parse().map(WidgetKey).map_err(|()| AppError::NotFound)
    }
}

/// Whether htmx made the request (`HX-Request: true`).
pub struct Htmx(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Htmx(parts.headers.get("hx-request").is_some_and(|v| v.as_bytes() == b"true")))
    }
}

/// A form-encoded body, as name/value pairs. The body limit is the
/// router's; going over it is a 413.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::BadRequest("The request body could not be read.")
            }
        })?;
        Ok(Form(form_urlencoded::parse(&body).into_owned().collect()))
    }
}
