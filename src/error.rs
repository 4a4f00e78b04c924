//! Every failure a client can cause, as one type that renders itself.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::session::{Busy, FormError, Key, StoreError};
use crate::telemetry::RateLimitedLog;
use crate::views::{error_page, field_error_response};

#[derive(Debug)]
pub enum AppError {
    /// Unknown, expired or malformed session id.
    UnknownSession,
    /// A path that names no widget or resource.
    NotFound,
    /// The path exists, but not for this method.
    MethodNotAllowed,
    /// The request body is over the limit.
    PayloadTooLarge,
    /// The request could not be read (bad encoding, missing field…).
    BadRequest(&'static str),
    /// The body is not `application/x-www-form-urlencoded`.
    UnsupportedMediaType,
    /// A stream cap is reached; try again later.
    Busy(Busy),
    /// The request took too long.
    Timeout,
    /// The store failed; not the client's fault.
    Store(StoreError),
    /// This client started too many sessions lately.
    TooManySessions { retry_after_secs: u64 },
    /// Another site tried to start a session without a top-level navigation.
    CrossSite,
    /// A bug: a handler panicked. Logged where it happened.
    Internal,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownSession | Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Store(StoreError::Corrupt(_)) | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManySessions { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::CrossSite => StatusCode::FORBIDDEN,
        }
    }

    fn title_and_message(&self) -> (&'static str, &'static str) {
        match self {
            Self::UnknownSession => (
                "Session not found",
                "This session does not exist or has expired. Sessions end after a period of inactivity.",
            ),
            Self::NotFound => ("Not found", "There is nothing at this address."),
            Self::MethodNotAllowed => ("Method not allowed", "This address does not accept that method."),
            Self::PayloadTooLarge => {
                ("Request too large", "The request body is larger than this app accepts.")
            }
            Self::BadRequest(why) => ("Bad request", why),
            Self::UnsupportedMediaType => {
                ("Unsupported media type", "Send the form as application/x-www-form-urlencoded.")
            }
            Self::Busy(Busy::TooManyForSession) => {
                ("Too many open views", "This session has too many open views. Close one and try again.")
            }
            Self::Busy(Busy::TooManyForClient) => (
                "Too many open views",
                "You have too many live views open on this server. Close some and try again.",
            ),
            Self::Busy(Busy::TooManyInTotal) => {
                ("Server busy", "The server has too many open views. Try again soon.")
            }
            Self::Timeout => ("Request timeout", "The request took too long."),
            Self::TooManySessions { .. } => (
                "Too many new sessions",
                "You have started many sessions in a short time. Wait a moment, then try again.",
            ),
            Self::CrossSite => (
                "Not from another site",
                "Another site cannot start a session here. Open this address directly to start one.",
            ),
            Self::Store(StoreError::Corrupt(_)) | Self::Internal => {
                ("Server error", "Something went wrong on our side. Try again.")
            }
            Self::Store(_) => (
                "Temporarily unavailable",
                "The app cannot reach its session store right now. Try again in a moment.",
            ),
        }
    }
}

impl From<FormError> for AppError {
    fn from(e: FormError) -> Self {
        Self::BadRequest(e.message())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl AppError {
    /// Seconds a client should wait before trying again, for the statuses
    /// that mean "not now".
    fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            Self::Busy(_) => Some(HeaderValue::from_static("5")),
            Self::Store(StoreError::Unavailable(_) | StoreError::Contended) => {
                Some(HeaderValue::from_static("2"))
            }
            Self::TooManySessions { retry_after_secs } => Some(HeaderValue::from(*retry_after_secs)),
            _ => None,
        }
    }

    fn log(&self) {
        // Every request fails alike while the store is down: say so once a
        // second, not once a request (each request's own line has its 503).
        static UNAVAILABLE: RateLimitedLog = RateLimitedLog::new("session store unavailable");
        match self {
            Self::Store(e @ StoreError::Corrupt(_)) => tracing::error!(error = %e, "session store failed"),
            Self::Store(e) => UNAVAILABLE.warn(&e.to_string()),
            _ => {}
        }
    }

    fn respond(self, body: maud::Markup) -> Response {
        self.log();
        let mut response = (self.status(), body).into_response();
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        response
    }

    /// For htmx posting one widget: the message under that field (which
    /// `app.js` puts in place), so what the user typed stays in the field.
    pub fn for_field(self, key: Key) -> Response {
        let (_, message) = self.title_and_message();
        self.respond(field_error_response(key, message))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (title, message) = self.title_and_message();
        self.respond(error_page(title, message))
    }
}
