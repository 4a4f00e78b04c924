//! The state as JSON.

use axum::Json;

use crate::context::Ctx;
use crate::error::AppError;
use crate::session::State;

use super::extract::Sid;

/// `GET /s/{sid}/state.json`: `{"lbs":…,"kg":…}`, in widget order.
pub async fn json(ctx: Ctx, Sid(sid): Sid) -> Result<Json<State>, AppError> {
    let snapshot = ctx.snapshot(&sid).await?;
    Ok(Json(snapshot.state))
}
