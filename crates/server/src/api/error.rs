//! [`ApiError`]: every answer an HTTP handler gives besides success, as
//! RFC 9457 `application/problem+json` with a stable `code`, mapped in this
//! one place; internals never reach the client.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything an HTTP handler can answer with besides success.
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest(&'static str),
    NotFound(&'static str),
    Unauthorized,
    Forbidden(&'static str),
    /// Too many failed logins for this account from here.
    Backoff(u64),
    TooManyRequests(u64),
    Busy,
    Unavailable(&'static str),
    /// A second-factor code was wrong.
    WrongCode,
    /// The current password given to change it was wrong.
    WrongPassword,
    /// A new password the policy refuses, and why.
    WeakPassword(String),
    /// The request's body did not arrive within `limits.body_timeout`.
    BodyTimeout,
    /// The request's body is over the limit.
    TooLarge,
    Internal,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, String, Option<u64>) {
        match self {
            ApiError::BadRequest(why) => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                (*why).to_owned(),
                None,
            ),
            ApiError::NotFound(why) => {
                (StatusCode::NOT_FOUND, "not_found", (*why).to_owned(), None)
            }
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong name or password, or the login expired".to_owned(),
                None,
            ),
            ApiError::Forbidden(why) => {
                (StatusCode::FORBIDDEN, "forbidden", (*why).to_owned(), None)
            }
            ApiError::Backoff(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                "too many failed logins for this account from here; wait before trying again"
                    .to_owned(),
                Some(*secs),
            ),
            ApiError::TooManyRequests(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this source".to_owned(),
                Some(*secs),
            ),
            ApiError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many logins at once; try again in a moment".to_owned(),
                Some(1),
            ),
            ApiError::Unavailable(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                (*why).to_owned(),
                Some(5),
            ),
            ApiError::WrongCode => (
                StatusCode::UNAUTHORIZED,
                "wrong_code",
                "that code is not right; try the newest one from the app".to_owned(),
                None,
            ),
            ApiError::WrongPassword => (
                StatusCode::FORBIDDEN,
                "wrong_password",
                "the current password is not right".to_owned(),
                None,
            ),
            ApiError::WeakPassword(why) => {
                (StatusCode::BAD_REQUEST, "weak_password", why.clone(), None)
            }
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive in time".to_owned(),
                None,
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the request body is too large".to_owned(),
                None,
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on the server".to_owned(),
                None,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail, retry_after) = self.parts();
        let body = json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "code": code,
            "detail": detail,
        });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
