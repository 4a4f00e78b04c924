//! `GET /assets/{name}`: files compiled into the binary, compressed at
//! build time.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::assets::{Asset, negotiate};
use crate::error::AppError;

/// Names carry a version or content hash, so they never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn serve(
    name: Result<Path<String>, PathRejection>,
    request: HeaderMap,
) -> Result<Response, AppError> {
    let Path(name) = name.map_err(|_| AppError::NotFound)?;
    let asset = Asset::find(&name).ok_or(AppError::NotFound)?;
    let accepts = request.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (body, encoding) = asset.encoded(negotiate(accepts));
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, IMMUTABLE),
            (header::VARY, "accept-encoding"),
        ],
        body,
    )
        .into_response();
    if let Some(encoding) = encoding {
        response.headers_mut().insert(header::CONTENT_ENCODING, header::HeaderValue::from_static(encoding));
    }
    Ok(response)
}
