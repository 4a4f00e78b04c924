//! The state as JSON.

use axum::Json;

use crate::context::Ctx;
use crate::error::AppError;
use crate::session::{SessionId, State};

use super::extract::Param;

/// `GET /s/{sid}/state.json`: `{"lbs":…,"kg":…}`, in widget order.
pub async fn json(ctx: Ctx, Param(sid): Param<SessionId>) -> Result<Json<State>, AppError> {
    let snapshot = ctx.snapshot(&sid).await?;
    Ok(Json(snapshot.state))
}
