//! Fragments for embedding in other sites' pages.

use axum::extract::RawQuery;
use axum::response::{IntoResponse, Response};

use crate::context::Ctx;
use crate::error::AppError;
use crate::session::ViewId;
use crate::views::Links;
use crate::views::embed::{converter_fragment, outputs_fragment, state_fragment};

use super::extract::{PublicBase, Sid, Token};

/// `?stream=shared`: another fragment on the page carries the stream.
fn own_stream(query: Option<&str>) -> bool {
    !query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "stream" && v == "shared"))
}

/// `GET /s/{sid}/fragments/converter`
pub async fn converter(ctx: Ctx, Sid(sid): Sid, PublicBase(base): PublicBase) -> Result<Response, AppError> {
    let snapshot = ctx.snapshot(&sid).await?;
    let links = Links::writer(&base, &sid);
    Ok(converter_fragment(&base, &links, &ViewId::random(), &snapshot).into_response())
}

/// `GET /s/{sid}/fragments/state[?stream=shared]`
pub async fn state(
    ctx: Ctx,
    Sid(sid): Sid,
    PublicBase(base): PublicBase,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let snapshot = ctx.snapshot(&sid).await?;
    let links = Links::writer(&base, &sid);
    Ok(state_fragment(&base, &links, &snapshot, own_stream(query.as_deref())).into_response())
}

/// `GET /v/{token}/fragments/converter`: the values, read-only.
pub async fn reader_converter(
    ctx: Ctx,
    Token(token): Token,
    PublicBase(base): PublicBase,
) -> Result<Response, AppError> {
    let (_, snapshot) = ctx.reader(&token).await?;
    let links = Links::reader(&base, &token);
    Ok(outputs_fragment(&base, &links, &snapshot).into_response())
}

/// `GET /v/{token}/fragments/state[?stream=shared]`
pub async fn reader_state(
    ctx: Ctx,
    Token(token): Token,
    PublicBase(base): PublicBase,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let (_, snapshot) = ctx.reader(&token).await?;
    let links = Links::reader(&base, &token);
    Ok(state_fragment(&base, &links, &snapshot, own_stream(query.as_deref())).into_response())
}

#[cfg(test)]
mod tests {
    use super::own_stream;

    #[test]
    fn stream_sharing_is_opt_in() {
        assert!(own_stream(None));
        assert!(own_stream(Some("x=1")));
        assert!(!own_stream(Some("stream=shared")));
    }
}
