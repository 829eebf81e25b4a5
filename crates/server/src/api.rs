//! The HTTP endpoints: health, readiness and the counsellor login API.
//!
//! Errors are RFC 9457 `application/problem+json` with a stable `code`,
//! mapped in one place ([`ApiError`]); internals never reach the client.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use crate::accounts::{Account, Role};
use crate::app::AppState;
use crate::auth::LoginError;
use crate::tokens;

/// The name of the login cookie.
pub(crate) const AUTH_COOKIE: &str = "haven_auth";

/// Everything an HTTP handler can answer with besides success.
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest(&'static str),
    NotFound(&'static str),
    Unauthorized,
    Forbidden(&'static str),
    LockedOut(u64),
    TooManyRequests(u64),
    Busy,
    Unavailable(&'static str),
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
            ApiError::LockedOut(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "locked_out",
                "too many failed logins for this account".to_owned(),
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

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 while accepting, 503 while draining.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(Ordering::Acquire) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response()
    } else {
        Json(json!({ "status": "ready", "sessions": state.broker.session_count(), "sockets": state.cap.open() }))
            .into_response()
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginRequest {
    name: String,
    password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    expires_in: u64,
    name: String,
    display_name: String,
    role: String,
}

/// Refuses cross-site form posts: a browser request must come from an
/// allowed origin. Requests without `Origin` (curl, scripts) pass; the JSON
/// content type already forces a CORS preflight on cross-site fetches.
pub(crate) fn check_post_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(origin)
            if state
                .config
                .allowed_origins
                .iter()
                .any(|o| o.as_bytes() == origin.as_bytes()) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::Forbidden("origin not allowed")),
    }
}

fn auth_cookie(state: &AppState, token: &str, max_age: u64) -> HeaderValue {
    let secure = if state.logins.secure_cookie() {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{AUTH_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Reads the login token from `Authorization: Bearer` or the cookie.
pub(crate) fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    cookie(headers, AUTH_COOKIE)
}

/// The value of a cookie, if sent.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `POST /api/v1/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    check_post_origin(&state, &headers)?;
    let Json(req) =
        body.map_err(|_| ApiError::BadRequest("expected JSON {\"name\", \"password\"}"))?;
    if req.name.len() > 64 || req.password.len() > 1024 {
        return Err(ApiError::BadRequest("name or password too long"));
    }
    let (token, account) = match state
        .logins
        .login(&state.accounts, &req.name, &req.password)
        .await
    {
        Ok(ok) => ok,
        Err(LoginError::Invalid) => {
            info!("login refused");
            return Err(ApiError::Unauthorized);
        }
        Err(LoginError::LockedOut(wait)) => {
            warn!("login refused: account locked out after repeated failures");
            return Err(ApiError::LockedOut(wait.as_secs().max(1)));
        }
        Err(LoginError::Busy) => return Err(ApiError::Busy),
        Err(LoginError::Internal) => return Err(ApiError::Internal),
    };
    info!(account = account.id, role = %account.role, "login");
    let ttl = state.logins.ttl().as_secs();
    let mut response = Json(LoginResponse {
        token: token.clone(),
        expires_in: ttl,
        name: account.name,
        display_name: account.display_name,
        role: account.role.to_string(),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth_cookie(&state, &token, ttl));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /api/v1/logout`: ends the login and closes its sockets.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_post_origin(&state, &headers)?;
    let token = token_from_headers(&headers).ok_or(ApiError::Unauthorized)?;
    let hash = tokens::hash(&token);
    if !state.logins.logout(hash) {
        return Err(ApiError::Unauthorized);
    }
    state.broker.logout(hash).await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth_cookie(&state, "", 0));
    Ok(response)
}

/// Every role: any logged-in account.
const ANY_ROLE: &[Role] = &[Role::Counsellor, Role::Supervisor, Role::Admin];

/// `GET /api/v1/me`: who the login belongs to.
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account = authorised(&state, &headers, ANY_ROLE)?;
    Ok(Json(json!({
        "name": account.name,
        "display_name": account.display_name,
        "role": account.role.to_string(),
        "capacity": account.capacity.unwrap_or(state.config.session.default_capacity),
    }))
    .into_response())
}

/// The account behind a request's login, if it has one of `roles`.
pub(crate) fn authorised(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Account, ApiError> {
    let token = token_from_headers(headers).ok_or(ApiError::Unauthorized)?;
    let (_, login) = state
        .logins
        .validate(&token)
        .ok_or(ApiError::Unauthorized)?;
    let account = state
        .accounts
        .get_by_id(login.account)
        .map_err(|_| ApiError::Internal)?
        .ok_or(ApiError::Unauthorized)?;
    if !roles.contains(&account.role) {
        return Err(ApiError::Forbidden("your role may not do this"));
    }
    Ok(account)
}

/// `GET /api/v1/topics`: every topic's queue at a glance (any logged-in
/// account).
pub(crate) async fn topics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(
        &state,
        &headers,
        &[Role::Counsellor, Role::Supervisor, Role::Admin],
    )?;
    Ok(Json(json!({ "topics": state.broker.queues().await })).into_response())
}

/// `GET /api/v1/helpline`: what the widget's pre-chat form offers, for
/// anyone (help-seekers have no login). Names only: the topics, the
/// languages and the default topic, never who is on duty; and per topic
/// that records chats, whether it always does (`on`) or asks (`ask`), so
/// the widget can say so before the chat starts.
pub(crate) async fn helpline(State(state): State<AppState>) -> Response {
    let plan = state.broker.plan();
    let topics: Vec<&str> = plan.topics.iter().map(|t| t.name.as_str()).collect();
    let default_topic = plan
        .topics
        .get(usize::from(plan.default_topic.0))
        .map(|t| t.name.as_str());
    let transcripts: serde_json::Map<String, serde_json::Value> = plan
        .topics
        .iter()
        .filter(|_| state.transcripts.is_some())
        .filter(|t| t.transcripts != crate::config::TranscriptMode::Off)
        .map(|t| (t.name.clone(), json!(t.transcripts)))
        .collect();
    Json(json!({
        "topics": topics,
        "languages": plan.languages,
        "default_topic": default_topic,
        "transcripts": transcripts,
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus exposition (see `docs/operations.md`).
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = state.events.latest_snapshot();
    let body = state.metrics.render(
        snapshot.as_deref(),
        &state.events.stats,
        state.config.redis_url.is_some(),
        state.transcripts.as_ref().map(|t| t.stats()),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `GET /api/v1/console`: the console's settings for a logged-in account:
/// the ring, the canned responses and the topics a session can be handed
/// to.
pub(crate) async fn console(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(&state, &headers, ANY_ROLE)?;
    let console = &state.config.console;
    let plan = state.broker.plan();
    let topics: Vec<&str> = plan.topics.iter().map(|t| t.name.as_str()).collect();
    Ok(Json(json!({
        "ring": console.ring,
        "ring_repeat_secs": console.ring_repeat.as_secs(),
        "canned": console.canned,
        "topics": topics,
    }))
    .into_response())
}

/// `GET /api/v1/colleagues`: the counsellors connected now, with their
/// status and load, for choosing whom to hand a session to.
pub(crate) async fn colleagues(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(&state, &headers, ANY_ROLE)?;
    Ok(Json(json!({ "colleagues": state.broker.colleagues().await })).into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct PauseRequest {
    #[serde(default)]
    message: Option<String>,
}

/// Longest pause message, in characters.
const MAX_PAUSE_MESSAGE: usize = 500;

async fn set_pause(
    state: &AppState,
    headers: &HeaderMap,
    topic: &str,
    paused: bool,
    message: Option<String>,
) -> Result<Response, ApiError> {
    check_post_origin(state, headers)?;
    let account = authorised(state, headers, &[Role::Supervisor, Role::Admin])?;
    let id = state
        .broker
        .plan()
        .topic(topic)
        .ok_or(ApiError::NotFound("no such topic"))?;
    if message
        .as_ref()
        .is_some_and(|m| m.chars().count() > MAX_PAUSE_MESSAGE)
    {
        return Err(ApiError::BadRequest(
            "the message may be at most 500 characters",
        ));
    }
    state
        .broker
        .pause(id, paused, message.clone())
        .await
        .map_err(|_| ApiError::Internal)?;
    // Every other node too, when they share a Redis.
    state.events.order_pause(crate::events::PauseOrder {
        topic: topic.to_owned(),
        paused,
        message,
    });
    info!(
        account = account.id,
        topic, paused, "topic paused or resumed"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/topics/{topic}/pause`: stop taking new help-seekers, with
/// an optional message for those waiting and arriving.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Option<Json<PauseRequest>>,
) -> Result<Response, ApiError> {
    let message = body
        .and_then(|Json(b)| b.message)
        .filter(|m| !m.trim().is_empty());
    set_pause(&state, &headers, &topic, true, message).await
}

/// `POST /api/v1/topics/{topic}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_pause(&state, &headers, &topic, false, None).await
}

/// Any other path.
pub(crate) async fn not_found() -> Response {
    ApiError::NotFound("no such endpoint").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies_and_bearer_tokens() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; haven_auth=tok; b=2"),
        );
        assert_eq!(token_from_headers(&headers).as_deref(), Some("tok"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer other"),
        );
        assert_eq!(token_from_headers(&headers).as_deref(), Some("other"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
