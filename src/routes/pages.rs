//! `GET /` starts a session; `GET /s/{sid}` shows it.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use maud::Markup;

use crate::context::{AppContext, Ctx};
use crate::error::AppError;
use crate::i18n::Texts;
use crate::session::{SessionId, ViewId};
use crate::views::page::Refused;
use crate::views::{Links, converter_page};

use super::extract::{Client, Language, Param};

/// Every visit to `/` gets a session of its own, as every Streamlit tab
/// does; but not an `<img>` or a script on another site, and not a flood
/// from one client.
pub async fn start(ctx: Ctx, Client(client): Client, headers: HeaderMap) -> Result<Redirect, AppError> {
    if !may_start_from(&headers) {
        return Err(AppError::CrossSite);
    }
    ctx.may_start_session(client)?;
    let sid = ctx.store.create().await?;
    ctx.metrics.session_created();
    tracing::debug!(session = sid.redacted(), "session created");
    Ok(Redirect::to(&format!("/s/{}", sid.as_str())))
}

/// The Fetch Metadata resource-isolation policy: another site may start a
/// session only by a top-level navigation (a link the user follows).
/// Browsers that send no `Sec-Fetch-*` headers are let through.
fn may_start_from(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let cross_site = header("sec-fetch-site") == Some(b"cross-site");
    let top_level =
        header("sec-fetch-mode") == Some(b"navigate") && header("sec-fetch-dest") == Some(b"document");
    !cross_site || top_level
}

pub async fn show(
    ctx: Ctx,
    Param(sid): Param<SessionId>,
    Language(t): Language,
) -> Result<Response, AppError> {
    Ok(page(&ctx, t, &sid, None).await?.into_response())
}

/// The converter page as stored now, with refused input shown beside its field.
pub async fn page(
    ctx: &AppContext,
    t: &Texts,
    sid: &SessionId,
    refused: Option<Refused<'_>>,
) -> Result<Markup, AppError> {
    let (snapshot, token) = ctx.store.session(sid).await?.ok_or(AppError::UnknownSession)?;
    let read_link = Links::reader("", &token);
    let links = Links::writer("", sid);
    Ok(converter_page(t, &links, read_link.page(), &ViewId::random(), &snapshot, refused))
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}

pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn other_sites_start_sessions_only_by_navigation() {
        assert!(may_start_from(&headers(&[])));
        assert!(may_start_from(&headers(&[("sec-fetch-site", "none")])));
        assert!(may_start_from(&headers(&[("sec-fetch-site", "same-origin"), ("sec-fetch-dest", "image")])));
        let link = [
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ];
        assert!(may_start_from(&headers(&link)));
        for dest in ["image", "iframe", "script", "empty"] {
            let h =
                [("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "no-cors"), ("sec-fetch-dest", dest)];
            assert!(!may_start_from(&headers(&h)), "{dest}");
        }
        let framed =
            [("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "iframe")];
        assert!(!may_start_from(&headers(&framed)));
    }
}
