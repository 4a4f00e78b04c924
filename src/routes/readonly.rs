//! `GET /v/{token}`: the live, read-only page. It never shows the session id.

use axum::Json;
use axum::response::{IntoResponse, Response};

use crate::session::State;
use crate::views::Links;
use crate::views::readonly::reader_page;

use super::extract::{Language, ReadOnly};

pub async fn page(ReadOnly { token, snapshot, .. }: ReadOnly, Language(t): Language) -> Response {
    reader_page(t, &Links::reader("", &token), &snapshot).into_response()
}

/// `GET /v/{token}/state.json`
pub async fn json(ReadOnly { snapshot, .. }: ReadOnly) -> Json<State> {
    Json(snapshot.state)
}
