//! `GET /v/{token}`: the live, read-only page. It never shows the session id.

use axum::Json;
use axum::response::{IntoResponse, Response};

use crate::context::Ctx;
use crate::error::AppError;
use crate::session::{ReadToken, State};
use crate::views::Links;
use crate::views::readonly::reader_page;

use super::extract::{Language, Param};

pub async fn page(
    ctx: Ctx,
    Param(token): Param<ReadToken>,
    Language(t): Language,
) -> Result<Response, AppError> {
    let (_, snapshot) = ctx.reader(&token).await?;
    Ok(reader_page(t, &Links::reader("", &token), &snapshot).into_response())
}

/// `GET /v/{token}/state.json`
pub async fn json(ctx: Ctx, Param(token): Param<ReadToken>) -> Result<Json<State>, AppError> {
    let (_, snapshot) = ctx.reader(&token).await?;
    Ok(Json(snapshot.state))
}
