//! `GET /assets/{name}`: files compiled into the binary, compressed at
//! build time.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::assets::{self, Asset, negotiate};
use crate::error::AppError;

/// `app.js` is also the stream's shared worker, which runs under its own
/// script's policy: it only connects back. (A page that loads it as a
/// script ignores this header.)
const WORKER_CSP: &str = "default-src 'none'; connect-src 'self'";

/// Names carry a version or content hash, so they never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The stable name for embedding hosts changes content on every upgrade:
/// cached briefly, and revalidated after that.
const REVALIDATE: &str = "public, max-age=300";

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
            (header::CACHE_CONTROL, if name == assets::APP_JS_FOR_EMBEDS { REVALIDATE } else { IMMUTABLE }),
            (header::VARY, "accept-encoding"),
        ],
        body,
    )
        .into_response();
    if asset.name == assets::APP_JS.name {
        // A worker runs under its own script's policy: it only connects back.
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(WORKER_CSP));
    }
    if let Some(encoding) = encoding {
        response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    Ok(response)
}
