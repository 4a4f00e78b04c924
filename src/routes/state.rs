//! Read-only views of the state: JSON and the dump fragment.

use axum::Json;
use axum::response::{IntoResponse, Response};

use crate::context::Ctx;
use crate::error::AppError;
use crate::session::State;
use crate::views::dump;

use super::extract::Sid;

/// `GET /s/{sid}/state.json`: `{"lbs":…,"kg":…}`, in widget order.
pub async fn json(ctx: Ctx, Sid(sid): Sid) -> Result<Json<State>, AppError> {
    let snapshot = ctx.store.get(&sid).await?.ok_or(AppError::UnknownSession)?;
    Ok(Json(snapshot.state))
}

/// `GET /s/{sid}/fragments/state`: the dump alone.
pub async fn dump_fragment(ctx: Ctx, Sid(sid): Sid) -> Result<Response, AppError> {
    let snapshot = ctx.store.get(&sid).await?.ok_or(AppError::UnknownSession)?;
    Ok(dump(&snapshot, None, false).into_response())
}
