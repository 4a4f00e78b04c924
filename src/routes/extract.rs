//! Extractors whose rejections render as [`AppError`], never as axum's
//! plain-text defaults.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;

use crate::context::AppContext;
use crate::error::AppError;
use crate::session::{Key, ReadToken, SessionId};

async fn path_param<S: Send + Sync>(parts: &mut Parts, state: &S, name: &str) -> Result<String, AppError> {
    let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| AppError::NotFound)?;
    params.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_owned()).ok_or(AppError::NotFound)
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

/// The `{token}` of a read-only route.
pub struct Token(pub ReadToken);

impl<S: Send + Sync> FromRequestParts<S> for Token {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let text = path_param(parts, state, "token").await?;
        ReadToken::parse(&text).map(Token).ok_or(AppError::UnknownSession)
    }
}

/// The scheme and host that fragments' absolute URLs start with:
/// `PUBLIC_URL` when set, else `http://` and the request's `Host`.
pub struct PublicBase(pub String);

impl FromRequestParts<Arc<AppContext>> for PublicBase {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<AppContext>) -> Result<Self, AppError> {
        if let Some(url) = &ctx.config.public_url {
            return Ok(PublicBase(url.clone()));
        }
        let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        if is_host(host) {
            Ok(PublicBase(format!("http://{host}")))
        } else {
            Err(AppError::BadRequest("The Host header is missing or malformed."))
        }
    }
}

/// `name[:port]` or `[v6]:port`: nothing that could break out of a URL.
fn is_host(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
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
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(AppError::UnsupportedMediaType);
        }
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

#[cfg(test)]
mod tests {
    use super::is_host;

    #[test]
    fn hosts_cannot_break_out_of_a_url() {
        for good in ["localhost", "example.com:8080", "127.0.0.1:3000", "[::1]:80"] {
            assert!(is_host(good), "{good}");
        }
        for bad in ["", "evil.com/path", "a\"b", "a b", "x@y", "a<script>"] {
            assert!(!is_host(bad), "{bad}");
        }
    }
}
