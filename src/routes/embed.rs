//! Fragments for embedding in other sites' pages: at `/s/{sid}/fragments/…`
//! for views that can write, at `/v/{token}/fragments/…` read-only.

use axum::response::{IntoResponse, Response};

use crate::context::Ctx;
use crate::error::AppError;
use crate::session::ViewId;
use crate::views::Links;
use crate::views::embed::{converter_fragment, outputs_fragment, state_fragment};

use super::extract::{Language, Param, PathParam, PublicBase, Viewer};

/// The `{fragment}` of `…/fragments/{fragment}`.
pub enum Fragment {
    /// The fields, or read-only the values.
    Converter,
    /// The dump.
    State,
}

impl PathParam for Fragment {
    const NAME: &'static str = "fragment";
    fn parse_param(text: &str) -> Result<Self, AppError> {
        match text {
            "converter" => Ok(Self::Converter),
            "state" => Ok(Self::State),
            _ => Err(AppError::NotFound),
        }
    }
}

/// `GET /s/{sid}/fragments/{fragment}`, `GET /v/{token}/fragments/{fragment}`
pub async fn fragment(
    ctx: Ctx,
    viewer: Viewer,
    Param(fragment): Param<Fragment>,
    PublicBase(base): PublicBase,
    Language(t): Language,
) -> Result<Response, AppError> {
    let (links, snapshot) = match &viewer {
        Viewer::Writer(sid) => (Links::writer(&base, sid), ctx.snapshot(sid).await?),
        Viewer::Reader(token) => (Links::reader(&base, token), ctx.reader(token).await?.1),
    };
    let markup = match (fragment, viewer) {
        (Fragment::Converter, Viewer::Writer(_)) => {
            converter_fragment(t, &links, &ViewId::random(), &snapshot)
        }
        (Fragment::Converter, Viewer::Reader(_)) => outputs_fragment(t, &links, &snapshot),
        (Fragment::State, _) => state_fragment(t, &links, &snapshot),
    };
    Ok(markup.into_response())
}
