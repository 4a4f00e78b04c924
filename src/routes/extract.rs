//! Extractors whose rejections render as [`AppError`], never as axum's
//! plain-text defaults.

use std::sync::Arc;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use http_body_util::LengthLimitError;

use crate::context::AppContext;
use crate::error::{AppError, BadRequest};
use crate::i18n::{Choice, Lang, Texts};
use crate::server::client::{client_address, is_trusted, limit_key};
use crate::session::{Key, ReadToken, SessionId, Snapshot};

use super::BODY_LIMIT;

/// What a route's path parameter names, parsed from its text.
pub trait PathParam: Sized {
    /// The parameter in the route: `{sid}`, `{token}`, `{key}`.
    const NAME: &'static str;
    fn parse_param(text: &str) -> Result<Self, AppError>;
}

/// Malformed ids are unknown sessions.
impl PathParam for SessionId {
    const NAME: &'static str = "sid";
    fn parse_param(text: &str) -> Result<Self, AppError> {
        SessionId::parse(text).ok_or(AppError::UnknownSession)
    }
}

/// Malformed tokens are unknown sessions.
impl PathParam for ReadToken {
    const NAME: &'static str = "token";
    fn parse_param(text: &str) -> Result<Self, AppError> {
        ReadToken::parse(text).ok_or(AppError::UnknownSession)
    }
}

/// A widget that is not one is no page.
impl PathParam for Key {
    const NAME: &'static str = "key";
    fn parse_param(text: &str) -> Result<Self, AppError> {
        text.parse().map_err(|()| AppError::NotFound)
    }
}

/// The `{sid}`, `{token}` or `{key}` of the matched route, parsed; a route
/// without it is a 404.
pub struct Param<T>(pub T);

impl<S: Send + Sync, T: PathParam> FromRequestParts<S> for Param<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| AppError::NotFound)?;
        let (_, text) = params.iter().find(|(name, _)| *name == T::NAME).ok_or(AppError::NotFound)?;
        T::parse_param(text).map(Param)
    }
}

/// A session as a view names it: by its id, for views that can write
/// (`/s/{sid}/…`), or by its read-only token (`/v/{token}/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    Writer(SessionId),
    Reader(ReadToken),
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| AppError::NotFound)?;
        for (name, text) in &params {
            if name == SessionId::NAME {
                return SessionId::parse_param(text).map(Viewer::Writer);
            }
            if name == ReadToken::NAME {
                return ReadToken::parse_param(text).map(Viewer::Reader);
            }
        }
        Err(AppError::NotFound)
    }
}

/// The session a read-only link (`/v/{token}/…`) stands for, looked up:
/// an unknown or expired token is an unknown session.
pub struct ReadOnly {
    pub token: ReadToken,
    pub sid: SessionId,
    pub snapshot: Snapshot,
}

impl FromRequestParts<Arc<AppContext>> for ReadOnly {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<AppContext>) -> Result<Self, AppError> {
        let Param(token) = Param::<ReadToken>::from_request_parts(parts, ctx).await?;
        let (sid, snapshot) = ctx.reader(&token).await?;
        Ok(ReadOnly { token, sid, snapshot })
    }
}

/// The TCP peer; unknown when served without our listener (a test calling
/// the router directly).
fn peer(parts: &Parts) -> IpAddr {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The client a request counts against for per-client limits: the TCP
/// peer, or behind a trusted proxy the address it forwarded for, as a
/// limit key (an IPv6 client is its /64).
pub struct Client(pub IpAddr);

impl FromRequestParts<Arc<AppContext>> for Client {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<AppContext>) -> Result<Self, Self::Rejection> {
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let client = client_address(peer(parts), forwarded, &ctx.config.trusted_proxies);
        Ok(Client(limit_key(client)))
    }
}

/// The scheme and host that fragments' absolute URLs start with:
/// `PUBLIC_URL` when set; else, from a trusted proxy, its
/// `X-Forwarded-Proto` and `X-Forwarded-Host`; else `http://` and `Host`.
pub struct PublicBase(pub String);

impl FromRequestParts<Arc<AppContext>> for PublicBase {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<AppContext>) -> Result<Self, AppError> {
        if let Some(url) = &ctx.config.embedding.public_url {
            return Ok(PublicBase(url.clone()));
        }
        let header = |name: &str| parts.headers.get(name).and_then(|h| h.to_str().ok());
        let from_proxy = is_trusted(peer(parts), &ctx.config.trusted_proxies);
        let forwarded = |name: &str| if from_proxy { header(name).map(str::trim) } else { None };
        let scheme = match forwarded("x-forwarded-proto") {
            Some("https") => "https",
            _ => "http",
        };
        let host = forwarded("x-forwarded-host").or_else(|| header("host")).unwrap_or_default();
        if is_host(host) {
            Ok(PublicBase(format!("{scheme}://{host}")))
        } else {
            Err(AppError::BadRequest(BadRequest::Host))
        }
    }
}

/// `name[:port]` or `[v6]:port`: nothing that could break out of a URL.
fn is_host(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

/// Whether htmx made the request (`HX-Request: true`).
pub struct Htmx(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Htmx(parts.headers.get("hx-request").is_some_and(|v| v.as_bytes() == b"true")))
    }
}

/// A form-encoded body of at most [`BODY_LIMIT`] bytes; more is a 413.
pub struct Form(Bytes);

impl Form {
    pub fn body(&self) -> &[u8] {
        &self.0
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = AppError;
    async fn from_request(req: Request, _: &S) -> Result<Self, AppError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(AppError::UnsupportedMediaType);
        }
        let body = axum::body::to_bytes(req.into_body(), BODY_LIMIT).await.map_err(|e| {
            if e.into_inner().is::<LengthLimitError>() {
                AppError::PayloadTooLarge
            } else {
                AppError::BadRequest(BadRequest::UnreadableBody)
            }
        })?;
        Ok(Form(body))
    }
}

/// The words of the request's language, as the layer around every
/// request chose it (`?lang=`, the cookie, `Accept-Language`).
pub struct Language(pub &'static Texts);

impl<S: Send + Sync> FromRequestParts<S> for Language {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let choice = parts.extensions.get::<Choice>().copied();
        let lang =
            choice.map_or_else(|| Lang::of_request(parts.uri.query(), &parts.headers).lang, |c| c.lang);
        Ok(Self(lang.texts()))
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
