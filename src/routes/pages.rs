//! `GET /` starts a session; `GET /s/{sid}` shows it.

use axum::response::{IntoResponse, Redirect, Response};

use maud::Markup;

use crate::context::{AppContext, Ctx};
use crate::error::AppError;
use crate::session::{SessionId, ViewId};
use crate::views::page::Refused;
use crate::views::{Links, converter_page};

use super::extract::Sid;

/// Every visit to `/` gets a session of its own, as every Streamlit tab does.
pub async fn start(ctx: Ctx) -> Result<Redirect, AppError> {
    let sid = ctx.store.create().await?;
    ctx.metrics.session_created();
    tracing::debug!(session = sid.redacted(), "session created");
    Ok(Redirect::to(&format!("/s/{}", sid.as_str())))
}

pub async fn show(ctx: Ctx, Sid(sid): Sid) -> Result<Response, AppError> {
    Ok(page(&ctx, &sid, None).await?.into_response())
}

/// The converter page as stored now, with refused input shown beside its field.
pub async fn page(
    ctx: &AppContext,
    sid: &SessionId,
    refused: Option<Refused<'_>>,
) -> Result<Markup, AppError> {
    let (snapshot, token) = ctx.store.session(sid).await?.ok_or(AppError::UnknownSession)?;
    let read_link = Links::reader("", &token);
    let links = Links::writer("", sid);
    Ok(converter_page(&links, read_link.page(), &ViewId::random(), &snapshot, refused))
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}

pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
