//! Every failure a client can cause, as one type that renders itself.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::i18n::{Lang, Texts};
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
    BadRequest(BadRequest),
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

/// Why a request is a 400: a client bug, never a typo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    Form(FormError),
    StreamParameters,
    StreamNotASession,
    StreamTooMany,
    StreamNoSession,
    Host,
    UnreadableBody,
}

impl BadRequest {
    fn message(self, t: &Texts) -> &'static str {
        let e = &t.errors;
        match self {
            Self::Form(FormError::MissingValue) => e.missing_value,
            Self::Form(FormError::BadStep) => e.bad_step,
            Self::StreamParameters => e.stream_parameters,
            Self::StreamNotASession => e.stream_not_a_session,
            Self::StreamTooMany => e.stream_too_many,
            Self::StreamNoSession => e.stream_no_session,
            Self::Host => e.bad_host,
            Self::UnreadableBody => e.unreadable_body,
        }
    }
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

    /// In the language of the request being answered.
    fn title_and_message(&self, t: &'static Texts) -> (&'static str, &'static str) {
        let e = &t.errors;
        let problem = match self {
            Self::UnknownSession => &e.unknown_session,
            Self::NotFound => &e.not_found,
            Self::MethodNotAllowed => &e.method_not_allowed,
            Self::PayloadTooLarge => &e.payload_too_large,
            Self::BadRequest(why) => return (e.bad_request, why.message(t)),
            Self::UnsupportedMediaType => &e.unsupported_media_type,
            Self::Busy(Busy::TooManyForSession) => &e.too_many_views_of_session,
            Self::Busy(Busy::TooManyForClient) => &e.too_many_views_of_client,
            Self::Busy(Busy::TooManyInTotal) => &e.too_many_views,
            Self::Timeout => &e.timeout,
            Self::TooManySessions { .. } => &e.too_many_sessions,
            Self::CrossSite => &e.cross_site,
            Self::Store(StoreError::Corrupt(_)) | Self::Internal => &e.internal,
            Self::Store(_) => &e.store_unavailable,
        };
        (problem.title, problem.message)
    }
}

impl From<FormError> for AppError {
    fn from(e: FormError) -> Self {
        Self::BadRequest(BadRequest::Form(e))
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
        let (_, message) = self.title_and_message(Lang::current().texts());
        self.respond(field_error_response(key, message))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let texts = Lang::current().texts();
        let (title, message) = self.title_and_message(texts);
        self.respond(error_page(texts, title, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_error() -> Vec<AppError> {
        let mut all = vec![
            AppError::UnknownSession,
            AppError::NotFound,
            AppError::MethodNotAllowed,
            AppError::PayloadTooLarge,
            AppError::UnsupportedMediaType,
            AppError::Busy(Busy::TooManyForSession),
            AppError::Busy(Busy::TooManyForClient),
            AppError::Busy(Busy::TooManyInTotal),
            AppError::Timeout,
            AppError::Store(StoreError::Unavailable("down".into())),
            AppError::Store(StoreError::Contended),
            AppError::Store(StoreError::Corrupt("bad".into())),
            AppError::TooManySessions { retry_after_secs: 1 },
            AppError::CrossSite,
            AppError::Internal,
        ];
        all.extend(
            [
                BadRequest::Form(FormError::MissingValue),
                BadRequest::Form(FormError::BadStep),
                BadRequest::StreamParameters,
                BadRequest::StreamNotASession,
                BadRequest::StreamTooMany,
                BadRequest::StreamNoSession,
                BadRequest::Host,
                BadRequest::UnreadableBody,
            ]
            .map(AppError::BadRequest),
        );
        all
    }

    /// Every error a client can meet says something in every language,
    /// and not the same thing in two of them.
    #[test]
    fn every_error_is_said_in_every_language() {
        for error in every_error() {
            let said: Vec<(&str, &str)> =
                Lang::ALL.iter().map(|lang| error.title_and_message(lang.texts())).collect();
            for (title, message) in &said {
                assert!(!title.is_empty() && message.len() > 10, "{error:?}: {title:?} {message:?}");
            }
            for pair in said.windows(2) {
                assert_ne!(pair[0].0, pair[1].0, "{error:?}: an untranslated title");
                assert_ne!(pair[0].1, pair[1].1, "{error:?}: an untranslated message");
            }
        }
    }
}
