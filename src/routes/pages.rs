//! `GET /` starts a session; `GET /s/{sid}` shows it.

use axum::response::{IntoResponse, Redirect, Response};

use crate::context::Ctx;
use crate::error::AppError;
use crate::session::ViewId;
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
    let snapshot = ctx.store.get(&sid).await?.ok_or(AppError::UnknownSession)?;
    let links = Links { base: "", sid: &sid };
    Ok(converter_page(&links, &ViewId::random(), &snapshot, None).into_response())
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}
