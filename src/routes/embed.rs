//! Fragments for embedding in other sites' pages.

use axum::response::{IntoResponse, Response};

use crate::context::Ctx;
use crate::error::AppError;
use crate::session::ViewId;
use crate::views::Links;
use crate::views::embed::{converter_fragment, outputs_fragment, state_fragment};

use super::extract::{Language, PublicBase, Sid, Token};

/// `GET /s/{sid}/fragments/converter`
pub async fn converter(
    ctx: Ctx,
    Sid(sid): Sid,
    PublicBase(base): PublicBase,
    Language(t): Language,
) -> Result<Response, AppError> {
    let snapshot = ctx.snapshot(&sid).await?;
    let links = Links::writer(&base, &sid);
    Ok(converter_fragment(t, &links, &ViewId::random(), &snapshot).into_response())
}

/// `GET /s/{sid}/fragments/state`
pub async fn state(
    ctx: Ctx,
    Sid(sid): Sid,
    PublicBase(base): PublicBase,
    Language(t): Language,
) -> Result<Response, AppError> {
    let snapshot = ctx.snapshot(&sid).await?;
    Ok(state_fragment(t, &Links::writer(&base, &sid), &snapshot).into_response())
}

/// `GET /v/{token}/fragments/converter`: the values, read-only.
pub async fn reader_converter(
    ctx: Ctx,
    Token(token): Token,
    PublicBase(base): PublicBase,
    Language(t): Language,
) -> Result<Response, AppError> {
    let (_, snapshot) = ctx.reader(&token).await?;
    Ok(outputs_fragment(t, &Links::reader(&base, &token), &snapshot).into_response())
}

/// `GET /v/{token}/fragments/state`
pub async fn reader_state(
    ctx: Ctx,
    Token(token): Token,
    PublicBase(base): PublicBase,
    Language(t): Language,
) -> Result<Response, AppError> {
    let (_, snapshot) = ctx.reader(&token).await?;
    Ok(state_fragment(t, &Links::reader(&base, &token), &snapshot).into_response())
}
