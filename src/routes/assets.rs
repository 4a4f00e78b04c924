//! `GET /assets/{name}`: files compiled into the binary.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::assets::ASSETS;
use crate::error::AppError;

/// Names carry a version or content hash, so they never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn serve(name: Result<Path<String>, PathRejection>) -> Result<Response, AppError> {
    let Path(name) = name.map_err(|_| AppError::NotFound)?;
    let asset = ASSETS.find(&name).ok_or(AppError::NotFound)?;
    let headers = [(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, IMMUTABLE)];
    Ok((headers, asset.body).into_response())
}
